"""`paymig finish`: end the migration once ``cut-over`` has held with every check passing.

The command stores the stage ``complete``; the removal itself is a configuration switch
(``migration.stage: finished``) and an ordinary plan and apply, which the command prints.
Refusals exit 1 with one line per failed precondition.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import typer

from paymig.cli.controller_commands import ReasonOption, _say
from paymig.cli.infra_commands import FormatOption, OutputFormat
from paymig.cli.options import ConfigOption, EnvOption, load
from paymig.config import PaymigConfig, resolve_config_path
from paymig.runtime.controller.aws import ControllerAws
from paymig.runtime.controller.core import ControllerRefusedError
from paymig.runtime.cutover.finish import FinishSettings
from paymig.runtime.cutover.finish import finish as run_finish


def next_steps(cfg: PaymigConfig, config_file: Path) -> list[str]:
    """What the operator does after the stage is complete (docs/deployment.md's commands)."""
    env, stack = cfg.environment, cfg.stack_name
    slot = cfg.replication.reverse_slot_name
    return [
        f"1. set `migration.stage: finished` in {config_file}",
        f"2. .venv/bin/paymig check --env {env}",
        f"   cd cdktf.out/stacks/{stack} && terraform init && terraform plan -out plan.tfplan",
        "3. the plan must show only removals: both DMS tasks, the four endpoints, the "
        "replication instance (and its subnet group, key, roles, event topic, DMS "
        "certificates and security-group rules), the legacy weighted record and its health "
        "checks, the replication alarms and DMS log group, the validation job and the "
        "deployment checks; besides them only the dashboard and two key policies change "
        "(they drop what was removed). Anything added or replaced: stop",
        "4. terraform apply plan.tfplan",
        f"5. on Aurora, drop the reverse slot nothing reads any more: SELECT "
        f"pg_drop_replication_slot('{slot}') FROM pg_replication_slots WHERE slot_name = "
        f"'{slot}' AND NOT active;",
        f"6. paymig cost --env {env} then shows the steady state (no DMS)",
    ]


def finish(
    reason: ReasonOption,
    env: EnvOption = "prod",
    config: ConfigOption = None,
    fmt: FormatOption = OutputFormat.text,
) -> None:
    """End the migration: stage cut-over -> complete, then the config switch to `finished`.

    Refused (exit 1) unless cut-over has held `migration.finish_after_hours` with no
    operation under way, all traffic on AWS and every gate that still applies passing.
    """
    cfg = load(env, config)
    settings = FinishSettings.from_config(cfg)
    aws = ControllerAws.connect(settings.controller.rollback, boto3.Session(region_name=cfg.region))
    try:
        outcome = run_finish(aws, settings, reason=reason)
    except ControllerRefusedError as refusal:
        for line in refusal.reasons:
            _say(f"finish refused: {line}")
        raise typer.Exit(1) from None
    steps = next_steps(cfg, resolve_config_path(env, config))
    if fmt is OutputFormat.json:
        document = {
            "result": outcome.result,
            "detail": outcome.detail,
            "stage": outcome.stage.as_dict(),
            "next": steps,
        }
        print(json.dumps(document))
        return
    _say(f"finish: {outcome.result}: {outcome.detail}")
    _say("next:")
    for line in steps:
        _say(f"  {line}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("finish")(finish)
