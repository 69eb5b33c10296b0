"""The validator run over the replication scope, and its figures explained.

A validation while payments are written compares two snapshots taken moments apart:
the source's, then the target's. Rows written in between are in one and not yet in the
other, so the snapshot counts can differ while the verdict is "consistent": every key
that differed was looked up again after the grace period and matched. The explanation
says so in numbers, table by table, so that a count difference never stands unexplained
beside the verdict.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from paymig.config import PaymigConfig
from paymig.runtime.validator import Settings, Validator


@dataclass(frozen=True)
class TableFigures:
    """One table's figures: snapshot counts, keys re-checked, differences confirmed."""

    table: str
    source_rows: int
    target_rows: int
    rechecked: int
    confirmed: int

    def explain(self, grace: float) -> str:
        """One line that accounts for every difference between counts and verdict."""
        text = f"{self.table}: source {self.source_rows} / target {self.target_rows} rows"
        gap = self.source_rows - self.target_rows
        if gap:
            text += (
                f" in the snapshots ({abs(gap)} row(s) in flight between the two moments "
                "they were taken)"
            )
        matched = self.rechecked - self.confirmed
        if matched:
            text += (
                f"; {matched} key(s) differed in the snapshot and matched on re-check "
                f"after {grace:g} s (in flight)"
            )
        text += "; " + (
            f"{self.confirmed} difference(s) confirmed" if self.confirmed else "no difference"
        )
        return text


@dataclass(frozen=True)
class ValidationResult:
    """The validator's verdict, its figures and the time it took."""

    consistent: bool
    tables: tuple[TableFigures, ...]
    seconds: float
    grace: float
    report: dict[str, Any]

    def explanation(self) -> list[str]:
        """One line per table, then the verdict."""
        verdict = "consistent" if self.consistent else "NOT consistent"
        return [t.explain(self.grace) for t in self.tables] + [f"verdict: {verdict}"]

    def summary(self) -> str:
        """The verdict and the totals in one line."""
        source = sum(t.source_rows for t in self.tables)
        target = sum(t.target_rows for t in self.tables)
        matched = sum(t.rechecked - t.confirmed for t in self.tables)
        confirmed = sum(t.confirmed for t in self.tables)
        return (
            f"{'consistent' if self.consistent else 'NOT consistent'}: {source} source / "
            f"{target} target rows over {len(self.tables)} tables in the snapshots; "
            f"{matched} key(s) matched on re-check after {self.grace:g} s (in flight), "
            f"{confirmed} confirmed difference(s)"
        )


def validate(
    source_dsn: str,
    target_dsn: str,
    config: PaymigConfig,
    *,
    grace: float,
    progress: Any = None,
) -> ValidationResult:
    """Run the production validator over the replication scope."""
    cfg = config.validation
    settings = Settings(
        workers=cfg.workers, grace_seconds=grace, max_keys_reported=cfg.max_keys_reported,
        range_rows=cfg.range_rows, leaf_rows=cfg.leaf_rows, fanout=cfg.fanout,
    )  # fmt: skip
    rules = [(r.schema_name, r.table_name, r.action) for r in config.replication.table_rules]
    began = time.monotonic()
    report = Validator(source_dsn, target_dsn, settings, progress=progress).run(None, rules=rules)
    seconds = time.monotonic() - began
    tables = tuple(
        TableFigures(
            t.table,
            t.source_rows,
            t.target_rows,
            t.candidates,
            t.missing_in_target.count + t.extra_in_target.count + t.different.count,
        )
        for t in report.tables
    )
    return ValidationResult(report.consistent, tables, seconds, grace, report.to_json())


class ProgressBars:
    """The validator's progress callbacks, shown as one bar per table."""

    def __init__(self, bar: Callable[[str, int], Callable[[int], None]]) -> None:
        """`bar(name, total)` returns the advance function of a new bar."""
        self.bar = bar
        self.bars: dict[str, Callable[[int], None]] = {}

    def start(self, table: str, ranges: int) -> None:
        """A table's comparison starts."""
        self.bars[table] = self.bar(f"validating {table}", ranges)

    def advance(self, table: str, ranges: int) -> None:
        """Ranges of a table are done."""
        self.bars[table](ranges)

    def finish(self, table: str) -> None:
        """A table is done."""


def unacknowledged_recorded(
    dsn: str, acknowledged: Sequence[str], key_prefix: str = "rehearsal-"
) -> int:
    """Payments the clients sent that the source holds although none was acknowledged.

    A request can be recorded and its answer lost (the connection reset after the
    commit): the client was not told it succeeded, so it is not "acknowledged", yet the
    row exists. These explain the source holding more rows than were acknowledged.
    """
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM payments WHERE idempotency_key LIKE %s "
            "AND NOT (id = ANY(%s::uuid[]))",
            (key_prefix + "%", list(acknowledged)),
        ).fetchone()
    assert row is not None
    return int(row[0])
