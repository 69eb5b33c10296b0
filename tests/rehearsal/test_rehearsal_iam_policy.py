"""IAM identity-policy evaluation, against the rules of the IAM User Guide.

"Policy evaluation logic": an explicit deny in any statement overrides any allow; with
no allow the request is implicitly denied. "IAM JSON policy elements: Condition
operators": a key absent from the request context makes a condition false, except for
the negated operators (true), ``...IfExists`` (true) and ``Null``.
"""

from __future__ import annotations

from typing import Any

import pytest

from paymig.rehearsal.iam_policy import (
    IamPolicyError,
    conditions_hold,
    evaluate,
    parse_statements,
    wildcard_match,
)

ZONE = "arn:aws:route53:::hostedzone/Z123"
TOPIC = "arn:aws:sns:us-east-2:111122223333:alarms"


def policy(*statements: dict[str, Any]) -> list[Any]:
    return parse_statements({"Version": "2012-10-17", "Statement": list(statements)}, "test")


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def test_an_allow_allows_and_names_its_statement() -> None:
    statements = policy(allow("route53:ChangeResourceRecordSets", ZONE, Sid="Zone"))
    decision = evaluate(statements, "route53:ChangeResourceRecordSets", ZONE)
    assert (decision.allowed, decision.statement) == (True, "Zone")


def test_without_an_allow_the_request_is_implicitly_denied() -> None:
    statements = policy(allow("route53:ChangeResourceRecordSets", ZONE))
    other_zone = "arn:aws:route53:::hostedzone/Z999"
    decision = evaluate(statements, "route53:ChangeResourceRecordSets", other_zone)
    assert (decision.allowed, decision.statement) == (False, None)
    assert decision.message("arn:aws:sts::1:assumed-role/r/s") == (
        "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: "
        f"route53:ChangeResourceRecordSets on resource: {other_zone} because no "
        "identity-based policy allows the route53:ChangeResourceRecordSets action"
    )


def test_an_explicit_deny_overrides_any_allow() -> None:
    statements = policy(
        allow("sns:*", "*"),
        {"Sid": "NoAlarms", "Effect": "Deny", "Action": "sns:Publish", "Resource": TOPIC},
    )
    denied = evaluate(statements, "sns:Publish", TOPIC)
    assert (denied.allowed, denied.statement) == (False, "NoAlarms")
    assert "with an explicit deny in statement NoAlarms" in denied.message("p")
    assert evaluate(statements, "sns:Publish", TOPIC + "-other").allowed


def test_actions_match_without_case_resources_with_case() -> None:
    statements = policy(allow("SNS:publish", TOPIC))
    assert evaluate(statements, "sns:Publish", TOPIC).allowed
    assert not evaluate(statements, "sns:Publish", TOPIC.upper()).allowed


@pytest.mark.parametrize(
    ("pattern", "value", "hit"),
    [
        ("arn:aws:route53:::change/*", "arn:aws:route53:::change/C1", True),
        ("arn:aws:logs:*:*:log-group:/aws/lambda/f:*", "arn:aws:logs:r:1:log-group:/aws/lambda/f:x", True),
        ("dynamodb:?etItem", "dynamodb:GetItem", True),
        ("dynamodb:?etItem", "dynamodb:PutItem", False),
        ("dynamodb:Get*", "dynamodb:Query", False),
    ],
)  # fmt: skip
def test_wildcards(pattern: str, value: str, hit: bool) -> None:
    assert wildcard_match(pattern, value, ignore_case=True) is hit


def test_not_action_and_not_resource_invert_the_match() -> None:
    statements = policy(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "sns:Publish", "NotResource": TOPIC},
    )
    assert evaluate(statements, "sns:Publish", TOPIC).allowed
    assert not evaluate(statements, "sns:Publish", TOPIC + "-b").allowed
    assert not evaluate(statements, "iam:CreateUser", "*").allowed


def test_a_condition_holds_only_with_the_key_in_the_request() -> None:
    metric = allow(
        "cloudwatch:PutMetricData",
        "*",
        Condition={"StringEquals": {"cloudwatch:namespace": "Paymig/Migration"}},
    )
    statements = policy(metric)
    ok = evaluate(
        statements, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "Paymig/Migration"}
    )
    other = evaluate(statements, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "X"})
    absent = evaluate(statements, "cloudwatch:PutMetricData", "*", {})
    assert (ok.allowed, other.allowed, absent.allowed) == (True, False, False)


@pytest.mark.parametrize(
    ("block", "context", "holds"),
    [
        # "the right key is not present, the condition is true" for negated operators.
        ({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}, {}, True),
        ({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}, {"aws:SourceVpc": "vpc-1"}, False),
        ({"ArnNotLike": {"aws:SourceArn": "arn:aws:sns:*"}}, {}, True),
        # ...IfExists: true when the key is absent, checked when present.
        ({"StringEqualsIfExists": {"k": "a"}}, {}, True),
        ({"StringEqualsIfExists": {"k": "a"}}, {"k": "b"}, False),
        # Null: "true" wants the key absent, "false" present.
        ({"Null": {"k": "true"}}, {}, True),
        ({"Null": {"k": "false"}}, {}, False),
        # Keys are not case-sensitive; any value of a key may match (OR).
        ({"StringLike": {"Cloudwatch:Namespace": ["A/*", "Paymig/*"]}}, {"cloudwatch:namespace": "Paymig/X"}, True),
        ({"StringEqualsIgnoreCase": {"k": "ABC"}}, {"k": "abc"}, True),
        ({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": "true"}, True),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:sns:us-east-2:*:alarms"}}, {"aws:SourceArn": TOPIC}, True),
        # Every operator and every key must hold (AND).
        ({"StringEquals": {"a": "1", "b": "2"}}, {"a": "1", "b": "3"}, False),
    ],
)  # fmt: skip
def test_condition_operators(block: dict[str, Any], context: dict[str, str], holds: bool) -> None:
    assert conditions_hold(block, context) is holds


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Principal": "*"}, "resource-based"),
        ({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::${aws:username}/*"}, "policy variables"),
        ({"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}, "Effect"),
        ({"Effect": "Allow", "Action": [], "Resource": "*"}, "Action"),
        ({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": []}, "Condition"),
    ],
)  # fmt: skip
def test_what_is_not_modelled_is_an_error(statement: dict[str, Any], message: str) -> None:
    with pytest.raises(IamPolicyError, match=message):
        policy(statement)


@pytest.mark.parametrize(
    "block",
    [
        {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}},
        {"NumericLessThan": {"s3:max-keys": "10"}},
        {"StringEquals": "not-a-map"},
    ],
)
def test_unmodelled_operators_raise_instead_of_guessing(block: dict[str, Any]) -> None:
    with pytest.raises(IamPolicyError):
        conditions_hold(block, {})


def test_a_single_statement_object_is_read_like_a_list() -> None:
    statements = parse_statements({"Statement": allow("sts:GetCallerIdentity", "*")}, "one")
    assert evaluate(statements, "sts:GetCallerIdentity", "*").allowed
