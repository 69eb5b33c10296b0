"""The deployment check's bounded comparison: the latest full pass plus what changed since.

A full pass of 500 GB takes far longer than `terraform apply` may wait, so the check
that runs during the apply does not compare everything. It covers:

1. **The latest full pass** (the validation job's, recorded in the audit table): it must
   have finished, found no difference, and started at most
   ``validation.full_pass_max_age_hours`` ago.
2. **Rows changed since that pass started**, per table of
   ``validation.changed_columns``: the rows whose change column (an indexed timestamp
   every write sets, e.g. ``payments.updated_at``) is at or after the pass's start less
   ``changed_margin_seconds``, on either side, compared by key over every column. At
   most ``deploy_check_max_rows`` per table and side: more means a new full pass is due.
3. **Small tables in full**: a table without a change column whose estimated size is at
   most ``deploy_check_max_rows`` is compared completely, as by a full pass.

What it leaves to the full pass: rows of large tables without a change column; a change
that did not move the change column (a write that forgot ``updated_at``, or a change
made on one side only, such as corruption on the target); and rows deleted on the source
since the pass but still present on the target (a deleted row leaves no timestamp).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from paymig.config.validation import ValidationConfig
from paymig.runtime.validator.engine import Validator
from paymig.runtime.validator.passes import RangeResult, assemble_report
from paymig.runtime.validator.plan import Key, Kind
from paymig.runtime.validator.sql import TableSpec

MODE_CHANGED = "changed-since"
MODE_FULL = "full"
MODE_FULL_PASS_ONLY = "full-pass-only"  # noqa: S105 - a validation pass, no secret


def _parse(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FullPassVerdict:
    """Whether the latest full pass lets the check pass, why, and where changes start."""

    ok: bool
    reason: str
    pass_id: str | None = None
    started_at: datetime | None = None
    #: The pass itself found differences (as opposed to missing, unfinished or old).
    inconsistent: bool = False


def judge_full_pass(
    item: Mapping[str, Any] | None, now: datetime, cfg: ValidationConfig
) -> FullPassVerdict:
    """Judge the latest pass item of the audit table (see :mod:`.pass_store`)."""
    if item is None:
        return FullPassVerdict(False, "no full validation pass recorded: run the validation job")
    pass_id = str(item.get("pass_id"))
    started = _parse(item.get("started_at"))
    if started is None:
        return FullPassVerdict(False, f"full pass {pass_id}: no valid started_at", pass_id)
    if item.get("status") != "finished":
        done, total = item.get("ranges_done", 0), item.get("ranges_total", 0)
        return FullPassVerdict(
            False,
            f"full pass {pass_id} has not finished ({done} of {total} ranges compared)",
            pass_id,
            started,
        )
    if item.get("verdict") != "consistent":
        counts = ", ".join(f"{item.get(k, 0)} {k}" for k in ("missing", "extra", "different"))
        return FullPassVerdict(
            False, f"full pass {pass_id} found differences ({counts})", pass_id, started, True
        )
    age = now - started
    hours = age.total_seconds() / 3600
    if age > timedelta(hours=cfg.full_pass_max_age_hours):
        return FullPassVerdict(
            False,
            f"full pass {pass_id} started {hours:.1f} h ago, over "
            f"validation.full_pass_max_age_hours ({cfg.full_pass_max_age_hours:g})",
            pass_id,
            started,
        )
    rows = int(item.get("source_rows", 0))
    return FullPassVerdict(
        True,
        f"full pass {pass_id} consistent ({rows:,} rows, started {hours:.1f} h ago)",
        pass_id,
        started,
    )


@dataclass
class TableCheck:
    """What the bounded comparison did for one table."""

    table: str
    mode: str
    detail: str
    result: RangeResult | None = None
    failure: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The table's entry of the check's result."""
        out: dict[str, Any] = {"table": self.table, "mode": self.mode, "detail": self.detail}
        if self.result is not None:
            out["source_rows"] = self.result.source_rows
            out["target_rows"] = self.result.target_rows
            for kind, keys in self.result.keys.items():
                out[kind.value] = [list(k) for k in keys.keys]
                out[f"{kind.value}_count"] = keys.count
        if self.failure is not None:
            out["failure"] = self.failure
        return out


@dataclass
class BoundedCheck:
    """The bounded comparison over every table in scope."""

    since: datetime
    tables: list[TableCheck] = field(default_factory=list)

    @property
    def differing(self) -> bool:
        """Whether a compared row differs."""
        return any(t.result is not None and t.result.differing for t in self.tables)

    @property
    def failures(self) -> list[str]:
        """Every reason the check fails: differences found, or a bound exceeded."""
        out = []
        for check in self.tables:
            if check.failure is not None:
                out.append(f"{check.table}: {check.failure}")
            elif check.result is not None and check.result.differing:
                keys = check.result.keys
                out.append(
                    f"{check.table}: {keys[Kind.MISSING].count} missing, "
                    f"{keys[Kind.EXTRA].count} extra, {keys[Kind.DIFFERENT].count} different"
                )
        return out


def _changed_keys(
    validator: Validator, specs: tuple[TableSpec, TableSpec], column: str, since: str, limit: int
) -> set[Key] | str:
    """The keys changed since ``since`` on either side, or why they cannot be compared."""
    keys: set[Key] = set()
    for side, spec in ((validator.source, specs[0]), (validator.target, specs[1])):
        if not side.indexed(spec, column):
            return f"column {column} leads no index on {side.name}: the check would scan the table"
        found = side.changed(spec, column, since, limit)
        if isinstance(found, int):
            return (
                f"{found:,} rows changed on {side.name} since {since}, over "
                f"validation.deploy_check_max_rows ({limit:,}): run a full pass"
            )
        keys.update(found)
    return keys


def check_table(
    validator: Validator, table: str, cfg: ValidationConfig, since: datetime
) -> TableCheck:
    """The bounded comparison of one table (sides open)."""
    source, target, estimate = validator.specs(table)
    limit = cfg.deploy_check_max_rows
    column = cfg.changed_columns.get(table)
    if column is not None:
        stamp = since.astimezone(UTC).isoformat()
        keys = _changed_keys(validator, (source, target), column, stamp, limit)
        detail = f"rows with {column} >= {stamp}"
        if isinstance(keys, str):
            return TableCheck(table, MODE_CHANGED, detail, failure=keys)
        return TableCheck(table, MODE_CHANGED, detail, validator.compare_keys(table, sorted(keys)))
    if estimate <= limit:
        plan = validator.plan([table])
        (entry,) = plan.tables
        ranges = dict(enumerate(entry.ranges))
        results = validator.compare(table, ranges, entry.rows_per_range)
        merged = RangeResult(table, 0, cfg.max_keys_reported)
        report = assemble_report([(table, len(ranges))], results, cfg.max_keys_reported)
        (summary,) = report.tables
        merged.source_rows, merged.target_rows = summary.source_rows, summary.target_rows
        for kind, found in summary.lists().items():
            merged.keys[kind] = found
        return TableCheck(table, MODE_FULL, f"all ~{estimate:,} rows", merged)
    return TableCheck(
        table,
        MODE_FULL_PASS_ONLY,
        f"~{estimate:,} rows and no change column (validation.changed_columns): "
        "covered by the full pass only",
    )


def bounded_check(
    validator: Validator, tables: Sequence[str], cfg: ValidationConfig, started: datetime
) -> BoundedCheck:
    """Compare what changed since a full pass that started at ``started`` (sides open)."""
    since = started - timedelta(seconds=cfg.changed_margin_seconds)
    check = BoundedCheck(since)
    for table in tables:
        check.tables.append(check_table(validator, table, cfg, since))
    return check
