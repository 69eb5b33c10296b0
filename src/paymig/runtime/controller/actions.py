"""The operator's controller actions: status, shift, ack and progress.

Each gathers facts through the shell, lets the pure modules decide, applies the decision
and records it in the audit trail, whatever the outcome. A shift runs under the audit
table's lock and re-checks the alarms and the lock immediately before its Route 53
change; a rollback (:mod:`.rollback`) takes the lock over. `status` only reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from paymig.rollback_timing import (
    SHIFT_GATE_FRESHNESS_SECONDS,
)
from paymig.runtime.controller.answer import Answer, effective_answer
from paymig.runtime.controller.aws import CallerIdentity, ControllerAws
from paymig.runtime.controller.calls import (
    AWS_ERRORS,
    SHELL_ERRORS,
    AwsCallError,
    describe_error,
    guarded,
    is_retryable,
)
from paymig.runtime.controller.core import (
    RESULT_FAILED,
    RESULT_NO_CHANGE,
    RESULT_PREEMPTED,
    RESULT_RECORDED,
    RESULT_REFUSED,
    RESULT_SUCCEEDED,
    RESULT_UNCONFIRMED,
    ROLLED_BACK,
    ChangeNotInSyncError,
    ControllerRefusedError,
    ControllerSettings,
    IncompleteActionError,
    LockHeldError,
    ShiftPlan,
    Weights,
    backoff_delay,
    plan_shift,
)
from paymig.runtime.controller.gates import (
    Gate,
    GateFacts,
    evaluate_gates,
    failed_gates,
    refusal_for,
)
from paymig.runtime.controller.readiness import RollbackReadiness
from paymig.runtime.controller.replay import (
    ACTION_ACK,
    ACTION_SHIFT,
    PhaseState,
    RollbackHold,
    hold_from_events,
    live_phase_entered_at,
    phase_from_events,
    reconcile,
)
from paymig.runtime.controller.route53 import WeightedRecords
from paymig.runtime.controller.stage_rule import read_stage, shift_refusal

LOG = logging.getLogger("paymig.controller")

Clock = Callable[[], datetime]

#: Attempts a shift makes at its Route 53 change (each after checking alarms and lock).
SHIFT_ATTEMPTS = 4


def _record(aws: ControllerAws, now: Clock, event: dict[str, Any]) -> dict[str, Any]:
    """Append an event to the audit trail and log it."""
    stored = aws.audit.record_event(event, now())
    LOG.info("audit %s", stored)
    return stored


def _record_best_effort(aws: ControllerAws, now: Clock, event: dict[str, Any]) -> str | None:
    """Record an event; return the error in one line instead of raising it."""
    try:
        _record(aws, now, event)
    except AWS_ERRORS as exc:
        LOG.error("could not record %s: %s", event.get("result"), describe_error(exc))
        return describe_error(exc)
    return None


# --------------------------------------------------------------------------- facts


def _armed(aws: ControllerAws, identity: CallerIdentity | None) -> Any:
    """The rollback chain as AWS has it."""
    return RollbackReadiness(aws.metrics, aws.sns, aws.functions, aws.stack_name).read(
        aws.alarm_topic_arn(identity)
    )


def gather_facts(
    aws: ControllerAws,
    settings: ControllerSettings,
    now: datetime,
    *,
    entered_at: datetime | None,
    history: list[dict[str, Any]],
    identity: CallerIdentity | None,
) -> GateFacts:
    """Observe what the gates need; a failed observation is kept as an error, not a pass."""
    facts = GateFacts(now=now, phase_entered_at=entered_at, hold=hold_from_events(history))
    try:
        facts = replace(facts, alarm_states=aws.metrics.alarm_states())
    except AWS_ERRORS as exc:
        facts = replace(facts, alarms_error=describe_error(exc))
    try:
        facts = replace(facts, armed=_armed(aws, identity))
    except SHELL_ERRORS as exc:
        facts = replace(facts, armed_error=describe_error(exc))
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
    aws: ControllerAws, settings: ControllerSettings, facts: GateFacts, live: int | None
) -> list[Gate]:
    """Re-read the alarms (the fastest-moving facts) and evaluate every gate again."""
    try:
        fresh = replace(facts, alarm_states=aws.metrics.alarm_states(), alarms_error=None)
    except AWS_ERRORS as exc:
        fresh = replace(facts, alarms_error=describe_error(exc))
    return evaluate_gates(settings, fresh, live)


def read_answer(aws: ControllerAws, records: WeightedRecords) -> Answer:
    """What Route 53 answers now for these records (health checks read best effort)."""
    legacy = aws.route53.check_health(records.legacy.get("HealthCheckId"))
    aws_health = aws.route53.check_health(records.aws.get("HealthCheckId"))
    return effective_answer(
        records.weights,
        legacy_healthy=legacy.healthy,
        aws_healthy=aws_health.healthy,
        aws_evaluates_target=bool(records.aws.get("AliasTarget", {}).get("EvaluateTargetHealth")),
        detail=f"legacy: {legacy.detail}; aws: {aws_health.detail}",
    )


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class StatusReport:
    """What `paymig status` shows."""

    phase: PhaseState
    weights: Weights
    answer: Answer
    listener: Mapping[str, int] | None
    listener_error: str | None
    gates: list[Gate]
    events: list[dict[str, Any]]
    lock: dict[str, Any] | None
    hold: RollbackHold | None
    #: DMS per-table progress (None: no task yet); read only, `paymig progress` publishes.
    table_statistics: dict[str, float] | None = None
    table_statistics_error: str | None = None

    @property
    def drift(self) -> str | None:
        """A note when the live weights disagree with the recorded phase."""
        if self.weights.aws_percent != self.phase.phase:
            return (
                f"live weights ({self.weights.describe()}) disagree with the recorded phase "
                f"{self.phase.phase}%"
            )
        return None

    @property
    def held(self) -> Gate | None:
        """The hold gate, when it holds shifts."""
        gate = next((g for g in self.gates if g.name == "rollback-hold"), None)
        return gate if gate is not None and not gate.ok else None


def status(
    aws: ControllerAws, settings: ControllerSettings, *, events: int = 10, now: Clock | None = None
) -> StatusReport:
    """Read the phase, live weights and answer, gates and the latest events (read-only)."""
    clock = now or aws.clock.now
    records = guarded("Route 53 weighted records", aws.route53.read)
    history = guarded("audit trail", aws.audit.events)
    state = reconcile(phase_from_events(history, settings.initial_phase), history, records.weights)
    listener: dict[str, int] | None = None
    listener_error = None
    try:
        listener = aws.listener.read()
    except SHELL_ERRORS as exc:
        listener_error = describe_error(exc)
    identity = None
    try:
        identity = aws.identity()
    except AWS_ERRORS as exc:
        LOG.warning("STS GetCallerIdentity: %s", describe_error(exc))
    entered = live_phase_entered_at(state, records.weights)
    facts = gather_facts(
        aws, settings, clock(), entered_at=entered, history=history, identity=identity
    )
    table_statistics: dict[str, float] | None = None
    table_statistics_error = None
    try:
        table_statistics = aws.metrics.table_statistics()
    except SHELL_ERRORS as exc:
        table_statistics_error = describe_error(exc)
    return StatusReport(
        phase=state,
        weights=records.weights,
        answer=read_answer(aws, records),
        listener=listener,
        listener_error=listener_error,
        gates=evaluate_gates(settings, facts, records.weights.aws_percent),
        events=list(reversed(history[-events:])) if events > 0 else [],
        lock=guarded("audit lock", aws.audit.current_lock),
        hold=facts.hold,
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
    now: Clock | None = None,
) -> ShiftOutcome:
    """Shift traffic to `target` percent on AWS, gated, locked and audited.

    Raises :class:`ControllerRefusedError` (exit 1) naming every reason when refused,
    :class:`ChangeNotInSyncError` when the change is submitted but not INSYNC in time,
    and :class:`IncompleteActionError` when it changed but could not be recorded; each
    is recorded (as far as the table allows) before it is raised. A shift whose lock a
    rollback took over returns `preempted`.
    """
    clock = now or aws.clock.now
    identity: CallerIdentity = guarded("STS GetCallerIdentity", aws.identity)
    event: dict[str, Any] = {
        "actor": identity.arn,
        "action": ACTION_SHIFT,
        "source": source,
        "to_phase": target,
        "reason": reason,
        "forced": force,
    }
    try:
        lease = aws.audit.acquire_lock(
            identity.arn, f"shift to {target}%", clock(), settings.rollback.lock_ttl_seconds
        )
    except LockHeldError as refusal:
        _record_best_effort(aws, clock, {**event, "result": RESULT_REFUSED, "detail": str(refusal)})
        raise
    except AWS_ERRORS as exc:
        raise AwsCallError(f"audit lock: {describe_error(exc)}") from None
    run = _ShiftRun(aws, settings, lease, event, clock, identity)
    try:
        return run.execute(target=target, force=force)
    finally:
        try:
            aws.audit.release_lock(lease)
        except AWS_ERRORS as exc:  # the lock then expires by its TTL
            LOG.error("could not release the lock: %s", describe_error(exc))


@dataclass
class _ShiftRun:
    """One shift under its lock."""

    aws: ControllerAws
    settings: ControllerSettings
    lease: Any
    event: dict[str, Any]
    now: Clock
    identity: CallerIdentity
    mono: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def refuse(self, refusal: ControllerRefusedError, **extra: Any) -> ControllerRefusedError:
        """Record a refusal (best effort) and return it to raise."""
        _record_best_effort(
            self.aws,
            self.now,
            {**self.event, "result": RESULT_REFUSED, "detail": str(refusal), **extra},
        )
        return refusal

    def execute(self, *, target: int, force: bool) -> ShiftOutcome:
        """Read the stage, plan, gate, then apply."""
        # Under the lock: a cutover that takes the lock before moving the stage excludes us.
        reading = read_stage(self.aws.stage)
        refused = shift_refusal(reading, self.settings.rollback.environment)
        if refused is not None:
            raise self.refuse(ControllerRefusedError([refused]), stage=reading.as_dict())
        try:
            records = self.aws.route53.read()
            history = self.aws.audit.events()
        except SHELL_ERRORS as exc:
            _record_best_effort(
                self.aws,
                self.now,
                {**self.event, "result": RESULT_FAILED, "detail": describe_error(exc)},
            )
            raise AwsCallError(f"shift: {describe_error(exc)}") from None
        live = records.weights
        state = reconcile(phase_from_events(history, self.settings.initial_phase), history, live)
        self.event.update(from_phase=live.aws_percent, weights_before=live.as_dict())
        try:
            plan = plan_shift(
                self.settings.phases,
                live,
                state.phase,
                target,
                force=force,
                reason=self.event["reason"],
            )
        except ControllerRefusedError as refusal:
            raise self.refuse(refusal) from None
        self.event.update(from_phase=plan.from_phase, forced=plan.forced)
        if plan.forced:
            self.event["detail"] = "forced: " + "; ".join(plan.notes)
        if not plan.changes_anything:
            return self.no_change(plan, state, live)
        entered = live_phase_entered_at(state, live)
        facts = gather_facts(
            self.aws,
            self.settings,
            self.now(),
            entered_at=entered,
            history=history,
            identity=self.identity,
        )
        gates = evaluate_gates(self.settings, facts, live.aws_percent)
        gate_refusal = refusal_for(gates)
        if gate_refusal is not None:
            raise self.refuse(gate_refusal, failed_gates=[g.name for g in failed_gates(gates)])
        outcome = self.apply(records, plan, facts)
        outcome.gates = gates
        return outcome

    def no_change(self, plan: ShiftPlan, state: PhaseState, live: Weights) -> ShiftOutcome:
        """Nothing to change; a forced shift to the live phase records it."""
        if plan.reconciles:
            detail = (
                f"recorded the live phase {plan.to_phase}% ({live.describe()}); the trail said "
                f"{state.phase}%; nothing changed"
            )
            extra: dict[str, Any] = {"phase_after": plan.to_phase}
        else:
            detail = f"already at {plan.to_phase}% ({live.describe()}); nothing changed"
            extra = {}
        error = _record_best_effort(
            self.aws,
            self.now,
            {**self.event, "result": RESULT_NO_CHANGE, "detail": detail, **extra},
        )
        if error is not None:
            raise IncompleteActionError(f"shift: {detail}, but the audit record failed: {error}")
        return ShiftOutcome(RESULT_NO_CHANGE, plan.from_phase, plan.to_phase, live, detail=detail)

    def submit(self, records: WeightedRecords, plan: ShiftPlan, facts: GateFacts) -> str:
        """The change, each attempt just after fresh alarm gates and a confirmed lock."""
        comment = f"paymig shift {plan.from_phase}% -> {plan.to_phase}%: {self.event['reason']}"
        live = records.weights.aws_percent
        for attempt in range(SHIFT_ATTEMPTS):
            gates = _recheck_alarms(self.aws, self.settings, facts, live)
            refusal = refusal_for(gates)
            if refusal is not None:
                raise self.refuse(refusal, failed_gates=[g.name for g in failed_gates(gates)])
            checked = self.mono()
            if not self._confirm():
                taken = LockHeldError(["the lock was taken over (a rollback?) before the change"])
                raise self.refuse(taken)
            if self.mono() - checked > SHIFT_GATE_FRESHNESS_SECONDS:
                continue  # the reading is too old to act on: read again
            try:
                return self.aws.route53.change(records, plan.weights, comment)
            except AWS_ERRORS as exc:
                if not is_retryable(exc) or attempt == SHIFT_ATTEMPTS - 1:
                    _record_best_effort(
                        self.aws,
                        self.now,
                        {
                            **self.event,
                            "result": RESULT_FAILED,
                            "detail": f"nothing changed: {describe_error(exc)}",
                        },
                    )
                    raise AwsCallError(f"Route 53 change: {describe_error(exc)}") from None
                self.sleep(
                    backoff_delay(attempt, base=0.2, cap=2.0, rng=self.aws.route53.retrier.rng)
                )
        raise AwsCallError("Route 53 change: the gates could not be read fast enough")

    def _confirm(self) -> bool:
        """Extend the lease if still ours (one short attempt)."""
        try:
            return self.aws.audit_fast.confirm_lock(
                self.lease, self.now(), self.settings.rollback.lock_ttl_seconds
            )
        except AWS_ERRORS as exc:
            raise AwsCallError(f"audit lock: {describe_error(exc)}") from None

    def apply(self, records: WeightedRecords, plan: ShiftPlan, facts: GateFacts) -> ShiftOutcome:
        """Change the weights, check the lock again, wait for INSYNC, record."""
        change_id = self.submit(records, plan, facts)
        self.event.update(change_id=change_id, weights_after=plan.weights.as_dict())
        if not self._still_ours():
            return self.preempted(plan)
        try:
            waited = self.aws.route53.wait_insync(
                change_id, self.settings.rollback.insync_timeout_seconds
            )
        except ChangeNotInSyncError as exc:
            _publish_weights(self.aws, plan.weights)
            error = _record_best_effort(
                self.aws,
                self.now,
                {
                    **self.event,
                    "phase_after": plan.to_phase,
                    "result": RESULT_UNCONFIRMED,
                    "detail": str(exc),
                },
            )
            if error is not None:
                raise IncompleteActionError(
                    f"{exc}; the audit record failed too: {error}"
                ) from None
            raise
        _publish_weights(self.aws, plan.weights)
        detail = (
            f"{records.weights.describe()} -> {plan.weights.describe()}, "
            f"INSYNC after {waited:.1f} s"
        )
        if plan.forced:
            detail = f"{self.event['detail']}; {detail}"
        record = {
            **self.event,
            "result": RESULT_SUCCEEDED,
            "detail": detail,
            "phase_after": plan.to_phase,
        }
        error = _record_best_effort(self.aws, self.now, record)
        if error is not None:
            raise IncompleteActionError(
                f"shift {plan.from_phase}% -> {plan.to_phase}% succeeded ({detail}) but its audit "
                f"record failed: {error}; record the live phase with `paymig shift --to "
                f"{plan.to_phase} --force --reason ...`"
            )
        return ShiftOutcome(
            RESULT_SUCCEEDED,
            plan.from_phase,
            plan.to_phase,
            plan.weights,
            change_id=change_id,
            insync_seconds=waited,
            detail=detail,
        )

    def _still_ours(self) -> bool:
        """Whether the lock is still ours after the change landed (unknown counts as ours)."""
        try:
            return self.aws.audit_fast.confirm_lock(
                self.lease, self.now(), self.settings.rollback.lock_ttl_seconds
            )
        except AWS_ERRORS as exc:
            LOG.warning("could not confirm the lock after the change: %s", describe_error(exc))
            return True

    def preempted(self, plan: ShiftPlan) -> ShiftOutcome:
        """A rollback took the lock while our change was in flight: put its weights back.

        Safe: legacy 100 / aws 0 is always safe, and only a shift holding the lock (which
        would have to pass the rollback hold first) is left alone.
        """
        holder = None
        try:
            holder = self.aws.audit.current_lock()
        except AWS_ERRORS as exc:
            LOG.warning("could not read the lock: %s", describe_error(exc))
        restored = "the rollback owns the weights"
        phase_after: int | None = None
        if not str((holder or {}).get("action", "")).startswith("shift"):
            try:
                again = self.aws.route53.read()
                if again.weights != ROLLED_BACK:
                    self.aws.route53.change(
                        again,
                        ROLLED_BACK,
                        "paymig shift preempted: restore",
                        self.mono() + self.settings.rollback.route53_submit_seconds,
                    )
                restored = f"restored {ROLLED_BACK.describe()} after our late change"
                phase_after = 0
            except SHELL_ERRORS as exc:
                restored = f"could not restore {ROLLED_BACK.describe()}: {describe_error(exc)}"
        detail = f"a rollback took the lock over while the change was in flight; {restored}"
        _record_best_effort(
            self.aws,
            self.now,
            {
                **self.event,
                "result": RESULT_PREEMPTED,
                "detail": detail,
                "phase_after": phase_after,
            },
        )
        return ShiftOutcome(
            RESULT_PREEMPTED, plan.from_phase, plan.to_phase, ROLLED_BACK, detail=detail
        )


def _publish_weights(aws: ControllerAws, weights: Weights) -> None:
    """Publish the traffic-split metric; a failure is logged, never fatal."""
    try:
        aws.metrics.publish_weights(weights)
    except AWS_ERRORS as exc:
        LOG.warning("could not publish the traffic weights: %s", describe_error(exc))


# --------------------------------------------------------------------------- ack, progress


def ack(
    aws: ControllerAws, settings: ControllerSettings, *, reason: str, now: Clock | None = None
) -> dict[str, Any]:
    """Record that a person has looked at the latest rollback and decides to go on.

    Releases the rollback hold together with a consistent validation newer than the
    rollback; refused when no rollback is recorded.
    """
    if not reason.strip():
        raise ControllerRefusedError(["--reason: a reason is required and must not be blank"])
    clock = now or aws.clock.now
    identity: CallerIdentity = guarded("STS GetCallerIdentity", aws.identity)
    history = guarded("audit trail", aws.audit.events)
    hold = hold_from_events(history)
    if hold is None:
        raise ControllerRefusedError(["nothing to acknowledge: no rollback is recorded"])
    event = {
        "actor": identity.arn,
        "action": ACTION_ACK,
        "source": "cli",
        "reason": reason,
        "result": RESULT_RECORDED,
        "detail": f"acknowledged the {hold.describe()}",
        "acknowledges": hold.rollback.get("at"),
    }
    return guarded("audit record", lambda: _record(aws, clock, event))


def publish_progress(aws: ControllerAws) -> dict[str, float] | None:
    """Publish DMS per-table progress for the dashboard (what `status` only reads)."""
    figures: dict[str, float] | None = guarded(
        "DMS table statistics", aws.metrics.publish_table_statistics
    )
    return figures
