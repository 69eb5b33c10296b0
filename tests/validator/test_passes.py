"""A pass's pure core: slices, results, report assembly, checkpoint file, throttle, estimate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from paymig.config import ValidationConfig
from paymig.runtime.validator import FileCheckpoint, ValidatorError
from paymig.runtime.validator.estimate import (
    TableSize,
    duration_text,
    estimate_lines,
    help_text,
    pass_rate,
)
from paymig.runtime.validator.passes import (
    MAX_RANGES_PER_SLICE,
    PassPlan,
    PassTotals,
    RangeResult,
    TablePlan,
    assemble_report,
    assign_slices,
    new_pass_id,
    range_from_json,
    range_to_json,
    slice_rows,
    trim_keys,
)
from paymig.runtime.validator.plan import KeyRange, Kind
from paymig.runtime.validator.report import Report
from paymig.runtime.validator.throttle import RowThrottle


def _table(name: str, ranges: int, rows: int) -> TablePlan:
    bounds = [KeyRange(None if i == 0 else (str(i),), None) for i in range(ranges)]
    return TablePlan(name, rows, tuple(bounds))


def _result(table: str, index: int, **keys: list[str]) -> RangeResult:
    result = RangeResult(table, index, cap=100, source_rows=10, target_rows=9)
    for kind in Kind:
        for key in keys.get(kind.name.lower(), []):
            result.add(kind, (key,))
    return result


# --------------------------------------------------------------------------- plan


def test_ranges_and_plans_round_trip_through_json() -> None:
    bounds = KeyRange(("a", "1"), None)
    assert range_from_json(json.loads(json.dumps(range_to_json(bounds)))) == bounds
    plan = PassPlan("p-1", "2026-11-30T00:00:00.000000Z", (_table("public.t", 3, 300),))
    again = PassPlan.from_json(json.loads(json.dumps(plan.to_json())))
    assert again == plan
    assert again.ranges_total == 3 and again.table("public.t").rows_per_range == 100
    with pytest.raises(KeyError):
        plan.table("public.other")


def test_pass_ids_sort_by_start_time() -> None:
    from datetime import UTC, datetime

    early = new_pass_id(datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    late = new_pass_id(datetime(2026, 11, 30, 10, 0, tzinfo=UTC))
    assert early.startswith("20261130T090000Z-") and early < late


def test_slices_cover_every_range_once_per_table_and_hold_the_target_rows() -> None:
    tables = [_table("public.big", 100, 1_000_000), _table("public.small", 3, 30)]
    slices = assign_slices(tables, rows_per_slice=100_000)
    assert [s.number for s in slices] == list(range(len(slices)))
    big = [s for s in slices if s.table == "public.big"]
    assert [s.count for s in big] == [10] * 10  # 10,000 rows per range, 100,000 per slice
    assert [list(s.indexes) for s in big][1] == list(range(10, 20))
    (small,) = [s for s in slices if s.table == "public.small"]
    assert (small.first, small.count) == (0, 3)


def test_slices_grow_to_stay_under_the_cap_and_never_exceed_max_ranges() -> None:
    tables = [_table("public.t", 4_000, 4_000_000)]
    slices = assign_slices(tables, rows_per_slice=1_000, max_slices=100)
    assert len(slices) <= 100
    assert sum(s.count for s in slices) == 4_000
    huge = assign_slices([_table("public.t", 2_000, 2_000)], rows_per_slice=10**9)
    assert max(s.count for s in huge) == MAX_RANGES_PER_SLICE
    assert slice_rows(1_000.0) == 300_000


# --------------------------------------------------------------------------- results


def test_range_results_round_trip_and_keep_exact_counts() -> None:
    result = _result("public.t", 4, missing=["1", "2"], different=["9"])
    result.candidates = 5
    again = RangeResult.from_json("public.t", 4, 1, json.loads(json.dumps(result.to_json())))
    assert (again.source_rows, again.target_rows, again.candidates) == (10, 9, 5)
    assert again.keys[Kind.MISSING].keys == [("1",)] and again.keys[Kind.MISSING].count == 2
    assert again.keys[Kind.DIFFERENT].count == 1 and again.keys[Kind.EXTRA].count == 0
    assert again.differing == 3


def test_trim_keys_keeps_the_first_keys_by_range_and_every_count() -> None:
    results = [_result("public.t", 2, extra=["c", "d"]), _result("public.t", 1, extra=["a", "b"])]
    trim_keys(results, cap=3)
    assert results[1].keys[Kind.EXTRA].keys == [("a",), ("b",)]
    assert results[0].keys[Kind.EXTRA].keys == [("c",)]
    assert [r.keys[Kind.EXTRA].count for r in results] == [2, 2]
    trim_keys(results, cap=3, key_bytes=len(json.dumps(["a"])))
    assert results[1].keys[Kind.EXTRA].keys == [("a",)] and results[0].keys[Kind.EXTRA].keys == []


def test_report_sums_ranges_and_lists_first_keys() -> None:
    results = [
        _result("public.t", 1, missing=["5"]),
        _result("public.t", 0, missing=["1"], extra=["2"]),
        _result("public.u", 0),
    ]
    report = assemble_report([("public.t", 2), ("public.u", 1)], results, cap=1)
    t, u = report.tables
    assert (t.source_rows, t.target_rows) == (20, 18)
    assert t.missing_in_target.keys == [("1",)] and t.missing_in_target.count == 2
    assert t.extra_in_target.count == 1 and u.consistent and not report.consistent
    with pytest.raises(ValueError, match=r"table public\.t: 1 of 3 ranges not compared"):
        assemble_report([("public.t", 3), ("public.u", 1)], results, cap=1)
    with pytest.raises(ValueError, match="ranges not compared"):  # one range twice
        assemble_report([("public.u", 1)], [results[2], results[2]], cap=1)


def test_totals_grow_with_recorded_ranges() -> None:
    totals = PassTotals(3).plus([_result("public.t", 0, missing=["1"], different=["2", "3"])])
    assert (totals.ranges_done, totals.source_rows, totals.differing) == (1, 10, 3)
    assert not totals.done and totals.plus([_result("public.t", 1), _result("t", 2)]).done


# --------------------------------------------------------------------------- checkpoint


def _plan() -> PassPlan:
    return PassPlan("p-1", "2026-11-30T00:00:00.000000Z", (_table("public.t", 3, 30),))


def test_checkpoint_records_batches_and_resumes_with_them(tmp_path: Path) -> None:
    path = tmp_path / "pass.jsonl"
    first = FileCheckpoint(path, cap=10)
    first.start(_plan())
    first.commit([_result("public.t", 0, missing=["7"])])
    second = FileCheckpoint(path, cap=10)
    plan, results = second.resume()
    assert plan == _plan()
    assert [(r.index, r.keys[Kind.MISSING].keys) for r in results] == [(0, [("7",)])]
    second.commit([_result("public.t", 1), _result("public.t", 2)])
    second.finish(Report())
    kinds = [(r["kind"], r["session"]) for r in second.records()]
    assert kinds == [
        ("plan", first.session),
        ("batch", first.session),
        ("resumed", second.session),
        ("batch", second.session),
        ("finished", second.session),
    ]
    with pytest.raises(ValidatorError, match="holds no unfinished pass; nothing to resume"):
        FileCheckpoint(path, cap=10).resume()
    FileCheckpoint(path, cap=10).start(_plan())  # a finished pass may be replaced


def test_a_line_cut_short_by_a_crash_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "pass.jsonl"
    store = FileCheckpoint(path, cap=10)
    store.start(_plan())
    store.commit([_result("public.t", 0)])
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"kind": "batch", "results": [{"tab')  # the crash
    _, results = FileCheckpoint(path, cap=10).resume()
    assert [r.index for r in results] == [0]
    assert path.read_text(encoding="utf-8").endswith("\n")
    assert all(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())


def test_checkpoint_refuses_to_overwrite_or_misread(tmp_path: Path) -> None:
    path = tmp_path / "pass.jsonl"
    FileCheckpoint(path, cap=10).start(_plan())
    with pytest.raises(
        ValidatorError, match="holds unfinished pass p-1; continue it with --resume"
    ):
        FileCheckpoint(path, cap=10).start(_plan())
    with pytest.raises(ValidatorError, match="does not exist or is empty; nothing to resume"):
        FileCheckpoint(tmp_path / "none.jsonl", cap=10).resume()
    other = tmp_path / "notes.txt"
    other.write_text('{"kind": "something"}\nhello\n', encoding="utf-8")
    with pytest.raises(ValidatorError, match="line 2 is not JSON"):
        FileCheckpoint(other, cap=10).resume()
    other.write_text('{"kind": "something"}\n', encoding="utf-8")
    with pytest.raises(ValidatorError, match="not a paymig checkpoint; not touched"):
        FileCheckpoint(other, cap=10).start(_plan())


# --------------------------------------------------------------------------- throttle


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_throttle_holds_the_average_rate_and_allows_one_second_of_burst() -> None:
    clock = FakeClock()
    throttle = RowThrottle(1_000, clock=clock, sleep=clock.sleep)
    assert throttle.acquire(1_000) == 0.0  # the full bucket
    assert throttle.acquire(500) == pytest.approx(0.5)
    assert throttle.acquire(3_000) == pytest.approx(3.0)  # a large query pays its debt
    assert clock.now == pytest.approx(3.5)  # 4,500 rows in 3.5 s after a 1,000-row burst
    clock.now += 10  # idle time refills at most one second's worth
    assert throttle.acquire(1_000) == 0.0 and throttle.acquire(1) > 0
    assert throttle.acquire(0) == 0.0
    with pytest.raises(ValueError, match="positive"):
        RowThrottle(0)


# --------------------------------------------------------------------------- config, estimate


def test_config_bounds_the_load_and_fits_a_batch_in_an_invocation() -> None:
    cfg = ValidationConfig(rate_limit_rows_per_second=50_000, workers=4)
    assert pass_rate(cfg) == 50_000
    assert pass_rate(ValidationConfig()) == 4 * 150_000
    with pytest.raises(ValidationError, match=r"must fit in one Lambda invocation \(900 s\)"):
        ValidationConfig(batch_seconds=300, statement_timeout_seconds=300)
    with pytest.raises(ValidationError, match=r"job_concurrency \(5\) exceeds workers \(4\)"):
        ValidationConfig(job_concurrency=5)
    with pytest.raises(ValidationError, match="must not hold a password"):
        ValidationConfig(source_replica_dsn="host=standby password=secret")
    with pytest.raises(ValidationError, match="must not hold a password"):
        ValidationConfig(target_replica_dsn="postgresql://u:p@reader/db")
    with pytest.raises(ValidationError, match="must name the replica's host"):
        ValidationConfig(source_replica_dsn="port=5433")
    with pytest.raises(ValidationError, match="not a libpq connection string"):
        ValidationConfig(source_replica_dsn="host")
    with pytest.raises(ValidationError, match=r"'payments' is not of the form SCHEMA\.NAME"):
        ValidationConfig(changed_columns={"payments": "updated_at"})
    with pytest.raises(ValidationError, match=r"'a\.b' is not a column name"):
        ValidationConfig(changed_columns={"public.payments": "a.b"})
    assert ValidationConfig(source_replica_dsn="host=standby port=5433").source_replica_dsn


def test_estimates_read_rows_over_the_bounded_rate() -> None:
    cfg = ValidationConfig(workers=2, estimated_rows_per_second_per_worker=100_000)
    assert [duration_text(s) for s in (42, 3_000, 36_000, 400_000)] == [
        "42 s",
        "50 min",
        "10.0 h",
        "4.6 days",
    ]
    lines = estimate_lines(cfg, [TableSize("public.payments", 1_440_000_000, 500 * 10**9)])
    assert lines[0] == (
        "estimated full pass at 2 workers per side x ~100,000 rows/s, no rate limit, "
        "statement_timeout 120 s: ~200,000 rows/s"
    )
    assert lines[1] == "  public.payments: ~1,440,000,000 rows, 500.0 GB: ~2.0 h"
    assert lines[2] == "  total: ~1,440,000,000 rows: ~2.0 h"
    text = help_text(ValidationConfig(rate_limit_rows_per_second=100_000), "config/x.yaml")
    assert "~1,500,000,000 rows (validation.estimated_rows)" in text
    assert "at most 100,000 rows/s" in text and "about 4.2 h" in text
