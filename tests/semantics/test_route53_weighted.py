"""Weighted answers and calculated health checks against the Route 53 Developer Guide."""

from __future__ import annotations

import random
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paymig.semantics.route53_weighted import (
    HealthCheckStatus,
    InvalidRecordSetError,
    WeightedRecord,
    answer_distribution,
    calculated_health,
    choose,
)


def record(name: str, weight: int, healthy: bool | None = None) -> WeightedRecord:
    return WeightedRecord(name, weight, health_check_healthy=healthy)


def test_weight_over_total() -> None:
    # "The resource with a weight of 1 gets 1/256th of the traffic".
    assert answer_distribution([record("tiny", 1), record("rest", 255)]) == {
        "tiny": Fraction(1, 256),
        "rest": Fraction(255, 256),
    }


def test_unhealthy_record_is_skipped() -> None:
    # "suppose you create three weighted A records ... If the health check for one of
    # the records is unhealthy, Route 53 responds ... with ... one of the other two".
    shares = answer_distribution(
        [record("a", 10, True), record("b", 30, True), record("c", 60, False)]
    )
    assert shares == {"a": Fraction(1, 4), "b": Fraction(3, 4), "c": 0}


def test_records_without_health_check_are_healthy() -> None:
    shares = answer_distribution([record("checked", 50, False), record("unchecked", 50)])
    assert shares == {"checked": 0, "unchecked": 1}


def test_zero_weight_records_serve_only_when_every_weighted_one_is_unhealthy() -> None:
    blue, green = record("blue", 100, True), record("green", 0, True)
    assert answer_distribution([blue, green]) == {"blue": 1, "green": 0}
    down = record("blue", 100, False)
    assert answer_distribution([down, green]) == {"blue": 0, "green": 1}
    two_zero = [down, green, record("standby", 0, True)]
    assert answer_distribution(two_zero) == {
        "blue": 0,
        "green": Fraction(1, 2),
        "standby": Fraction(1, 2),
    }


def test_no_healthy_record_means_all_are_considered_healthy() -> None:
    records = [record("a", 1, False), record("b", 3, False), record("z", 0, False)]
    assert answer_distribution(records) == {"a": Fraction(1, 4), "b": Fraction(3, 4), "z": 0}


def test_all_weights_zero_route_with_equal_probability() -> None:
    records = [record("a", 0), record("b", 0), record("c", 0, False)]
    assert answer_distribution(records) == {"a": Fraction(1, 2), "b": Fraction(1, 2), "c": 0}
    all_down = [record("a", 0, False), record("b", 0, False)]
    assert answer_distribution(all_down) == {"a": Fraction(1, 2), "b": Fraction(1, 2)}


def test_alias_records_evaluate_target_health() -> None:
    alias_down = WeightedRecord("alb", 50, evaluate_target_health=True, target_healthy=False)
    alias_up = WeightedRecord("alb", 50, evaluate_target_health=True, target_healthy=True)
    # "If you associate a health check with an alias record and also select Yes for
    # Evaluate Target Health, both must evaluate to true."
    both = WeightedRecord("alb", 50, True, evaluate_target_health=True, target_healthy=True)
    check_down = WeightedRecord("alb", 50, False, evaluate_target_health=True, target_healthy=True)
    ignored = WeightedRecord("alb", 50, evaluate_target_health=False, target_healthy=False)
    assert [r.healthy for r in (alias_down, alias_up, both, check_down, ignored)] == [
        False,
        True,
        True,
        False,
        True,
    ]
    legacy = record("legacy", 50)
    assert answer_distribution([alias_down, legacy]) == {"alb": 0, "legacy": 1}


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([], "at least one record"),
        ([record("a", 256)], "weight 256 is not in 0..255"),
        ([record("a", -1)], "weight -1"),
        ([record("a", 1), record("a", 2)], "used twice"),
        ([record(f"r{i}", 1) for i in range(101)], "101 weighted records"),
        ([WeightedRecord("a", 1, evaluate_target_health=True)], "alias target's health"),
    ],
)
def test_invalid_record_sets(records: list[WeightedRecord], message: str) -> None:
    with pytest.raises(InvalidRecordSetError, match=message):
        answer_distribution(records)


def test_choose_follows_the_distribution() -> None:
    rng = random.Random(7)
    records = [record("blue", 90), record("green", 10), record("off", 0)]
    counts = Counter(choose(records, rng) for _ in range(2000))
    assert set(counts) == {"blue", "green"}
    assert counts["blue"] > counts["green"]


# ---------------------------------------------------------------------------- properties

records_strategy = st.lists(
    st.builds(
        WeightedRecord,
        st.just(""),
        st.integers(0, 255),
        st.one_of(st.none(), st.booleans()),
    ),
    min_size=1,
    max_size=8,
).map(
    lambda rs: [WeightedRecord(f"r{i}", r.weight, r.health_check_healthy) for i, r in enumerate(rs)]
)


@given(records=records_strategy)
def test_probabilities_sum_to_one(records: list[WeightedRecord]) -> None:
    assert sum(answer_distribution(records).values()) == 1


@given(records=records_strategy)
def test_healthy_nonzero_records_share_by_weight(records: list[WeightedRecord]) -> None:
    live = [r for r in records if r.weight > 0 and r.healthy]
    shares = answer_distribution(records)
    if live:
        total = sum(r.weight for r in live)
        for r in records:
            expected = Fraction(r.weight, total) if r in live else 0
            assert shares[r.set_identifier] == expected


@given(records=records_strategy, seed=st.integers(0, 2**32 - 1))
def test_zero_weight_never_chosen_while_a_nonzero_record_is_healthy(
    records: list[WeightedRecord], seed: int
) -> None:
    chosen = choose(records, random.Random(seed))
    if any(r.weight > 0 and r.healthy for r in records):
        picked = next(r for r in records if r.set_identifier == chosen)
        assert picked.weight > 0
        assert picked.healthy
    assert answer_distribution(records)[chosen] > 0


# ---------------------------------------------------------------------------- calculated


def children(*states: bool | None) -> list[HealthCheckStatus]:
    return [HealthCheckStatus(state) for state in states]


def test_threshold_counts_healthy_children() -> None:
    three = children(True, False, True)
    assert calculated_health(three, 2)
    assert not calculated_health(three, 3)  # "all health checks are healthy (AND)"
    assert calculated_health(children(False, False, True), 1)  # "one or more (OR)"
    assert not calculated_health(children(False, False), 1)


def test_threshold_extremes() -> None:
    # "If you specify a number greater than the number of health checks ... always
    # ... unhealthy"; "If you specify 0, Route 53 always considers this ... healthy".
    assert not calculated_health(children(True, True), 3)
    assert calculated_health(children(False, False), 0)
    assert calculated_health([], 0)


def test_disabled_inverted_and_new_children() -> None:
    # A disabled child counts as healthy; inverted, it counts as unhealthy. A new health
    # check is healthy until there is data (unhealthy if inverted).
    assert HealthCheckStatus(False, disabled=True).healthy
    assert not HealthCheckStatus(False, inverted=True, disabled=True).healthy
    assert HealthCheckStatus(None).healthy
    assert not HealthCheckStatus(None, inverted=True).healthy
    assert HealthCheckStatus(False, inverted=True).healthy
    assert calculated_health([HealthCheckStatus(False, disabled=True)], 1)


def test_parent_inverted_or_disabled() -> None:
    assert not calculated_health(children(True), 1, inverted=True)
    assert calculated_health(children(False), 1, disabled=True)


@pytest.mark.parametrize(
    ("count", "threshold", "message"),
    [(257, 1, "257 child health checks"), (1, 257, "HealthThreshold: 257"), (1, -1, "-1")],
)
def test_calculated_limits(count: int, threshold: int, message: str) -> None:
    with pytest.raises(InvalidRecordSetError, match=message):
        calculated_health(children(*[True] * count), threshold)
