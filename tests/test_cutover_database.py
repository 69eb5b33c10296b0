"""The database steps of a cutover against two real PostgreSQL servers with logical
replication between them (standing in for DMS, which moves rows the same way: in
commit order, without DDL or sequence state)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from paymig.runtime.cutover import database as db
from pg_pair import Pair, replicated_pair

PUBLICATION = "cutover_test"


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with replicated_pair("cutover", PUBLICATION, lambda conn, side: None) as started:
        yield started


@pytest.fixture
def roles(pair: Pair) -> Iterator[None]:
    """The API's group and login, a legacy login with a direct grant, and a bystander."""
    with pair.connect("source") as conn:
        for statement in (
            "CREATE ROLE paymig_api_rw NOLOGIN",
            "CREATE ROLE paymig_api LOGIN IN ROLE paymig_api_rw",
            "CREATE ROLE legacy_app LOGIN",
            "CREATE ROLE auditor LOGIN",
            "GRANT SELECT, INSERT, UPDATE ON accounts, payments, refunds TO paymig_api_rw",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON accounts, payments, refunds TO legacy_app",
            "GRANT SELECT ON accounts, payments, refunds TO auditor",
        ):
            conn.execute(statement)
    yield
    with pair.connect("source") as conn:
        for role in ("paymig_api", "paymig_api_rw", "legacy_app", "auditor", "sneaky"):
            conn.execute(
                sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role))
            ) if conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)
            ).fetchone() else None
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def insert_account(conn: psycopg.Connection[Any]) -> None:
    conn.execute("INSERT INTO accounts (display_name) VALUES ('x')")


def test_fence_revokes_writes_ends_sessions_and_unfence_restores_exactly(
    pair: Pair, roles: None
) -> None:
    held = pair.connect("source", "paymig_api")
    insert_account(held)
    revoked = db.fence(pair.connect("source"), ["paymig_api_rw", "legacy_app", "no_such_role"])
    assert sorted((g.role, g.table, g.privilege) for g in revoked) == sorted(
        [("paymig_api_rw", t, p) for t in ("accounts", "payments", "refunds")
         for p in ("INSERT", "UPDATE")]
        + [("legacy_app", t, p) for t in ("accounts", "payments", "refunds")
           for p in ("INSERT", "UPDATE", "DELETE")]
    )  # fmt: skip
    with pytest.raises(psycopg.OperationalError):
        insert_account(held)  # the open session was ended: it cannot commit after the fence
    for user in ("paymig_api", "legacy_app"):
        with pair.connect("source", user) as conn, pytest.raises(errors.InsufficientPrivilege):
            insert_account(conn)
    with pair.connect("source") as admin:
        expected = admin.execute("SELECT count(*) FROM payments").fetchone()
    with pair.connect("source", "auditor") as conn:  # reads are not fenced
        assert conn.execute("SELECT count(*) FROM payments").fetchone() == expected
    db.prove_fenced(pair.connect("source"), exempt=[])
    assert db.fence(pair.connect("source"), ["paymig_api_rw", "legacy_app"]) == []
    db.unfence(pair.connect("source"), revoked)
    for user in ("paymig_api", "legacy_app"):
        with pair.connect("source", user) as conn:
            insert_account(conn)
    with pair.connect("source") as conn:
        assert db.write_grants(conn, ["paymig_api_rw", "legacy_app"]) == sorted(
            revoked, key=lambda g: (g.role, g.table, g.privilege)
        )


def test_a_fence_is_proved_and_names_every_login_that_could_still_write(
    pair: Pair, roles: None
) -> None:
    with pair.connect("source") as conn:
        conn.execute("CREATE ROLE sneaky LOGIN")
        conn.execute("GRANT INSERT ON payments TO sneaky")
        db.fence(conn, ["paymig_api_rw", "legacy_app"])
        with pytest.raises(db.CutoverDatabaseError) as caught:
            db.prove_fenced(conn, exempt=[])
        assert str(caught.value) == (
            "fence: these logins can still write the payment tables: sneaky"
        )
        db.prove_fenced(conn, exempt=["sneaky"])


def test_a_marker_proves_everything_before_it_arrived(pair: Pair) -> None:
    with pair.connect("source") as source, pair.connect("target") as target:
        for _ in range(50):
            insert_account(source)
        before = source.execute("SELECT count(*) FROM accounts").fetchone()
        marker = db.write_marker(source, "cutover")
        waited = db.wait_for_marker(target, marker, timeout_seconds=30)
        assert waited >= 0
        # Everything committed before the marker is on the target once the marker is.
        assert target.execute("SELECT count(*) FROM accounts").fetchone() == before


def test_a_marker_that_cannot_arrive_times_out_in_one_line(pair: Pair) -> None:
    with pair.connect("target") as target:
        target.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(sql.Identifier(PUBLICATION)))
        try:
            with pair.connect("source") as source:
                marker = db.write_marker(source, "cutover")
            ticks = iter(range(100))
            with pytest.raises(db.CutoverDatabaseError) as caught:
                db.wait_for_marker(
                    target, marker, timeout_seconds=3, clock=lambda: float(next(ticks)),
                    sleep=lambda _: None,
                )  # fmt: skip
            assert str(caught.value) == (
                f"drain: marker {marker} did not arrive within 3 s (replication stopped or "
                "lagging): nothing was switched"
            )
        finally:
            target.execute(
                sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(sql.Identifier(PUBLICATION))
            )
        db.wait_for_marker(target, marker, timeout_seconds=30)  # arrives once enabled


def test_sequences_move_past_the_old_writer_never_backwards(pair: Pair) -> None:
    with pair.connect("source") as source, pair.connect("target") as target:
        for conn in (source, target):
            conn.execute("CREATE SEQUENCE IF NOT EXISTS invoice_no")
            conn.execute("CREATE SEQUENCE IF NOT EXISTS ahead_no")
        source.execute("SELECT setval('invoice_no', 500)")
        source.execute("SELECT setval('ahead_no', 5)")
        target.execute("SELECT setval('ahead_no', 10000)")
        synced = {
            s.name: (s.source_value, s.target_value) for s in db.sync_sequences(source, target, 100)
        }
        assert synced == {"public.ahead_no": (5, 10000), "public.invoice_no": (500, 600)}
        assert target.execute("SELECT nextval('invoice_no')").fetchone() == (601,)
        source.execute("CREATE SEQUENCE only_on_source")
        try:
            with pytest.raises(db.CutoverDatabaseError) as caught:
                db.sync_sequences(source, target, 100)
            assert str(caught.value) == (
                "sequences: public.only_on_source is missing on the new writer"
            )
        finally:
            source.execute("DROP SEQUENCE only_on_source")


def test_slot_is_created_once_and_keeps_its_position(pair: Pair) -> None:
    with pair.connect("target") as target:
        first = db.ensure_slot(target, "paymig_reverse_test", "pgoutput")
        insert_account(target)
        assert db.ensure_slot(target, "paymig_reverse_test", "pgoutput") == first
        with pytest.raises(db.CutoverDatabaseError) as caught:
            db.ensure_slot(target, "paymig_reverse_test", "test_decoding")
        assert str(caught.value) == (
            "slot paymig_reverse_test: exists with plugin pgoutput, not test_decoding; drop it first"
        )
        assert db.drop_slot(target, "paymig_reverse_test") is True
        assert db.drop_slot(target, "paymig_reverse_test") is False


def test_the_slot_a_login_reads_is_found_exactly(pair: Pair) -> None:
    """Gap 3b of issue 17: the slot DMS created for itself (a name DMS chooses) is the
    one a session of the DMS source login holds; pg_recvlogical stands in for DMS."""
    recv = shutil.which("pg_recvlogical") or "/usr/lib/postgresql/15/bin/pg_recvlogical"
    with pair.connect("source") as source:
        source.execute("CREATE ROLE paymig_dms_reader LOGIN REPLICATION")
        db.ensure_slot(source, "dms_own_slot_x1", "test_decoding")
        db.ensure_slot(source, "someone_elses", "test_decoding")
        assert db.slots_held_by(source, ["paymig_dms_reader"]) == []
    dsn = pair.source.dsn("postgres", "paymig_dms_reader")
    reader = subprocess.Popen(
        [recv, "-d", dsn, "--slot", "dms_own_slot_x1", "--start", "-f", "/dev/null"]
    )
    try:
        with pair.connect("source") as source:
            for _ in range(100):
                if db.slots_held_by(source, ["paymig_dms_reader"]):
                    break
                time.sleep(0.1)
            assert db.slots_held_by(source, ["paymig_dms_reader"]) == ["dms_own_slot_x1"]
    finally:
        reader.terminate()
        reader.wait(10)
    with pair.connect("source") as source:
        for slot in ("dms_own_slot_x1", "someone_elses"):
            for _ in range(50):
                if db.drop_slot(source, slot):
                    break
                time.sleep(0.1)
        source.execute("DROP ROLE paymig_dms_reader")
