"""What an alarm may do at each migration stage: the rollback's first question.

A rollback moves traffic to legacy, and legacy writes to the source database. That keeps
every payment on one database only while the source takes the writes and nothing is
moving them (:attr:`StageRecord.traffic_may_return_to_legacy`). Otherwise the rollback
moves nothing: the Lambda records the alarm and tells people what to run (the composite
fired, so someone must look), and `paymig rollback` refuses in one line.

When the stage cannot be read, traffic is held as well. The two mistakes are not alike:
a rollback while the writes are on Aurora sends payments to a fenced (or, during a
fallback, half-fenced) source and splits the data, which no later step can undo; a
missed rollback while the writes are on the source costs availability on the AWS side
until a person acts, and loses no payment. So the function holds traffic, notifies, and
fails the invocation: Lambda retries it (1 and 2 minutes later, each retry reading the
stage again and rolling back if the source still takes the writes) and the function's
Errors alarm pages people.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paymig.errors import PaymigError
from paymig.rollback_timing import STAGE_READ_ATTEMPTS
from paymig.runtime.controller.calls import AWS_ERRORS, describe_error
from paymig.runtime.controller.stage import StageRecord, StageStore

#: Audit actions of an alarm that did not move traffic because of the stage.
ACTION_ALARM_AFTER_CUTOVER = "alarm-after-cutover"
ACTION_ALARM_STAGE_UNKNOWN = "alarm-stage-unknown"
#: The result of such an event: people were told (nothing changed).
RESULT_NOTIFIED = "notified"


@dataclass(frozen=True)
class StageReading:
    """The stage as read before a rollback; `error` when it could not be read."""

    record: StageRecord | None
    error: str | None = None

    @property
    def may_roll_back(self) -> bool:
        """Traffic may go to legacy: the stage was read and the source takes the writes."""
        return self.record is not None and self.record.traffic_may_return_to_legacy

    def as_dict(self) -> dict[str, Any]:
        """For the audit event and the notification."""
        if self.record is None:
            return {"stage": None, "error": self.error}
        return self.record.as_dict()


def read_stage(store: StageStore, attempts: int = STAGE_READ_ATTEMPTS) -> StageReading:
    """The stage in at most `attempts` short attempts; an unusable item is not retried."""
    error = "not read"
    for _ in range(attempts):
        try:
            return StageReading(store.read())
        except AWS_ERRORS as exc:
            error = describe_error(exc)
        except PaymigError as exc:  # the item holds something we do not know
            return StageReading(None, str(exc))
    return StageReading(None, error)


def _command(name: str, environment: str) -> str:
    return f"`paymig {name} --env {environment} --reason ...`"


def held_reason(reading: StageReading) -> str:
    """Why traffic stays where it is, in one clause."""
    record = reading.record
    if record is None:
        return (
            f"the migration stage could not be read ({reading.error}); a rollback while "
            "the writes are on Aurora would split the data"
        )
    if record.operation is not None:
        return (
            f"a {record.operation} is moving the writes (since {record.since}, by "
            f"{record.actor}); legacy's database may be fenced or behind"
        )
    if record.stored == "cut-over":
        return (
            f"the writes are on Aurora (stage cut-over since {record.since}); legacy's "
            "database is fenced and would not hold the payments Aurora took"
        )
    return f"the migration is complete (since {record.since}); there is no legacy to return to"


def operator_advice(
    reading: StageReading, environment: str, watch_seconds: float | None = None
) -> str:
    """What the operator should run, as commands.

    `watch_seconds`: with `automation.after_cutover: fallback`, how long the composite
    must hold ALARM before `paymig watch` falls back by itself (None: a person does).
    """
    record = reading.record
    fallback = _command("fallback", environment)
    if record is None:
        return (
            f"read the stage with `paymig status --env {environment}`; if the source takes "
            f"the writes, {_command('rollback', environment)} (or the runbook's manual "
            f"rollback); if Aurora does, {fallback} moves the writes and traffic back"
        )
    if record.operation == "cutover":
        return (
            f"let the cutover finish ({_command('cutover', environment)} resumes it), then "
            f"{fallback} moves the writes and traffic back to legacy"
        )
    if record.operation == "fallback":
        return f"let the fallback finish ({fallback} resumes it): it ends with traffic on legacy"
    if record.stored == "cut-over" and watch_seconds is not None:
        return (
            f"`paymig watch` moves the writes and traffic back to legacy by itself once the "
            f"composite has held ALARM for {watch_seconds:.0f} s (automation.after_cutover: "
            f"fallback); if it is not running: {fallback}"
        )
    if record.stored == "cut-over":
        return f"to move the writes and traffic back to legacy: {fallback}"
    return "fix the AWS side: nothing is left to fall back to"


def held_action(reading: StageReading) -> str:
    """The audit action of an alarm that held traffic."""
    return ACTION_ALARM_STAGE_UNKNOWN if reading.record is None else ACTION_ALARM_AFTER_CUTOVER


def held_event(
    reading: StageReading,
    event: Mapping[str, Any],
    environment: str,
    watch_seconds: float | None = None,
) -> dict[str, Any]:
    """The audit event (and notification body) of an alarm that held traffic."""
    return {
        **{k: v for k, v in event.items() if k not in ("to_phase", "forced")},
        "action": held_action(reading),
        "result": RESULT_NOTIFIED,
        "detail": f"traffic not moved: {held_reason(reading)}",
        "advice": operator_advice(reading, environment, watch_seconds),
        "stage": reading.as_dict(),
    }


def shift_refusal(reading: StageReading, environment: str) -> str | None:
    """Why a shift is refused at this stage, or None while the shifts may go on.

    The phases move traffic between legacy and AWS, so they exist only while the source
    takes the writes and nothing is moving them; a stage that cannot be read refuses
    (a gate that cannot be evaluated fails).
    """
    if reading.may_roll_back:
        return None
    record = reading.record
    if record is not None and record.operation is None:
        if record.stored == "cut-over":
            return (
                f"shift refused: the writes are on Aurora (stage cut-over since "
                f"{record.since}): the traffic shifts are over; "
                f"{_command('fallback', environment)} moves writes and traffic back"
            )
        return f"shift refused: the migration is complete (since {record.since})"
    return f"shift refused: {held_reason(reading)}"
