"""The migration controller's shared decisions and vocabulary, free of I/O.

Settings, weights, the phase plan, the rollback plan, the results an audit event can
have, the steps a change is recorded in, alarm notifications and which of them are too
old to act on, and the timing constants every other module bounds its calls with. The
gates live in :mod:`.gates`, the phase replay in :mod:`.replay`, the time budget in
:mod:`.budget`; the shell that talks to AWS in :mod:`.aws` and its siblings.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from paymig.errors import PaymigError
from paymig.naming import DEPLOYMENT_ALIASES, composite_alarm_name
from paymig.rollback_timing import (
    rollback_event_age_seconds,
    rollback_timeout_seconds,
)

if TYPE_CHECKING:  # the rollback Lambda ships without pydantic: import config lazily
    from paymig.config import PaymigConfig

#: Requirement 8: a rollback completes within 5 minutes.
ROLLBACK_LIMIT_SECONDS = 300
#: What we aim for.
ROLLBACK_TARGET_SECONDS = 180

#: Results an audit event can have.
RESULT_SUCCEEDED = "succeeded"  # every step done; Route 53 reports INSYNC
RESULT_UNCONFIRMED = "unconfirmed"  # every change submitted, INSYNC not seen in time
RESULT_NO_CHANGE = "no-change"  # nothing needed changing (the live state was checked)
RESULT_PARTIAL = "partial"  # some steps changed something, at least one failed
RESULT_FAILED = "failed"  # nothing changed: the steps that were tried failed
RESULT_REFUSED = "refused"  # a gate, the phase plan or the lock said no
RESULT_PREEMPTED = "preempted"  # a shift whose lock a rollback took over
RESULT_STARTED = "started"  # a rollback's record of intent, written before any change
RESULT_RECORDED = "recorded"  # an acknowledgement

#: Results that leave the Route 53 weights at the event's `to_phase` (events without
#: `phase_after`, written before it existed).
APPLIED_RESULTS = (RESULT_SUCCEEDED, RESULT_UNCONFIRMED)

#: Results of one step of a change.
STEP_CHANGED = "changed"
STEP_UNCHANGED = "unchanged"  # already in the wanted state
STEP_FAILED = "failed"
STEP_SKIPPED = "skipped"
STEP_CONFIRMED = "confirmed"  # INSYNC seen
STEP_TIMED_OUT = "timed-out"  # INSYNC not seen in time

#: Validation statuses the validator records; only `consistent` lets a shift pass.
VALIDATION_STATUSES = ("consistent", "inconsistent", "error")

#: States of a CloudWatch alarm.
ALARM_OK = "OK"
ALARM_ALARM = "ALARM"

# --------------------------------------------------------------------------- timing
# The bounds of every AWS call live in :mod:`paymig.rollback_timing`, shared with the
# stack that sets the rollback function's timeout and event age from them.

#: Residual clock skew tolerated between writers of the audit trail. Each shell corrects
#: its clock to AWS's (the `Date` header of AWS's answers, one-second resolution) when it
#: is further off than this.
CLOCK_SKEW_SECONDS = 2


class ControllerRefusedError(PaymigError):
    """The controller refused an action; every reason is named in the message."""

    exit_code = 1

    def __init__(self, reasons: Sequence[str]) -> None:
        """Keep the reasons; the message lists them all on one line."""
        self.reasons = tuple(reasons)
        super().__init__("; ".join(self.reasons))


class LockHeldError(ControllerRefusedError):
    """Another controller holds the lock."""


class ChangeNotInSyncError(PaymigError):
    """A Route 53 change was submitted but did not reach INSYNC in time."""

    exit_code = 1


class IncompleteActionError(PaymigError):
    """An action changed what it could, but not everything, or its record is missing.

    The message says what changed, what did not and what to do; the CLI prints it as one
    line and exits 1, the rollback Lambda raises it so the invocation counts as an error.
    """

    exit_code = 1


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class RollbackSettings:
    """What the rollback path needs: all the CLI's config and the Lambda's environment give."""

    stack_name: str
    environment: str
    hosted_zone_id: str
    record_name: str
    stable_alias: str = "blue"
    insync_timeout_seconds: float = 60.0
    lock_ttl_seconds: int = 600
    route53_submit_seconds: float = 30.0
    #: The alert topic's ARN; None: derived from the caller's account (the CLI).
    alert_topic_arn: str | None = None
    #: An alarm event older than this is not acted on (see :func:`stale_event_reason`);
    #: None: :func:`max_event_age_seconds` of these settings.
    max_event_age_seconds: float | None = None
    #: With `automation.after_cutover: fallback`, how long the composite must hold ALARM
    #: before `paymig watch` falls back (named in the advice); None: a person falls back.
    automatic_fallback_seconds: float | None = None

    def __post_init__(self) -> None:
        """Reject an alias that has no target group."""
        if self.stable_alias not in DEPLOYMENT_ALIASES:
            raise PaymigError(
                f"stable_alias must be one of {', '.join(DEPLOYMENT_ALIASES)}, "
                f"got {self.stable_alias!r}"
            )

    @property
    def event_age_limit_seconds(self) -> float:
        """The maximum age of an alarm event the rollback acts on."""
        if self.max_event_age_seconds is not None:
            return self.max_event_age_seconds
        return float(max_event_age_seconds(self))


def handler_timeout_seconds(settings: RollbackSettings) -> int:
    """The rollback function's longest run, rounded up to 10 s: its Lambda timeout."""
    return rollback_timeout_seconds(
        settings.route53_submit_seconds, settings.insync_timeout_seconds
    )


def max_event_age_seconds(settings: RollbackSettings) -> int:
    """Age past which an alarm event is no longer acted on (see :mod:`paymig.rollback_timing`)."""
    return rollback_event_age_seconds(handler_timeout_seconds(settings))


@dataclass(frozen=True)
class ControllerSettings:
    """Everything the controller decides with, taken from one environment's config."""

    rollback: RollbackSettings
    phases: tuple[int, ...]
    initial_phase: int
    cdc_latency_threshold_seconds: float
    cdc_latency_lookback_seconds: int
    validation_max_age: timedelta
    dwell_minutes: Mapping[int, int] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: PaymigConfig) -> ControllerSettings:
        """Build the settings of `config`'s environment."""
        ctl = config.controller
        rollback = RollbackSettings(
            stack_name=config.stack_name,
            environment=config.environment,
            hosted_zone_id=config.dns.hosted_zone_id,
            record_name=config.dns.api_record_name,
            stable_alias=ctl.stable_alias,
            insync_timeout_seconds=float(ctl.route53_insync_timeout_seconds),
            lock_ttl_seconds=ctl.lock_ttl_seconds,
            route53_submit_seconds=float(ctl.route53_submit_seconds),
            automatic_fallback_seconds=config.automation.automatic_fallback_seconds,
        )
        return cls(
            rollback=rollback,
            phases=tuple(config.migration.phases),
            initial_phase=config.migration.initial_phase,
            cdc_latency_threshold_seconds=ctl.cdc_latency_threshold_seconds,
            cdc_latency_lookback_seconds=ctl.cdc_latency_lookback_seconds,
            validation_max_age=timedelta(minutes=ctl.validation_max_age_minutes),
            dwell_minutes=dict(ctl.dwell_minutes),
        )


# --------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class Weights:
    """Weights of the two weighted records of the API name."""

    legacy: int
    aws: int

    @classmethod
    def for_phase(cls, percent_on_aws: int) -> Weights:
        """Weights that send `percent_on_aws` percent of traffic to AWS."""
        if not 0 <= percent_on_aws <= 100:
            raise ValueError(f"a phase is a percentage, got {percent_on_aws}")
        return cls(legacy=100 - percent_on_aws, aws=percent_on_aws)

    @property
    def aws_percent(self) -> int | None:
        """Percent of traffic on AWS, or None when both weights are 0 (Route 53 splits evenly)."""
        total = self.legacy + self.aws
        if total == 0:
            return None
        return round(100 * self.aws / total)

    def describe(self) -> str:
        """Human form, e.g. `legacy 90 / aws 10`."""
        return f"legacy {self.legacy} / aws {self.aws}"

    def as_dict(self) -> dict[str, int]:
        """JSON form, as the audit trail stores it."""
        return {"legacy": self.legacy, "aws": self.aws}


ROLLED_BACK = Weights(legacy=100, aws=0)


def listener_target(stable_alias: str) -> dict[str, int]:
    """Listener weights of a rollback: everything on the stable alias."""
    return {alias: (100 if alias == stable_alias else 0) for alias in DEPLOYMENT_ALIASES}


def listener_on_stable(weights: Mapping[str, int], stable_alias: str) -> bool:
    """Whether the listener already sends all traffic to the stable alias."""
    if weights.get(stable_alias, 0) <= 0:
        return False
    return all(w == 0 for alias, w in weights.items() if alias != stable_alias)


def describe_listener(weights: Mapping[str, int]) -> str:
    """Human form of listener weights, e.g. `blue 100 / green 0`."""
    return " / ".join(f"{alias} {weights.get(alias, 0)}" for alias in DEPLOYMENT_ALIASES)


# --------------------------------------------------------------------------- phase plan


@dataclass(frozen=True)
class ShiftPlan:
    """A decided shift: from which phase to which, and whether it was forced."""

    from_phase: int
    to_phase: int
    weights: Weights
    forced: bool = False
    notes: tuple[str, ...] = ()
    #: The live weights were at `to_phase` while the trail said otherwise: the shift
    #: changes nothing and records the live phase (only with --force).
    reconciles: bool = False

    @property
    def changes_anything(self) -> bool:
        """False when the target is where traffic already is."""
        return self.from_phase != self.to_phase


def plan_shift(
    phases: Sequence[int],
    live: Weights,
    recorded_phase: int,
    target: int,
    *,
    force: bool,
    reason: str,
) -> ShiftPlan:
    """Decide a shift to `target` percent from the live weights.

    Only the next phase is allowed. Skipping phases, going backwards, or starting from
    live weights that are not a phase or disagree with the audit trail are refused
    unless `force` (with a reason); that is all `force` overrides. A target that is not
    a phase is always refused. A forced shift to the live phase records it (reconciles).
    """
    if not reason.strip():
        raise ControllerRefusedError(["--reason: a reason is required and must not be blank"])
    if target not in phases:
        raise ControllerRefusedError(
            [f"--to {target}: not a phase of {', '.join(str(p) for p in phases)}"]
        )
    current = live.aws_percent
    problems: list[str] = []
    if current is None:
        problems.append("live weights are both 0 (Route 53 splits evenly); not a phase")
    elif current not in phases:
        problems.append(f"live weights ({live.describe()}) are not a phase")
    elif current != recorded_phase:
        problems.append(
            f"live weights ({live.describe()}) disagree with the recorded phase "
            f"{recorded_phase}% (changed outside the controller?)"
        )
    if current is not None and current in phases and current != target:
        here, there = phases.index(current), phases.index(target)
        if there < here:
            problems.append(
                f"--to {target} goes back from {current}% (use `paymig rollback`, or --force)"
            )
        elif there > here + 1:
            skipped = ", ".join(f"{p}%" for p in phases[here + 1 : there])
            problems.append(f"--to {target} skips phase(s) {skipped} from {current}%")
    if problems and not force:
        raise ControllerRefusedError([*problems, "use --force with a --reason to override"])
    start = current if current is not None else recorded_phase
    return ShiftPlan(
        from_phase=start,
        to_phase=target,
        weights=Weights.for_phase(target),
        forced=bool(problems),
        notes=tuple(problems),
        reconciles=current == target and recorded_phase != target,
    )


# --------------------------------------------------------------------------- rollback


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback changes: Route 53 unless already rolled back; the listener too."""

    route53: Weights | None
    live: Weights

    @property
    def route53_needed(self) -> bool:
        """False when the weights are already legacy 100 / aws 0."""
        return self.route53 is not None


def plan_rollback(live: Weights) -> RollbackPlan:
    """Plan the Route 53 half of a rollback: legacy 100 / aws 0."""
    return RollbackPlan(route53=None if live == ROLLED_BACK else ROLLED_BACK, live=live)


def plan_listener(live_listener: Mapping[str, int], stable_alias: str) -> dict[str, int] | None:
    """The listener weights a rollback sets, or None when already on the stable alias."""
    if listener_on_stable(live_listener, stable_alias):
        return None
    return listener_target(stable_alias)


# --------------------------------------------------------------------------- steps


@dataclass
class Step:
    """One step of a change as it happened: what was tried and what came of it."""

    name: str
    result: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form, as the audit trail and the notification carry it."""
        return {"step": self.name, "result": self.result, "detail": self.detail, **self.data}


def outcome_of(steps: Sequence[Step]) -> str:
    """The result of an action from its steps.

    Something failed: `partial` if another step changed something, else `failed`.
    Nothing failed: `unconfirmed` if INSYNC was not seen, `succeeded` if something
    changed, else `no-change`.
    """
    results = {step.result for step in steps}
    changed = STEP_CHANGED in results
    if STEP_FAILED in results:
        return RESULT_PARTIAL if changed else RESULT_FAILED
    if STEP_TIMED_OUT in results:
        return RESULT_UNCONFIRMED
    return RESULT_SUCCEEDED if changed else RESULT_NO_CHANGE


# --------------------------------------------------------------------------- retries


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base x 2^attempt)]."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    return rng.uniform(0.0, min(cap, base * (2**attempt)))


# --------------------------------------------------------------------------- time


def utc_now() -> datetime:
    """The local clock in UTC (shells correct it to AWS's time, see `aws.ServerClock`)."""
    return datetime.now(UTC)


def parse_time(value: Any) -> datetime | None:
    """Parse an ISO 8601 timestamp (naive means UTC; `+0000` accepted); None if invalid."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")  # 3.11 reads +0000 (CloudWatch) and +00:00
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- alarm events


@dataclass(frozen=True)
class AlarmNotification:
    """The parts of a CloudWatch alarm notification (SNS message) the rollback reads."""

    alarm_name: str
    new_state: str
    old_state: str
    reason: str
    changed_at: str
    #: When SNS accepted the message (the delivery's `Timestamp`), if known.
    published_at: str = ""


def parse_alarm_message(
    message: str | Mapping[str, Any], published_at: str = ""
) -> AlarmNotification | None:
    """Parse a CloudWatch alarm state-change message; None if it is not one."""
    data: Any = message
    if isinstance(message, str):
        try:
            data = json.loads(message)
        except ValueError:
            return None
    if not isinstance(data, Mapping):
        return None
    name, state = data.get("AlarmName"), data.get("NewStateValue")
    if not isinstance(name, str) or not isinstance(state, str):
        return None
    return AlarmNotification(
        alarm_name=name,
        new_state=state,
        old_state=str(data.get("OldStateValue", "")),
        reason=str(data.get("NewStateReason", "")),
        changed_at=str(data.get("StateChangeTime", "")),
        published_at=published_at,
    )


def is_rollback_trigger(alarm: AlarmNotification, stack_name: str) -> bool:
    """Only the composite entering ALARM rolls back (DESIGN #2, #3)."""
    return alarm.alarm_name == composite_alarm_name(stack_name) and alarm.new_state == ALARM_ALARM


@dataclass(frozen=True)
class CompositeNow:
    """The composite alarm as read just before acting on an event about it."""

    state: str
    updated_at: datetime | None


def stale_event_reason(
    alarm: AlarmNotification,
    *,
    now: datetime,
    max_age_seconds: float,
    composite: CompositeNow | None,
) -> str | None:
    """Why an alarm event must not be acted on, or None to roll back.

    Too old: it changed state more than `max_age_seconds` ago (SNS and Lambda may
    deliver late and more than once). Over: the composite has left ALARM since this
    event's state change, so the episode it reports has ended and a later shift may be
    legitimate. When the composite cannot be read (`composite` None) only the age
    decides: a rollback is always safe, an unknown state is no reason to skip it.
    """
    changed = parse_time(alarm.changed_at) or parse_time(alarm.published_at)
    if changed is None:
        return None  # no time to judge by: act (safe)
    age = (now - changed).total_seconds()
    if age > max_age_seconds + CLOCK_SKEW_SECONDS:
        return (
            f"the alarm changed state at {changed.isoformat()}, {age:.0f} s ago, beyond the "
            f"maximum event age of {max_age_seconds:g} s"
        )
    if composite is None or composite.state == ALARM_ALARM or composite.updated_at is None:
        return None
    if composite.updated_at > changed:
        return (
            f"the alarm has been {composite.state} since {composite.updated_at.isoformat()}, "
            f"after this event's change at {changed.isoformat()}: that episode is over"
        )
    return None


# --------------------------------------------------------------------------- DMS progress

#: Progress figures DMS gives only per table (DescribeTableStatistics); the controller
#: publishes their sums as custom metrics so the dashboard can plot them.
TABLE_STATISTICS_METRICS = (
    "ValidationFailedRecords",
    "ValidationSuspendedRecords",
    "TablesLoadedPercent",
)


def summarize_table_statistics(tables: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Sum validation failures and suspended records; percent of tables fully loaded."""
    loaded = sum(1 for t in tables if t.get("TableState") == "Table completed")
    return {
        "ValidationFailedRecords": float(
            sum(int(t.get("ValidationFailedRecords", 0)) for t in tables)
        ),
        "ValidationSuspendedRecords": float(
            sum(int(t.get("ValidationSuspendedRecords", 0)) for t in tables)
        ),
        "TablesLoadedPercent": 100.0 * loaded / len(tables) if tables else 0.0,
    }
