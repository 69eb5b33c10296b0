"""Metric alarm evaluation against AWS's worked tables.

The two tables are copied from "Using Amazon CloudWatch alarms", section "How alarm state
is evaluated when data is missing"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html):
the 5 most recent datapoints, newest on the right; 0 does not breach, X breaches,
- is missing; Evaluation Periods 3, Datapoints to Alarm 3 (first table) and 2 (second).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paymig.semantics.cloudwatch_alarm import (
    AlarmState,
    Basis,
    InvalidAlarmError,
    MetricAlarm,
    TreatMissingData,
    evaluate,
    evaluate_range,
    period_starts,
)

KEEP = "Retain current state"
TREATMENTS = (
    TreatMissingData.MISSING,
    TreatMissingData.IGNORE,
    TreatMissingData.BREACHING,
    TreatMissingData.NOT_BREACHING,
)

# (datapoints, datapoints that must be filled, MISSING, IGNORE, BREACHING, NOT BREACHING)
THREE_OF_THREE = [
    ("0 - X - X", 0, "OK", "OK", "OK", "OK"),
    ("0 - - - -", 2, "OK", "OK", "OK", "OK"),
    ("- - - - -", 3, "INSUFFICIENT_DATA", KEEP, "ALARM", "OK"),
    ("0 X X - X", 0, "ALARM", "ALARM", "ALARM", "ALARM"),
    ("- - X - -", 2, "ALARM", KEEP, "ALARM", "OK"),
]
TWO_OF_THREE = [
    ("0 - X - X", 0, "ALARM", "ALARM", "ALARM", "ALARM"),
    ("0 0 X 0 X", 0, "ALARM", "ALARM", "ALARM", "ALARM"),
    ("0 - X - -", 1, "OK", "OK", "ALARM", "OK"),
    ("- - - - 0", 2, "OK", "OK", "ALARM", "OK"),
    ("- - - X -", 2, "ALARM", KEEP, "ALARM", "OK"),
]


BASE: dict[str, object] = {
    "comparison_operator": "GreaterThanThreshold",
    "threshold": 1.0,
    "period_seconds": 300,
    "evaluation_periods": 3,
}


def alarm(
    m: int | None, treatment: TreatMissingData = TreatMissingData.MISSING, **overrides: object
) -> MetricAlarm:
    settings = {**BASE, "datapoints_to_alarm": m, "treat_missing_data": treatment, **overrides}
    return MetricAlarm(**settings)  # type: ignore[arg-type]


def points(row: str) -> list[float | None]:
    """AWS's notation: 0 within the threshold, X breaching, - missing."""
    return [{"0": 0.0, "X": 5.0, "-": None}[mark] for mark in row.split()]


@pytest.mark.parametrize(
    ("m", "row"),
    [(3, row) for row in THREE_OF_THREE] + [(2, row) for row in TWO_OF_THREE],
    ids=lambda value: value[0] if isinstance(value, tuple) else f"M={value}",
)
def test_aws_missing_data_tables(m: int, row: tuple[str, int, str, str, str, str]) -> None:
    datapoints, to_fill, *expected = row
    for treatment, wanted in zip(TREATMENTS, expected, strict=True):
        for current in AlarmState:
            result = evaluate_range(alarm(m, treatment), points(datapoints), current)
            assert result.state == (current if wanted == KEEP else AlarmState(wanted)), (
                treatment,
                current,
                result.reason,
            )
            assert result.to_fill == to_fill


@pytest.mark.parametrize("row", ["- - - - X", "- - - X -"])
def test_fresh_breach_is_not_a_premature_alarm(row: str) -> None:
    # "the alarm does not go immediately into ALARM state when the data is either
    # - - - - X or - - - X - and Datapoints to Alarm is 3".
    result = evaluate_range(alarm(3), points(row), AlarmState.OK)
    assert result.state is AlarmState.OK
    assert result.basis is Basis.UNDECIDED


def test_premature_alarm_is_named() -> None:
    result = evaluate_range(alarm(3), points("- - X - -"), AlarmState.OK)
    assert (result.state, result.basis) == (AlarmState.ALARM, Basis.PREMATURE)


def test_dynamodb_alarms_always_ignore_missing_data() -> None:
    # "Alarms that evaluate metrics in the AWS/DynamoDB namespace always ignore missing
    # data even if you choose a different option".
    dynamo = alarm(3, TreatMissingData.BREACHING, namespace="AWS/DynamoDB")
    result = evaluate_range(dynamo, points("- - - - -"), AlarmState.OK)
    assert result.state is AlarmState.OK
    other = alarm(3, TreatMissingData.BREACHING, namespace="AWS/RDS")
    assert evaluate_range(other, points("- - - - -"), AlarmState.OK).state is AlarmState.ALARM


def test_datapoints_to_alarm_defaults_to_evaluation_periods() -> None:
    default = alarm(None)
    assert default.m == 3
    assert evaluate_range(default, points("0 0 X X 0"), AlarmState.OK).state is AlarmState.OK
    assert evaluate_range(default, points("0 0 X X X"), AlarmState.OK).state is AlarmState.ALARM


@pytest.mark.parametrize(
    ("operator", "breaching"),
    [
        ("GreaterThanThreshold", [False, False, True]),
        ("GreaterThanOrEqualToThreshold", [False, True, True]),
        ("LessThanThreshold", [True, False, False]),
        ("LessThanOrEqualToThreshold", [True, True, False]),
    ],
)
def test_comparison_operators(operator: str, breaching: list[bool]) -> None:
    one = alarm(1, comparison_operator=operator, evaluation_periods=1)
    assert [one.breaches(v) for v in (0.5, 1.0, 1.5)] == breaching


def test_evaluate_reads_datapoints_by_period_start() -> None:
    end = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    starts = period_starts(end, 300, 5)
    assert starts[0] == end - timedelta(minutes=25)
    assert starts[-1] == end - timedelta(minutes=5)
    # "- - X - -" in time: only the middle period has a (breaching) datapoint; a
    # datapoint older than the evaluation range is outside what CloudWatch retrieves.
    datapoints = {starts[2]: 5.0, end - timedelta(hours=1): 0.0}
    result = evaluate(
        alarm(3), datapoints, range_end=end, evaluation_range=5, current_state=AlarmState.OK
    )
    assert result.state is AlarmState.ALARM
    assert result.basis is Basis.PREMATURE


def test_evaluate_rejects_a_datapoint_between_period_starts() -> None:
    end = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    with pytest.raises(InvalidAlarmError, match="not the start of a 300-second period"):
        evaluate(
            alarm(3),
            {end - timedelta(minutes=7): 5.0},
            range_end=end,
            evaluation_range=5,
            current_state=AlarmState.OK,
        )


def test_evaluate_needs_time_zones() -> None:
    naive = datetime(2024, 5, 1, 12, 0)
    with pytest.raises(InvalidAlarmError, match="must carry a time zone"):
        evaluate(alarm(3), {}, range_end=naive, evaluation_range=5, current_state=AlarmState.OK)
    with pytest.raises(InvalidAlarmError, match="must carry a time zone"):
        evaluate(
            alarm(3),
            {naive: 1.0},
            range_end=naive.replace(tzinfo=UTC),
            evaluation_range=5,
            current_state=AlarmState.OK,
        )


def test_evaluation_range_must_cover_the_evaluation_periods() -> None:
    with pytest.raises(InvalidAlarmError, match="fewer than EvaluationPeriods"):
        evaluate_range(alarm(3), [5.0, 5.0], AlarmState.OK)


@pytest.mark.parametrize("period", [10, 30, 60, 120, 3600])
def test_valid_periods(period: int) -> None:
    assert alarm(1, period_seconds=period, evaluation_periods=1).period_seconds == period


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"period_seconds": 45}, "Period: 45"),
        ({"period_seconds": 0}, "Period: 0"),
        ({"period_seconds": 60, "evaluation_periods": 1441}, "exceeds one day"),
        ({"evaluation_periods": 0}, "EvaluationPeriods"),
        ({"datapoints_to_alarm": 4}, "DatapointsToAlarm: 4"),
        ({"datapoints_to_alarm": 0}, "DatapointsToAlarm: 0"),
        ({"comparison_operator": "GreaterThanUpperThreshold"}, "anomaly detection"),
        ({"comparison_operator": "Above"}, "not a CloudWatch operator"),
        ({"threshold": float("nan")}, "Threshold"),
    ],
)
def test_put_metric_alarm_limits(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidAlarmError, match=message):
        MetricAlarm(**{**BASE, "datapoints_to_alarm": 1, **overrides})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- properties

evaluation_ranges = st.lists(st.sampled_from([0.0, 5.0, None]), min_size=3, max_size=8)


@given(values=evaluation_ranges, m=st.integers(1, 3), current=st.sampled_from(AlarmState))
def test_breaching_is_at_least_as_alarming_as_missing(
    values: list[float | None], m: int, current: AlarmState
) -> None:
    def state(treatment: TreatMissingData) -> AlarmState:
        return evaluate_range(alarm(m, treatment), values, current).state

    if state(TreatMissingData.NOT_BREACHING) is AlarmState.ALARM:
        assert state(TreatMissingData.MISSING) is AlarmState.ALARM
    if state(TreatMissingData.MISSING) is AlarmState.ALARM:
        assert state(TreatMissingData.BREACHING) is AlarmState.ALARM


@given(
    values=st.lists(st.sampled_from([0.0, 5.0]), min_size=3, max_size=8),
    m=st.integers(1, 3),
    treatment=st.sampled_from(TREATMENTS),
)
def test_without_missing_data_the_newest_n_decide(
    values: list[float], m: int, treatment: TreatMissingData
) -> None:
    breaching = sum(v > 1.0 for v in values[-3:])
    result = evaluate_range(alarm(m, treatment), list(values), AlarmState.INSUFFICIENT_DATA)
    assert result.state is (AlarmState.ALARM if breaching >= m else AlarmState.OK)


@given(values=evaluation_ranges, m=st.integers(1, 3), current=st.sampled_from(AlarmState))
def test_only_missing_treatment_reaches_insufficient_data(
    values: list[float | None], m: int, current: AlarmState
) -> None:
    for treatment in (TreatMissingData.BREACHING, TreatMissingData.NOT_BREACHING):
        assert evaluate_range(alarm(m, treatment), values, current).state in (
            AlarmState.OK,
            AlarmState.ALARM,
        )
    ignored = evaluate_range(alarm(m, TreatMissingData.IGNORE), values, current).state
    assert ignored is not AlarmState.INSUFFICIENT_DATA or current is AlarmState.INSUFFICIENT_DATA
