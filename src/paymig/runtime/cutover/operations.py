"""`paymig cutover` and `paymig fallback`: the steps in order, locked, recorded, resumable.

Cutover (writes source -> Aurora): mark the stage's operation, fence the source and
prove it, drain to a marker, stop forward replication, sync sequences, create the
reverse slot and start reverse replication from it, unfence Aurora for the API,
switch the write target, wait out the API's cache, stage ``cut-over``.

Fallback (writes Aurora -> source), the mirror image: fence Aurora for the API, drain
through the reverse path, stop it (its slot dropped), sync sequences back, restart
forward replication from a slot created at this point, unfence the source, switch the
write target back, wait out the cache, stage ``replicating``, and the weights to legacy
100 through the controller's rollback path.

Each step's figures go to the progress item before the next one starts; a re-run
continues after the last step done. The write-unavailability window runs from the
fence to the end of the cache wait (no payment can be written anywhere in between).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from paymig.errors import PaymigError
from paymig.runtime.controller.audit import LockLease, utc_timestamp
from paymig.runtime.controller.calls import AWS_ERRORS, describe_error, guarded
from paymig.runtime.controller.core import (
    RESULT_NO_CHANGE,
    RESULT_REFUSED,
    RESULT_SUCCEEDED,
    ControllerRefusedError,
    IncompleteActionError,
    LockHeldError,
)
from paymig.runtime.controller.rollback import rollback
from paymig.runtime.controller.stage import Operation, StageRecord
from paymig.runtime.cutover import steps as s
from paymig.runtime.cutover.preconditions import cutover_problems
from paymig.runtime.cutover.progress import Progress

LOG = logging.getLogger("paymig.cutover")


def _one_line(exc: BaseException) -> str:
    """An error's message on one line (libpq's span several)."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())


StepAction = Callable[[s.Run], dict[str, Any]]


def _fallback_weights(run: s.Run) -> dict[str, Any]:
    """Legacy 100 / aws 0 through the rollback path (it takes the lock over, then frees it)."""
    env = run.env
    outcome = rollback(
        env.aws, env.settings.rollback, reason=f"fallback: {run.reason}", source="cli",
        actor_hint="fallback",
    )  # fmt: skip
    if not outcome.complete:
        raise IncompleteActionError(
            f"weights: the rollback to legacy 100 was {outcome.result}: {outcome.detail}"
        )
    return {"result": outcome.result, "detail": outcome.detail}


CUTOVER_STEPS: tuple[tuple[str, StepAction], ...] = (
    ("mark", lambda r: s.move_stage(r, "replicating", "cutover", [StageRecord("replicating")])),
    ("fence-source", lambda r: s.fence(r, "source")),
    ("drain", lambda r: s.drain(r, "source", "aurora")),
    ("stop-forward", s.stop_forward),
    ("sequences", lambda r: s.sync_sequences(r, "source", "aurora")),
    ("start-reverse", lambda r: s.start_from_here(r, "aurora")),
    ("unfence-aurora", lambda r: s.unfence(r, "aurora")),
    ("switch", lambda r: s.switch(r, "aurora")),
    ("cache", s.wait_cache),
    (
        "stage",
        lambda r: s.move_stage(r, "cut-over", None, [StageRecord("replicating", "cutover")]),
    ),
)

FALLBACK_STEPS: tuple[tuple[str, StepAction], ...] = (
    ("mark", lambda r: s.move_stage(r, "cut-over", "fallback", [StageRecord("cut-over")])),
    ("fence-aurora", lambda r: s.fence(r, "aurora")),
    ("drain", lambda r: s.drain(r, "aurora", "source")),
    ("stop-reverse", s.stop_reverse),
    ("sequences", lambda r: s.sync_sequences(r, "aurora", "source")),
    ("start-forward", lambda r: s.start_from_here(r, "source")),
    ("unfence-source", lambda r: s.unfence(r, "source")),
    ("switch", lambda r: s.switch(r, "source")),
    ("cache", s.wait_cache),
    (
        "stage",
        lambda r: s.move_stage(r, "replicating", None, [StageRecord("cut-over", "fallback")]),
    ),
    ("weights", _fallback_weights),
)

STEPS: dict[Operation, tuple[tuple[str, StepAction], ...]] = {
    "cutover": CUTOVER_STEPS,
    "fallback": FALLBACK_STEPS,
}


@dataclass
class OperationOutcome:
    """What a cutover or fallback did."""

    operation: Operation
    result: str
    detail: str
    window_seconds: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    resumed_after: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form (the CLI's `--format json`)."""
        return {
            "operation": self.operation,
            "result": self.result,
            "detail": self.detail,
            "window_seconds": self.window_seconds,
            "resumed_after": self.resumed_after,
            "steps": self.steps,
        }


def _refuse(env: s.CutoverEnv, event: dict[str, Any], reasons: list[str]) -> Exception:
    """Record a refusal (best effort) and return it to raise."""
    try:
        env.aws.audit.record_event(
            {**event, "result": RESULT_REFUSED, "detail": "; ".join(reasons)},
            env.aws.clock.now(),
        )
    except AWS_ERRORS as exc:
        LOG.error("could not record the refusal: %s", describe_error(exc))
    return ControllerRefusedError(reasons)


def _begin(
    env: s.CutoverEnv, operation: Operation, event: dict[str, Any], stage: StageRecord
) -> OperationOutcome | None:
    """Refuse, or say nothing needs doing, before any change; None: go."""
    if operation == "cutover":
        if stage.stored == "cut-over" and stage.operation is None:
            return OperationOutcome(
                operation, RESULT_NO_CHANGE, "already cut over: writes on aurora"
            )
        if stage.stored != "replicating" or stage.operation is not None:
            raise _refuse(env, event, [f"precondition stage failed: stage is {stage.stored}"])
        problems, _ = cutover_problems(
            env.aws, env.settings, env.cutover, env.aws.clock.now(), None
        )
        if problems:
            raise _refuse(env, event, problems)
        return None
    if stage.stored != "cut-over" or stage.operation is not None:
        raise _refuse(
            env,
            event,
            [
                f"precondition stage failed: stage is {stage.stored}, not cut-over: the writes "
                "are not on aurora, nothing to fall back from"
            ],
        )
    return None


def run_operation(
    env: s.CutoverEnv, operation: Operation, *, reason: str, source: str = "cli"
) -> OperationOutcome:
    """Run (or resume) a cutover or a fallback under the controller's lock."""
    if not reason.strip():
        raise ControllerRefusedError(["--reason: a reason is required and must not be blank"])
    aws = env.aws
    identity = guarded("STS GetCallerIdentity", aws.identity)
    event: dict[str, Any] = {
        "actor": identity.arn, "action": operation, "source": source, "reason": reason,
    }  # fmt: skip
    try:
        lease = aws.audit.acquire_lock(
            identity.arn, operation, aws.clock.now(), env.settings.rollback.lock_ttl_seconds
        )
    except LockHeldError as refusal:
        raise _refuse(env, event, list(refusal.reasons)) from None
    try:
        return _locked(env, operation, event, lease)
    finally:
        try:
            aws.audit.release_lock(lease)
        except AWS_ERRORS as exc:  # it then expires by its TTL
            LOG.error("could not release the lock: %s", describe_error(exc))


def _locked(
    env: s.CutoverEnv, operation: Operation, event: dict[str, Any], lease: LockLease
) -> OperationOutcome:
    """Under the lock: resume what is under way, or check and begin."""
    progress = guarded("audit table (progress)", env.progress.read)
    if progress is not None and progress.operation != operation:
        raise _refuse(
            env,
            event,
            [
                f"a {progress.operation} is under way (stopped after step "
                f"{progress.last_step}): run `paymig {progress.operation}` to finish it first"
            ],
        )
    resumed = progress.last_step if progress else None
    if progress is None:
        stage = guarded("audit table (stage)", env.aws.stage.read)
        early = _begin(env, operation, event, stage)
        if early is not None:
            return early
        progress = Progress(
            operation, str(uuid.uuid4()), utc_timestamp(env.aws.clock.now()),
            event["actor"], event["reason"],
        )  # fmt: skip
        env.progress.save(progress)
    run = s.Run(env, progress, event["actor"], event["reason"])
    _run_steps(run, lease)
    return _finish(run, event, resumed)


def _run_steps(run: s.Run, lease: LockLease) -> None:
    """Every step not yet done, in order, each recorded before the next."""
    env = run.env
    for name, action in STEPS[run.progress.operation]:
        if run.progress.done(name):
            continue
        ttl = env.settings.rollback.lock_ttl_seconds
        if not env.aws.audit.confirm_lock(lease, env.aws.clock.now(), ttl):
            raise IncompleteActionError(
                f"{run.progress.operation}: the controller's lock was taken over before step "
                f"{name}; stopped after {run.progress.last_step}; run it again to resume"
            )
        began = env.mono()
        try:
            figures = action(run)
        except (PaymigError, psycopg.Error, *AWS_ERRORS) as exc:
            if isinstance(exc, ControllerRefusedError | IncompleteActionError):
                raise
            reason = describe_error(exc) if isinstance(exc, AWS_ERRORS) else _one_line(exc)
            raise IncompleteActionError(
                f"{run.progress.operation} stopped at step {name} (done: "
                f"{run.progress.last_step or 'nothing'}): {reason}; run it again to resume"
            ) from None
        run.progress.steps.append(
            {
                "step": name,
                "at": utc_timestamp(env.aws.clock.now()),
                "seconds": round(env.mono() - began, 3),
                **figures,
            }
        )
        run.save()
        LOG.info("%s: %s done %s", run.progress.operation, name, figures)
        env.after_step(name)


def _finish(run: s.Run, event: dict[str, Any], resumed: str | None) -> OperationOutcome:
    """The audit event (once per run id), then the progress is cleared."""
    env = run.env
    progress = run.progress
    window = progress.data.get("window_seconds")
    writes_on = "aurora" if progress.operation == "cutover" else "source"
    detail = f"writes on {writes_on}; writes unavailable for {window} s"
    recorded = [e for e in env.aws.audit.events() if e.get("run_id") == progress.run_id]
    if not recorded:
        env.aws.audit.record_event(
            {
                **event,
                "actor": progress.actor,
                "reason": progress.reason,
                "result": RESULT_SUCCEEDED,
                "detail": detail,
                "run_id": progress.run_id,
                "started_at": progress.started_at,
                "resumed_after": resumed,
                "window_seconds": window,
                "steps": progress.steps,
            },
            env.aws.clock.now(),
        )
    env.progress.clear()
    return OperationOutcome(
        progress.operation, RESULT_SUCCEEDED, detail, window, progress.steps, resumed
    )
