"""The pure core of a full pass: its plan, its slices, and the result of each key range.

A **pass** compares every table in scope once. Planning cuts each table into top-level
key ranges (the validator's own unit of work, see :mod:`paymig.runtime.validator.plan`)
and fixes them for the whole pass: they are half-open and together cover every possible
key, so a row written later still falls in exactly one of them. The plan is stored
before any comparison, with the pass.

A **range result** is what comparing one range found: row counts and the confirmed
differing keys. A range is the unit of checkpointing: once its result is recorded, no
resume compares it again.

A **slice** is a run of consecutive ranges of one table, assigned at planning time; the
validation job on AWS hands one slice at a time to its function (one item of its Map
state), so slices are sized to take a few minutes at the configured load.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from paymig.runtime.validator.plan import Key, KeyRange, Kind
from paymig.runtime.validator.report import KeyList, Report, TableReport

#: Seconds of estimated work per slice of the job: well inside one 900 s invocation.
SLICE_TARGET_SECONDS = 300.0
#: Most ranges per slice: keeps one slice's record in the audit table far below 400 KB.
MAX_RANGES_PER_SLICE = 500
#: Most slices per pass: about 11 history events each keeps a Step Functions execution
#: far below its 25,000-event quota ("Step Functions service quotas").
MAX_SLICES = 1_000


def new_pass_id(now: datetime | None = None) -> str:
    """A pass id that sorts by start time: ``20261130T221500Z-1a2b3c4d``."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def _key_json(key: Key | None) -> list[str] | None:
    return None if key is None else list(key)


def _key_from(value: Any) -> Key | None:
    return None if value is None else tuple(str(v) for v in value)


def range_to_json(bounds: KeyRange) -> list[list[str] | None]:
    """A range as ``[lower, upper]`` (each a list of key texts, or null if unbounded)."""
    return [_key_json(bounds.lower), _key_json(bounds.upper)]


def range_from_json(value: Sequence[Any]) -> KeyRange:
    """The inverse of :func:`range_to_json`."""
    return KeyRange(_key_from(value[0]), _key_from(value[1]))


@dataclass(frozen=True)
class TablePlan:
    """One table's top-level ranges for the whole pass, and its size when planned."""

    table: str
    estimate: int
    ranges: tuple[KeyRange, ...]

    @property
    def rows_per_range(self) -> int:
        """Expected rows of one range (what a top-level query is charged)."""
        return max(1, math.ceil(self.estimate / max(1, len(self.ranges))))

    def to_json(self) -> dict[str, Any]:
        """The table's entry of the stored plan."""
        return {
            "table": self.table,
            "estimate": self.estimate,
            "ranges": [range_to_json(r) for r in self.ranges],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TablePlan:
        """Read a stored entry."""
        ranges = tuple(range_from_json(r) for r in data["ranges"])
        return cls(str(data["table"]), int(data["estimate"]), ranges)


@dataclass(frozen=True)
class SliceSpec:
    """Ranges ``first .. first + count - 1`` of one table."""

    number: int
    table: str
    first: int
    count: int

    @property
    def indexes(self) -> range:
        """The range indexes of the slice."""
        return range(self.first, self.first + self.count)


@dataclass(frozen=True)
class PassPlan:
    """What a pass compares: its tables' ranges, and how the job slices them."""

    pass_id: str
    started_at: str
    tables: tuple[TablePlan, ...]
    slices: tuple[SliceSpec, ...] = ()

    @property
    def ranges_total(self) -> int:
        """Top-level ranges over all tables."""
        return sum(len(t.ranges) for t in self.tables)

    def table(self, name: str) -> TablePlan:
        """The plan of one table."""
        for entry in self.tables:
            if entry.table == name:
                return entry
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """The stored form (slices are derived again on load)."""
        return {
            "pass_id": self.pass_id,
            "started_at": self.started_at,
            "tables": [t.to_json() for t in self.tables],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PassPlan:
        """Read a stored plan."""
        tables = tuple(TablePlan.from_json(t) for t in data["tables"])
        return cls(str(data["pass_id"]), str(data["started_at"]), tables)


def slice_rows(rows_per_second: float) -> int:
    """Rows one slice should hold: :data:`SLICE_TARGET_SECONDS` of work at that rate."""
    return max(1, int(rows_per_second * SLICE_TARGET_SECONDS))


def assign_slices(
    tables: Sequence[TablePlan],
    rows_per_slice: int,
    *,
    max_ranges: int = MAX_RANGES_PER_SLICE,
    max_slices: int = MAX_SLICES,
) -> tuple[SliceSpec, ...]:
    """Cut every table's ranges into slices of about ``rows_per_slice`` rows.

    A slice never spans two tables and holds at least one range and at most
    ``max_ranges``. If that would make more than ``max_slices`` slices, slices grow
    (up to ``max_ranges``) until it does not; a pass too large even then keeps the
    larger count (its execution then nears the history quota, and a restart resumes).
    """
    per_table = {
        t.table: min(max_ranges, max(1, rows_per_slice // t.rows_per_range)) for t in tables
    }

    def count(sizes: Mapping[str, int]) -> int:
        return sum(math.ceil(len(t.ranges) / sizes[t.table]) for t in tables)

    scale = 1
    while count(per_table) > max_slices and any(v < max_ranges for v in per_table.values()):
        scale *= 2
        per_table = {
            t.table: min(max_ranges, max(1, rows_per_slice * scale // t.rows_per_range))
            for t in tables
        }
    slices: list[SliceSpec] = []
    for t in tables:
        size = per_table[t.table]
        for first in range(0, len(t.ranges), size):
            count_here = min(size, len(t.ranges) - first)
            slices.append(SliceSpec(len(slices), t.table, first, count_here))
    return tuple(slices)


# --------------------------------------------------------------------------- results


@dataclass
class RangeResult:
    """What comparing one top-level range found (confirmed differences only)."""

    table: str
    index: int
    cap: int
    source_rows: int = 0
    target_rows: int = 0
    #: Keys that differed in the first look and were re-checked after the grace period.
    candidates: int = 0
    keys: dict[Kind, KeyList] = field(init=False)

    def __post_init__(self) -> None:
        """One key list per kind of difference, each capped."""
        self.keys = {kind: KeyList(self.cap) for kind in Kind}

    def add(self, kind: Kind, key: Key) -> None:
        """Record one confirmed difference."""
        self.keys[kind].add(key)

    @property
    def differing(self) -> int:
        """Differing keys of every kind."""
        return sum(keys.count for keys in self.keys.values())

    def to_json(self) -> dict[str, Any]:
        """The compact stored form: row counts, and per kind the count and kept keys."""
        out: dict[str, Any] = {"s": self.source_rows, "t": self.target_rows}
        if self.candidates:
            out["c"] = self.candidates
        for kind, keys in self.keys.items():
            if keys.count:
                out[kind.value] = {"n": keys.count, "keys": [list(k) for k in keys.keys]}
        return out

    @classmethod
    def from_json(cls, table: str, index: int, cap: int, data: Mapping[str, Any]) -> RangeResult:
        """Read a stored result."""
        result = cls(table, index, cap, int(data["s"]), int(data["t"]), int(data.get("c", 0)))
        for kind in Kind:
            stored = data.get(kind.value)
            if stored:
                keys = result.keys[kind]
                keys.keys = [tuple(str(v) for v in k) for k in stored["keys"]][:cap]
                keys.count = int(stored["n"])
        return result


def trim_keys(results: Sequence[RangeResult], cap: int, key_bytes: int | None = None) -> None:
    """Keep, over ``results`` in index order, at most ``cap`` keys per kind (counts stay).

    The report lists each table's first ``cap`` keys (ranges in key order); keeping every
    batch's first ``cap`` keeps those. ``key_bytes`` further bounds the kept keys' JSON size.
    """
    kept = dict.fromkeys(Kind, 0)
    size = 0
    for result in sorted(results, key=lambda r: (r.table, r.index)):
        for kind, keys in result.keys.items():
            room = max(0, cap - kept[kind])
            chosen: list[Key] = []
            for key in keys.keys[:room]:
                cost = len(json.dumps(list(key)))
                if key_bytes is not None and size + cost > key_bytes:
                    break
                chosen.append(key)
                size += cost
            keys.keys = chosen
            kept[kind] += len(chosen)


def assemble_report(
    tables: Sequence[tuple[str, int]],
    results: Iterable[RangeResult],
    cap: int,
    seconds: Mapping[str, float] | None = None,
) -> Report:
    """The pass's report: per table, counts summed and the first ``cap`` keys by range.

    ``tables`` lists each table with its number of ranges, in report order. Raises
    ``ValueError`` naming the first table whose ranges are not each compared once.
    """
    by_table: dict[str, list[RangeResult]] = {name: [] for name, _ in tables}
    for result in results:
        by_table[result.table].append(result)
    report = Report()
    for name, ranges in tables:
        found = sorted(by_table[name], key=lambda r: r.index)
        done = {r.index for r in found}
        if done != set(range(ranges)) or len(found) != len(done):
            raise ValueError(
                f"table {name}: {ranges - len(done & set(range(ranges)))} of {ranges} "
                "ranges not compared"
            )
        entry = TableReport(name, cap)
        entry.seconds = (seconds or {}).get(name, 0.0)
        for result in found:
            entry.source_rows += result.source_rows
            entry.target_rows += result.target_rows
            entry.candidates += result.candidates
            for kind, keys in result.keys.items():
                target = entry.lists()[kind]
                for key in keys.keys:
                    if len(target.keys) < cap:
                        target.keys.append(key)
                target.count += keys.count
        report.tables.append(entry)
    return report


@dataclass(frozen=True)
class PassTotals:
    """Progress of a pass: ranges done of total, rows compared, differing keys so far."""

    ranges_total: int
    ranges_done: int = 0
    source_rows: int = 0
    target_rows: int = 0
    missing: int = 0
    extra: int = 0
    different: int = 0

    @property
    def differing(self) -> int:
        """Differing keys of every kind found so far."""
        return self.missing + self.extra + self.different

    @property
    def done(self) -> bool:
        """Whether every range is compared."""
        return self.ranges_done >= self.ranges_total

    def plus(self, results: Iterable[RangeResult]) -> PassTotals:
        """These totals with newly recorded ranges added."""
        added = list(results)
        return PassTotals(
            ranges_total=self.ranges_total,
            ranges_done=self.ranges_done + len(added),
            source_rows=self.source_rows + sum(r.source_rows for r in added),
            target_rows=self.target_rows + sum(r.target_rows for r in added),
            missing=self.missing + sum(r.keys[Kind.MISSING].count for r in added),
            extra=self.extra + sum(r.keys[Kind.EXTRA].count for r in added),
            different=self.different + sum(r.keys[Kind.DIFFERENT].count for r in added),
        )
