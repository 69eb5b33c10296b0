"""An alarm's notification reaches the people and the function it is meant for.

The chain is alarm -> SNS topic (and its key) -> subscription (and its filter) ->
Lambda permission. AWS's documented rules checked here, none of which moto enforces:

* CloudWatch alarm notifications carry no message attributes, and a
  ``MessageAttributes``-scope filter never matches a message without attributes ("Key
  matching", SNS Developer Guide): filters are evaluated with
  :mod:`paymig.semantics.sns_filter` on the notification AWS sends
  (:mod:`paymig.semantics.cloudwatch_notification`).
* A Lambda subscriber needs a resource policy letting ``sns.amazonaws.com`` invoke it
  from that topic ("Using AWS Lambda with Amazon SNS").
* An encrypted topic needs its key policy to admit the publishing service
  (CloudWatch, EventBridge, DMS: "Encryption at rest", SNS Developer Guide), and a
  topic with its own access policy must let that service publish.
* A function subscribed to a topic it publishes to would invoke itself.
* Every topic reaches someone, and every S3 bucket that sends events to EventBridge has
  a rule that reads them ("notifications that go nowhere").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from paymig.relations.findings import Finding
from paymig.relations.stack import Address, StackGraph, as_list, parse_policy, statements
from paymig.semantics.cloudwatch_alarm import AlarmState
from paymig.semantics.cloudwatch_notification import (
    AlarmIdentity,
    StateChange,
    composite_alarm_notification,
    metric_alarm_notification,
)
from paymig.semantics.sns_filter import matches

RULE = "alarm-delivery"
#: Region display names CloudWatch puts in a notification's "Region".
REGION_NAMES = {"us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)"}
_ACCOUNT = "123456789012"  # any account: filters here never look at it
_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
ALARM_TYPES = ("aws_cloudwatch_metric_alarm", "aws_cloudwatch_composite_alarm")


def notification(graph: StackGraph, alarm: Address, region: str, state: AlarmState) -> str:
    """The JSON message CloudWatch publishes when ``alarm`` enters ``state``."""
    body = graph.get(alarm)
    identity = AlarmIdentity(
        name=str(body.get("alarm_name")),
        description=body.get("alarm_description"),
        account_id=_ACCOUNT,
        region=region,
        region_name=REGION_NAMES.get(region, region),
        ok_actions=tuple(str(a) for a in as_list(body.get("ok_actions"))),
        alarm_actions=tuple(str(a) for a in as_list(body.get("alarm_actions"))),
    )
    old = AlarmState.OK if state is AlarmState.ALARM else AlarmState.ALARM
    change = StateChange(state, old, f"Threshold crossed: entered {state.value}", datetime.now(UTC))
    if alarm.type == "aws_cloudwatch_composite_alarm":
        message = composite_alarm_notification(
            identity, change, alarm_rule=str(body.get("alarm_rule")), triggering_children=()
        )
    else:
        message = metric_alarm_notification(
            identity,
            change,
            {"Period": body.get("period")},
            configuration_updated_at=change.changed_at,
        )
    return json.dumps(message)


def check(graph: StackGraph, region: str) -> list[Finding]:
    """Every relation of the alarm -> topic -> subscriber chain holds."""
    findings: list[Finding] = []
    for alarm_type in ALARM_TYPES:
        for alarm, body in sorted(graph.of_type(alarm_type).items()):
            for topic in graph.targets(body.get("alarm_actions"), "aws_sns_topic"):
                findings.extend(_alarm_to_topic(graph, region, alarm, topic))
    findings.extend(_publishers(graph))
    findings.extend(_topics_reach_someone(graph))
    findings.extend(_bucket_events_are_read(graph))
    return findings


def _alarm_to_topic(
    graph: StackGraph, region: str, alarm: Address, topic: Address
) -> list[Finding]:
    findings = _key_admits(graph, topic, "cloudwatch.amazonaws.com", graph.path(alarm))
    ok_topics = graph.targets(graph.get(alarm).get("ok_actions"), "aws_sns_topic")
    alarm_message = notification(graph, alarm, region, AlarmState.ALARM)
    ok_message = notification(graph, alarm, region, AlarmState.OK)
    for subscription in graph.referrers(topic, "aws_sns_topic_subscription", "topic_arn"):
        sub = graph.get(subscription)
        if not _receives(sub, alarm_message):
            findings.append(
                Finding(
                    RULE,
                    graph.path(alarm),
                    graph.path(subscription),
                    "the subscription's filter does not match the alarm's ALARM notification "
                    "as CloudWatch sends it (no message attributes; the JSON body)",
                )
            )
        if sub.get("protocol") != "lambda":
            continue
        findings.extend(_lambda_may_be_invoked(graph, topic, subscription))
        if topic in ok_topics and _receives(sub, ok_message):
            findings.append(
                Finding(
                    RULE,
                    graph.path(alarm),
                    graph.path(subscription),
                    "the function is also invoked when the alarm returns to OK; filter on "
                    "NewStateValue",
                )
            )
    return findings


def _receives(subscription: Mapping[str, Any], message: str) -> bool:
    policy = subscription.get("filter_policy")
    if not policy:
        return True
    scope = str(subscription.get("filter_policy_scope", "MessageAttributes"))
    return matches(json.loads(str(policy)), scope, message=message, attributes={})  # type: ignore[arg-type]


def _lambda_may_be_invoked(
    graph: StackGraph, topic: Address, subscription: Address
) -> list[Finding]:
    function = graph.target(graph.get(subscription).get("endpoint"), "aws_lambda_function")
    if function is None:
        return []
    for _, permission in graph.of_type("aws_lambda_permission").items():
        if (
            graph.target(permission.get("function_name")) == function
            and permission.get("principal") == "sns.amazonaws.com"
            and graph.target(permission.get("source_arn")) == topic
            and str(permission.get("action", "")) in ("lambda:InvokeFunction", "lambda:*")
        ):
            break
    else:
        return [
            Finding(
                RULE,
                graph.path(subscription),
                graph.path(function),
                "no Lambda permission lets sns.amazonaws.com invoke the function from this topic",
            )
        ]
    if _publishes_to(graph, function, topic):
        return [
            Finding(
                RULE,
                graph.path(function),
                graph.path(topic),
                "the function is subscribed to a topic it publishes to: its own "
                "notifications would invoke it",
            )
        ]
    return []


def _publishes_to(graph: StackGraph, function: Address, topic: Address) -> bool:
    role = graph.target(graph.get(function).get("role"), "aws_iam_role")
    for _, body in graph.of_type("aws_iam_role_policy").items():
        if graph.target(body.get("role"), "aws_iam_role") != role:
            continue
        for statement in statements(parse_policy(body.get("policy"))):
            actions = [str(a) for a in as_list(statement.get("Action"))]
            if any(fnmatchcase("sns:Publish", a) for a in actions) and topic in graph.targets(
                statement.get("Resource")
            ):
                return True
    return False


def _key_admits(graph: StackGraph, topic: Address, service: str, publisher: str) -> list[Finding]:
    key = graph.target(graph.get(topic).get("kms_master_key_id"), "aws_kms_key")
    if key is None:
        return []
    for statement in statements(parse_policy(graph.get(key).get("policy"))):
        principal = statement.get("Principal", {})
        services = as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
        actions = [str(a) for a in as_list(statement.get("Action"))]
        if (
            statement.get("Effect") == "Allow"
            and service in services
            and all(
                any(fnmatchcase(n + "X", a) or fnmatchcase(n, a) for a in actions)
                for n in _KEY_ACTIONS
            )
        ):
            return []
    return [
        Finding(
            RULE,
            publisher,
            graph.path(key),
            f"the topic {graph.path(topic)} is encrypted with this key, whose policy does not "
            f"let {service} use it: every publish would fail",
        )
    ]


def _topic_policy_allows(graph: StackGraph, topic: Address, service: str) -> bool:
    policies = graph.referrers(topic, "aws_sns_topic_policy", "arn")
    for address in policies:
        for statement in statements(parse_policy(graph.get(address).get("policy"))):
            principal = statement.get("Principal", {})
            services = as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
            if statement.get("Effect") == "Allow" and service in services:
                return True
    return False


def _publishers(graph: StackGraph) -> list[Finding]:
    """EventBridge rules and DMS event subscriptions can publish to their topics."""
    findings: list[Finding] = []
    sources: list[tuple[Address, Any, str]] = [
        (a, body.get("arn"), "events.amazonaws.com")
        for a, body in sorted(graph.of_type("aws_cloudwatch_event_target").items())
    ] + [
        (a, body.get("sns_topic_arn"), "dms.amazonaws.com")
        for a, body in sorted(graph.of_type("aws_dms_event_subscription").items())
    ]
    for publisher, arn, service in sources:
        topic = graph.target(arn, "aws_sns_topic")
        if topic is None:
            continue
        findings.extend(_key_admits(graph, topic, service, graph.path(publisher)))
        if not _topic_policy_allows(graph, topic, service):
            findings.append(
                Finding(
                    RULE,
                    graph.path(publisher),
                    graph.path(topic),
                    f"the topic's access policy does not let {service} publish",
                )
            )
    return findings


def _topics_reach_someone(graph: StackGraph) -> list[Finding]:
    return [
        Finding(
            RULE,
            graph.path(topic),
            "subscribers",
            "the topic has no subscription: its notifications go nowhere",
        )
        for topic in sorted(graph.of_type("aws_sns_topic"))
        if not graph.referrers(topic, "aws_sns_topic_subscription", "topic_arn")
    ]


def _bucket_events_are_read(graph: StackGraph) -> list[Finding]:
    findings: list[Finding] = []
    rules = graph.of_type("aws_cloudwatch_event_rule")
    for notification_address, body in sorted(graph.of_type("aws_s3_bucket_notification").items()):
        if not body.get("eventbridge"):
            continue
        bucket = graph.target(body.get("bucket"), "aws_s3_bucket")
        readers = [
            rule
            for rule, rule_body in rules.items()
            if bucket in graph.targets(rule_body.get("event_pattern"))
            and graph.referrers(rule, "aws_cloudwatch_event_target", "rule")
        ]
        if not readers:
            findings.append(
                Finding(
                    RULE,
                    graph.path(notification_address),
                    graph.path(bucket) if bucket else "bucket",
                    "the bucket sends its events to EventBridge, but no rule with a target "
                    "reads them",
                )
            )
    return findings
