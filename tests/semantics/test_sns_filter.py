"""SNS filter policies against the examples of the Amazon SNS Developer Guide.

Each case below is one of the guide's "It matches ..." / "it doesn't match ..." examples,
in its notation: attributes as {"Type": ..., "Value": ...}, bodies as JSON. Pages:
string-value-matching, numeric-value-matching, attribute-key-matching, and-or-logic,
subscription-filter-policy-constraints (https://docs.aws.amazon.com/sns/latest/dg/).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paymig.semantics.sns_filter import (
    InvalidFilterPolicyError,
    InvalidMessageAttributeError,
    SnsAttribute,
    matches,
    policy_combinations,
    validate_policy,
)

A, B = "MessageAttributes", "MessageBody"


def attributes(documented: dict[str, dict[str, Any]]) -> dict[str, SnsAttribute]:
    return {
        name: SnsAttribute(item["Type"], str(item["Value"])) for name, item in documented.items()
    }


def on_attributes(policy: dict[str, Any], documented: dict[str, dict[str, Any]]) -> bool:
    return matches(policy, A, message="message-body", attributes=attributes(documented))


def on_body(policy: dict[str, Any], body: Any) -> bool:
    return matches(policy, B, message=json.dumps(body), attributes={})


def s(value: str) -> dict[str, str]:
    return {"Type": "String", "Value": value}


def arr(*values: Any) -> dict[str, str]:
    return {"Type": "String.Array", "Value": json.dumps(list(values))}


def n(value: Any) -> dict[str, Any]:
    return {"Type": "Number", "Value": value}


INTERESTS = "customer_interests"

# (policy property, attribute value or None, body value or None, matches)
STRING_CASES = [
    # Exact matching
    ({INTERESTS: ["rugby", "tennis"]}, s("rugby"), "rugby", True),
    ({INTERESTS: ["rugby", "tennis"]}, s("tennis"), "tennis", True),
    ({INTERESTS: ["rugby", "tennis"]}, arr("rugby", "tennis"), None, True),
    ({INTERESTS: ["rugby", "tennis"]}, s("baseball"), "baseball", False),
    ({INTERESTS: ["rugby", "tennis"]}, arr("baseball"), None, False),
    # Anything-but matching
    ({INTERESTS: [{"anything-but": ["rugby", "tennis"]}]}, s("baseball"), "baseball", True),
    ({INTERESTS: [{"anything-but": ["rugby", "tennis"]}]}, s("football"), "football", True),
    (
        {INTERESTS: [{"anything-but": ["rugby", "tennis"]}]},
        arr("rugby", "baseball"),
        ["rugby", "baseball"],
        True,
    ),
    ({INTERESTS: [{"anything-but": ["rugby", "tennis"]}]}, s("rugby"), ["rugby"], False),
    ({INTERESTS: [{"anything-but": ["rugby", "tennis"]}]}, arr("rugby"), None, False),
    # Using a prefix with anything-but
    ({"event": [{"anything-but": {"prefix": "order-"}}]}, s("data-entry"), "data-entry", True),
    ({"event": [{"anything-but": {"prefix": "order-"}}]}, s("order_number"), "order_number", True),
    (
        {"event": [{"anything-but": {"prefix": "order-"}}]},
        s("order-cancelled"),
        "order-cancelled",
        False,
    ),
    # anything-but wildcard, anything-but suffix
    (
        {INTERESTS: [{"anything-but": {"wildcard": "*ball"}}]},
        arr("hockey", "rugby", "soccer"),
        ["hockey", "rugby", "soccer"],
        True,
    ),
    (
        {INTERESTS: [{"anything-but": {"wildcard": "*ball"}}]},
        arr("baseball", "basketball"),
        ["baseball", "basketball"],
        False,
    ),
    (
        {INTERESTS: [{"anything-but": {"suffix": "ball"}}]},
        arr("hockey", "rugby", "soccer"),
        ["hockey", "rugby", "soccer"],
        True,
    ),
    (
        {INTERESTS: [{"anything-but": {"suffix": "ball"}}]},
        arr("baseball", "basketball"),
        ["baseball", "basketball"],
        False,
    ),
    # Equals-ignore-case matching
    ({INTERESTS: [{"equals-ignore-case": "tennis"}]}, s("TENNIS"), "TENNIS", True),
    ({INTERESTS: [{"equals-ignore-case": "tennis"}]}, s("Tennis"), "teNnis", True),
    ({INTERESTS: [{"equals-ignore-case": "tennis"}]}, s("rugby"), "rugby", False),  # ours
    # IP address matching
    ({"source_ip": [{"cidr": "10.0.0.0/24"}]}, s("10.0.0.0"), "10.0.0.0", True),
    ({"source_ip": [{"cidr": "10.0.0.0/24"}]}, s("10.0.0.255"), "10.0.0.255", True),
    ({"source_ip": [{"cidr": "10.0.0.0/24"}]}, s("10.1.1.0"), "10.1.1.0", False),
    ({"source_ip": [{"cidr": "10.0.0.0/24"}]}, s("not-an-ip"), "not-an-ip", False),  # ours
    ({"source_ip": [{"cidr": "10.0.0.0/24"}]}, n(10), 10, False),  # ours
    # Prefix matching
    ({INTERESTS: [{"prefix": "bas"}]}, s("baseball"), "baseball", True),
    ({INTERESTS: [{"prefix": "bas"}]}, s("basketball"), "basketball", True),
    ({INTERESTS: [{"prefix": "bas"}]}, s("rugby"), "rugby", False),
    # Suffix matching
    ({INTERESTS: [{"suffix": "ball"}]}, s("baseball"), "baseball", True),
    ({INTERESTS: [{"suffix": "ball"}]}, s("basketball"), "basketball", True),
    ({INTERESTS: [{"suffix": "ball"}]}, s("rugby"), "rugby", False),
    # Wildcard
    (
        {INTERESTS: [{"wildcard": "*ball"}]},
        arr("baseball", "basketball"),
        ["baseball", "basketball"],
        True,
    ),
    ({INTERESTS: [{"wildcard": "b*l"}]}, s("rugby"), "balls", False),  # ours: anchored
]

NUMERIC_CASES = [
    # Exact matching
    ({"price_usd": [{"numeric": ["=", 301.5]}]}, n(301.5), 301.5, True),
    ({"price_usd": [{"numeric": ["=", 301.5]}]}, n("3.015e2"), 3.015e2, True),
    ({"price_usd": [{"numeric": ["=", 301.5]}]}, n(301.6), 301.6, False),  # ours
    # Anything-but matching ("Number.Array" in the guide; SNS's array type is String.Array)
    ({"price": [{"anything-but": [100, 500]}]}, n(101), 101, True),
    ({"price": [{"anything-but": [100, 500]}]}, n(100.1), 100.1, True),
    ({"price": [{"anything-but": [100, 500]}]}, arr(100, 50), [100, 50], True),
    ({"price": [{"anything-but": [100, 500]}]}, n(100), 100, False),
    # Value range matching
    ({"price_usd": [{"numeric": ["<", 0]}]}, n(-0.5), -0.5, True),
    ({"price_usd": [{"numeric": ["<", 0]}]}, n(0), 0, False),
    ({"price_usd": [{"numeric": [">", 0, "<=", 150]}]}, n(150), 150, True),
    ({"price_usd": [{"numeric": [">", 0, "<=", 150]}]}, n(0), 0, False),
    ({"price_usd": [{"numeric": [">", 0, "<=", 150]}]}, n(150.01), 150.01, False),
    ({"price_usd": [{"numeric": [">=", 1]}]}, s("5"), "5", False),  # ours: typed
]


@pytest.mark.parametrize(("policy", "attribute", "body", "expected"), STRING_CASES + NUMERIC_CASES)
def test_guide_examples(
    policy: dict[str, Any], attribute: dict[str, Any], body: Any, expected: bool
) -> None:
    (key,) = policy
    assert on_attributes(policy, {key: attribute}) is expected
    if body is not None:
        assert on_body(policy, {key: body}) is expected


# ---------------------------------------------------------------------------- key matching

STORE_AND_INTERESTS = {"store": s("fans"), INTERESTS: arr("baseball", "basketball")}
INTERESTS_ONLY = {INTERESTS: arr("baseball", "basketball")}


def test_exists_true() -> None:
    policy = {"store": [{"exists": True}]}
    assert on_attributes(policy, STORE_AND_INTERESTS)
    assert on_body(policy, {"store": "fans", INTERESTS: ["baseball", "basketball"]})
    assert not on_attributes(policy, INTERESTS_ONLY)
    assert not on_body(policy, {INTERESTS: ["baseball", "basketball"]})
    # "The key must have a non-null and non-empty value."
    assert not on_body(policy, {"store": None})
    assert not on_body(policy, {"store": ""})
    # "exists works only on leaf nodes": an object is not one.
    assert not on_body(policy, {"store": {"name": "fans"}})


def test_exists_false() -> None:
    policy = {"store": [{"exists": False}]}
    assert not on_attributes(policy, STORE_AND_INTERESTS)
    assert not on_body(policy, {"store": "fans", INTERESTS: ["baseball", "basketball"]})
    assert on_attributes(policy, INTERESTS_ONLY)
    assert on_body(policy, {INTERESTS: ["baseball", "basketball"]})


def test_exists_false_never_matches_a_message_without_attributes() -> None:
    # "`"exists": false` only matches if at least one attribute is present. An empty
    # set of attributes results in the filter not matching." CloudWatch alarm
    # notifications carry no attributes, so such a subscription never receives them.
    policy = {"paymig_source": [{"exists": False}]}
    assert not on_attributes(policy, {})
    assert on_attributes(policy, {"anything": s("x")})
    # SNS ignores Binary attributes, so they do not count as present (our choice).
    assert not on_attributes(policy, {"blob": {"Type": "Binary", "Value": "AAEC"}})


def test_an_empty_policy_is_no_filter() -> None:
    # "Removing a subscription filter policy": an empty JSON body; every message passes.
    assert on_attributes({}, {})
    assert matches({}, B, message="not json", attributes={})


def test_anything_but_can_be_combined_with_exists_false() -> None:
    policy = {"store": [{"anything-but": ["fans"]}, {"exists": False}]}
    assert on_attributes(policy, INTERESTS_ONLY)
    assert on_attributes(policy, {"store": s("shop")})
    assert not on_attributes(policy, STORE_AND_INTERESTS)
    assert not on_attributes({"store": [{"anything-but": ["fans"]}]}, INTERESTS_ONLY)


# ---------------------------------------------------------------------------- AND / OR


def test_and_across_keys() -> None:
    policy = {INTERESTS: ["rugby"], "price_usd": [{"numeric": [">", 100]}]}
    assert on_attributes(policy, {INTERESTS: s("rugby"), "price_usd": n(101)})
    assert not on_attributes(policy, {INTERESTS: s("rugby"), "price_usd": n(100)})
    assert not on_attributes(policy, {INTERESTS: s("rugby")})


def test_or_within_a_key() -> None:
    policy = {INTERESTS: ["rugby", "football", "baseball"]}
    assert all(on_attributes(policy, {INTERESTS: s(v)}) for v in ("rugby", "football", "baseball"))
    assert not on_attributes(policy, {INTERESTS: s("tennis")})


OR_POLICY = {
    "source": ["aws.cloudwatch"],
    "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}],
}


def test_or_operator_standard_example() -> None:
    source = s("aws.cloudwatch")
    assert on_attributes(OR_POLICY, {"source": source, "metricName": s("CPUUtilization")})
    assert on_attributes(OR_POLICY, {"source": source, "namespace": s("AWS/EC2")})
    assert on_body(OR_POLICY, {"source": "aws.cloudwatch", "metricName": "CPUUtilization"})
    assert on_body(OR_POLICY, {"source": "aws.cloudwatch", "namespace": "AWS/EC2"})
    assert not on_attributes(OR_POLICY, {"source": source})
    assert not on_attributes(OR_POLICY, {"metricName": s("CPUUtilization")})


def test_or_with_reserved_keywords_is_an_ordinary_key() -> None:
    # "The following policy isn't parsed as an OR relationship because numeric and prefix
    # are reserved keywords": `$or` is then a plain attribute name.
    policy = {"$or": [{"prefix": "ab"}, {"suffix": "yz"}]}
    assert on_attributes(policy, {"$or": s("abc")})
    assert on_attributes(policy, {"$or": s("xyz")})
    assert not on_attributes(policy, {"$or": s("mmm"), "ab": s("x")})
    with pytest.raises(InvalidFilterPolicyError, match="'numeric' takes"):
        validate_policy({"$or": [{"numeric": 123}, {"prefix": "abc"}]}, A)


def test_nested_body_policy() -> None:
    policy = {
        "detail": {"scope": ["Service"], "$or": [{"source": ["aws.cloudwatch"]}, {"type": ["x"]}]}
    }
    assert on_body(policy, {"detail": {"scope": "Service", "type": "x"}})
    assert not on_body(policy, {"detail": {"scope": "Service"}})
    assert not on_body(policy, {"detail": "Service"})
    # An array of objects matches when any object matches (our choice, as for values).
    assert on_body(policy, {"detail": [{"scope": "Other"}, {"scope": "Service", "type": "x"}]})
    assert on_body({"detail": {"gone": [{"exists": False}]}}, {"other": 1})


def test_body_scope_needs_a_json_object() -> None:
    policy = {"a": ["x"]}
    assert not matches(policy, B, message="a=x", attributes={})
    assert not matches(policy, B, message='["a", "x"]', attributes={})
    assert matches(policy, B, message='{"a": "x"}', attributes={})


def test_typed_literals() -> None:
    assert on_body({"k": [None]}, {"k": None})
    assert on_body({"k": [True]}, {"k": True})
    assert not on_body({"k": [True]}, {"k": 1})
    assert not on_body({"k": [1]}, {"k": True})
    assert not on_body({"k": ["1"]}, {"k": 1})
    assert on_attributes({"k": [1]}, {"k": n("1.0")})
    assert on_attributes({"k": [True, None]}, {"k": arr(None)})


# ---------------------------------------------------------------------------- constraints


def test_complexity_examples() -> None:
    # "Filter policy constraints" and "AND/OR logic": 6, 72, 7 and 32 combinations.
    flat = {"key_a": ["one", "two", "three"], "key_b": ["one"], "key_c": ["one", "two"]}
    nested = {
        "key_a": {"key_b": {"key_c": ["one", "two", "three", "four"]}},
        "key_d": {"key_e": ["one", "two", "three"]},
    }
    with_or = {
        "source": ["aws.cloudwatch"],
        "$or": [
            {"metricName": ["CPUUtilization", "ReadLatency"]},
            {
                "metricType": ["MetricType"],
                "$or": [{"metricId": [1234, 4321]}, {"spaceId": [1000, 2000, 3000]}],
            },
        ],
    }
    nested_or = {
        "$or": [
            {"metricName": ["CPUUtilization", "ReadLatency"]},
            {"namespace": ["AWS/EC2", "AWS/ES"]},
        ],
        "detail": {
            "scope": ["Service"],
            "$or": [{"source": ["aws.cloudwatch"]}, {"type": ["CloudWatch Alarm State Change"]}],
        },
    }
    assert [policy_combinations(p) for p in (flat, nested, with_or, nested_or)] == [6, 72, 7, 32]


def test_at_most_150_combinations() -> None:
    validate_policy({"a": list(range(150))}, A)
    with pytest.raises(InvalidFilterPolicyError, match="151 combinations"):
        validate_policy({"a": list(range(151))}, A)
    with pytest.raises(InvalidFilterPolicyError, match="160 combinations"):
        validate_policy({"a": list(range(10)), "b": list(range(16))}, A)


def test_at_most_five_keys() -> None:
    validate_policy({f"k{i}": ["v"] for i in range(5)}, A)
    with pytest.raises(InvalidFilterPolicyError, match="6 keys"):
        validate_policy({f"k{i}": ["v"] for i in range(6)}, A)
    # "For a nested policy, only parent keys are counted."
    validate_policy({"p": {f"k{i}": ["v"] for i in range(6)}}, B)


@pytest.mark.parametrize(
    ("policy", "scope", "message"),
    [
        ({"a": {"b": ["x"]}}, A, "scope MessageAttributes does not accept"),
        ({"a": "x"}, A, "must be an array"),
        ({"a": [{"regex": "x"}]}, A, "unknown operator 'regex'"),
        ({"a": [{"prefix": "x", "suffix": "y"}]}, A, "exactly one operator"),
        ({"a": [{"prefix": 1}]}, A, "'prefix' takes a string"),
        ({"a": [{"exists": "yes"}]}, A, "'exists' takes true or false"),
        ({"a": [{"cidr": "10.0.0.0/33"}]}, A, "no IP network"),
        ({"a": [{"numeric": [">", "1"]}]}, A, "'numeric' takes"),
        ({"a": [{"numeric": ["~", 1]}]}, A, "'numeric' takes"),
        ({"a": [{"numeric": [">", 1, "<"]}]}, A, "'numeric' takes"),
        ({"a": [{"numeric": [">", 1e10]}]}, A, "outside -10\\^9..10\\^9"),
        ({"a": [1000000001]}, A, "outside"),
        ({"a": [{"anything-but": []}]}, A, "lists strings or numbers"),
        ({"a": [{"anything-but": [True]}]}, A, "lists strings or numbers"),
        ({"a": [{"anything-but": {"equals-ignore-case": "x"}}]}, A, "one of prefix"),
        ({"a": [{"anything-but": {"prefix": 3}}]}, A, "takes a string"),
        ({"a": [{"anything-but": [2e9]}]}, A, "outside"),
        ({"a": [["nested"]]}, A, "values are strings"),
        ({"a": [float("nan")]}, A, "not valid JSON"),
        ({1: ["x"]}, A, "must be a string"),
        ({"a": ["x" * (256 * 1024)]}, A, "exceed 256 KB"),
        ({"a": ["x"]}, "Body", "FilterPolicyScope"),
    ],
)
def test_rejected_policies(policy: dict[Any, Any], scope: Any, message: str) -> None:
    with pytest.raises(InvalidFilterPolicyError, match=message):
        validate_policy(policy, scope)


def test_a_policy_is_a_json_object() -> None:
    with pytest.raises(InvalidFilterPolicyError, match="must be a JSON object"):
        validate_policy(["a"], A)  # type: ignore[arg-type]


def test_matches_rejects_an_invalid_policy_too() -> None:
    with pytest.raises(InvalidFilterPolicyError, match="unknown operator"):
        on_attributes({"a": [{"contains": "x"}]}, {"a": s("x")})


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ({"Type": "Number", "Value": "ten"}, "is no number"),
        ({"Type": "String.Array", "Value": "[1, [2]]"}, "String.Array must be"),
        ({"Type": "String.Array", "Value": "not json"}, "String.Array must be"),
        ({"Type": "Number.float", "Value": "1"}, "unsupported data type"),
    ],
)
def test_invalid_attributes(attribute: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidMessageAttributeError, match=message):
        on_attributes({"a": ["x"]}, {"a": attribute})


# ---------------------------------------------------------------------------- properties

words = st.text(alphabet="abcXYZ-_.", min_size=1, max_size=6)


@given(policy_value=words, message_value=words)
def test_anything_but_is_the_complement_of_exact_for_one_string(
    policy_value: str, message_value: str
) -> None:
    document = {"k": s(message_value)}
    exact = on_attributes({"k": [policy_value]}, document)
    assert exact == (policy_value == message_value)
    assert on_attributes({"k": [{"anything-but": [policy_value]}]}, document) != exact


@given(present=st.dictionaries(st.sampled_from("abcd"), words, min_size=1))
def test_exists_true_and_false_split_messages_with_attributes(present: dict[str, str]) -> None:
    document = {name: s(value) for name, value in present.items()}
    for key in "abcd":
        with_key = on_attributes({key: [{"exists": True}]}, document)
        assert with_key == (key in present)
        assert on_attributes({key: [{"exists": False}]}, document) != with_key


@given(value=words, cut=st.integers(0, 6))
def test_prefix_suffix_and_wildcard_agree(value: str, cut: int) -> None:
    head, tail = value[:cut], value[cut:]
    document = {"k": s(value)}
    assert on_attributes({"k": [{"prefix": head}]}, document)
    assert on_attributes({"k": [{"suffix": tail}]}, document)
    assert on_attributes({"k": [{"wildcard": f"{head}*"}]}, document)
    assert on_attributes({"k": [{"wildcard": f"*{tail}"}]}, document)
