"""`paymig preflight` and `paymig source-sql`: the source PostgreSQL before DMS starts."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from paymig.cli.infra_commands import FormatOption, OutputFormat
from paymig.cli.options import ConfigOption, EnvOption, load
from paymig.errors import PaymigError
from paymig.runtime.preflight import PreflightReport, run_preflight
from paymig.runtime.source_sql import source_setup_script


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


def _write_whole(output: Path, text: str) -> None:
    """Write `text` to `output` in one step: a temporary file beside it, then a rename."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, output)
    except OSError as exc:
        raise PaymigError(f"--output {output}: cannot write: {exc.strerror}") from None


def source_sql(
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Write the script to this file instead of stdout."),
    ] = None,
    *,
    env: EnvOption = "prod",
    config: ConfigOption = None,
) -> None:
    """Print the SQL the DBA runs once on the source as a superuser: paymig's logins.

    Roles, grants and the markers table for `replication.source.database_name`, in one
    transaction, then one psql password prompt per user (no password in the script). It
    refuses to run a second time: after a cutover its grants would lift the fence.
    """
    database = load(env, config).replication.source.database_name
    text = source_setup_script(database).text
    if output is None:
        sys.stdout.write(text)
        return
    _write_whole(output, text)
    typer.echo(f"wrote {output}: run it on {database} as a superuser", err=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("preflight")(preflight)
    app.command("source-sql")(source_sql)
