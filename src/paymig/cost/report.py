"""Estimate an environment and render the estimate for people (table, Markdown) or machines.

Pure functions over an :class:`~paymig.cost.estimate.Estimate`; the CLI and ``paymig check``
call :func:`estimate_environment`, the runbook can embed :func:`render_markdown`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from paymig.config import PaymigConfig
from paymig.cost.budget import budget_gate
from paymig.cost.estimate import Estimate, estimate, service_total
from paymig.cost.prices import load_price_table

#: Traffic volumes at which Lambda is always reported, relative to the configured volume.
LAMBDA_VOLUMES = (1.0, 10.0)


def estimate_environment(
    config: PaymigConfig, document: Mapping[str, Any], scale: float = 1.0
) -> Estimate:
    """Price a synthesized document with the environment's usage assumptions."""
    return estimate(
        document,
        config.usage,
        load_price_table(),
        scale=scale,
        api_record_name=config.dns.api_record_name,
    )


def lambda_by_volume(config: PaymigConfig, document: Mapping[str, Any]) -> dict[float, float]:
    """Monthly Lambda cost at 1x and 10x the configured transaction volume."""
    return {
        volume: service_total(estimate_environment(config, document, volume).items, "Lambda")
        for volume in LAMBDA_VOLUMES
    }


def _volume_key(volume: float) -> str:
    """`1.0` -> `"1"`, `2.5` -> `"2.5"`."""
    return f"{volume:g}"


def to_json(est: Estimate, budget: float, lambda_volumes: Mapping[float, float]) -> dict[str, Any]:
    """The machine-readable estimate."""
    return {
        "total_monthly_usd": round(est.total_monthly_usd, 2),
        "steady_state_monthly_usd": round(est.steady_state_monthly_usd, 2),
        "budget_usd": float(budget),
        "scale": float(est.scale),
        "migration_months": est.migration_months,
        "within_budget": not budget_gate(est, budget),
        "lambda_monthly_usd_by_volume": {
            _volume_key(v): round(usd, 2) for v, usd in lambda_volumes.items()
        },
        "items": [item.as_json() for item in est.items],
    }


def _share(part: float, whole: float) -> str:
    """A percentage of the total."""
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _summary_lines(
    est: Estimate, budget: float, lambda_volumes: Mapping[float, float]
) -> list[str]:
    """The totals every text format ends with."""
    failures = budget_gate(est, budget)
    months = est.migration_months
    lines = [
        f"Migration period (DMS running, {months} month(s)): ${est.total_monthly_usd:,.2f}/month",
        f"Steady state (after DMS is removed): ${est.steady_state_monthly_usd:,.2f}/month",
        f"Budget: ${budget:,.2f}/month: " + ("both totals fit" if not failures else "EXCEEDED"),
        "Lambda by volume (x the configured transactions/day): "
        + ", ".join(f"{v:g}x ${usd:,.2f}/month" for v, usd in lambda_volumes.items()),
    ]
    lines += failures
    return lines


def print_table(
    console: Console, est: Estimate, budget: float, lambda_volumes: Mapping[float, float]
) -> None:
    """Items grouped by service with each service's share of the total."""
    total = est.total_monthly_usd
    table = Table(title=f"Monthly cost estimate at scale {est.scale:g}x (USD, us-east-2)")
    for column, justify in (
        ("service / resource", "left"),
        ("quantity", "right"),
        ("unit", "left"),
        ("unit USD", "right"),
        ("monthly USD", "right"),
        ("share", "right"),
        ("basis", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for service, items in est.by_service().items():
        subtotal = sum(i.monthly_usd for i in items)
        table.add_row(
            f"[bold]{service}[/]", "", "", "", f"[bold]{subtotal:,.2f}[/]",
            f"[bold]{_share(subtotal, total)}[/]", "",
        )  # fmt: skip
        for i in items:
            flag = " (migration only)" if i.migration_only else ""
            table.add_row(
                f"  {i.resource}{flag}", f"{i.quantity:,.4g}", i.unit, f"{i.unit_usd:g}",
                f"{i.monthly_usd:,.2f}", _share(i.monthly_usd, total), i.basis,
            )  # fmt: skip
    console.print(table)
    for line in _summary_lines(est, budget, lambda_volumes):
        console.print(line, markup=False, highlight=False)


def _md(text: str) -> str:
    """Escape a table cell."""
    return text.replace("|", "\\|")


def render_markdown(est: Estimate, budget: float, lambda_volumes: Mapping[float, float]) -> str:
    """The estimate as Markdown: a by-service summary, the items, and the totals."""
    total = est.total_monthly_usd
    groups = est.by_service()
    out = [
        f"### Monthly cost estimate at scale {est.scale:g}x (USD, us-east-2, on-demand)",
        "",
        "| Service | Monthly USD | Share |",
        "|---|---:|---:|",
    ]
    for service, items in groups.items():
        subtotal = sum(i.monthly_usd for i in items)
        out.append(f"| {service} | {subtotal:,.2f} | {_share(subtotal, total)} |")
    out += [
        f"| **Total** | **{total:,.2f}** | 100% |",
        "",
        "| Service | Resource | Quantity | Unit | Unit USD | Monthly USD | Share | Basis |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    for service, items in groups.items():
        for i in items:
            flag = " (migration only)" if i.migration_only else ""
            out.append(
                f"| {service} | {_md(i.resource)}{flag} | {i.quantity:,.4g} | {_md(i.unit)} "
                f"| {i.unit_usd:g} | {i.monthly_usd:,.2f} | {_share(i.monthly_usd, total)} "
                f"| {_md(i.basis)} |"
            )
    out.append("")
    out += [f"- {line}" for line in _summary_lines(est, budget, lambda_volumes)]
    return "\n".join(out) + "\n"
