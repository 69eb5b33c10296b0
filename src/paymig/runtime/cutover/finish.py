"""`paymig finish`: the end of the migration, decided at run time, done by configuration.

Finishing stores the stage ``complete`` (a conditional write on the version read); the
operator then sets ``migration.stage: finished``, whose plan removes DMS and the legacy
record (the stack's guard fails that plan until the stage is ``complete``). Refused,
with every reason named, unless:

* ``stage``: the stored stage is ``cut-over`` with no cutover or fallback under way;
* ``cut-over-hold``: it has held for ``migration.finish_after_hours`` on AWS's clock. A
  fallback stores ``replicating`` and the next cutover a new ``since``, so a fallback
  during the hold restarts it;
* ``traffic``: Route 53 sends everything to AWS (legacy 0 / aws 100), so removing the
  legacy record changes no client's answer;
* the gates that still mean something after the cutover: every alarm but the
  replication ones (they go with the DMS tasks they watch), a fresh consistent
  validation (source kept by the reverse replication against Aurora) that was checked
  after the cutover, and no rollback unacknowledged. The dwell, CDC-latency and armed
  gates are about moving traffic to legacy, which the finish removes; they do not apply.

No lock is taken: the stage write is conditional, so a fallback that began in between
(it moves the stage first) makes the finish fail with nothing written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from paymig.naming import REPLICATION_ALARM_METRICS
from paymig.runtime.controller.aws import CallerIdentity, ControllerAws
from paymig.runtime.controller.calls import AWS_ERRORS, SHELL_ERRORS, describe_error, guarded
from paymig.runtime.controller.core import (
    RESULT_REFUSED,
    RESULT_SUCCEEDED,
    ControllerRefusedError,
    ControllerSettings,
    IncompleteActionError,
    Weights,
    parse_time,
)
from paymig.runtime.controller.gates import (
    GATE_HOLD,
    GATE_VALIDATION,
    Gate,
    GateFacts,
    evaluate_gates,
)
from paymig.runtime.controller.replay import hold_from_events
from paymig.runtime.controller.stage import StageConflictError, StageRecord

ACTION_FINISH = "finish"

#: Preconditions of their own (the gates keep theirs: `alarm:...`, `validation`, ...).
CHECK_STAGE = "stage"
CHECK_HOLD = "cut-over-hold"
CHECK_TRAFFIC = "traffic"
CHECK_AFTER_CUTOVER = "validation-after-cutover"

ALL_ON_AWS = Weights(legacy=0, aws=100)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class FinishSettings:
    """The controller's settings and how long ``cut-over`` must hold."""

    controller: ControllerSettings
    hold: timedelta

    @classmethod
    def from_config(cls, config: Any) -> FinishSettings:
        """From one environment's config (``migration.finish_after_hours``)."""
        return cls(
            controller=ControllerSettings.from_config(config),
            hold=timedelta(hours=config.migration.finish_after_hours),
        )


@dataclass(frozen=True)
class FinishOutcome:
    """What a finish did: ``succeeded`` (stage moved) or ``no-change`` (already complete)."""

    result: str
    stage: StageRecord
    detail: str


def applicable_gates(settings: ControllerSettings, facts: GateFacts) -> list[Gate]:
    """The shift gates that still mean something after the cutover (see the module)."""
    dropped = {f"alarm:{m}" for m in REPLICATION_ALARM_METRICS}
    keep = {GATE_VALIDATION, GATE_HOLD}
    return [
        g
        for g in evaluate_gates(settings, facts, None)
        if (g.name.startswith("alarm:") and g.name not in dropped) or g.name in keep
    ]


def stage_problems(record: StageRecord, hold: timedelta, now: datetime) -> list[str]:
    """The stage and hold preconditions that fail (empty: both pass)."""
    if record.stored != "cut-over":
        return [
            f"{CHECK_STAGE}: the stored stage is {record.stored}, not cut-over "
            "(finish only after `paymig cutover` has moved the writes to Aurora)"
        ]
    if record.operation is not None:
        return [f"{CHECK_STAGE}: a {record.operation} is under way since {record.since}"]
    since = parse_time(record.since)
    if since is None:
        return [f"{CHECK_HOLD}: the stage item has no valid since ({record.since!r})"]
    held = now - since
    if held < hold:
        left = (hold - held).total_seconds() / 3600
        return [
            f"{CHECK_HOLD}: cut over since {since.isoformat()}, held "
            f"{held.total_seconds() / 3600:.1f} h of {hold.total_seconds() / 3600:g} h "
            f"(migration.finish_after_hours; {left:.1f} h left)"
        ]
    return []


def traffic_problem(weights: Weights) -> str | None:
    """Route 53 must already send every client to AWS."""
    if weights == ALL_ON_AWS:
        return None
    return (
        f"{CHECK_TRAFFIC}: Route 53 weights are {weights.describe()}, not "
        f"{ALL_ON_AWS.describe()}; removing the legacy record would move clients"
    )


def validation_after_cutover(record: StageRecord, validation: Any) -> str | None:
    """The latest validation must be newer than the cutover (it proves the way back)."""
    checked = parse_time((validation or {}).get("checked_at"))
    since = parse_time(record.since)
    if checked is None or since is None or checked <= since:
        at = checked.isoformat() if checked else "none"
        return (
            f"{CHECK_AFTER_CUTOVER}: the latest validation ({at}) is not newer than the "
            f"cutover ({record.since}); run one after the cutover"
        )
    return None


def _facts(aws: ControllerAws, now: datetime, history: list[dict[str, Any]]) -> GateFacts:
    """Alarms, the latest validation and the rollback hold; a failed read fails its gate."""
    facts = GateFacts(now=now, hold=hold_from_events(history))
    try:
        facts = replace(facts, alarm_states=aws.metrics.alarm_states())
    except AWS_ERRORS as exc:
        facts = replace(facts, alarms_error=describe_error(exc))
    try:
        facts = replace(facts, validation=aws.audit.latest_validation())
    except AWS_ERRORS as exc:
        facts = replace(facts, validation_error=describe_error(exc))
    return facts


def check(aws: ControllerAws, settings: FinishSettings, record: StageRecord) -> list[str]:
    """Every precondition that fails for a stage that is not yet complete."""
    now = aws.clock.now()  # corrected by the stage read's answer
    problems = stage_problems(record, settings.hold, now)
    try:
        weights = aws.route53.read().weights
        problem = traffic_problem(weights)
        problems += [problem] if problem else []
    except SHELL_ERRORS as exc:
        problems.append(f"{CHECK_TRAFFIC}: cannot read the weighted records: {describe_error(exc)}")
    history = guarded("audit trail", aws.audit.events)
    facts = _facts(aws, now, history)
    problems += [
        f"gate {g.name} failed: {g.detail}"
        for g in applicable_gates(settings.controller, facts)
        if not g.ok
    ]
    if record.stored == "cut-over" and facts.validation_error is None:
        problem = validation_after_cutover(record, facts.validation)
        problems += [problem] if problem else []
    return problems


def finish(
    aws: ControllerAws, settings: FinishSettings, *, reason: str, source: str = "cli"
) -> FinishOutcome:
    """Store ``complete`` if every precondition passes; already complete changes nothing.

    Raises :class:`ControllerRefusedError` naming every failed precondition (recorded in
    the audit trail, best effort), and when another operator moved the stage in between.
    """
    if not reason.strip():
        raise ControllerRefusedError(["--reason: a reason is required and must not be blank"])
    record: StageRecord = guarded("migration stage", aws.stage.read)
    if record.stored == "complete":
        return FinishOutcome(
            "no-change",
            record,
            f"already complete since {record.since} (set by {record.actor}); nothing changed",
        )
    identity: CallerIdentity = guarded("STS GetCallerIdentity", aws.identity)
    event: dict[str, Any] = {
        "actor": identity.arn,
        "action": ACTION_FINISH,
        "source": source,
        "reason": reason,
        "stage_before": record.as_dict(),
    }
    problems = check(aws, settings, record)
    if problems:
        _refused(aws, event, problems)
        raise ControllerRefusedError(problems)
    try:
        moved = aws.stage.move(
            record, "complete", now=aws.clock.now(), actor=identity.arn, reason=reason
        )
    except StageConflictError as exc:
        _refused(aws, event, [str(exc)])
        raise ControllerRefusedError([str(exc)]) from None
    detail = f"stage cut-over (since {record.since}) -> complete"
    try:
        aws.audit.record_event(
            {**event, "result": RESULT_SUCCEEDED, "detail": detail, "stage_after": moved.as_dict()},
            aws.clock.now(),
        )
    except AWS_ERRORS as exc:
        raise IncompleteActionError(
            f"finish: the stage is complete (version {moved.version}) but its audit record "
            f"failed: {describe_error(exc)}; record it by hand with this reason"
        ) from None
    return FinishOutcome(RESULT_SUCCEEDED, moved, detail)


def _refused(aws: ControllerAws, event: dict[str, Any], problems: list[str]) -> None:
    """Record a refusal; a failed record does not hide the refusal's reasons."""
    with contextlib.suppress(*AWS_ERRORS):
        aws.audit.record_event(
            {**event, "result": RESULT_REFUSED, "detail": "; ".join(problems)}, aws.clock.now()
        )
