"""The rehearsal's alarm evaluation: alarms and datapoints in the emulator, AWS's rules.

The missing-data tables are AWS's, from "Using Amazon CloudWatch alarms", section "How
alarm state is evaluated when data is missing" (the same rows as the semantics tests):
the 5 most recent datapoints, newest on the right; 0 within the threshold, X breaching,
- missing; Evaluation Periods 3, Datapoints to Alarm 3 and 2. Here each row is written
to the real emulator with PutMetricData, the alarm is created there with PutMetricAlarm,
and the state comes out of the rehearsal's own path: DescribeAlarms, GetMetricData,
then the documented rules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from paymig.rehearsal.alarms import (
    AlarmEvaluator,
    EmulatorMetrics,
    Transition,
    alarm_definition,
    evaluate_alarm,
    evaluation_interval,
    evaluation_range,
    nearest_rank,
)
from paymig.rehearsal.delivery import CompositeDefinition
from paymig.rehearsal.stack_defs import put_composite
from paymig.semantics.cloudwatch_alarm import AlarmState

pytestmark = pytest.mark.slow

KEEP = "keep"
THREE_OF_THREE = [
    ("0 - X - X", "OK", "OK", "OK", "OK"),
    ("0 - - - -", "OK", "OK", "OK", "OK"),
    ("- - - - -", "INSUFFICIENT_DATA", KEEP, "ALARM", "OK"),
    ("0 X X - X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("- - X - -", "ALARM", KEEP, "ALARM", "OK"),
]
TWO_OF_THREE = [
    ("0 - X - X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("0 0 X 0 X", "ALARM", "ALARM", "ALARM", "ALARM"),
    ("0 - X - -", "OK", "OK", "ALARM", "OK"),
    ("- - - - 0", "OK", "OK", "ALARM", "OK"),
    ("- - - X -", "ALARM", KEEP, "ALARM", "OK"),
]
TREATMENTS = ("missing", "ignore", "breaching", "notBreaching")
#: A range end in the past, on a 10-second boundary.
END = datetime.now(UTC).replace(microsecond=0, second=0) - timedelta(minutes=30)


def _stat(query_id: str, name: str, stat: str = "Maximum", dims: Any = ()) -> dict[str, Any]:
    return {"Id": query_id, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": "Test", "MetricName": name,
                   "Dimensions": [{"Name": k, "Value": v} for k, v in dims]},
        "Period": 10, "Stat": stat}}  # fmt: skip


def _put(cloudwatch: Any, name: str, values: dict[datetime, float], dims: Any = ()) -> None:
    cloudwatch.put_metric_data(Namespace="Test", MetricData=[
        {"MetricName": name, "Timestamp": moment, "Value": value, "StorageResolution": 1,
         "Dimensions": [{"Name": k, "Value": v} for k, v in dims]}
        for moment, value in values.items()])  # fmt: skip


def _row(marks: str) -> dict[datetime, float]:
    starts = [END - timedelta(seconds=10 * back) for back in range(5, 0, -1)]
    values = {"0": 0.0, "X": 5.0}
    return {start: values[m] for start, m in zip(starts, marks.split(), strict=True) if m != "-"}


def _no_percentiles(*_: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("m", "row"), [(3, r) for r in THREE_OF_THREE] + [(2, r) for r in TWO_OF_THREE],
    ids=lambda v: v[0] if isinstance(v, tuple) else f"M={v}",
)  # fmt: skip
def test_aws_missing_data_tables_through_the_emulator(
    aws: Any, m: int, row: tuple[str, str, str, str, str]
) -> None:
    marks, *expected = row
    cloudwatch = aws.client("cloudwatch")
    metrics = EmulatorMetrics(cloudwatch, _no_percentiles)
    _put(cloudwatch, "signal", _row(marks))
    for treatment, wanted in zip(TREATMENTS, expected, strict=True):
        name = f"alarm-{treatment}"
        cloudwatch.put_metric_alarm(
            AlarmName=name, ComparisonOperator="GreaterThanThreshold", Threshold=1.0,
            EvaluationPeriods=3, DatapointsToAlarm=m, TreatMissingData=treatment,
            Metrics=[_stat("m1", "signal")],
        )  # fmt: skip
        described = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        definition = alarm_definition(described)
        assert evaluation_range(definition.alarm.evaluation_periods) == 5  # as AWS's tables
        for current in AlarmState:
            outcome = evaluate_alarm(definition, metrics, END, current)
            state = current if wanted == KEEP else AlarmState(wanted)
            assert outcome.evaluation.state is state, (treatment, current, outcome.evaluation)


def _rate_alarm(cloudwatch: Any, name: str = "5xx-rate") -> Any:
    """The stack's 5xx-rate alarm shape: three sums and the IF/FILL expression."""
    dims = (("LoadBalancer", "app/alb/1"),)
    cloudwatch.put_metric_alarm(
        AlarmName=name, ComparisonOperator="GreaterThanThreshold", Threshold=1.0,
        EvaluationPeriods=2, DatapointsToAlarm=2, TreatMissingData="notBreaching",
        AlarmActions=["arn:aws:sns:us-east-2:123456789012:alerts"],
        Metrics=[
            {**_stat("m1", "HTTPCode_ELB_5XX_Count", "Sum", dims), "ReturnData": False},
            {**_stat("m2", "HTTPCode_Target_5XX_Count", "Sum", dims), "ReturnData": False},
            {**_stat("m3", "RequestCount", "Sum", dims), "ReturnData": False},
            {"Id": "e1", "Expression": "IF(m3 > 0, 100 * (FILL(m1, 0) + FILL(m2, 0)) / m3, 0)",
             "Label": "5xx rate (%)", "ReturnData": True},
        ],
    )  # fmt: skip
    return alarm_definition(cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0])


def test_the_5xx_rate_is_computed_with_the_alarms_metric_math(aws: Any) -> None:
    cloudwatch = aws.client("cloudwatch")
    definition = _rate_alarm(cloudwatch)
    starts = [END - timedelta(seconds=10 * back) for back in range(4, 0, -1)]
    dims = (("LoadBalancer", "app/alb/1"),)
    # Four periods: quiet, no traffic at all, 2 of 40 answered 5xx by the target, and
    # 10 of 20 failed by the load balancer (ELB 502) with 5 by the target.
    _put(cloudwatch, "RequestCount", {starts[0]: 30.0, starts[2]: 40.0, starts[3]: 20.0}, dims)
    _put(cloudwatch, "HTTPCode_Target_5XX_Count", {starts[2]: 2.0, starts[3]: 5.0}, dims)
    _put(cloudwatch, "HTTPCode_ELB_5XX_Count", {starts[3]: 10.0}, dims)
    outcome = evaluate_alarm(definition, EmulatorMetrics(cloudwatch, _no_percentiles), END,
                             AlarmState.OK)  # fmt: skip
    # Period with no RequestCount: the IF's condition is missing, so is the datapoint.
    assert outcome.datapoints == (0.0, None, 5.0, 75.0)
    assert outcome.evaluation.state is AlarmState.ALARM
    quiet = evaluate_alarm(definition, EmulatorMetrics(cloudwatch, _no_percentiles),
                           starts[2], AlarmState.ALARM)  # fmt: skip
    assert quiet.datapoints[-2:] == (0.0, None)
    assert quiet.evaluation.state is AlarmState.OK  # missing is notBreaching


def test_percentiles_come_from_the_served_values(aws: Any) -> None:
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="p99", ComparisonOperator="GreaterThanThreshold", Threshold=1.0,
        EvaluationPeriods=3, DatapointsToAlarm=2, TreatMissingData="notBreaching",
        Metrics=[_stat("m1", "TargetResponseTime", "p99")],
    )  # fmt: skip
    definition = alarm_definition(cloudwatch.describe_alarms(AlarmNames=["p99"])["MetricAlarms"][0])
    asked: list[tuple[str, datetime]] = []

    def served(query: Any, start: datetime, end: datetime) -> list[float] | None:
        asked.append((query.stat, start))
        assert end - start == timedelta(seconds=10)
        return [0.1] * 98 + [1.5, 2.0] if start >= END - timedelta(seconds=20) else None

    outcome = evaluate_alarm(definition, EmulatorMetrics(cloudwatch, served), END, AlarmState.OK)
    assert outcome.datapoints == (None, None, None, 1.5, 1.5)
    assert outcome.evaluation.state is AlarmState.ALARM
    assert [stat for stat, _ in asked] == ["p99"] * 5
    assert nearest_rank([3.0, 1.0, 2.0], 50) == 2.0 and nearest_rank([5.0], 99) == 5.0


def test_the_evaluator_writes_states_and_the_composite_follows(aws: Any) -> None:
    cloudwatch = aws.client("cloudwatch")
    rate = _rate_alarm(cloudwatch, "stack-5xx-rate")
    quiet = _rate_alarm(cloudwatch, "stack-other")
    composite = CompositeDefinition(
        "stack-health", "arn:aws:cloudwatch:us-east-2:123456789012:alarm:stack-health", None,
        'ALARM("stack-5xx-rate") OR ALARM("stack-other")', True, (), (),
    )  # fmt: skip
    put_composite(cloudwatch, composite)
    dims = (("LoadBalancer", "app/alb/1"),)
    starts = [END - timedelta(seconds=10 * back) for back in range(2, 0, -1)]
    _put(cloudwatch, "RequestCount", dict.fromkeys(starts, 10.0), dims)
    _put(cloudwatch, "HTTPCode_Target_5XX_Count", dict.fromkeys(starts, 10.0), dims)
    seen: list[Transition] = []
    evaluator = AlarmEvaluator(
        cloudwatch, [rate], EmulatorMetrics(cloudwatch, _no_percentiles),
        composite=(composite.name, composite.rule), on_transition=seen.append,
        initial={"stack-5xx-rate": AlarmState.OK, "stack-other": AlarmState.OK,
                 "stack-health": AlarmState.OK},
    )  # fmt: skip
    now = END + timedelta(seconds=2.5)  # the periods ending at END have been ingested
    changed = evaluator.tick(now)
    assert [(t.alarm, t.old, t.new, t.composite) for t in changed] == [
        ("stack-5xx-rate", AlarmState.OK, AlarmState.ALARM, False),
        ("stack-health", AlarmState.OK, AlarmState.ALARM, True),
    ]
    assert changed == seen
    assert changed[1].triggering == ("stack-5xx-rate",)
    found = cloudwatch.describe_alarms(AlarmNames=["stack-5xx-rate", "stack-health"])
    states = {a["AlarmName"]: a["StateValue"]
              for a in found["MetricAlarms"] + found["CompositeAlarms"]}  # fmt: skip
    assert states == {"stack-5xx-rate": "ALARM", "stack-health": "ALARM"}
    # The same 10-second slot is not evaluated twice; the next one is.
    assert evaluator.tick(now + timedelta(seconds=5)) == []
    later = evaluator.tick(now + timedelta(seconds=40))  # no data since: notBreaching
    assert [(t.alarm, t.new) for t in later] == [
        ("stack-5xx-rate", AlarmState.OK), ("stack-health", AlarmState.OK)]  # fmt: skip
    assert quiet.name not in evaluator.definitions  # not given: never evaluated
    assert evaluator.snapshot()["stack-other"] is AlarmState.OK


def test_an_alarm_that_stays_in_alarm_changes_nothing_and_notifies_no_one_again(
    aws: Any,
) -> None:
    """AWS: alarm actions "happen only on state transitions, and are not performed again if
    the condition persists" (CloudWatch User Guide, "Alarm actions"). The rehearsal's
    fault after cutover relies on it: it waits for the composite to be OK first."""
    cloudwatch = aws.client("cloudwatch")
    rate = _rate_alarm(cloudwatch, "held-5xx-rate")
    composite = CompositeDefinition(
        "held-health", "arn:aws:cloudwatch:us-east-2:123456789012:alarm:held-health", None,
        'ALARM("held-5xx-rate")', True, (), (),
    )  # fmt: skip
    put_composite(cloudwatch, composite)
    dims = (("LoadBalancer", "app/alb/1"),)
    starts = [END + timedelta(seconds=10 * step) for step in range(-2, 2)]  # 4 periods
    _put(cloudwatch, "RequestCount", dict.fromkeys(starts, 10.0), dims)
    _put(cloudwatch, "HTTPCode_Target_5XX_Count", dict.fromkeys(starts, 10.0), dims)
    seen: list[Transition] = []
    evaluator = AlarmEvaluator(
        cloudwatch, [rate], EmulatorMetrics(cloudwatch, _no_percentiles),
        composite=(composite.name, composite.rule), on_transition=seen.append,
        initial={"held-5xx-rate": AlarmState.OK, "held-health": AlarmState.OK},
    )  # fmt: skip
    now = END + timedelta(seconds=2.5)
    assert [(t.alarm, t.new) for t in evaluator.tick(now)] == [
        ("held-5xx-rate", AlarmState.ALARM), ("held-health", AlarmState.ALARM)]  # fmt: skip
    # Two more periods, every one breaching: the state holds, nothing is sent again.
    assert evaluator.tick(now + timedelta(seconds=10)) == []
    assert evaluator.tick(now + timedelta(seconds=20)) == []
    assert len(seen) == 2
    snapshot = evaluator.snapshot()
    assert (snapshot["held-5xx-rate"], snapshot["held-health"]) == (AlarmState.ALARM,) * 2


def test_cadence_follows_the_period() -> None:
    # "If the alarm period is 10 seconds or 30 seconds, the alarm is evaluated every 10
    # seconds"; a minute or more: every minute.
    assert [evaluation_interval(p) for p in (10, 30, 60, 300)] == [10, 10, 60, 60]


def test_only_metric_query_alarms_are_read() -> None:
    with pytest.raises(ValueError, match="only metric-query alarms"):
        alarm_definition({"AlarmName": "classic", "MetricName": "CPUUtilization"})
