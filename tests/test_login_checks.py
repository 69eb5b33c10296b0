"""`paymig preflight --check-logins`: each login has what it needs and nothing more.

The pure core is tested on facts built from the model; the shell against real servers:
a fresh source where the DBA's SQL (:func:`source_setup_script`) is run as a superuser,
whose roles must then pass, and the same source after over-granting, whose checks must
name every excess privilege exactly. A fresh PostgreSQL 15 does not let ``PUBLIC``
create in ``public`` while 14 (the on-prem source's version) does; the fixture grants it
back so the DBA's ``REVOKE`` is shown to matter.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import yaml

from paymig.cli import main
from paymig.local.postgres import LocalPostgres
from paymig.logins import (
    LOGINS,
    PAYMENT_TABLES,
    TABLE_PRIVILEGES,
    Login,
    expected_table_privileges,
    logins_for,
)
from paymig.payments_schema import apply_schema
from paymig.runtime.checks import CheckResult
from paymig.runtime.login_checks import (
    LoginFacts,
    RoleFacts,
    check_user,
    evaluate_logins,
    expected_attributes,
)
from paymig.runtime.preflight import run_preflight
from paymig.runtime.source_sql import source_setup_script

DATABASE = "payments"
LEDGER = ("public", "ledger")


# --------------------------------------------------------------------------- pure core


def _ideal_user(login: Login, user: str, tables: tuple[tuple[str, str], ...]) -> RoleFacts:
    attributes = frozenset(a for a, want in expected_attributes(login).items() if want)
    schemas = {s: frozenset({"USAGE"} | ({"CREATE"} if s == login.own_schema else set()))
               for s in login.schemas()}  # fmt: skip
    privileges = {t: expected_table_privileges(login, t) for t in tables}
    member_of = frozenset(r for r in (login.group, *login.member_of) if r)
    return RoleFacts(user, attributes, member_of, frozenset(), frozenset({"CONNECT"}),
                     schemas, privileges, privileges)  # fmt: skip


def _ideal_facts(
    server: str = "source", tables: tuple[tuple[str, str], ...] = PAYMENT_TABLES
) -> LoginFacts:
    roles: dict[str, RoleFacts] = {}
    for login in LOGINS[server]:  # type: ignore[index]
        for user in login.users:
            roles[user] = _ideal_user(login, user, tables)
        if login.group:
            roles[login.group] = RoleFacts(login.group, frozenset(), members=frozenset(login.users))
    return LoginFacts(server, DATABASE, roles, tables,  # type: ignore[arg-type]
                      schemas=frozenset({"public", "awsdms_control", "awsdms_heartbeat"}))  # fmt: skip


def _with_role(facts: LoginFacts, role: str, **changes: object) -> LoginFacts:
    roles = dict(facts.roles)
    roles[role] = dataclasses.replace(roles[role], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(facts, roles=roles)


def _by_name(results: list[CheckResult]) -> dict[str, tuple[bool, str]]:
    return {r.name: (r.ok, r.detail) for r in results}


@pytest.mark.parametrize("server", ["source", "aurora"])
def test_the_model_itself_passes(server: str) -> None:
    results = evaluate_logins(_ideal_facts(server))
    assert [r.name for r in results if not r.ok] == []
    expected = [n for login in LOGINS[server] for n in  # type: ignore[index]
                ([f"group {login.group}"] if login.group else []) + [f"login {u}" for u in login.users]]  # fmt: skip
    assert [r.name for r in results] == expected


def test_every_excess_is_named() -> None:
    everything = frozenset(TABLE_PRIVILEGES)
    facts = _with_role(
        _ideal_facts(tables=(*PAYMENT_TABLES, LEDGER)),
        "paymig_api",
        attributes=frozenset({"LOGIN", "INHERIT", "SUPERUSER", "REPLICATION", "BYPASSRLS"}),
        member_of=frozenset({"paymig_api_rw", "pg_write_all_data"}),
        database=frozenset({"CONNECT", "CREATE"}),
        schemas={"public": frozenset({"USAGE", "CREATE"})},
        tables=dict.fromkeys((*PAYMENT_TABLES, LEDGER), everything),
    )
    api = next(login for login in logins_for("source") if login.client == "api")
    result = check_user(api, "paymig_api", facts)
    assert (result.ok, result.detail) == (
        False,
        "excess: SUPERUSER; REPLICATION; BYPASSRLS; membership of pg_write_all_data; CREATE on "
        "database payments; CREATE on schema public; "
        "SELECT on public.ledger; INSERT on public.ledger; UPDATE on public.ledger; "
        "DELETE on public.accounts, public.payments, public.refunds, public.ledger; "
        "TRUNCATE on public.accounts, public.payments, public.refunds, public.ledger; "
        "REFERENCES on public.accounts, public.payments, public.refunds, public.ledger; "
        "TRIGGER on public.accounts, public.payments, public.refunds, public.ledger",
    )


def test_missing_things_are_named() -> None:
    facts = _ideal_facts(tables=(*PAYMENT_TABLES[:2], LEDGER))
    facts = dataclasses.replace(facts, missing_tables=(PAYMENT_TABLES[2],),
                                schemas=frozenset({"public"}))  # fmt: skip
    facts = _with_role(facts, "paymig_dms_clone", attributes=frozenset({"LOGIN", "INHERIT"}),
                       member_of=frozenset(), database=frozenset(),
                       tables={PAYMENT_TABLES[0]: frozenset({"SELECT"})})  # fmt: skip
    results = _by_name(evaluate_logins(facts))
    assert results["login paymig_dms_clone"] == (
        False,
        "missing: REPLICATION; membership of paymig_dms_ro; CONNECT on database payments; "
        "table public.refunds (it does not exist); schema awsdms_heartbeat (it does not "
        "exist); SELECT on public.payments, public.ledger",
    )


def test_schema_privileges_missing_and_excess() -> None:
    facts = _with_role(_ideal_facts(), "paymig_dms", schemas={
        "public": frozenset(), "awsdms_heartbeat": frozenset({"USAGE"}),
        "awsdms_control": frozenset({"CREATE"})})  # fmt: skip
    assert _by_name(evaluate_logins(facts))["login paymig_dms"] == (
        False,
        "missing: CREATE on schema awsdms_heartbeat; USAGE on schema public | "
        "excess: CREATE on schema awsdms_control",
    )


def test_column_level_write_counts_as_excess_and_partial_read_as_missing() -> None:
    facts = _with_role(
        _ideal_facts(),
        "paymig_validation",
        tables={PAYMENT_TABLES[1]: frozenset()},
        any_column={PAYMENT_TABLES[1]: frozenset({"SELECT", "INSERT"})},
    )
    results = _by_name(evaluate_logins(facts))
    assert results["login paymig_validation"] == (
        False,
        "missing: SELECT on public.accounts, public.payments, public.refunds | "
        "excess: INSERT on public.payments",
    )


def test_group_and_absent_roles() -> None:
    facts = _with_role(_ideal_facts(), "paymig_api_rw", attributes=frozenset({"LOGIN"}),
                       member_of=frozenset({"pg_read_all_data"}),
                       members=frozenset({"paymig_api", "legacy_app"}))  # fmt: skip
    roles = {k: v for k, v in facts.roles.items() if k not in {"paymig_rotation", "paymig_dms_ro"}}
    results = _by_name(evaluate_logins(dataclasses.replace(facts, roles=roles)))
    assert results["group paymig_api_rw"] == (
        False,
        "missing: member paymig_api_clone | excess: LOGIN; membership of pg_read_all_data; "
        "member legacy_app",
    )
    assert results["group paymig_dms_ro"] == (
        False, "missing: role paymig_dms_ro (it does not exist)",
    )  # fmt: skip
    assert results["login paymig_rotation"] == (
        False, "missing: role paymig_rotation (it does not exist)",
    )  # fmt: skip


def test_long_table_lists_are_bounded() -> None:
    tables = tuple(("public", f"t{i:02}") for i in range(12))
    facts = _with_role(_ideal_facts(tables=(*PAYMENT_TABLES, *tables)), "paymig_api",
                       tables={t: frozenset({"DELETE"}) for t in tables})  # fmt: skip
    detail = _by_name(evaluate_logins(facts))["login paymig_api"][1]
    assert detail.endswith(
        "DELETE on public.t00, public.t01, public.t02, public.t03, public.t04, public.t05, "
        "public.t06, public.t07, public.t08, public.t09 and 2 more"
    )


# --------------------------------------------------------------------------- real source


def _source(factory: Callable[..., LocalPostgres]) -> LocalPostgres:
    """A fresh source with the payments model, PostgreSQL 14's public schema, the DBA's SQL."""
    server = factory("source", ssl=True)
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DATABASE}")
    with psycopg.connect(server.dsn(DATABASE), autocommit=True) as conn:
        apply_schema(conn)
        conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")  # PostgreSQL 14's default
        conn.execute(source_setup_script(DATABASE).sql)
    return server


def _superuser(server: LocalPostgres, sql: str) -> None:
    with psycopg.connect(server.dsn(DATABASE), autocommit=True) as conn:
        conn.execute(sql)


def _login_results(server: LocalPostgres, user: str = "paymig_dms") -> dict[str, tuple[bool, str]]:
    report = run_preflight(server.dsn(DATABASE, user), None, "limited", check_logins=True)
    return {
        c.name: (c.ok, c.detail) for c in report.checks if c.name.startswith(("login", "group"))
    }


@pytest.mark.slow
def test_dba_sql_on_a_fresh_source_passes_every_check(
    postgres_factory: Callable[..., LocalPostgres],
) -> None:
    server = _source(postgres_factory)
    report = run_preflight(server.dsn(DATABASE, "paymig_dms"), None, "limited", check_logins=True)
    assert [(c.name, c.detail) for c in report.checks if not c.ok] == []
    names = [c.name for c in report.checks]
    assert names[10:] == [
        "group paymig_api_rw", "login paymig_api", "login paymig_api_clone",
        "group paymig_dms_ro", "login paymig_dms", "login paymig_dms_clone",
        "group paymig_validation_ro", "login paymig_validation", "login paymig_validation_clone",
        "group paymig_dms_apply_rw", "login paymig_dms_apply", "login paymig_dms_apply_clone",
        "login paymig_rotation",
    ]  # fmt: skip
    details = {c.name: c.detail for c in report.checks}
    assert details["replication_privilege"] == "paymig_dms has REPLICATION"
    assert details["login paymig_dms_clone"] == (
        "paymig_dms_clone: exactly what it needs (REPLICATION; SELECT on the payment tables; "
        "CREATE on schema awsdms_heartbeat; member of paymig_dms_ro)"
    )
    assert details["login paymig_rotation"] == (
        "paymig_rotation: exactly what it needs (CREATEROLE; no table privileges)"
    )


@pytest.mark.slow
def test_source_logins_do_their_part_and_the_rotation_caveat_is_caught(
    postgres_factory: Callable[..., LocalPostgres],
) -> None:
    server = _source(postgres_factory)
    # DMS's heartbeat table, created by one user of the pair, written by the other.
    with psycopg.connect(server.dsn(DATABASE, "paymig_dms"), autocommit=True) as conn:
        conn.execute("CREATE TABLE awsdms_heartbeat.awsdms_heartbeat (ts timestamptz)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.awsdms_heartbeat (ts timestamptz)")
    with psycopg.connect(server.dsn(DATABASE, "paymig_dms_clone"), autocommit=True) as conn:
        conn.execute("INSERT INTO awsdms_heartbeat.awsdms_heartbeat VALUES (now())")
        conn.execute("SELECT pg_create_logical_replication_slot('t', 'test_decoding')")
        conn.execute("SELECT pg_drop_replication_slot('t')")
    with psycopg.connect(server.dsn(DATABASE, "paymig_rotation"), autocommit=True) as conn:
        conn.execute("ALTER ROLE paymig_api_clone PASSWORD 'rotated'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM public.payments")
        # PostgreSQL 14/15's CREATEROLE is wider than passwords (see paymig.logins):
        conn.execute("GRANT pg_execute_server_program TO paymig_rotation")
    assert _login_results(server)["login paymig_rotation"] == (
        False, "excess: membership of pg_execute_server_program",
    )  # fmt: skip


@pytest.mark.slow
def test_over_privileged_logins_fail_with_exact_details(
    postgres_factory: Callable[..., LocalPostgres],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = _source(postgres_factory)
    _superuser(server, """
        ALTER ROLE paymig_api REPLICATION CREATEROLE BYPASSRLS;
        GRANT DELETE, TRUNCATE ON public.payments, public.refunds TO paymig_api_rw;
        GRANT INSERT (amount) ON public.payments TO paymig_validation_clone;
        GRANT UPDATE ON public.accounts TO paymig_validation_ro;
        CREATE TABLE public.ledger (id bigint PRIMARY KEY);
    """)  # fmt: skip
    results = _login_results(server)
    assert results["login paymig_api"] == (
        False,
        "excess: CREATEROLE; REPLICATION; BYPASSRLS; DELETE on public.payments, "
        "public.refunds; TRUNCATE on public.payments, public.refunds",
    )
    assert results["login paymig_api_clone"] == (
        False, "excess: DELETE on public.payments, public.refunds; TRUNCATE on "
        "public.payments, public.refunds",
    )  # fmt: skip
    assert results["login paymig_validation"] == (
        False, "missing: SELECT on public.ledger | excess: UPDATE on public.accounts",
    )  # fmt: skip
    assert results["login paymig_validation_clone"] == (
        False, "missing: SELECT on public.ledger | excess: INSERT on public.payments; UPDATE "
        "on public.accounts",
    )  # fmt: skip
    assert results["login paymig_dms"] == (False, "missing: SELECT on public.ledger")
    assert results["group paymig_api_rw"][0] and results["login paymig_rotation"][0]

    # The same through the CLI: exit 1, the details in the JSON document.
    data = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/prod.yaml").read_text())
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(data))
    argv = ["preflight", "--source-dsn", server.dsn(DATABASE, "paymig_validation"),
            "--check-logins", "--config", str(config), "--format", "json"]  # fmt: skip
    code = main(argv)
    document = json.loads(capsys.readouterr().out)
    assert code == 1
    failed = {c["name"]: c["detail"] for c in document["checks"] if not c["ok"]}
    assert failed == {
        "replication_privilege": "paymig_validation has neither REPLICATION nor "
        "rds_replication membership",
        "select_privilege": "paymig_validation cannot SELECT: public.ledger",
        "login paymig_api": results["login paymig_api"][1],
        "login paymig_api_clone": results["login paymig_api_clone"][1],
        "login paymig_dms": "missing: SELECT on public.ledger",
        "login paymig_dms_clone": "missing: SELECT on public.ledger",
        "login paymig_validation": results["login paymig_validation"][1],
        "login paymig_validation_clone": results["login paymig_validation_clone"][1],
    }
    assert main(argv[:-2]) == 1
    text = " ".join(capsys.readouterr().out.split())
    assert "8 check(s) failed: replication_privilege, select_privilege, login paymig_api, " \
        "login paymig_api_clone, login paymig_dms, login paymig_dms_clone, login " \
        "paymig_validation, login paymig_validation_clone" in text  # fmt: skip


@pytest.mark.slow
def test_the_dba_script_run_again_after_a_fence_stops_and_the_fence_holds(
    postgres_factory: Callable[..., LocalPostgres],
) -> None:
    """The script only grants; run after `paymig cutover` fenced the source it would give
    the API its writes back, so its first statement refuses when paymig's roles exist."""
    from paymig.runtime.cutover.database import fence

    server = _source(postgres_factory)
    with psycopg.connect(server.dsn(DATABASE), autocommit=True) as conn:
        revoked = fence(conn, ["paymig_api_rw"])
        assert {(g.privilege, g.table) for g in revoked} >= {("INSERT", "payments")}
        with pytest.raises(psycopg.errors.RaiseException) as refused:
            conn.execute(source_setup_script(DATABASE).sql)
        assert refused.value.diag.message_primary == (
            "paymig's roles exist already: this script is for the first setup only (after a "
            "cutover its grants would lift the fence); compare with paymig preflight "
            "--check-logins instead"
        )
        conn.execute("ROLLBACK")
        row = conn.execute(
            "SELECT has_table_privilege('paymig_api', 'public.payments', 'INSERT')"
        ).fetchone()
        assert row == (False,)


def test_source_sql_prints_or_writes_the_script_for_the_configured_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((repo / "config" / "prod.yaml").read_text(encoding="utf-8"))
    data["replication"]["source"]["database_name"] = "ledger"
    config = tmp_path / "prod.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["source-sql", "--config", str(config)]) == 0
    expected = source_setup_script("ledger").text
    assert capsys.readouterr().out == expected
    output = tmp_path / "out" / "source-logins.sql"
    assert main(["source-sql", "--output", str(output), "--config", str(config)]) == 0
    assert output.read_text(encoding="utf-8") == expected
    assert capsys.readouterr().err == f"wrote {output}: run it on ledger as a superuser\n"
    assert sorted(p.name for p in output.parent.iterdir()) == ["source-logins.sql"]
    blocked = tmp_path / "file"
    blocked.write_text("", encoding="utf-8")
    assert main(["source-sql", "--output", str(blocked / "x.sql"), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"paymig: --output {blocked / 'x.sql'}: cannot write: ") and (
        err.count("\n") == 1
    )
