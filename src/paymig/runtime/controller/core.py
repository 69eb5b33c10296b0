"""The migration controller's decisions, free of I/O.

Everything here is a pure function of facts the shell (:mod:`.aws`) gathered: which
phase comes next, whether the gates let a shift pass, what a rollback must change, which
phase the audit trail says we are in, and how long a rollback takes in the worst case.
The CLI and the rollback Lambda share these functions, so both decide the same way.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from paymig.errors import PaymigError
from paymig.naming import (
    ALARM_METRICS,
    COMPOSITE_ALARM,
    DEPLOYMENT_ALIASES,
    ROLLBACK_ALARM_METRICS,
    alarm_name,
    composite_alarm_name,
)

if TYPE_CHECKING:  # the rollback Lambda ships without pydantic: import config lazily
    from paymig.config import AlarmSettings, PaymigConfig

#: Requirement 8: a rollback completes within 5 minutes.
ROLLBACK_LIMIT_SECONDS = 300
#: What we aim for.
ROLLBACK_TARGET_SECONDS = 180

#: Results an audit event can have.
RESULT_SUCCEEDED = "succeeded"  # the change is applied and Route 53 reports INSYNC
RESULT_UNCONFIRMED = "unconfirmed"  # the change is submitted but not INSYNC in time
RESULT_NO_CHANGE = "no-change"  # nothing needed changing
RESULT_REFUSED = "refused"  # a gate, the phase plan or the lock said no
RESULT_FAILED = "failed"  # an AWS call failed before anything changed

#: Results whose `to_phase` is what Route 53 now serves (or will once propagated).
APPLIED_RESULTS = (RESULT_SUCCEEDED, RESULT_UNCONFIRMED)

#: Validation statuses the validator records; only `consistent` lets a shift pass.
VALIDATION_STATUSES = ("consistent", "inconsistent", "error")

#: States of a CloudWatch alarm.
ALARM_OK = "OK"


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

    def __post_init__(self) -> None:
        """Reject an alias that has no target group."""
        if self.stable_alias not in DEPLOYMENT_ALIASES:
            raise PaymigError(
                f"stable_alias must be one of {', '.join(DEPLOYMENT_ALIASES)}, "
                f"got {self.stable_alias!r}"
            )


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
        return cls(
            rollback=RollbackSettings(
                stack_name=config.stack_name,
                environment=config.environment,
                hosted_zone_id=config.dns.hosted_zone_id,
                record_name=config.dns.api_record_name,
                stable_alias=ctl.stable_alias,
                insync_timeout_seconds=float(ctl.route53_insync_timeout_seconds),
                lock_ttl_seconds=ctl.lock_ttl_seconds,
            ),
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


ROLLED_BACK = Weights(legacy=100, aws=0)


def listener_target(stable_alias: str) -> dict[str, int]:
    """Listener weights of a rollback: everything on the stable alias."""
    return {alias: (100 if alias == stable_alias else 0) for alias in DEPLOYMENT_ALIASES}


def listener_on_stable(weights: Mapping[str, int], stable_alias: str) -> bool:
    """Whether the listener already sends all traffic to the stable alias."""
    if weights.get(stable_alias, 0) <= 0:
        return False
    return all(w == 0 for alias, w in weights.items() if alias != stable_alias)


# --------------------------------------------------------------------------- phase plan


@dataclass(frozen=True)
class ShiftPlan:
    """A decided shift: from which phase to which, and whether it was forced."""

    from_phase: int
    to_phase: int
    weights: Weights
    forced: bool = False
    notes: tuple[str, ...] = ()

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
    unless `force` (with a reason). A target that is not a phase is always refused.
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
    )


# --------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class Gate:
    """One gate's verdict; `ok` is False also when it could not be evaluated."""

    name: str
    ok: bool
    detail: str


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
    phase_entered_at: datetime | None = None


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


def _cdc_gate(settings: ControllerSettings, facts: GateFacts) -> Gate:
    """CDC latency at or below the threshold; no datapoint in the window fails."""
    limit = settings.cdc_latency_threshold_seconds
    if facts.cdc_error is not None:
        return Gate("cdc-latency", False, f"cannot read CDC latency: {facts.cdc_error}")
    if facts.cdc_latency_seconds is None:
        return Gate(
            "cdc-latency",
            False,
            f"no CDC latency datapoint in the last {settings.cdc_latency_lookback_seconds} s",
        )
    latency = facts.cdc_latency_seconds
    ok = latency <= limit
    relation = "<=" if ok else ">"
    return Gate("cdc-latency", ok, f"CDC latency {latency:g} s {relation} threshold {limit:g} s")


def _parse_time(value: Any) -> datetime | None:
    """Parse an ISO 8601 timestamp (naive means UTC); None if absent or malformed."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _validation_gate(settings: ControllerSettings, facts: GateFacts) -> Gate:
    """The latest validation result exists, is recent, and says `consistent`."""
    if facts.validation_error is not None:
        return Gate("validation", False, f"cannot read validation: {facts.validation_error}")
    result = facts.validation
    if result is None:
        return Gate("validation", False, "no validation result recorded")
    status = result.get("status")
    checked = _parse_time(result.get("checked_at"))
    if checked is None:
        return Gate("validation", False, "latest validation has no valid checked_at")
    age = facts.now - checked
    summary = f"{status} at {checked.isoformat()}"
    if status != "consistent":
        detail = result.get("summary")
        return Gate(
            "validation",
            False,
            f"latest validation is {summary}" + (f": {detail}" if detail else ""),
        )
    if age > settings.validation_max_age:
        minutes = settings.validation_max_age.total_seconds() / 60
        return Gate(
            "validation",
            False,
            f"latest validation ({summary}) is older than {minutes:g} min",
        )
    return Gate("validation", True, f"latest validation is {summary}")


def _dwell_gate(settings: ControllerSettings, facts: GateFacts, current: int) -> Gate:
    """Traffic has stayed at the current phase for its configured dwell time."""
    minutes = settings.dwell_minutes.get(current, 0)
    if minutes == 0:
        return Gate("dwell", True, f"no dwell time at {current}%")
    if facts.phase_entered_at is None:
        return Gate("dwell", False, f"no record of when {current}% was entered")
    stayed = facts.now - facts.phase_entered_at
    needed = timedelta(minutes=minutes)
    if stayed >= needed:
        return Gate(
            "dwell", True, f"at {current}% for {stayed.total_seconds() / 60:.0f} min >= {minutes}"
        )
    left = (needed - stayed).total_seconds() / 60
    return Gate(
        "dwell",
        False,
        f"at {current}% for {stayed.total_seconds() / 60:.0f} min of {minutes}"
        f" ({left:.0f} min left)",
    )


def evaluate_gates(settings: ControllerSettings, facts: GateFacts, current: int) -> list[Gate]:
    """Every gate of a shift away from phase `current`, in a stable order."""
    return [
        *_alarm_gates(settings, facts),
        _cdc_gate(settings, facts),
        _validation_gate(settings, facts),
        _dwell_gate(settings, facts, current),
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


# --------------------------------------------------------------------------- rollback


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback changes; both None means already rolled back."""

    route53: Weights | None
    listener: dict[str, int] | None
    live: Weights
    live_listener: Mapping[str, int]

    @property
    def already_rolled_back(self) -> bool:
        """True when nothing needs changing."""
        return self.route53 is None and self.listener is None

    def describe(self) -> str:
        """One line: what changes, or that nothing does and why."""
        if self.already_rolled_back:
            return (
                f"already rolled back: Route 53 at {self.live.describe()}, listener at "
                f"{_describe_listener(self.live_listener)}; nothing changed"
            )
        parts = []
        if self.route53 is not None:
            parts.append(f"Route 53 {self.live.describe()} -> {self.route53.describe()}")
        if self.listener is not None:
            parts.append(
                f"listener {_describe_listener(self.live_listener)} -> "
                f"{_describe_listener(self.listener)}"
            )
        return "; ".join(parts)


def _describe_listener(weights: Mapping[str, int]) -> str:
    """Human form of listener weights, e.g. `blue 100 / green 0`."""
    return " / ".join(f"{alias} {weights.get(alias, 0)}" for alias in DEPLOYMENT_ALIASES)


def plan_rollback(
    live: Weights, live_listener: Mapping[str, int], stable_alias: str
) -> RollbackPlan:
    """Plan a rollback: Route 53 to legacy 100 / aws 0, the listener to the stable alias."""
    return RollbackPlan(
        route53=None if live == ROLLED_BACK else ROLLED_BACK,
        listener=(
            None
            if listener_on_stable(live_listener, stable_alias)
            else listener_target(stable_alias)
        ),
        live=live,
        live_listener=dict(live_listener),
    )


# --------------------------------------------------------------------------- audit


@dataclass(frozen=True)
class PhaseState:
    """The phase as rebuilt from the audit trail."""

    phase: int
    entered_at: datetime | None
    unconfirmed: bool = False


def phase_from_events(events: Iterable[Mapping[str, Any]], initial_phase: int) -> PhaseState:
    """Rebuild the current phase from audit events in chronological order.

    The last event that applied a change (succeeded, or submitted but unconfirmed) sets
    the phase; with none, the phase is the configured initial one. `entered_at` is when
    the phase last changed to its current value.
    """
    state = PhaseState(phase=initial_phase, entered_at=None)
    for event in events:
        if event.get("result") not in APPLIED_RESULTS:
            continue
        to_phase = event.get("to_phase")
        if not isinstance(to_phase, int):
            continue
        entered = state.entered_at if to_phase == state.phase else _parse_time(event.get("at"))
        state = PhaseState(
            phase=to_phase,
            entered_at=entered,
            unconfirmed=event.get("result") == RESULT_UNCONFIRMED,
        )
    return state


# --------------------------------------------------------------------------- time budget


@dataclass(frozen=True)
class BudgetStep:
    """One step of the rollback path and its worst-case seconds."""

    name: str
    seconds: int
    detail: str


@dataclass(frozen=True)
class RollbackBudget:
    """Worst-case time from a sustained fault to clients resolving to legacy."""

    steps: tuple[BudgetStep, ...]
    fastest_signal_seconds: int
    fastest_alarm: str

    @property
    def total_seconds(self) -> int:
        """The worst case: the slowest alarm detects the fault."""
        return sum(step.seconds for step in self.steps)

    @property
    def within_limit(self) -> bool:
        """At most 5 minutes (requirement 8)."""
        return self.total_seconds <= ROLLBACK_LIMIT_SECONDS

    def as_dict(self) -> dict[str, Any]:
        """JSON form for `paymig status --format json`."""
        return {
            "total_seconds": self.total_seconds,
            "limit_seconds": ROLLBACK_LIMIT_SECONDS,
            "target_seconds": ROLLBACK_TARGET_SECONDS,
            "within_limit": self.within_limit,
            "fastest_signal_seconds": self.fastest_signal_seconds,
            "fastest_alarm": self.fastest_alarm,
            "steps": [
                {"name": s.name, "seconds": s.seconds, "detail": s.detail} for s in self.steps
            ],
        }


def rollback_budget(
    alarms: Mapping[Any, AlarmSettings],
    *,
    composite_evaluation_seconds: int,
    lambda_start_seconds: int,
    insync_timeout_seconds: int,
    record_ttl_seconds: int,
) -> RollbackBudget:
    """Add up the rollback path from configured values.

    Detection takes `period x datapoints_to_alarm` for a sustained breach (M breaching
    periods in a row; M of N with N > M does not slow a sustained fault). The worst case
    is the slowest alarm feeding the composite; the fastest signal is reported beside it.
    Then the composite alarm, SNS delivery and the Lambda start, Route 53 INSYNC (the
    Lambda's wait is bounded by the timeout) and finally resolvers' caches (record TTL).
    """
    if not alarms:
        raise ValueError("no alarms: the rollback has nothing to detect a fault with")
    detection = {name: a.detection_seconds for name, a in alarms.items()}
    slowest = max(detection, key=lambda n: (detection[n], n))
    fastest = min(detection, key=lambda n: (detection[n], n))
    tail = [
        BudgetStep(
            "composite",
            composite_evaluation_seconds,
            f"{COMPOSITE_ALARM} follows its child alarm",
        ),
        BudgetStep("lambda-start", lambda_start_seconds, "SNS delivery, cold start, API calls"),
        BudgetStep("route53-insync", insync_timeout_seconds, "change propagated (timeout)"),
        BudgetStep("dns-ttl", record_ttl_seconds, "resolvers drop the cached answer"),
    ]
    s = alarms[slowest]
    steps = (
        BudgetStep(
            "detection",
            detection[slowest],
            f"slowest alarm {slowest}: {s.period_seconds} s x {s.datapoints_to_alarm} datapoints",
        ),
        *tail,
    )
    fastest_total = detection[fastest] + sum(step.seconds for step in tail)
    return RollbackBudget(steps=steps, fastest_signal_seconds=fastest_total, fastest_alarm=fastest)


def budget_from_config(config: PaymigConfig) -> RollbackBudget:
    """The rollback budget of one environment's configuration.

    Only the alarms the composite watches (:data:`ROLLBACK_ALARM_METRICS`) can start a
    rollback, so only they count towards its detection time.
    """
    ctl = config.controller
    alarms = config.observability.alarms
    return rollback_budget(
        {name: a for name, a in alarms.items() if name in ROLLBACK_ALARM_METRICS},
        composite_evaluation_seconds=ctl.composite_evaluation_seconds,
        lambda_start_seconds=ctl.rollback_lambda_start_seconds,
        insync_timeout_seconds=ctl.route53_insync_timeout_seconds,
        record_ttl_seconds=config.dns.record_ttl_seconds,
    )


# --------------------------------------------------------------------------- retries


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base x 2^attempt)]."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    return rng.uniform(0.0, min(cap, base * (2**attempt)))


# --------------------------------------------------------------------------- alarm events


@dataclass(frozen=True)
class AlarmNotification:
    """The parts of a CloudWatch alarm notification (SNS message) the rollback reads."""

    alarm_name: str
    new_state: str
    old_state: str
    reason: str
    changed_at: str


def parse_alarm_message(message: str | Mapping[str, Any]) -> AlarmNotification | None:
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
    )


def utc_now() -> datetime:
    """The current time in UTC (the one place the core reads the clock)."""
    return datetime.now(UTC)


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
