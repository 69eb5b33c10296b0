"""`paymig validate`: prove that source and target hold the same rows.

Exit codes: 0 when every table is consistent, 1 when differences were found, 2 on
errors (one line on stderr). With ``--checkpoint PATH`` every batch's results are
recorded as they complete, and ``--resume`` continues an interrupted pass without
comparing a recorded range again. ``--help`` ends with the estimated duration of a full
pass at the configured load bounds. This module stays clear of the CDKTF/jsii stack so
that the command starts in well under a second.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from psycopg import conninfo
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn
from typer.core import TyperCommand

from paymig.cli.options import ConfigOption, EnvOption, load
from paymig.config import PaymigConfig, ValidationConfig
from paymig.errors import PaymigError
from paymig.runtime.validator import FileCheckpoint, Report, Settings, Validator
from paymig.runtime.validator.estimate import TableSize, estimate_lines, help_text
from paymig.runtime.validator.plan import ScopeRule, parse_table_name
from paymig.runtime.validator.side import Side


class OutputFormat(StrEnum):
    """Output formats: text for people, json for machines."""

    text = "text"
    json = "json"


class RichProgress:
    """A progress bar per table, on stderr, fed by the validator."""

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


def default_estimate() -> str:
    """The `--help` estimate, from the default environment's configuration."""
    try:
        cfg = load("prod", None)
    except PaymigError as exc:
        return f"Estimated duration of a full pass: not available ({exc})."
    return help_text(cfg.validation, "config/prod.yaml")


class EstimatingCommand(TyperCommand):
    """`validate`'s command: its help ends with the duration estimate, computed at help time."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """Add the estimate as the epilog, then print the help as usual."""
        self.epilog = default_estimate()
        super().format_help(ctx, formatter)


def with_replica(dsn: str, replica: str | None) -> str:
    """``dsn`` pointed at a replica: the replica's keywords override the DSN's."""
    if replica is None:
        return dsn
    try:
        merged = {**conninfo.conninfo_to_dict(dsn), **conninfo.conninfo_to_dict(replica)}
    except Exception as exc:  # psycopg.ProgrammingError, with libpq's reason
        raise PaymigError(f"source or target DSN: {str(exc).strip()}") from None
    return conninfo.make_conninfo(**{k: str(v) for k, v in merged.items() if v is not None})


def _tables(table: list[str] | None) -> list[str]:
    """Check each `--table` value; return them as `schema.name`."""
    tables: list[str] = []
    for name in table or []:
        try:
            schema, relation = parse_table_name(name)
        except ValueError as exc:
            raise PaymigError(f"--table: {exc}") from None
        tables.append(f"{schema}.{relation}")
    return tables


def _estimate(
    cfg: ValidationConfig, dsn: str, tables: list[str], rules: tuple[ScopeRule, ...]
) -> None:
    """Print the estimated duration of a pass over the source's real table sizes."""
    side = Side("source", dsn, Settings.from_config(cfg, workers=1))
    side.open()
    try:
        names = tables or side.scope(rules)
        sizes = []
        for name in names:
            schema, relation = name.split(".", 1)
            rows, size = side.size(schema, relation)
            sizes.append(TableSize(name, rows, size))
    finally:
        side.close()
    print("\n".join(estimate_lines(cfg, sizes)))


# The options of `paymig validate`, named so its signature reads as a list.
SourceDsnOption = Annotated[
    str,
    typer.Option(
        "--source-dsn",
        envvar="PAYMIG_SOURCE_DSN",
        help="libpq connection string of the source (on-prem) database.",
        show_envvar=True,
    ),
]
TargetDsnOption = Annotated[
    str,
    typer.Option(
        "--target-dsn",
        envvar="PAYMIG_TARGET_DSN",
        help="libpq connection string of the target (Aurora) database.",
        show_envvar=True,
    ),
]
TableOption = Annotated[
    list[str] | None,
    typer.Option(
        "--table",
        help="SCHEMA.NAME of a table to compare (repeatable); default: the replication scope.",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        max=64,
        help="Parallel queries per side (default: validation.workers in config).",
    ),
]
GraceOption = Annotated[
    float,
    typer.Option(
        "--grace", min=0.0, help="Seconds before differing keys are re-checked and reported."
    ),
]
CheckpointOption = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        help="Record every batch's results in this file, so the pass can be resumed.",
    ),
]
ResumeOption = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue the unfinished pass in --checkpoint; recorded ranges are not "
        "compared again.",
    ),
]
EstimateOption = Annotated[
    bool,
    typer.Option(
        "--estimate",
        help="Print how long a pass takes at the configured limits, from the source's "
        "table sizes, and compare nothing (the target is not contacted).",
    ),
]
FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]
RecordOption = Annotated[
    bool,
    typer.Option(
        "--record",
        help="Record the verdict in the environment's audit table (the shift gate reads it).",
    ),
]


def validate(  # noqa: PLR0917 (a typer command takes its options as parameters)
    source_dsn: SourceDsnOption,
    target_dsn: TargetDsnOption,
    table: TableOption = None,
    workers: WorkersOption = None,
    grace: GraceOption = 0.0,
    checkpoint: CheckpointOption = None,
    resume: ResumeOption = False,
    estimate: EstimateOption = False,
    fmt: FormatOption = OutputFormat.text,
    env: EnvOption = "prod",
    config: ConfigOption = None,
    record: RecordOption = False,
) -> None:
    """Compare tables between source and target by primary key, over every column.

    Reads the replicas that validation.source_replica_dsn / target_replica_dsn name,
    within the load bounds of the validation section (workers per side,
    statement_timeout, rate limit, batch length).
    """
    full = load(env, config)
    cfg = full.validation
    # Without --table: every table of the replication scope (the DMS table rules).
    rules: tuple[ScopeRule, ...] = tuple(
        (r.schema_name, r.table_name, r.action) for r in full.replication.table_rules
    )
    tables = _tables(table)
    source = with_replica(source_dsn, cfg.source_replica_dsn)
    if estimate:
        _estimate(cfg, source, tables, rules)
        return
    if resume and checkpoint is None:
        raise PaymigError("--resume: needs --checkpoint PATH (the file of the pass to resume)")
    settings = Settings.from_config(cfg, workers=workers or cfg.workers, grace_seconds=grace)
    store = FileCheckpoint(checkpoint, cfg.max_keys_reported) if checkpoint else None
    report = _run(
        (source, with_replica(target_dsn, cfg.target_replica_dsn)),
        settings,
        (tables, rules),
        store,
        resume=resume,
        progress=fmt is OutputFormat.text,
    )
    if record:
        _record(full, report)
    if fmt is OutputFormat.json:
        print(json.dumps(report.to_json()))
    else:
        report.render(Console())
    if not report.consistent:
        raise typer.Exit(1)


def _run(
    dsns: tuple[str, str],
    settings: Settings,
    scope: tuple[list[str], tuple[ScopeRule, ...]],
    checkpoint: FileCheckpoint | None,
    *,
    resume: bool,
    progress: bool,
) -> Report:
    """Run the pass with a progress display on stderr (text format)."""
    bars = RichProgress(Console(stderr=True)) if progress else None
    validator = Validator(dsns[0], dsns[1], settings, progress=bars)
    try:
        return validator.run(scope[0] or None, rules=scope[1], checkpoint=checkpoint, resume=resume)
    finally:
        if bars is not None:
            bars.stop()


def _record(full: PaymigConfig, report: Report) -> None:
    """Store the verdict where the controller's validation gate reads it."""
    # Imported here: boto3 costs startup time the plain comparison does not need.
    import boto3

    from paymig.naming import audit_table_name
    from paymig.runtime.controller.aws import AuditTrail, guarded

    trail = AuditTrail(boto3.client("dynamodb"), audit_table_name(full.stack_name))
    rows = sum(t.source_rows for t in report.tables)
    guarded(
        "audit table",
        lambda: trail.record_validation(
            {
                "status": "consistent" if report.consistent else "inconsistent",
                "summary": f"{len(report.tables)} table(s), {rows:,} rows compared by "
                "paymig validate",
                "source": "cli",
            }
        ),
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("validate", cls=EstimatingCommand)(validate)
