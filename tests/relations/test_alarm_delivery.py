"""The alarm -> topic -> subscriber chain, checked with AWS's SNS filter semantics.

moto delivers a CloudWatch alarm to a subscription whose MessageAttributes filter says
`"exists": false`; AWS does not ("an empty set of attributes results in the filter not
matching"), which is the defect these tests pin down with paymig.semantics instead."""

from __future__ import annotations

import json
from typing import Any

from paymig.relations.rules import alarm_delivery
from paymig.relations.stack import StackGraph
from paymig.semantics.cloudwatch_alarm import AlarmState
from tests.relations.stackdoc import REGION, policy, r

NAME = "stack-migration-health"


def meta(path: str) -> dict[str, Any]:
    return {"//": {"metadata": {"path": f"stack/{path}"}}}


def chain(filter_policy: dict[str, Any] | None, scope: str = "MessageBody") -> dict[str, Any]:
    subscription: dict[str, Any] = {
        **meta("subscription"),
        "topic_arn": r("aws_sns_topic", "alarms", "arn"),
        "protocol": "lambda",
        "endpoint": r("aws_lambda_function", "rollback", "arn"),
    }
    if filter_policy is not None:
        subscription["filter_policy"] = json.dumps(filter_policy)
        subscription["filter_policy_scope"] = scope
    return {
        "resource": {
            "aws_kms_key": {
                "key": {
                    **meta("key"),
                    "policy": policy(
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "cloudwatch.amazonaws.com"},
                            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
                            "Resource": "*",
                        }
                    ),
                }
            },
            "aws_sns_topic": {
                "alarms": {**meta("alarms"), "kms_master_key_id": r("aws_kms_key", "key", "arn")}
            },
            "aws_cloudwatch_composite_alarm": {
                "health": {
                    **meta("health"),
                    "alarm_name": NAME,
                    "alarm_rule": 'ALARM("a") OR ALARM("b")',
                    "alarm_actions": [r("aws_sns_topic", "alarms", "arn")],
                    "ok_actions": [r("aws_sns_topic", "alarms", "arn")],
                }
            },
            "aws_iam_role": {"rollback": {**meta("role")}},
            "aws_lambda_function": {
                "rollback": {**meta("rollback"), "role": r("aws_iam_role", "rollback", "arn")}
            },
            "aws_lambda_permission": {
                "sns": {
                    **meta("allow-sns"),
                    "action": "lambda:InvokeFunction",
                    "function_name": r("aws_lambda_function", "rollback", "function_name"),
                    "principal": "sns.amazonaws.com",
                    "source_arn": r("aws_sns_topic", "alarms", "arn"),
                }
            },
            "aws_sns_topic_subscription": {"sub": subscription},
        }
    }


GOOD_FILTER = {"AlarmName": [NAME], "NewStateValue": ["ALARM"]}


def run(document: dict[str, Any]) -> list[str]:
    return [f.line() for f in alarm_delivery.check(StackGraph(document), REGION)]


def test_a_body_filter_on_the_composite_alarm_reaches_the_function() -> None:
    assert run(chain(GOOD_FILTER)) == []


def test_attribute_scope_exists_false_never_receives_an_alarm() -> None:
    findings = run(chain({"paymig_source": [{"exists": False}]}, scope="MessageAttributes"))
    assert findings == [
        "[alarm-delivery] stack/health -> stack/subscription: the subscription's filter does "
        "not match the alarm's ALARM notification as CloudWatch sends it (no message "
        "attributes; the JSON body)"
    ]


def test_a_filter_that_lets_ok_through_is_named() -> None:
    findings = run(chain({"AlarmName": [NAME]}))
    assert findings == [
        "[alarm-delivery] stack/health -> stack/subscription: the function is also invoked "
        "when the alarm returns to OK; filter on NewStateValue"
    ]


def test_missing_permission_and_key_statement_are_named() -> None:
    doc = chain(GOOD_FILTER)
    del doc["resource"]["aws_lambda_permission"]
    doc["resource"]["aws_kms_key"]["key"]["policy"] = policy(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}
    )
    assert run(doc) == [
        "[alarm-delivery] stack/health -> stack/key: the topic stack/alarms is encrypted with "
        "this key, whose policy does not let cloudwatch.amazonaws.com use it: every publish "
        "would fail",
        "[alarm-delivery] stack/subscription -> stack/rollback: no Lambda permission lets "
        "sns.amazonaws.com invoke the function from this topic",
    ]


def test_a_function_that_publishes_to_its_own_topic_is_named() -> None:
    doc = chain(GOOD_FILTER)
    doc["resource"]["aws_iam_role_policy"] = {
        "p": {
            "role": r("aws_iam_role", "rollback"),
            "policy": policy(
                {
                    "Effect": "Allow",
                    "Action": ["sns:Publish"],
                    "Resource": [r("aws_sns_topic", "alarms", "arn")],
                }
            ),
        }
    }
    assert run(doc) == [
        "[alarm-delivery] stack/rollback -> stack/alarms: the function is subscribed to a "
        "topic it publishes to: its own notifications would invoke it"
    ]


def test_topics_without_subscribers_and_unread_bucket_events_are_named() -> None:
    doc = chain(GOOD_FILTER)
    doc["resource"]["aws_sns_topic"]["lonely"] = meta("lonely")
    doc["resource"]["aws_s3_bucket"] = {"logs": meta("logs")}
    doc["resource"]["aws_s3_bucket_notification"] = {
        "events": {**meta("logs-events"), "bucket": r("aws_s3_bucket", "logs"), "eventbridge": True}
    }
    assert run(doc) == [
        "[alarm-delivery] stack/lonely -> subscribers: the topic has no subscription: its "
        "notifications go nowhere",
        "[alarm-delivery] stack/logs-events -> stack/logs: the bucket sends its events to "
        "EventBridge, but no rule with a target reads them",
    ]
    doc["resource"]["aws_cloudwatch_event_rule"] = {
        "deleted": {
            **meta("deleted"),
            "event_pattern": json.dumps(
                {"detail": {"bucket": {"name": [r("aws_s3_bucket", "logs")]}}}
            ),
        }
    }
    doc["resource"]["aws_cloudwatch_event_target"] = {
        "to-alarms": {
            **meta("to-alarms"),
            "rule": r("aws_cloudwatch_event_rule", "deleted", "name"),
            "arn": r("aws_sns_topic", "alarms", "arn"),
        }
    }
    findings = run(doc)
    assert findings == [
        "[alarm-delivery] stack/to-alarms -> stack/key: the topic stack/alarms is encrypted "
        "with this key, whose policy does not let events.amazonaws.com use it: every "
        "publish would fail",
        "[alarm-delivery] stack/to-alarms -> stack/alarms: the topic's access policy does not "
        "let events.amazonaws.com publish",
        "[alarm-delivery] stack/lonely -> subscribers: the topic has no subscription: its "
        "notifications go nowhere",
    ]


def test_the_notification_is_the_documented_composite_shape() -> None:
    graph = StackGraph(chain(GOOD_FILTER))
    message = json.loads(
        alarm_delivery.notification(
            graph,
            next(iter(graph.of_type("aws_cloudwatch_composite_alarm"))),
            REGION,
            AlarmState.ALARM,
        )
    )
    assert message["AlarmName"] == NAME
    assert message["NewStateValue"] == "ALARM"
    assert message["Region"] == "US East (Ohio)"
    assert message["AlarmRule"] == 'ALARM("a") OR ALARM("b")'
    assert "Trigger" not in message
