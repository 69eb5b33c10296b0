"""`paymig preflight` against real PostgreSQL servers started by the tests.

Two servers cover every check: a ready one (TLS, wal_level logical, free slots and WAL
senders, a REPLICATION role that can read every table with a primary key), and a broken
one (wal_level replica, no TLS, its only slot taken, no WAL senders, a role without
REPLICATION or SELECT, a table without a primary key and a LOB column). The version
check cannot be failed by a real server here (only PostgreSQL 15 is installed), so its
fail case is tested on the pure core with facts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from paymig.cli import main
from paymig.config import TableRule
from paymig.errors import PaymigError
from paymig.local.postgres import LocalPostgres
from paymig.runtime.preflight import (
    ColumnFacts,
    SourceConnectionError,
    SourceFacts,
    TableFacts,
    check_lob_columns,
    check_version,
    evaluate,
    major_version,
    parse_table_name,
    run_preflight,
    select_tables,
)

pytestmark = pytest.mark.slow

GOOD_SCHEMA = """
CREATE TABLE public.payments (id bigint PRIMARY KEY, amount numeric(12,2) NOT NULL,
                              memo text, payload jsonb);
CREATE TABLE public.refunds (id bigint PRIMARY KEY, payment_id bigint NOT NULL);
CREATE SCHEMA billing;
CREATE TABLE billing.ledger (id bigint PRIMARY KEY, entry varchar(40));
CREATE TABLE public.tmp_scratch (x int);  -- no key, but excluded by the rules below
CREATE ROLE dms_user LOGIN REPLICATION;
GRANT USAGE ON SCHEMA billing TO dms_user;
GRANT SELECT ON ALL TABLES IN SCHEMA public, billing TO dms_user;
"""

BAD_SCHEMA = """
CREATE TABLE public.payments (id bigint PRIMARY KEY, amount numeric(12,2));
CREATE TABLE public.audit_log (at timestamptz, note text);
CREATE TABLE public.secrets (id int PRIMARY KEY);
CREATE ROLE weak LOGIN;
GRANT SELECT ON public.payments, public.audit_log TO weak;
SELECT pg_create_physical_replication_slot('taken');
"""

RULES = [
    TableRule(schema_name="public", table_name="%", action="include"),
    TableRule(schema_name="billing", table_name="%", action="include"),
    TableRule(schema_name="public", table_name="tmp_%", action="exclude"),
]


def _setup(server: LocalPostgres, sql: str) -> None:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, LocalPostgres]]:
    """Both servers, started once for the module and always stopped."""
    good = LocalPostgres("preflight-good", ssl=True)
    bad = LocalPostgres(
        "preflight-bad",
        settings={"wal_level": "replica", "max_replication_slots": "1", "max_wal_senders": "0"},
    )
    try:
        good.start()
        bad.start()
        _setup(good, GOOD_SCHEMA)
        _setup(bad, BAD_SCHEMA)
        yield {"good": good, "bad": bad}
    finally:
        good.stop()
        bad.stop()


def _by_name(report: object) -> dict[str, tuple[bool, str]]:
    return {c.name: (c.ok, c.detail) for c in report.checks}  # type: ignore[attr-defined]


def test_ready_source_passes_every_check(servers: dict[str, LocalPostgres]) -> None:
    report = run_preflight(servers["good"].dsn(user="dms_user"), None, "limited", table_rules=RULES)
    checks = _by_name(report)
    assert report.passed
    assert list(checks) == [
        "version", "wal_level", "replication_slots", "wal_senders", "tls",
        "replication_privilege", "tables_found", "primary_keys", "select_privilege",
        "lob_columns",
    ]  # fmt: skip
    assert checks["version"] == (
        True, "PostgreSQL 15; DMS 3.5 supports 9.4-9.6 and 10-16 as a source",
    )  # fmt: skip
    assert checks["wal_level"] == (True, "wal_level = logical")
    assert checks["replication_slots"] == (
        True, "10 of max_replication_slots = 10 free (0 in use); DMS needs 1",
    )  # fmt: skip
    assert checks["wal_senders"] == (
        True, "10 of max_wal_senders = 10 free (0 in use); DMS needs 1",
    )  # fmt: skip
    assert checks["tls"] == (True, "ssl = on")
    assert checks["replication_privilege"] == (True, "dms_user has REPLICATION")
    assert checks["tables_found"] == (
        True,
        "3 tables selected by table_rules include public.%, include billing.%, "
        "exclude public.tmp_%",
    )
    assert checks["primary_keys"] == (True, "all 3 tables have a primary key")
    assert checks["select_privilege"] == (True, "dms_user can SELECT all 3 tables")
    assert checks["lob_columns"] == (
        True,
        "2 LOB columns copied up to lob_max_size_kb; the task stops on a larger value "
        "(fail_tasks_on_lob_truncation)",
    )


def test_broken_source_fails_every_check_and_names_why(
    servers: dict[str, LocalPostgres],
) -> None:
    report = run_preflight(servers["bad"].dsn(user="weak"), None, "none")
    checks = _by_name(report)
    assert not report.passed
    assert checks["wal_level"] == (
        False, "wal_level = replica; CDC needs logical (set it and restart the server)",
    )  # fmt: skip
    assert checks["replication_slots"] == (
        False, "0 of max_replication_slots = 1 free (1 in use); DMS needs 1",
    )  # fmt: skip
    assert checks["wal_senders"] == (
        False, "0 of max_wal_senders = 0 free (0 in use); DMS needs 1",
    )  # fmt: skip
    assert checks["tls"] == (False, "ssl = off; DMS connects with verify-full and would fail")
    assert checks["replication_privilege"] == (
        False, "weak has neither REPLICATION nor rds_replication membership",
    )  # fmt: skip
    assert checks["primary_keys"] == (False, "no primary key: public.audit_log")
    assert checks["select_privilege"] == (False, "weak cannot SELECT: public.secrets")
    assert checks["lob_columns"] == (
        False,
        "lob_mode none would drop these LOB columns: public.audit_log.note (text); "
        "use limited or full",
    )
    assert [name for name, (ok, _) in checks.items() if ok] == ["version", "tables_found"]


def test_rds_replication_membership_counts_as_replication(
    servers: dict[str, LocalPostgres],
) -> None:
    _setup(
        servers["bad"],
        "CREATE ROLE rds_replication; CREATE ROLE rds_user LOGIN IN ROLE rds_replication;",
    )
    report = run_preflight(servers["bad"].dsn(user="rds_user"), ["public.payments"], "full")
    assert _by_name(report)["replication_privilege"] == (
        True, "rds_user is a member of rds_replication",
    )  # fmt: skip


def test_superuser_counts_as_replication(servers: dict[str, LocalPostgres]) -> None:
    report = run_preflight(servers["bad"].dsn(), ["payments"], "full")
    assert _by_name(report)["replication_privilege"] == (True, "postgres is a superuser")


def test_named_tables_are_checked_and_missing_ones_named(
    servers: dict[str, LocalPostgres],
) -> None:
    report = run_preflight(
        servers["good"].dsn(user="dms_user"),
        ["public.payments", "billing.ledger", "public.nope", "other.table"],
        "full",
    )
    checks = _by_name(report)
    assert checks["tables_found"] == (
        False, "not found on the source: public.nope, other.table",
    )  # fmt: skip
    assert checks["primary_keys"] == (True, "all 2 tables have a primary key")
    assert checks["lob_columns"] == (True, "2 LOB columns; lob_mode full")


def test_rules_selecting_nothing_fail(servers: dict[str, LocalPostgres]) -> None:
    rules = [TableRule(schema_name="sales", table_name="%", action="include")]
    report = run_preflight(servers["good"].dsn(user="dms_user"), None, "limited", table_rules=rules)
    assert _by_name(report)["tables_found"] == (
        False, "table_rules include sales.% select no table",
    )  # fmt: skip


def test_none_mode_passes_without_lob_columns(servers: dict[str, LocalPostgres]) -> None:
    report = run_preflight(servers["good"].dsn(user="dms_user"), ["public.refunds"], "none")
    assert _by_name(report)["lob_columns"] == (True, "0 LOB columns; lob_mode none")
    assert report.passed


def test_unreachable_source_is_one_line_exit_2() -> None:
    with pytest.raises(SourceConnectionError) as info:
        run_preflight("host=127.0.0.1 port=1 dbname=x user=x", None, "limited", connect_timeout=2)
    message = str(info.value)
    assert message.startswith("--source-dsn: cannot connect to the source: ")
    assert "\n" not in message
    assert info.value.exit_code == 2


# --------------------------------------------------------------------------- CLI


def _config_for(tmp_path: Path, lob_mode: str) -> Path:
    """A copy of prod.yaml with the LOB mode and rules these tests need."""
    import yaml

    repo = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((repo / "config" / "prod.yaml").read_text())
    data["replication"]["lob_mode"] = lob_mode
    data["replication"]["table_rules"] = [r.model_dump() for r in RULES]
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_exit_0_and_json_when_ready(
    servers: dict[str, LocalPostgres], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config_for(tmp_path, "limited")
    dsn = servers["good"].dsn(user="dms_user")
    code = main(["preflight", "--source-dsn", dsn, "--config", str(config), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["passed"] is True
    assert len(document["checks"]) == 10
    assert all(set(c) == {"name", "ok", "detail"} and c["ok"] for c in document["checks"])
    assert document["checks"][6]["detail"].startswith("3 tables selected by table_rules")


def test_cli_exit_1_when_a_check_fails(
    servers: dict[str, LocalPostgres], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config_for(tmp_path, "none")  # payments.memo/payload are LOBs
    dsn = servers["good"].dsn(user="dms_user")
    code = main(["preflight", "--source-dsn", dsn, "--config", str(config)])
    out = capsys.readouterr().out
    assert code == 1
    assert "1 check(s) failed: lob_columns" in out


def test_cli_table_option_and_text_output(
    servers: dict[str, LocalPostgres], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config_for(tmp_path, "none")
    dsn = servers["good"].dsn(user="dms_user")
    argv = ["preflight", "--source-dsn", dsn, "--config", str(config), "--table", "refunds"]
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 0
    assert "the source is ready for DMS" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source-dsn", "host=127.0.0.1 port=1 user=x connect_timeout=2"],
         "paymig: --source-dsn: cannot connect to the source: "),
        (["--source-dsn", "host=127.0.0.1", "--table", "a.b.c"],
         "paymig: --table: 'a.b.c' is not a table name (expected schema.table)"),
        (["--source-dsn", "not a dsn"], "paymig: --source-dsn: cannot connect to the source: "),
        ([], "paymig: Missing option '--source-dsn'"),
    ],
)  # fmt: skip
def test_cli_usage_and_connection_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["preflight", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(message)
    assert err.count("\n") == 1


# --------------------------------------------------------------------------- pure core


def _facts(version: int = 150004, **kwargs: object) -> SourceFacts:
    base: dict[str, object] = {
        "server_version_num": version, "wal_level": "logical", "max_replication_slots": 4,
        "used_replication_slots": 0, "max_wal_senders": 4, "used_wal_senders": 0,
        "ssl": True, "role": "dms", "role_can_replicate": True, "role_is_superuser": False,
        "role_in_rds_replication": False,
        "tables": (TableFacts("public", "t", has_primary_key=True, can_select=True),),
    }  # fmt: skip
    base.update(kwargs)
    return SourceFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("version", "ok", "detail"),
    [
        (140011, True, "PostgreSQL 14; DMS 3.5 supports 9.4-9.6 and 10-16 as a source"),
        (160004, True, "PostgreSQL 16; DMS 3.5 supports 9.4-9.6 and 10-16 as a source"),
        (90624, True, "PostgreSQL 9.6; DMS 3.5 supports 9.4-9.6 and 10-16 as a source"),
        (170002, False, "PostgreSQL 17 is not a DMS 3.5 source (supported: 9.4-9.6 and 10-16)"),
        (90324, False, "PostgreSQL 9.3 is not a DMS 3.5 source (supported: 9.4-9.6 and 10-16)"),
    ],
)
def test_version_check(version: int, ok: bool, detail: str) -> None:
    result = check_version(_facts(version))
    assert (result.ok, result.detail) == (ok, detail)
    assert major_version(version) in detail


@pytest.mark.parametrize(
    ("column", "is_lob"),
    [
        (ColumnFacts("a", "text", "text", "S", "b", -1), True),
        (ColumnFacts("a", "bytea", "bytea", "U", "b", -1), True),
        (ColumnFacts("a", "integer[]", "_int4", "A", "b", -1), True),
        (ColumnFacts("a", "addr", "addr", "C", "c", -1), True),
        (ColumnFacts("a", "character varying", "varchar", "S", "b", -1), True),
        (ColumnFacts("a", "character varying(20)", "varchar", "S", "b", 24), False),
        (ColumnFacts("a", "numeric(12,2)", "numeric", "N", "b", 786438), False),
    ],
)
def test_lob_classification(column: ColumnFacts, is_lob: bool) -> None:
    assert column.is_lob is is_lob


def test_many_offenders_are_bounded_in_the_detail() -> None:
    tables = tuple(
        TableFacts("public", f"t{i:02}", has_primary_key=False, can_select=True) for i in range(12)
    )
    report = evaluate(_facts(tables=tables), "full")
    detail = _by_name(report)["primary_keys"][1]
    assert detail == (
        "no primary key: public.t00, public.t01, public.t02, public.t03, public.t04, "
        "public.t05, public.t06, public.t07, public.t08, public.t09 and 2 more"
    )


def test_lob_check_in_limited_mode_without_lobs() -> None:
    result = check_lob_columns(_facts(), "limited")
    assert (result.ok, result.detail) == (True, "0 LOB columns; lob_mode limited")


def test_bad_lob_mode_is_rejected() -> None:
    with pytest.raises(PaymigError, match="lob_mode: 'big' is not one of none, limited, full"):
        evaluate(_facts(), "big")
    with pytest.raises(PaymigError, match="lob_mode: 'big'"):
        run_preflight("host=127.0.0.1", None, "big")


def test_selection_semantics() -> None:
    candidates = [("public", "a_b"), ("public", "axb"), ("public", "tmp_1"), ("x", "a_b")]
    rules = [
        TableRule(schema_name="public", table_name="a_%", action="include"),
        TableRule(schema_name="%", table_name="tmp%", action="include"),
        TableRule(schema_name="public", table_name="tmp_1", action="exclude"),
    ]
    # `_` is literal in DMS names (unlike SQL LIKE), and exclude wins over include.
    assert select_tables(candidates, rules) == [("public", "a_b")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("payments", ("public", "payments")), ("billing.ledger", ("billing", "ledger"))],
)
def test_parse_table_name(text: str, expected: tuple[str, str]) -> None:
    assert parse_table_name(text) == expected


@pytest.mark.parametrize("text", ["a.b.c", "", "pub lic.t", "x;drop"])
def test_parse_table_name_rejects(text: str) -> None:
    with pytest.raises(PaymigError, match="--table: "):
        parse_table_name(text)
