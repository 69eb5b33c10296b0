"""The controller's actions: status, shift and rollback, shared by the CLI and the Lambda.

Each action gathers facts through :mod:`.aws`, lets :mod:`.core` decide, applies the
decision and records it in the audit trail, whatever the outcome. Shift and rollback run
under the audit table's lock; a rollback takes the lock over (it has priority) and a
shift confirms it still holds the lock immediately before changing anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from paymig.runtime.controller.aws import (
    AWS_ERRORS,
    SHELL_ERRORS,
    AwsCallError,
    CallerIdentity,
    ControllerAws,
    LockLease,
    WeightedRecords,
    describe_error,
    guarded,
)
from paymig.runtime.controller.core import (
    RESULT_FAILED,
    RESULT_NO_CHANGE,
    RESULT_REFUSED,
    RESULT_SUCCEEDED,
    RESULT_UNCONFIRMED,
    ROLLED_BACK,
    ChangeNotInSyncError,
    ControllerRefusedError,
    ControllerSettings,
    Gate,
    GateFacts,
    LockHeldError,
    PhaseState,
    RollbackPlan,
    RollbackSettings,
    ShiftPlan,
    Weights,
    evaluate_gates,
    failed_gates,
    phase_from_events,
    plan_rollback,
    plan_shift,
    refusal_for,
    utc_now,
)

LOG = logging.getLogger("paymig.controller")

Clock = Callable[[], datetime]


def _weights_dict(weights: Weights | None) -> dict[str, int] | None:
    """Weights as a JSON object."""
    return None if weights is None else {"legacy": weights.legacy, "aws": weights.aws}


def _record(aws: ControllerAws, now: Clock, event: dict[str, Any]) -> dict[str, Any]:
    """Append an event to the audit trail and log it."""
    stored = aws.audit.record_event(event, now())
    LOG.info("audit %s", stored)
    return stored


def _record_failure(aws: ControllerAws, now: Clock, event: dict[str, Any], exc: Exception) -> None:
    """Best-effort record of a failed action; never hides the original error."""
    try:
        _record(aws, now, {**event, "result": RESULT_FAILED, "detail": describe_error(exc)})
    except AWS_ERRORS as record_exc:  # pragma: no cover - the table itself is unreachable
        LOG.error("could not record failure: %s", describe_error(record_exc))


# --------------------------------------------------------------------------- gates


def gather_facts(
    aws: ControllerAws, settings: ControllerSettings, now: datetime, entered_at: datetime | None
) -> GateFacts:
    """Observe what the gates need; a failed observation is kept as an error, not a pass."""
    facts = GateFacts(now=now, phase_entered_at=entered_at)
    try:
        facts = replace(facts, alarm_states=aws.metrics.alarm_states())
    except AWS_ERRORS as exc:
        facts = replace(facts, alarms_error=describe_error(exc))
    try:
        latest = aws.metrics.cdc_latency(now, settings.cdc_latency_lookback_seconds)
        if latest is not None:
            facts = replace(facts, cdc_latency_seconds=latest[0], cdc_latency_at=latest[1])
    except AWS_ERRORS as exc:
        facts = replace(facts, cdc_error=describe_error(exc))
    try:
        facts = replace(facts, validation=aws.audit.latest_validation())
    except AWS_ERRORS as exc:
        facts = replace(facts, validation_error=describe_error(exc))
    return facts


def _recheck_alarms(
    aws: ControllerAws, settings: ControllerSettings, facts: GateFacts, current: int
) -> list[Gate]:
    """Re-read the alarms (the fastest-moving facts) and evaluate every gate again."""
    try:
        fresh = replace(facts, alarm_states=aws.metrics.alarm_states(), alarms_error=None)
    except AWS_ERRORS as exc:
        fresh = replace(facts, alarms_error=describe_error(exc))
    return evaluate_gates(settings, fresh, current)


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class StatusReport:
    """What `paymig status` shows."""

    phase: PhaseState
    weights: Weights
    listener: Mapping[str, int] | None
    listener_error: str | None
    gates: list[Gate]
    events: list[dict[str, Any]]
    lock: dict[str, Any] | None
    #: DMS per-table progress, as published for the dashboard (None: no task yet).
    table_statistics: dict[str, float] | None = None
    table_statistics_error: str | None = None

    @property
    def drift(self) -> str | None:
        """A note when the live weights disagree with the recorded phase."""
        live = self.weights.aws_percent
        if live != self.phase.phase:
            return (
                f"live weights ({self.weights.describe()}) disagree with the recorded phase "
                f"{self.phase.phase}%"
            )
        return None


def status(
    aws: ControllerAws, settings: ControllerSettings, *, events: int = 10, now: Clock = utc_now
) -> StatusReport:
    """Read the phase, live weights, gates and the latest events (read-only)."""
    weights = guarded("Route 53 weighted records", lambda: aws.route53.read().weights)
    history = guarded("audit trail", aws.audit.events)
    state = phase_from_events(history, settings.initial_phase)
    listener: dict[str, int] | None = None
    listener_error = None
    try:
        listener = aws.listener.read()
    except SHELL_ERRORS as exc:
        listener_error = describe_error(exc)
    facts = gather_facts(aws, settings, now(), state.entered_at)
    table_statistics: dict[str, float] | None = None
    table_statistics_error = None
    try:
        table_statistics = aws.metrics.publish_table_statistics()
    except SHELL_ERRORS as exc:
        table_statistics_error = describe_error(exc)
    return StatusReport(
        phase=state,
        weights=weights,
        listener=listener,
        listener_error=listener_error,
        gates=evaluate_gates(settings, facts, state.phase),
        events=list(reversed(history[-events:])) if events > 0 else [],
        lock=guarded("audit lock", aws.audit.current_lock),
        table_statistics=table_statistics,
        table_statistics_error=table_statistics_error,
    )


# --------------------------------------------------------------------------- shift


@dataclass
class ShiftOutcome:
    """What a shift did."""

    result: str
    from_phase: int
    to_phase: int
    weights: Weights
    gates: list[Gate] = field(default_factory=list)
    change_id: str | None = None
    insync_seconds: float | None = None
    detail: str = ""


def shift(
    aws: ControllerAws,
    settings: ControllerSettings,
    *,
    target: int,
    reason: str,
    force: bool = False,
    source: str = "cli",
    now: Clock = utc_now,
) -> ShiftOutcome:
    """Shift traffic to `target` percent on AWS, gated, locked and audited.

    Raises :class:`ControllerRefusedError` (exit 1) naming every reason when refused, and
    :class:`ChangeNotInSyncError` when the change is submitted but not INSYNC in time;
    both are recorded before they are raised.
    """
    rb = settings.rollback
    identity: CallerIdentity = guarded("STS GetCallerIdentity", aws.identity)
    event: dict[str, Any] = {
        "actor": identity.arn,
        "action": "shift",
        "source": source,
        "to_phase": target,
        "reason": reason,
        "forced": force,
    }
    try:
        lease = aws.audit.acquire_lock(
            identity.arn, f"shift to {target}%", now(), rb.lock_ttl_seconds
        )
    except LockHeldError as refusal:
        _record(aws, now, {**event, "result": RESULT_REFUSED, "detail": str(refusal)})
        raise
    except AWS_ERRORS as exc:
        raise AwsCallError(f"audit lock: {describe_error(exc)}") from None
    try:
        return _shift_locked(aws, settings, lease, event, target=target, force=force, now=now)
    finally:
        try:
            aws.audit.release_lock(lease)
        except AWS_ERRORS as exc:  # pragma: no cover - the lock then expires by its TTL
            LOG.error("could not release the lock: %s", describe_error(exc))


def _shift_locked(
    aws: ControllerAws,
    settings: ControllerSettings,
    lease: LockLease,
    event: dict[str, Any],
    *,
    target: int,
    force: bool,
    now: Clock,
) -> ShiftOutcome:
    """Run the body of a shift while holding the lock: read, plan, gate, then apply."""
    try:
        records = aws.route53.read()
        live = records.weights
        state = phase_from_events(aws.audit.events(), settings.initial_phase)
    except SHELL_ERRORS as exc:
        _record_failure(aws, now, event, exc)
        raise AwsCallError(f"shift: {describe_error(exc)}") from None
    event = {**event, "from_phase": live.aws_percent, "weights_before": _weights_dict(live)}
    try:
        plan = plan_shift(
            settings.phases, live, state.phase, target, force=force, reason=event["reason"]
        )
    except ControllerRefusedError as exc:
        _record(aws, now, {**event, "result": RESULT_REFUSED, "detail": str(exc)})
        raise
    event = {**event, "from_phase": plan.from_phase, "forced": plan.forced}
    if plan.forced:
        event["detail"] = "forced: " + "; ".join(plan.notes)
    if not plan.changes_anything:
        detail = f"already at {target}% ({live.describe()}); nothing changed"
        _record(aws, now, {**event, "result": RESULT_NO_CHANGE, "detail": detail})
        return ShiftOutcome(RESULT_NO_CHANGE, plan.from_phase, target, live, detail=detail)

    facts = gather_facts(aws, settings, now(), state.entered_at)
    gates = evaluate_gates(settings, facts, plan.from_phase)
    # Immediately before the change: alarms re-read, so one that flipped meanwhile counts.
    if refusal_for(gates) is None:
        gates = _recheck_alarms(aws, settings, facts, plan.from_phase)
    refusal = refusal_for(gates)
    if refusal is not None:
        failed = [g.name for g in failed_gates(gates)]
        _record(
            aws,
            now,
            {**event, "result": RESULT_REFUSED, "detail": str(refusal), "failed_gates": failed},
        )
        raise refusal
    if not aws.audit.confirm_lock(lease, now(), settings.rollback.lock_ttl_seconds):
        taken = LockHeldError(["the lock was taken over (a rollback?) before the change"])
        _record(aws, now, {**event, "result": RESULT_REFUSED, "detail": str(taken)})
        raise taken
    outcome = _apply_shift(aws, settings, records, plan, event, now=now)
    outcome.gates = gates
    return outcome


def _apply_shift(
    aws: ControllerAws,
    settings: ControllerSettings,
    records: WeightedRecords,
    plan: ShiftPlan,
    event: dict[str, Any],
    *,
    now: Clock,
) -> ShiftOutcome:
    """Change the weights, wait for INSYNC, publish the split and record the result."""
    live = records.weights
    comment = f"paymig shift {plan.from_phase}% -> {plan.to_phase}%: {event['reason']}"
    try:
        change_id = aws.route53.change(records, plan.weights, comment)
    except AWS_ERRORS as exc:
        _record_failure(aws, now, event, exc)
        raise AwsCallError(f"Route 53 change: {describe_error(exc)}") from None
    event = {**event, "change_id": change_id, "weights_after": _weights_dict(plan.weights)}
    try:
        waited = aws.route53.wait_insync(change_id, settings.rollback.insync_timeout_seconds)
    except ChangeNotInSyncError as exc:
        _publish_weights(aws, plan.weights)
        _record(aws, now, {**event, "result": RESULT_UNCONFIRMED, "detail": str(exc)})
        raise
    _publish_weights(aws, plan.weights)
    detail = f"{live.describe()} -> {plan.weights.describe()}, INSYNC after {waited:.1f} s"
    if plan.forced:
        detail = f"{event['detail']}; {detail}"
    _record(aws, now, {**event, "result": RESULT_SUCCEEDED, "detail": detail})
    return ShiftOutcome(
        RESULT_SUCCEEDED,
        plan.from_phase,
        plan.to_phase,
        plan.weights,
        change_id=change_id,
        insync_seconds=waited,
        detail=detail,
    )


def _publish_weights(aws: ControllerAws, weights: Weights) -> None:
    """Publish the traffic-split metric; a failure is logged, never fatal."""
    try:
        aws.metrics.publish_weights(weights)
    except AWS_ERRORS as exc:
        LOG.warning("could not publish the traffic weights: %s", describe_error(exc))


# --------------------------------------------------------------------------- rollback


@dataclass
class RollbackOutcome:
    """What a rollback did."""

    result: str
    plan: RollbackPlan
    detail: str
    change_id: str | None = None
    insync_seconds: float | None = None
    notification_id: str | None = None
    preempted: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form (Lambda result, `--format json`)."""
        return {
            "result": self.result,
            "detail": self.detail,
            "already_rolled_back": self.plan.already_rolled_back,
            "weights_before": _weights_dict(self.plan.live),
            "weights_after": _weights_dict(self.plan.route53 or self.plan.live),
            "listener_before": dict(self.plan.live_listener),
            "listener_after": dict(self.plan.listener or self.plan.live_listener),
            "change_id": self.change_id,
            "insync_seconds": self.insync_seconds,
            "notification_id": self.notification_id,
        }


def rollback(
    aws: ControllerAws,
    settings: RollbackSettings,
    *,
    reason: str,
    source: str = "cli",
    trigger: Mapping[str, Any] | None = None,
    now: Clock = utc_now,
) -> RollbackOutcome:
    """Roll back: listener to the stable alias, Route 53 to legacy 100 / aws 0, INSYNC.

    Idempotent: when already rolled back nothing changes, and the event and the
    notification say so. The rollback takes the lock over from a shift in progress.
    """
    if not reason.strip():
        raise ControllerRefusedError(["--reason: a reason is required and must not be blank"])
    identity: CallerIdentity = guarded("STS GetCallerIdentity", aws.identity)
    notifier = aws.notifier(identity)
    event: dict[str, Any] = {
        "actor": identity.arn,
        "action": "rollback",
        "source": source,
        "to_phase": 0,
        "reason": reason,
        "forced": False,
    }
    if trigger:
        event["trigger"] = dict(trigger)
    lease = guarded(
        "audit lock",
        lambda: aws.audit.take_over_lock(
            identity.arn, "rollback", now(), settings.lock_ttl_seconds
        ),
    )
    if lease.preempted is not None:
        event["preempted"] = {k: lease.preempted.get(k) for k in ("holder", "action")}
    try:
        outcome = _rollback_locked(aws, settings, event, now)
    except SHELL_ERRORS as exc:
        _record_failure(aws, now, event, exc)
        _notify(
            notifier, "FAILED", {**event, "result": RESULT_FAILED, "detail": describe_error(exc)}
        )
        raise AwsCallError(f"rollback: {describe_error(exc)}") from None
    except ChangeNotInSyncError as exc:
        _notify(
            notifier, "UNCONFIRMED", {**event, "result": RESULT_UNCONFIRMED, "detail": str(exc)}
        )
        raise
    finally:
        try:
            aws.audit.release_lock(lease)
        except AWS_ERRORS as exc:  # pragma: no cover - the lock then expires by its TTL
            LOG.error("could not release the lock: %s", describe_error(exc))
    outcome.preempted = lease.preempted
    outcome.notification_id = _notify(
        notifier, outcome.result.upper(), {**event, **outcome.as_dict()}
    )
    return outcome


def _rollback_locked(
    aws: ControllerAws, settings: RollbackSettings, event: dict[str, Any], now: Clock
) -> RollbackOutcome:
    """The body of a rollback, run while holding the lock."""
    records = aws.route53.read()
    live_listener = aws.listener.read()
    plan = plan_rollback(records.weights, live_listener, settings.stable_alias)
    event.update(
        from_phase=records.weights.aws_percent,
        weights_before=_weights_dict(records.weights),
        listener_before=dict(live_listener),
    )
    if plan.already_rolled_back:
        detail = plan.describe()
        _publish_weights(aws, records.weights)
        _record(aws, now, {**event, "result": RESULT_NO_CHANGE, "detail": detail})
        return RollbackOutcome(RESULT_NO_CHANGE, plan, detail)
    if plan.listener is not None:
        aws.listener.set(plan.listener)
    event.update(
        weights_after=_weights_dict(plan.route53 or records.weights),
        listener_after=dict(plan.listener or live_listener),
    )
    change_id: str | None = None
    waited: float | None = None
    notes = ""
    if plan.route53 is not None:
        change_id, waited = _rollback_route53(aws, settings, records, event, now)
        # A shift that confirmed its lock just before the take-over may land its change
        # during the INSYNC wait: verify, and re-apply once if the weights moved again.
        again = aws.route53.read()
        if again.weights != ROLLED_BACK:
            notes = f"; weights moved to {again.weights.describe()} meanwhile: re-applied"
            change_id, more = _rollback_route53(aws, settings, again, event, now)
            waited += more
    _publish_weights(aws, ROLLED_BACK)
    detail = plan.describe() + notes
    detail += f"; INSYNC after {waited:.1f} s" if waited is not None else ""
    _record(aws, now, {**event, "result": RESULT_SUCCEEDED, "detail": detail})
    return RollbackOutcome(RESULT_SUCCEEDED, plan, detail, change_id, waited)


def _rollback_route53(
    aws: ControllerAws,
    settings: RollbackSettings,
    records: WeightedRecords,
    event: dict[str, Any],
    now: Clock,
) -> tuple[str, float]:
    """Set legacy 100 / aws 0 and wait for INSYNC; record and re-raise if it is not."""
    change_id = aws.route53.change(records, ROLLED_BACK, f"paymig rollback: {event['reason']}")
    event["change_id"] = change_id
    try:
        waited = aws.route53.wait_insync(change_id, settings.insync_timeout_seconds)
    except ChangeNotInSyncError as exc:
        _publish_weights(aws, ROLLED_BACK)
        _record(aws, now, {**event, "result": RESULT_UNCONFIRMED, "detail": str(exc)})
        raise
    return change_id, waited


def _notify(notifier: Any, headline: str, message: Mapping[str, Any]) -> str | None:
    """Publish the rollback's outcome; a failure is logged, never hides the outcome."""
    try:
        message_id: str = notifier.publish(
            f"paymig rollback {headline}: {message.get('detail', '')}", message, "rollback"
        )
    except AWS_ERRORS as exc:
        LOG.error("could not publish the rollback notification: %s", describe_error(exc))
        return None
    return message_id
