"""Metric math against the worked examples of "Use metric math"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paymig.semantics.cloudwatch_alarm import AlarmState, MetricAlarm, evaluate
from paymig.semantics.cloudwatch_metric_math import (
    MetricMathError,
    evaluate_expression,
    metric_ids,
    parse_expression,
)

START = datetime(2024, 5, 1, tzinfo=UTC)
GRID = [START + timedelta(minutes=5 * i) for i in range(5)]

#: The 5xx-rate alarm's expression (paymig.infra.observability).
FIVE_XX = "IF(m3 > 0, 100 * (FILL(m1, 0) + FILL(m2, 0)) / m3, 0)"


def series(*values: float | None) -> dict[datetime, float]:
    """A series over GRID from AWS's notation, None for '-'."""
    return {moment: v for moment, v in zip(GRID, values, strict=False) if v is not None}


def run(expression: str, **metrics: dict[datetime, float]) -> list[float | None]:
    result = evaluate_expression(expression, metrics, GRID)
    return [result.get(moment) for moment in GRID]


# "Comparison and logical operators": metric1 [30, 20, 0, 0], metric2 [20, -, 20, -].
@pytest.mark.parametrize(
    ("expression", "output"),
    [
        ("(metric1 < metric2)", [0, 0, 1, 0]),
        ("(metric1 >= 30)", [1, 0, 0, 0]),
        ("(metric1 > 15 AND metric2 > 15)", [1, 0, 0, 0]),
        ("(metric1 > 15 && metric2 > 15)", [1, 0, 0, 0]),
    ],
)
def test_comparison_and_logical_operators(expression: str, output: list[float]) -> None:
    metric1 = series(30, 20, 0, 0)
    metric2 = series(20, None, 20, None)
    assert run(expression, metric1=metric1, metric2=metric2)[:4] == output


# "Using IF expressions": metric1 [1, 1, 0, 0, -], metric2 [30, -, 0, 0, 30],
# metric3 [0, 0, 20, -, 20].
@pytest.mark.parametrize(
    ("expression", "output"),
    [
        ("IF(metric1, metric2, metric3)", [30, 0, 20, None, None]),
        ("IF(metric1, 5, metric3)", [5, 5, 20, None, None]),
        ("IF(metric1, metric2, 5)", [30, 0, 5, 5, None]),
    ],
)
def test_if_tables(expression: str, output: list[float | None]) -> None:
    result = run(
        expression,
        metric1=series(1, 1, 0, 0, None),
        metric2=series(30, None, 0, 0, 30),
        metric3=series(0, 0, 20, None, 20),
    )
    assert result == output


def test_if_without_false_value_drops_false_datapoints() -> None:
    assert run("IF(m1 < 400, m1)", m1=series(100, 500, None, 399, 400)) == [
        100,
        None,
        None,
        399,
        None,
    ]


def test_if_with_a_scalar_condition_picks_a_whole_series() -> None:
    m1, m2 = series(1, 2, 3), series(None, 9)
    assert run("IF(1, m1, m2)", m1=m1, m2=m2) == [1, 2, 3, None, None]
    assert run("IF(0, m1, m2)", m1=m1, m2=m2) == [None, 9, None, None, None]
    assert run("IF(0, m1)", m1=m1) == [None] * 5


def test_missing_values_are_zero_in_arithmetic_and_division_by_zero_drops() -> None:
    # "Missing values in a time series are treated as 0. If the value of a data point
    # causes a function to attempt to divide by zero, the data point is dropped."
    m1, m2 = series(1, 2, None, 4), series(10, None, None, 0)
    assert run("m1 + m2", m1=m1, m2=m2) == [11, 2, None, 4, None]
    assert run("m1 / m2", m1=m1, m2=m2) == [0.1, None, None, None, None]
    assert run("-m1 * 2 - 1", m1=m1) == [-3, -5, None, -9, None]


def test_fill_fills_every_timestamp() -> None:
    assert run("FILL(m1, 7)", m1=series(1, None, 3)) == [1, 7, 3, 7, 7]


@pytest.mark.parametrize(
    ("requests", "elb_5xx", "target_5xx", "rate"),
    [
        (200, None, None, 0.0),  # HTTPCode_*_5XX_Count only exist when nonzero
        (200, 2, None, 1.0),
        (200, None, 4, 2.0),
        (200, 2, 4, 3.0),
        (0, None, None, 0.0),  # the IF's false branch
        (None, 3, None, None),  # no RequestCount datapoint: the timestamp is dropped
    ],
)
def test_five_xx_rate_expression(
    requests: float | None, elb_5xx: float | None, target_5xx: float | None, rate: float | None
) -> None:
    result = run(FIVE_XX, m1=series(elb_5xx), m2=series(target_5xx), m3=series(requests))
    assert result[0] == rate


def test_five_xx_alarm_on_the_expression() -> None:
    """The expression's output is what the alarm evaluates, missing where m3 is."""
    m3 = series(100, 100, None, 100, 100)
    m1 = series(None, 10, None, 20, 30)
    rate = evaluate_expression(FIVE_XX, {"m1": m1, "m2": {}, "m3": m3}, GRID)
    assert [rate.get(moment) for moment in GRID] == [0, 10, None, 20, 30]
    alarm = MetricAlarm("GreaterThanThreshold", 5.0, 300, 3, 2)
    end = GRID[-1] + timedelta(minutes=5)
    result = evaluate(alarm, rate, range_end=end, evaluation_range=5, current_state=AlarmState.OK)
    assert result.state is AlarmState.ALARM


def test_metric_ids() -> None:
    assert metric_ids(parse_expression(FIVE_XX)) == {"m1", "m2", "m3"}
    assert metric_ids(parse_expression("-m4 + 2")) == {"m4"}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("m1 ^ 2", "'\\^' is not supported"),
        ("SUM(m1)", "function SUM is not supported"),
        ("METRICS()", "function METRICS is not supported"),
        ("FILL(m1, REPEAT)", "FILL with REPEAT"),
        ("FILL(m1, LINEAR)", "FILL with LINEAR"),
        ("FILL(m1, m2)", "FILL with a time series"),
        ("FILL(1, 2)", "first argument must be a time series"),
        ("FILL(m1)", "FILL takes 2 arguments"),
        ("IF(m1)", "IF takes 2 or 3 arguments"),
        ("IF(1, 2, 3)", "time series branches"),
        ("IF(1, m1, 2)", "time series branches"),
        ("m1 > 1 AND m2 > 1 OR m1 > 2", "AND and OR mixed"),
        ("m1 < m2 < 3", "do not chain"),
        ("[m1, m2]", "cannot read"),
        ("SEARCH('{AWS/EC2}', 'Sum', 300)", "cannot read"),
        ("1 + 2", "not a time series"),
        ("m9 + 1", "unknown metric id 'm9'"),
        ("m1 +", "ends too early"),
        ("(m1 + 1 m2", "expected '\\)'"),
        ("m1 m2", "unexpected 'm2'"),
        ("m1 + )", "unexpected '\\)'"),
        ("1 / 0 + m1", "division of a number by zero"),
    ],
)
def test_unsupported_or_invalid(expression: str, message: str) -> None:
    with pytest.raises(MetricMathError, match=message):
        evaluate_expression(expression, {"m1": series(1), "m2": series(2)}, GRID)


def test_datapoints_off_the_grid_are_rejected() -> None:
    with pytest.raises(MetricMathError, match="not one of the timestamps"):
        evaluate_expression("m1", {"m1": {START + timedelta(minutes=1): 1.0}}, GRID)


def test_parenthesised_logical_mix_is_accepted() -> None:
    result = run("(m1 > 1 AND m2 > 1) OR m1 > 2", m1=series(2, 3), m2=series(2, 0))
    assert result[:2] == [1, 1]


values = st.lists(st.one_of(st.none(), st.integers(-50, 50).map(float)), min_size=5, max_size=5)


@given(a=values, b=values)
def test_sum_is_per_timestamp_with_missing_as_zero(
    a: list[float | None], b: list[float | None]
) -> None:
    result = run("m1 + m2", m1=series(*a), m2=series(*b))
    for x, y, got in zip(a, b, result, strict=True):
        expected = None if x is None and y is None else (x or 0.0) + (y or 0.0)
        assert got == expected
