"""`paymig validate`: prove that source and target hold the same rows.

Exit codes: 0 when every table is consistent, 1 when differences were found, 2 on
errors (one line on stderr). This module stays clear of the CDKTF/jsii stack so that the
command starts in well under a second.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn

from paymig.cli.options import ConfigOption, EnvOption, load
from paymig.errors import PaymigError
from paymig.runtime.validator import Settings, Validator
from paymig.runtime.validator.plan import ScopeRule, parse_table_name


class OutputFormat(StrEnum):
    """Output formats: text for people, json for machines."""

    text = "text"
    json = "json"


class RichProgress:
    """A progress bar per table, on stderr, fed by the validator's first pass."""

    def __init__(self, console: Console) -> None:
        """Create the (not yet started) progress display."""
        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            "ranges",
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def start(self, table: str, ranges: int) -> None:
        """Add a bar for a table."""
        if not self._tasks:
            self._progress.start()
        self._tasks[table] = self._progress.add_task(table, total=ranges)

    def advance(self, table: str, ranges: int) -> None:
        """Move a table's bar forward."""
        self._progress.advance(self._tasks[table], ranges)

    def finish(self, table: str) -> None:
        """Complete a table's bar."""
        task = self._tasks[table]
        self._progress.update(task, completed=self._progress.tasks[task].total)

    def stop(self) -> None:
        """Stop the live display, if it was started."""
        if self._tasks:
            self._progress.stop()


def validate(  # noqa: PLR0917 (a typer command takes its options as parameters)
    source_dsn: Annotated[
        str,
        typer.Option(
            "--source-dsn",
            envvar="PAYMIG_SOURCE_DSN",
            help="libpq connection string of the source (on-prem) database.",
            show_envvar=True,
        ),
    ],
    target_dsn: Annotated[
        str,
        typer.Option(
            "--target-dsn",
            envvar="PAYMIG_TARGET_DSN",
            help="libpq connection string of the target (Aurora) database.",
            show_envvar=True,
        ),
    ],
    table: Annotated[
        list[str] | None,
        typer.Option(
            "--table",
            help="SCHEMA.NAME of a table to compare (repeatable); default: the replication scope.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="Parallel queries per side (default: validation.workers in config).",
        ),
    ] = None,
    grace: Annotated[
        float,
        typer.Option(
            "--grace", min=0.0, help="Seconds before differing keys are re-checked and reported."
        ),
    ] = 0.0,
    fmt: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = (
        OutputFormat.text
    ),
    env: EnvOption = "prod",
    config: ConfigOption = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Record the verdict in the environment's audit table (the shift gate reads it).",
        ),
    ] = False,
) -> None:
    """Compare tables between source and target by primary key, over every column."""
    full = load(env, config)
    cfg = full.validation
    # Without --table: every table of the replication scope (the DMS table rules).
    rules: tuple[ScopeRule, ...] = tuple(
        (r.schema_name, r.table_name, r.action) for r in full.replication.table_rules
    )
    tables: list[str] = []
    for name in table or []:
        try:
            schema, relation = parse_table_name(name)
        except ValueError as exc:
            raise PaymigError(f"--table: {exc}") from None
        tables.append(f"{schema}.{relation}")
    settings = Settings(
        workers=workers or cfg.workers,
        grace_seconds=grace,
        max_keys_reported=cfg.max_keys_reported,
        range_rows=cfg.range_rows,
        leaf_rows=cfg.leaf_rows,
        fanout=cfg.fanout,
    )
    progress = RichProgress(Console(stderr=True)) if fmt is OutputFormat.text else None
    validator = Validator(source_dsn, target_dsn, settings, progress=progress)
    try:
        report = validator.run(tables or None, rules=rules)
    finally:
        if progress is not None:
            progress.stop()
    if record:
        _record(full.stack_name, report.consistent, len(report.tables))
    if fmt is OutputFormat.json:
        print(json.dumps(report.to_json()))
    else:
        report.render(Console())
    if not report.consistent:
        raise typer.Exit(1)


def _record(stack_name: str, consistent: bool, tables: int) -> None:
    """Store the verdict where the controller's validation gate reads it."""
    # Imported here: boto3 costs startup time the plain comparison does not need.
    import boto3

    from paymig.naming import audit_table_name
    from paymig.runtime.controller.aws import AuditTrail, guarded

    trail = AuditTrail(boto3.client("dynamodb"), audit_table_name(stack_name))
    guarded(
        "audit table",
        lambda: trail.record_validation(
            {
                "status": "consistent" if consistent else "inconsistent",
                "summary": f"{tables} table(s) compared by paymig validate",
                "source": "cli",
            }
        ),
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("validate")(validate)
