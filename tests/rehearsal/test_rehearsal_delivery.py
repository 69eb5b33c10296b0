"""Alarm notifications delivered as SNS delivers them, against the emulator's subscriptions.

The topic, its subscriptions (with their filter policies) and the function's resource
policy are the emulator's; the function itself is replaced by a recording callable here
(the runtime that really invokes it is tested in test_rehearsal_lambda_runtime.py).
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest

from paymig.lambdas.rollback import alarm_notifications, triggering_alarm
from paymig.rehearsal.alarms import Transition, alarm_definition
from paymig.rehearsal.delivery import (
    CompositeDefinition,
    Deliverer,
    composite_message,
    metric_message,
    sns_may_invoke,
    subject,
)
from paymig.rehearsal.lambda_runtime import Invocation
from paymig.runtime.controller.core import RollbackSettings
from paymig.semantics.cloudwatch_alarm import AlarmState

pytestmark = pytest.mark.slow

REGION, ACCOUNT = "us-east-2", "123456789012"
COMPOSITE = CompositeDefinition(
    name="paymig-rehearsal-migration-health",
    arn=f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:paymig-rehearsal-migration-health",
    description="roll back",
    rule='ALARM("paymig-rehearsal-5xx-rate") OR ALARM("paymig-rehearsal-p99-latency")',
    actions_enabled=True,
    alarm_actions=(f"arn:aws:sns:{REGION}:{ACCOUNT}:alarms",),
    ok_actions=(f"arn:aws:sns:{REGION}:{ACCOUNT}:alarms",),
)
WHEN = datetime(2026, 11, 29, 12, 0, 5, tzinfo=UTC)


def _transition(alarm: str, new: AlarmState, composite: bool) -> Transition:
    old = AlarmState.OK if new is AlarmState.ALARM else AlarmState.ALARM
    return Transition(1.0, WHEN, alarm, old, new, "Threshold crossed", composite,
                      ("paymig-rehearsal-5xx-rate",) if composite else ())  # fmt: skip


def _function(aws: Any, name: str) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("h.py", "def handler(event, context):\n    return None\n")
    role = aws.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")
    return str(aws.client("lambda").create_function(
        FunctionName=name, Runtime="python3.11", Role=role["Role"]["Arn"], Handler="h.handler",
        Code={"ZipFile": buffer.getvalue()})["FunctionArn"])  # fmt: skip


def test_composite_message_is_what_the_rollback_handler_reads() -> None:
    child = _transition("paymig-rehearsal-5xx-rate", AlarmState.ALARM, False)
    message = composite_message(COMPOSITE, _transition(COMPOSITE.name, AlarmState.ALARM, True),
                                [child], ACCOUNT, REGION)  # fmt: skip
    assert message["AlarmRule"] == COMPOSITE.rule
    assert "Trigger" not in message
    assert message["TriggeringChildren"] == [{
        "Arn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:paymig-rehearsal-5xx-rate",
        "State": {"Value": "ALARM", "Timestamp": "2026-11-29T12:00:05.000+0000"}}]  # fmt: skip
    event = {"Records": [{"Sns": {"Message": json.dumps(message)}}]}
    settings = RollbackSettings(stack_name="paymig-rehearsal", environment="rehearsal",
                                hosted_zone_id="ZABC", record_name="api.example.com")  # fmt: skip
    found = triggering_alarm(event, settings)
    assert found is not None and (found.alarm_name, found.old_state) == (COMPOSITE.name, "OK")
    assert subject(COMPOSITE.name, AlarmState.ALARM, REGION) == (
        'ALARM: "paymig-rehearsal-migration-health" in US East (Ohio)'
    )


def test_metric_message_lists_the_alarms_queries(aws: Any) -> None:
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="paymig-rehearsal-5xx-rate", ComparisonOperator="GreaterThanThreshold",
        Threshold=1.0, EvaluationPeriods=2, DatapointsToAlarm=2, TreatMissingData="notBreaching",
        Metrics=[{"Id": "m1", "ReturnData": False, "MetricStat": {"Metric": {
                     "Namespace": "AWS/ApplicationELB", "MetricName": "RequestCount",
                     "Dimensions": [{"Name": "LoadBalancer", "Value": "app/a/1"}]},
                     "Period": 10, "Stat": "Sum"}},
                 {"Id": "e1", "Expression": "m1 * 2", "Label": "twice", "ReturnData": True}],
    )  # fmt: skip
    definition = alarm_definition(
        cloudwatch.describe_alarms(AlarmNames=["paymig-rehearsal-5xx-rate"])["MetricAlarms"][0]
    )
    message = metric_message(definition, _transition(definition.name, AlarmState.ALARM, False),
                             ACCOUNT, REGION)  # fmt: skip
    trigger = message["Trigger"]
    assert (trigger["Period"], trigger["EvaluationPeriods"], trigger["DatapointsToAlarm"]) == (
        10,
        2,
        2,
    )
    assert [m["Id"] for m in trigger["Metrics"]] == ["m1", "e1"]
    assert trigger["Metrics"][1] == {"Expression": "m1 * 2", "Id": "e1", "Label": "twice",
                                     "ReturnData": True}  # fmt: skip
    assert message["NewStateValue"] == "ALARM" and message["OldStateValue"] == "OK"


def test_each_subscription_gets_what_its_filter_admits(aws: Any) -> None:
    sns, lam = aws.client("sns"), aws.client("lambda")
    topic = sns.create_topic(Name="alarms")["TopicArn"]
    rollback, other = _function(aws, "rollback"), _function(aws, "unpermitted")
    older = _function(aws, "older")
    for name in ("rollback", "older"):
        lam.add_permission(FunctionName=name, StatementId="sns", Action="lambda:InvokeFunction",
                           Principal="sns.amazonaws.com", SourceArn=topic)  # fmt: skip
    body_filter = {"AlarmName": [COMPOSITE.name], "NewStateValue": ["ALARM"]}
    subscriptions = {
        # The decided subscription (DESIGN.md #3): MessageBody scope.
        "body": sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=rollback,
                              Attributes={"FilterPolicyScope": "MessageBody",
                                          "FilterPolicy": json.dumps(body_filter)}),
        # An attribute filter: alarm notifications carry no attributes, so never matches.
        "attributes": sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=older,
                                    Attributes={"FilterPolicy": json.dumps(
                                        {"paymig_source": [{"exists": False}]})}),
        "no permission": sns.subscribe(TopicArn=topic, Protocol="lambda", Endpoint=other),
        "email": sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com"),
    }  # fmt: skip
    invoked: list[tuple[str, dict[str, Any]]] = []

    def invoke(function: str, event: dict[str, Any]) -> Invocation:
        invoked.append((function, event))
        calls = [{"service": "sns", "operation": "Publish", "allowed": True, "decisions": [],
                  "params": {"TopicArn": topic, "Message": "rolled back",
                             "MessageAttributes": {"paymig_source": {
                                 "DataType": "String", "StringValue": "rollback"}}}}]  # fmt: skip
        return Invocation(function, "principal", 1.0, 2.0, {"result": "succeeded"}, calls=calls)

    deliverer = Deliverer(sns, lam, invoke, clock=lambda: 5.0)
    message = composite_message(COMPOSITE, _transition(COMPOSITE.name, AlarmState.ALARM, True),
                                [], ACCOUNT, REGION)  # fmt: skip
    made = deliverer.publish(topic, subject(COMPOSITE.name, AlarmState.ALARM, REGION),
                             json.dumps(message), source="CloudWatch")  # fmt: skip
    deliverer.wait(30)
    by_sub = {d.subscription: d for d in made}
    arns = {k: v["SubscriptionArn"] for k, v in subscriptions.items()}
    assert by_sub[arns["body"]].matched
    assert not by_sub[arns["attributes"]].matched
    assert by_sub[arns["no permission"]].matched
    assert "resource policy does not let SNS invoke it" in by_sub[arns["no permission"]].detail
    assert by_sub[arns["email"]].matched and by_sub[arns["email"]].invocation is None
    # One invocation: the permitted, matching Lambda subscription, with the SNS event.
    assert [f for f, _ in invoked] == [rollback]
    record = invoked[0][1]["Records"][0]
    assert record["EventSubscriptionArn"] == arns["body"]
    assert record["Sns"]["MessageAttributes"] == {}
    assert [a.alarm_name for a in alarm_notifications(invoked[0][1])] == [COMPOSITE.name]
    # The function's own message went through the filters too: none admits it.
    follow = [d for d in deliverer.deliveries if d.hop == 1]
    assert {d.source for d in follow} == {rollback}
    assert [(d.endpoint, d.matched) for d in follow if d.protocol == "lambda"] == [
        (rollback, False), (older, False), (other, True)]  # fmt: skip


@pytest.mark.parametrize(
    ("statement", "allowed"),
    [
        ({"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
          "Action": "lambda:InvokeFunction", "Condition": {"ArnLike": {"AWS:SourceArn": "T"}}}, True),
        ({"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
          "Action": "lambda:InvokeFunction", "Condition": {"ArnLike": {"AWS:SourceArn": "U"}}}, False),
        ({"Effect": "Allow", "Principal": {"Service": "elasticloadbalancing.amazonaws.com"},
          "Action": "lambda:InvokeFunction"}, False),
        ({"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
          "Action": ["lambda:GetFunction"]}, False),
    ],
)  # fmt: skip
def test_sns_may_invoke_reads_the_resource_policy(statement: dict[str, Any], allowed: bool) -> None:
    assert sns_may_invoke({"Statement": [statement]}, "T") is allowed
