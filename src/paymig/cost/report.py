"""Estimate an environment and render the estimate for people (table, Markdown) or machines.

Pure functions over an :class:`~paymig.cost.estimate.Estimate` (one month's bill) and a
:class:`~paymig.cost.timeline.MonthTable` (twelve months from the migration start); the
CLI and ``paymig check`` call :func:`estimate_environment` and :func:`table_environment`,
the runbook embeds the same figures.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from paymig.config import PaymigConfig
from paymig.cost.budget import budget_gate, table_gate
from paymig.cost.context import ConfigFacts
from paymig.cost.estimate import Estimate, estimate, service_total
from paymig.cost.extended_support import Notice, notices
from paymig.cost.line_item import LineItem
from paymig.cost.months import MigrationPlan, Month, current_month
from paymig.cost.prices import load_price_table
from paymig.cost.timeline import MonthTable, month_table

#: Traffic volumes at which Lambda is always reported, relative to the configured volume.
LAMBDA_VOLUMES = (1.0, 10.0)
#: Services named in each row of the month table.
ROW_SERVICES = 3
#: What the estimate deducts and what it does not.
FREE_TIERS = (
    "Deducted: allowances AWS applies by itself (DMS included storage, the first 50 "
    "AWS-endpoint health checks). Not deducted: free tiers that expire or depend on the "
    "account (Lambda, KMS, X-Ray, Step Functions and CloudWatch free usage)."
)


def plan_of(config: PaymigConfig, today: datetime.date | None = None) -> MigrationPlan:
    """The environment's plan: `usage.migration_start` (else this month) for N months."""
    usage = config.usage
    start = (
        Month.parse(usage.migration_start, what="usage.migration_start")
        if usage.migration_start
        else current_month(today)
    )
    return MigrationPlan(start, usage.migration_months)


def estimate_environment(
    config: PaymigConfig,
    document: Mapping[str, Any],
    scale: float = 1.0,
    month: Month | None = None,
    today: datetime.date | None = None,
) -> Estimate:
    """Price a synthesized document for a month (default: the plan's start)."""
    plan = plan_of(config, today)
    return estimate(
        document,
        config.usage,
        load_price_table(),
        plan=plan,
        month=month or plan.start,
        scale=scale,
        facts=ConfigFacts.of(config),
    )


def table_environment(
    config: PaymigConfig,
    document: Mapping[str, Any],
    scale: float = 1.0,
    today: datetime.date | None = None,
) -> MonthTable:
    """The environment's twelve months from the migration start."""
    return month_table(
        document,
        config.usage,
        load_price_table(),
        plan=plan_of(config, today),
        scale=scale,
        facts=ConfigFacts.of(config),
    )


def extended_support_notices(
    config: PaymigConfig, document: Mapping[str, Any], today: datetime.date | None = None
) -> list[Notice]:
    """Clusters that enter RDS Extended Support within the month table's twelve months."""
    horizon = plan_of(config, today).horizon()
    return notices(document, ConfigFacts.of(config), load_price_table(), horizon[-1])


def lambda_by_volume(
    config: PaymigConfig, document: Mapping[str, Any], month: Month | None = None
) -> dict[float, float]:
    """Monthly Lambda cost at 1x and 10x the configured transaction volume."""
    return {
        volume: service_total(estimate_environment(config, document, volume, month).items, "Lambda")
        for volume in LAMBDA_VOLUMES
    }


def failures(est: Estimate, table: MonthTable, budget: float) -> list[str]:
    """Every budget failure of the month's totals and of the month table."""
    return budget_gate(est, budget) + table_gate(table, budget)


def _volume_key(volume: float) -> str:
    """`1.0` -> `"1"`, `2.5` -> `"2.5"`."""
    return f"{volume:g}"


def to_json(
    est: Estimate, table: MonthTable, budget: float, lambda_volumes: Mapping[float, float]
) -> dict[str, Any]:
    """The machine-readable estimate."""
    return {
        "month": str(est.month),
        "phase": str(est.phase),
        "bill_usd": round(est.bill_usd, 2),
        "load_month_usd": round(est.load_month_usd, 2),
        "total_monthly_usd": round(est.total_monthly_usd, 2),
        "steady_state_monthly_usd": round(est.steady_state_monthly_usd, 2),
        "budget_usd": float(budget),
        "scale": float(est.scale),
        "migration_start": str(est.plan.start),
        "migration_months": est.migration_months,
        "within_budget": not failures(est, table, budget),
        "lambda_monthly_usd_by_volume": {
            _volume_key(v): round(usd, 2) for v, usd in lambda_volumes.items()
        },
        "months": table.as_json(),
        "items": [item.as_json() for item in est.billed_items()],
    }


def _share(part: float, whole: float) -> str:
    """A percentage of the total."""
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _summary_lines(
    est: Estimate, table: MonthTable, budget: float, lambda_volumes: Mapping[float, float]
) -> list[str]:
    """The totals every text format ends with."""
    found = failures(est, table, budget)
    months = est.migration_months
    lines = [
        f"Bill for {est.month} ({est.phase}): ${est.bill_usd:,.2f}",
        f"Load month (migration month with the one-off initial load): "
        f"${est.load_month_usd:,.2f}/month",
        f"Migration period (DMS running, {months} month(s)): ${est.total_monthly_usd:,.2f}/month",
        f"Steady state (after DMS is removed): ${est.steady_state_monthly_usd:,.2f}/month",
        f"Budget: ${budget:,.2f}/month: "
        + ("every total and month fits" if not found else "EXCEEDED"),
        "Lambda by volume (x the configured transactions/day): "
        + ", ".join(f"{v:g}x ${usd:,.2f}/month" for v, usd in lambda_volumes.items()),
        FREE_TIERS,
    ]
    return lines + found


def _largest_services(by_service: Mapping[str, float]) -> str:
    """The few largest services of a month, `name USD` each."""
    top = list(by_service.items())[:ROW_SERVICES]
    return ", ".join(f"{service} {usd:,.2f}" for service, usd in top)


def _title(est: Estimate) -> str:
    """The heading of one month's estimate."""
    return f"Cost estimate for {est.month} ({est.phase}) at scale {est.scale:g}x (USD, us-east-2)"


def print_table(
    console: Console,
    est: Estimate,
    table: MonthTable,
    budget: float,
    lambda_volumes: Mapping[float, float],
) -> None:
    """The month's items grouped by service with shares, the totals, then the month table."""
    billed = est.billed_items()
    total = est.bill_usd
    grid = Table(title=_title(est))
    for column, justify in (
        ("service / resource", "left"),
        ("quantity", "right"),
        ("unit", "left"),
        ("unit USD", "right"),
        ("monthly USD", "right"),
        ("share", "right"),
        ("basis", "left"),
    ):
        grid.add_column(column, justify=justify)  # type: ignore[arg-type]
    for service, items in est.by_service(billed).items():
        subtotal = sum(i.monthly_usd for i in items)
        grid.add_row(
            f"[bold]{service}[/]", "", "", "", f"[bold]{subtotal:,.2f}[/]",
            f"[bold]{_share(subtotal, total)}[/]", "",
        )  # fmt: skip
        for i in items:
            grid.add_row(
                f"  {i.resource}{i.flag}", f"{i.quantity:,.4g}", i.unit, f"{i.unit_usd:g}",
                f"{i.monthly_usd:,.2f}", _share(i.monthly_usd, total), i.basis,
            )  # fmt: skip
    console.print(grid)
    for line in _summary_lines(est, table, budget, lambda_volumes):
        console.print(line, markup=False, highlight=False)
    months = Table(title=f"Twelve months from the migration start {est.plan.start} (USD)")
    for column in ("month", "phase", "total USD", "Extended Support USD", "largest services"):
        months.add_column(column)
    for row in table.rows:
        flag = " over budget" if row.total_usd > budget else ""
        months.add_row(
            str(row.month), str(row.phase), f"{row.total_usd:,.2f}{flag}",
            f"{row.extended_support_usd:,.2f}", _largest_services(row.by_service),
        )  # fmt: skip
    console.print(months)


def _md(text: str) -> str:
    """Escape a table cell."""
    return text.replace("|", "\\|")


def _md_items(items: list[LineItem], total: float, est: Estimate) -> list[str]:
    """The item rows of one month, by service."""
    out = [
        "| Service | Resource | Quantity | Unit | Unit USD | Monthly USD | Share | Basis |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    for service, group in est.by_service(items).items():
        for i in group:
            out.append(
                f"| {service} | {_md(i.resource)}{i.flag} | {i.quantity:,.4g} | {_md(i.unit)} "
                f"| {i.unit_usd:g} | {i.monthly_usd:,.2f} | {_share(i.monthly_usd, total)} "
                f"| {_md(i.basis)} |"
            )
    return out


def render_month_table(table: MonthTable, budget: float) -> str:
    """The month table as Markdown."""
    out = [
        "| Month | Phase | Total USD | Extended Support USD | Budget | Largest services |",
        "|---|---|---:|---:|---|---|",
    ]
    for r in table.rows:
        verdict = "over" if r.total_usd > budget else "fits"
        out.append(
            f"| {r.month} | {r.phase} | {r.total_usd:,.2f} | {r.extended_support_usd:,.2f} "
            f"| {verdict} | {_md(_largest_services(r.by_service))} |"
        )
    return "\n".join(out) + "\n"


def render_markdown(
    est: Estimate, table: MonthTable, budget: float, lambda_volumes: Mapping[float, float]
) -> str:
    """The month as Markdown: a by-service summary, the items, the totals, the month table."""
    billed = est.billed_items()
    total = est.bill_usd
    groups = est.by_service(billed)
    out = [
        f"### {_title(est)}",
        "",
        "| Service | Monthly USD | Share |",
        "|---|---:|---:|",
    ]
    for service, items in groups.items():
        subtotal = sum(i.monthly_usd for i in items)
        out.append(f"| {service} | {subtotal:,.2f} | {_share(subtotal, total)} |")
    out += [f"| **Total** | **{total:,.2f}** | 100% |", ""]
    out += _md_items(billed, total, est)
    out.append("")
    out += [f"- {line}" for line in _summary_lines(est, table, budget, lambda_volumes)]
    out += [
        "",
        f"### Twelve months from the migration start {est.plan.start} (USD)",
        "",
        render_month_table(table, budget).rstrip("\n"),
    ]
    return "\n".join(out) + "\n"
