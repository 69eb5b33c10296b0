"""The JSON message a CloudWatch alarm publishes to an SNS topic when it changes state.

Source: Amazon CloudWatch User Guide, "Notifying users on alarm changes"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html),
section "Schema of Amazon SNS notifications when alarms change state": a metric alarm's
message carries ``Trigger``; a composite alarm's carries ``AlarmRule`` and
``TriggeringChildren`` instead. The schema writes ``TriggeringChildren`` as ``[String]``;
delivered notifications (one with a real SNS signature is public) carry objects
``{"Arn": ..., "State": {"Value": ..., "Timestamp": ...}}``, which is what we build. A
metric-query alarm's ``Trigger`` lists ``Metrics`` instead of ``MetricName``/
``Namespace`` (AWS's aws-lambda-go test data, cloudwatch-alarm-sns-payload-multiple-
metrics.json). The schema gives ``TreatMissingData`` as a string; that test data shows a
decorated value (``"- TreatMissingData:   missing"``), so consumers must not parse it.

Alarm notifications are published without message attributes (the same test data:
``"MessageAttributes": {}``), which matters for subscription filter policies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from paymig.semantics.cloudwatch_alarm import AlarmState, MetricAlarm


@dataclass(frozen=True)
class AlarmIdentity:
    """What names an alarm in its notifications, and the actions it lists."""

    name: str
    description: str | None
    account_id: str
    region: str  # the code in the ARN, e.g. us-east-2
    region_name: str  # the display name in "Region", e.g. "US East (Ohio)"
    ok_actions: tuple[str, ...] = ()
    alarm_actions: tuple[str, ...] = ()
    insufficient_data_actions: tuple[str, ...] = ()

    @property
    def arn(self) -> str:
        """The alarm's ARN."""
        return f"arn:aws:cloudwatch:{self.region}:{self.account_id}:alarm:{self.name}"


@dataclass(frozen=True)
class StateChange:
    """One transition: the states, CloudWatch's reason text and when it happened."""

    new_state: AlarmState
    old_state: AlarmState
    reason: str
    changed_at: datetime


@dataclass(frozen=True)
class TriggeringChild:
    """A child alarm whose state change made a composite alarm change."""

    arn: str
    state: AlarmState
    changed_at: datetime


def alarm_timestamp(moment: datetime) -> str:
    """CloudWatch's notification time format, e.g. ``2021-11-10T02:45:55.640+0000``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def metric_alarm_notification(
    identity: AlarmIdentity,
    change: StateChange,
    trigger: Mapping[str, Any],
    *,
    configuration_updated_at: datetime,
) -> dict[str, Any]:
    """The message of a metric alarm's state change, keys in the documented order."""
    return {
        **_head(identity),
        "AlarmConfigurationUpdatedTimestamp": alarm_timestamp(configuration_updated_at),
        **_change(identity, change),
        "OldStateValue": change.old_state.value,
        **_actions(identity),
        "Trigger": dict(trigger),
    }


def composite_alarm_notification(
    identity: AlarmIdentity,
    change: StateChange,
    *,
    alarm_rule: str,
    triggering_children: Sequence[TriggeringChild],
) -> dict[str, Any]:
    """The message of a composite alarm's state change: AlarmRule, no Trigger."""
    return {
        **_head(identity),
        **_change(identity, change),
        **_actions(identity),
        "OldStateValue": change.old_state.value,
        "AlarmRule": alarm_rule,
        "TriggeringChildren": [
            {
                "Arn": child.arn,
                "State": {
                    "Value": child.state.value,
                    "Timestamp": alarm_timestamp(child.changed_at),
                },
            }
            for child in triggering_children
        ],
    }


def single_metric_trigger(
    alarm: MetricAlarm,
    *,
    metric_name: str,
    namespace: str,
    statistic: str,
    dimensions: Mapping[str, str],
    unit: str | None = None,
) -> dict[str, Any]:
    """``Trigger`` of an alarm on one metric with a standard statistic (Sum, Average...)."""
    return {
        "MetricName": metric_name,
        "Namespace": namespace,
        "StatisticType": "Statistic",
        "Statistic": statistic.upper(),  # AWS's samples: "AVERAGE", "SUM"
        "Unit": unit,
        "Dimensions": [{"value": value, "name": name} for name, value in dimensions.items()],
        **_trigger_settings(alarm),
    }


def metric_query_trigger(
    alarm: MetricAlarm, metrics: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """``Trigger`` of an alarm on metric queries (a math expression and its inputs)."""
    return {**_trigger_settings(alarm), "Metrics": [dict(query) for query in metrics]}


def expression_query(
    query_id: str, expression: str, label: str, *, returned: bool
) -> dict[str, Any]:
    """One expression entry of ``Trigger.Metrics``."""
    return {"Expression": expression, "Id": query_id, "Label": label, "ReturnData": returned}


def metric_stat_query(
    query_id: str,
    *,
    namespace: str,
    metric_name: str,
    dimensions: Mapping[str, str],
    period: int,
    stat: str,
    returned: bool,
) -> dict[str, Any]:
    """One metric entry of ``Trigger.Metrics``."""
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Dimensions": [{"value": v, "name": n} for n, v in dimensions.items()],
                "MetricName": metric_name,
                "Namespace": namespace,
            },
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": returned,
    }


def _head(identity: AlarmIdentity) -> dict[str, Any]:
    return {
        "AlarmName": identity.name,
        "AlarmDescription": identity.description,
        "AWSAccountId": identity.account_id,
    }


def _change(identity: AlarmIdentity, change: StateChange) -> dict[str, Any]:
    return {
        "NewStateValue": change.new_state.value,
        "NewStateReason": change.reason,
        "StateChangeTime": alarm_timestamp(change.changed_at),
        "Region": identity.region_name,
        "AlarmArn": identity.arn,
    }


def _actions(identity: AlarmIdentity) -> dict[str, Any]:
    return {
        "OKActions": list(identity.ok_actions),
        "AlarmActions": list(identity.alarm_actions),
        "InsufficientDataActions": list(identity.insufficient_data_actions),
    }


def _trigger_settings(alarm: MetricAlarm) -> dict[str, Any]:
    return {
        "Period": alarm.period_seconds,
        "EvaluationPeriods": alarm.evaluation_periods,
        "DatapointsToAlarm": alarm.m,
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": alarm.threshold,
        "TreatMissingData": alarm.treat_missing_data.value,
        "EvaluateLowSampleCountPercentile": "",
    }
