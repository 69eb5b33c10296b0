"""`paymig cost`: one month's bill of an environment's synthesized stack, and the month table."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from paymig.cli.options import ConfigOption, EnvOption, load
from paymig.cost.months import Month, current_month
from paymig.cost.plot import plot_month_table
from paymig.cost.report import (
    estimate_environment,
    failures,
    lambda_by_volume,
    print_table,
    render_markdown,
    table_environment,
    to_json,
)
from paymig.infra.synth import read_document, synthesized_document


class CostFormat(StrEnum):
    """Output formats of `paymig cost`."""

    table = "table"
    json = "json"
    markdown = "markdown"


def cost(  # noqa: PLR0917 (a typer command takes its options as parameters)
    env: EnvOption = "prod",
    config: ConfigOption = None,
    scale: Annotated[
        float,
        typer.Option("--scale", help="Multiply the traffic volume (must be > 0)."),
    ] = 1.0,
    month: Annotated[
        str | None,
        typer.Option("--month", help="Price this month, YYYY-MM (default: the current month)."),
    ] = None,
    fmt: Annotated[CostFormat, typer.Option("--format", help="Output format.")] = (
        CostFormat.table
    ),
    from_json: Annotated[
        Path | None,
        typer.Option("--from-json", help="Price this cdk.tf.json instead of synthesizing."),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Also write the month table as a PNG chart to this path."),
    ] = None,
) -> None:
    """Estimate a month's bill and the twelve months from the migration start.

    Exit 1 when a total or a month exceeds the budget.
    """
    priced_month = Month.parse(month, what="--month") if month else current_month()
    cfg = load(env, config)
    document = read_document(from_json) if from_json else synthesized_document(cfg)
    est = estimate_environment(cfg, document, scale, priced_month)
    table = table_environment(cfg, document, scale)
    volumes = lambda_by_volume(cfg, document, priced_month)
    if fmt is CostFormat.json:
        print(json.dumps(to_json(est, table, cfg.budget_usd, volumes), indent=2))
    elif fmt is CostFormat.markdown:
        print(render_markdown(est, table, cfg.budget_usd, volumes), end="")
    else:
        print_table(Console(width=200), est, table, cfg.budget_usd, volumes)
    if plot is not None:
        title = f"{cfg.stack_name}: monthly cost by service from {est.plan.start} (us-east-2)"
        plot_month_table(table, cfg.budget_usd, plot, title)
    if failures(est, table, cfg.budget_usd):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("cost")(cost)
