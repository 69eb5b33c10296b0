"""The write figures of a rehearsal, computed without servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from paymig.lambdas.payment_api_write_target import (
    WRITE_TARGET_CACHE_SECONDS,
    WriteTargetError,
    cache_seconds,
)
from paymig.rehearsal.timeline import Event, stage_bands
from paymig.rehearsal.writes import Gap, account, duplicated_keys, write_window

REHEARSAL = Path(__file__).resolve().parents[2] / "config" / "rehearsal.yaml"


def test_window_is_the_gap_around_the_switch_not_an_earlier_one() -> None:
    # One ack every 0.05 s, a 0.4 s hiccup well before the switch, then the switch's gap.
    acks = [i * 0.05 for i in range(100)] + [5.4 + i * 0.05 for i in range(20)]
    acks += [10.0 + i * 0.05 for i in range(50)]
    # The switch ran from 7.0 to 9.5: the gap is 6.35 -> 10.0, not 4.95 -> 5.4.
    assert write_window(acks, 7.0, 9.5) == Gap(pytest.approx(6.35), 10.0)


def test_an_ack_in_flight_during_the_fence_belongs_to_the_old_side() -> None:
    acks = [1.0, 1.05, 1.1, 1.12, 3.6, 3.65]  # 1.12 answered after the switch began at 1.11
    gap = write_window(acks, 1.11, 3.0)
    assert gap == Gap(1.12, 3.6)
    assert gap.seconds == pytest.approx(2.48)


def test_window_unbounded_without_acks_on_both_sides() -> None:
    assert write_window([5.0, 6.0], 1.0, 2.0) is None
    assert write_window([0.5, 1.5], 1.0, 2.0) is None
    assert write_window([], 1.0, 2.0) is None


def test_a_key_under_two_payment_ids_is_a_duplicate_the_same_replicated_row_is_not() -> None:
    source = [("m1", "k1", "p1"), ("m1", "k2", "p2"), ("m2", "k1", "p3")]
    target = [("m1", "k1", "p1"), ("m1", "k2", "p9")]  # k2 written again on the other side
    assert duplicated_keys(source + target) == 1
    assert duplicated_keys(source) == 0


def test_accounting_counts_each_acknowledged_id_once() -> None:
    counted = account(["a", "b", "c", "d", "a"], {"a": 1, "b": 1, "d": 2})
    assert (counted.acknowledged, counted.exactly_once, counted.lost, counted.duplicated) == (
        4, 2, 1, 1,
    )  # fmt: skip


def test_stage_bands_run_from_one_stage_event_to_the_next() -> None:
    events = [Event(1.0, "stage", "replicating"), Event(2.0, "shift-10"),
              Event(5.0, "stage", "cut-over"), Event(9.0, "stage", "replicating")]  # fmt: skip
    assert stage_bands(events, 12.0) == [
        ("replicating", 1.0, 5.0), ("cut-over", 5.0, 9.0), ("replicating", 9.0, 12.0),
    ]  # fmt: skip


def test_cache_time_comes_from_the_stack_and_a_bad_value_is_named() -> None:
    assert cache_seconds(None) == WRITE_TARGET_CACHE_SECONDS
    assert cache_seconds("2") == 2.0
    for bad in ("soon", "0", "-1", "61"):
        with pytest.raises(WriteTargetError, match="PAYMIG_WRITE_TARGET_CACHE_SECONDS"):
            cache_seconds(bad)


def test_a_cache_time_that_would_exceed_parameter_stores_throughput_is_refused() -> None:
    from pydantic import ValidationError

    from paymig.config import load_config
    from paymig.config.app import AppConfig

    app = load_config(REHEARSAL).app.model_dump()
    assert AppConfig.model_validate({**app, "write_target_cache_seconds": 2}).reserved_concurrency
    with pytest.raises(ValidationError, match=r"50 environments would read .* 50 times a second"):
        AppConfig.model_validate({**app, "write_target_cache_seconds": 1})


def test_the_write_problems_name_an_unmeasured_window_and_every_nonzero_count() -> None:
    from paymig.rehearsal.write_figures import write_problems

    clean = {"windows": [{"operation": "cutover", "window_seconds": 0.6}], "lost": 0,
             "duplicated_on_final_writer": 0, "duplicated_across_databases": 0,
             "receipt_collisions": 0}  # fmt: skip
    assert write_problems(clean, completed=True) == []
    broken = {**clean, "windows": [{"operation": "fallback", "window_seconds": None}],
              "lost": 2, "receipt_collisions": 1}  # fmt: skip
    assert write_problems(broken, completed=False) == [
        "fallback: window not measured", "2 lost", "1 receipt collisions",
        "the whole migration did not reach its last stage"]  # fmt: skip
