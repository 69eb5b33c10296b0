"""How long a full pass takes at the configured load bounds, estimated from table sizes.

A pass is bounded by the slower of two limits: ``workers`` connections per side, each
comparing about ``estimated_rows_per_second_per_worker`` rows per second on idle
databases, and the optional rate limit. Differences add little (a differing key costs a
few small queries), so the estimate is rows over rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from paymig.config.validation import ValidationConfig


def pass_rate(cfg: ValidationConfig) -> float:
    """Rows per second a pass compares at the configured bounds."""
    rate = float(cfg.workers * cfg.estimated_rows_per_second_per_worker)
    if cfg.rate_limit_rows_per_second is not None:
        rate = min(rate, float(cfg.rate_limit_rows_per_second))
    return rate


def duration_text(seconds: float) -> str:
    """A duration for people: seconds, minutes, hours or days, two significant figures."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def limits_text(cfg: ValidationConfig) -> str:
    """The load bounds in one phrase."""
    limit = (
        f"at most {cfg.rate_limit_rows_per_second:,} rows/s"
        if cfg.rate_limit_rows_per_second is not None
        else "no rate limit"
    )
    return (
        f"{cfg.workers} workers per side x ~{cfg.estimated_rows_per_second_per_worker:,} "
        f"rows/s, {limit}, statement_timeout {cfg.statement_timeout_seconds:g} s"
    )


@dataclass(frozen=True)
class TableSize:
    """One table's estimated rows and bytes on the source."""

    table: str
    rows: int
    bytes: int


def estimate_lines(cfg: ValidationConfig, sizes: Sequence[TableSize]) -> list[str]:
    """Per table and in total: rows, size and the time a pass takes at the bounds."""
    rate = pass_rate(cfg)
    lines = [f"estimated full pass at {limits_text(cfg)}: ~{rate:,.0f} rows/s"]
    for size in sizes:
        lines.append(
            f"  {size.table}: ~{size.rows:,} rows, {size.bytes / 1e9:,.1f} GB: "
            f"~{duration_text(size.rows / rate)}"
        )
    total = sum(s.rows for s in sizes)
    lines.append(f"  total: ~{total:,} rows: ~{duration_text(total / rate)}")
    return lines


def help_text(cfg: ValidationConfig, source: str) -> str:
    """The estimate `paymig validate --help` prints, from the configured table size."""
    rate = pass_rate(cfg)
    seconds = cfg.estimated_rows / rate
    return (
        f"Estimated duration of a full pass with {source}: ~{cfg.estimated_rows:,} rows "
        f"(validation.estimated_rows) at {limits_text(cfg)} is ~{rate:,.0f} rows/s, so "
        f"about {duration_text(seconds)}. --estimate reads the real table sizes from the "
        "source catalog instead."
    )
