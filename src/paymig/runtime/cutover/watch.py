"""`paymig watch`: with `automation.after_cutover: fallback`, fall back when the alarm holds.

After cutover the rollback function never moves traffic (legacy's database is fenced;
see :mod:`paymig.runtime.controller.stage_rule`). Falling back means moving the writes
first, and that needs an administrator's access to both databases. That access stays
where the cutover ran, on the operator's side, never in AWS: so the automatic way back
is this loop, kept running there while the stage is ``cut-over``.

Each poll reads the stage and the composite alarm. It falls back only when both were
read, the stage is ``cut-over`` with no operation under way, and the composite has been
in ALARM for at least ``fallback_alarm_seconds``; anything it cannot read means wait
(nothing moves on a guess). The fallback is :func:`run_operation`'s own, under the
controller's lock, so a person running `paymig fallback` at the same time is not raced:
one of the two is refused and the other finishes. People are told both ways, on the
alert topic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from paymig.errors import PaymigError
from paymig.naming import composite_alarm_name
from paymig.runtime.controller.calls import AWS_ERRORS, describe_error
from paymig.runtime.controller.core import CompositeNow, ControllerRefusedError
from paymig.runtime.controller.stage import StageRecord
from paymig.runtime.cutover.operations import OperationOutcome, run_operation
from paymig.runtime.cutover.steps import CutoverEnv

LOG = logging.getLogger("paymig.watch")

#: The audit event's `source` of a fallback the watch ran.
WATCH_SOURCE = "watch"


@dataclass(frozen=True)
class Verdict:
    """What one poll decided: keep waiting, fall back now, or stop watching."""

    action: Literal["wait", "fallback", "end"]
    detail: str


def verdict(
    stage: StageRecord, composite: CompositeNow | None, now: datetime, hold_seconds: float
) -> Verdict:
    """The decision of one poll from what it read (pure: the tests' table)."""
    if stage.operation is not None:
        return Verdict(
            "wait",
            f"a {stage.operation} is under way (since {stage.since}, by {stage.actor}): "
            f"`paymig {stage.operation}` resumes it",
        )
    if stage.stored != "cut-over":
        return Verdict("end", f"stage is {stage.stored}: the writes are not on aurora")
    return _alarm_verdict(composite, now, hold_seconds)


def _alarm_verdict(composite: CompositeNow | None, now: datetime, hold_seconds: float) -> Verdict:
    """In stage cut-over: fall back once the composite has held ALARM long enough."""
    if composite is None:
        return Verdict("wait", "the composite alarm does not exist: nothing to act on")
    if composite.state != "ALARM":
        return Verdict("wait", f"stage cut-over, composite alarm {composite.state}")
    if composite.updated_at is None:
        return Verdict("wait", "composite alarm in ALARM, but since when is not known")
    held = (now - composite.updated_at).total_seconds()
    since = composite.updated_at.isoformat(timespec="seconds")
    if held < hold_seconds:
        return Verdict(
            "wait", f"composite alarm in ALARM since {since} ({held:.0f} s of {hold_seconds:.0f} s)"
        )
    return Verdict("fallback", f"composite alarm in ALARM since {since} ({held:.0f} s)")


@dataclass
class WatchOutcome:
    """How a watch ended, and the fallback it ran, if any."""

    result: Literal["ended", "fell-back", "stopped"]
    detail: str
    fallback: OperationOutcome | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form (the CLI's `--format json`)."""
        return {
            "result": self.result,
            "detail": self.detail,
            "fallback": self.fallback.as_dict() if self.fallback else None,
        }


@dataclass
class Watch:
    """The loop, with its clock and sleep given (the tests pass their own)."""

    env: CutoverEnv
    hold_seconds: float
    poll_seconds: float
    report: Callable[[str], None] = LOG.info
    sleep: Callable[[float], None] = time.sleep

    def poll(self) -> Verdict:
        """Read the stage and the composite; anything unreadable means wait."""
        aws = self.env.aws
        try:
            stage = aws.stage.read()
            composite = aws.metrics.composite_now()
        except AWS_ERRORS as exc:
            return Verdict("wait", f"could not read the stage or the alarm: {describe_error(exc)}")
        except PaymigError as exc:
            return Verdict("wait", f"could not read the stage: {exc}")
        return verdict(stage, composite, aws.clock.now(), self.hold_seconds)

    def run(self, max_polls: int | None = None) -> WatchOutcome:
        """Poll until the stage leaves cut-over or a fallback ran; `max_polls` for tests."""
        last = ""
        polls = 0
        while max_polls is None or polls < max_polls:
            polls += 1
            found = self.poll()
            if found.detail != last:
                self.report(found.detail)
                last = found.detail
            if found.action == "end":
                return WatchOutcome("ended", found.detail)
            if found.action == "fallback":
                done = self._fall_back(found)
                if done is not None:
                    return done
            self.sleep(self.poll_seconds)
        return WatchOutcome("stopped", f"stopped after {polls} polls; last: {last}")

    def _fall_back(self, found: Verdict) -> WatchOutcome | None:
        """Run the fallback; None when it was refused (someone else acts: poll again)."""
        reason = f"automatic fallback (automation.after_cutover): {found.detail}"
        self._notify("paymig watch: falling back", {"detail": found.detail})
        try:
            outcome = run_operation(self.env, "fallback", reason=reason, source=WATCH_SOURCE)
        except ControllerRefusedError as refusal:
            self.report(f"fallback refused: {refusal}")
            return None
        except PaymigError as exc:
            self._notify("paymig watch: the fallback stopped", {"detail": str(exc)})
            raise
        self._notify(
            "paymig watch: fell back",
            {"detail": outcome.detail, "window_seconds": outcome.window_seconds},
        )
        return WatchOutcome("fell-back", found.detail, outcome)

    def _notify(self, subject: str, body: dict[str, Any]) -> None:
        """Tell people on the alert topic (best effort: the audit trail has it too)."""
        aws = self.env.aws
        message = {
            **body,
            "alarm": composite_alarm_name(aws.stack_name),
            "environment": self.env.settings.rollback.environment,
        }
        try:
            aws.notifier(aws.identity()).publish(subject, message, WATCH_SOURCE)
        except AWS_ERRORS as exc:
            LOG.error("could not notify: %s", describe_error(exc))
