"""The gates of a shift: every one must pass, and one that cannot be evaluated fails.

Alarms OK; the automatic rollback armed (composite actions on, its topic subscribed by a
confirmed subscription whose filter lets the composite's ALARM through, the function
active and not throttled to zero); CDC latency under its threshold; a recent consistent
validation, not dated in the future; the dwell time of the live phase; no rollback
unacknowledged. `--force` overrides none of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from paymig.naming import (
    ALARM_METRICS,
    ROLLBACK_ALARM_METRICS,
    alarm_name,
    composite_alarm_name,
)
from paymig.runtime.controller.core import (
    ALARM_OK,
    CLOCK_SKEW_SECONDS,
    ControllerRefusedError,
    ControllerSettings,
    parse_time,
)
from paymig.runtime.controller.replay import RollbackHold
from paymig.semantics.cloudwatch_alarm import AlarmState
from paymig.semantics.cloudwatch_composite import InvalidAlarmRuleError, child_alarms, parse_rule
from paymig.semantics.cloudwatch_notification import (
    AlarmIdentity,
    StateChange,
    composite_alarm_notification,
)
from paymig.semantics.sns_filter import FilterPolicyScope, InvalidFilterPolicyError, matches

#: The gates, in the order `paymig status` lists them (after one gate per alarm).
GATE_ARMED = "armed"
GATE_CDC = "cdc-latency"
GATE_VALIDATION = "validation"
GATE_DWELL = "dwell"
GATE_HOLD = "rollback-hold"


@dataclass(frozen=True)
class Gate:
    """One gate's verdict; `ok` is False also when it could not be evaluated."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class ArmedFacts:
    """What the shell read about the automatic rollback's chain.

    `composite`: the composite's DescribeAlarms entry (None: not found). `subscriptions`:
    the alarm topic's subscriptions, each with `FilterPolicy` and `FilterPolicyScope`
    when it has a filter. `function`: GetFunction's answer (None: not found).
    """

    composite: Mapping[str, Any] | None
    alarm_topic_arn: str
    subscriptions: Sequence[Mapping[str, Any]]
    function: Mapping[str, Any] | None


@dataclass(frozen=True)
class GateFacts:
    """What the shell observed; an `*_error` means the observation failed."""

    now: datetime
    alarm_states: Mapping[str, str] = field(default_factory=dict)
    alarms_error: str | None = None
    cdc_latency_seconds: float | None = None
    cdc_latency_at: datetime | None = None
    cdc_error: str | None = None
    validation: Mapping[str, Any] | None = None
    validation_error: str | None = None
    #: When the live phase was entered (None: the trail does not know).
    phase_entered_at: datetime | None = None
    armed: ArmedFacts | None = None
    armed_error: str | None = None
    hold: RollbackHold | None = None
    trail_error: str | None = None


def gate_name_of_alarm(stack_name: str, name: str) -> str:
    """Gate name of an alarm: `alarm:<metric>` or `alarm:migration-health`."""
    return "alarm:" + name.removeprefix(stack_name + "-")


def _alarm_gates(settings: ControllerSettings, facts: GateFacts) -> list[Gate]:
    """One gate per alarm: OK passes; ALARM, INSUFFICIENT_DATA or absent fail."""
    stack = settings.rollback.stack_name
    names = [alarm_name(stack, m) for m in ALARM_METRICS] + [composite_alarm_name(stack)]
    gates = []
    for name in names:
        gate = gate_name_of_alarm(stack, name)
        if facts.alarms_error is not None:
            gates.append(Gate(gate, False, f"cannot read alarm {name}: {facts.alarms_error}"))
            continue
        state = facts.alarm_states.get(name)
        if state is None:
            gates.append(Gate(gate, False, f"alarm {name} not found"))
        else:
            gates.append(Gate(gate, state == ALARM_OK, f"{name} is {state}"))
    return gates


# --------------------------------------------------------------------------- armed


def _composite_problems(stack: str, armed: ArmedFacts) -> list[str]:
    """The composite notifies the alarm topic and watches the user-facing alarms."""
    name = composite_alarm_name(stack)
    composite = armed.composite
    if composite is None:
        return [f"composite alarm {name} not found"]
    problems = []
    if composite.get("ActionsEnabled") is not True:
        problems.append(f"{name} has its actions disabled")
    if armed.alarm_topic_arn not in composite.get("AlarmActions", []):
        problems.append(f"{name}'s alarm actions do not include {armed.alarm_topic_arn}")
    rule = composite.get("AlarmRule")
    if isinstance(rule, str):  # absent only on the emulator's stand-in metric alarm
        try:
            children = child_alarms(parse_rule(rule))
        except InvalidAlarmRuleError as exc:
            return [*problems, f"{name}'s rule cannot be read: {exc}"]
        missing = [m for m in ROLLBACK_ALARM_METRICS if alarm_name(stack, m) not in children]
        if missing:
            problems.append(f"{name}'s rule does not watch {', '.join(missing)}")
    return problems


def composite_alarm_message(stack: str, armed: ArmedFacts) -> str:
    """The body CloudWatch publishes when the composite enters ALARM (SNS filters it)."""
    arn = str((armed.composite or {}).get("AlarmArn", ""))
    fields = arn.split(":")
    region, account = (fields[3], fields[4]) if len(fields) > 5 else ("", "")
    identity = AlarmIdentity(
        name=composite_alarm_name(stack),
        description=(armed.composite or {}).get("AlarmDescription"),
        account_id=account,
        region=region,
        region_name=region,
        alarm_actions=(armed.alarm_topic_arn,),
    )
    change = StateChange(AlarmState.ALARM, AlarmState.OK, "armed check", datetime.now(UTC))
    body = composite_alarm_notification(
        identity,
        change,
        alarm_rule=str((armed.composite or {}).get("AlarmRule", "")),
        triggering_children=(),
    )
    return json.dumps(body)


def _subscription_problems(stack: str, armed: ArmedFacts, function_arn: str) -> list[str]:
    """A confirmed Lambda subscription of the function that lets the ALARM through."""
    ours = [
        s
        for s in armed.subscriptions
        if s.get("Protocol") == "lambda"
        and str(s.get("Endpoint", "")).split(":")[:7] == function_arn.split(":")[:7]
    ]
    if not ours:
        return [f"{armed.alarm_topic_arn} has no Lambda subscription of {function_arn}"]
    message = composite_alarm_message(stack, armed)
    for sub in ours:
        if sub.get("SubscriptionArn") in (None, "", "PendingConfirmation"):
            continue
        policy = sub.get("FilterPolicy")
        if not policy:
            return []
        scope: FilterPolicyScope = (
            "MessageBody" if sub.get("FilterPolicyScope") == "MessageBody" else "MessageAttributes"
        )
        try:
            if matches(json.loads(policy), scope, message=message, attributes={}):
                return []
        except (ValueError, InvalidFilterPolicyError):
            continue
    return [
        f"no confirmed subscription of {function_arn} to {armed.alarm_topic_arn} lets the "
        "composite's ALARM notification through"
    ]


def _function_problems(armed: ArmedFacts, function_name: str) -> list[str]:
    """The function exists, is Active and may run (reserved concurrency not 0)."""
    if armed.function is None:
        return [f"function {function_name} not found"]
    config = armed.function.get("Configuration", {})
    problems = []
    state = config.get("State", "Active")
    if state != "Active":
        problems.append(f"function {function_name} is {state}")
    reserved = armed.function.get("Concurrency", {}).get("ReservedConcurrentExecutions")
    if reserved is not None and int(reserved) <= 0:
        problems.append(f"function {function_name} is throttled to 0 (reserved concurrency 0)")
    return problems


def _armed_gate(settings: ControllerSettings, facts: GateFacts) -> Gate:
    """The chain composite -> alarm topic -> rollback function can fire."""
    if facts.armed_error is not None:
        return Gate(GATE_ARMED, False, f"cannot check the automatic rollback: {facts.armed_error}")
    armed = facts.armed
    if armed is None:
        return Gate(GATE_ARMED, False, "the automatic rollback was not checked")
    stack = settings.rollback.stack_name
    function = armed.function or {}
    arn = str(function.get("Configuration", {}).get("FunctionArn", ""))
    name = str(function.get("Configuration", {}).get("FunctionName", f"{stack}-rollback"))
    problems = _composite_problems(stack, armed) + _function_problems(armed, name)
    if armed.function is not None:
        problems += _subscription_problems(stack, armed, arn)
    if problems:
        return Gate(GATE_ARMED, False, "; ".join(problems))
    return Gate(
        GATE_ARMED,
        True,
        f"{composite_alarm_name(stack)} -> {armed.alarm_topic_arn} -> {name} (active)",
    )


# --------------------------------------------------------------------------- the others


def _cdc_gate(settings: ControllerSettings, facts: GateFacts) -> Gate:
    """CDC latency at or below the threshold; no datapoint in the window fails."""
    limit = settings.cdc_latency_threshold_seconds
    if facts.cdc_error is not None:
        return Gate(GATE_CDC, False, f"cannot read CDC latency: {facts.cdc_error}")
    if facts.cdc_latency_seconds is None:
        return Gate(
            GATE_CDC,
            False,
            f"no CDC latency datapoint in the last {settings.cdc_latency_lookback_seconds} s",
        )
    latency = facts.cdc_latency_seconds
    ok = latency <= limit
    relation = "<=" if ok else ">"
    return Gate(GATE_CDC, ok, f"CDC latency {latency:g} s {relation} threshold {limit:g} s")


def _validation_problem(
    settings: ControllerSettings, result: Mapping[str, Any], now: datetime
) -> tuple[str | None, str]:
    """What is wrong with the latest validation (None: nothing), and its summary."""
    status = result.get("status")
    checked = parse_time(result.get("checked_at"))
    if checked is None:
        return "latest validation has no valid checked_at", ""
    summary = f"{status} at {checked.isoformat()}"
    if status != "consistent":
        detail = result.get("summary")
        return f"latest validation is {summary}" + (f": {detail}" if detail else ""), summary
    if checked > now + timedelta(seconds=CLOCK_SKEW_SECONDS):
        return (
            f"latest validation ({summary}) is dated in the future (now {now.isoformat()}): "
            "a wrong clock proves nothing",
            summary,
        )
    if now - checked > settings.validation_max_age:
        minutes = settings.validation_max_age.total_seconds() / 60
        return f"latest validation ({summary}) is older than {minutes:g} min", summary
    return None, summary


def _validation_gate(settings: ControllerSettings, facts: GateFacts) -> Gate:
    """The latest validation exists, is consistent, recent, and not dated in the future."""
    if facts.validation_error is not None:
        return Gate(GATE_VALIDATION, False, f"cannot read validation: {facts.validation_error}")
    if facts.validation is None:
        return Gate(GATE_VALIDATION, False, "no validation result recorded")
    problem, summary = _validation_problem(settings, facts.validation, facts.now)
    return Gate(GATE_VALIDATION, problem is None, problem or f"latest validation is {summary}")


def _dwell_gate(settings: ControllerSettings, facts: GateFacts, live: int | None) -> Gate:
    """Traffic has stayed at the live phase for its configured dwell time."""
    minutes = settings.dwell_minutes.get(live, 0) if live is not None else 0
    if minutes == 0:
        return Gate(GATE_DWELL, True, f"no dwell time at {live}%")
    if facts.phase_entered_at is None:
        return Gate(GATE_DWELL, False, f"no record of when the live phase {live}% was entered")
    stayed = facts.now - facts.phase_entered_at
    needed = timedelta(minutes=minutes)
    if stayed >= needed:
        return Gate(
            GATE_DWELL, True, f"at {live}% for {stayed.total_seconds() / 60:.0f} min >= {minutes}"
        )
    left = (needed - stayed).total_seconds() / 60
    return Gate(
        GATE_DWELL,
        False,
        f"at {live}% for {stayed.total_seconds() / 60:.0f} min of {minutes} ({left:.0f} min left)",
    )


def _hold_gate(facts: GateFacts) -> Gate:
    """After a rollback, a person acknowledges and a newer validation passes."""
    if facts.trail_error is not None:
        return Gate(GATE_HOLD, False, f"cannot read the audit trail: {facts.trail_error}")
    hold = facts.hold
    if hold is None:
        return Gate(GATE_HOLD, True, "no rollback recorded")
    skew = timedelta(seconds=CLOCK_SKEW_SECONDS)
    missing = []
    if hold.ack_at is None:
        missing.append("no `paymig ack --reason ...` since")
    checked = parse_time((facts.validation or {}).get("checked_at"))
    consistent = (facts.validation or {}).get("status") == "consistent"
    if not consistent or checked is None or checked <= hold.rollback_at + skew:
        missing.append("no consistent validation checked after it")
    if missing:
        return Gate(GATE_HOLD, False, f"held by the {hold.describe()}: {'; '.join(missing)}")
    return Gate(GATE_HOLD, True, f"released: {hold.describe()}")


def evaluate_gates(settings: ControllerSettings, facts: GateFacts, live: int | None) -> list[Gate]:
    """Every gate of a shift away from the live phase `live`, in a stable order."""
    return [
        *_alarm_gates(settings, facts),
        _armed_gate(settings, facts),
        _cdc_gate(settings, facts),
        _validation_gate(settings, facts),
        _dwell_gate(settings, facts, live),
        _hold_gate(facts),
    ]


def failed_gates(gates: Iterable[Gate]) -> list[Gate]:
    """The gates that did not pass."""
    return [g for g in gates if not g.ok]


def refusal_for(gates: Iterable[Gate]) -> ControllerRefusedError | None:
    """A refusal naming each failed gate, or None if all passed."""
    failed = failed_gates(gates)
    if not failed:
        return None
    return ControllerRefusedError([f"gate {g.name} failed: {g.detail}" for g in failed])
