"""One side of a comparison: a PostgreSQL database, its worker pool and its snapshots.

Every session gets the validator's text settings and its load bounds
(:func:`paymig.runtime.validator.sql.settings_query`). Work runs in batches: for a
batch, :meth:`Side.begin_snapshot` exports one snapshot (``REPEATABLE READ, READ
ONLY``) that every worker thread imports, so the whole batch reads one state of the
database; :meth:`Side.release_snapshot` ends it. A snapshot is never held longer than a
batch, so a pass of any length holds back vacuum on production for one batch at most.
Only ``SELECT`` privileges are needed. A replica that cannot export snapshots is read
without a shared one: each query then reads its own, which the re-check after the
grace period makes safe.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from paymig.config.validation import ValidationConfig
from paymig.errors import PaymigError
from paymig.runtime.validator.plan import (
    Aggregate,
    Key,
    KeyRange,
    SamplePlan,
    ScopeRule,
    estimate_rows,
    in_scope,
)
from paymig.runtime.validator.sql import (
    BASE_TABLES_QUERY,
    COLUMNS_QUERY,
    LEADING_INDEX_QUERY,
    PRIMARY_KEY_QUERY,
    TABLE_QUERY,
    TOTAL_SIZE_QUERY,
    TableSpec,
    settings_query,
)
from paymig.runtime.validator.throttle import RowThrottle


class ValidatorError(PaymigError):
    """The comparison could not be carried out (connection, missing table, mismatch)."""


@dataclass(frozen=True)
class Settings:
    """How a validation run behaves; the CLI and the job fill it from options and config."""

    workers: int = 4
    grace_seconds: float = 0.0
    max_keys_reported: int = 100
    range_rows: int = 20_000
    leaf_rows: int = 2_000
    fanout: int = 16
    max_ranges: int = 10_000
    lookup_batch: int = 1_000
    connect_timeout: int = 10
    statement_timeout_seconds: float = 120.0
    rate_limit_rows_per_second: float | None = None
    batch_seconds: float = 60.0

    def __post_init__(self) -> None:
        """Reject settings that cannot work."""
        rate = self.rate_limit_rows_per_second
        checks = {
            "workers": self.workers >= 1,
            "grace_seconds": self.grace_seconds >= 0,
            "max_keys_reported": self.max_keys_reported >= 0,
            "range_rows": self.range_rows >= 1,
            "leaf_rows": self.leaf_rows >= 1,
            "fanout": self.fanout >= 2,
            "max_ranges": self.max_ranges >= 1,
            "lookup_batch": self.lookup_batch >= 1,
            "connect_timeout": self.connect_timeout >= 1,
            "statement_timeout_seconds": self.statement_timeout_seconds > 0,
            "rate_limit_rows_per_second": rate is None or rate > 0,
            "batch_seconds": self.batch_seconds > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValidatorError(f"{name}: invalid value {getattr(self, name)!r}")

    @classmethod
    def from_config(cls, cfg: ValidationConfig, **overrides: Any) -> Settings:
        """Settings from the `validation` config section, with explicit overrides."""
        values: dict[str, Any] = {
            "workers": cfg.workers,
            "grace_seconds": cfg.grace_seconds,
            "max_keys_reported": cfg.max_keys_reported,
            "range_rows": cfg.range_rows,
            "leaf_rows": cfg.leaf_rows,
            "fanout": cfg.fanout,
            "statement_timeout_seconds": cfg.statement_timeout_seconds,
            "rate_limit_rows_per_second": cfg.rate_limit_rows_per_second,
            "batch_seconds": cfg.batch_seconds,
        }
        return cls(**{**values, **overrides})

    @property
    def idle_in_transaction_seconds(self) -> float:
        """How long a session may idle in a transaction: a batch's snapshot, with room."""
        return 2 * (self.batch_seconds + self.statement_timeout_seconds) + 60


_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def error_line(exc: BaseException) -> str:
    """Return the first line of a database error, with any password blanked out."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    text = _PASSWORD.sub(r"\1***", text)
    return _URL_PASSWORD.sub(r"\1***@", text)


#: Starts the transaction that imports the exported snapshot.
_BEGIN = b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


def resolve_scope(conn: psycopg.Connection[Any], rules: Sequence[ScopeRule]) -> list[str]:
    """List ``schema.name`` of every base table in the database that the rules select.

    Each rule is ``(schema, table pattern, action)`` with ``%`` wildcards and action
    ``include`` or ``exclude``; a table is selected when an include rule matches it and
    no exclude rule does. Partitions are left out (their parent covers them).
    """
    rows = conn.execute(BASE_TABLES_QUERY).fetchall()
    return [f"{s}.{t}" for s, t in rows if in_scope(str(s), str(t), rules)]


class Side:
    """One database: a pool of worker connections and, during a batch, a shared snapshot."""

    def __init__(
        self, name: str, dsn: str, settings: Settings, throttle: RowThrottle | None = None
    ) -> None:
        """Describe the side; nothing connects until :meth:`open`."""
        self.name = name
        self._dsn = dsn
        self._settings = settings
        self._throttle = throttle
        self._holder: psycopg.Connection[Any] | None = None
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self.snapshot: str | None = None
        # While a snapshot is held, each worker thread keeps one pooled connection in a
        # transaction that imported it, so a query costs one round trip.
        self._local = threading.local()
        self._held: list[psycopg.Connection[Any]] = []
        self._held_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        """Fix the session's text forms and load bounds; reads are snapshot-consistent."""
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        conn.execute(
            settings_query(
                int(self._settings.statement_timeout_seconds * 1000),
                int(self._settings.idle_in_transaction_seconds * 1000),
            )
        )

    def open(self) -> None:
        """Open the worker pool (one connection per worker, plus one for planning)."""
        if self._pool is not None:
            return
        timeout = self._settings.connect_timeout
        try:
            with psycopg.connect(self._dsn, connect_timeout=timeout):
                pass  # a bad DSN or an unreachable server is reported on one line here
        except psycopg.Error as exc:
            raise ValidatorError(f"{self.name}: cannot connect: {error_line(exc)}") from None
        size = self._settings.workers + 1
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self._dsn,
            min_size=size,
            max_size=size,
            kwargs={"autocommit": True, "connect_timeout": timeout},
            configure=self._configure,
            open=False,
            name=f"paymig-validate-{self.name}",
        )
        try:
            pool.open(wait=True, timeout=max(30.0, 3.0 * timeout))
        except psycopg.Error as exc:
            pool.close()
            raise ValidatorError(f"{self.name}: {error_line(exc)}") from None
        self._pool = pool

    def begin_snapshot(self) -> None:
        """Export a snapshot that every worker of the coming batch reads."""
        try:
            holder = psycopg.connect(
                self._dsn, connect_timeout=self._settings.connect_timeout, autocommit=False
            )
        except psycopg.Error as exc:
            raise ValidatorError(f"{self.name}: cannot connect: {error_line(exc)}") from None
        self._holder = holder
        try:
            self._configure(holder)
            row = holder.execute("SELECT pg_export_snapshot()").fetchone()
            self.snapshot = str(row[0]) if row else None
        except psycopg.errors.FeatureNotSupported:
            # e.g. a replica that cannot export: each query reads its own snapshot.
            self.release_snapshot()
        except psycopg.Error as exc:
            self.release_snapshot()
            raise ValidatorError(f"{self.name}: {error_line(exc)}") from None

    def release_snapshot(self) -> None:
        """End the snapshot; later reads each see the latest committed state.

        Call only while no worker is running a query.
        """
        self.snapshot = None
        with self._held_lock:
            held, self._held = self._held, []
            self._local = threading.local()
        for conn in held:
            with contextlib.suppress(psycopg.Error):  # if broken, the pool replaces it
                conn.rollback()
            if self._pool is not None:
                self._pool.putconn(conn)
        if self._holder is not None:
            with contextlib.suppress(psycopg.Error):
                self._holder.close()
            self._holder = None

    def close(self) -> None:
        """Close every connection. Safe to call twice."""
        self.release_snapshot()
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # ------------------------------------------------------------------ catalog

    def _pool_or_fail(self) -> ConnectionPool[psycopg.Connection[Any]]:
        if self._pool is None:
            raise ValidatorError(f"{self.name}: not connected")
        return self._pool

    def _catalog(self, query: sql.SQL | sql.Composed, params: Sequence[Any] | None) -> list[Any]:
        """Run a catalog query in a transaction of its own."""
        try:
            with self._pool_or_fail().connection() as conn, conn.transaction():
                rows: list[Any] = conn.execute(query, params).fetchall()
                return rows
        except psycopg.Error as exc:
            raise ValidatorError(f"{self.name}: {error_line(exc)}") from None

    def scope(self, rules: Sequence[ScopeRule]) -> list[str]:
        """List the tables of this side that the scope rules select."""
        try:
            with self._pool_or_fail().connection() as conn, conn.transaction():
                return resolve_scope(conn, rules)
        except psycopg.Error as exc:
            raise ValidatorError(f"{self.name}: {error_line(exc)}") from None

    def describe(self, schema: str, name: str) -> tuple[TableSpec, dict[str, str], int, int]:
        """Return the table's spec, column types, row estimate and size in pages.

        Errors name what is missing.
        """
        qualified = f"{schema}.{name}"
        found = self._catalog(TABLE_QUERY, [schema, name])
        if not found:
            raise ValidatorError(f"table {qualified}: not found on {self.name}")
        oid, reltuples, relpages, pages = found[0]
        columns = [(str(n), str(t)) for n, t in self._catalog(COLUMNS_QUERY, [oid])]
        key = [(str(n), str(t)) for n, t in self._catalog(PRIMARY_KEY_QUERY, [oid])]
        if not key:
            raise ValidatorError(f"table {qualified}: has no primary key on {self.name}")
        spec = TableSpec(
            schema=schema,
            name=name,
            columns=tuple(n for n, _ in columns),
            key=tuple(n for n, _ in key),
            key_types=tuple(t for _, t in key),
        )
        estimate = estimate_rows(int(reltuples), int(relpages), int(pages))
        return spec, dict(columns), estimate, int(pages)

    def size(self, schema: str, name: str) -> tuple[int, int]:
        """A table's estimated rows and its bytes on disk (indexes and TOAST included)."""
        _, _, estimate, _ = self.describe(schema, name)
        (total,) = self._catalog(TOTAL_SIZE_QUERY, [schema, name])[0]
        return estimate, int(total)

    def indexed(self, spec: TableSpec, column: str) -> bool:
        """Whether ``column`` leads a valid index of the table."""
        (oid,) = self._catalog(TABLE_QUERY, [spec.schema, spec.name])[0][:1]
        return int(self._catalog(LEADING_INDEX_QUERY, [oid, column])[0][0]) > 0

    # ------------------------------------------------------------------ data

    def _snapshot_connection(
        self, pool: ConnectionPool[psycopg.Connection[Any]]
    ) -> psycopg.Connection[Any]:
        """Return the calling thread's connection inside the exported snapshot."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = pool.getconn()
            with self._held_lock:
                self._held.append(conn)
                self._local.conn = conn
            conn.execute(_BEGIN)
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(self.snapshot)))
        return conn

    def fetch(
        self, spec: TableSpec, query: sql.Composed, params: Sequence[Any], rows: int = 0
    ) -> list[Any]:
        """Run a query (charged ``rows`` against the rate limit) in the batch's snapshot.

        Without a snapshot, the query runs in a fresh transaction of its own.
        """
        pool = self._pool_or_fail()
        if self._throttle is not None:
            self._throttle.acquire(rows)
        result: list[Any]
        try:
            if self.snapshot is not None:
                result = self._snapshot_connection(pool).execute(query, params).fetchall()
                return result
            with pool.connection() as conn, conn.transaction():
                result = conn.execute(query, params).fetchall()
                return result
        except psycopg.Error as exc:
            message = f"{self.name}: table {spec.qualified}: {error_line(exc)}"
            raise ValidatorError(message) from None

    def aggregate(self, spec: TableSpec, bounds: KeyRange, rows: int) -> Aggregate:
        """Return the row count and hash sum of a range (expected to hold ``rows``)."""
        found = self.fetch(spec, *spec.aggregate(bounds), rows=rows)
        count, digest = found[0]
        return Aggregate(int(count), int(digest))

    def buckets(
        self, spec: TableSpec, bounds: KeyRange, edges: Sequence[Key], rows: int
    ) -> list[Aggregate]:
        """Return the count and hash sum of each piece of a range cut at ``edges``."""
        found = {
            int(b): Aggregate(int(c), int(d))
            for b, c, d in self.fetch(spec, *spec.buckets(bounds, edges), rows=rows)
        }
        return [found.get(index, Aggregate(0, 0)) for index in range(len(edges) + 1)]

    def split(
        self, spec: TableSpec, bounds: KeyRange, step: int, rows: int
    ) -> tuple[list[Key], list[Aggregate]]:
        """Cut a range into pieces of ``step`` rows; return the cuts and each piece's sums."""
        found = self.fetch(spec, *spec.split(bounds, step), rows=rows)
        edges = [tuple(row[3:]) for row in found[1:]]
        return edges, [Aggregate(int(row[1]), int(row[2])) for row in found]

    def rows(self, spec: TableSpec, bounds: KeyRange, rows: int) -> dict[Key, int]:
        """Return the row hash by key of every row in a range."""
        found = self.fetch(spec, *spec.rows(bounds), rows=rows)
        return {tuple(row[:-1]): int(row[-1]) for row in found}

    def lookup(self, spec: TableSpec, keys: Sequence[Key]) -> dict[Key, int]:
        """Return the row hash by key of those of ``keys`` that exist."""
        found = self.fetch(spec, *spec.lookup(keys), rows=len(keys))
        return {tuple(row[:-1]): int(row[-1]) for row in found}

    def sample(self, spec: TableSpec, plan: SamplePlan) -> list[Key]:
        """Return an ordered sample of keys."""
        query = spec.sample(plan.method, plan.percent, plan.thin)
        return [tuple(row) for row in self.fetch(spec, *query)]

    def changed(self, spec: TableSpec, column: str, since: str, limit: int) -> list[Key] | int:
        """Keys of the rows changed since ``since``, or their count if above ``limit``."""
        (count,) = self.fetch(spec, *spec.changed_count(column, since))[0]
        if int(count) > limit:
            return int(count)
        found = self.fetch(spec, *spec.changed_keys(column, since), rows=int(count))
        return [tuple(row) for row in found]
