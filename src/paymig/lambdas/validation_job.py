"""The validation job's function: the actions Step Functions invokes for a full pass.

The state machine (:mod:`paymig.infra.validation_job_definition`) sends
``{"action": "plan" | "slice" | "verdict" | "error", ...}``; each action is in
:mod:`paymig.runtime.validator.job`. The function runs in the VPC. It reads the same
environment as the deployment checks (:class:`paymig.lambdas.validation.LambdaSettings`)
and, to keep a full pass off the primaries, prefers two optional declarations:
``PAYMIG_DB_SOURCE_STANDBY`` (a hot standby of the on-prem source) over
``PAYMIG_DB_SOURCE``, and ``PAYMIG_DB_AURORA_READER`` (the cluster's reader endpoint)
over ``PAYMIG_DB_AURORA``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import boto3

from paymig.errors import PaymigError
from paymig.lambdas.validation import Databases, LambdaSettings
from paymig.runtime.controller.aws import AuditTrail
from paymig.runtime.validator.job import (
    JobRuntime,
    error_action,
    plan_action,
    slice_action,
    verdict_action,
)
from paymig.runtime.validator.pass_store import PassStore

LOG = logging.getLogger("paymig.validation_job")
LOG.setLevel(logging.INFO)

ACTIONS = ("plan", "slice", "verdict", "error")


def read_databases(databases: Databases) -> tuple[str, str]:
    """The source and target a full pass reads: replicas where declared."""
    source = "SOURCE_STANDBY" if databases.declared("SOURCE_STANDBY") else "SOURCE"
    target = "AURORA_READER" if databases.declared("AURORA_READER") else "AURORA"
    return databases.dsn(source), databases.dsn(target)


def runtime_from_env(env: Mapping[str, str], session: Any) -> JobRuntime:
    """The job's runtime: settings from the environment, AWS clients from ``session``."""
    settings = LambdaSettings.from_env(env)
    databases = Databases(env, session)
    dynamodb = session.client("dynamodb")
    return JobRuntime(
        cfg=settings.validation,
        rules=settings.rules,
        environment=settings.environment,
        databases=lambda: read_databases(databases),
        store=PassStore(dynamodb, settings.audit_table, settings.validation.max_keys_reported),
        audit=AuditTrail(dynamodb, settings.audit_table),
        cloudwatch=session.client("cloudwatch"),
    )


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Run ``event["action"]``; the result becomes the state machine's next input."""
    action = event.get("action")
    if action not in ACTIONS:
        raise PaymigError(f"event.action must be one of {', '.join(ACTIONS)}, got {action!r}")
    runtime = runtime_from_env(os.environ, boto3.Session())
    if action == "plan":
        result = plan_action(runtime, event.get("state") or {})
    elif action == "slice":
        result = slice_action(runtime, event, lambda: context.get_remaining_time_in_millis() / 1000)
    elif action == "verdict":
        result = verdict_action(runtime, event)
    else:
        result = error_action(runtime, event.get("state") or {})
    LOG.info(json.dumps(result, default=str))
    return result
