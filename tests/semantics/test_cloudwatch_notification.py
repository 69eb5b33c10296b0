"""Alarm notifications against "Notifying users on alarm changes", section "Schema of
Amazon SNS notifications when alarms change state", and what SNS filters make of them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from paymig.semantics.cloudwatch_alarm import AlarmState, MetricAlarm
from paymig.semantics.cloudwatch_notification import (
    AlarmIdentity,
    StateChange,
    TriggeringChild,
    alarm_timestamp,
    composite_alarm_notification,
    expression_query,
    metric_alarm_notification,
    metric_query_trigger,
    metric_stat_query,
    single_metric_trigger,
)
from paymig.semantics.sns_filter import matches
from paymig.semantics.sns_lambda_event import lambda_event

#: The documented schemas' keys, in the documented order.
METRIC_KEYS = [
    "AlarmName",
    "AlarmDescription",
    "AWSAccountId",
    "AlarmConfigurationUpdatedTimestamp",
    "NewStateValue",
    "NewStateReason",
    "StateChangeTime",
    "Region",
    "AlarmArn",
    "OldStateValue",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "Trigger",
]
TRIGGER_KEYS = [
    "MetricName",
    "Namespace",
    "StatisticType",
    "Statistic",
    "Unit",
    "Dimensions",
    "Period",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "ComparisonOperator",
    "Threshold",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
]
COMPOSITE_KEYS = [
    "AlarmName",
    "AlarmDescription",
    "AWSAccountId",
    "NewStateValue",
    "NewStateReason",
    "StateChangeTime",
    "Region",
    "AlarmArn",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "OldStateValue",
    "AlarmRule",
    "TriggeringChildren",
]

TOPIC = "arn:aws:sns:us-east-2:123456789012:paymig-prod-migration-alarms"
AT = datetime(2024, 6, 3, 17, 43, 27, 123_000, tzinfo=UTC)
ALARM = MetricAlarm("GreaterThanThreshold", 5.0, 60, 3, 2)


def identity(name: str) -> AlarmIdentity:
    return AlarmIdentity(
        name=name,
        description="test alarm",
        account_id="123456789012",
        region="us-east-2",
        region_name="US East (Ohio)",
        ok_actions=(TOPIC,),
        alarm_actions=(TOPIC,),
    )


def metric_notification(new: AlarmState = AlarmState.ALARM) -> dict[str, object]:
    trigger = single_metric_trigger(
        ALARM,
        metric_name="HTTPCode_Target_5XX_Count",
        namespace="AWS/ApplicationELB",
        statistic="Sum",
        dimensions={"LoadBalancer": "app/paymig/0123456789abcdef"},
    )
    change = StateChange(
        new,
        AlarmState.OK,
        "Threshold Crossed: 2 out of the last 3 datapoints were greater than the threshold",
        AT,
    )
    return metric_alarm_notification(
        identity("paymig-prod-5xx-rate"), change, trigger, configuration_updated_at=AT
    )


def composite_notification() -> dict[str, object]:
    child = "arn:aws:cloudwatch:us-east-2:123456789012:alarm:paymig-prod-5xx-rate"
    change = StateChange(AlarmState.ALARM, AlarmState.OK, f"{child} transitioned to ALARM", AT)
    return composite_alarm_notification(
        identity("paymig-prod-migration-health"),
        change,
        alarm_rule='ALARM("paymig-prod-5xx-rate") OR ALARM("paymig-prod-p99-latency")',
        triggering_children=[TriggeringChild(child, AlarmState.ALARM, AT)],
    )


def test_metric_alarm_schema() -> None:
    body = metric_notification()
    assert list(body) == METRIC_KEYS
    assert list(body["Trigger"]) == TRIGGER_KEYS  # type: ignore[call-overload]
    assert body["AlarmArn"] == (
        "arn:aws:cloudwatch:us-east-2:123456789012:alarm:paymig-prod-5xx-rate"
    )
    assert body["StateChangeTime"] == "2024-06-03T17:43:27.123+0000"
    assert body["Trigger"]["Statistic"] == "SUM"  # type: ignore[index]
    assert body["Trigger"]["Dimensions"] == [  # type: ignore[index]
        {"value": "app/paymig/0123456789abcdef", "name": "LoadBalancer"}
    ]


def test_composite_alarm_schema_has_a_rule_and_no_trigger() -> None:
    body = composite_notification()
    assert list(body) == COMPOSITE_KEYS
    assert body["TriggeringChildren"] == [
        {
            "Arn": "arn:aws:cloudwatch:us-east-2:123456789012:alarm:paymig-prod-5xx-rate",
            "State": {"Value": "ALARM", "Timestamp": "2024-06-03T17:43:27.123+0000"},
        }
    ]


def test_metric_query_trigger() -> None:
    metrics = [
        expression_query("e1", "m1 * 1", "Expression1", returned=True),
        metric_stat_query(
            "m1",
            namespace="AWS/EC2",
            metric_name="NetworkOut",
            dimensions={"InstanceId": "i-1"},
            period=60,
            stat="Average",
            returned=False,
        ),
    ]
    trigger = metric_query_trigger(ALARM, metrics)
    assert "MetricName" not in trigger
    assert trigger["Metrics"] == [
        {"Expression": "m1 * 1", "Id": "e1", "Label": "Expression1", "ReturnData": True},
        {
            "Id": "m1",
            "MetricStat": {
                "Metric": {
                    "Dimensions": [{"value": "i-1", "name": "InstanceId"}],
                    "MetricName": "NetworkOut",
                    "Namespace": "AWS/EC2",
                },
                "Period": 60,
                "Stat": "Average",
            },
            "ReturnData": False,
        },
    ]
    assert (trigger["EvaluationPeriods"], trigger["DatapointsToAlarm"]) == (3, 2)


def test_alarm_timestamp_is_utc() -> None:
    assert alarm_timestamp(datetime(2021, 11, 10, 2, 45, 55, 640_500, tzinfo=UTC)) == (
        "2021-11-10T02:45:55.640+0000"
    )


@pytest.mark.parametrize(
    ("policy", "metric", "composite"),
    [
        ({"NewStateValue": ["ALARM"]}, True, True),
        ({"AlarmRule": [{"exists": True}]}, False, True),
        ({"AlarmRule": [{"exists": False}]}, True, False),
        ({"Trigger": {"Namespace": ["AWS/ApplicationELB"]}}, True, False),
        ({"TriggeringChildren": {"Arn": [{"suffix": ":paymig-prod-5xx-rate"}]}}, False, True),
        ({"AlarmName": [{"prefix": "paymig-prod-"}]}, True, True),
    ],
)
def test_body_filters_on_alarm_notifications(
    policy: dict[str, object], metric: bool, composite: bool
) -> None:
    for body, expected in ((metric_notification(), metric), (composite_notification(), composite)):
        assert matches(policy, "MessageBody", message=json.dumps(body), attributes={}) is expected


def test_attribute_filter_with_exists_false_drops_alarm_notifications() -> None:
    """An alarm's notification carries no message attributes (MessageAttributes: {}).

    So a subscription filtered on MessageAttributes with `"exists": false` never receives
    it: "An empty set of attributes results in the filter not matching".
    """
    message = json.dumps(composite_notification())
    delivered = lambda_event(
        topic_arn=TOPIC,
        subscription_arn=f"{TOPIC}:0b6c4a36-3b5e-4f0e-9a8e-1f2f3a4b5c6d",
        message_id="e2f1",
        message=message,
        timestamp=AT,
        subject='ALARM: "paymig-prod-migration-health" in US East (Ohio)',
        attributes={},
        signature="c2ln",
        signing_cert_url="https://sns.us-east-2.amazonaws.com/cert.pem",
    )
    assert delivered["Records"][0]["Sns"]["MessageAttributes"] == {}
    policy = {"paymig_source": [{"exists": False}]}
    assert not matches(policy, "MessageAttributes", message=message, attributes={})
    assert matches(policy, "MessageBody", message=message, attributes={})
