"""Composite alarm rules against the examples of "Create a composite alarm" and the
PutCompositeAlarm API reference (AlarmRule).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paymig.semantics.cloudwatch_alarm import AlarmState
from paymig.semantics.cloudwatch_composite import (
    AllOf,
    AnyOf,
    Constant,
    InvalidAlarmRuleError,
    Not,
    Rule,
    StateIs,
    child_alarms,
    composite_state,
    parse_rule,
    rule_holds,
)

ALARM, OK, INSUFFICIENT = AlarmState.ALARM, AlarmState.OK, AlarmState.INSUFFICIENT_DATA
NAMES = ("CPUUtilizationTooHigh", "DiskReadOpsTooHigh", "NetworkOutTooHigh")
Meaning = Callable[[Mapping[str, AlarmState]], bool]

# The documented examples, each with the meaning AWS gives it in words.
EXAMPLES: list[tuple[str, Meaning]] = [
    (
        "ALARM(CPUUtilizationTooHigh) AND ALARM(DiskReadOpsTooHigh)",
        lambda s: s["CPUUtilizationTooHigh"] is ALARM and s["DiskReadOpsTooHigh"] is ALARM,
    ),
    (
        "ALARM(CPUUtilizationTooHigh) AND NOT ALARM(NetworkOutTooHigh)",
        lambda s: s["CPUUtilizationTooHigh"] is ALARM and s["NetworkOutTooHigh"] is not ALARM,
    ),
    (
        "(ALARM(CPUUtilizationTooHigh) OR ALARM(DiskReadOpsTooHigh)) AND OK(NetworkOutTooHigh)",
        lambda s: (
            (s["CPUUtilizationTooHigh"] is ALARM or s["DiskReadOpsTooHigh"] is ALARM)
            and s["NetworkOutTooHigh"] is OK
        ),
    ),
    (
        '(ALARM("CPUUtilizationTooHigh") OR \nALARM("DiskReadOpsTooHigh")) AND \n'
        'OK("NetworkOutTooHigh")',
        lambda s: (
            (s["CPUUtilizationTooHigh"] is ALARM or s["DiskReadOpsTooHigh"] is ALARM)
            and s["NetworkOutTooHigh"] is OK
        ),
    ),
    (
        "INSUFFICIENT_DATA(NetworkOutTooHigh) OR TRUE",
        lambda s: True,
    ),
    ("FALSE", lambda s: False),
]


@pytest.mark.parametrize(("rule", "meaning"), EXAMPLES, ids=[rule for rule, _ in EXAMPLES])
def test_documented_examples_over_every_state_combination(rule: str, meaning: Meaning) -> None:
    for combination in itertools.product(AlarmState, repeat=len(NAMES)):
        states = dict(zip(NAMES, combination, strict=True))
        expected = ALARM if meaning(states) else OK
        assert composite_state(rule, states) is expected, states


def test_alarms_by_arn_and_by_name() -> None:
    arn = "arn:aws:cloudwatch:us-east-2:123456789012:alarm:paymig-prod-5xx-rate"
    rule = parse_rule(f'ALARM("{arn}") OR ALARM(paymig-prod-p99-latency)')
    assert child_alarms(rule) == {"paymig-prod-5xx-rate", "paymig-prod-p99-latency"}
    states = {"paymig-prod-5xx-rate": ALARM, "paymig-prod-p99-latency": OK}
    assert composite_state(rule, states) is ALARM
    assert composite_state(rule, {**states, "paymig-prod-5xx-rate": INSUFFICIENT}) is OK


def test_quoted_names_may_hold_spaces_and_parentheses() -> None:
    rule = parse_rule('OK("db lag (reader)") AND NOT ALARM( spaced name )')
    assert rule == AllOf((StateIs(OK, "db lag (reader)"), Not(StateIs(ALARM, "spaced name"))))


def test_keywords_are_case_insensitive() -> None:
    # The guide tells to set a cyclic composite's AlarmRule "to `False`".
    assert parse_rule("False") == Constant(False)
    assert parse_rule("alarm(a) or not ok(b)") == AnyOf(
        (StateIs(ALARM, "a"), Not(StateIs(OK, "b")))
    )


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("", "0 characters"),
        ("TRUE" + " " * 10240, "10244 characters"),
        ("ALARM(a) OR ALARM(b) AND ALARM(c)", "AND and OR mixed"),
        ("ALARM(a) AND ALARM(b) OR ALARM(c)", "AND and OR mixed"),
        ("ALARM(a", "not closed"),
        ('ALARM("a', "unterminated quote"),
        ('ALARM("a" b)', "not closed"),
        ("ALARM()", "needs an alarm name"),
        ("ALARM a", "must be followed by"),
        ("ALERT(a)", "unexpected 'ALERT'"),
        ("(TRUE FALSE", "'\\)' expected"),
        ("TRUE FALSE", "unexpected 'FALSE'"),
        ("TRUE AND", "unexpected 'the end'"),
        ("TRUE ]", "unexpected ']'"),
    ],
)
def test_invalid_rules(rule: str, message: str) -> None:
    with pytest.raises(InvalidAlarmRuleError, match=message):
        parse_rule(rule)


def test_at_most_100_children() -> None:
    within = " OR ".join(f"ALARM(a{i})" for i in range(100))
    assert len(child_alarms(parse_rule(within))) == 100
    with pytest.raises(InvalidAlarmRuleError, match="101 child alarms"):
        parse_rule(within + " OR ALARM(a100)")


def test_at_most_500_elements() -> None:
    within = " OR ".join(["TRUE"] * 500)
    assert parse_rule(within) == AnyOf(tuple([Constant(True)] * 500))
    with pytest.raises(InvalidAlarmRuleError, match="501 elements"):
        parse_rule("(" + within + ")")


def test_a_state_is_needed_for_every_child() -> None:
    with pytest.raises(InvalidAlarmRuleError, match="no state given for alarm 'b'"):
        composite_state("ALARM(a) AND OK(b)", {"a": ALARM})


# ---------------------------------------------------------------------------- property

names = st.sampled_from(["a", "b", "c"])
leaves: st.SearchStrategy[Rule] = st.one_of(
    st.builds(Constant, st.booleans()),
    st.builds(StateIs, st.sampled_from(AlarmState), names),
)
rules: st.SearchStrategy[Rule] = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(AllOf, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(AnyOf, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=12,
)


def render(rule: Rule) -> str:
    """Rule text with parentheses around every group, as the docs write them."""
    if isinstance(rule, Constant):
        return "TRUE" if rule.value else "FALSE"
    if isinstance(rule, StateIs):
        return f'{rule.state.value}("{rule.alarm}")'
    if isinstance(rule, Not):
        return f"NOT {render(rule.operand)}"
    joiner = " AND " if isinstance(rule, AllOf) else " OR "
    return "(" + joiner.join(render(operand) for operand in rule.operands) + ")"


def reference(rule: Rule, states: Mapping[str, AlarmState]) -> bool:
    if isinstance(rule, Constant):
        return rule.value
    if isinstance(rule, StateIs):
        return states[rule.alarm] == rule.state
    if isinstance(rule, Not):
        return not reference(rule.operand, states)
    results = [reference(operand, states) for operand in rule.operands]
    return all(results) if isinstance(rule, AllOf) else any(results)


@given(rule=rules, states=st.fixed_dictionaries({n: st.sampled_from(AlarmState) for n in "abc"}))
def test_rendered_rules_parse_back_and_evaluate_like_the_tree(
    rule: Rule, states: dict[str, AlarmState]
) -> None:
    parsed = parse_rule(render(rule))
    assert rule_holds(parsed, states) == reference(rule, states)
