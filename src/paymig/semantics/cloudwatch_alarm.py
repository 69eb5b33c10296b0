"""How CloudWatch evaluates a metric alarm from its datapoints.

Source: Amazon CloudWatch User Guide, "Using Amazon CloudWatch alarms"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html),
sections "Evaluating an alarm", "Configuring how CloudWatch alarms treat missing data"
(read in the 2023 and the current guide: same text, same two tables), "How alarm state
is evaluated when data is missing" and "Avoiding premature transitions to alarm state";
and the PutMetricAlarm API reference for the limits on Period, EvaluationPeriods and
ComparisonOperator.

The evaluation range. CloudWatch "attempts to retrieve a higher number of data points than
the number specified as Evaluation Periods"; how many "depends on the length of the alarm
period and whether it is based on a metric with standard resolution or high resolution".
AWS publishes no formula (its worked example retrieves 5 for 3 evaluation periods), so
the caller states the range it assumes; nothing here invents one.

The rule for intermittent data (where fewer real datapoints exist than Evaluation
Periods). AWS's prose and its two worked tables disagree on one row (M=2, N=3,
``0 - X - -`` is OK under ``missing`` in the table, while the prose about the oldest
breaching datapoint would alarm). We reproduce the tables exactly with this reading,
which also keeps ``breaching`` at least as alarming as ``missing``:

- ``breaching`` / ``notBreaching``: the real datapoints plus as many filled ones as
  Evaluation Periods needs ("CloudWatch uses missing data points only as few times as
  possible"); ALARM when at least M of them breach.
- ``missing`` / ``ignore``: only the real datapoints count. M of them breaching is ALARM;
  any non-breaching one makes it OK. When all of them breach but fewer than M do, the
  premature-alarm rule decides: ALARM (``missing``) or the state kept (``ignore``) when
  the oldest breaching datapoint is at least M periods old; otherwise the alarm "does not
  go immediately into ALARM state" and keeps its state (our reading of that sentence).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from paymig.errors import PaymigError

#: PutMetricAlarm: "Valid values are 10, 30, and any multiple of 60."
HIGH_RESOLUTION_PERIODS = (10, 30)
#: PutMetricAlarm: Period multiplied by EvaluationPeriods cannot be more than 86,400 s.
MAX_EVALUATION_SECONDS = 86_400
#: "Using Amazon CloudWatch alarms": AWS/DynamoDB alarms always ignore missing data.
ALWAYS_IGNORES_MISSING = frozenset({"AWS/DynamoDB"})

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
#: PutMetricAlarm: "used only for alarms based on anomaly detection models".
ANOMALY_DETECTION_OPERATORS = frozenset(
    {
        "LessThanLowerOrGreaterThanUpperThreshold",
        "LessThanLowerThreshold",
        "GreaterThanUpperThreshold",
    }
)


class AlarmState(StrEnum):
    """The three states of a metric alarm ("Metric alarm states")."""

    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


class TreatMissingData(StrEnum):
    """How an alarm treats missing datapoints; ``missing`` is the default."""

    MISSING = "missing"
    IGNORE = "ignore"
    BREACHING = "breaching"
    NOT_BREACHING = "notBreaching"


class Basis(StrEnum):
    """Which documented rule decided an evaluation."""

    ALL_MISSING = "all-missing"  # every datapoint in the evaluation range is missing
    REAL = "real"  # at least Evaluation Periods real datapoints: the newest N decide
    FILLED = "filled"  # too few real datapoints, missing ones filled (breaching/not)
    REAL_ONLY = "real-only"  # too few real datapoints, only they count (missing/ignore)
    PREMATURE = "premature"  # the premature-alarm rule
    UNDECIDED = "undecided"  # too little to change state: the state is kept


class InvalidAlarmError(PaymigError):
    """An alarm configuration CloudWatch would reject, or one we cannot evaluate."""


@dataclass(frozen=True)
class MetricAlarm:
    """The settings of a metric alarm that decide its state."""

    comparison_operator: str
    threshold: float
    period_seconds: int
    evaluation_periods: int
    datapoints_to_alarm: int | None = None  # None: equal to evaluation_periods
    treat_missing_data: TreatMissingData = TreatMissingData.MISSING
    namespace: str | None = None

    def __post_init__(self) -> None:
        """Reject what PutMetricAlarm rejects, and the anomaly-detection operators."""
        _validate(self)

    @property
    def m(self) -> int:
        """Datapoints to Alarm (M)."""
        return (
            self.evaluation_periods
            if self.datapoints_to_alarm is None
            else (self.datapoints_to_alarm)
        )

    @property
    def effective_treatment(self) -> TreatMissingData:
        """The treatment CloudWatch applies (AWS/DynamoDB alarms always ignore)."""
        if self.namespace in ALWAYS_IGNORES_MISSING:
            return TreatMissingData.IGNORE
        return self.treat_missing_data

    def breaches(self, value: float) -> bool:
        """Whether one datapoint violates the threshold."""
        return COMPARISONS[self.comparison_operator](value, self.threshold)


def _validate(alarm: MetricAlarm) -> None:
    """PutMetricAlarm's documented limits, one line per violation."""
    if alarm.comparison_operator in ANOMALY_DETECTION_OPERATORS:
        raise InvalidAlarmError(
            f"ComparisonOperator: {alarm.comparison_operator} needs an anomaly detection "
            "band, which this evaluator does not model"
        )
    if alarm.comparison_operator not in COMPARISONS:
        raise InvalidAlarmError(
            f"ComparisonOperator: {alarm.comparison_operator!r} is not a CloudWatch operator"
        )
    period = alarm.period_seconds
    if period <= 0 or (period not in HIGH_RESOLUTION_PERIODS and period % 60):
        raise InvalidAlarmError(f"Period: {period} is not 10, 30 or a multiple of 60")
    if alarm.evaluation_periods < 1:
        raise InvalidAlarmError("EvaluationPeriods: must be at least 1")
    if period * alarm.evaluation_periods > MAX_EVALUATION_SECONDS:
        raise InvalidAlarmError(
            f"EvaluationPeriods: {alarm.evaluation_periods} x {period} s exceeds one day"
        )
    if not 1 <= alarm.m <= alarm.evaluation_periods:
        # "Datapoints to Alarm is the number of data points within the Evaluation
        # Periods that must be breaching."
        raise InvalidAlarmError(
            f"DatapointsToAlarm: {alarm.m} is not between 1 and EvaluationPeriods "
            f"({alarm.evaluation_periods})"
        )
    if not math.isfinite(alarm.threshold):
        raise InvalidAlarmError(f"Threshold: {alarm.threshold} is not a finite number")


@dataclass(frozen=True)
class Evaluation:
    """The state an evaluation sets, the rule that decided it, and why, in words.

    ``to_fill`` is how many of the Evaluation Periods datapoints had no real datapoint
    to use (the second column of AWS's tables).
    """

    state: AlarmState
    basis: Basis
    reason: str
    to_fill: int


def period_starts(range_end: datetime, period_seconds: int, count: int) -> list[datetime]:
    """The start of each of the ``count`` periods that end at ``range_end``, oldest first."""
    step = timedelta(seconds=period_seconds)
    return [range_end - step * back for back in range(count, 0, -1)]


def evaluate(
    alarm: MetricAlarm,
    datapoints: Mapping[datetime, float],
    *,
    range_end: datetime,
    evaluation_range: int,
    current_state: AlarmState,
) -> Evaluation:
    """Evaluate the alarm over the ``evaluation_range`` periods that end at ``range_end``.

    ``datapoints`` maps a period's start to the period's statistic; a period without an
    entry is missing. Datapoints older than the range are outside what CloudWatch
    retrieves and are ignored; one inside the range must sit on a period start.
    """
    if range_end.tzinfo is None or any(moment.tzinfo is None for moment in datapoints):
        raise InvalidAlarmError("datapoints, range_end: timestamps must carry a time zone")
    starts = period_starts(range_end, alarm.period_seconds, evaluation_range)
    known = set(starts)
    for moment in datapoints:
        if starts[0] <= moment < range_end and moment not in known:
            raise InvalidAlarmError(
                f"datapoints: {moment.isoformat()} is not the start of a "
                f"{alarm.period_seconds}-second period ending at {range_end.isoformat()}"
            )
    return evaluate_range(alarm, [datapoints.get(start) for start in starts], current_state)


def evaluate_range(
    alarm: MetricAlarm, values: Sequence[float | None], current_state: AlarmState
) -> Evaluation:
    """Evaluate the alarm over one evaluation range, oldest value first (None = missing).

    This is the form of AWS's worked tables: ``0 - X - X`` is ``[0, None, 5, None, 5]``
    for an alarm whose threshold 0 does not breach and 5 does.
    """
    n = alarm.evaluation_periods
    if len(values) < n:
        raise InvalidAlarmError(
            f"evaluation range: {len(values)} periods, fewer than EvaluationPeriods ({n})"
        )
    real = [value for value in values if value is not None]
    to_fill = max(0, n - len(real))
    if not real:
        return _all_missing(alarm, current_state)
    if not to_fill:
        # Enough real datapoints: the most recent N decide; missing ones are skipped.
        newest = real[-n:]
        return _count(alarm, sum(map(alarm.breaches, newest)), Basis.REAL, f"{n} newest real", 0)
    if alarm.effective_treatment in (TreatMissingData.BREACHING, TreatMissingData.NOT_BREACHING):
        breaching = sum(map(alarm.breaches, real))
        if alarm.effective_treatment is TreatMissingData.BREACHING:
            breaching += to_fill
        described = f"{len(real)} real and {to_fill} filled ({alarm.effective_treatment})"
        return _count(alarm, breaching, Basis.FILLED, described, to_fill)
    return _real_only(alarm, values, current_state)


def _all_missing(alarm: MetricAlarm, current_state: AlarmState) -> Evaluation:
    """Every datapoint in the evaluation range is missing (third row of AWS's table)."""
    treatment = alarm.effective_treatment
    reason = f"no datapoint in the evaluation range; missing data is {treatment}"
    state = {
        TreatMissingData.MISSING: AlarmState.INSUFFICIENT_DATA,
        TreatMissingData.IGNORE: current_state,
        TreatMissingData.BREACHING: AlarmState.ALARM,
        TreatMissingData.NOT_BREACHING: AlarmState.OK,
    }[treatment]
    return Evaluation(state, Basis.ALL_MISSING, reason, alarm.evaluation_periods)


def _count(
    alarm: MetricAlarm, breaching: int, basis: Basis, described: str, to_fill: int
) -> Evaluation:
    """ALARM when at least M of the evaluated datapoints breach, else OK."""
    state = AlarmState.ALARM if breaching >= alarm.m else AlarmState.OK
    reason = (
        f"{breaching} of {alarm.evaluation_periods} evaluated datapoints ({described}) "
        f"breach {alarm.comparison_operator} {alarm.threshold}; {alarm.m} needed to alarm"
    )
    return Evaluation(state, basis, reason, to_fill)


def _real_only(
    alarm: MetricAlarm, values: Sequence[float | None], current_state: AlarmState
) -> Evaluation:
    """Too few real datapoints, missing data is ``missing`` or ``ignore``."""
    real = [value for value in values if value is not None]
    to_fill = alarm.evaluation_periods - len(real)
    breaching = sum(map(alarm.breaches, real))
    if breaching >= alarm.m or breaching < len(real):
        # Enough breaching real datapoints, or a non-breaching one: the real ones decide.
        return _count(alarm, breaching, Basis.REAL_ONLY, f"only {len(real)} real", to_fill)
    # Every real datapoint breaches, but fewer than M of them do.
    oldest_breach_age = len(values) - next(i for i, v in enumerate(values) if v is not None)
    if oldest_breach_age >= alarm.m:
        # "alarms are designed to always go into ALARM state when the oldest available
        # breaching datapoint ... is at least as old as the value of Datapoints to
        # Alarm, and all other more recent data points are breaching or missing".
        ignoring = alarm.effective_treatment is TreatMissingData.IGNORE
        return Evaluation(
            current_state if ignoring else AlarmState.ALARM,
            Basis.PREMATURE,
            f"the oldest breaching datapoint is {oldest_breach_age} periods old (>= "
            f"{alarm.m}) and every newer one breaches or is missing"
            + ("; missing data is ignored, so the state is kept" if ignoring else ""),
            to_fill,
        )
    return Evaluation(
        current_state,
        Basis.UNDECIDED,
        f"{breaching} breaching datapoint(s), {oldest_breach_age} period(s) old: too "
        f"recent for the premature-alarm rule (needs {alarm.m}); the state is kept",
        to_fill,
    )
