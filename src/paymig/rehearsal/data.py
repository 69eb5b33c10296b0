"""The rehearsal's data: a payments dataset in the source, replicated to the target.

The dataset is generated inside the source database (``generate_series``), in batches
so that progress can be shown: accounts, payments spread over them with realistic
amounts, currencies, statuses and timestamps, and refunds of the refunded payments.
Every key is a uuid, as in production.

AWS DMS (full load, then CDC) cannot run locally: the emulator creates no replication
instance and moves no data. PostgreSQL logical replication stands in for it: a
publication on the source and a subscription on the target, whose initial copy is the
full load and whose streaming is the CDC.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from paymig.errors import CommandFailedError
from paymig.payments_schema import REPLICATED_TABLES, TABLES, apply_schema

#: Name of the publication and of the subscription (and so of the replication slot).
REPLICATION_NAME = "paymig_rehearsal"
#: The reverse path (target -> source) a cutover starts: publication on the target,
#: subscription on the source (the reverse DMS task's stand-in).
REVERSE_REPLICATION_NAME = "paymig_rehearsal_reverse"

#: Batches the payments are generated in (one progress step each).
BATCHES = 20

_CURRENCIES = "ARRAY['USD','USD','USD','EUR','EUR','GBP','CAD','AUD']"
_STATUSES = "ARRAY['succeeded','succeeded','succeeded','succeeded','succeeded','succeeded'," \
    "'succeeded','pending','failed','refunded']"  # fmt: skip


@dataclass(frozen=True)
class DatasetCounts:
    """Rows in each table of a database."""

    accounts: int
    payments: int
    refunds: int

    @property
    def total(self) -> int:
        """All rows."""
        return self.accounts + self.payments + self.refunds


def create_database(admin_dsn: str, name: str) -> None:
    """Create database `name` on the server of `admin_dsn` unless it exists."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def count_rows(dsn: str) -> DatasetCounts:
    """Count the rows of the three tables."""
    counts = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in TABLES:
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            row = conn.execute(query).fetchone()
            assert row is not None
            counts.append(int(row[0]))
    return DatasetCounts(*counts)


def load_dataset(
    dsn: str, payments: int, *, advance: Callable[[int], None] | None = None
) -> DatasetCounts:
    """Create the schema and generate `payments` payments (plus accounts and refunds).

    `advance(n)` is called after each batch with the payments it added.
    """
    if payments < 1:
        raise CommandFailedError(f"--rows: must be at least 1, got {payments}")
    accounts = max(10, payments // 20)
    with psycopg.connect(dsn, autocommit=True) as conn:
        apply_schema(conn)
        conn.execute(
            "INSERT INTO accounts (display_name, created_at) "
            "SELECT 'Account ' || g, now() - random() * interval '3 years' "
            "FROM generate_series(1, %s) AS g",
            (accounts,),
        )
        step = max(1, -(-payments // BATCHES))
        for start in range(1, payments + 1, step):
            end = min(payments, start + step - 1)
            conn.execute(
                "WITH a AS (SELECT array_agg(id ORDER BY id) AS ids FROM accounts), "
                "p AS (SELECT g, now() - random() * interval '2 years' AS ts, "
                "  a.ids[1 + (g * 7919) %% cardinality(a.ids)] AS account_id "
                "  FROM a, generate_series(%s::int, %s::int) AS g) "
                "INSERT INTO payments (account_id, merchant_id, idempotency_key, amount, "
                "  currency, status, created_at, updated_at, request_fingerprint) "
                "SELECT account_id, 'merchant-' || (g %% 97), 'seed-' || g, "
                "  round((1 + random() * random() * 4999)::numeric, 2), "
                f"  ({_CURRENCIES})[1 + g %% 8], ({_STATUSES})[1 + (g * 31) %% 10], "
                "  ts, ts + random() * interval '2 days', "
                "  encode(sha256(convert_to('seed-' || g, 'UTF8')), 'hex') FROM p",
                (start, end),
            )
            if advance is not None:
                advance(end - start + 1)
        conn.execute(
            "INSERT INTO refunds (payment_id, amount, created_at) "
            "SELECT id, GREATEST(0.01, round(amount * (0.1 + random() * 0.9)::numeric, 2)), "
            "  updated_at + interval '1 hour' FROM payments WHERE status = 'refunded'"
        )
        conn.execute("ANALYZE")
    return count_rows(dsn)


# --------------------------------------------------------------------------- replication


@dataclass(frozen=True)
class ReplicationLag:
    """How far the target is behind the source."""

    bytes: int
    seconds: float


class LogicalReplication:
    """Publication on the source, subscription on the target (the local DMS stand-in)."""

    def __init__(self, source_dsn: str, target_dsn: str) -> None:
        """Describe the two ends; nothing happens until :meth:`start`."""
        self.source_dsn = source_dsn
        self.target_dsn = target_dsn
        self.started = False
        #: Which path runs: set by the rehearsal after each cutover (True) and fallback.
        self.reverse = False

    @property
    def publisher_dsn(self) -> str:
        """The side whose WAL the running path reads (the source, or after cutover Aurora)."""
        return self.target_dsn if self.reverse else self.source_dsn

    @property
    def name(self) -> str:
        """The running path's subscription (its ``application_name`` on the publisher)."""
        return REVERSE_REPLICATION_NAME if self.reverse else REPLICATION_NAME

    def start(self) -> None:
        """Create the schema on the target, then the publication and the subscription.

        Logical replication carries rows, not DDL: the target gets the same schema first,
        as Aurora would from the migration's schema step.
        """
        with psycopg.connect(self.target_dsn, autocommit=True) as target:
            apply_schema(target)
        name = sql.Identifier(REPLICATION_NAME)
        with psycopg.connect(self.source_dsn, autocommit=True) as source:
            source.execute(
                sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
                    name, sql.SQL(", ").join(sql.Identifier(t) for t in REPLICATED_TABLES)
                )
            )
        connection = f"{self.source_dsn} sslmode=prefer application_name={REPLICATION_NAME}"
        with psycopg.connect(self.target_dsn, autocommit=True) as target:
            target.execute(
                sql.SQL("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {}").format(
                    name, sql.Literal(connection), name
                )
            )
        self.started = True

    def initial_copy_done(self) -> bool:
        """Whether every table finished its initial copy (the "full load")."""
        with psycopg.connect(self.target_dsn, autocommit=True) as target:
            row = target.execute(
                "SELECT count(*) FILTER (WHERE srsubstate <> 'r'), count(*) "
                "FROM pg_subscription_rel"
            ).fetchone()
        assert row is not None
        return int(row[0]) == 0 and int(row[1]) == len(REPLICATED_TABLES)

    def wait_initial_copy(self, timeout: float = 300.0) -> float:
        """Wait for the initial copy; return the seconds it took."""
        began = time.monotonic()
        while not self.initial_copy_done():
            if time.monotonic() - began > timeout:
                raise CommandFailedError(f"replication: initial copy not done after {timeout} s")
            time.sleep(0.2)
        return time.monotonic() - began

    def lag(self, conn: psycopg.Connection[Any] | None = None) -> ReplicationLag:
        """The subscription's lag as the source sees it (bytes of WAL, replay delay)."""
        query = (
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint, "
            "COALESCE(EXTRACT(epoch FROM replay_lag), 0)::float8 "
            "FROM pg_stat_replication WHERE application_name = %s"
        )
        if conn is None:
            with psycopg.connect(self.publisher_dsn, autocommit=True) as own:
                row = own.execute(query, (self.name,)).fetchone()
        else:
            row = conn.execute(query, (self.name,)).fetchone()
        if row is None or row[0] is None:
            raise CommandFailedError("replication: the subscription is not connected")
        lag_bytes = max(0, int(row[0]))
        return ReplicationLag(bytes=lag_bytes, seconds=float(row[1]) if lag_bytes else 0.0)

    def wait_caught_up(self, timeout: float = 120.0) -> float:
        """Wait until the target replayed everything the source had written; return seconds."""
        began = time.monotonic()
        with psycopg.connect(self.publisher_dsn, autocommit=True) as source:
            row = source.execute("SELECT pg_current_wal_lsn()::text").fetchone()
            assert row is not None
            goal = str(row[0])
            while True:
                done = source.execute(
                    "SELECT replay_lsn >= %s::pg_lsn FROM pg_stat_replication "
                    "WHERE application_name = %s",
                    (goal, self.name),
                ).fetchone()
                if done is not None and done[0]:
                    return time.monotonic() - began
                if time.monotonic() - began > timeout:
                    raise CommandFailedError(
                        f"replication: target not caught up with {goal} after {timeout} s"
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        """Drop the subscription (and with it the slot on the source). Safe to call twice."""
        if not self.started:
            return
        self.started = False
        try:
            with psycopg.connect(self.target_dsn, autocommit=True, connect_timeout=5) as target:
                target.execute(sql.SQL("DROP SUBSCRIPTION IF EXISTS {}").format(
                    sql.Identifier(REPLICATION_NAME)))  # fmt: skip
            with psycopg.connect(self.source_dsn, autocommit=True, connect_timeout=5) as source:
                source.execute(sql.SQL("DROP SUBSCRIPTION IF EXISTS {}").format(
                    sql.Identifier(REVERSE_REPLICATION_NAME)))  # fmt: skip
        except psycopg.Error:
            pass  # the servers are being stopped anyway


def payments_present(dsn: str, ids: list[str], batch: int = 5000) -> int:
    """How many of the payment ids exist in the database."""
    found = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            row = conn.execute(
                "SELECT count(*) FROM payments WHERE id = ANY(%s::uuid[])", (chunk,)
            ).fetchone()
            assert row is not None
            found += int(row[0])
    return found
