"""The validator's shell: two PostgreSQL sides, a thread per worker, the compare loop.

How a table is compared:

1. Both sides describe the table from the catalog; columns are matched by name and the
   primary keys must agree, otherwise the run stops with an error naming the table.
2. The table is cut into top-level key ranges at quantiles of a ``TABLESAMPLE SYSTEM``
   key sample (so skewed, uuid, text and composite keys split evenly).
3. For each range, both sides compute ``count(*)`` and the exact sum of 64-bit row
   hashes at the same time; only these two numbers cross the network. (How a row is
   hashed: :mod:`paymig.runtime.validator.sql`.)
4. A range whose aggregates differ is split ``fanout`` ways at keys taken from the
   larger side, until it is small enough to fetch (key, row hash) pairs from both sides
   and classify every key exactly.
5. After ``grace_seconds``, the keys found differing are looked up again on both sides
   in fresh snapshots (source first, then target); only keys that still differ are
   reported. Replication in flight is thereby not reported as corruption.

Every read of the first pass runs in one exported snapshot per side
(``REPEATABLE READ, READ ONLY`` plus ``SET TRANSACTION SNAPSHOT``), so all workers see
the same state of each database. Only ``SELECT`` privileges are needed.

Memory is bounded: the number of top-level ranges is capped, work in flight is bounded
by the worker count, leaf ranges are small, and candidate keys spill to disk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from paymig.errors import PaymigError
from paymig.runtime.validator.plan import (
    Aggregate,
    Key,
    KeyRange,
    Kind,
    SamplePlan,
    ScopeRule,
    Step,
    classify,
    column_mismatch,
    decide,
    estimate_rows,
    in_scope,
    quantiles,
    sample_plan,
    segment_count,
    split_range,
    split_step,
)
from paymig.runtime.validator.report import Report, TableReport
from paymig.runtime.validator.spool import KeySpool
from paymig.runtime.validator.sql import (
    BASE_TABLES_QUERY,
    COLUMNS_QUERY,
    PRIMARY_KEY_QUERY,
    SETTINGS_QUERY,
    TABLE_QUERY,
    VALUE_HASH_TYPES,
    TableSpec,
)

T = TypeVar("T")
R = TypeVar("R")

#: Sampled keys per top-level range: more gives evener ranges, at the cost of memory.
SAMPLE_KEYS_PER_RANGE = 4


class ValidatorError(PaymigError):
    """The comparison could not be carried out (connection, missing table, mismatch)."""


@dataclass(frozen=True)
class Settings:
    """How a validation run behaves; the CLI fills it from options and config."""

    workers: int = 4
    grace_seconds: float = 0.0
    max_keys_reported: int = 100
    range_rows: int = 5_000
    leaf_rows: int = 1_000
    fanout: int = 16
    max_ranges: int = 10_000
    lookup_batch: int = 1_000
    connect_timeout: int = 10

    def __post_init__(self) -> None:
        """Reject settings that cannot work."""
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
        }
        for name, ok in checks.items():
            if not ok:
                raise ValidatorError(f"{name}: invalid value {getattr(self, name)!r}")


class Progress(Protocol):
    """Receives progress of the first pass, one table at a time."""

    def start(self, table: str, ranges: int) -> None:
        """Note that a table's comparison starts, cut into ``ranges`` top-level ranges."""

    def advance(self, table: str, ranges: int) -> None:
        """Note that ``ranges`` more top-level ranges are fully compared."""

    def finish(self, table: str) -> None:
        """Note that the table's first pass is done."""


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


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Fix the session's text forms and make transactions snapshot-consistent reads."""
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    conn.execute(SETTINGS_QUERY)


class Side:
    """One database: a snapshot-holding connection plus a pool of worker connections."""

    def __init__(self, name: str, dsn: str, settings: Settings) -> None:
        """Describe the side; nothing connects until :meth:`open`."""
        self.name = name
        self._dsn = dsn
        self._settings = settings
        self._holder: psycopg.Connection[Any] | None = None
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self.snapshot: str | None = None
        # While the snapshot is held, each worker thread keeps one pooled connection in
        # a transaction that imported it, so a query costs one round trip.
        self._local = threading.local()
        self._held: list[psycopg.Connection[Any]] = []
        self._held_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> None:
        """Connect, export a snapshot, and open the worker pool."""
        try:
            holder = psycopg.connect(
                self._dsn, connect_timeout=self._settings.connect_timeout, autocommit=False
            )
        except psycopg.Error as exc:
            raise ValidatorError(f"{self.name}: cannot connect: {error_line(exc)}") from None
        self._holder = holder
        try:
            _configure(holder)
            row = holder.execute("SELECT pg_export_snapshot()").fetchone()
            self.snapshot = str(row[0]) if row else None
            pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
                self._dsn,
                # one connection per worker thread, plus one for the planning thread
                min_size=self._settings.workers + 1,
                max_size=self._settings.workers + 1,
                kwargs={"autocommit": True, "connect_timeout": self._settings.connect_timeout},
                configure=_configure,
                open=False,
                name=f"paymig-validate-{self.name}",
            )
            self._pool = pool
            pool.open(wait=True, timeout=max(30.0, 3.0 * self._settings.connect_timeout))
        except psycopg.Error as exc:
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
            self._holder.close()
            self._holder = None

    def close(self) -> None:
        """Close every connection. Safe to call twice."""
        self.release_snapshot()
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # ------------------------------------------------------------------ catalog

    def _catalog(self, query: sql.SQL | sql.Composed, params: Sequence[Any] | None) -> list[Any]:
        """Run a catalog query in the snapshot-holding transaction."""
        if self._holder is None:
            raise ValidatorError(f"{self.name}: not connected")
        try:
            rows: list[Any] = self._holder.execute(query, params).fetchall()
            return rows
        except psycopg.Error as exc:
            raise ValidatorError(f"{self.name}: {error_line(exc)}") from None

    def scope(self, rules: Sequence[ScopeRule]) -> list[str]:
        """List the tables of this side that the scope rules select."""
        if self._holder is None:
            raise ValidatorError(f"{self.name}: not connected")
        try:
            return resolve_scope(self._holder, rules)
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

    def fetch(self, spec: TableSpec, query: sql.Composed, params: Sequence[Any]) -> list[Any]:
        """Run a query in the snapshot while one is held, else in a fresh transaction."""
        pool = self._pool
        if pool is None:
            raise ValidatorError(f"{self.name}: not connected")
        rows: list[Any]
        try:
            if self.snapshot is not None:
                rows = self._snapshot_connection(pool).execute(query, params).fetchall()
                return rows
            with pool.connection() as conn, conn.transaction():
                rows = conn.execute(query, params).fetchall()
                return rows
        except psycopg.Error as exc:
            message = f"{self.name}: table {spec.qualified}: {error_line(exc)}"
            raise ValidatorError(message) from None

    def aggregate(self, spec: TableSpec, bounds: KeyRange) -> Aggregate:
        """Return the row count and hash sum of a range."""
        rows = self.fetch(spec, *spec.aggregate(bounds))
        count, digest = rows[0]
        return Aggregate(int(count), int(digest))

    def buckets(self, spec: TableSpec, bounds: KeyRange, edges: Sequence[Key]) -> list[Aggregate]:
        """Return the count and hash sum of each piece of a range cut at ``edges``."""
        found = {
            int(b): Aggregate(int(c), int(d))
            for b, c, d in self.fetch(spec, *spec.buckets(bounds, edges))
        }
        return [found.get(index, Aggregate(0, 0)) for index in range(len(edges) + 1)]

    def split(
        self, spec: TableSpec, bounds: KeyRange, step: int
    ) -> tuple[list[Key], list[Aggregate]]:
        """Cut a range into pieces of ``step`` rows; return the cuts and each piece's sums."""
        rows = self.fetch(spec, *spec.split(bounds, step))
        edges = [tuple(row[3:]) for row in rows[1:]]
        return edges, [Aggregate(int(row[1]), int(row[2])) for row in rows]

    def rows(self, spec: TableSpec, bounds: KeyRange) -> dict[Key, int]:
        """Return the row hash by key of every row in a range."""
        return {tuple(row[:-1]): int(row[-1]) for row in self.fetch(spec, *spec.rows(bounds))}

    def lookup(self, spec: TableSpec, keys: Sequence[Key]) -> dict[Key, int]:
        """Return the row hash by key of those of ``keys`` that exist."""
        return {tuple(row[:-1]): int(row[-1]) for row in self.fetch(spec, *spec.lookup(keys))}

    def sample(self, spec: TableSpec, plan: SamplePlan) -> list[Key]:
        """Return an ordered sample of keys."""
        query = spec.sample(plan.method, plan.percent, plan.thin)
        return [tuple(row) for row in self.fetch(spec, *query)]


@dataclass
class _Outcome:
    """The result of comparing one range."""

    source: Aggregate
    target: Aggregate
    children: list[tuple[KeyRange, Aggregate, Aggregate]] = field(default_factory=list)
    candidates: list[tuple[Kind, Key]] = field(default_factory=list)


@dataclass
class _Task:
    """A range waiting to be compared, and the top-level range it belongs to."""

    bounds: KeyRange
    segment: int
    top: bool
    known: tuple[Aggregate, Aggregate] | None = None


@dataclass
class _Pair:
    """The two sides' specs of one table."""

    source: TableSpec
    target: TableSpec
    estimate: int
    pages: int
    larger: str


def bounded_map(
    executor: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], limit: int
) -> Iterator[R]:
    """Like ``executor.map`` without order, but with at most ``limit`` items in flight."""
    inflight: set[Future[R]] = set()
    for item in items:
        inflight.add(executor.submit(fn, item))
        if len(inflight) >= limit:
            done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    while inflight:
        done, inflight = wait(inflight, return_when=FIRST_COMPLETED)
        for future in done:
            yield future.result()


def resolve_scope(conn: psycopg.Connection[Any], rules: Sequence[ScopeRule]) -> list[str]:
    """List ``schema.name`` of every base table in the database that the rules select.

    Each rule is ``(schema, table pattern, action)`` with ``%`` wildcards and action
    ``include`` or ``exclude``; a table is selected when an include rule matches it and
    no exclude rule does. Partitions are left out (their parent covers them).
    """
    rows = conn.execute(BASE_TABLES_QUERY).fetchall()
    return [f"{s}.{t}" for s, t in rows if in_scope(str(s), str(t), rules)]


class Validator:
    """Compare tables between a source and a target database."""

    def __init__(
        self,
        source_dsn: str,
        target_dsn: str,
        settings: Settings | None = None,
        progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Describe the run; :meth:`run` does the work."""
        self.settings = settings or Settings()
        self.source = Side("source", source_dsn, self.settings)
        self.target = Side("target", target_dsn, self.settings)
        self.progress = progress
        self._sleep = sleep

    def run(self, tables: Sequence[str] | None = None, rules: Sequence[ScopeRule] = ()) -> Report:
        """Compare the named tables (``schema.name``), or those the scope rules select."""
        workers = self.settings.workers
        try:
            self.source.open()
            self.target.open()
            names = list(tables) if tables else self.source.scope(rules)
            if not names:
                raise ValidatorError("no tables to compare: the scope rules select none on source")
            pairs = [self._pair(name) for name in names]
            report = Report()
            spools: list[tuple[_Pair, TableReport, KeySpool, float]] = []
            with (
                ThreadPoolExecutor(workers, thread_name_prefix="paymig-src") as ranges,
                ThreadPoolExecutor(workers, thread_name_prefix="paymig-tgt") as other,
            ):
                try:
                    for pair in pairs:
                        entry = TableReport(pair.source.qualified, self.settings.max_keys_reported)
                        report.tables.append(entry)
                        spool = KeySpool()
                        started = time.monotonic()
                        self._first_pass(pair, entry, spool, ranges, other)
                        entry.seconds = time.monotonic() - started
                        spools.append((pair, entry, spool, time.monotonic()))
                    self.source.release_snapshot()
                    self.target.release_snapshot()
                    for pair, entry, spool, observed in spools:
                        self._recheck(pair, entry, spool, observed, ranges)
                finally:
                    for _, _, spool, _ in spools:
                        spool.close()
            return report
        finally:
            self.source.close()
            self.target.close()

    # ------------------------------------------------------------------ planning

    def _pair(self, name: str) -> _Pair:
        """Describe a table on both sides and check that they can be compared."""
        try:
            schema, table = name.split(".", 1)
        except ValueError:
            raise ValidatorError(f"table {name!r}: expected SCHEMA.NAME") from None
        source, source_types, source_rows, source_pages = self.source.describe(schema, table)
        target, target_types, target_rows, target_pages = self.target.describe(schema, table)
        mismatch = column_mismatch(name, source.columns, target.columns)
        if mismatch is not None:
            raise ValidatorError(mismatch)
        if source.key != target.key:
            raise ValidatorError(
                f"table {name}: primary keys differ (source: {', '.join(source.key)}; "
                f"target: {', '.join(target.key)})"
            )
        by_value = frozenset(
            column
            for column, kind in source_types.items()
            if kind in VALUE_HASH_TYPES and target_types.get(column) == kind
        )
        source = dataclasses.replace(source, by_value=by_value)
        target = dataclasses.replace(target, by_value=by_value)
        if source_rows >= target_rows:
            return _Pair(source, target, source_rows, source_pages, "source")
        return _Pair(source, target, target_rows, target_pages, "target")

    def _side(self, pair: _Pair, name: str) -> tuple[Side, TableSpec]:
        """Return a side and its spec of the table."""
        if name == "source":
            return self.source, pair.source
        return self.target, pair.target

    def _segments(self, pair: _Pair) -> list[KeyRange]:
        """Top-level ranges cut at quantiles of a key sample from the larger side."""
        count = segment_count(pair.estimate, self.settings.range_rows, self.settings.max_ranges)
        if count <= 1:
            return [KeyRange()]
        side, spec = self._side(pair, pair.larger)
        plan = sample_plan(pair.estimate, pair.pages, count * SAMPLE_KEYS_PER_RANGE)
        sample = side.sample(spec, plan)
        return split_range(KeyRange(), quantiles(sample, count))

    # ------------------------------------------------------------------ first pass

    def _compare(self, pair: _Pair, task: _Task, other: ThreadPoolExecutor) -> _Outcome:
        """Compare one range: aggregates on both sides at once, then fetch or split.

        Runs on a source worker thread; every target query goes through ``other``, so
        each side's queries run on that side's own threads (and held connections).
        """
        bounds = task.bounds
        if task.known is None:
            target_future = other.submit(self.target.aggregate, pair.target, bounds)
            source = self.source.aggregate(pair.source, bounds)
            target = target_future.result()
        else:
            source, target = task.known
        step = decide(source, target, self.settings.leaf_rows)
        if step is Step.EQUAL:
            return _Outcome(source, target)
        if step is Step.SPLIT:
            children = self._split(pair, bounds, source, target, other)
            if children is not None:
                return _Outcome(source, target, children=children)
        target_rows = other.submit(self.target.rows, pair.target, bounds)
        source_rows = self.source.rows(pair.source, bounds)
        candidates = list(classify(source_rows, target_rows.result()))
        return _Outcome(source, target, candidates=candidates)

    def _split(
        self,
        pair: _Pair,
        bounds: KeyRange,
        source: Aggregate,
        target: Aggregate,
        other: ThreadPoolExecutor,
    ) -> list[tuple[KeyRange, Aggregate, Aggregate]] | None:
        """Split a differing range; return its differing pieces, or None if it cannot be.

        The side with more rows cuts the range into ``fanout`` pieces by row number and
        sums each piece in the same scan; the other side then sums the same pieces.
        """
        cut_step = split_step(max(source.rows, target.rows), self.settings.fanout)
        if source.rows >= target.rows:
            edges, source_sums = self.source.split(pair.source, bounds, cut_step)
            pieces = split_range(bounds, edges)
            target_sums = other.submit(self.target.buckets, pair.target, bounds, edges).result()
        else:
            edges, target_sums = other.submit(
                self.target.split, pair.target, bounds, cut_step
            ).result()
            pieces = split_range(bounds, edges)
            source_sums = self.source.buckets(pair.source, bounds, edges)
        if len(pieces) < 2 or not len(pieces) == len(source_sums) == len(target_sums):
            return None  # nothing to cut (or keys out of order): compare row by row
        return [
            (piece, s, t)
            for piece, s, t in zip(pieces, source_sums, target_sums, strict=True)
            if s != t
        ]

    def _first_pass(
        self,
        pair: _Pair,
        entry: TableReport,
        spool: KeySpool,
        ranges: ThreadPoolExecutor,
        other: ThreadPoolExecutor,
    ) -> None:
        """Compare every range of a table in the snapshot; spool the differing keys."""
        segments = self._segments(pair)
        table = entry.table
        if self.progress is not None:
            self.progress.start(table, len(segments))
        stack = [_Task(bounds, index, True) for index, bounds in enumerate(segments)]
        stack.reverse()
        outstanding = dict.fromkeys(range(len(segments)), 1)
        inflight: dict[Future[_Outcome], _Task] = {}
        limit = 2 * self.settings.workers
        while stack or inflight:
            while stack and len(inflight) < limit:
                task = stack.pop()
                inflight[ranges.submit(self._compare, pair, task, other)] = task
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for future in done:
                task = inflight.pop(future)
                outcome = future.result()
                if task.top:
                    entry.source_rows += outcome.source.rows
                    entry.target_rows += outcome.target.rows
                for _, key in outcome.candidates:
                    spool.add(key)
                stack.extend(
                    _Task(piece, task.segment, False, (s, t))
                    for piece, s, t in reversed(outcome.children)
                )
                outstanding[task.segment] += len(outcome.children) - 1
                if outstanding[task.segment] == 0:
                    del outstanding[task.segment]
                    if self.progress is not None:
                        self.progress.advance(table, 1)
        if self.progress is not None:
            self.progress.finish(table)

    # ------------------------------------------------------------------ recheck

    def _recheck(
        self,
        pair: _Pair,
        entry: TableReport,
        spool: KeySpool,
        observed: float,
        executor: ThreadPoolExecutor,
    ) -> None:
        """After the grace period, report the candidates that still differ."""
        entry.candidates = spool.count
        if spool.count == 0:
            return
        remaining = observed + self.settings.grace_seconds - time.monotonic()
        if remaining > 0:
            self._sleep(remaining)
        started = time.monotonic()

        def check(batch: list[Key]) -> list[tuple[Kind, Key]]:
            source = self.source.lookup(pair.source, batch)  # source first: the target
            target = self.target.lookup(pair.target, batch)  # then has caught up further
            return list(classify(source, target))

        batches = spool.batches(self.settings.lookup_batch)
        for found in bounded_map(executor, check, batches, self.settings.workers):
            for kind, key in found:
                entry.add(kind, key)
        entry.seconds += time.monotonic() - started
