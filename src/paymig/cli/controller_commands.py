"""`paymig status`, `paymig shift` and `paymig rollback`: the migration controller.

Thin commands over :mod:`paymig.runtime.controller.actions`; `rollback` runs the very
same path as the rollback Lambda. Refusals exit 1 and name each failed gate.
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
from paymig.runtime.controller.core import ControllerSettings, RollbackBudget, budget_from_config

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
    """The rollback budget as text lines."""
    verdict = "within" if budget.within_limit else "OVER"
    lines = [
        f"rollback budget: {budget.total_seconds} s worst case ({verdict} the 300 s limit); "
        f"{budget.fastest_signal_seconds} s when {budget.fastest_alarm} detects the fault"
    ]
    lines += [f"  {s.name:<15} {s.seconds:>4} s  {s.detail}" for s in budget.steps]
    return lines


def status(
    env: EnvOption = "prod",
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.text,
    events: Annotated[
        int, typer.Option("--events", min=0, max=100, help="How many recent events to show.")
    ] = 10,
) -> None:
    """Show the phase, live weights, gates, recent events and the rollback budget."""
    cfg, settings, aws = _setup(env, config)
    report = actions.status(aws, settings, events=events)
    budget = budget_from_config(cfg)
    if fmt is OutputFormat.json:
        document = {
            "environment": cfg.environment,
            "phase": report.phase.phase,
            "phase_unconfirmed": report.phase.unconfirmed,
            "phase_entered_at": (
                report.phase.entered_at.isoformat() if report.phase.entered_at else None
            ),
            "weights": {"legacy": report.weights.legacy, "aws": report.weights.aws},
            "drift": report.drift,
            "listener": report.listener,
            "listener_error": report.listener_error,
            "gates": {g.name: {"ok": g.ok, "detail": g.detail} for g in report.gates},
            "events": report.events,
            "lock": report.lock,
            "table_statistics": report.table_statistics,
            "table_statistics_error": report.table_statistics_error,
            "rollback_budget_seconds": budget.total_seconds,
            "rollback_budget": budget.as_dict(),
        }
        print(json.dumps(document, default=str))
        return
    console = Console()
    pending = " (change not yet confirmed INSYNC)" if report.phase.unconfirmed else ""
    console.print(f"[bold]{cfg.stack_name}[/]: phase {report.phase.phase}% on AWS{pending}")
    console.print(f"Route 53 weights: {report.weights.describe()}")
    if report.drift:
        console.print(f"[yellow]warning:[/] {report.drift}")
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
        console.print(f"DMS tables (published to CloudWatch): {stats}")
    elif report.table_statistics_error:
        console.print(
            f"[yellow]DMS table statistics unreadable:[/] {report.table_statistics_error}"
        )
    gates = Table(title="gates")
    gates.add_column("gate")
    gates.add_column("state")
    gates.add_column("detail")
    for gate in report.gates:
        gates.add_row(gate.name, "[green]ok[/]" if gate.ok else "[red]FAILED[/]", gate.detail)
    console.print(gates)
    history = Table(title=f"last {len(report.events)} events")
    for column in ("at", "actor", "action", "from", "to", "result", "reason"):
        history.add_column(column)
    for e in report.events:
        history.add_row(
            str(e.get("at", "")),
            str(e.get("actor", "")),
            str(e.get("action", "")),
            str(e.get("from_phase", "")),
            str(e.get("to_phase", "")),
            str(e.get("result", "")),
            str(e.get("reason", "")),
        )
    console.print(history)
    for line in _budget_lines(budget):
        console.print(line, highlight=False)


def shift(
    *,
    to: Annotated[
        int, typer.Option("--to", min=0, max=100, help="Target percent of traffic on AWS.")
    ],
    reason: ReasonOption,
    env: EnvOption = "prod",
    config: ConfigOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Allow skipping phases (recorded). Gates still apply.")
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
                    "weights": {"legacy": outcome.weights.legacy, "aws": outcome.weights.aws},
                    "change_id": outcome.change_id,
                    "detail": outcome.detail,
                }
            )
        )
        return
    Console().print(
        f"shift {outcome.from_phase}% -> {outcome.to_phase}%: {outcome.result}: {outcome.detail}",
        highlight=False,
    )


def rollback(
    reason: ReasonOption,
    env: EnvOption = "prod",
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.text,
) -> None:
    """Roll back to legacy 100 / aws 0 and the stable alias (same path as the Lambda)."""
    _, settings, aws = _setup(env, config)
    outcome = actions.rollback(aws, settings.rollback, reason=reason, source="cli")
    if fmt is OutputFormat.json:
        print(json.dumps(outcome.as_dict(), default=str))
        return
    Console().print(f"rollback: {outcome.result}: {outcome.detail}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("status")(status)
    app.command("shift")(shift)
    app.command("rollback")(rollback)
