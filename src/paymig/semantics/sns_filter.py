"""Amazon SNS subscription filter policies: which messages a subscription receives.

Everything here follows the Amazon SNS Developer Guide
(https://docs.aws.amazon.com/sns/latest/dg/), pages:

- "Amazon SNS subscription filter policies" (sns-subscription-filter-policies.html): AND
  across property names, at least one value per name must match.
- "Amazon SNS subscription filter policy scope" (sns-message-filtering-scope.html).
- "String value matching" (string-value-matching.html): exact, anything-but, prefix,
  suffix, equals-ignore-case, cidr, wildcard.
- "Numeric value matching" (numeric-value-matching.html).
- "Key matching" (attribute-key-matching.html): exists.
- "AND/OR logic" (and-or-logic.html): the ``$or`` operator and its complexity.
- "Filter policy constraints" (subscription-filter-policy-constraints.html).
- "Amazon SNS message attributes" (sns-message-attributes.html): attribute data types.
- "Removing a subscription filter policy" (message-filtering-policy-remove.html).

Where the documentation is silent, the choice made is marked "(our choice)".
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from paymig.errors import PaymigError

FilterPolicyScope = Literal["MessageAttributes", "MessageBody"]
SCOPES: tuple[str, ...] = get_args(FilterPolicyScope)

#: "Filter policy constraints": at most five attribute names (parent keys when nested).
MAX_KEYS = 5
#: "Filter policy constraints": the total combination of values must not exceed 150.
MAX_COMBINATIONS = 150
#: "Filter policy constraints": the maximum size of a policy is 256 KB.
MAX_POLICY_BYTES = 256 * 1024
#: "Filter policy constraints": numeric values range from -10^9 to 10^9.
MAX_NUMBER = 1e9

#: Operators SNS documents; their names are "reserved keywords" for ``$or``.
OPERATORS = frozenset(
    {"prefix", "suffix", "anything-but", "numeric", "exists", "equals-ignore-case", "cidr"}
    | {"wildcard"}
)
#: Inner forms of ``anything-but`` that take a string ("String value matching").
ANYTHING_BUT_PATTERNS = frozenset({"prefix", "suffix", "wildcard"})
NUMERIC_OPERATORS = frozenset({"=", "<", "<=", ">", ">="})
OR_KEY = "$or"

#: Attribute data types ("Amazon SNS message attributes"); filters ignore Binary.
ATTRIBUTE_TYPES = frozenset({"String", "String.Array", "Number", "Binary"})

Scalar = str | float | bool | None


class InvalidFilterPolicyError(PaymigError):
    """A filter policy that SNS would reject (the message names the key and the rule)."""


class InvalidMessageAttributeError(PaymigError):
    """A message attribute that SNS would reject at publish time."""


@dataclass(frozen=True)
class SnsAttribute:
    """One message attribute as published: its data type and its value as text."""

    type: str
    value: str


# ---------------------------------------------------------------------------- matching


def matches(
    policy: Mapping[str, Any],
    scope: FilterPolicyScope,
    *,
    message: str,
    attributes: Mapping[str, SnsAttribute],
) -> bool:
    """Whether a subscription with this filter policy receives the message.

    The policy is validated first (SNS would not have accepted an invalid one).
    """
    validate_policy(policy, scope)
    if not policy:
        # "Removing a subscription filter policy": an empty JSON body stops filtering.
        return True
    if scope == "MessageAttributes":
        document = _attribute_document(attributes)
        if not document:
            # "Key matching": `"exists": false` only matches if at least one attribute
            # is present; "an empty set of attributes results in the filter not matching".
            return False
        return _match_object(policy, document)
    body = _json_object(message)
    if body is None:
        # "Filter policies for the message body assume that the message payload is a
        # well-formed JSON object" ("Amazon SNS message filtering").
        return False
    return _match_object(policy, body)


def _attribute_document(attributes: Mapping[str, SnsAttribute]) -> dict[str, Any]:
    """The attributes SNS compares, as name -> list of typed values.

    "Policy constraints for attribute-based filtering": SNS compares only String,
    String.Array and Number attributes and ignores Binary ones, so a Binary attribute
    counts as absent, also for the empty-attributes rule (our choice).
    """
    document: dict[str, Any] = {}
    for name, attribute in attributes.items():
        if attribute.type not in ATTRIBUTE_TYPES:
            raise InvalidMessageAttributeError(
                f"message attribute {name!r}: unsupported data type {attribute.type!r}"
            )
        if attribute.type == "String":
            document[name] = [attribute.value]
        elif attribute.type == "Number":
            document[name] = [_number_attribute(name, attribute.value)]
        elif attribute.type == "String.Array":
            document[name] = _string_array(name, attribute.value)
    return document


def _number_attribute(name: str, value: str) -> float:
    """A Number attribute's value ("if the type is a number, SNS validates it")."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise InvalidMessageAttributeError(f"message attribute {name!r}: {value!r} is no number")
    return number


def _string_array(name: str, value: str) -> list[Scalar]:
    """A String.Array's elements: strings, numbers, true, false or null."""
    try:
        elements = json.loads(value)
    except json.JSONDecodeError:
        elements = None
    if not isinstance(elements, list) or not all(_is_scalar(e) for e in elements):
        raise InvalidMessageAttributeError(
            f"message attribute {name!r}: String.Array must be a JSON array of strings, "
            "numbers, true, false or null"
        )
    return [float(e) if _is_number(e) else e for e in elements]


def _json_object(message: str) -> dict[str, Any] | None:
    """The message body as a JSON object, or None when it is not one."""
    try:
        body = json.loads(message)
    except json.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _match_object(policy: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """AND across the policy's keys ("Amazon SNS subscription filter policies")."""
    for key, condition in policy.items():
        if key == OR_KEY and _is_or(condition):
            if not any(_match_object(branch, node) for branch in condition):
                return False
        elif isinstance(condition, Mapping):
            if not _match_nested(condition, node.get(key)):
                return False
        elif not _match_key(condition, key in node, node.get(key)):
            return False
    return True


def _match_nested(policy: Mapping[str, Any], value: Any) -> bool:
    """A nested policy against a body property: an object, or any object of an array.

    A property that is absent or not an object holds none of the nested keys, so only
    `"exists": false` can match below it (our choice: SNS names nested keys as paths).
    """
    if isinstance(value, dict):
        return _match_object(policy, value)
    candidates = [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
    if not candidates:
        return _match_object(policy, {})
    return any(_match_object(policy, candidate) for candidate in candidates)


def _match_key(conditions: Sequence[Any], present: bool, value: Any) -> bool:
    """OR within one key's array: at least one condition matches the property."""
    values = _leaf_values(value) if present else []
    exists = [v for v in values if v is not None and v != ""]
    for condition in conditions:
        if isinstance(condition, Mapping):
            ((operator, argument),) = condition.items()
            if operator == "exists":
                # "Key matching": the key must have a non-null and non-empty value.
                if bool(exists) == argument:
                    return True
            elif any(_OPERATOR_MATCHERS[operator](argument, v) for v in exists):
                return True
        elif any(_equals(condition, v) for v in values):
            return True
    return False


def _leaf_values(value: Any) -> list[Scalar]:
    """The values a leaf condition sees: an array matches if any element matches.

    An object is not a leaf ("exists works only on leaf nodes"), so it offers no value.
    """
    if isinstance(value, list):
        return [float(v) if _is_number(v) else v for v in value if _is_scalar(v)]
    if _is_scalar(value):
        return [float(value) if _is_number(value) else value]
    return []


def _equals(expected: Any, actual: Scalar) -> bool:
    """Exact matching, typed: strings match strings, numbers match numbers."""
    if _is_number(expected):
        return _is_number(actual) and float(expected) == actual
    return type(expected) is type(actual) and expected == actual  # str, bool or null


def _prefix(argument: str, value: Scalar) -> bool:
    return isinstance(value, str) and value.startswith(argument)


def _suffix(argument: str, value: Scalar) -> bool:
    return isinstance(value, str) and value.endswith(argument)


def _equals_ignore_case(argument: str, value: Scalar) -> bool:
    return isinstance(value, str) and value.lower() == argument.lower()


def _wildcard(argument: str, value: Scalar) -> bool:
    """`*` matches any run of characters ("String value matching", Wildcard)."""
    pattern = ".*".join(re.escape(part) for part in argument.split("*"))
    return isinstance(value, str) and re.fullmatch(pattern, value, re.DOTALL) is not None


def _cidr(argument: str, value: Scalar) -> bool:
    """IP address matching: the value is an address inside the policy's network."""
    if not isinstance(value, str):
        return False
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return address in ipaddress.ip_network(argument, strict=False)


def _anything_but(argument: Any, value: Scalar) -> bool:
    """Anything-but: the value is none of the listed values, or misses the pattern.

    The page says a String.Array matches "if none of the array elements are listed", but
    its worked example matches ["rugby", "baseball"] against anything-but
    ["rugby", "tennis"] "because it contains a value that isn't rugby or tennis": we
    follow the example (any element), like every other operator on arrays.
    """
    if isinstance(argument, Mapping):
        ((pattern, text),) = argument.items()
        return not _OPERATOR_MATCHERS[pattern](text, value)
    listed = argument if isinstance(argument, list) else [argument]
    return not any(_equals(item, value) for item in listed)


def _numeric(argument: Sequence[Any], value: Scalar) -> bool:
    """Numeric matching: every (operator, number) pair holds for a number value."""
    if not isinstance(value, float):  # numbers arrive as floats, see _leaf_values
        return False
    pairs = zip(argument[::2], argument[1::2], strict=True)
    return all(_compare(operator, value, float(bound)) for operator, bound in pairs)


def _compare(operator: str, number: float, bound: float) -> bool:
    """One numeric comparison of the value with a policy bound."""
    comparisons: dict[str, Callable[[float, float], bool]] = {
        "=": lambda a, b: a == b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return comparisons[operator](number, bound)


_OPERATOR_MATCHERS: dict[str, Callable[[Any, Scalar], bool]] = {
    "prefix": _prefix,
    "suffix": _suffix,
    "equals-ignore-case": _equals_ignore_case,
    "wildcard": _wildcard,
    "cidr": _cidr,
    "anything-but": _anything_but,
    "numeric": _numeric,
}


# ---------------------------------------------------------------------------- validation


def validate_policy(policy: Mapping[str, Any], scope: FilterPolicyScope) -> None:
    """Raise :class:`InvalidFilterPolicyError` for a policy SNS would reject.

    Checks the documented constraints: the scope, the JSON value types, the operators
    and their arguments, nesting (MessageBody only), at most five top-level keys, at
    most 150 combinations, numbers within +-10^9 and 256 KB of JSON.
    """
    if scope not in SCOPES:
        raise InvalidFilterPolicyError(f"FilterPolicyScope: {scope!r} is not one of {SCOPES}")
    if not isinstance(policy, Mapping):
        raise InvalidFilterPolicyError("FilterPolicy: must be a JSON object")
    try:
        size = len(json.dumps(policy, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError) as error:
        raise InvalidFilterPolicyError(f"FilterPolicy: not valid JSON ({error})") from error
    if size > MAX_POLICY_BYTES:
        raise InvalidFilterPolicyError(f"FilterPolicy: {size} bytes exceed 256 KB")
    keys = [key for key in policy if not (key == OR_KEY and _is_or(policy[key]))]
    if len(keys) > MAX_KEYS:
        # "A filter policy can have a maximum of five attribute names. For a nested
        # policy, only parent keys are counted." Keys inside `$or` branches are not
        # counted here: the page does not say how they count (our choice).
        raise InvalidFilterPolicyError(
            f"FilterPolicy: {len(keys)} keys, at most {MAX_KEYS} are allowed"
        )
    _validate_object(policy, scope, path="")
    combinations = policy_combinations(policy)
    if combinations > MAX_COMBINATIONS:
        raise InvalidFilterPolicyError(
            f"FilterPolicy: {combinations} combinations, at most {MAX_COMBINATIONS} are allowed"
        )


def policy_combinations(policy: Mapping[str, Any]) -> int:
    """The policy's complexity as "Filter policy constraints" and "AND/OR logic" count it.

    Each OR alternative contributes the product, over its keys, of the key's nesting
    level times its number of values; alternatives add up
    (e.g. ``(1 * 2) + (1 * 1 * 2) + (1 * 1 * 3) = 7``).
    """
    return sum(math.prod(depth * count for depth, count in alt) for alt in _alternatives(policy))


def _alternatives(policy: Mapping[str, Any], depth: int = 1) -> list[list[tuple[int, int]]]:
    """The policy expanded into OR alternatives of (nesting level, value count)."""
    alternatives: list[list[tuple[int, int]]] = [[]]
    for key, condition in policy.items():
        if key == OR_KEY and _is_or(condition):
            branches = [alt for branch in condition for alt in _alternatives(branch, depth)]
        elif isinstance(condition, Mapping):
            branches = _alternatives(condition, depth + 1)
        else:
            branches = [[(depth, len(condition))]]
        alternatives = [mine + theirs for mine in alternatives for theirs in branches]
    return alternatives


def _validate_object(policy: Mapping[str, Any], scope: FilterPolicyScope, path: str) -> None:
    """Validate each key of a (possibly nested) policy object."""
    for key, condition in policy.items():
        where = f"{path}{key}"
        if not isinstance(key, str):
            raise InvalidFilterPolicyError(f"FilterPolicy: key {key!r} must be a string")
        if key == OR_KEY and _is_or(condition):
            for branch in condition:
                _validate_object(branch, scope, path)
        elif isinstance(condition, Mapping):
            if scope == "MessageAttributes":
                # "Amazon SNS doesn't accept a nested filter policy for attribute-based
                # filtering."
                raise InvalidFilterPolicyError(
                    f"FilterPolicy: {where!r} is nested, which scope MessageAttributes "
                    "does not accept"
                )
            _validate_object(condition, scope, f"{where}.")
        elif isinstance(condition, list):
            for element in condition:
                _validate_condition(where, element)
        else:
            raise InvalidFilterPolicyError(
                f"FilterPolicy: {where!r} must be an array (or an object, in MessageBody scope)"
            )


def _validate_condition(where: str, element: Any) -> None:
    """One element of a key's array: a literal or a one-operator object."""
    if isinstance(element, Mapping):
        if len(element) != 1:
            raise InvalidFilterPolicyError(
                f"FilterPolicy: {where!r}: an operator object has exactly one operator"
            )
        ((operator, argument),) = element.items()
        if operator not in OPERATORS:
            raise InvalidFilterPolicyError(
                f"FilterPolicy: {where!r}: unknown operator {operator!r}"
            )
        _ARGUMENT_CHECKS[operator](where, argument)
    elif not _is_scalar(element):
        raise InvalidFilterPolicyError(
            f"FilterPolicy: {where!r}: values are strings, numbers, true, false or null"
        )
    elif _is_number(element):
        _check_number(where, element)


def _check_number(where: str, value: Any) -> None:
    """Numbers range from -10^9 to 10^9 ("Filter policy constraints")."""
    if not math.isfinite(float(value)) or abs(float(value)) > MAX_NUMBER:
        raise InvalidFilterPolicyError(f"FilterPolicy: {where!r}: {value} is outside -10^9..10^9")


def _check_string(where: str, argument: Any, operator: str) -> None:
    if not isinstance(argument, str):
        raise InvalidFilterPolicyError(f"FilterPolicy: {where!r}: {operator!r} takes a string")


def _check_exists(where: str, argument: Any) -> None:
    if not isinstance(argument, bool):
        raise InvalidFilterPolicyError(f"FilterPolicy: {where!r}: 'exists' takes true or false")


def _check_cidr(where: str, argument: Any) -> None:
    _check_string(where, argument, "cidr")
    try:
        ipaddress.ip_network(argument, strict=False)
    except ValueError as error:
        raise InvalidFilterPolicyError(
            f"FilterPolicy: {where!r}: {argument!r} is no IP network"
        ) from error


def _check_numeric(where: str, argument: Any) -> None:
    """`[op, n]` or `[op, n, op, n]` ("Numeric value matching")."""
    shape_ok = isinstance(argument, list) and len(argument) in (2, 4)
    if not shape_ok or not all(
        isinstance(op, str) and op in NUMERIC_OPERATORS and _is_number(n)
        for op, n in zip(argument[::2], argument[1::2], strict=True)
    ):
        raise InvalidFilterPolicyError(
            f"FilterPolicy: {where!r}: 'numeric' takes [operator, number] or "
            "[operator, number, operator, number] with operators = < <= > >="
        )
    for number in argument[1::2]:
        _check_number(where, number)


def _check_anything_but(where: str, argument: Any) -> None:
    """A value, a list of values, or {"prefix"|"suffix"|"wildcard": string}."""
    if isinstance(argument, Mapping):
        if len(argument) != 1 or next(iter(argument)) not in ANYTHING_BUT_PATTERNS:
            raise InvalidFilterPolicyError(
                f"FilterPolicy: {where!r}: 'anything-but' takes a value, a list, or one "
                "of prefix, suffix, wildcard"
            )
        ((pattern, text),) = argument.items()
        _check_string(where, text, f"anything-but {pattern}")
        return
    listed = argument if isinstance(argument, list) else [argument]
    if not listed or not all(isinstance(v, str) or _is_number(v) for v in listed):
        raise InvalidFilterPolicyError(
            f"FilterPolicy: {where!r}: 'anything-but' lists strings or numbers"
        )
    for value in listed:
        if _is_number(value):
            _check_number(where, value)


_ARGUMENT_CHECKS: dict[str, Callable[[str, Any], None]] = {
    "prefix": lambda where, arg: _check_string(where, arg, "prefix"),
    "suffix": lambda where, arg: _check_string(where, arg, "suffix"),
    "equals-ignore-case": lambda where, arg: _check_string(where, arg, "equals-ignore-case"),
    "wildcard": lambda where, arg: _check_string(where, arg, "wildcard"),
    "exists": _check_exists,
    "cidr": _check_cidr,
    "numeric": _check_numeric,
    "anything-but": _check_anything_but,
}


# ---------------------------------------------------------------------------- helpers


def _is_or(condition: Any) -> bool:
    """Whether `$or` is the OR operator here ("AND/OR logic", OR operator).

    SNS treats `$or` as an operator only when it holds an array of at least two
    objects, none of which uses a reserved keyword as a field name; otherwise `$or` is
    an ordinary attribute name.
    """
    return (
        isinstance(condition, list)
        and len(condition) >= 2
        and all(isinstance(branch, Mapping) for branch in condition)
        and not any(key in OPERATORS for branch in condition for key in branch)
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool) or _is_number(value)
