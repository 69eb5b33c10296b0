"""`paymig runbook`: generate the migration runbook from the config and the synthesized stack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from paymig.cli.command_check import CliCommandChecker
from paymig.cli.generated import write_or_check
from paymig.cli.options import ConfigOption, EnvOption, load
from paymig.infra.synth import read_document, synthesized_document
from paymig.runbook.render import DEFAULT_OUTPUT, RunbookInputs, render_runbook


def runbook(
    ctx: typer.Context,
    *,
    env: EnvOption = "prod",
    config: ConfigOption = None,
    output: Annotated[
        Path, typer.Option("--output", help="Where to write the Markdown runbook.")
    ] = DEFAULT_OUTPUT,
    from_json: Annotated[
        Path | None,
        typer.Option("--from-json", help="Read this cdk.tf.json instead of synthesizing."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if OUTPUT differs from the result."),
    ] = False,
) -> None:
    """Generate the migration runbook (Markdown) for an environment."""
    cfg = load(env, config)
    document = read_document(from_json) if from_json else synthesized_document(cfg)
    selector = ("--env", env) if config is None else ("--env", env, "--config", str(config))
    # Every command line is checked against the CLI that is running this command.
    checker = CliCommandChecker(ctx.find_root().command)
    inputs = RunbookInputs(config=cfg, document=document, selector=selector)
    text = render_runbook(inputs, checker)
    regenerate = f"paymig runbook --env {env} --output {output}"
    write_or_check(output, text, check=check, regenerate=regenerate, stack=cfg.stack_name)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("runbook")(runbook)
