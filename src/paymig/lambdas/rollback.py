"""The rollback Lambda: the composite alarm's SNS notification triggers it.

It runs the same rollback as `paymig rollback` (`runtime.controller.rollback.rollback`):
Route 53 weights to `legacy` 100 / `aws` 0 first, then the listener back to the stable
alias, the INSYNC wait within the time left, the audit record of every step and a
notification to the alert topic. It is idempotent: when already rolled back it changes
nothing and says so.

It acts only on the composite alarm entering ALARM, and only while that event is
current: an event older than the maximum event age, or one whose alarm has left ALARM
since, is rejected with a log line (SNS and Lambda deliver late and more than once, and
a late event must not undo a later, legitimate shift). An incomplete rollback (a step
failed, INSYNC not seen, legacy unhealthy, the record missing) raises, so the invocation
counts as an error: Lambda retries it and the function's Errors alarm pages people.

It moves traffic only while the migration stage lets it return to legacy (the source
takes the writes, no cutover or fallback under way). After cutover it changes nothing,
records an `alarm-after-cutover` event and notifies the alert topic with the command to
run, and returns normally (a retry could not do better). When the stage cannot be read
it changes nothing, records and notifies, and raises: Lambda's retries read the stage
again (see :mod:`paymig.runtime.controller.stage_rule` for why this is the safe side).

Environment variables (set by the stack):

* ``PAYMIG_STACK_NAME`` (required): the stack name, e.g. ``paymig-prod``; every resource
  name (load balancer, target groups, alarms, audit table, topics) derives from it;
* ``PAYMIG_ENVIRONMENT`` (required): the environment (dimension of the traffic metric);
* ``PAYMIG_HOSTED_ZONE_ID`` (required): the hosted zone of the weighted records;
* ``PAYMIG_RECORD_NAME`` (required): the API's record name;
* ``PAYMIG_ALERT_TOPIC_ARN``: the alert topic the notification goes to (default: derived
  from the caller's account and the stack name);
* ``PAYMIG_STABLE_ALIAS`` (default ``blue``): the alias the listener returns to;
* ``PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS`` (default 60): INSYNC wait bound;
* ``PAYMIG_ROUTE53_SUBMIT_SECONDS`` (default 30): how long one Route 53 change is retried;
* ``PAYMIG_LOCK_TTL_SECONDS`` (default 600): lifetime of the controller lock;
* ``PAYMIG_MAX_EVENT_AGE_SECONDS`` (default: computed from the settings above);
* ``PAYMIG_AUTOMATIC_FALLBACK_SECONDS`` (empty or unset: `automation.after_cutover` is
  ``notify``): how long the composite holds ALARM before `paymig watch` falls back,
  named in the advice of an alarm after cutover.

This module and what it imports need only boto3 and the modules in
:data:`PACKAGE_MODULES` (no pydantic, no YAML), so the function's package stays small.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from paymig.errors import PaymigError
from paymig.runtime.controller.aws import ControllerAws
from paymig.runtime.controller.calls import AWS_ERRORS, describe_error
from paymig.runtime.controller.core import (
    AlarmNotification,
    IncompleteActionError,
    RollbackSettings,
    is_rollback_trigger,
    parse_alarm_message,
    stale_event_reason,
)
from paymig.runtime.controller.rollback import rollback

LOG = logging.getLogger("paymig.rollback")
LOG.setLevel(logging.INFO)

#: The paymig modules the function's package must hold (infra builds it from these).
PACKAGE_MODULES = (
    "errors.py",
    "naming.py",
    "rollback_timing.py",
    "runtime/__init__.py",
    "runtime/controller",
    "lambdas/__init__.py",
    "lambdas/rollback.py",
    "semantics/__init__.py",
    "semantics/route53_weighted.py",
)

REQUIRED = (
    "PAYMIG_STACK_NAME",
    "PAYMIG_ENVIRONMENT",
    "PAYMIG_HOSTED_ZONE_ID",
    "PAYMIG_RECORD_NAME",
)

#: Seconds kept back from the invocation's time left, so the function ends by itself.
DEADLINE_MARGIN_SECONDS = 2.0


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
    max_age = env.get("PAYMIG_MAX_EVENT_AGE_SECONDS")
    return RollbackSettings(
        stack_name=env["PAYMIG_STACK_NAME"],
        environment=env["PAYMIG_ENVIRONMENT"],
        hosted_zone_id=env["PAYMIG_HOSTED_ZONE_ID"],
        record_name=env["PAYMIG_RECORD_NAME"],
        stable_alias=env.get("PAYMIG_STABLE_ALIAS", "blue"),
        insync_timeout_seconds=_number(env, "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS", "60"),
        lock_ttl_seconds=int(_number(env, "PAYMIG_LOCK_TTL_SECONDS", "600")),
        route53_submit_seconds=_number(env, "PAYMIG_ROUTE53_SUBMIT_SECONDS", "30"),
        alert_topic_arn=env.get("PAYMIG_ALERT_TOPIC_ARN") or None,
        max_event_age_seconds=(
            None if not max_age else _number(env, "PAYMIG_MAX_EVENT_AGE_SECONDS", max_age)
        ),
        automatic_fallback_seconds=_seconds_or_none(env, "PAYMIG_AUTOMATIC_FALLBACK_SECONDS"),
    )


def _seconds_or_none(env: Mapping[str, str], name: str) -> float | None:
    """A number of seconds >= 0 from the environment, None if unset or empty."""
    raw = env.get(name, "")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise PaymigError(f"{name}: {raw!r} is not a number") from None
    if value < 0:
        raise PaymigError(f"{name}: must be 0 or more, got {raw}")
    return value


def alarm_notifications(event: Mapping[str, Any]) -> list[AlarmNotification]:
    """The CloudWatch alarm notifications in an SNS event (other messages skipped)."""
    found = []
    for record in event.get("Records", []):
        sns = record.get("Sns") if isinstance(record, Mapping) else None
        if not isinstance(sns, Mapping):
            continue
        parsed = parse_alarm_message(sns.get("Message", ""), str(sns.get("Timestamp", "")))
        if parsed is not None:
            found.append(parsed)
    return found


def triggering_alarm(
    event: Mapping[str, Any], settings: RollbackSettings
) -> AlarmNotification | None:
    """The first notification of the stack's composite alarm entering ALARM, if any."""
    for alarm in alarm_notifications(event):
        if is_rollback_trigger(alarm, settings.stack_name):
            return alarm
    return None


def _ignored(detail: str, **extra: Any) -> dict[str, Any]:
    """Log and return why nothing was done."""
    result = {"result": "ignored", "detail": detail, **extra}
    LOG.warning(json.dumps(result))
    return result


def _deadline(context: Any) -> float | None:
    """The monotonic time by which the invocation must end, from Lambda's time left."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    return time.monotonic() + float(remaining()) / 1000 - DEADLINE_MARGIN_SECONDS


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: roll back when the composite alarm entered ALARM, if current."""
    settings = settings_from_env(os.environ)
    alarm = triggering_alarm(event, settings)
    if alarm is None:
        seen = [f"{a.alarm_name}={a.new_state}" for a in alarm_notifications(event)]
        return _ignored(
            "no composite ALARM of this stack in the event"
            + (f" ({', '.join(seen)})" if seen else "")
        )
    aws = ControllerAws.connect(settings)
    try:
        composite = aws.metrics_fast.composite_now()
    except AWS_ERRORS as exc:  # unknown is no reason to skip a rollback
        LOG.warning(json.dumps({"composite_unreadable": describe_error(exc)}))
        composite = None
    stale = stale_event_reason(
        alarm,
        now=aws.clock.now(),
        max_age_seconds=settings.event_age_limit_seconds,
        composite=composite,
    )
    if stale is not None:
        return _ignored(f"stale alarm event, not acted on: {stale}", stale=True)
    function_arn = getattr(context, "invoked_function_arn", None) or "rollback function"
    outcome = rollback(
        aws,
        settings,
        reason=(
            f"alarm {alarm.alarm_name} {alarm.old_state or '?'} -> ALARM "
            f"at {alarm.changed_at or '?'}: {alarm.reason}"
        ),
        source="lambda",
        trigger={
            "alarm": alarm.alarm_name,
            "state_change_time": alarm.changed_at,
            "request_id": getattr(context, "aws_request_id", None),
        },
        actor_hint=f"lambda {function_arn}",
        deadline=_deadline(context),
        when_held="notify",
    )
    result = outcome.as_dict()
    LOG.info(json.dumps(result, default=str))
    if not outcome.complete:
        raise IncompleteActionError(f"rollback {outcome.result}: {outcome.detail}")
    return result
