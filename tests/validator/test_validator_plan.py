"""The validator's pure core: planning, decisions, classification, report, spool."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from paymig.runtime.validator.engine import Settings, ValidatorError, bounded_map, error_line
from paymig.runtime.validator.plan import (
    Aggregate,
    KeyRange,
    Kind,
    SamplePlan,
    Step,
    classify,
    column_mismatch,
    decide,
    estimate_rows,
    in_scope,
    parse_table_name,
    quantiles,
    sample_plan,
    segment_count,
    split_range,
    split_step,
)
from paymig.runtime.validator.report import Report, TableReport
from paymig.runtime.validator.spool import KeySpool


def test_decide_equal_fetch_split() -> None:
    same = Aggregate(10, 12345)
    assert decide(same, Aggregate(10, 12345), leaf_rows=5) is Step.EQUAL
    assert decide(Aggregate(5, 1), Aggregate(5, 2), leaf_rows=5) is Step.FETCH
    assert decide(Aggregate(6, 1), Aggregate(5, 2), leaf_rows=5) is Step.SPLIT
    # same digest but different counts is still a difference
    assert decide(Aggregate(0, 0), Aggregate(1, 0), leaf_rows=5) is Step.FETCH


def test_split_step() -> None:
    assert split_step(100, 16) == 7
    assert split_step(3, 16) == 1
    with pytest.raises(ValueError, match="fanout"):
        split_step(10, 1)


def test_split_range_partitions_parent() -> None:
    parent = KeyRange(("10",), ("90",))
    pieces = split_range(parent, [("10",), ("30",), ("30",), ("60",)])
    assert pieces == [
        KeyRange(("10",), ("30",)),
        KeyRange(("30",), ("60",)),
        KeyRange(("60",), ("90",)),
    ]
    assert split_range(KeyRange(), []) == [KeyRange()]


def test_quantiles() -> None:
    sample = [(str(i),) for i in range(100)]
    assert quantiles(sample, 4) == [("25",), ("50",), ("75",)]
    assert quantiles(sample, 1) == []
    assert quantiles([], 4) == []
    skewed = [("1",)] * 90 + [("2",)] * 10
    assert quantiles(skewed, 4) == [("1",)]


def test_segment_count() -> None:
    assert segment_count(0, 100, 10) == 1
    assert segment_count(1000, 100, 50) == 10
    assert segment_count(10**9, 100, 50) == 50


def test_sample_plan() -> None:
    # small tables: every page is read, rows picked at random
    assert sample_plan(1000, 10, 10) == SamplePlan("BERNOULLI", 1.0, 1)
    assert sample_plan(0, 0, 10) == SamplePlan("BERNOULLI", 100.0, 1)
    assert sample_plan(10, 1, 1000) == SamplePlan("BERNOULLI", 100.0, 1)
    # large tables: one page per wanted key, one key kept per page's worth of rows
    assert sample_plan(6_000_000, 100_000, 4000) == SamplePlan("SYSTEM", 4.0, 60)
    assert sample_plan(10**12, 10**10, 1) == SamplePlan("SYSTEM", 0.0001, 100)


def test_estimate_rows() -> None:
    assert estimate_rows(1000, 10, 20) == 2000  # density times current pages
    assert estimate_rows(-1, 0, 10) == 600  # never analyzed: a guess from the size
    assert estimate_rows(50, 0, 0) == 50
    assert estimate_rows(0, 0, 0) == 0


def test_classify() -> None:
    source = {("1",): 1, ("2",): 2, ("3",): 3}
    target = {("2",): 2, ("3",): 4, ("5",): 5}
    assert sorted(classify(source, target), key=lambda x: x[1]) == [
        (Kind.MISSING, ("1",)),
        (Kind.DIFFERENT, ("3",)),
        (Kind.EXTRA, ("5",)),
    ]


def test_column_mismatch() -> None:
    assert column_mismatch("s.t", ["a", "b"], ["b", "a"]) is None
    assert column_mismatch("s.t", ["a", "b", "c"], ["a", "d"]) == (
        "table s.t: columns differ between source and target "
        "(only on source: b, c; only on target: d)"
    )


def test_in_scope_rules() -> None:
    rules = [("public", "%", "include"), ("public", "tmp%", "exclude"), ("audit", "log", "include")]
    assert in_scope("public", "payments", rules)
    assert not in_scope("public", "tmp_x", rules)
    assert in_scope("audit", "log", rules)
    assert not in_scope("audit", "logs", rules)
    assert not in_scope("other", "payments", rules)
    # only % is a wildcard: regex and LIKE metacharacters match literally
    assert not in_scope("public", "pay_ments", [("public", "pay.ments", "include")])
    assert not in_scope("public", "paysments", [("public", "pay_ments", "include")])
    with pytest.raises(ValueError, match="include or exclude"):
        in_scope("public", "x", [("public", "%", "keep")])


def test_parse_table_name() -> None:
    assert parse_table_name("public.payments") == ("public", "payments")
    for bad in ("payments", ".x", "x."):
        with pytest.raises(ValueError, match=r"SCHEMA\.NAME"):
            parse_table_name(bad)


def test_settings_reject_nonsense() -> None:
    with pytest.raises(ValidatorError, match="fanout"):
        Settings(fanout=1)
    with pytest.raises(ValidatorError, match="workers"):
        Settings(workers=0)


def test_error_line_hides_passwords() -> None:
    err = Exception('invalid dsn: missing "=" after "x" in "user=a password=s3cret x"\nmore')
    assert error_line(err) == 'invalid dsn: missing "=" after "x" in "user=a password=*** x"'
    assert error_line(Exception("postgresql://u:s3cret@h/db bad")) == "postgresql://u:***@h/db bad"
    assert error_line(Exception("")) == "Exception"


def test_bounded_map_returns_every_result() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        assert sorted(bounded_map(pool, lambda x: x * x, range(10), 3)) == [
            x * x for x in range(10)
        ]


@given(st.lists(st.tuples(st.text(max_size=5), st.integers()), max_size=60), st.integers(1, 7))
def test_spool_returns_keys_in_order_through_memory_and_disk(
    keys: list[tuple[str, int]], memory: int
) -> None:
    as_keys = [(a, str(b)) for a, b in keys]
    with KeySpool(memory_keys=memory) as spool:
        for key in as_keys:
            spool.add(key)
        assert spool.count == len(as_keys)
        assert spool.spilled == (len(as_keys) > memory)
        batches = list(spool.batches(4))
        assert all(0 < len(b) <= 4 for b in batches)
        assert [k for b in batches for k in b] == as_keys


def test_report_json_truncates_with_full_count() -> None:
    entry = TableReport("public.t", cap=2, source_rows=5, target_rows=2, seconds=1.23456)
    for i in range(3):
        entry.add(Kind.MISSING, (str(i), "a"))
    entry.add(Kind.DIFFERENT, ("9", "b"))
    report = Report([entry, TableReport("public.u", cap=2)])
    data = json.loads(json.dumps(report.to_json()))
    assert data == {
        "consistent": False,
        "tables": [
            {
                "table": "public.t",
                "source_rows": 5,
                "target_rows": 2,
                "missing_in_target": [["0", "a"], ["1", "a"]],
                "missing_in_target_count": 3,
                "extra_in_target": [],
                "extra_in_target_count": 0,
                "different": [["9", "b"]],
                "different_count": 1,
                "seconds": 1.235,
            },
            {
                "table": "public.u",
                "source_rows": 0,
                "target_rows": 0,
                "missing_in_target": [],
                "missing_in_target_count": 0,
                "extra_in_target": [],
                "extra_in_target_count": 0,
                "different": [],
                "different_count": 0,
                "seconds": 0.0,
            },
        ],
    }
    assert entry.missing_in_target.truncated
    assert not entry.different.truncated


def test_report_text_rendering() -> None:
    entry = TableReport("public.t", cap=1, source_rows=1200, target_rows=1199)
    entry.add(Kind.MISSING, ("7",))
    entry.add(Kind.MISSING, ("8",))
    console = Console(record=True, width=120)
    Report([entry]).render(console)
    text = console.export_text()
    assert "public.t missing in target (2): (7) … and 1 more" in text
    assert "1,200" in text
    assert "1 table(s) compared: NOT consistent" in text
