"""The month table: the bill of each month of the plan, by service, from the migration start.

Each month is the stack priced for that month (:func:`paymig.cost.estimate.price_stack`):
the load month carries the one-off initial load, DMS runs for `usage.migration_months`,
and dated charges such as RDS Extended Support appear from their date on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paymig.config import UsageConfig
from paymig.cost.context import ConfigFacts
from paymig.cost.estimate import check_priceable, price_stack
from paymig.cost.extended_support import is_extended_support
from paymig.cost.months import MigrationPlan, Month, Phase
from paymig.cost.prices import PriceTable
from paymig.cost.stack_view import StackView

#: Months the table covers.
HORIZON_MONTHS = 12


@dataclass(frozen=True)
class MonthRow:
    """One month's bill."""

    month: Month
    phase: Phase
    #: Billed USD by service, most expensive first.
    by_service: Mapping[str, float]
    extended_support_usd: float

    @property
    def total_usd(self) -> float:
        """The month's bill."""
        return float(sum(self.by_service.values()))


@dataclass(frozen=True)
class MonthTable:
    """The bills of consecutive months."""

    rows: tuple[MonthRow, ...]

    def services(self) -> list[str]:
        """Every service billed in some month, largest total first."""
        totals: dict[str, float] = {}
        for row in self.rows:
            for service, usd in row.by_service.items():
                totals[service] = totals.get(service, 0.0) + usd
        return sorted(totals, key=lambda s: (-totals[s], s))

    def over(self, budget: float) -> list[MonthRow]:
        """The months whose bill exceeds the budget."""
        return [r for r in self.rows if r.total_usd > budget]

    def first(self, phase: Phase) -> MonthRow | None:
        """The first month in a phase."""
        return next((r for r in self.rows if r.phase is phase), None)

    def as_json(self) -> list[dict[str, Any]]:
        """The rows as the JSON output carries them."""
        return [
            {
                "month": str(r.month),
                "phase": str(r.phase),
                "total_usd": round(r.total_usd, 2),
                "extended_support_usd": round(r.extended_support_usd, 2),
                "by_service": {s: round(v, 2) for s, v in r.by_service.items()},
            }
            for r in self.rows
        ]


def month_table(
    document: Mapping[str, Any],
    usage: UsageConfig,
    prices: PriceTable,
    *,
    plan: MigrationPlan,
    scale: float = 1.0,
    facts: ConfigFacts | None = None,
    months: int = HORIZON_MONTHS,
) -> MonthTable:
    """The bill of each of `months` months from the plan's start."""
    stack = StackView(document)
    check_priceable(stack)
    rows = []
    for month in plan.horizon(months):
        est = price_stack(stack, usage, prices, plan=plan, month=month, scale=scale, facts=facts)
        billed = est.billed_items()
        by_service = {
            s: float(sum(i.monthly_usd for i in g)) for s, g in est.by_service(billed).items()
        }
        es = float(sum(i.monthly_usd for i in billed if is_extended_support(i)))
        rows.append(MonthRow(month, est.phase, by_service, es))
    return MonthTable(tuple(rows))
