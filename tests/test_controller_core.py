"""The controller's pure core: phase plan, gates, replay, rollback plan, events, steps.

No AWS, no mocks: facts go in, decisions come out. The budget is in
test_controller_budget.py.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from paymig.config import AlarmSettings, PaymigConfig, parse_config
from paymig.errors import ConfigError
from paymig.naming import alarm_names
from paymig.runtime.controller.answer import effective_answer
from paymig.runtime.controller.clock import ServerClock
from paymig.runtime.controller.core import (
    AlarmNotification,
    CompositeNow,
    ControllerRefusedError,
    ControllerSettings,
    RollbackSettings,
    Step,
    Weights,
    backoff_delay,
    is_rollback_trigger,
    outcome_of,
    parse_alarm_message,
    parse_time,
    plan_listener,
    plan_rollback,
    plan_shift,
    stale_event_reason,
)
from paymig.runtime.controller.gates import (
    ArmedFacts,
    GateFacts,
    evaluate_gates,
    refusal_for,
)
from paymig.runtime.controller.replay import (
    hold_from_events,
    live_phase_entered_at,
    phase_from_events,
    reconcile,
)
from paymig.runtime.controller.route53 import TokenBucket

REPO = Path(__file__).resolve().parents[1]
PHASES = (0, 10, 50, 100)
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
STACK = "paymig-prod"


def settings(**overrides: object) -> ControllerSettings:
    values: dict[str, object] = {
        "rollback": RollbackSettings(STACK, "prod", "Z123", "api.payments.example.com"),
        "phases": PHASES,
        "initial_phase": 0,
        "cdc_latency_threshold_seconds": 30.0,
        "cdc_latency_lookback_seconds": 300,
        "validation_max_age": timedelta(minutes=120),
        "dwell_minutes": {10: 60},
    }
    values.update(overrides)
    return ControllerSettings(**values)  # type: ignore[arg-type]


ALARM_TOPIC = "arn:aws:sns:us-east-2:123456789012:paymig-prod-migration-alarms"
FUNCTION = "arn:aws:lambda:us-east-2:123456789012:function:paymig-prod-rollback"
BODY_FILTER = {"AlarmName": ["paymig-prod-migration-health"], "NewStateValue": ["ALARM"]}


def armed(**overrides: Any) -> ArmedFacts:
    """The chain as the stack builds it (DESIGN #3: MessageBody filter on the composite)."""
    values: dict[str, Any] = {
        "composite": {
            "ActionsEnabled": True,
            "AlarmActions": [ALARM_TOPIC],
            "AlarmRule": 'ALARM("paymig-prod-5xx-rate") OR ALARM("paymig-prod-p99-latency")',
            "AlarmArn": "arn:aws:cloudwatch:us-east-2:123456789012:alarm:paymig-prod-migration-health",
        },
        "alarm_topic_arn": ALARM_TOPIC,
        "subscriptions": [
            {
                "Protocol": "lambda",
                "Endpoint": FUNCTION,
                "SubscriptionArn": f"{ALARM_TOPIC}:4e1b",
                "FilterPolicy": json.dumps(BODY_FILTER),
                "FilterPolicyScope": "MessageBody",
            }
        ],
        "function": {
            "Configuration": {
                "FunctionArn": FUNCTION,
                "FunctionName": "paymig-prod-rollback",
                "State": "Active",
            },
            "Concurrency": {"ReservedConcurrentExecutions": 2},
        },
    }
    values.update(overrides)
    return ArmedFacts(**values)


def healthy(**overrides: object) -> GateFacts:
    values: dict[str, object] = {
        "now": NOW,
        "alarm_states": dict.fromkeys(alarm_names(STACK), "OK"),
        "cdc_latency_seconds": 4.0,
        "validation": {"status": "consistent", "checked_at": "2026-11-29T11:30:00.000000Z"},
        "phase_entered_at": NOW - timedelta(hours=2),
        "armed": armed(),
    }
    values.update(overrides)
    return GateFacts(**values)  # type: ignore[arg-type]


def failed(facts: GateFacts, current: int | None = 0) -> dict[str, str]:
    return {g.name: g.detail for g in evaluate_gates(settings(), facts, current) if not g.ok}


# --------------------------------------------------------------------------- weights


def test_weights_of_phases_and_percent():
    assert Weights.for_phase(10) == Weights(legacy=90, aws=10)
    assert Weights(legacy=90, aws=10).aws_percent == 10
    assert Weights(legacy=1, aws=1).aws_percent == 50
    assert Weights(legacy=0, aws=0).aws_percent is None
    with pytest.raises(ValueError, match="percentage"):
        Weights.for_phase(101)


# --------------------------------------------------------------------------- phase plan


def test_next_phase_is_allowed():
    plan = plan_shift(PHASES, Weights(100, 0), 0, 10, force=False, reason="go")
    assert (plan.from_phase, plan.to_phase, plan.weights, plan.forced) == (
        0,
        10,
        Weights(90, 10),
        False,
    )
    assert plan.changes_anything


def test_skipping_phases_is_refused_naming_them():
    with pytest.raises(ControllerRefusedError) as refused:
        plan_shift(PHASES, Weights(100, 0), 0, 100, force=False, reason="go")
    assert refused.value.reasons == (
        "--to 100 skips phase(s) 10%, 50% from 0%",
        "use --force with a --reason to override",
    )
    assert refused.value.exit_code == 1


def test_force_allows_a_skip_and_says_so():
    plan = plan_shift(PHASES, Weights(100, 0), 0, 100, force=True, reason="CAB-42")
    assert plan.forced
    assert plan.notes == ("--to 100 skips phase(s) 10%, 50% from 0%",)
    assert plan.weights == Weights(0, 100)


def test_force_on_a_next_phase_is_not_recorded_as_forced():
    plan = plan_shift(PHASES, Weights(90, 10), 10, 50, force=True, reason="go")
    assert not plan.forced


def test_going_back_is_refused_unless_forced():
    with pytest.raises(ControllerRefusedError, match="goes back from 50%"):
        plan_shift(PHASES, Weights(50, 50), 50, 10, force=False, reason="go")
    assert plan_shift(PHASES, Weights(50, 50), 50, 10, force=True, reason="x").to_phase == 10


def test_target_must_be_a_phase_even_with_force():
    with pytest.raises(ControllerRefusedError, match=r"--to 30: not a phase of 0, 10, 50, 100"):
        plan_shift(PHASES, Weights(100, 0), 0, 30, force=True, reason="go")


def test_blank_reason_is_refused():
    with pytest.raises(ControllerRefusedError, match="--reason: a reason is required"):
        plan_shift(PHASES, Weights(100, 0), 0, 10, force=False, reason=" ")


def test_live_weights_that_disagree_with_the_trail_are_refused():
    with pytest.raises(ControllerRefusedError, match="disagree with the recorded phase 0%"):
        plan_shift(PHASES, Weights(90, 10), 0, 50, force=False, reason="go")
    with pytest.raises(
        ControllerRefusedError, match=r"live weights \(legacy 70 / aws 30\) are not"
    ):
        plan_shift(PHASES, Weights(70, 30), 10, 50, force=False, reason="go")
    with pytest.raises(ControllerRefusedError, match="both 0"):
        plan_shift(PHASES, Weights(0, 0), 10, 50, force=False, reason="go")
    forced = plan_shift(PHASES, Weights(0, 0), 10, 50, force=True, reason="repair")
    assert (forced.from_phase, forced.forced) == (10, True)


def test_shift_to_the_current_phase_changes_nothing():
    plan = plan_shift(PHASES, Weights(90, 10), 10, 10, force=False, reason="go")
    assert not plan.changes_anything
    assert not plan.reconciles


def test_forced_shift_to_the_live_phase_reconciles_the_trail():
    with pytest.raises(ControllerRefusedError, match="disagree with the recorded phase 10%"):
        plan_shift(PHASES, Weights(50, 50), 10, 50, force=False, reason="go")
    plan = plan_shift(PHASES, Weights(50, 50), 10, 50, force=True, reason="record it")
    assert (plan.changes_anything, plan.reconciles, plan.forced) == (False, True, True)


# --------------------------------------------------------------------------- gates


def test_all_gates_pass_on_healthy_facts():
    gates = evaluate_gates(settings(), healthy(), 10)
    assert [g.name for g in gates] == [
        "alarm:5xx-rate", "alarm:p99-latency", "alarm:cdc-latency", "alarm:dms-task-failure",
        "alarm:aurora-cpu", "alarm:replica-lag", "alarm:migration-health",
        "armed", "cdc-latency", "validation", "dwell", "rollback-hold",
    ]  # fmt: skip
    assert all(g.ok for g in gates), [g for g in gates if not g.ok]
    assert refusal_for(gates) is None


def test_alarm_not_ok_or_absent_fails_its_gate():
    states = dict.fromkeys(alarm_names(STACK), "OK")
    states["paymig-prod-5xx-rate"] = "ALARM"
    states["paymig-prod-aurora-cpu"] = "INSUFFICIENT_DATA"
    del states["paymig-prod-migration-health"]
    assert failed(healthy(alarm_states=states)) == {
        "alarm:5xx-rate": "paymig-prod-5xx-rate is ALARM",
        "alarm:aurora-cpu": "paymig-prod-aurora-cpu is INSUFFICIENT_DATA",
        "alarm:migration-health": "alarm paymig-prod-migration-health not found",
    }


def test_unreadable_alarms_fail_every_alarm_gate():
    result = failed(healthy(alarm_states={}, alarms_error="AccessDenied: no"))
    assert len(result) == 7
    assert (
        result["alarm:replica-lag"] == "cannot read alarm paymig-prod-replica-lag: AccessDenied: no"
    )


def _composite(**changes: Any) -> dict[str, Any]:
    return {**(armed().composite or {}), **changes}


@pytest.mark.parametrize(
    ("facts", "detail"),
    [
        (
            armed(composite=_composite(ActionsEnabled=False)),
            "paymig-prod-migration-health has its actions disabled",
        ),
        (
            armed(composite=_composite(AlarmActions=[])),
            f"paymig-prod-migration-health's alarm actions do not include {ALARM_TOPIC}",
        ),
        (
            armed(composite=_composite(AlarmRule='ALARM("paymig-prod-5xx-rate")')),
            "paymig-prod-migration-health's rule does not watch p99-latency",
        ),
        (armed(composite=None), "composite alarm paymig-prod-migration-health not found"),
        (armed(subscriptions=[]), f"{ALARM_TOPIC} has no Lambda subscription of {FUNCTION}"),
        (
            armed(subscriptions=[{**armed().subscriptions[0], "SubscriptionArn": "PendingConfirmation"}]),
            f"no confirmed subscription of {FUNCTION} to {ALARM_TOPIC} lets the composite's "
            "ALARM notification through",
        ),
        (
            # The filter main shipped: alarm notifications carry no attributes, so it
            # matches nothing (paymig.semantics.sns_filter).
            armed(subscriptions=[{**armed().subscriptions[0], "FilterPolicyScope": "MessageAttributes",
                                  "FilterPolicy": json.dumps({"paymig_source": [{"exists": False}]})}]),
            f"no confirmed subscription of {FUNCTION} to {ALARM_TOPIC} lets the composite's "
            "ALARM notification through",
        ),
        (
            armed(function={**(armed().function or {}), "Concurrency": {"ReservedConcurrentExecutions": 0}}),
            "function paymig-prod-rollback is throttled to 0 (reserved concurrency 0)",
        ),
        (
            armed(function={"Configuration": {"FunctionArn": FUNCTION, "FunctionName": "paymig-prod-rollback",
                                              "State": "Inactive"}}),
            "function paymig-prod-rollback is Inactive",
        ),
        (armed(function=None), "function paymig-prod-rollback not found"),
    ],
)  # fmt: skip
def test_armed_gate_fails_on_each_broken_link(facts: ArmedFacts, detail: str):
    assert failed(healthy(armed=facts)) == {"armed": detail}


def test_armed_gate_needs_its_facts():
    assert failed(healthy(armed=None)) == {"armed": "the automatic rollback was not checked"}
    assert failed(healthy(armed_error="AccessDenied: sns")) == {
        "armed": "cannot check the automatic rollback: AccessDenied: sns"
    }
    # A subscription without a filter receives everything: armed.
    unfiltered = {k: v for k, v in armed().subscriptions[0].items() if not k.startswith("Filter")}
    assert failed(healthy(armed=armed(subscriptions=[unfiltered]))) == {}


def test_cdc_latency_gate():
    assert failed(healthy(cdc_latency_seconds=30.0)) == {}
    assert failed(healthy(cdc_latency_seconds=30.5)) == {
        "cdc-latency": "CDC latency 30.5 s > threshold 30 s"
    }
    assert failed(healthy(cdc_latency_seconds=None)) == {
        "cdc-latency": "no CDC latency datapoint in the last 300 s"
    }
    assert failed(healthy(cdc_error="Throttling: slow down")) == {
        "cdc-latency": "cannot read CDC latency: Throttling: slow down"
    }


@pytest.mark.parametrize(
    ("validation", "error", "detail"),
    [
        (None, None, "no validation result recorded"),
        (None, "ResourceNotFoundException: table", "cannot read validation: ResourceNotFoundException: table"),
        ({"status": "consistent"}, None, "latest validation has no valid checked_at"),
        ({"status": "consistent", "checked_at": "yesterday"}, None, "latest validation has no valid checked_at"),
        (
            {"status": "inconsistent", "checked_at": "2026-11-29T11:00:00Z", "summary": "2 rows"},
            None,
            "latest validation is inconsistent at 2026-11-29T11:00:00+00:00: 2 rows",
        ),
        (
            {"status": "consistent", "checked_at": "2026-11-29T09:00:00"},
            None,
            "latest validation (consistent at 2026-11-29T09:00:00+00:00) is older than 120 min",
        ),
        (
            {"status": "consistent", "checked_at": "2026-11-29T12:00:03Z"},
            None,
            "latest validation (consistent at 2026-11-29T12:00:03+00:00) is dated in the future "
            "(now 2026-11-29T12:00:00+00:00): a wrong clock proves nothing",
        ),
    ],
)  # fmt: skip
def test_validation_gate_fails(validation, error, detail):
    assert failed(healthy(validation=validation, validation_error=error)) == {"validation": detail}


def test_validation_within_the_tolerated_skew_is_not_in_the_future():
    assert (
        failed(healthy(validation={"status": "consistent", "checked_at": "2026-11-29T12:00:02Z"}))
        == {}
    )


def test_dwell_gate():
    just_now = healthy(phase_entered_at=NOW - timedelta(minutes=20))
    assert failed(just_now, current=10) == {"dwell": "at 10% for 20 min of 60 (40 min left)"}
    assert failed(just_now, current=50) == {}  # no dwell configured at 50%
    assert failed(healthy(phase_entered_at=None), current=10) == {
        "dwell": "no record of when the live phase 10% was entered"
    }
    assert failed(healthy(phase_entered_at=None), current=None) == {}  # 0/0: not a phase


def test_dwell_counts_the_live_phase_only():
    """Recorded 10% entered 5 h ago, live 50%: 50% has no recorded entry (issue 15, #5)."""
    events = [
        {"result": "succeeded", "to_phase": 10, "phase_after": 10, "at": "2026-11-29T07:00:00Z"}
    ]
    state = phase_from_events(events, 0)
    assert live_phase_entered_at(state, Weights(90, 10)) == datetime(2026, 11, 29, 7, tzinfo=UTC)
    entered = live_phase_entered_at(state, Weights(50, 50))
    assert entered is None
    dwell = settings(dwell_minutes={50: 240})
    gates = evaluate_gates(dwell, healthy(phase_entered_at=entered), 50)
    assert [g.detail for g in gates if not g.ok] == [
        "no record of when the live phase 50% was entered"
    ]


def test_refusal_names_each_failed_gate():
    facts = healthy(cdc_latency_seconds=99.0, validation=None)
    refusal = refusal_for(evaluate_gates(settings(), facts, 0))
    assert str(refusal) == (
        "gate cdc-latency failed: CDC latency 99 s > threshold 30 s; "
        "gate validation failed: no validation result recorded"
    )


# --------------------------------------------------------------------------- hold


ROLLBACK_AT = "2026-11-29T11:40:00.000000Z"
ROLLBACK = {"action": "rollback", "result": "succeeded", "source": "lambda", "at": ROLLBACK_AT,
            "trigger": {"alarm": "paymig-prod-migration-health"}, "phase_after": 0}  # fmt: skip
ACK = {"action": "ack", "result": "recorded", "actor": "arn:aws:iam::1:user/ops",
       "reason": "INC-7 fixed", "at": "2026-11-29T11:50:00.000000Z"}  # fmt: skip


def test_hold_after_a_rollback_until_ack_and_a_newer_validation():
    before = {"status": "consistent", "checked_at": "2026-11-29T11:30:00Z"}
    after = {"status": "consistent", "checked_at": "2026-11-29T11:55:00Z"}
    held = failed(healthy(hold=hold_from_events([ROLLBACK]), validation=before))
    assert held == {
        "rollback-hold": "held by the rollback at 2026-11-29T11:40:00+00:00 (lambda, succeeded: "
        "paymig-prod-migration-health): no `paymig ack --reason ...` since; no consistent "
        "validation checked after it"
    }
    acked = hold_from_events([ROLLBACK, ACK])
    assert failed(healthy(hold=acked, validation=before))["rollback-hold"].endswith(
        "by arn:aws:iam::1:user/ops: INC-7 fixed: no consistent validation checked after it"
    )
    assert failed(healthy(hold=hold_from_events([ROLLBACK]), validation=after))[
        "rollback-hold"
    ].endswith("no `paymig ack --reason ...` since")
    assert failed(healthy(hold=acked, validation=after)) == {}
    # A rollback after the ack holds again; an ack before any rollback releases nothing.
    again = {**ROLLBACK, "at": "2026-11-29T11:56:00Z"}
    assert "no `paymig ack" in failed(healthy(hold=hold_from_events([ROLLBACK, ACK, again]),
                                             validation=after))["rollback-hold"]  # fmt: skip
    assert hold_from_events([ACK]) is None
    assert failed(healthy(trail_error="AccessDenied: table")) == {
        "rollback-hold": "cannot read the audit trail: AccessDenied: table"
    }


# --------------------------------------------------------------------------- rollback plan


def test_rollback_plan_changes_route53_and_the_listener_when_needed():
    plan = plan_rollback(Weights(50, 50))
    assert (plan.route53, plan.route53_needed) == (Weights(100, 0), True)
    assert plan_rollback(Weights(100, 0)).route53_needed is False
    assert plan_listener({"blue": 20, "green": 80}, "blue") == {"blue": 100, "green": 0}
    assert plan_listener({"blue": 100, "green": 0}, "green") == {"blue": 0, "green": 100}
    assert plan_listener({"blue": 100, "green": 0}, "blue") is None


def test_rollback_settings_reject_unknown_alias():
    with pytest.raises(Exception, match="stable_alias must be one of blue, green"):
        RollbackSettings(STACK, "prod", "Z1", "api.x.com", stable_alias="red")


def test_outcome_of_steps_tells_the_truth():
    def steps(*results: str) -> list[Step]:
        return [Step(f"s{i}", r, "") for i, r in enumerate(results)]

    assert outcome_of(steps("changed", "unchanged", "confirmed")) == "succeeded"
    assert outcome_of(steps("unchanged", "unchanged")) == "no-change"
    assert outcome_of(steps("changed", "failed")) == "partial"  # listener failed after DNS
    assert outcome_of(steps("failed", "changed")) == "partial"  # DNS failed, listener moved
    assert outcome_of(steps("failed", "unchanged")) == "failed"  # nothing changed
    assert outcome_of(steps("changed", "unchanged", "timed-out")) == "unconfirmed"


# --------------------------------------------------------------------------- audit replay


def test_phase_rebuilt_from_events():
    assert phase_from_events([], 0).phase == 0
    events = [
        {"result": "succeeded", "to_phase": 10, "at": "2026-11-29T10:00:00.000000Z"},
        {"result": "refused", "to_phase": 100, "at": "2026-11-29T10:30:00.000000Z"},
        {"result": "no-change", "to_phase": 10, "at": "2026-11-29T10:40:00.000000Z"},
        {"result": "succeeded", "to_phase": 50, "at": "2026-11-29T11:00:00.000000Z"},
        {"result": "failed", "to_phase": 100, "at": "2026-11-29T11:10:00.000000Z"},
    ]
    state = phase_from_events(events, 0)
    assert (state.phase, state.entered_at, state.unconfirmed) == (
        50,
        datetime(2026, 11, 29, 11, 0, tzinfo=UTC),
        False,
    )
    rolled = [*events, {"result": "unconfirmed", "to_phase": 0, "at": "2026-11-29T11:20:00Z"}]
    state = phase_from_events(rolled, 0)
    assert (state.phase, state.unconfirmed) == (0, True)


def test_phase_after_is_what_the_event_left_the_weights_at():
    events = [
        {"result": "succeeded", "to_phase": 50, "phase_after": 50, "at": "2026-11-29T10:00:00Z"},
        # Route 53 failed, the listener moved: the weights did not change.
        {"action": "rollback", "result": "partial", "to_phase": 0, "at": "2026-11-29T10:05:00Z"},
        # A forced shift to the live phase recorded it; a preempted shift restored 0.
        {"result": "no-change", "to_phase": 10, "phase_after": 10, "at": "2026-11-29T10:10:00Z"},
    ]
    assert phase_from_events(events[:2], 0).phase == 50
    assert phase_from_events(events, 0).phase == 10
    assert phase_from_events([*events, {"result": "preempted", "phase_after": 0,
                                        "at": "2026-11-29T10:20:00Z"}], 0).phase == 0  # fmt: skip


def test_replay_reconciles_a_rollback_whose_outcome_was_not_recorded():
    """Only the final audit write failed: intent recorded, weights rolled back (#4)."""
    events = [
        {"result": "succeeded", "to_phase": 50, "phase_after": 50, "at": "2026-11-29T10:00:00Z"},
        {"action": "rollback", "result": "started", "to_phase": 0, "at": "2026-11-29T11:00:00Z"},
    ]
    state = phase_from_events(events, 0)
    assert state.phase == 50
    fixed = reconcile(state, events, Weights(100, 0))
    assert (fixed.phase, fixed.entered_at) == (0, datetime(2026, 11, 29, 11, tzinfo=UTC))
    assert fixed.reconciled is not None and "recorded no outcome" in fixed.reconciled
    # Anything else stays drift: weights elsewhere, or no rollback intent after the shift.
    assert reconcile(state, events, Weights(90, 10)) == state
    assert reconcile(state, events[:1], Weights(100, 0)) == state
    assert reconcile(fixed, events, Weights(100, 0)) == fixed


def test_entered_at_survives_a_repeat_of_the_same_phase():
    events = [
        {"result": "succeeded", "to_phase": 10, "at": "2026-11-29T10:00:00Z"},
        {"result": "succeeded", "to_phase": 10, "at": "2026-11-29T11:00:00Z"},
    ]
    assert phase_from_events(events, 0).entered_at == datetime(2026, 11, 29, 10, tzinfo=UTC)


# --------------------------------------------------------------------------- alarm events


def _alarm(changed: str, name: str = "paymig-prod-migration-health", state: str = "ALARM") -> Any:
    return parse_alarm_message(
        json.dumps({"AlarmName": name, "NewStateValue": state, "StateChangeTime": changed})
    )


def test_only_the_composite_entering_alarm_triggers():
    assert is_rollback_trigger(_alarm("2026-11-29T11:59:00.000+0000"), STACK)
    assert not is_rollback_trigger(_alarm("x", state="OK"), STACK)
    assert not is_rollback_trigger(_alarm("x", name="paymig-prod-5xx-rate"), STACK)


def test_stale_events_are_not_acted_on():
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    fresh = _alarm("2026-11-29T11:59:00.000+0000")
    in_alarm = CompositeNow("ALARM", datetime(2026, 11, 29, 11, 59, tzinfo=UTC))
    assert stale_event_reason(fresh, now=now, max_age_seconds=600, composite=in_alarm) is None
    assert stale_event_reason(fresh, now=now, max_age_seconds=600, composite=None) is None
    old = _alarm("2026-11-29T11:40:00.000+0000")
    assert stale_event_reason(old, now=now, max_age_seconds=600, composite=in_alarm) == (
        "the alarm changed state at 2026-11-29T11:40:00+00:00, 1200 s ago, beyond the maximum "
        "event age of 600 s"
    )
    since_ok = CompositeNow("OK", datetime(2026, 11, 29, 11, 59, 30, tzinfo=UTC))
    assert stale_event_reason(fresh, now=now, max_age_seconds=600, composite=since_ok) == (
        "the alarm has been OK since 2026-11-29T11:59:30+00:00, after this event's change at "
        "2026-11-29T11:59:00+00:00: that episode is over"
    )
    # OK since before the event (the event is newer than what we read): act.
    before = CompositeNow("OK", datetime(2026, 11, 29, 11, 58, tzinfo=UTC))
    assert stale_event_reason(fresh, now=now, max_age_seconds=600, composite=before) is None
    undated = parse_alarm_message(json.dumps({"AlarmName": "a", "NewStateValue": "ALARM"}))
    assert undated == AlarmNotification("a", "ALARM", "", "", "", "")
    assert stale_event_reason(undated, now=now, max_age_seconds=60, composite=since_ok) is None
    # Without StateChangeTime, the SNS delivery's timestamp dates the event.
    published = parse_alarm_message(json.dumps({"AlarmName": "a", "NewStateValue": "ALARM"}),
                                    "2026-11-29T11:00:00.000Z")  # fmt: skip
    assert published == AlarmNotification("a", "ALARM", "", "", "", "2026-11-29T11:00:00.000Z")
    assert "beyond the maximum" in str(stale_event_reason(published, now=now, max_age_seconds=60,
                                                          composite=None))  # fmt: skip


def test_alarm_message_parsing():
    parsed = parse_alarm_message(
        json.dumps({"AlarmName": "a", "NewStateValue": "ALARM", "OldStateValue": "OK"})
    )
    assert parsed is not None and (parsed.alarm_name, parsed.new_state) == ("a", "ALARM")
    assert parse_alarm_message("not json") is None
    assert parse_alarm_message("[1, 2]") is None
    assert parse_alarm_message({"AlarmName": "a"}) is None


def test_times_in_every_format_the_trail_and_cloudwatch_write():
    expected = datetime(2026, 11, 29, 21, 30, tzinfo=UTC)
    for text in ("2026-11-29T21:30:00.000+0000", "2026-11-29T21:30:00.000000Z",
                 "2026-11-29T21:30:00", expected):  # fmt: skip
        assert parse_time(text) == expected
    assert parse_time("") is None and parse_time(None) is None and parse_time("soon") is None


# --------------------------------------------------------------------------- answer


def test_what_route53_answers_with_legacy_down():
    """Weights 100/0 and every legacy address down: Route 53 answers aws (#2)."""
    down = effective_answer(Weights(100, 0), legacy_healthy=False, aws_healthy=True,
                            aws_evaluates_target=True)  # fmt: skip
    assert (float(down.legacy_share), float(down.aws_share)) == (0.0, 1.0)
    assert down.legacy_down_sends_to_aws
    assert down.describe() == (
        "Route 53 answers legacy 0% / aws 100%: every legacy address is unhealthy, so Route 53 "
        "answers with the weight-0 aws record"
    )
    up = effective_answer(Weights(100, 0), legacy_healthy=True, aws_healthy=False,
                          aws_evaluates_target=True)  # fmt: skip
    assert (float(up.legacy_share), up.legacy_down_sends_to_aws) == (1.0, False)
    unknown = effective_answer(Weights(90, 10), legacy_healthy=None, aws_healthy=True,
                               aws_evaluates_target=True)  # fmt: skip
    assert unknown.describe() == (
        "Route 53 answers legacy 90% / aws 10% (health of legacy unreadable: assumed healthy)"
    )


# --------------------------------------------------------------------------- clock


def test_server_clock_follows_aws_when_the_local_clock_is_off():
    local = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    clock = ServerClock(lambda: local)
    clock.observe("Sun, 29 Nov 2026 12:00:01 GMT")  # within the skew: trust the local clock
    assert clock.now() == local
    clock.observe("Sun, 29 Nov 2026 12:05:00 GMT")  # 5 min ahead: follow AWS
    assert clock.now() == datetime(2026, 11, 29, 12, 5, tzinfo=UTC)
    clock.observe("not a date")
    assert clock.now() == datetime(2026, 11, 29, 12, 5, tzinfo=UTC)


# --------------------------------------------------------------------------- config


def _with(text: str, section: str) -> str:
    return text + "\n" + section


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "controller:\n  dwell_minutes: {20: 5}\n",
            "controller.dwell_minutes: [20] not among migration.phases [0, 10, 50, 100]",
        ),
        (
            "controller:\n  route53_insync_timeout_seconds: 60\n  lock_ttl_seconds: 100\n",
            "lock_ttl_seconds 100 must be at least twice route53_insync_timeout_seconds (60)",
        ),
        ("controller:\n  stable_alias: red\n", "controller.stable_alias"),
    ],
)
def test_controller_config_errors_name_the_field(section, message):
    base = (REPO / "config" / "prod.yaml").read_text().split("\ncontroller:")[0]
    with pytest.raises(ConfigError, match=r"prod\.yaml") as error:
        parse_config(_with(base, section), Path("prod.yaml"))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"period_seconds": 10}, "period_seconds 10 needs a high-resolution metric"),
        ({"period_seconds": 90}, "period_seconds must be 10, 30 or a multiple of 60, got 90"),
        ({"datapoints_to_alarm": 4}, "datapoints_to_alarm 4 exceeds evaluation_periods 3"),
    ],
)
def test_alarm_settings_follow_cloudwatch_rules(change, message):
    values = {"threshold": 1, "evaluation_periods": 3, "missing_data_reason": "explained here"}
    with pytest.raises(ValueError, match=message):
        AlarmSettings(**{**values, **change})
    assert AlarmSettings(**values, period_seconds=30, high_resolution=True).period_seconds == 30


def test_every_alarm_needs_settings(prod_config: PaymigConfig):
    data = prod_config.model_dump(mode="json")
    del data["observability"]["alarms"]["replica-lag"]
    with pytest.raises(ConfigError, match="settings missing for alarm\\(s\\): replica-lag"):
        parse_config(json.dumps(data), Path("x.yaml"))


# --------------------------------------------------------------------------- small parts


def test_backoff_is_bounded_full_jitter():
    rng = random.Random(7)
    delays = [backoff_delay(n, base=0.2, cap=5.0, rng=rng) for n in range(10)]
    for n, delay in enumerate(delays):
        assert 0 <= delay <= min(5.0, 0.2 * 2**n)
    assert len(set(delays)) == 10  # jittered, not a fixed ladder
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(-1, base=0.2, cap=5.0, rng=rng)


def test_throttling_and_connection_failures_are_retried_nothing_else():
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    from paymig.runtime.controller.calls import is_retryable

    def client_error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": "m"}}, "ChangeResourceRecordSets")

    retried = [
        EndpointConnectionError(endpoint_url="https://route53.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://route53.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://route53.amazonaws.com"),
        client_error("Throttling"),
        client_error("PriorRequestNotComplete"),
        client_error("ServiceUnavailable"),
    ]
    assert all(is_retryable(e) for e in retried)
    assert not any(is_retryable(client_error(c)) for c in ("AccessDenied", "InvalidChangeBatch"))


def test_retries_stop_at_the_deadline():
    from botocore.exceptions import EndpointConnectionError

    from paymig.runtime.controller.calls import Retrier

    clock = [0.0]
    attempts: list[float] = []

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    def failing() -> None:
        attempts.append(clock[0])
        clock[0] += 1.0  # each attempt takes a second
        raise EndpointConnectionError(endpoint_url="https://route53.amazonaws.com")

    retrier = Retrier(base_delay=0.5, max_delay=2.0, rng=random.Random(3), sleep=sleep,
                      clock=lambda: clock[0])  # fmt: skip
    with pytest.raises(EndpointConnectionError):
        retrier.call(failing, deadline=20.0)
    # Every attempt started early enough to end (7 s per attempt) by the deadline.
    assert len(attempts) > 1 and all(t + 7 <= 20.0 for t in attempts[1:])
    assert retrier.retries == len(attempts) - 1


def test_token_bucket_keeps_five_per_second():
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    bucket = TokenBucket(5, 5, clock=lambda: clock[0], sleep=sleep)
    waits = [bucket.acquire() for _ in range(7)]
    assert waits[:5] == [0.0] * 5
    assert waits[5:] == pytest.approx([0.2, 0.2])
    assert clock[0] == pytest.approx(0.4)  # 7 calls took 0.4 s: at most 5 per second
    clock[0] += 10  # idle: refills to capacity, not beyond
    assert [bucket.acquire() for _ in range(6)][-1] == pytest.approx(0.2)
    with pytest.raises(ValueError):
        TokenBucket(0, 5)


def test_lambda_code_imports_without_pydantic_or_yaml():
    """The rollback function's package needs boto3 and this repository's light modules only."""
    code = (
        "import sys, paymig.lambdas.rollback as r; "
        "print(sorted(m for m in ('pydantic', 'yaml', 'typer', 'rich') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "[]"


def test_the_rollback_package_holds_everything_the_handler_imports():
    """`lambdas.rollback.PACKAGE_MODULES` (what infra packages) covers the import closure."""
    from paymig.lambdas.rollback import PACKAGE_MODULES

    code = (
        "import sys, paymig.lambdas.rollback; "
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('paymig'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    for module in out.stdout.split():
        path = module.removeprefix("paymig.").replace(".", "/")
        covered = any(
            path == entry.removesuffix(".py").removesuffix("/__init__")
            or path.startswith(entry + "/")
            or (entry.endswith("/__init__.py") and path == entry.removesuffix("/__init__.py"))
            for entry in PACKAGE_MODULES
        )
        assert covered or module == "paymig", f"{module} is imported but not packaged"


def test_the_validation_function_does_not_need_the_semantics_package():
    """Its package (infra.automation.VALIDATION_MODULES) holds runtime/controller only."""
    code = (
        "import sys, paymig.lambdas.validation; "
        "print(sorted(m for m in sys.modules if m.startswith('paymig.semantics')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "[]"


def test_operator_policy_in_the_docs_is_the_generated_one():
    """docs/controller.md carries the policy `permissions` generates (regenerate: see it)."""
    from paymig.runtime.controller.permissions import BEGIN, COMMANDS, END, PERMISSIONS, refresh

    text = (REPO / "docs" / "controller.md").read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    assert refresh(text) == text, (
        "run: python -m paymig.runtime.controller.permissions docs/controller.md"
    )
    assert {a for actions in COMMANDS.values() for a in actions} <= set(PERMISSIONS)
    for action in ("dms:DescribeReplicationTasks", "dms:DescribeTableStatistics",
                   "lambda:GetFunction", "sns:ListSubscriptionsByTopic"):  # fmt: skip
        assert f"`{action}`" in text


def test_names_reject_unknown_alias_and_metric():
    from paymig.naming import alarm_name, target_group_name

    assert target_group_name(STACK, "green") == "paymig-prod-green"
    assert alarm_name(STACK, "cdc-latency") == "paymig-prod-cdc-latency"
    with pytest.raises(ValueError, match="alias must be one of"):
        target_group_name(STACK, "red")
    with pytest.raises(ValueError, match="metric must be one of"):
        alarm_name(STACK, "cpu")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS: 'soon' is not a number"),
        ("-5", "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS: must be positive, got -5"),
    ],
)
def test_lambda_settings_from_env_reject_bad_numbers(value, message):
    from paymig.lambdas.rollback import settings_from_env

    env = {
        "PAYMIG_STACK_NAME": STACK,
        "PAYMIG_ENVIRONMENT": "prod",
        "PAYMIG_HOSTED_ZONE_ID": "Z1",
        "PAYMIG_RECORD_NAME": "api.payments.example.com",
    }
    assert settings_from_env(env).insync_timeout_seconds == 60.0
    with pytest.raises(Exception, match=message):
        settings_from_env({**env, "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS": value})


def test_notification_endpoints_are_validated(prod_config: PaymigConfig):
    data = prod_config.model_dump(mode="json")
    data["observability"]["notification_https_endpoints"] = ["http://hooks.example.com/x"]
    with pytest.raises(ConfigError, match=r"observability\.notification_https_endpoints\[0\]"):
        parse_config(json.dumps(data), Path("x.yaml"))
    data["observability"]["notification_https_endpoints"] = []
    data["observability"]["notification_emails"] = ["oncall"]
    with pytest.raises(ConfigError, match=r"observability\.notification_emails\[0\]"):
        parse_config(json.dumps(data), Path("x.yaml"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("0", 0.0),
        ("120", 120.0),
        ("soon", "PAYMIG_AUTOMATIC_FALLBACK_SECONDS: 'soon' is not a number"),
        ("-1", "PAYMIG_AUTOMATIC_FALLBACK_SECONDS: must be 0 or more, got -1"),
    ],
)
def test_lambda_reads_the_automatic_fallback_hold(value, expected):
    """Unset or empty: `automation.after_cutover: notify`; a number: `paymig watch` falls back."""
    from paymig.errors import PaymigError
    from paymig.lambdas.rollback import settings_from_env

    env = {
        "PAYMIG_STACK_NAME": STACK,
        "PAYMIG_ENVIRONMENT": "prod",
        "PAYMIG_HOSTED_ZONE_ID": "Z1",
        "PAYMIG_RECORD_NAME": "api.payments.example.com",
    }
    assert settings_from_env(env).automatic_fallback_seconds is None
    variables = {**env, "PAYMIG_AUTOMATIC_FALLBACK_SECONDS": value}
    if isinstance(expected, str):
        with pytest.raises(PaymigError) as error:
            settings_from_env(variables)
        assert str(error.value) == expected
    else:
        assert settings_from_env(variables).automatic_fallback_seconds == expected
