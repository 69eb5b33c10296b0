"""`paymig controls`: generate the PCI DSS control map from the synthesized stack."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from paymig.cli.command_check import CliCommandChecker
from paymig.cli.generated import write_or_check
from paymig.cli.options import ConfigOption, EnvOption, load
from paymig.controls.render import DEFAULT_OUTPUT, ControlMapInputs, render_controls
from paymig.controls.tests_index import find_tests_dir
from paymig.infra.synth import read_document, synthesized_document


def controls(
    ctx: typer.Context,
    *,
    env: EnvOption = "prod",
    config: ConfigOption = None,
    output: Annotated[
        Path, typer.Option("--output", help="Where to write the Markdown control map.")
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
    """Generate the PCI DSS 4.0 control map (Markdown) for an environment."""
    cfg = load(env, config)
    document = read_document(from_json) if from_json else synthesized_document(cfg)
    selector = ("--env", env) if config is None else ("--env", env, "--config", str(config))
    checker = CliCommandChecker(ctx.find_root().command)
    inputs = ControlMapInputs(cfg, document, selector, find_tests_dir())
    text = render_controls(inputs, checker)
    regenerate = f"paymig controls --env {env} --output {output}"
    write_or_check(output, text, check=check, regenerate=regenerate, stack=cfg.stack_name)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("controls")(controls)
