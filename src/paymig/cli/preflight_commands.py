"""`paymig preflight`: check a source PostgreSQL before DMS is started."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from paymig.cli.infra_commands import FormatOption, OutputFormat
from paymig.cli.options import ConfigOption, EnvOption, load
from paymig.runtime.preflight import PreflightReport, run_preflight


def _print_table(report: PreflightReport) -> None:
    """Print check -> pass/fail -> why, then the verdict."""
    table = Table(title="paymig preflight")
    table.add_column("check")
    table.add_column("result")
    table.add_column("why")
    for check in report.checks:
        verdict = "[green]pass[/]" if check.ok else "[red]FAIL[/]"
        table.add_row(check.name, verdict, check.detail)
    console = Console()
    console.print(table)
    failed = [c.name for c in report.checks if not c.ok]
    if failed:
        console.print(f"[red]{len(failed)} check(s) failed: {', '.join(failed)}[/]")
    else:
        console.print("[green]the source is ready for DMS[/]")


def preflight(
    source_dsn: Annotated[
        str,
        typer.Option(
            "--source-dsn",
            help="libpq connection string of the source; keep the password in "
            "PGPASSWORD or ~/.pgpass, not in the DSN.",
        ),
    ],
    table: Annotated[
        list[str] | None,
        typer.Option(
            "--table",
            help="Table to check (schema.table; repeatable). Default: the tables the "
            "config's replication.table_rules select.",
        ),
    ] = None,
    *,
    check_logins: Annotated[
        bool,
        typer.Option(
            "--check-logins",
            help="Also check every paymig login on the source (names from paymig.logins: "
            "the API, DMS, validation and rotation logins, both users of each pair) has "
            "exactly the privileges it needs; any login may run this.",
        ),
    ] = False,
    env: EnvOption = "prod",
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.text,
) -> None:
    """Check that a source PostgreSQL is ready for DMS: exit 0 all pass, 1 any fails."""
    replication = load(env, config).replication
    report = run_preflight(
        source_dsn,
        table or None,
        replication.lob_mode,
        table_rules=replication.table_rules,
        check_logins=check_logins,
    )
    if fmt is OutputFormat.json:
        print(json.dumps(report.as_dict()))
    else:
        _print_table(report)
    if not report.passed:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("preflight")(preflight)
