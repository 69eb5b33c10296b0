"""`paymig cutover`, `paymig fallback` and `paymig watch`: move the writes between the databases.

Thin commands over :mod:`paymig.runtime.cutover.operations`, on the stack's two DMS
tasks and the write-target SSM parameter. Both databases are reached with an
administrator's libpq connection string (`--source-dsn`, `--target-dsn`, or the
`PAYMIG_SOURCE_DSN` / `PAYMIG_TARGET_DSN` variables, as `paymig validate` takes them):
keep the password in PGPASSWORD or ~/.pgpass, never in the DSN. A refusal names each
failed precondition and exits 1; a stopped operation says at which step and exits 1;
running the command again resumes it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import partial
from typing import Annotated

import boto3
import typer

from paymig.cli.controller_commands import ReasonOption, _say, _setup
from paymig.cli.infra_commands import FormatOption, OutputFormat
from paymig.cli.options import ConfigOption, EnvOption
from paymig.config import PaymigConfig
from paymig.naming import audit_table_name, write_target_parameter_name
from paymig.runtime.controller.core import ControllerRefusedError
from paymig.runtime.controller.stage import Operation
from paymig.runtime.cutover.dms import DmsReplication
from paymig.runtime.cutover.operations import OperationOutcome, run_operation
from paymig.runtime.cutover.progress import ProgressStore
from paymig.runtime.cutover.steps import CutoverEnv, Databases
from paymig.runtime.cutover.watch import Watch
from paymig.runtime.cutover.write_target import SsmWriteTarget

SourceDsnOption = Annotated[
    str,
    typer.Option(
        "--source-dsn",
        envvar="PAYMIG_SOURCE_DSN",
        show_envvar=True,
        help="libpq connection string of the on-prem source as its administrator (owner of "
        "the payment tables); the password in PGPASSWORD or ~/.pgpass, not in the DSN.",
    ),
]
TargetDsnOption = Annotated[
    str,
    typer.Option(
        "--target-dsn",
        envvar="PAYMIG_TARGET_DSN",
        show_envvar=True,
        help="libpq connection string of Aurora's writer as the master user; the password "
        "in PGPASSWORD or ~/.pgpass, not in the DSN.",
    ),
]


def _cutover_env(
    env: str, config: ConfigOption, dsns: tuple[str, str]
) -> tuple[PaymigConfig, CutoverEnv]:
    cfg, settings, aws = _setup(env, config)
    session = boto3.Session(region_name=cfg.region)
    stack = cfg.stack_name
    cutover_env = CutoverEnv(
        aws=aws,
        settings=settings,
        cutover=cfg.cutover,
        reverse_slot=cfg.replication.reverse_slot_name,
        databases=Databases(*dsns),
        replication=DmsReplication(session.client("dms"), stack),
        write_target=SsmWriteTarget(session.client("ssm"), write_target_parameter_name(stack)),
        progress=ProgressStore(aws.stage.client, audit_table_name(stack)),
        cache_seconds=cfg.app.write_target_cache_seconds,
    )
    return cfg, cutover_env


def _run(
    operation: Operation, env: str, config: ConfigOption, dsns: tuple[str, str], reason: str
) -> OperationOutcome:
    _, cutover_env = _cutover_env(env, config, dsns)
    return run_operation(cutover_env, operation, reason=reason)


def _show(outcome: OperationOutcome, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        print(json.dumps(outcome.as_dict(), default=str))
        return
    resumed = f" (resumed after {outcome.resumed_after})" if outcome.resumed_after else ""
    _say(f"{outcome.operation}: {outcome.result}{resumed}: {outcome.detail}")
    for step in outcome.steps:
        _say(f"  {step['step']:<15} {step['seconds']:>8.3f} s")


def _command(operation: Operation, summary: str) -> Callable[..., None]:
    """The typer command of one operation (the two take the same options)."""

    def command(
        *,
        reason: ReasonOption,
        source_dsn: SourceDsnOption,
        target_dsn: TargetDsnOption,
        env: EnvOption = "prod",
        config: ConfigOption = None,
        fmt: FormatOption = OutputFormat.text,
    ) -> None:
        _show(_run(operation, env, config, (source_dsn, target_dsn), reason), fmt)

    command.__doc__ = summary
    return command


cutover = _command(
    "cutover", "Move the writes to Aurora: fence, drain, sequences, reverse replication, switch."
)
fallback = _command(
    "fallback",
    "Move the writes back to the source after a cutover, and traffic to legacy 100.",
)


def watch(
    *,
    source_dsn: SourceDsnOption,
    target_dsn: TargetDsnOption,
    env: EnvOption = "prod",
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.text,
) -> None:
    """After cutover, fall back by itself when the composite alarm holds ALARM.

    Only with `automation.after_cutover: fallback`; keep it running on the host that ran
    the cutover. It ends when the stage leaves cut-over (a fallback it ran, or anyone's).
    """
    cfg, cutover_env = _cutover_env(env, config, (source_dsn, target_dsn))
    automation = cfg.automation
    if automation.after_cutover != "fallback":
        raise ControllerRefusedError(
            [
                f"watch refused: automation.after_cutover is {automation.after_cutover} for "
                f"env {env}: an alarm after cutover only notifies; set it to fallback to let "
                "`paymig watch` fall back"
            ]
        )
    # Each poll's line goes to stderr in JSON mode, so that stdout holds one document.
    report = _say if fmt is OutputFormat.text else partial(print, file=sys.stderr)
    outcome = Watch(
        cutover_env, automation.fallback_alarm_seconds, automation.watch_poll_seconds, report
    ).run()
    if fmt is OutputFormat.json:
        print(json.dumps(outcome.as_dict(), default=str))
        return
    _say(f"watch: {outcome.result}: {outcome.detail}")
    if outcome.fallback is not None:
        _show(outcome.fallback, fmt)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("cutover")(cutover)
    app.command("fallback")(fallback)
    app.command("watch")(watch)
