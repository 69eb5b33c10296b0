"""The validator against two real PostgreSQL servers: every correctness case of issue 7."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from pgpair import Pair, found, fresh_name, validate

from paymig.runtime.validator import Settings, Validator, ValidatorError, resolve_scope

pytestmark = pytest.mark.slow


def _int_table(pair: Pair, rows: int = 300) -> str:
    name = fresh_name("ints")
    pair.both(f"CREATE TABLE {name} (id bigint PRIMARY KEY, note text, amount numeric(12,2))")
    pair.both(f"INSERT INTO {name} SELECT g, 'n' || g, g * 1.25 FROM generate_series(1, {rows}) g")
    return name


def test_identical_tables_are_consistent(pair: Pair) -> None:
    name = _int_table(pair, 500)
    report = validate(pair, f"public.{name}")
    assert report.consistent
    entry = report.tables[0]
    assert (entry.table, entry.source_rows, entry.target_rows) == (f"public.{name}", 500, 500)


def test_missing_extra_and_different_keys_are_reported_exactly(pair: Pair) -> None:
    name = _int_table(pair, 500)
    pair.execute("target", f"DELETE FROM {name} WHERE id IN (1, 250, 500)")
    pair.execute("target", f"INSERT INTO {name} VALUES (0, 'x', 1), (1000, 'y', 2)")
    pair.execute("target", f"UPDATE {name} SET note = 'changed' WHERE id IN (17, 333)")
    pair.execute("target", f"UPDATE {name} SET amount = amount + 0.01 WHERE id = 400")
    report = validate(pair, f"public.{name}")
    assert not report.consistent
    assert found(report) == {
        "missing": {("1",), ("250",), ("500",)},
        "extra": {("0",), ("1000",)},
        "different": {("17",), ("333",), ("400",)},
    }
    entry = report.tables[0]
    assert (entry.source_rows, entry.target_rows) == (500, 499)


def test_empty_tables_and_empty_target(pair: Pair) -> None:
    empty = fresh_name("empty")
    pair.both(f"CREATE TABLE {empty} (id int PRIMARY KEY, v text)")
    report = validate(pair, f"public.{empty}")
    assert report.consistent
    assert (report.tables[0].source_rows, report.tables[0].target_rows) == (0, 0)

    one_sided = fresh_name("onesided")
    pair.both(f"CREATE TABLE {one_sided} (id int PRIMARY KEY, v text)")
    pair.execute("source", f"INSERT INTO {one_sided} SELECT g, 'v' FROM generate_series(1, 150) g")
    report = validate(pair, f"public.{one_sided}", max_keys_reported=1000)
    assert found(report)["missing"] == {(str(i),) for i in range(1, 151)}
    assert report.tables[0].target_rows == 0


def test_cap_truncates_lists_but_counts_everything(pair: Pair) -> None:
    name = _int_table(pair, 300)
    pair.execute("target", f"DELETE FROM {name} WHERE id > 50")
    report = validate(pair, f"public.{name}", max_keys_reported=100)
    missing = report.tables[0].missing_in_target
    assert missing.count == 250
    assert len(missing.keys) == 100
    assert set(missing.keys) <= {(str(i),) for i in range(51, 301)}
    assert report.to_json()["tables"][0]["missing_in_target_count"] == 250


def test_composite_text_and_uuid_keys_in_canonical_form(pair: Pair) -> None:
    name = fresh_name("comp")
    pair.both(
        f"CREATE TABLE {name} (region text, id uuid, at timestamptz, v int,"
        " PRIMARY KEY (region, id, at))"
    )
    ids = [uuid.UUID(int=i * 7919 + 1) for i in range(200)]
    rows = [
        (f"r{i % 7}", str(u).upper(), f"2024-03-0{1 + i % 9} 12:00:00+02", i)
        for i, u in enumerate(ids)
    ]
    for side in ("source", "target"):
        with psycopg.connect(
            (pair.source if side == "source" else pair.target).dsn(), autocommit=True
        ) as conn:
            conn.cursor().executemany(f"INSERT INTO {name} VALUES (%s, %s, %s, %s)", rows)
    pair.execute("target", f"UPDATE {name} SET v = -1 WHERE id = %s", [str(ids[5])])
    pair.execute("target", f"DELETE FROM {name} WHERE id = %s", [str(ids[9])])
    report = validate(pair, f"public.{name}")
    assert found(report) == {
        "missing": {("r2", str(ids[9]), "2024-03-01 10:00:00+00")},
        "extra": set(),
        "different": {("r5", str(ids[5]), "2024-03-06 10:00:00+00")},
    }


def test_skewed_keys_split_by_distribution(pair: Pair) -> None:
    name = fresh_name("skew")
    pair.both(f"CREATE TABLE {name} (id bigint PRIMARY KEY, v text)")
    pair.both(
        f"INSERT INTO {name} SELECT g, 'a' FROM generate_series(1, 2000) g"
        " UNION ALL SELECT 1000000000000 + g::bigint * 1000000007, 'b'"
        " FROM generate_series(1, 50) g"
    )
    pair.both(f"ANALYZE {name}")
    changed = [7, 1999, 1000000000000 + 3 * 1000000007]
    pair.execute("target", f"UPDATE {name} SET v = 'z' WHERE id = ANY(%s)", [changed])
    report = validate(pair, f"public.{name}", range_rows=100, leaf_rows=10, fanout=8)
    assert found(report)["different"] == {(str(k),) for k in changed}
    assert not found(report)["missing"] and not found(report)["extra"]


def test_null_vs_empty_whitespace_and_numeric_scale_differ(pair: Pair) -> None:
    name = fresh_name("canon")
    pair.both(f"CREATE TABLE {name} (id int PRIMARY KEY, t text, n numeric)")
    pair.both(f"INSERT INTO {name} VALUES (1, NULL, 1.5), (2, '', 1.5), (3, 'a', 1.5), (4, 'a', 2)")
    pair.execute("target", f"UPDATE {name} SET t = '' WHERE id = 1")
    pair.execute("target", f"UPDATE {name} SET t = NULL WHERE id = 2")
    pair.execute("target", f"UPDATE {name} SET t = 'a ' WHERE id = 3")
    pair.execute("target", f"UPDATE {name} SET n = 2.00 WHERE id = 4")
    report = validate(pair, f"public.{name}")
    assert found(report)["different"] == {("1",), ("2",), ("3",), ("4",)}


def test_jsonb_compared_by_value(pair: Pair) -> None:
    name = fresh_name("js")
    pair.both(f"CREATE TABLE {name} (id int PRIMARY KEY, doc jsonb)")
    pair.execute(
        "source",
        f"""INSERT INTO {name} VALUES (1, '{{"a": 1, "b": [1, 2]}}'),
                              (2, '{{"x": 1}}')""",
    )
    pair.execute(
        "target",
        f"""INSERT INTO {name} VALUES (1, '{{"b":[1,2],   "a":1}}'),
                              (2, '{{"x": 2}}')""",
    )
    report = validate(pair, f"public.{name}")
    assert found(report)["different"] == {("2",)}


def test_session_defaults_of_either_side_do_not_matter(pair: Pair) -> None:
    """The target database has other defaults for every setting the text forms depend on."""
    db = fresh_name("otherdefaults")
    pair.both(f"CREATE DATABASE {db}")
    pair.execute(
        "target",
        f"ALTER DATABASE {db} SET TimeZone = 'Asia/Kolkata';"
        f" ALTER DATABASE {db} SET DateStyle = 'SQL, DMY';"
        f" ALTER DATABASE {db} SET IntervalStyle = 'sql_standard';"
        f" ALTER DATABASE {db} SET extra_float_digits = -3;"
        f" ALTER DATABASE {db} SET bytea_output = 'escape'",
    )
    ddl = (
        "CREATE TABLE t (day date PRIMARY KEY, at timestamptz, naive timestamp,"
        " span interval, ratio float8, blob bytea)"
    )
    insert = (
        "INSERT INTO t SELECT d::date, d, d, make_interval(days => g, secs => g / 7.0),"
        " g / 3.0, convert_to('x' || g, 'UTF8')"
        " FROM generate_series(1, 120) g, LATERAL (SELECT '2024-01-01'::timestamptz"
        " + g * interval '1 day 1 hour' AS d) s"
    )
    for server in (pair.source, pair.target):
        with psycopg.connect(server.dsn(dbname=db), autocommit=True) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            conn.execute(ddl)
            conn.execute(insert)
    with psycopg.connect(pair.target.dsn(dbname=db), autocommit=True) as conn:
        conn.execute("UPDATE t SET ratio = ratio + 1e-12 WHERE day = '2024-01-11'")
    report = Validator(
        pair.source.dsn(dbname=db), pair.target.dsn(dbname=db), Settings(range_rows=30)
    ).run(["public.t"])
    assert found(report) == {"missing": set(), "extra": set(), "different": {("2024-01-11",)}}


def test_columns_matched_by_name_not_position(pair: Pair) -> None:
    name = fresh_name("order")
    pair.execute("source", f"CREATE TABLE {name} (id int PRIMARY KEY, a text, b text)")
    pair.execute("target", f"CREATE TABLE {name} (b text, id int PRIMARY KEY, a text)")
    pair.both(
        f"INSERT INTO {name} (id, a, b) SELECT g, 'a' || g, 'b' || g FROM generate_series(1, 99) g"
    )
    assert validate(pair, f"public.{name}").consistent
    pair.execute("target", f"UPDATE {name} SET a = b WHERE id = 42")
    assert found(validate(pair, f"public.{name}"))["different"] == {("42",)}


def test_column_mismatch_and_missing_table_are_errors_naming_them(pair: Pair) -> None:
    name = fresh_name("cols")
    pair.execute("source", f"CREATE TABLE {name} (id int PRIMARY KEY, a text, gone text)")
    pair.execute("target", f"CREATE TABLE {name} (id int PRIMARY KEY, a text, added text)")
    with pytest.raises(ValidatorError) as err:
        validate(pair, f"public.{name}")
    assert str(err.value) == (
        f"table public.{name}: columns differ between source and target "
        "(only on source: gone; only on target: added)"
    )
    only_source = fresh_name("only")
    pair.execute("source", f"CREATE TABLE {only_source} (id int PRIMARY KEY)")
    expected = rf"^table public\.{only_source}: not found on target$"
    with pytest.raises(ValidatorError, match=expected):
        validate(pair, f"public.{only_source}")
    with pytest.raises(ValidatorError, match=r"^table public\.nowhere: not found on source$"):
        validate(pair, "public.nowhere")


def test_table_without_primary_key_or_with_different_keys_is_an_error(pair: Pair) -> None:
    heap = fresh_name("nokey")
    pair.both(f"CREATE TABLE {heap} (id int, v text)")
    expected = rf"^table public\.{heap}: has no primary key on source$"
    with pytest.raises(ValidatorError, match=expected):
        validate(pair, f"public.{heap}")
    keyed = fresh_name("keys")
    pair.execute("source", f"CREATE TABLE {keyed} (a int, b int, PRIMARY KEY (a, b))")
    pair.execute("target", f"CREATE TABLE {keyed} (a int, b int, PRIMARY KEY (b, a))")
    with pytest.raises(ValidatorError, match=r"primary keys differ \(source: a, b; target: b, a\)"):
        validate(pair, f"public.{keyed}")


def test_read_only_role_is_enough(pair: Pair) -> None:
    name = _int_table(pair, 200)
    role = fresh_name("reader")
    pair.both(f"CREATE ROLE {role} LOGIN")
    pair.both(f"GRANT SELECT ON {name} TO {role}")
    pair.execute("target", f"DELETE FROM {name} WHERE id = 77")
    report = Validator(
        pair.source.dsn(user=role), pair.target.dsn(user=role), Settings(range_rows=40, leaf_rows=5)
    ).run([f"public.{name}"])
    assert found(report)["missing"] == {("77",)}
    # without SELECT the error names side and table, on one line
    other = _int_table(pair, 5)
    with pytest.raises(ValidatorError, match=rf"^source: table public\.{other}: permission denied"):
        Validator(pair.source.dsn(user=role), pair.target.dsn(user=role)).run([f"public.{other}"])


class _Hook:
    """A progress sink that changes the target when the first range is compared."""

    def __init__(self, pair: Pair, statement: str) -> None:
        self.pair, self.statement = pair, statement
        self.events: list[tuple[str, str, int]] = []

    def start(self, table: str, ranges: int) -> None:
        self.events.append(("start", table, ranges))

    def advance(self, table: str, ranges: int) -> None:
        if not any(e[0] == "advance" for e in self.events):
            self.pair.execute("target", self.statement)
        self.events.append(("advance", table, ranges))

    def finish(self, table: str) -> None:
        self.events.append(("finish", table, 0))


def test_a_batch_reads_one_snapshot_taken_before_it_starts(pair: Pair) -> None:
    """A change committed during a batch is invisible to every worker of that batch.

    With one worker (two ranges in flight), the delete runs when the first range is
    done, before the last range (which holds the deleted key) is even submitted; the
    batch's snapshot still has the row.
    """
    name = _int_table(pair, 400)
    hook = _Hook(pair, f"DELETE FROM {name} WHERE id = 400")
    settings = Settings(range_rows=40, leaf_rows=5, fanout=4, workers=1)
    report = Validator(pair.source.dsn(), pair.target.dsn(), settings, progress=hook).run(
        [f"public.{name}"]
    )
    assert report.consistent  # the delete happened after the batch's snapshot
    assert report.tables[0].target_rows == 400
    (start,) = [e for e in hook.events if e[0] == "start"]
    assert start[1] == f"public.{name}" and start[2] >= 3
    assert sum(e[2] for e in hook.events if e[0] == "advance") == start[2]
    assert hook.events[-1] == ("finish", f"public.{name}", 0)
    # the next batch (here: the next run) sees it
    assert found(validate(pair, f"public.{name}"))["missing"] == {("400",)}


def test_difference_healed_before_the_recheck_is_not_reported(pair: Pair) -> None:
    """What replication in flight looks like: differs in the snapshot, fine after grace."""
    name = _int_table(pair, 200)
    pair.execute("target", f"UPDATE {name} SET note = 'stale' WHERE id IN (10, 20)")
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        pair.execute("target", f"UPDATE {name} SET note = 'n' || id WHERE id = 10")

    settings = Settings(range_rows=40, leaf_rows=5, grace_seconds=5.0)
    report = Validator(pair.source.dsn(), pair.target.dsn(), settings, sleep=sleep).run(
        [f"public.{name}"]
    )
    assert len(slept) == 1 and 4.0 < slept[0] <= 5.0
    assert found(report)["different"] == {("20",)}


def test_no_sleep_without_candidates_or_grace(pair: Pair) -> None:
    name = _int_table(pair, 50)
    slept: list[float] = []
    settings = Settings(grace_seconds=30.0)
    report = Validator(pair.source.dsn(), pair.target.dsn(), settings, sleep=slept.append).run(
        [f"public.{name}"]
    )
    assert report.consistent and slept == []


def test_scope_rules_select_tables_from_the_catalog(pair: Pair) -> None:
    schema = fresh_name("scope")
    pair.both(f"CREATE SCHEMA {schema}")
    for table in ("payments", "payment_events", "tmp_load", "audit"):
        pair.both(f"CREATE TABLE {schema}.{table} (id int PRIMARY KEY)")
    pair.both(f"CREATE VIEW {schema}.v AS SELECT 1 AS x")
    rules = [
        (schema, "pay%", "include"),
        (schema, "tmp%", "include"),
        (schema, "%_events", "exclude"),
    ]
    with psycopg.connect(pair.source.dsn()) as conn:
        assert resolve_scope(conn, rules) == [f"{schema}.payments", f"{schema}.tmp_load"]
    report = Validator(pair.source.dsn(), pair.target.dsn()).run(rules=rules)
    assert [t.table for t in report.tables] == [f"{schema}.payments", f"{schema}.tmp_load"]
    with pytest.raises(ValidatorError, match="scope rules select none"):
        Validator(pair.source.dsn(), pair.target.dsn()).run(rules=[("nope", "%", "include")])


def test_unreachable_side_is_a_one_line_error(pair: Pair) -> None:
    with pytest.raises(ValidatorError) as err:
        Validator(
            pair.source.dsn(),
            "host=127.0.0.1 port=1 user=x password=hunter2",
            Settings(connect_timeout=2),
        ).run(["public.t"])
    message = str(err.value)
    assert message.startswith("target: cannot connect: ")
    assert "\n" not in message and "hunter2" not in message


def test_values_exchanged_between_rows_are_found(pair: Pair) -> None:
    """Same column values, paired with other keys: a linear row hash would miss this."""
    name = fresh_name("swap")
    pair.both(f"CREATE TABLE {name} (id int PRIMARY KEY, t text, at timestamptz, ok boolean)")
    rows = "(1, NULL, 'epoch', true), (2, 'x', '2024-05-01 10:00+00', false), (3, 'y', NULL, NULL)"
    pair.both(f"INSERT INTO {name} VALUES {rows}")
    pair.execute("target", f"UPDATE {name} SET t = CASE id WHEN 1 THEN 'x' ELSE NULL END"
                 " WHERE id IN (1, 2)")  # fmt: skip
    pair.execute("target", f"UPDATE {name} SET ok = NOT ok WHERE id IN (1, 2)")
    report = validate(pair, f"public.{name}", range_rows=1000, leaf_rows=1)
    assert found(report)["different"] == {("1",), ("2",)}


def test_types_may_differ_when_the_text_is_the_same(pair: Pair) -> None:
    """int vs bigint, text vs varchar, uuid vs text: compared through the same text."""
    name = fresh_name("types")
    pair.execute("source", f"CREATE TABLE {name} (id int PRIMARY KEY, n int, s text, u uuid,"
                 " at timestamp, b bytea)")  # fmt: skip
    pair.execute("target", f"CREATE TABLE {name} (id bigint PRIMARY KEY, n bigint,"
                 " s varchar(10), u text, at timestamp(6), b bytea)")  # fmt: skip
    pair.both(
        f"INSERT INTO {name} SELECT g, g * 10, 's' || g, md5(g::text)::uuid,"
        " timestamp '2024-01-01' + g * interval '1.5 second', decode(md5(g::text), 'hex')"
        " FROM generate_series(1, 90) g"
    )
    assert validate(pair, f"public.{name}").consistent
    pair.execute("target", f"UPDATE {name} SET at = at + interval '1 microsecond' WHERE id = 5")
    pair.execute("target", f"UPDATE {name} SET b = b || '\\x00'::bytea WHERE id = 6")
    pair.execute("target", f"UPDATE {name} SET u = upper(u) WHERE id = 7")
    assert found(validate(pair, f"public.{name}"))["different"] == {("5",), ("6",), ("7",)}


def test_page_sample_is_thinned_and_in_key_order(pair: Pair) -> None:
    """The SYSTEM sample (used above a million rows) keeps every n-th key, in key order."""
    from paymig.runtime.validator.engine import Side
    from paymig.runtime.validator.plan import SamplePlan

    name = fresh_name("sample")
    pair.execute("source", f"CREATE TABLE {name} (id int PRIMARY KEY, pad text)")
    pair.execute(
        "source", f"INSERT INTO {name} SELECT g, repeat('x', 20) FROM generate_series(1, 20000) g"
    )
    side = Side("source", pair.source.dsn(), Settings(workers=1))
    side.open()
    try:
        spec, _, _, pages = side.describe("public", name)
        keys = side.sample(spec, SamplePlan("SYSTEM", 50.0, 10))
    finally:
        side.close()
    values = [int(key[0]) for key in keys]
    assert pages > 50
    assert values == sorted(values) and len(set(values)) == len(values)
    assert 0 < len(values) <= 20000 // 10
