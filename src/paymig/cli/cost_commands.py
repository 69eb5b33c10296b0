"""`paymig cost`: the monthly estimate of an environment's synthesized stack."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from paymig.cli.options import ConfigOption, EnvOption, load
from paymig.cost.budget import budget_gate
from paymig.cost.report import (
    estimate_environment,
    lambda_by_volume,
    print_table,
    render_markdown,
    to_json,
)
from paymig.infra.synth import read_document, synthesized_document


class CostFormat(StrEnum):
    """Output formats of `paymig cost`."""

    table = "table"
    json = "json"
    markdown = "markdown"


def cost(
    env: EnvOption = "prod",
    config: ConfigOption = None,
    scale: Annotated[
        float,
        typer.Option("--scale", help="Multiply the traffic volume (must be > 0)."),
    ] = 1.0,
    fmt: Annotated[CostFormat, typer.Option("--format", help="Output format.")] = (
        CostFormat.table
    ),
    from_json: Annotated[
        Path | None,
        typer.Option("--from-json", help="Price this cdk.tf.json instead of synthesizing."),
    ] = None,
) -> None:
    """Estimate the monthly cost of the stack; exit 1 when it exceeds the budget."""
    cfg = load(env, config)
    document = read_document(from_json) if from_json else synthesized_document(cfg)
    est = estimate_environment(cfg, document, scale)
    volumes = lambda_by_volume(cfg, document)
    if fmt is CostFormat.json:
        print(json.dumps(to_json(est, cfg.budget_usd, volumes), indent=2))
    elif fmt is CostFormat.markdown:
        print(render_markdown(est, cfg.budget_usd, volumes), end="")
    else:
        print_table(Console(width=200), est, cfg.budget_usd, volumes)
    if budget_gate(est, cfg.budget_usd):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("cost")(cost)
