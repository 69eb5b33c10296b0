"""The rollback: the path with the fewest dependencies, shared by the CLI and the Lambda.

First the migration stage (:mod:`.stage_rule`): unless the source takes the writes and
nothing is moving them, or when the stage cannot be read, nothing is changed; the
Lambda records the alarm and notifies people with the command to run, the CLI refuses.

Order, and why. Route 53 first: it is idempotent, always safe, and what the 5-minute
budget waits for; nothing before it may block it (the record of intent is one short
best-effort attempt). Then, best effort, the caller's identity and the lock take-over
(a shift in flight notices it at its next lock check). Then, if a shift may be in flight
(the take-over preempted one, or could not tell), the weights are read again once the
latest such shift could have landed (`core.SHIFT_LANDING_SECONDS` after our change) and
re-applied if it did. Then the load balancer listener back to the stable alias. Then the
INSYNC wait, within the time left. Then what Route 53 will actually answer (health
included), the audit record of every step, the lock's release and the notification to
the alert topic. A failure in any step is recorded as that step's and never stops the
ones after it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from paymig.rollback_timing import (
    HEALTH_READ_SECONDS,
    LISTENER_STEP_SECONDS,
    SHIFT_LANDING_SECONDS,
    TAIL_RESERVE_SECONDS,
)
from paymig.runtime.controller.answer import Answer, effective_answer
from paymig.runtime.controller.aws import CallerIdentity, ControllerAws
from paymig.runtime.controller.calls import AWS_ERRORS, SHELL_ERRORS, describe_error
from paymig.runtime.controller.core import (
    RESULT_NO_CHANGE,
    RESULT_STARTED,
    RESULT_SUCCEEDED,
    ROLLED_BACK,
    STEP_CHANGED,
    STEP_CONFIRMED,
    STEP_FAILED,
    STEP_TIMED_OUT,
    STEP_UNCHANGED,
    ChangeNotInSyncError,
    ControllerRefusedError,
    RollbackSettings,
    Step,
    Weights,
    describe_listener,
    outcome_of,
    plan_listener,
    plan_rollback,
)
from paymig.runtime.controller.replay import ACTION_ROLLBACK
from paymig.runtime.controller.route53 import WeightedRecords
from paymig.runtime.controller.stage_rule import (
    RESULT_NOTIFIED,
    StageReading,
    held_event,
    held_reason,
    operator_advice,
    read_stage,
)

LOG = logging.getLogger("paymig.controller")

#: Seconds a rollback without a caller's deadline may run (the CLI).
DEFAULT_RUN_SECONDS = 300.0


@dataclass
class RollbackOutcome:
    """What a rollback did, step by step."""

    result: str
    detail: str
    steps: list[Step]
    weights_before: Weights | None = None
    weights_after: Weights | None = None
    listener_before: dict[str, int] | None = None
    listener_after: dict[str, int] | None = None
    change_id: str | None = None
    insync_seconds: float | None = None
    answer: Answer | None = None
    notification_id: str | None = None
    preempted: Mapping[str, Any] | None = None
    audit_error: str | None = None
    #: The stage read before any change (None: not read, e.g. an older caller).
    stage: StageReading | None = None

    @property
    def held(self) -> bool:
        """Traffic was not moved because of the stage (after cutover, or unknown)."""
        return self.result == RESULT_NOTIFIED

    @property
    def complete(self) -> bool:
        """Everything done and recorded, and Route 53 answers legacy.

        An alarm held by a stage that was read is complete once recorded and notified;
        one held because the stage could not be read never is (Lambda retries it).
        """
        if self.held:
            return (
                self.stage is not None
                and self.stage.record is not None
                and self.audit_error is None
                and self.notification_id is not None
            )
        legacy_down = self.answer is not None and self.answer.legacy_down_sends_to_aws
        return (
            self.result in (RESULT_SUCCEEDED, RESULT_NO_CHANGE)
            and self.audit_error is None
            and not legacy_down
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON form (Lambda result, `--format json`, the notification)."""
        return {
            "result": self.result,
            "detail": self.detail,
            "complete": self.complete,
            "already_rolled_back": self.result == RESULT_NO_CHANGE,
            "steps": [s.as_dict() for s in self.steps],
            "weights_before": None
            if self.weights_before is None
            else self.weights_before.as_dict(),
            "weights_after": None if self.weights_after is None else self.weights_after.as_dict(),
            "listener_before": self.listener_before,
            "listener_after": self.listener_after,
            "change_id": self.change_id,
            "insync_seconds": self.insync_seconds,
            "answer": None if self.answer is None else self.answer.as_dict(),
            "notification_id": self.notification_id,
            "preempted": dict(self.preempted) if self.preempted else None,
            "audit_error": self.audit_error,
            "stage": None if self.stage is None else self.stage.as_dict(),
        }


@dataclass
class _Run:
    """One rollback in progress: its facts so far."""

    aws: ControllerAws
    settings: RollbackSettings
    event: dict[str, Any]
    end: float  # monotonic: the caller's deadline
    now: Callable[[], datetime]
    mono: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    steps: list[Step] = field(default_factory=list)
    records: WeightedRecords | None = None
    weights_after: Weights | None = None
    change_id: str | None = None
    changed_at: float | None = None
    identity: CallerIdentity | None = None
    lease: Any = None
    lock_unknown: bool = False
    audit_problems: list[str] = field(default_factory=list)

    def within(self, seconds: float) -> float:
        """A deadline `seconds` from now, never past the run's end."""
        return min(self.end, self.mono() + seconds)

    # ---- before the DNS change

    def record_intent(self) -> None:
        """The durable record of intent: one short attempt, never in DNS's way."""
        intent = {**self.event, "result": RESULT_STARTED, "detail": "rollback started"}
        try:
            self.aws.audit_fast.record_event(intent, self.now())
        except AWS_ERRORS as exc:
            self.audit_problems.append(f"intent record: {describe_error(exc)}")

    # ---- Route 53

    def route53_first(self) -> None:
        """Read the weights and set legacy 100 / aws 0, retried within the submit window."""
        deadline = self.within(self.settings.route53_submit_seconds)
        try:
            self.records = self.aws.route53.read(deadline)
            plan = plan_rollback(self.records.weights)
            self.event["weights_before"] = self.records.weights.as_dict()
            self.event["from_phase"] = self.records.weights.aws_percent
            if not plan.route53_needed:
                self.weights_after = ROLLED_BACK
                self.steps.append(
                    Step("route53", STEP_UNCHANGED, f"Route 53 already at {ROLLED_BACK.describe()}")
                )
                return
            self.change_id = self.aws.route53.change(
                self.records, ROLLED_BACK, f"paymig rollback: {self.event['reason']}", deadline
            )
        except SHELL_ERRORS as exc:
            self.steps.append(Step("route53", STEP_FAILED, f"Route 53: {describe_error(exc)}"))
            return
        self.changed_at = self.mono()
        self.weights_after = ROLLED_BACK
        self.steps.append(
            Step(
                "route53",
                STEP_CHANGED,
                f"Route 53 {self.records.weights.describe()} -> {ROLLED_BACK.describe()}",
                {"change_id": self.change_id},
            )
        )

    def take_over(self, holder_hint: str) -> None:
        """Who we are (STS, best effort) and the lock (best effort, one short attempt)."""
        try:
            self.identity = self.aws.identity()
        except AWS_ERRORS as exc:
            self.audit_problems.append(f"identity: {describe_error(exc)}")
        if self.identity is not None:
            self.event["actor"] = self.identity.arn
        holder = self.identity.arn if self.identity else holder_hint
        try:
            self.lease = self.aws.audit_fast.take_over_lock(
                holder, ACTION_ROLLBACK, self.now(), self.settings.lock_ttl_seconds
            )
        except AWS_ERRORS as exc:
            self.lock_unknown = True
            self.audit_problems.append(f"lock take-over: {describe_error(exc)}")
            return
        if self.lease.preempted is not None:
            self.event["preempted"] = {
                k: self.lease.preempted.get(k) for k in ("holder", "action", "acquired_at")
            }

    def shift_may_be_in_flight(self) -> bool:
        """A shift held the lock we took, or we could not take it to find out."""
        if self.lock_unknown:
            return True
        preempted = self.lease.preempted if self.lease is not None else None
        if not preempted:
            return False
        return str(preempted.get("action", "")).startswith("shift")

    def guard_and_reapply(self) -> None:
        """Once a shift in flight can no longer land, read again and re-apply if it did."""
        if self.records is None or not self.shift_may_be_in_flight():
            return
        landed_by = (self.changed_at or self.mono()) + SHIFT_LANDING_SECONDS
        self.sleep(max(0.0, min(landed_by, self.end) - self.mono()))
        deadline = self.within(self.settings.route53_submit_seconds)
        try:
            again = self.aws.route53.read(deadline)
            if again.weights == ROLLED_BACK:
                self.steps.append(
                    Step(
                        "route53 re-check",
                        STEP_UNCHANGED,
                        "no shift landed after the rollback's change",
                    )
                )
                return
            self.change_id = self.aws.route53.change(
                again, ROLLED_BACK, f"paymig rollback (re-apply): {self.event['reason']}", deadline
            )
        except SHELL_ERRORS as exc:
            self.steps.append(
                Step("route53 re-check", STEP_FAILED, f"Route 53 re-check: {describe_error(exc)}")
            )
            return
        self.weights_after = ROLLED_BACK
        self.steps.append(
            Step(
                "route53 re-apply",
                STEP_CHANGED,
                f"weights moved to {again.weights.describe()} meanwhile: re-applied",
                {"change_id": self.change_id},
            )
        )

    # ---- the load balancer

    def listener(self) -> None:
        """The HTTPS listener back to the stable alias."""
        deadline = self.within(LISTENER_STEP_SECONDS)
        try:
            live = self.aws.listener.read(deadline)
            self.event["listener_before"] = dict(live)
            target = plan_listener(live, self.settings.stable_alias)
            if target is None:
                self.event["listener_after"] = dict(live)
                self.steps.append(
                    Step(
                        "listener", STEP_UNCHANGED, f"listener already at {describe_listener(live)}"
                    )
                )
                return
            self.aws.listener.set(target, deadline)
        except SHELL_ERRORS as exc:
            self.steps.append(Step("listener", STEP_FAILED, f"listener: {describe_error(exc)}"))
            return
        self.event["listener_after"] = dict(target)
        self.steps.append(
            Step(
                "listener",
                STEP_CHANGED,
                f"listener {describe_listener(live)} -> {describe_listener(target)}",
            )
        )

    # ---- after the changes

    def wait_insync(self) -> float | None:
        """Wait for the last change within the time left; record giving up."""
        if self.change_id is None:
            return None
        timeout = min(
            self.settings.insync_timeout_seconds, self.end - self.mono() - TAIL_RESERVE_SECONDS
        )
        try:
            waited = self.aws.route53.wait_insync(self.change_id, max(0.0, timeout))
        except ChangeNotInSyncError as exc:
            self.steps.append(Step("insync", STEP_TIMED_OUT, str(exc)))
            return None
        self.steps.append(Step("insync", STEP_CONFIRMED, f"INSYNC after {waited:.1f} s"))
        return waited

    def answer(self) -> Answer | None:
        """What Route 53 will answer now: the weights and both records' health."""
        if self.records is None or self.weights_after is None:
            return None
        deadline = self.within(HEALTH_READ_SECONDS)
        legacy = self.aws.route53.check_health(self.records.legacy.get("HealthCheckId"), deadline)
        aws = self.aws.route53.check_health(self.records.aws.get("HealthCheckId"), deadline)
        evaluates = bool(self.records.aws.get("AliasTarget", {}).get("EvaluateTargetHealth"))
        return effective_answer(
            self.weights_after,
            legacy_healthy=legacy.healthy,
            aws_healthy=aws.healthy,
            aws_evaluates_target=evaluates,
            detail=f"legacy: {legacy.detail}; aws: {aws.detail}",
        )


def _detail(steps: list[Step], answer: Answer | None) -> str:
    """One line: every step, then the answer."""
    if steps and all(s.result == STEP_UNCHANGED for s in steps):
        text = "already rolled back: " + "; ".join(s.detail.replace(" already", "") for s in steps)
        text += "; nothing changed"
    else:
        text = "; ".join(s.detail for s in steps)
    if answer is not None:
        text += f"; {answer.describe()}"
    return text


def rollback(
    aws: ControllerAws,
    settings: RollbackSettings,
    *,
    reason: str,
    source: str = "cli",
    trigger: Mapping[str, Any] | None = None,
    actor_hint: str = "unknown",
    deadline: float | None = None,
    now: Callable[[], datetime] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    when_held: Literal["refuse", "notify"] = "refuse",
) -> RollbackOutcome:
    """Roll back: Route 53 to legacy 100 / aws 0 first, then the listener; record all.

    Only while the stage lets traffic return to legacy. Otherwise nothing changes:
    `when_held="refuse"` (the CLI) records a refusal and raises
    :class:`ControllerRefusedError` in one line; `"notify"` (the Lambda) records the
    alarm, notifies the alert topic and returns a `notified` outcome.

    Idempotent: when already rolled back nothing changes, and the event and the
    notification say so. `deadline` (monotonic seconds) bounds the whole run; the
    Lambda passes its time left. Never raises for an AWS failure: the outcome says which
    steps failed (see :attr:`RollbackOutcome.complete`).
    """
    if not reason.strip():
        raise ControllerRefusedError(["--reason: a reason is required and must not be blank"])
    event: dict[str, Any] = {
        "actor": actor_hint,
        "action": ACTION_ROLLBACK,
        "source": source,
        "to_phase": 0,
        "reason": reason,
        "forced": False,
    }
    if trigger:
        event["trigger"] = dict(trigger)
    end = deadline if deadline is not None else time.monotonic() + DEFAULT_RUN_SECONDS
    run = _Run(aws, settings, event, end, now or aws.clock.now, sleep=sleep)
    reading = read_stage(aws.stage_fast)
    if not reading.may_roll_back:
        return _hold(run, reading, refuse=when_held == "refuse")
    run.record_intent()
    run.route53_first()
    run.take_over(actor_hint)
    run.guard_and_reapply()
    run.listener()
    waited = run.wait_insync()
    answer = _safe_answer(run)
    outcome = RollbackOutcome(
        result=outcome_of(run.steps),
        detail=_detail(run.steps, answer),
        steps=run.steps,
        weights_before=run.records.weights if run.records else None,
        weights_after=run.weights_after,
        listener_before=event.get("listener_before"),
        listener_after=event.get("listener_after"),
        change_id=run.change_id,
        insync_seconds=waited,
        answer=answer,
        preempted=event.get("preempted"),
        stage=reading,
    )
    _finish(run, outcome)
    return outcome


def _hold(run: _Run, reading: StageReading, *, refuse: bool) -> RollbackOutcome:
    """Traffic stays: refuse (the CLI) or record and notify (the Lambda); change nothing."""
    aws, environment = run.aws, run.settings.environment
    if refuse:
        line = (
            f"rollback refused: {held_reason(reading)}; "
            f"{operator_advice(reading, environment, run.settings.automatic_fallback_seconds)}; "
            "nothing changed"
        )
        record = {**run.event, "result": "refused", "detail": line, "stage": reading.as_dict()}
        try:
            aws.audit.record_event(record, run.now())
        except AWS_ERRORS as exc:
            LOG.error("could not record the refusal: %s", describe_error(exc))
        raise ControllerRefusedError([line])
    try:
        run.identity = aws.identity()
        run.event["actor"] = run.identity.arn
    except AWS_ERRORS as exc:
        run.audit_problems.append(f"identity: {describe_error(exc)}")
    record = held_event(reading, run.event, environment, run.settings.automatic_fallback_seconds)
    if run.audit_problems:
        record["audit_problems"] = list(run.audit_problems)
    outcome = RollbackOutcome(
        result=RESULT_NOTIFIED, detail=record["detail"], steps=[], stage=reading
    )
    try:
        LOG.info("audit %s", aws.audit.record_event(record, run.now()))
    except AWS_ERRORS as exc:
        outcome.audit_error = describe_error(exc)
        LOG.error("could not record the held alarm: %s", outcome.audit_error)
    trigger = run.event.get("trigger") or {}
    stage = reading.record.stored if reading.record else "unknown"
    subject = (
        f"paymig: {trigger.get('alarm', 'alarm')} in ALARM at stage {stage}, traffic NOT "
        f"moved: {record['advice']}"
    )
    message = {**record, **outcome.as_dict(), "advice": record["advice"]}
    outcome.notification_id = _notify(run, subject, message)
    return outcome


def _safe_answer(run: _Run) -> Answer | None:
    """The answer, or None when even the health reads could not run."""
    try:
        return run.answer()
    except SHELL_ERRORS as exc:  # pragma: no cover - check_health catches its own errors
        run.audit_problems.append(f"health: {describe_error(exc)}")
        return None


def _finish(run: _Run, outcome: RollbackOutcome) -> None:
    """Publish the split, record the outcome, release the lock, notify (all best effort)."""
    aws = run.aws
    if outcome.weights_after is not None:
        try:
            aws.metrics.publish_weights(outcome.weights_after)
        except AWS_ERRORS as exc:
            LOG.warning("could not publish the traffic weights: %s", describe_error(exc))
    record = {
        **run.event,
        "result": outcome.result,
        "detail": outcome.detail,
        "steps": [s.as_dict() for s in outcome.steps],
        "weights_after": None if outcome.weights_after is None else outcome.weights_after.as_dict(),
        "phase_after": 0 if outcome.weights_after == ROLLED_BACK else None,
        "change_id": outcome.change_id,
        "answer": None if outcome.answer is None else outcome.answer.as_dict(),
    }
    if run.audit_problems:
        record["audit_problems"] = list(run.audit_problems)
    try:
        stored = aws.audit.record_event(record, run.now())
        LOG.info("audit %s", stored)
    except AWS_ERRORS as exc:
        outcome.audit_error = describe_error(exc)
        LOG.error("could not record the rollback: %s", outcome.audit_error)
    if run.lease is not None:
        try:
            aws.audit_fast.release_lock(run.lease)
        except AWS_ERRORS as exc:  # the lock then expires by its TTL
            LOG.error("could not release the lock: %s", describe_error(exc))
    headline = outcome.result.upper()
    if outcome.answer is not None and outcome.answer.legacy_down_sends_to_aws:
        headline += " (LEGACY UNHEALTHY)"
    if outcome.audit_error:
        headline += " (NOT RECORDED)"
    message = {**record, **outcome.as_dict()}
    outcome.notification_id = _notify(run, f"paymig rollback {headline}: {outcome.detail}", message)


def _notify(run: _Run, subject: str, message: Mapping[str, Any]) -> str | None:
    """Publish to the alert topic; a failure is logged, never hides the outcome."""
    try:
        return run.aws.notifier(run.identity).publish(subject, message, "rollback")
    except SHELL_ERRORS as exc:
        LOG.error("could not publish the rollback notification: %s", describe_error(exc))
        return None
