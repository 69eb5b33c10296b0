"""Identity-based IAM policy evaluation: whether a role may perform an action on a resource.

The emulator's own enforcement cannot judge a least-privilege role (see
:mod:`paymig.rehearsal.iam_requests`), so the rehearsal evaluates the role's policies
itself, with the rules of the IAM User Guide:

- "Policy evaluation logic" (reference_policies_evaluation-logic.html), for one account
  and identity-based policies only: an explicit ``Deny`` in any statement wins; otherwise
  an ``Allow`` in any statement allows; otherwise the request is implicitly denied.
- "IAM JSON policy elements": ``Action``/``NotAction`` match case-insensitively,
  ``Resource``/``NotResource`` case-sensitively; both take the wildcards ``*`` (any run
  of characters) and ``?`` (one character).
- "IAM JSON policy elements: Condition operators": the operators below, each key of an
  operator and each operator of a block must hold (AND), any value of a key may match
  (OR). "If the key that you specify in a policy condition is not present in the request
  context, the values do not match and the condition is false. If the policy condition
  requires that the key is not matched, such as StringNotLike or ArnNotLike, and the
  right key is not present, the condition is true", except ``...IfExists`` (true when
  the key is absent) and ``Null``.

Not modelled, with an error rather than a guess: resource-based policies, permission
boundaries, session and service control policies, policy variables (``${...}``), the
``ForAnyValue``/``ForAllValues`` set operators, and the numeric, date, IP and binary
operators (no role of this stack uses them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paymig.errors import PaymigError


class IamPolicyError(PaymigError):
    """A policy this evaluator cannot judge (the message names the element)."""


def _pattern(text: str, *, ignore_case: bool) -> re.Pattern[str]:
    """A policy value with ``*`` and ``?`` wildcards as an anchored regular expression."""
    body = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in text
    )
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Whether `value` matches a policy value with IAM's ``*`` and ``?`` wildcards."""
    return _pattern(pattern, ignore_case=ignore_case).match(value) is not None


def _strings(value: Any, where: str) -> list[str]:
    """A policy element that holds a string or a list of strings."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) for item in items):
        raise IamPolicyError(f"{where}: must be a string or a list of strings")
    return list(items)


# ---------------------------------------------------------------------------- conditions


def _string_equals(ignore_case: bool) -> Callable[[str, str], bool]:
    return lambda actual, wanted: (
        actual.lower() == wanted.lower() if ignore_case else actual == wanted
    )


def _like(actual: str, wanted: str) -> bool:
    return wildcard_match(wanted, actual)


def _bool(actual: str, wanted: str) -> bool:
    return actual.lower() == wanted.lower()


#: Positive operators; each has a negated form ("Not") where IAM defines one.
_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": _string_equals(False),
    "StringEqualsIgnoreCase": _string_equals(True),
    "StringLike": _like,
    "ArnEquals": _like,  # "ArnEquals" and "ArnLike" behave the same (both take wildcards)
    "ArnLike": _like,
    "Bool": _bool,
}
_NEGATED: dict[str, str] = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(operator: str, key: str, wanted: list[str], actual: str | None) -> bool:
    """One key of one operator against the request context."""
    if operator == "Null":
        # "true": the key must be absent; "false": it must be present.
        return all((actual is None) == (value.lower() == "true") for value in wanted)
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    if actual is None:
        return if_exists or base in _NEGATED
    if base in _NEGATED:
        test = _OPERATORS[_NEGATED[base]]
        return not any(test(actual, value) for value in wanted)
    return any(_OPERATORS[base](actual, value) for value in wanted)


def _check_operator(operator: str) -> None:
    base = operator[: -len("IfExists")] if operator.endswith("IfExists") else operator
    if ":" in operator:
        raise IamPolicyError(
            f"Condition: {operator}: the ForAnyValue/ForAllValues set operators are not modelled"
        )
    if base not in _OPERATORS and base not in _NEGATED and operator != "Null":
        raise IamPolicyError(f"Condition: operator {operator} is not modelled")


def conditions_hold(block: Mapping[str, Any], context: Mapping[str, str]) -> bool:
    """Whether a statement's Condition block holds for the request context."""
    for operator, keys in block.items():
        _check_operator(operator)
        if not isinstance(keys, Mapping):
            raise IamPolicyError(f"Condition: {operator}: must map keys to values")
        for key, values in keys.items():
            wanted = [str(v).lower() if isinstance(v, bool) else str(v) for v in
                      (values if isinstance(values, list) else [values])]  # fmt: skip
            actual = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if not _condition_holds(operator, key, wanted, actual):
                return False
    return True


# ---------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Statement:
    """One statement of an identity-based policy."""

    sid: str
    effect: str
    actions: tuple[str, ...]
    not_actions: bool
    resources: tuple[str, ...]
    not_resources: bool
    condition: Mapping[str, Any]

    def applies(self, action: str, resource: str, context: Mapping[str, str]) -> bool:
        """Whether the statement covers this request (its effect is then decisive)."""
        action_hit = any(wildcard_match(p, action, ignore_case=True) for p in self.actions)
        if action_hit == self.not_actions:
            return False
        resource_hit = any(wildcard_match(p, resource) for p in self.resources)
        if resource_hit == self.not_resources:
            return False
        return conditions_hold(self.condition, context)


def parse_statements(document: Mapping[str, Any], name: str) -> list[Statement]:
    """The statements of one policy document; `name` names it in errors."""
    raw = document.get("Statement")
    items = raw if isinstance(raw, list) else [raw]
    statements = []
    for index, item in enumerate(items):
        where = f"{name}: Statement[{index}]"
        if not isinstance(item, Mapping):
            raise IamPolicyError(f"{where}: not an object")
        if item.get("Effect") not in ("Allow", "Deny"):
            raise IamPolicyError(f"{where}: Effect must be Allow or Deny")
        if "Principal" in item or "NotPrincipal" in item:
            raise IamPolicyError(f"{where}: a Principal belongs in a resource-based policy")
        action_key = "NotAction" if "NotAction" in item else "Action"
        resource_key = "NotResource" if "NotResource" in item else "Resource"
        resources = _strings(item.get(resource_key), f"{where}: {resource_key}")
        if any("${" in r for r in resources):
            raise IamPolicyError(f"{where}: policy variables are not modelled")
        condition = item.get("Condition", {})
        if not isinstance(condition, Mapping):
            raise IamPolicyError(f"{where}: Condition must be an object")
        statements.append(
            Statement(
                sid=str(item.get("Sid") or f"{name}#{index}"),
                effect=str(item["Effect"]),
                actions=tuple(_strings(item.get(action_key), f"{where}: {action_key}")),
                not_actions=action_key == "NotAction",
                resources=tuple(resources),
                not_resources=resource_key == "NotResource",
                condition=condition,
            )
        )
    return statements


@dataclass(frozen=True)
class Decision:
    """The outcome for one request, and the statement that decided it."""

    allowed: bool
    action: str
    resource: str
    statement: str | None  # Sid of the deciding statement; None for an implicit deny

    def message(self, principal: str) -> str:
        """The text AWS gives an AccessDenied answer."""
        if self.allowed:
            return f"{principal} may perform {self.action} on {self.resource} ({self.statement})"
        why = (
            f"with an explicit deny in statement {self.statement}"
            if self.statement
            else f"because no identity-based policy allows the {self.action} action"
        )
        return (
            f"User: {principal} is not authorized to perform: {self.action} on resource: "
            f"{self.resource} {why}"
        )


def evaluate(
    statements: Sequence[Statement],
    action: str,
    resource: str,
    context: Mapping[str, str] | None = None,
) -> Decision:
    """Explicit deny, then allow, then implicit deny ("Policy evaluation logic")."""
    ctx = context or {}
    applying = [s for s in statements if s.applies(action, resource, ctx)]
    deny = next((s for s in applying if s.effect == "Deny"), None)
    if deny is not None:
        return Decision(False, action, resource, deny.sid)
    allow = next((s for s in applying if s.effect == "Allow"), None)
    return Decision(allow is not None, action, resource, None if allow is None else allow.sid)
