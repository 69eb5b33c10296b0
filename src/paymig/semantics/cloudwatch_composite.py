"""Composite alarm rules: parse ``AlarmRule`` and decide the composite's state.

Sources: Amazon CloudWatch User Guide, "Create a composite alarm"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Create_Composite_Alarm.html),
"Rule expressions"; and the PutCompositeAlarm API reference, ``AlarmRule``: functions
``ALARM``, ``OK``, ``INSUFFICIENT_DATA`` of an alarm name or ARN, ``TRUE``, ``FALSE``,
operators ``AND``, ``OR``, ``NOT`` and parentheses; names "can be surrounded with
double-quotes, but do not have to be"; at most 100 child alarms, 500 elements and 10240
characters. "The composite alarm goes into ALARM state only if all conditions of the rule
are met" (otherwise OK).

Our choices where AWS is silent: ``NOT`` binds tighter than ``AND``/``OR`` (the
documented ``ALARM(a) AND NOT ALARM(b)`` reads so), but ``AND`` mixed with ``OR`` needs
parentheses, since AWS documents no precedence between them; keywords are
case-insensitive (the guide once writes ``False``); an unquoted name runs to the next
``)``, a quoted one to the next ``"`` (AWS documents no escape); grouping parentheses
count one element per pair.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from paymig.errors import PaymigError
from paymig.semantics.cloudwatch_alarm import AlarmState

#: PutCompositeAlarm, AlarmRule: length 1..10240.
MAX_RULE_LENGTH = 10240
#: PutCompositeAlarm: "The AlarmRule can specify as many as 100 'children' alarms."
MAX_CHILDREN = 100
#: PutCompositeAlarm: "as many as 500 elements ... child alarms, TRUE or FALSE
#: statements, and parentheses".
MAX_ELEMENTS = 500

_STATE_FUNCTIONS = {state.value: state for state in AlarmState}
_WORD = re.compile(r"\s*([A-Za-z_]+|\(|\))")


class InvalidAlarmRuleError(PaymigError):
    """An AlarmRule that CloudWatch would reject or that cannot be evaluated."""


@dataclass(frozen=True)
class Constant:
    """``TRUE`` or ``FALSE``."""

    value: bool


@dataclass(frozen=True)
class StateIs:
    """``ALARM(x)``, ``OK(x)`` or ``INSUFFICIENT_DATA(x)``: alarm ``x`` is in ``state``."""

    state: AlarmState
    alarm: str  # the name or ARN as written


@dataclass(frozen=True)
class Not:
    """``NOT x``."""

    operand: Rule


@dataclass(frozen=True)
class AllOf:
    """``a AND b AND ...``."""

    operands: tuple[Rule, ...]


@dataclass(frozen=True)
class AnyOf:
    """``a OR b OR ...``."""

    operands: tuple[Rule, ...]


Rule = Constant | StateIs | Not | AllOf | AnyOf


def parse_rule(text: str) -> Rule:
    """Parse an AlarmRule, enforcing the documented limits."""
    if not 1 <= len(text) <= MAX_RULE_LENGTH:
        raise InvalidAlarmRuleError(
            f"AlarmRule: {len(text)} characters, allowed 1..{MAX_RULE_LENGTH}"
        )
    parser = _RuleParser(text)
    rule = _unwrap(parser.any_of())
    parser.skip_space()
    if parser.position < len(text):
        raise InvalidAlarmRuleError(
            f"AlarmRule: unexpected {text[parser.position :][:20]!r} at {parser.position}"
        )
    children = child_alarms(rule)
    if len(children) > MAX_CHILDREN:
        raise InvalidAlarmRuleError(
            f"AlarmRule: {len(children)} child alarms, at most {MAX_CHILDREN}"
        )
    elements = parser.elements
    if elements > MAX_ELEMENTS:
        raise InvalidAlarmRuleError(f"AlarmRule: {elements} elements, at most {MAX_ELEMENTS}")
    return rule


def child_alarms(rule: Rule) -> frozenset[str]:
    """The alarm names the rule refers to (an ARN counts by its alarm name)."""
    if isinstance(rule, StateIs):
        return frozenset({alarm_name(rule.alarm)})
    if isinstance(rule, Not):
        return child_alarms(rule.operand)
    if isinstance(rule, AllOf | AnyOf):
        return frozenset().union(*(child_alarms(operand) for operand in rule.operands))
    return frozenset()


def alarm_name(reference: str) -> str:
    """The alarm name in a reference: the name itself, or the last part of an alarm ARN."""
    if reference.startswith("arn:") and ":alarm:" in reference:
        return reference.split(":alarm:", 1)[1]
    return reference


def rule_holds(rule: Rule, states: Mapping[str, AlarmState]) -> bool:
    """Whether the rule is TRUE given each child alarm's state (keyed by alarm name)."""
    if isinstance(rule, Constant):
        return rule.value
    if isinstance(rule, StateIs):
        name = alarm_name(rule.alarm)
        if name not in states:
            raise InvalidAlarmRuleError(f"AlarmRule: no state given for alarm {name!r}")
        return states[name] is rule.state
    if isinstance(rule, Not):
        return not rule_holds(rule.operand, states)
    if isinstance(rule, AllOf):
        return all(rule_holds(operand, states) for operand in rule.operands)
    return any(rule_holds(operand, states) for operand in rule.operands)


def composite_state(rule: str | Rule, states: Mapping[str, AlarmState]) -> AlarmState:
    """ALARM when the rule holds, OK otherwise."""
    parsed = parse_rule(rule) if isinstance(rule, str) else rule
    return AlarmState.ALARM if rule_holds(parsed, states) else AlarmState.OK


class _RuleParser:
    """Recursive descent over the rule text: OR of AND of NOT of atoms."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.elements = 0

    def skip_space(self) -> None:
        while self.position < len(self.text) and self.text[self.position].isspace():
            self.position += 1

    def peek_word(self) -> str | None:
        found = _WORD.match(self.text, self.position)
        return found.group(1).upper() if found else None

    def take_word(self) -> str:
        found = _WORD.match(self.text, self.position)
        if found is None:
            self.skip_space()
            rest = self.text[self.position :][:20] or "the end"
            raise InvalidAlarmRuleError(f"AlarmRule: unexpected {rest!r} at {self.position}")
        self.position = found.end()
        return found.group(1).upper()

    def any_of(self) -> Rule:
        operands = [self.all_of()]
        while self.peek_word() == "OR":
            self.take_word()
            operands.append(self.all_of())
        if len(operands) > 1 and any(isinstance(o, _Chain) for o in operands):
            raise InvalidAlarmRuleError(
                "AlarmRule: AND and OR mixed without parentheses (AWS documents no "
                "precedence between them)"
            )
        return AnyOf(tuple(_unwrap(o) for o in operands)) if len(operands) > 1 else operands[0]

    def all_of(self) -> Rule:
        operands = [self.negation()]
        while self.peek_word() == "AND":
            self.take_word()
            operands.append(self.negation())
        return _Chain(tuple(operands)) if len(operands) > 1 else operands[0]

    def negation(self) -> Rule:
        if self.peek_word() == "NOT":
            self.take_word()
            return Not(self.negation())
        return self.atom()

    def atom(self) -> Rule:
        word = self.take_word()
        if word == "(":
            self.elements += 1
            inner = _unwrap(self.any_of())
            if self.take_word() != ")":
                raise InvalidAlarmRuleError(f"AlarmRule: ')' expected at {self.position}")
            return inner
        if word in ("TRUE", "FALSE"):
            self.elements += 1
            return Constant(word == "TRUE")
        if word in _STATE_FUNCTIONS:
            self.elements += 1
            return StateIs(_STATE_FUNCTIONS[word], self.reference(word))
        raise InvalidAlarmRuleError(f"AlarmRule: unexpected {word!r} at {self.position}")

    def reference(self, function: str) -> str:
        """The alarm name or ARN between the function's parentheses."""
        if self.take_word() != "(":
            raise InvalidAlarmRuleError(f"AlarmRule: {function} must be followed by '('")
        self.skip_space()
        if self.text.startswith('"', self.position):
            end = self.text.find('"', self.position + 1)
            if end < 0:
                raise InvalidAlarmRuleError(f'AlarmRule: {function}("...: unterminated quote')
            name = self.text[self.position + 1 : end]
            self.position = end + 1
            self.skip_space()
            close = self.position if self.text.startswith(")", self.position) else -1
        else:
            close = self.text.find(")", self.position)
            name = self.text[self.position : close].strip()
        if close < 0:
            raise InvalidAlarmRuleError(f"AlarmRule: {function}(...) is not closed")
        if not name:
            raise InvalidAlarmRuleError(f"AlarmRule: {function}() needs an alarm name")
        self.position = close + 1
        return name


@dataclass(frozen=True)
class _Chain(AllOf):
    """An AND chain not (yet) inside parentheses; it may not be an OR operand."""


def _unwrap(rule: Rule) -> Rule:
    return AllOf(rule.operands) if isinstance(rule, _Chain) else rule
