"""The budget gate: does an estimate, and every month of the month table, fit the budget."""

from __future__ import annotations

from paymig.cost.estimate import Estimate
from paymig.cost.timeline import MonthTable


def budget_gate(estimate: Estimate, budget: float) -> list[str]:
    """Failures when the load-month, migration-period or steady-state total exceeds the budget.

    An empty list means all fit (the load month is checked only when the stack has a
    one-off load). Each failure names the three largest items of the total that does not fit.
    """
    failures = []
    checks = [
        ("migration-period", estimate.total_monthly_usd, False),
        ("steady-state", estimate.steady_state_monthly_usd, True),
    ]
    if estimate.one_off_usd > 0:
        checks.insert(0, ("load-month", estimate.load_month_usd, False))
    for label, total, steady in checks:
        if total > budget:
            top = ", ".join(
                f"{i.service} {i.resource} ${i.monthly_usd:,.2f}"
                for i in estimate.largest(3, steady_state=steady)
            )
            failures.append(
                f"{label} estimate ${total:,.2f}/month exceeds the budget ${budget:,.2f}/month; "
                f"largest items: {top}"
            )
    return failures


def table_gate(table: MonthTable, budget: float) -> list[str]:
    """One failure naming every month of the table whose bill exceeds the budget."""
    over = table.over(budget)
    if not over:
        return []
    months = ", ".join(f"{r.month} ${r.total_usd:,.2f}" for r in over)
    return [f"{len(over)} month(s) exceed the budget ${budget:,.2f}/month: {months}"]
