"""`paymig status`, `shift`, `rollback`, `ack` and `progress`: the migration controller.

Thin commands over :mod:`paymig.runtime.controller`; `rollback` runs the very same path
as the rollback Lambda. Refusals exit 1 and name each failed gate; an incomplete action
prints what it did and exits 1 with one line saying what is missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import boto3
import typer
from rich.console import Console
from rich.table import Table

from paymig.cli.infra_commands import FormatOption, OutputFormat
from paymig.cli.options import ConfigOption, EnvOption, load
from paymig.config import PaymigConfig
from paymig.runtime.controller import actions
from paymig.runtime.controller.aws import ControllerAws
from paymig.runtime.controller.budget import RollbackBudget, budget_from_config
from paymig.runtime.controller.core import (
    RESULT_PREEMPTED,
    ROLLBACK_LIMIT_SECONDS,
    ControllerSettings,
    IncompleteActionError,
)
from paymig.runtime.controller.rollback import rollback as run_rollback
from paymig.runtime.cutover.where import describe as describe_stage
from paymig.runtime.cutover.where import stage_view


def _say(text: str) -> None:
    """One line for people: not wrapped, so that it can be searched and copied whole."""
    Console(soft_wrap=True).print(text, highlight=False)


ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why: recorded in the audit trail with your identity.")
]


def _setup(env: str, config: Path | None) -> tuple[PaymigConfig, ControllerSettings, ControllerAws]:
    """Load the config, build the settings and connect in the config's region.

    boto3 finds credentials the usual way and honours `AWS_ENDPOINT_URL` (an emulator).
    """
    cfg = load(env, config)
    settings = ControllerSettings.from_config(cfg)
    return (
        cfg,
        settings,
        ControllerAws.connect(settings.rollback, boto3.Session(region_name=cfg.region)),
    )


def _budget_lines(budget: RollbackBudget) -> list[str]:
    """The rollback budget as text lines: the bound, each path, the worst path's terms."""
    verdict = "within" if budget.within_limit else "OVER"
    lines = [
        f"rollback budget: {budget.total_seconds} s worst case over every path ({verdict} "
        f"the {ROLLBACK_LIMIT_SECONDS} s limit); {budget.fastest_signal_seconds} s when "
        f"{budget.fastest_alarm} detects the fault first"
    ]
    lines += [f"  path {p.name:<17} {p.total_seconds:>4} s  {p.description}" for p in budget.paths]
    lines += [f"  {s.name:<18} {s.seconds:>4} s  {s.detail}" for s in budget.steps]
    return lines


def _status_document(
    cfg: PaymigConfig,
    report: actions.StatusReport,
    budget: RollbackBudget,
    stage: dict[str, object],
) -> dict[str, object]:
    """`status --format json`."""
    return {
        "environment": cfg.environment,
        "stage": stage,
        "phase": report.phase.phase,
        "phase_unconfirmed": report.phase.unconfirmed,
        "phase_entered_at": report.phase.entered_at.isoformat()
        if report.phase.entered_at
        else None,
        "phase_reconciled": report.phase.reconciled,
        "weights": report.weights.as_dict(),
        "answer": report.answer.as_dict(),
        "drift": report.drift,
        "listener": report.listener,
        "listener_error": report.listener_error,
        "gates": {g.name: {"ok": g.ok, "detail": g.detail} for g in report.gates},
        "hold": None if report.held is None else report.held.detail,
        "events": report.events,
        "lock": report.lock,
        "table_statistics": report.table_statistics,
        "table_statistics_error": report.table_statistics_error,
        "rollback_budget_seconds": budget.total_seconds,
        "rollback_budget": budget.as_dict(),
    }


def _print_summary(console: Console, cfg: PaymigConfig, report: actions.StatusReport) -> None:
    """Phase, weights, Route 53's answer, drift, hold, listener and lock."""
    pending = " (change not yet confirmed INSYNC)" if report.phase.unconfirmed else ""
    console.print(f"[bold]{cfg.stack_name}[/]: phase {report.phase.phase}% on AWS{pending}")
    notes = [
        ("note", report.phase.reconciled),
        ("Route 53 weights", report.weights.describe()),
        ("answer", report.answer.describe()),
        ("[yellow]warning[/]", report.drift),
        ("[red]shifts held[/]", report.held.detail if report.held else None),
    ]
    for label, text in notes:
        if text:
            console.print(f"{label}: {text}", highlight=False)
    if report.listener is not None:
        listener = " / ".join(f"{k} {v}" for k, v in report.listener.items())
        console.print(f"ALB listener: {listener}")
    else:
        console.print(f"[yellow]ALB listener unreadable:[/] {report.listener_error}")
    if report.lock:
        console.print(
            f"lock: held by {report.lock.get('holder')} ({report.lock.get('action')}) "
            f"since {report.lock.get('acquired_at')}"
        )
    if report.table_statistics is not None:
        stats = ", ".join(f"{k} {v:g}" for k, v in report.table_statistics.items())
        console.print(f"DMS tables: {stats}")
    elif report.table_statistics_error:
        console.print(
            f"[yellow]DMS table statistics unreadable:[/] {report.table_statistics_error}"
        )


def _print_status(
    cfg: PaymigConfig,
    report: actions.StatusReport,
    budget: RollbackBudget,
    stage: dict[str, object],
) -> None:
    """`status` for people."""
    console = Console()
    _print_summary(console, cfg, report)
    for line in describe_stage(stage):
        console.print(line, highlight=False)
    gates = Table(title="gates")
    for column in ("gate", "state", "detail"):
        gates.add_column(column)
    for gate in report.gates:
        gates.add_row(gate.name, "[green]ok[/]" if gate.ok else "[red]FAILED[/]", gate.detail)
    console.print(gates)
    history = Table(title=f"last {len(report.events)} events")
    columns = ("at", "actor", "action", "from_phase", "to_phase", "result", "reason")
    for column in columns:
        history.add_column(column.removesuffix("_phase"))
    for e in report.events:
        history.add_row(*(str(e.get(k, "")) for k in columns))
    console.print(history)
    for line in _budget_lines(budget):
        console.print(line, highlight=False)


def status(
    env: EnvOption = "prod",
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.text,
    events: Annotated[
        int, typer.Option("--events", min=0, max=100, help="How many recent events to show.")
    ] = 10,
) -> None:
    """Show the phase, weights and Route 53's answer, gates, hold, events, the budget.

    Read only: nothing is changed or published.
    """
    cfg, settings, aws = _setup(env, config)
    report = actions.status(aws, settings, events=events)
    budget = budget_from_config(cfg)
    stage = stage_view(aws, report.weights.aws_percent)
    if fmt is OutputFormat.json:
        print(json.dumps(_status_document(cfg, report, budget, stage), default=str))
        return
    _print_status(cfg, report, budget, stage)


def shift(
    *,
    to: Annotated[
        int, typer.Option("--to", min=0, max=100, help="Target percent of traffic on AWS.")
    ],
    reason: ReasonOption,
    env: EnvOption = "prod",
    config: ConfigOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Allow skipping phases, going back, and live weights that disagree with the "
            "trail (recorded); a forced shift to the live phase records it. Gates still apply.",
        ),
    ] = False,
    fmt: FormatOption = OutputFormat.text,
) -> None:
    """Shift traffic to the next phase; refused (exit 1) while any gate fails."""
    _, settings, aws = _setup(env, config)
    outcome = actions.shift(aws, settings, target=to, reason=reason, force=force)
    if fmt is OutputFormat.json:
        print(
            json.dumps(
                {
                    "result": outcome.result,
                    "from_phase": outcome.from_phase,
                    "to_phase": outcome.to_phase,
                    "weights": outcome.weights.as_dict(),
                    "change_id": outcome.change_id,
                    "detail": outcome.detail,
                }
            )
        )
    else:
        _say(
            f"shift {outcome.from_phase}% -> {outcome.to_phase}%: {outcome.result}: "
            f"{outcome.detail}"
        )
    if outcome.result == RESULT_PREEMPTED:
        raise typer.Exit(1)


def rollback(
    reason: ReasonOption,
    env: EnvOption = "prod",
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.text,
) -> None:
    """Roll back to legacy 100 / aws 0 and the stable alias (same path as the Lambda)."""
    _, settings, aws = _setup(env, config)
    outcome = run_rollback(aws, settings.rollback, reason=reason, source="cli", actor_hint="cli")
    if fmt is OutputFormat.json:
        print(json.dumps(outcome.as_dict(), default=str))
    else:
        _say(f"rollback: {outcome.result}: {outcome.detail}")
    if outcome.complete:
        return
    missing = [s.detail for s in outcome.steps if s.result in ("failed", "timed-out")]
    if outcome.answer is not None and outcome.answer.legacy_down_sends_to_aws:
        missing.append(outcome.answer.describe())
    if outcome.audit_error:
        missing.append(f"the audit record failed ({outcome.audit_error})")
    raise IncompleteActionError(
        f"rollback {outcome.result}: {'; '.join(missing)}; run it again, or follow the "
        "runbook's manual rollback"
    )


def ack(
    reason: ReasonOption,
    env: EnvOption = "prod",
    config: ConfigOption = None,
) -> None:
    """Acknowledge the latest rollback: with a newer validation, shifts may resume."""
    _, settings, aws = _setup(env, config)
    stored = actions.ack(aws, settings, reason=reason)
    _say(f"ack recorded at {stored['at']}: {stored['detail']}")


def progress(env: EnvOption = "prod", config: ConfigOption = None) -> None:
    """Publish DMS per-table progress to CloudWatch for the dashboard (run it on a schedule)."""
    _, _, aws = _setup(env, config)
    figures = actions.publish_progress(aws)
    if figures is None:
        _say("no DMS task yet: nothing published")
        return
    stats = ", ".join(f"{k} {v:g}" for k, v in figures.items())
    _say(f"published to Paymig/Migration: {stats}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("status")(status)
    app.command("shift")(shift)
    app.command("rollback")(rollback)
    app.command("ack")(ack)
    app.command("progress")(progress)
