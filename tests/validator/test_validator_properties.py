"""Property: on random tables with random corruptions, exactly the injected keys are reported.

Tables get a random key type (integer, uuid, text, composite integer + text), random rows
(text with NULLs, empty strings, quotes, commas, unicode; numerics of various scales;
jsonb; timestamps and booleans, which are hashed by value), and random range settings so
that splitting and row fetching are exercised at every depth. Corruptions are applied on
either side to distinct keys: update, delete, insert, NULL<->'', trailing whitespace,
numeric scale, a timestamp one microsecond later, a flipped or set boolean; plus no-op
changes (same value, jsonb with keys reordered) that must NOT be reported.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pgpair import Pair, fresh_name

from paymig.runtime.validator import Settings, Validator

pytestmark = pytest.mark.slow

KEY_TYPES = {
    "int": ("id bigint", ["id"]),
    "uuid": ("id uuid", ["id"]),
    "text": ("id text", ["id"]),
    "composite": ("id int, region text", ["id", "region"]),
}

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6
)


def _keys(kind: str) -> st.SearchStrategy[tuple[Any, ...]]:
    if kind == "int":
        return st.tuples(st.integers(-(2**62), 2**62))
    if kind == "uuid":
        return st.tuples(st.uuids().map(str))
    if kind == "text":
        return st.tuples(_text)
    return st.tuples(st.integers(-1000, 1000), st.sampled_from(["eu", "us", "", "a b", "Ü"]))


def _canonical(kind: str, key: tuple[Any, ...]) -> tuple[str, ...]:
    if kind == "uuid":
        return (str(uuid.UUID(key[0])),)
    return tuple(str(part) for part in key)


_row_values = st.tuples(
    st.one_of(st.none(), st.just(""), _text),
    st.decimals(min_value=-(10**6), max_value=10**6, places=3, allow_nan=False),
    st.dictionaries(st.sampled_from("abcde"), st.integers(-5, 5), max_size=3),
    st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
    st.one_of(st.none(), st.booleans()),
)

CHANGING = (
    "update", "delete", "insert", "null_empty", "whitespace", "scale", "microsecond", "flag",
)  # fmt: skip
NOOP = ("same_value", "jsonb_reordered")


@dataclass
class Case:
    kind: str
    rows: dict[tuple[Any, ...], tuple[Any, ...]]
    ops: list[tuple[str, str, tuple[Any, ...]]]  # (op, side, key)
    new_keys: list[tuple[Any, ...]]
    range_rows: int
    leaf_rows: int
    fanout: int
    analyze: bool


@st.composite
def cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(sorted(KEY_TYPES)))
    keys = draw(st.lists(_keys(kind), max_size=70, unique_by=lambda k: _canonical(kind, k)))
    rows = {key: draw(_row_values) for key in keys}
    new_keys = draw(
        st.lists(_keys(kind), max_size=4, unique_by=lambda k: _canonical(kind, k)).map(
            lambda ks: [
                k for k in ks if _canonical(kind, k) not in {_canonical(kind, r) for r in rows}
            ]
        )
    )
    chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=8)) if keys else []
    ops = [
        (draw(st.sampled_from(CHANGING + NOOP)), draw(st.sampled_from(["source", "target"])), key)
        for key in chosen
    ]
    ops = [op for op in ops if op[0] != "insert"]
    ops += [("insert", draw(st.sampled_from(["source", "target"])), key) for key in new_keys]
    range_rows = draw(st.sampled_from([3, 8, 25, 10_000]))
    return Case(
        kind=kind,
        rows=rows,
        ops=ops,
        new_keys=new_keys,
        range_rows=range_rows,
        leaf_rows=draw(st.integers(1, 6)),
        fanout=draw(st.integers(2, 5)),
        analyze=draw(st.booleans()),
    )


@dataclass
class Conns:
    source: psycopg.Connection[Any]
    target: psycopg.Connection[Any]

    def side(self, name: str) -> psycopg.Connection[Any]:
        return self.source if name == "source" else self.target


@pytest.fixture(scope="module")
def conns(pair: Pair) -> Iterator[Conns]:
    with (
        psycopg.connect(pair.source.dsn(), autocommit=True) as source,
        psycopg.connect(pair.target.dsn(), autocommit=True) as target,
    ):
        yield Conns(source, target)


def _where(kind: str) -> str:
    return " AND ".join(f"{c} = %s" for c in KEY_TYPES[kind][1])


def _apply(conn: psycopg.Connection[Any], table: str, kind: str, op: str, key: tuple[Any, ...],
           row: tuple[Any, ...] | None) -> None:  # fmt: skip
    where = _where(kind)
    if op == "update":
        conn.execute(f"UPDATE {table} SET t = coalesce(t, '') || 'x' WHERE {where}", key)
    elif op == "delete":
        conn.execute(f"DELETE FROM {table} WHERE {where}", key)
    elif op == "insert":
        conn.execute(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * (len(key) + 5))})",
                     [*key, "new", Decimal("1.5"), "{}", datetime(2024, 1, 1, tzinfo=UTC),
                      None])  # fmt: skip
    elif op == "null_empty":
        conn.execute(
            f"UPDATE {table} SET t = CASE WHEN t IS NULL THEN '' WHEN t = '' THEN NULL"
            f" ELSE NULL END WHERE {where}",
            key,
        )
    elif op == "whitespace":
        conn.execute(f"UPDATE {table} SET t = coalesce(t, '') || ' ' WHERE {where}", key)
    elif op == "microsecond":
        conn.execute(f"UPDATE {table} SET at = at + interval '1 microsecond' WHERE {where}", key)
    elif op == "flag":
        conn.execute(f"UPDATE {table} SET flag = NOT coalesce(flag, false) WHERE {where}", key)
    elif op == "scale":
        conn.execute(f"UPDATE {table} SET n = n * 1.0 WHERE {where}", key)
    elif op == "same_value":
        conn.execute(f"UPDATE {table} SET t = t, n = n + 0 WHERE {where}", key)
    elif op == "jsonb_reordered":
        assert row is not None
        reordered = json.dumps(dict(reversed(list(row[2].items()))), indent=2)
        conn.execute(f"UPDATE {table} SET j = %s WHERE {where}", [reordered, *key])
    else:  # pragma: no cover - the strategy draws only the ops above
        raise AssertionError(op)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def test_reports_exactly_the_injected_differences(pair: Pair, conns: Conns, case: Case) -> None:
    table = fresh_name(f"prop_{case.kind}")
    key_ddl, key_cols = KEY_TYPES[case.kind]
    ddl = (
        f"CREATE TABLE {table} ({key_ddl}, t text, n numeric NOT NULL, j jsonb,"
        " at timestamptz NOT NULL, flag boolean,"
        f" PRIMARY KEY ({', '.join(key_cols)}))"
    )
    placeholders = ", ".join(["%s"] * (len(key_cols) + 5))
    data = [[*key, t, n, json.dumps(j), at, f] for key, (t, n, j, at, f) in case.rows.items()]
    for conn in (conns.source, conns.target):
        conn.execute(ddl)
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} VALUES ({placeholders})", data)
        if case.analyze:
            conn.execute(f"ANALYZE {table}")
    expected: dict[str, set[tuple[str, ...]]] = {
        "missing": set(),
        "extra": set(),
        "different": set(),
    }
    for op, side, key in case.ops:
        _apply(conns.side(side), table, case.kind, op, key, case.rows.get(key))
        canonical = _canonical(case.kind, key)
        if op == "delete":
            expected["extra" if side == "source" else "missing"].add(canonical)
        elif op == "insert":
            expected["missing" if side == "source" else "extra"].add(canonical)
        elif op in CHANGING:
            expected["different"].add(canonical)
    validator = Validator(
        pair.source.dsn(),
        pair.target.dsn(),
        Settings(
            workers=2,
            max_keys_reported=1000,
            range_rows=case.range_rows,
            leaf_rows=case.leaf_rows,
            fanout=case.fanout,
        ),
    )
    report = validator.run([f"public.{table}"])
    entry = report.tables[0]
    assert {
        "missing": set(entry.missing_in_target.keys),
        "extra": set(entry.extra_in_target.keys),
        "different": set(entry.different.keys),
    } == expected
    counts = [entry.missing_in_target.count, entry.extra_in_target.count, entry.different.count]
    assert counts == [len(expected["missing"]), len(expected["extra"]), len(expected["different"])]
    for side, rows in (("source", entry.source_rows), ("target", entry.target_rows)):
        (actual,) = conns.side(side).execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
        assert rows == actual
    assert report.consistent == (not any(expected.values()))
    for conn in (conns.source, conns.target):
        conn.execute(f"DROP TABLE {table}")
