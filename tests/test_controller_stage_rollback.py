"""Every automatic actor acts on the migration stage (issue 17): the rollback Lambda,
`paymig rollback` and `paymig shift`, against the real moto server.

After cutover (or while a cutover or fallback is moving the writes) an alarm must not
route traffic to legacy: the Route 53 weights and the listener stay exactly as they were,
the alarm is recorded and people are told what to run. An unreadable stage holds traffic
too (:mod:`paymig.runtime.controller.stage_rule` says why). moto's DynamoDB answers the
stage read as DynamoDB documents GetItem; what moto does not model (composite alarm
rules, alarm evaluation) is said in `controller_env`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from controller_env import MigrationEnv, build_env
from paymig.config import PaymigConfig
from paymig.lambdas import rollback as rollback_lambda
from paymig.local.emulator import MotoServer
from paymig.naming import AUDIT_PARTITION_KEY, AUDIT_SORT_KEY, audit_table_name
from paymig.runtime.controller.aws import ControllerAws
from paymig.runtime.controller.core import IncompleteActionError
from test_controller_moto import LambdaContext, calls_to, cli, hook, unreachable, use_controllers

pytestmark = pytest.mark.slow

FALLBACK = "`paymig fallback --env prod --reason ...`"


@pytest.fixture
def make_env(
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    prod_config: PaymigConfig,
) -> Callable[..., MigrationEnv]:
    def make(**kwargs: Any) -> MigrationEnv:
        env = build_env(moto_server, monkeypatch, tmp_path, prod_config, **kwargs)
        for key, value in {
            "PAYMIG_STACK_NAME": env.stack,
            "PAYMIG_ENVIRONMENT": env.config.environment,
            "PAYMIG_HOSTED_ZONE_ID": env.zone_id,
            "PAYMIG_RECORD_NAME": env.config.dns.api_record_name,
            "PAYMIG_STABLE_ALIAS": "blue",
            "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS": "5",
            "PAYMIG_ALERT_TOPIC_ARN": env.alert_topic_arn,
        }.items():
            monkeypatch.setenv(key, value)
        return env

    return make


def trail(env: MigrationEnv) -> list[tuple[str, str]]:
    return [(e["action"], e["result"]) for e in env.audit().events()]


# The stage as `paymig cutover`/`fallback` store it, and the advice the alarm carries.
HELD = {
    "cut-over": (("cut-over", None), f"to move the writes and traffic back to legacy: {FALLBACK}"),
    "cutover under way": (
        ("replicating", "cutover"),
        "let the cutover finish (`paymig cutover --env prod --reason ...` resumes it), then "
        f"{FALLBACK} moves the writes and traffic back to legacy",
    ),
    "fallback under way": (
        ("cut-over", "fallback"),
        f"let the fallback finish ({FALLBACK} resumes it): it ends with traffic on legacy",
    ),
    "complete": (("complete", None), "fix the AWS side: nothing is left to fall back to"),
    # automation.after_cutover: fallback (the stack sets PAYMIG_AUTOMATIC_FALLBACK_SECONDS)
    "cut-over, paymig watch falls back": (
        ("cut-over", None),
        "`paymig watch` moves the writes and traffic back to legacy by itself once the "
        "composite has held ALARM for 120 s (automation.after_cutover: fallback); if it is "
        f"not running: {FALLBACK}",
    ),
}


@pytest.mark.parametrize("case", list(HELD))
def test_an_alarm_after_cutover_moves_nothing_records_and_notifies(make_env, monkeypatch, case):
    (stored, operation), advice = HELD[case]
    if "paymig watch" in case:
        monkeypatch.setenv("PAYMIG_AUTOMATIC_FALLBACK_SECONDS", "120")
    env = make_env(aws_weight=100)
    env.controller().listener.set({"blue": 0, "green": 100})
    env.move_stage(stored, operation)
    event = env.composite_alarm_event()
    aws = env.controller()
    seen = calls_to(aws)
    use_controllers(monkeypatch, aws)

    result = rollback_lambda.handler(event, LambdaContext())  # returns: no retry, no error

    assert (result["result"], result["complete"]) == ("notified", True)
    assert env.weights() == {"legacy": 0, "aws": 100}
    assert env.listener_weights() == {"blue": 0, "green": 100}
    assert "ChangeResourceRecordSets" not in seen and "ModifyListener" not in seen
    assert trail(env) == [("alarm-after-cutover", "notified")]
    recorded = env.audit().events()[-1]
    assert (recorded["stage"]["stage"], recorded["stage"]["operation"]) == (stored, operation)
    assert recorded["advice"] == advice
    assert recorded["trigger"]["alarm"] == "paymig-prod-migration-health"
    assert recorded["source"] == "lambda"
    [note] = env.notifications()
    assert (
        note["subject"]
        == (
            f"paymig: paymig-prod-migration-health in ALARM at stage {stored}, traffic NOT "
            f"moved: {advice}"
        )[:100]
    )
    assert (note["action"], note["advice"], note["stage"]["stage"]) == (
        "alarm-after-cutover",
        advice,
        stored,
    )
    assert note["detail"].startswith("traffic not moved: ")
    # A second delivery of the same event does the same, and still moves nothing.
    use_controllers(monkeypatch, env.controller())
    assert rollback_lambda.handler(event, LambdaContext())["result"] == "notified"
    assert env.weights() == {"legacy": 0, "aws": 100}


def test_while_replicating_the_alarm_still_rolls_back(make_env, monkeypatch):
    """The stored item after a fallback (version 2, replicating) lets traffic return."""
    env = make_env(aws_weight=50)
    env.move_stage("cut-over")
    env.move_stage("replicating")
    use_controllers(monkeypatch, env.controller())
    result = rollback_lambda.handler(env.composite_alarm_event(), LambdaContext())
    assert (result["result"], result["stage"]["stage"], result["stage"]["version"]) == (
        "succeeded",
        "replicating",
        2,
    )
    assert env.weights() == {"legacy": 100, "aws": 0}
    assert trail(env) == [("rollback", "started"), ("rollback", "succeeded")]


def test_an_unreadable_stage_holds_traffic_notifies_and_fails_for_a_retry(make_env, monkeypatch):
    env = make_env(aws_weight=50)
    event = env.composite_alarm_event()
    aws = env.controller()
    reads: list[str] = []
    hook(aws.stage_fast.client, "before-call", "GetItem", lambda **_: reads.append("GetItem"))
    hook(aws.stage_fast.client, "before-call", "GetItem", unreachable)
    seen = calls_to(aws)
    use_controllers(monkeypatch, aws)

    with pytest.raises(IncompleteActionError, match="rollback notified: traffic not moved: the "
                       "migration stage could not be read"):  # fmt: skip
        rollback_lambda.handler(event, LambdaContext())

    assert reads == ["GetItem", "GetItem"]  # two short attempts, then hold
    assert env.weights() == {"legacy": 50, "aws": 50}
    assert "ChangeResourceRecordSets" not in seen and "ModifyListener" not in seen
    assert trail(env) == [("alarm-stage-unknown", "notified")]
    [note] = env.notifications()
    assert note["stage"] == {
        "stage": None,
        "error": 'Could not connect to the endpoint URL: "https://unreachable.amazonaws.com"',
    }
    assert "`paymig status --env prod`" in note["advice"]
    # Lambda's retry reads the stage again: the source still writes, so it rolls back.
    use_controllers(monkeypatch, env.controller())
    assert rollback_lambda.handler(event, LambdaContext())["result"] == "succeeded"
    assert env.weights() == {"legacy": 100, "aws": 0}


def test_one_failed_stage_read_is_retried_and_the_rollback_goes_on(make_env, monkeypatch):
    env = make_env(aws_weight=50)
    aws = env.controller()
    failures = [unreachable]

    def first_fails(**kwargs: Any) -> None:
        if failures:
            failures.pop()(**kwargs)

    hook(aws.stage_fast.client, "before-call", "GetItem", first_fails)
    use_controllers(monkeypatch, aws)
    result = rollback_lambda.handler(env.composite_alarm_event(), LambdaContext())
    assert result["result"] == "succeeded"
    assert env.weights() == {"legacy": 100, "aws": 0}


def test_a_stage_item_nobody_wrote_holds_traffic_without_retrying(make_env, monkeypatch):
    env = make_env(aws_weight=50)
    env.client("dynamodb").put_item(
        TableName=audit_table_name(env.stack),
        Item={
            AUDIT_PARTITION_KEY: {"S": "STAGE"},
            AUDIT_SORT_KEY: {"S": "current"},
            "stage": {"S": "halfway"},
        },
    )
    use_controllers(monkeypatch, env.controller())
    with pytest.raises(IncompleteActionError, match="stage item holds 'halfway'"):
        rollback_lambda.handler(env.composite_alarm_event(), LambdaContext())
    assert env.weights() == {"legacy": 50, "aws": 50}
    assert trail(env) == [("alarm-stage-unknown", "notified")]


# --------------------------------------------------------------------------- the CLI


def test_cli_rollback_after_cutover_is_refused_in_one_line_naming_fallback(make_env, capsys):
    env = make_env(aws_weight=100)
    env.move_stage("cut-over")
    code, out, err = cli(env, capsys, "rollback", "--reason", "pager")
    since = env.stage().read().since
    assert (code, out) == (1, "")
    assert err == (
        f"paymig: rollback refused: the writes are on Aurora (stage cut-over since {since}); "
        "legacy's database is fenced and would not hold the payments Aurora took; to move "
        f"the writes and traffic back to legacy: {FALLBACK}; nothing changed\n"
    )
    assert env.weights() == {"legacy": 0, "aws": 100}
    assert env.listener_weights() == {"blue": 100, "green": 0}
    assert trail(env) == [("rollback", "refused")]
    assert env.notifications() == []


def test_cli_rollback_with_an_unreadable_stage_is_refused(make_env, capsys, monkeypatch):
    env = make_env(aws_weight=50)
    aws = env.controller()
    hook(aws.stage_fast.client, "before-call", "GetItem", unreachable)
    monkeypatch.setattr(ControllerAws, "connect", lambda *_, **__: aws)
    code, _, err = cli(env, capsys, "rollback", "--reason", "pager")
    assert code == 1
    assert err.startswith(
        "paymig: rollback refused: the migration stage could not be read (Could not connect"
    )
    assert "the runbook's manual rollback" in err and err.count("\n") == 1
    assert env.weights() == {"legacy": 50, "aws": 50}


@pytest.mark.parametrize(
    ("stored", "operation", "expected"),
    [
        ("cut-over", None, "the writes are on Aurora (stage cut-over since {since}): the "
         f"traffic shifts are over; {FALLBACK} moves writes and traffic back"),
        ("complete", None, "the migration is complete (since {since})"),
        ("replicating", "cutover", "a cutover is moving the writes (since {since}, by "
         "arn:aws:iam::123456789012:user/cutover); legacy's database may be fenced or behind"),
    ],
)  # fmt: skip
def test_cli_shift_is_refused_once_the_writes_move(make_env, capsys, stored, operation, expected):
    env = make_env(aws_weight=50)
    env.move_stage(stored, operation)
    since = env.stage().read().since
    code, _, err = cli(env, capsys, "shift", "--to", "100", "--reason", "go", "--force")
    assert (code, err) == (1, f"paymig: shift refused: {expected.format(since=since)}\n")
    assert env.weights() == {"legacy": 50, "aws": 50}
    refused = env.audit().events()[-1]
    assert (refused["action"], refused["result"], refused["stage"]["stage"]) == (
        "shift",
        "refused",
        stored,
    )
    assert env.audit().current_lock() is None


def test_cli_shift_while_replicating_still_shifts(make_env, capsys):
    env = make_env()
    env.move_stage("cut-over")
    env.move_stage("replicating")
    code, out, _ = cli(env, capsys, "shift", "--to", "10", "--reason", "phase 1")
    assert code == 0 and "shift 0% -> 10%: succeeded" in out
    assert env.weights() == {"legacy": 90, "aws": 10}
