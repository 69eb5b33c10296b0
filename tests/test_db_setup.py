"""The Aurora setup, the foreign-key finalization and the schema verification, against
real PostgreSQL servers.

Each server stands in for Aurora as closely as a local PostgreSQL 15 can:

* the setup runs as ``aurora_master``, a ``CREATEROLE`` login that owns the database and
  is not a superuser, like the RDS master user (so every statement the plan relies on is
  tried without superuser powers);
* ``rds_replication`` is created as a plain NOLOGIN role, standing in for RDS's own;
* pgaudit is not installed on this machine (no ``pgaudit.control`` under the server's
  extension folder), so the setup runs with ``aurora=False``, which skips only
  ``CREATE EXTENSION pgaudit`` and the master's per-role ``pgaudit.log``; the planned
  statements for Aurora are checked in tests/test_logins.py;
* the paymig users must authenticate with SCRAM (``pg_hba.conf`` is edited for them), so
  the verifiers the setup sends are proven to work as passwords.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import errors

from paymig.local.postgres import LocalPostgres
from paymig.logins import CONTROL_SCHEMA, HEARTBEAT_SCHEMA, LOGINS, user_names
from paymig.payments_schema import CONSTRAINTS, TABLES, apply_schema
from paymig.runtime.constraints import (
    ConstraintError,
    FinalizeReport,
    finalize_constraints,
    read_constraints,
    verify_schema,
)
from paymig.runtime.cutover import database as cutover_db
from paymig.runtime.cutover.steps import api_write_grants
from paymig.runtime.db_setup import DbSetupError, setup_aurora
from paymig.runtime.login_checks import check_logins

pytestmark = pytest.mark.slow

MASTER = "aurora_master"
DATABASE = "payments"
ACCOUNT = "00000000-0000-0000-0000-00000000000a"
PAYMENT = "00000000-0000-0000-0000-0000000000b1"
MISSING_ACCOUNT = "00000000-0000-0000-0000-0000000000ff"
MISSING_PAYMENT = "00000000-0000-0000-0000-0000000000fe"
FINGERPRINT = "a" * 64


class Aurora:
    """A local server prepared as an Aurora stand-in, with the logins' passwords."""

    def __init__(self, server: LocalPostgres) -> None:
        self.server = server
        self.passwords = {u: f"pw-{secrets.token_hex(8)}" for u in user_names("aurora")}
        with self.superuser() as conn:
            conn.execute(f"CREATE ROLE {MASTER} LOGIN CREATEROLE")
            conn.execute(f"CREATE DATABASE {DATABASE} OWNER {MASTER}")
            conn.execute("CREATE ROLE rds_replication NOLOGIN")
        self._require_scram()

    def _require_scram(self) -> None:
        """Make the paymig users authenticate with a password (first pg_hba line wins)."""
        assert self.server.directory is not None
        hba = self.server.directory / "data" / "pg_hba.conf"
        users = ",".join(user_names("aurora"))
        hba.write_text(f"host all {users} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        with self.superuser() as conn:
            conn.execute("SELECT pg_reload_conf()")

    @contextmanager
    def superuser(self, dbname: str = "postgres") -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(self.server.dsn(dbname=dbname), autocommit=True) as conn:
            yield conn

    @contextmanager
    def master(self) -> Iterator[psycopg.Connection[Any]]:
        with psycopg.connect(self.server.dsn(DATABASE, MASTER), autocommit=True) as conn:
            yield conn

    @contextmanager
    def login(self, user: str, password: str | None = None) -> Iterator[psycopg.Connection[Any]]:
        dsn = self.server.dsn(DATABASE, user, password=password or self.passwords[user])
        with psycopg.connect(dsn, autocommit=True) as conn:
            yield conn

    def setup(self, passwords: dict[str, str] | None = None) -> Any:
        with self.master() as conn:
            return setup_aurora(
                conn, self.passwords if passwords is None else passwords, aurora=False
            )


@pytest.fixture
def aurora(postgres_factory: Callable[..., LocalPostgres]) -> Aurora:
    return Aurora(postgres_factory("aurora-standin"))


def _refused(conn: psycopg.Connection[Any], statement: str) -> str:
    """Run a statement that must be refused for lack of privilege; return the message."""
    with pytest.raises(errors.InsufficientPrivilege) as info:
        conn.execute(statement)
    return str(info.value.diag.message_primary)


_SNAPSHOT = [
    "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, "
    "rolbypassrls, rolinherit, rolpassword FROM pg_authid "
    "WHERE rolname LIKE 'paymig%' ORDER BY 1",
    "SELECT roleid::regrole::text, member::regrole::text FROM pg_auth_members "
    "WHERE member::regrole::text LIKE ANY (ARRAY['paymig%', 'aurora_master']) "
    "OR roleid::regrole::text LIKE 'paymig%' ORDER BY 1, 2",
    "SELECT ARRAY(SELECT unnest(datacl)::text ORDER BY 1) FROM pg_database "
    "WHERE datname = 'payments'",
    "SELECT nspname, ARRAY(SELECT unnest(nspacl)::text ORDER BY 1) FROM pg_namespace "
    "WHERE nspname IN ('public', 'awsdms_control', 'awsdms_heartbeat') ORDER BY 1",
    "SELECT relname, ARRAY(SELECT unnest(relacl)::text ORDER BY 1) FROM pg_class "
    "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1",
    "SELECT defaclrole::regrole::text, defaclnamespace::regnamespace::text, "
    "defaclobjtype::text, ARRAY(SELECT unnest(defaclacl)::text ORDER BY 1) "
    "FROM pg_default_acl ORDER BY 1, 2, 3",
]


def _snapshot(aurora: Aurora) -> list[list[tuple[Any, ...]]]:
    """Roles, memberships and every ACL the setup touches, in a stable order."""
    with aurora.superuser(DATABASE) as conn:
        return [conn.execute(query).fetchall() for query in _SNAPSHOT]


# --------------------------------------------------------------------------- setup


def _setup_checks_after_drift(aurora: Aurora) -> bool:
    """Whether the Aurora login checks pass as the drift left things."""
    with aurora.master() as conn:
        return all(check.ok for check in check_logins(conn, "aurora"))


def test_setup_twice_converges_and_keeps_rotated_passwords(aurora: Aurora) -> None:
    first = aurora.setup()
    assert first.created == (
        "paymig_api_rw", "paymig_api", "paymig_api_clone",
        "paymig_dms_target_rw", "paymig_dms_target", "paymig_dms_target_clone",
        "paymig_validation_ro", "paymig_validation", "paymig_validation_clone",
        "paymig_dms_reverse_ro", "paymig_dms_reverse", "paymig_dms_reverse_clone",
    )  # fmt: skip
    assert first.ok and len(first.checks) == 12
    after_first = _snapshot(aurora)
    assert after_first[1][-1] == ("rds_replication", "paymig_dms_reverse_clone")
    assert not [row for row in after_first[1] if row[1] == MASTER]  # borrowed, given back

    second = aurora.setup(passwords={})
    assert (second.created, second.passwords_set) == ((), ())
    assert _snapshot(aurora) == after_first

    # Drift by hand, and a rotation of paymig_api's password; a third run undoes the drift
    # and keeps the rotated password.
    with aurora.superuser(DATABASE) as conn:
        conn.execute("GRANT DELETE, TRUNCATE ON public.payments TO paymig_api_rw")
        conn.execute("GRANT pg_write_all_data TO paymig_validation")
        conn.execute("CREATE ROLE legacy_app LOGIN IN ROLE paymig_dms_target_rw")
        conn.execute("ALTER ROLE paymig_api_clone CREATEDB")
        conn.execute("GRANT CREATE ON SCHEMA public TO paymig_validation_ro")
        conn.execute("ALTER ROLE paymig_api PASSWORD 'rotated-password'")
    assert not _setup_checks_after_drift(aurora)
    assert aurora.setup(passwords={}).ok
    snapshot = _snapshot(aurora)
    rotated = [row for row in snapshot[0] if row[0] == "paymig_api"]
    assert rotated[0][-1] != after_first[0][0][-1]
    assert [s for i, s in enumerate(snapshot) if i != 0] == after_first[1:]
    assert [r[:-1] for r in snapshot[0]] == [r[:-1] for r in after_first[0]]
    with aurora.login("paymig_api", "rotated-password") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("paymig_api",)


def test_setup_needs_a_password_for_a_new_user(aurora: Aurora) -> None:
    with pytest.raises(DbSetupError) as info:
        aurora.setup(passwords={"paymig_api": "x"})
    assert str(info.value) == "passwords: paymig_api_clone does not exist yet and has no password"
    with aurora.superuser() as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'paymig%'"
        ).fetchone() == (0,)


def test_a_refused_statement_rolls_everything_back_in_one_line(aurora: Aurora) -> None:
    with aurora.superuser() as conn:
        conn.execute("DROP ROLE rds_replication")
    with pytest.raises(DbSetupError) as info:
        aurora.setup()
    assert str(info.value) == 'aurora setup: role "rds_replication" does not exist'
    with aurora.superuser(DATABASE) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'paymig%'"
        ).fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('public.payments')").fetchone() == (None,)


def test_setup_commits_on_its_own_and_refuses_an_open_transaction(aurora: Aurora) -> None:
    dsn = aurora.server.dsn(DATABASE, MASTER)
    with psycopg.connect(dsn) as conn:  # not autocommit
        assert setup_aurora(conn, aurora.passwords, aurora=False).ok
        conn.execute("SELECT 1")
        with pytest.raises(
            DbSetupError, match=r"^aurora setup: the connection is inside a transaction$"
        ):
            setup_aurora(conn, {}, aurora=False)
    with aurora.login("paymig_api") as conn:  # committed, whatever the caller does next
        assert conn.execute("SELECT current_user").fetchone() == ("paymig_api",)


def test_wrong_password_is_refused(aurora: Aurora) -> None:
    aurora.setup()
    with (
        pytest.raises(psycopg.OperationalError, match="password authentication failed"),
        aurora.login("paymig_api", "not-the-password"),
    ):
        pass


# --------------------------------------------------------------------------- privileges

_ACCOUNT_SQL = f"INSERT INTO public.accounts (id, display_name) VALUES ('{ACCOUNT}', 'A')"
_PAYMENT_SQL = (
    "INSERT INTO public.payments (id, account_id, merchant_id, idempotency_key, amount, "
    f"currency, request_fingerprint) VALUES ('{{id}}', '{{account}}', 'm-1', '{{key}}', "
    f"12.50, 'EUR', '{FINGERPRINT}')"
)


def _payment(payment_id: str, key: str, account: str = ACCOUNT) -> str:
    return _PAYMENT_SQL.format(id=payment_id, account=account, key=key)


def _unfence_api(aurora: Aurora) -> None:
    """What `paymig cutover`'s unfence step does on Aurora (as the master)."""
    with aurora.master() as conn:
        cutover_db.unfence(conn, api_write_grants("aurora"))


def _api_writes(aurora: Aurora) -> bool:
    """Whether the API's login may insert a payment on Aurora now."""
    with aurora.login("paymig_api") as conn:
        try:
            with conn.transaction():
                conn.execute(_payment(MISSING_PAYMENT, "k-probe"))
                raise _Rollback
        except errors.InsufficientPrivilege:
            return False
        except _Rollback:
            return True


class _Rollback(Exception):
    """Undo a probe write."""


def test_setup_never_gives_the_api_writes_and_never_lifts_a_fence(aurora: Aurora) -> None:
    """Pins gap 2 of issue 17: the setup re-applied the API's grants on every run, so an
    apply after a fallback (Aurora fenced for the API) let the API write to Aurora while
    the source took the writes. Writes on Aurora now come only from the cutover."""
    report = aurora.setup()
    assert report.ok, [c.detail for c in report.checks if not c.ok]
    with aurora.login("paymig_api") as conn:
        assert conn.execute("SELECT count(*) FROM public.payments").fetchone() == (0,)
    with aurora.master() as conn:
        conn.execute(_ACCOUNT_SQL)
    assert _api_writes(aurora) is False  # before any cutover
    _unfence_api(aurora)
    assert _api_writes(aurora) is True
    assert aurora.setup().ok  # re-run after cutover: the writes stay (no outage)
    assert _api_writes(aurora) is True
    with aurora.master() as conn:  # a fallback's fence
        revoked = cutover_db.fence(conn, ["paymig_api_rw"])
    assert {(g.table, g.privilege) for g in revoked} == {
        (t, p) for t in TABLES for p in ("INSERT", "UPDATE")
    }
    report = aurora.setup()  # an apply after the fallback
    assert report.ok, [c.detail for c in report.checks if not c.ok]
    assert _api_writes(aurora) is False


def test_login_check_refuses_half_given_cutover_writes(aurora: Aurora) -> None:
    aurora.setup()
    with aurora.master() as conn:
        conn.execute("GRANT INSERT ON public.payments TO paymig_api_rw")
        failed = {c.name: c.detail for c in check_logins(conn, "aurora") if not c.ok}
    half = "missing: INSERT on public.accounts, public.refunds"
    assert failed == {"login paymig_api": half, "login paymig_api_clone": half}


def test_api_and_validation_logins_can_do_exactly_their_part(aurora: Aurora) -> None:
    aurora.setup()
    _unfence_api(aurora)  # the API writes on Aurora once the writes are cut over
    for user in ("paymig_api", "paymig_api_clone"):
        with aurora.login(user) as conn:
            if user == "paymig_api":
                conn.execute(_ACCOUNT_SQL)
                conn.execute(_payment(PAYMENT, "k-1"))
            conn.execute(
                "UPDATE public.payments SET status = 'succeeded' WHERE id = %s", (PAYMENT,)
            )
            assert conn.execute("SELECT count(*) FROM public.payments").fetchone() == (1,)
            assert (
                _refused(conn, "DELETE FROM public.payments")
                == "permission denied for table payments"
            )
            assert (
                _refused(conn, "TRUNCATE public.refunds") == "permission denied for table refunds"
            )
            assert (
                _refused(conn, "CREATE TABLE public.x (i int)")
                == "permission denied for schema public"
            )
            assert _refused(conn, "CREATE TEMP TABLE x (i int)") == (
                'permission denied to create temporary tables in database "payments"'
            )
            assert _refused(conn, "SELECT * FROM awsdms_control.nothing") == (
                "permission denied for schema awsdms_control"
            )
    for user in ("paymig_validation", "paymig_validation_clone"):
        with aurora.login(user) as conn:
            assert conn.execute("SELECT count(*) FROM public.payments").fetchone() == (1,)
            assert _refused(conn, _payment(MISSING_PAYMENT, "k-2")) == (
                "permission denied for table payments"
            )
            assert _refused(conn, "UPDATE public.accounts SET display_name = 'B'") == (
                "permission denied for table accounts"
            )
            assert (
                _refused(conn, "DELETE FROM public.refunds")
                == "permission denied for table refunds"
            )


def test_dms_logins_write_where_they_must_and_the_clone_takes_over(aurora: Aurora) -> None:
    aurora.setup()
    with aurora.login("paymig_dms_target") as conn:
        conn.execute(_ACCOUNT_SQL)
        conn.execute(_payment(PAYMENT, "k-1"))
        conn.execute("UPDATE public.payments SET amount = 13 WHERE id = %s", (PAYMENT,))
        conn.execute(_payment(MISSING_PAYMENT, "k-2"))
        conn.execute("DELETE FROM public.payments WHERE id = %s", (MISSING_PAYMENT,))
        # DMS's control tables, created by the user DMS logs in as.
        conn.execute("CREATE TABLE awsdms_control.awsdms_status (task_name text, status text)")
        conn.execute("INSERT INTO awsdms_control.awsdms_status VALUES ('t', 'FULL LOAD')")
        assert _refused(conn, "CREATE TABLE public.awsdms_status (i int)") == (
            "permission denied for schema public"
        )
        assert _refused(conn, "TRUNCATE public.payments") == "permission denied for table payments"
        assert (
            _refused(conn, "CREATE SCHEMA dms_other") == "permission denied for database payments"
        )
    # After a rotation DMS logs in as the clone, which must keep using those tables.
    with aurora.login("paymig_dms_target_clone") as conn:
        conn.execute("UPDATE awsdms_control.awsdms_status SET status = 'CDC'")
        conn.execute("DELETE FROM awsdms_control.awsdms_status WHERE status = 'x'")
        conn.execute("CREATE TABLE awsdms_control.awsdms_history (at timestamptz)")
        assert conn.execute("SELECT status FROM awsdms_control.awsdms_status").fetchall() == [
            ("CDC",)
        ]
    with aurora.login("paymig_dms_target") as conn:
        conn.execute("INSERT INTO awsdms_control.awsdms_history VALUES (now())")
    with aurora.login("paymig_dms_reverse_clone") as conn:
        assert conn.execute("SELECT count(*) FROM public.payments").fetchone() == (1,)
        assert conn.execute("SELECT pg_has_role('rds_replication', 'MEMBER')").fetchone() == (True,)
        conn.execute(
            "CREATE TABLE awsdms_heartbeat.awsdms_heartbeat (hearbeat_timestamp timestamptz)"
        )
        assert _refused(conn, "UPDATE public.payments SET amount = 1") == (
            "permission denied for table payments"
        )
        assert _refused(conn, "CREATE TABLE awsdms_control.t (i int)") == (
            "permission denied for schema awsdms_control"
        )
    with aurora.login("paymig_validation") as conn:
        assert _refused(conn, "SELECT * FROM awsdms_control.awsdms_status") == (
            "permission denied for schema awsdms_control"
        )


def test_every_aurora_login_passes_its_checks_after_setup(aurora: Aurora) -> None:
    aurora.setup()
    with aurora.login("paymig_validation") as conn:
        results = check_logins(conn, "aurora")
    assert [(r.name, r.ok) for r in results if not r.ok] == []
    details = {r.name: r.detail for r in results}
    assert len(results) == 12
    assert details["login paymig_dms_target_clone"] == (
        "paymig_dms_target_clone: exactly what it needs (SELECT, INSERT, UPDATE, DELETE on "
        "the payment tables; CREATE on schema awsdms_control; member of paymig_dms_target_rw)"
    )
    assert details["login paymig_dms_reverse"] == (
        "paymig_dms_reverse: exactly what it needs (SELECT on the payment tables; CREATE on "
        "schema awsdms_heartbeat; member of paymig_dms_reverse_ro, rds_replication)"
    )


# --------------------------------------------------------------------------- constraints


def _foreign_keys(aurora: Aurora) -> list[tuple[str, bool]]:
    with aurora.superuser(DATABASE) as conn:
        return conn.execute(
            "SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' ORDER BY 1"
        ).fetchall()


def test_foreign_keys_absent_before_finalize_and_valid_after(aurora: Aurora) -> None:
    aurora.setup()
    assert _foreign_keys(aurora) == []
    with aurora.master() as conn:
        assert verify_schema(conn, foreign_keys=False).ok
        assert verify_schema(conn).missing_constraints == (
            "payments_account_id_fkey (FOREIGN KEY on payments(account_id))",
            "refunds_payment_id_fkey (FOREIGN KEY on refunds(payment_id))",
        )
    # A parallel full load may write children before parents: nothing blocks it.
    with aurora.login("paymig_dms_target") as conn:
        conn.execute("INSERT INTO public.refunds (payment_id, amount) VALUES (%s, 1)", (PAYMENT,))
        conn.execute(_payment(PAYMENT, "k-1"))
        conn.execute(_ACCOUNT_SQL)
    with aurora.master() as conn:
        assert finalize_constraints(conn) == FinalizeReport(
            added=("payments_account_id_fkey", "refunds_payment_id_fkey"),
            validated=("payments_account_id_fkey", "refunds_payment_id_fkey"),
            already_valid=(),
        )
        assert verify_schema(conn).ok
        assert finalize_constraints(conn) == FinalizeReport(
            (), (), ("payments_account_id_fkey", "refunds_payment_id_fkey")
        )
    assert _foreign_keys(aurora) == [
        ("payments_account_id_fkey", True),
        ("refunds_payment_id_fkey", True),
    ]
    _unfence_api(aurora)  # the API writes on Aurora after the cutover
    with aurora.login("paymig_api") as conn, pytest.raises(errors.ForeignKeyViolation):
        conn.execute(_payment(MISSING_PAYMENT, "k-2", account=MISSING_ACCOUNT))


def test_verify_schema_names_orphans_and_dropped_objects_exactly(aurora: Aurora) -> None:
    aurora.setup()
    refunds = ["00000000-0000-0000-0000-0000000000c1", "00000000-0000-0000-0000-0000000000c2",
               "00000000-0000-0000-0000-0000000000c3"]  # fmt: skip
    orphan_payment = "00000000-0000-0000-0000-0000000000b2"
    with aurora.login("paymig_dms_target") as conn:
        conn.execute(_ACCOUNT_SQL)
        conn.execute(_payment(PAYMENT, "k-1"))
        conn.execute(_payment(orphan_payment, "k-2", account=MISSING_ACCOUNT))
        conn.execute("INSERT INTO public.refunds (id, payment_id, amount) VALUES "
                     f"('{refunds[0]}', '{PAYMENT}', 1), ('{refunds[1]}', '{MISSING_PAYMENT}', 1), "
                     f"('{refunds[2]}', '{MISSING_PAYMENT}', 2)")  # fmt: skip
    with aurora.master() as conn:
        conn.execute(
            "ALTER TABLE public.payments DROP CONSTRAINT payments_merchant_idempotency_key"
        )
        conn.execute("DROP INDEX public.refunds_payment_id_idx")
        report = verify_schema(conn, orphan_limit=1)
        assert report.problems() == [
            "missing constraint payments_merchant_idempotency_key (UNIQUE on "
            "payments(merchant_id, idempotency_key))",
            "missing constraint payments_account_id_fkey (FOREIGN KEY on payments(account_id))",
            "missing constraint refunds_payment_id_fkey (FOREIGN KEY on refunds(payment_id))",
            "missing index refunds_payment_id_idx on refunds",
            f"payments_account_id_fkey: payments rows without a parent: id={orphan_payment} "
            f"account_id={MISSING_ACCOUNT}",
            f"refunds_payment_id_fkey: refunds rows without a parent: id={refunds[1]} "
            f"payment_id={MISSING_PAYMENT} (and more; first 1 shown)",
        ]
        assert not report.ok
        with pytest.raises(ConstraintError) as info:
            finalize_constraints(conn)
        assert str(info.value) == (
            f"payments_account_id_fkey: payments rows without a parent: id={orphan_payment} "
            f"account_id={MISSING_ACCOUNT}; payments_account_id_fkey stays NOT VALID (new rows "
            "are checked)"
        )
        assert verify_schema(conn).not_valid_constraints == (
            "payments_account_id_fkey (FOREIGN KEY on payments(account_id))",
        )
        # Fix the data and run it again: the first key is only validated now.
        conn.execute("DELETE FROM public.refunds WHERE payment_id = %s", (MISSING_PAYMENT,))
        conn.execute("DELETE FROM public.payments WHERE id = %s", (orphan_payment,))
        assert finalize_constraints(conn) == FinalizeReport(
            added=("refunds_payment_id_fkey",),
            validated=("payments_account_id_fkey", "refunds_payment_id_fkey"),
            already_valid=(),
        )


def test_finalize_refusals_are_one_line(aurora: Aurora) -> None:
    aurora.setup()
    with aurora.master() as conn:
        conn.execute(
            "ALTER TABLE public.payments ADD CONSTRAINT payments_account_id_fkey CHECK (true)"
        )
        with pytest.raises(ConstraintError) as info:
            finalize_constraints(conn)
    assert str(info.value) == (
        'payments_account_id_fkey: cannot add it: constraint "payments_account_id_fkey" for '
        'relation "payments" already exists'
    )
    with (
        aurora.master() as conn,
        conn.transaction(),
        pytest.raises(ConstraintError, match="inside a transaction"),
    ):
        finalize_constraints(conn)


def test_finalize_gives_up_on_a_held_lock_without_changing_anything(aurora: Aurora) -> None:
    aurora.setup()
    with aurora.master() as holder, holder.transaction():
        holder.execute("LOCK TABLE public.accounts IN ACCESS EXCLUSIVE MODE")
        with aurora.master() as conn, pytest.raises(ConstraintError) as info:
            finalize_constraints(conn, lock_timeout="50ms")
    assert str(info.value) == (
        "payments_account_id_fkey: could not lock payments and accounts within 50ms (a long "
        "transaction holds them); nothing changed, run it again"
    )
    assert _foreign_keys(aurora) == []


def test_pgaudit_is_absent_here_so_the_setup_is_told_not_aurora(aurora: Aurora) -> None:
    with aurora.master() as conn:
        available = conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'pgaudit'"
        ).fetchone()
        assert available == (0,)
        with pytest.raises(DbSetupError) as info:
            setup_aurora(conn, aurora.passwords)  # aurora=True: CREATE EXTENSION runs
    assert str(info.value).startswith("aurora setup: ")
    assert "pgaudit" in str(info.value)
    assert "\n" not in str(info.value)


def test_login_and_schema_names_are_not_sql_keywords(aurora: Aurora) -> None:
    names = {role for logins in LOGINS.values() for login in logins for role in login.roles}
    names |= {CONTROL_SCHEMA, HEARTBEAT_SCHEMA, "public", *TABLES}
    with aurora.superuser() as conn:
        keywords = {row[0] for row in conn.execute("SELECT word FROM pg_get_keywords()")}
    assert sorted(names & keywords) == []


def test_setup_then_finalize_ends_in_exactly_the_full_model(aurora: Aurora) -> None:
    aurora.setup()
    with aurora.master() as conn:
        finalize_constraints(conn)
        staged = read_constraints(conn)
    with aurora.superuser() as conn:
        conn.execute("CREATE DATABASE direct")
    with aurora.superuser("direct") as conn:
        apply_schema(conn)
        direct = read_constraints(conn)
    expected = {(c.name, c.table, c.kind, c.columns) for c in CONSTRAINTS}
    assert set(staged) == set(direct) == expected
    assert all(staged.values()) and all(direct.values())
