"""The validator: plan a pass, compare its key ranges in batches, report.

How a table is compared:

1. Both sides describe the table from the catalog; columns are matched by name and the
   primary keys must agree, otherwise the run stops with an error naming the table.
2. Planning cuts the table into top-level key ranges at quantiles of a key sample
   (``TABLESAMPLE``), so skewed, uuid, text and composite keys split evenly. The ranges
   stay fixed for the whole pass (:mod:`paymig.runtime.validator.passes`).
3. Ranges are compared in **batches**: a batch reads one exported snapshot per side
   (:mod:`paymig.runtime.validator.side`) and takes ranges until ``batch_seconds``
   have passed. For each range, both sides compute ``count(*)`` and the exact sum of
   64-bit row hashes at the same time; only these two numbers cross the network. (How a
   row is hashed: :mod:`paymig.runtime.validator.sql`.)
4. A range whose aggregates differ is split ``fanout`` ways at keys taken from the
   larger side, until it is small enough to fetch (key, row hash) pairs from both sides
   and classify every key exactly.
5. At the end of a batch its snapshots are released and, after ``grace_seconds``, the
   keys found differing are looked up again on both sides in fresh snapshots (source
   first, then target); only keys that still differ are reported. Replication in flight
   is thereby not reported as corruption.
6. The batch's range results are handed to a checkpoint (a file, or the audit table on
   AWS), so a pass that stops resumes with the ranges not yet recorded.

The load stays bounded: ``workers`` connections per side, a rate limit in rows per
second (:mod:`paymig.runtime.validator.throttle`), ``statement_timeout`` on every
query. Memory stays bounded too: ranges are capped in number, work in flight by the
worker count, leaf ranges are small, and candidate keys spill to disk.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TypeVar

from paymig.runtime.validator.hooks import Checkpoint, Progress
from paymig.runtime.validator.passes import (
    PassPlan,
    RangeResult,
    TablePlan,
    assemble_report,
    new_pass_id,
)
from paymig.runtime.validator.plan import (
    Aggregate,
    Key,
    KeyRange,
    Kind,
    ScopeRule,
    Step,
    classify,
    column_mismatch,
    decide,
    quantiles,
    sample_plan,
    segment_count,
    split_range,
    split_step,
)
from paymig.runtime.validator.report import Report
from paymig.runtime.validator.side import (
    Settings,
    Side,
    ValidatorError,
    error_line,
    resolve_scope,
)
from paymig.runtime.validator.spool import KeySpool
from paymig.runtime.validator.sql import VALUE_HASH_TYPES, TableSpec
from paymig.runtime.validator.throttle import RowThrottle

__all__ = [
    "Settings",
    "Side",
    "Validator",
    "ValidatorError",
    "bounded_map",
    "error_line",
    "resolve_scope",
]

T = TypeVar("T")
R = TypeVar("R")

#: Sampled keys per top-level range: more gives evener ranges, at the cost of memory.
SAMPLE_KEYS_PER_RANGE = 4
#: Candidate keys of one range kept in memory before its spool spills to disk.
SPOOL_MEMORY_KEYS = 10_000


@dataclass
class _Outcome:
    """The result of comparing one range (or sub-range)."""

    source: Aggregate
    target: Aggregate
    children: list[tuple[KeyRange, Aggregate, Aggregate]] = field(default_factory=list)
    candidates: list[tuple[Kind, Key]] = field(default_factory=list)


@dataclass
class _Task:
    """A (sub-)range waiting to be compared, and the top-level range it belongs to."""

    bounds: KeyRange
    index: int
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


@dataclass
class _RangeState:
    """A top-level range of the running batch: its result so far and its candidates."""

    result: RangeResult
    spool: KeySpool
    outstanding: int = 1


@dataclass
class _Pools:
    """One thread pool per side, so each side's queries run on its own threads."""

    source: ThreadPoolExecutor
    target: ThreadPoolExecutor


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


class Validator:
    """Compare tables between a source and a target database."""

    def __init__(  # noqa: PLR0917 - the two DSNs, then optional collaborators
        self,
        source_dsn: str,
        target_dsn: str,
        settings: Settings | None = None,
        progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Describe the run; :meth:`run` (or :meth:`open` and the steps) does the work."""
        self.settings = settings or Settings()
        rate = self.settings.rate_limit_rows_per_second
        self.source = Side("source", source_dsn, self.settings, _throttle(rate, clock, sleep))
        self.target = Side("target", target_dsn, self.settings, _throttle(rate, clock, sleep))
        self.progress = progress
        self._sleep = sleep
        self._clock = clock
        self._pairs: dict[str, _Pair] = {}

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> None:
        """Connect both sides (safe to call twice)."""
        try:
            self.source.open()
            self.target.open()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close both sides."""
        self.source.close()
        self.target.close()

    def __enter__(self) -> Validator:
        """Open both sides for a ``with`` block."""
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close both sides."""
        self.close()

    # ------------------------------------------------------------------ the whole pass

    def run(
        self,
        tables: Sequence[str] | None = None,
        rules: Sequence[ScopeRule] = (),
        *,
        checkpoint: Checkpoint | None = None,
        resume: bool = False,
    ) -> Report:
        """Compare the named tables (``schema.name``), or those the scope rules select.

        With a ``checkpoint``, every batch's results are recorded as they complete;
        ``resume`` continues the checkpoint's unfinished pass with the ranges it has not
        recorded, and never compares a recorded range again.
        """
        with self:
            if resume:
                if checkpoint is None:
                    raise ValidatorError("resume: needs a checkpoint to resume from")
                plan, results = checkpoint.resume()
            else:
                plan, results = self.plan(tables, rules), []
                if checkpoint is not None:
                    checkpoint.start(plan)
            done = {(r.table, r.index) for r in results}
            seconds: dict[str, float] = {}
            for table in plan.tables:
                pending = {
                    index: bounds
                    for index, bounds in enumerate(table.ranges)
                    if (table.table, index) not in done
                }
                started = self._clock()
                if self.progress is not None:
                    self.progress.start(table.table, len(table.ranges))
                    if len(pending) < len(table.ranges):
                        self.progress.advance(table.table, len(table.ranges) - len(pending))
                on_batch = checkpoint.commit if checkpoint is not None else None
                results.extend(
                    self.compare(table.table, pending, table.rows_per_range, on_batch=on_batch)
                )
                seconds[table.table] = self._clock() - started
                if self.progress is not None:
                    self.progress.finish(table.table)
            counts = [(t.table, len(t.ranges)) for t in plan.tables]
            report = assemble_report(counts, results, self.settings.max_keys_reported, seconds)
            if checkpoint is not None:
                checkpoint.finish(report)
            return report

    # ------------------------------------------------------------------ planning

    def plan(
        self,
        tables: Sequence[str] | None = None,
        rules: Sequence[ScopeRule] = (),
        *,
        now: datetime | None = None,
    ) -> PassPlan:
        """Describe the tables and cut each into its top-level ranges (sides must be open)."""
        names = list(tables) if tables else self.source.scope(rules)
        if not names:
            raise ValidatorError("no tables to compare: the scope rules select none on source")
        entries = []
        for name in names:
            pair = self._pair(name)
            entries.append(TablePlan(pair.source.qualified, pair.estimate, self._segments(pair)))
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        started = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return PassPlan(new_pass_id(moment), started, tuple(entries))

    def specs(self, name: str) -> tuple[TableSpec, TableSpec, int]:
        """Both sides' specs of a table and its estimated rows (the larger side's)."""
        pair = self._pair(name)
        return pair.source, pair.target, pair.estimate

    def _pair(self, name: str) -> _Pair:
        """Describe a table on both sides and check that they can be compared (cached)."""
        if name in self._pairs:
            return self._pairs[name]
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
            pair = _Pair(source, target, source_rows, source_pages, "source")
        else:
            pair = _Pair(source, target, target_rows, target_pages, "target")
        self._pairs[name] = pair
        return pair

    def _side(self, pair: _Pair, name: str) -> tuple[Side, TableSpec]:
        """Return a side and its spec of the table."""
        if name == "source":
            return self.source, pair.source
        return self.target, pair.target

    def _segments(self, pair: _Pair) -> tuple[KeyRange, ...]:
        """Top-level ranges cut at quantiles of a key sample from the larger side."""
        count = segment_count(pair.estimate, self.settings.range_rows, self.settings.max_ranges)
        if count <= 1:
            return (KeyRange(),)
        side, spec = self._side(pair, pair.larger)
        plan = sample_plan(pair.estimate, pair.pages, count * SAMPLE_KEYS_PER_RANGE)
        sample = side.sample(spec, plan)
        return tuple(split_range(KeyRange(), quantiles(sample, count)))

    # ------------------------------------------------------------------ batches

    def compare(
        self,
        table: str,
        ranges: Mapping[int, KeyRange],
        rows_per_range: int,
        *,
        until: float | None = None,
        on_batch: Callable[[list[RangeResult]], None] | None = None,
    ) -> list[RangeResult]:
        """Compare ``ranges`` (top-level ranges of ``table`` by index) in batches.

        Each finished batch is handed to ``on_batch`` before the next starts. No batch
        starts once the clock passes ``until``, except the first: every call makes
        progress. Returns the results of the ranges compared.
        """
        pair = self._pair(table)
        queue = deque(sorted(ranges.items()))
        results: list[RangeResult] = []
        workers = self.settings.workers
        with (
            ThreadPoolExecutor(workers, thread_name_prefix="paymig-src") as source_pool,
            ThreadPoolExecutor(workers, thread_name_prefix="paymig-tgt") as target_pool,
        ):
            pools = _Pools(source_pool, target_pool)
            while queue:
                if results and until is not None and self._clock() >= until:
                    break
                batch = self._batch(pair, table, queue, rows_per_range, pools)
                if on_batch is not None:
                    on_batch(batch)
                results.extend(batch)
        return results

    def _batch(
        self,
        pair: _Pair,
        table: str,
        queue: deque[tuple[int, KeyRange]],
        rows_per_range: int,
        pools: _Pools,
    ) -> list[RangeResult]:
        """One batch: ranges from ``queue`` in one snapshot per side, then the re-check."""
        states: dict[int, _RangeState] = {}
        try:
            self.source.begin_snapshot()
            self.target.begin_snapshot()
            deadline = self._clock() + self.settings.batch_seconds
            self._first_pass(pair, table, queue, rows_per_range, deadline, states, pools)
            self.source.release_snapshot()
            self.target.release_snapshot()
            self._recheck(pair, states, self._clock(), pools.source)
            return [states[index].result for index in sorted(states)]
        finally:
            self.source.release_snapshot()
            self.target.release_snapshot()
            for state in states.values():
                state.spool.close()

    def _first_pass(  # noqa: PLR0917 - the batch's parts, passed down from _batch
        self,
        pair: _Pair,
        table: str,
        queue: deque[tuple[int, KeyRange]],
        rows_per_range: int,
        deadline: float,
        states: dict[int, _RangeState],
        pools: _Pools,
    ) -> None:
        """Compare ranges taken from ``queue`` until the deadline; finish those started."""
        cap = self.settings.max_keys_reported
        children: list[_Task] = []
        inflight: dict[Future[_Outcome], _Task] = {}
        limit = 2 * self.settings.workers

        def next_task() -> _Task | None:
            if children:
                return children.pop()
            if queue and (not states or self._clock() < deadline):
                index, bounds = queue.popleft()
                states[index] = _RangeState(
                    RangeResult(table, index, cap), KeySpool(SPOOL_MEMORY_KEYS)
                )
                return _Task(bounds, index, True)
            return None

        while True:
            while len(inflight) < limit and (task := next_task()) is not None:
                future = pools.source.submit(self._compare, pair, task, rows_per_range, pools)
                inflight[future] = task
            if not inflight:
                return
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            for future in done:
                task = inflight.pop(future)
                self._absorb(table, task, future.result(), states[task.index], children)

    def _absorb(
        self,
        table: str,
        task: _Task,
        outcome: _Outcome,
        state: _RangeState,
        children: list[_Task],
    ) -> None:
        """Fold one comparison into its range's state; queue the differing pieces."""
        if task.top:
            state.result.source_rows = outcome.source.rows
            state.result.target_rows = outcome.target.rows
        for _, key in outcome.candidates:
            state.spool.add(key)
        children.extend(
            _Task(piece, task.index, False, (s, t)) for piece, s, t in reversed(outcome.children)
        )
        state.outstanding += len(outcome.children) - 1
        if state.outstanding == 0 and self.progress is not None:
            self.progress.advance(table, 1)

    def _compare(self, pair: _Pair, task: _Task, rows_per_range: int, pools: _Pools) -> _Outcome:
        """Compare one range: aggregates on both sides at once, then fetch or split.

        Runs on a source worker thread; every target query goes through the target's
        pool, so each side's queries run on that side's own threads (and connections).
        """
        bounds = task.bounds
        if task.known is None:
            target_future = pools.target.submit(
                self.target.aggregate, pair.target, bounds, rows_per_range
            )
            source = self.source.aggregate(pair.source, bounds, rows_per_range)
            target = target_future.result()
        else:
            source, target = task.known
        step = decide(source, target, self.settings.leaf_rows)
        if step is Step.EQUAL:
            return _Outcome(source, target)
        if step is Step.SPLIT:
            children = self._split(pair, bounds, source, target, pools.target)
            if children is not None:
                return _Outcome(source, target, children=children)
        target_rows = pools.target.submit(self.target.rows, pair.target, bounds, target.rows)
        source_rows = self.source.rows(pair.source, bounds, source.rows)
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
            edges, source_sums = self.source.split(pair.source, bounds, cut_step, source.rows)
            pieces = split_range(bounds, edges)
            target_sums = other.submit(
                self.target.buckets, pair.target, bounds, edges, target.rows
            ).result()
        else:
            edges, target_sums = other.submit(
                self.target.split, pair.target, bounds, cut_step, target.rows
            ).result()
            pieces = split_range(bounds, edges)
            source_sums = self.source.buckets(pair.source, bounds, edges, source.rows)
        if len(pieces) < 2 or not len(pieces) == len(source_sums) == len(target_sums):
            return None  # nothing to cut (or keys out of order): compare row by row
        return [
            (piece, s, t)
            for piece, s, t in zip(pieces, source_sums, target_sums, strict=True)
            if s != t
        ]

    def compare_keys(self, table: str, keys: Iterable[Key]) -> RangeResult:
        """Compare the rows with the given (distinct) keys on both sides.

        Every key is looked at once; after the grace period those that differed are
        looked at again, and only keys that still differ are recorded. The result's
        row counts are the keys found on each side at the first look.
        """
        pair = self._pair(table)
        result = RangeResult(table, 0, self.settings.max_keys_reported)
        state = _RangeState(result, KeySpool(SPOOL_MEMORY_KEYS))

        def look(batch: list[Key]) -> tuple[int, int, list[tuple[Kind, Key]]]:
            source = self.source.lookup(pair.source, batch)
            target = self.target.lookup(pair.target, batch)
            return len(source), len(target), list(classify(source, target))

        workers = self.settings.workers
        with KeySpool(SPOOL_MEMORY_KEYS) as everything, ThreadPoolExecutor(workers) as pool:
            for key in keys:
                everything.add(key)
            batches = everything.batches(self.settings.lookup_batch)
            for source_rows, target_rows, found in bounded_map(pool, look, batches, workers):
                result.source_rows += source_rows
                result.target_rows += target_rows
                for _, key in found:
                    state.spool.add(key)
            try:
                self._recheck(pair, {0: state}, self._clock(), pool)
            finally:
                state.spool.close()
        return result

    # ------------------------------------------------------------------ recheck

    def _recheck(
        self,
        pair: _Pair,
        states: Mapping[int, _RangeState],
        observed: float,
        executor: ThreadPoolExecutor,
    ) -> None:
        """After the grace period, record the candidates that still differ, per range."""
        for state in states.values():
            state.result.candidates = state.spool.count
        if not any(state.spool.count for state in states.values()):
            return
        remaining = observed + self.settings.grace_seconds - self._clock()
        if remaining > 0:
            self._sleep(remaining)

        def check(item: tuple[int, list[Key]]) -> tuple[int, list[tuple[Kind, Key]]]:
            index, batch = item
            source = self.source.lookup(pair.source, batch)  # source first: the target
            target = self.target.lookup(pair.target, batch)  # then has caught up further
            return index, list(classify(source, target))

        items = (
            (index, batch)
            for index in sorted(states)
            for batch in states[index].spool.batches(self.settings.lookup_batch)
        )
        found: dict[int, list[tuple[Kind, Key]]] = {}
        for index, pairs in bounded_map(executor, check, items, self.settings.workers):
            found.setdefault(index, []).extend(pairs)
        for index, pairs in found.items():
            # a fixed order (ranges in key order, keys by text), whatever the threads did
            for kind, key in sorted(pairs, key=lambda p: p[1]):
                states[index].result.add(kind, key)


def _throttle(
    rate: float | None, clock: Callable[[], float], sleep: Callable[[float], None]
) -> RowThrottle | None:
    """One side's rate limit, or none."""
    return None if rate is None else RowThrottle(rate, clock=clock, sleep=sleep)
