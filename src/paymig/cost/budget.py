"""The budget gate: does an estimate fit the environment's monthly budget."""

from __future__ import annotations

from paymig.cost.estimate import Estimate


def budget_gate(estimate: Estimate, budget: float) -> list[str]:
    """Failures when the migration-period or steady-state estimate exceeds the budget.

    An empty list means both fit. Each failure names the three largest items of the
    total that does not fit.
    """
    failures = []
    checks = (
        ("migration-period", estimate.total_monthly_usd, False),
        ("steady-state", estimate.steady_state_monthly_usd, True),
    )
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
