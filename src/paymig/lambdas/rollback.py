"""The rollback Lambda: the composite alarm's SNS notification triggers it.

It runs the same rollback as `paymig rollback` (:func:`paymig.runtime.controller.actions.rollback`):
ALB listener back to the stable alias, Route 53 weights to `legacy` 100 / `aws` 0, wait
for INSYNC, record the event in the audit table, publish a notification. It is
idempotent: when already rolled back it changes nothing and says so.

Environment variables (set by the stack):

* ``PAYMIG_STACK_NAME`` (required): the stack name, e.g. ``paymig-prod``; every resource
  name (load balancer, target groups, alarms, audit table, topic) derives from it;
* ``PAYMIG_ENVIRONMENT`` (required): the environment (dimension of the traffic metric);
* ``PAYMIG_HOSTED_ZONE_ID`` (required): the hosted zone of the weighted records;
* ``PAYMIG_RECORD_NAME`` (required): the API's record name;
* ``PAYMIG_STABLE_ALIAS`` (default ``blue``): the alias the listener returns to;
* ``PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS`` (default 60): INSYNC wait bound;
* ``PAYMIG_LOCK_TTL_SECONDS`` (default 600): lifetime of the controller lock.

This module and what it imports need only boto3 and the standard library (no pydantic,
no YAML), so the function's package stays small.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from paymig.errors import PaymigError
from paymig.naming import alarm_names
from paymig.runtime.controller.actions import rollback
from paymig.runtime.controller.aws import ControllerAws
from paymig.runtime.controller.core import AlarmNotification, RollbackSettings, parse_alarm_message

LOG = logging.getLogger("paymig.rollback")
LOG.setLevel(logging.INFO)

REQUIRED = (
    "PAYMIG_STACK_NAME",
    "PAYMIG_ENVIRONMENT",
    "PAYMIG_HOSTED_ZONE_ID",
    "PAYMIG_RECORD_NAME",
)


def _number(env: Mapping[str, str], name: str, default: str) -> float:
    """A positive number from the environment, or a clear error naming the variable."""
    raw = env.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        raise PaymigError(f"{name}: {raw!r} is not a number") from None
    if value <= 0:
        raise PaymigError(f"{name}: must be positive, got {raw}")
    return value


def settings_from_env(env: Mapping[str, str]) -> RollbackSettings:
    """The rollback settings from the function's environment variables."""
    missing = [name for name in REQUIRED if not env.get(name)]
    if missing:
        raise PaymigError(f"environment variable(s) not set: {', '.join(missing)}")
    return RollbackSettings(
        stack_name=env["PAYMIG_STACK_NAME"],
        environment=env["PAYMIG_ENVIRONMENT"],
        hosted_zone_id=env["PAYMIG_HOSTED_ZONE_ID"],
        record_name=env["PAYMIG_RECORD_NAME"],
        stable_alias=env.get("PAYMIG_STABLE_ALIAS", "blue"),
        insync_timeout_seconds=_number(env, "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS", "60"),
        lock_ttl_seconds=int(_number(env, "PAYMIG_LOCK_TTL_SECONDS", "600")),
    )


def alarm_notifications(event: Mapping[str, Any]) -> list[AlarmNotification]:
    """The CloudWatch alarm notifications in an SNS event (other messages skipped)."""
    found = []
    for record in event.get("Records", []):
        sns = record.get("Sns") if isinstance(record, Mapping) else None
        if not isinstance(sns, Mapping):
            continue
        parsed = parse_alarm_message(sns.get("Message", ""))
        if parsed is not None:
            found.append(parsed)
    return found


def triggering_alarm(
    event: Mapping[str, Any], settings: RollbackSettings
) -> AlarmNotification | None:
    """The first notification of one of this stack's alarms entering ALARM, if any."""
    ours = set(alarm_names(settings.stack_name))
    for alarm in alarm_notifications(event):
        if alarm.new_state == "ALARM" and alarm.alarm_name in ours:
            return alarm
    return None


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: roll back when one of the stack's alarms went to ALARM."""
    settings = settings_from_env(os.environ)
    alarm = triggering_alarm(event, settings)
    if alarm is None:
        seen = [f"{a.alarm_name}={a.new_state}" for a in alarm_notifications(event)]
        detail = "no alarm of this stack entered ALARM" + (f" ({', '.join(seen)})" if seen else "")
        LOG.info(json.dumps({"result": "ignored", "detail": detail}))
        return {"result": "ignored", "detail": detail}
    reason = (
        f"alarm {alarm.alarm_name} {alarm.old_state or '?'} -> ALARM "
        f"at {alarm.changed_at or '?'}: {alarm.reason}"
    )
    request_id = getattr(context, "aws_request_id", None)
    trigger = {
        "alarm": alarm.alarm_name,
        "state_change_time": alarm.changed_at,
        "request_id": request_id,
    }
    outcome = rollback(
        ControllerAws.connect(settings), settings, reason=reason, source="lambda", trigger=trigger
    )
    result = outcome.as_dict()
    LOG.info(json.dumps(result, default=str))
    return result
