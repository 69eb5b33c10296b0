"""The controller, the CLI and the rollback Lambda against the real moto server.

Faults are injected with botocore event hooks on the controller's own clients: a
`before-call` handler that answers `Throttling` instead of sending the request, an
`after-call` handler that rewrites a GetChange answer to PENDING (moto reports every
change INSYNC at once), and handlers that act (another controller, an alarm flipping)
at a chosen moment of the real call sequence. AWS itself is never mocked: every other
call goes to moto. What moto leaves untested (composite alarm rules, alarm evaluation
from metric data) is said in `controller_env`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from controller_env import MigrationEnv, build_env
from paymig.cli import main
from paymig.config import PaymigConfig
from paymig.lambdas import rollback as rollback_lambda
from paymig.local.emulator import MotoServer
from paymig.runtime.controller import actions
from paymig.runtime.controller.aws import ControllerAws
from paymig.runtime.controller.core import (
    ChangeNotInSyncError,
    ControllerRefusedError,
    LockHeldError,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def env(
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    prod_config: PaymigConfig,
) -> MigrationEnv:
    return build_env(moto_server, monkeypatch, tmp_path, prod_config)


@pytest.fixture
def make_env(
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    prod_config: PaymigConfig,
) -> Callable[..., MigrationEnv]:
    def make(**kwargs: Any) -> MigrationEnv:
        return build_env(moto_server, monkeypatch, tmp_path, prod_config, **kwargs)

    return make


def cli(env: MigrationEnv, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([*args, "--config", str(env.config_path)])
    out, err = capsys.readouterr()
    return code, out, err


def hook(aws_client: Any, event: str, operation: str, handler: Callable[..., Any]) -> None:
    service = aws_client.meta.service_model.service_id.hyphenize()
    aws_client.meta.events.register(f"{event}.{service}.{operation}", handler)


def calls_to(aws: ControllerAws) -> list[str]:
    """Record every operation the controller's clients send (observation only)."""
    seen: list[str] = []
    for client in (aws.route53.client, aws.listener.client):
        client.meta.events.register("before-call.*.*", lambda model, **_: seen.append(model.name))
    return seen


def events(env: MigrationEnv) -> list[dict[str, Any]]:
    return env.audit().events()


# --------------------------------------------------------------------------- shift


def test_shift_happy_path_0_10_50_recorded_and_published(env, capsys):
    code, out, err = cli(env, capsys, "shift", "--to", "10", "--reason", "phase 1")
    assert (code, err) == (0, "")
    assert "shift 0% -> 10%: succeeded" in out
    assert env.weights() == {"legacy": 90, "aws": 10}
    code, out, _ = cli(
        env, capsys, "shift", "--to", "50", "--reason", "phase 2", "--format", "json"
    )
    assert code == 0
    shifted = json.loads(out)
    assert (shifted["result"], shifted["from_phase"], shifted["to_phase"]) == ("succeeded", 10, 50)
    assert shifted["weights"] == {"legacy": 50, "aws": 50}
    assert env.weights() == {"legacy": 50, "aws": 50}

    trail = events(env)
    assert [(e["action"], e["from_phase"], e["to_phase"], e["result"]) for e in trail] == [
        ("shift", 0, 10, "succeeded"),
        ("shift", 10, 50, "succeeded"),
    ]
    assert trail[1]["actor"] == "arn:aws:sts::123456789012:user/moto"
    assert trail[1]["reason"] == "phase 2"
    assert trail[1]["weights_before"] == {"legacy": 90, "aws": 10}
    assert trail[1]["weights_after"] == {"legacy": 50, "aws": 50}
    # The other fields of both records survive the UPSERT.
    records = env.client("route53").list_resource_record_sets(HostedZoneId=env.zone_id)
    by_id = {r["SetIdentifier"]: r for r in records["ResourceRecordSets"] if "SetIdentifier" in r}
    assert by_id["legacy"]["ResourceRecords"] == [
        {"Value": str(ip)} for ip in env.config.dns.legacy_addresses
    ]
    assert by_id["legacy"]["TTL"] == 60
    assert by_id["aws"]["AliasTarget"]["EvaluateTargetHealth"] is True
    # The traffic split is published as the dashboard's custom metric.
    metrics = env.client("cloudwatch").list_metrics(
        Namespace="Paymig/Migration", MetricName="TrafficWeight"
    )["Metrics"]
    dims = {tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in metrics}
    assert dims == {
        (("Environment", "prod"), ("SetIdentifier", "aws")),
        (("Environment", "prod"), ("SetIdentifier", "legacy")),
    }
    now = datetime.now(UTC)
    aws_split = env.client("cloudwatch").get_metric_statistics(
        Namespace="Paymig/Migration",
        MetricName="TrafficWeight",
        Dimensions=[
            {"Name": "Environment", "Value": "prod"},
            {"Name": "SetIdentifier", "Value": "aws"},
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
        Period=3600,
        Statistics=["Maximum", "Minimum"],
    )["Datapoints"]
    assert [(p["Minimum"], p["Maximum"]) for p in aws_split] == [(10.0, 50.0)]

    code, out, _ = cli(env, capsys, "status", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["phase"] == 50
    assert doc["weights"] == {"legacy": 50, "aws": 50}
    assert doc["gates"]["alarm:migration-health"] == {
        "ok": True,
        "detail": "paymig-prod-migration-health is OK",
    }
    assert all(g["ok"] for g in doc["gates"].values())
    assert [e["to_phase"] for e in doc["events"]] == [50, 10]
    assert doc["rollback_budget_seconds"] == 206  # test config: INSYNC timeout 1 s
    assert doc["drift"] is None


def test_status_text_shows_phase_gates_events_and_budget(env, capsys):
    env.set_alarm("aurora-cpu", "ALARM")
    code, out, _ = cli(env, capsys, "status")
    assert code == 0
    assert "phase 0% on AWS" in out
    assert "Route 53 weights: legacy 100 / aws 0" in out
    assert "ALB listener: blue 100 / green 0" in out
    assert "rollback budget: 206 s worst case (within the 300 s limit)" in out
    line = next(li for li in out.splitlines() if "alarm:aurora-cpu" in li)
    assert "FAILED" in line


def test_each_gate_refuses_the_shift_and_names_itself(make_env, capsys):
    env = make_env(cdc_latency=None, validation=None)

    def refused() -> str:
        code, _, err = cli(env, capsys, "shift", "--to", "10", "--reason", "go")
        assert code == 1
        assert env.weights() == {"legacy": 100, "aws": 0}
        assert events(env)[-1]["result"] == "refused"
        return err

    err = refused()
    assert "gate cdc-latency failed: no CDC latency datapoint in the last 300 s" in err
    assert "gate validation failed: no validation result recorded" in err
    assert events(env)[-1]["failed_gates"] == ["cdc-latency", "validation"]
    env.put_cdc_latency(5.0)
    env.audit().record_validation({"status": "consistent"})

    for metric, state in [
        ("5xx-rate", "ALARM"),
        ("replica-lag", "INSUFFICIENT_DATA"),
        ("migration-health", "ALARM"),
    ]:
        env.set_alarm(metric, state)
        err = refused()
        assert err.count("gate ") == 1, err  # that gate only
        assert f"gate alarm:{metric} failed: paymig-prod-{metric} is {state}" in err
        assert events(env)[-1]["failed_gates"] == [f"alarm:{metric}"]
        env.set_alarm(metric, "OK")

    env.audit().record_validation(
        {"status": "inconsistent", "summary": "3 payments differ", "mismatches": 3}
    )
    err = refused()
    assert "gate validation failed: latest validation is inconsistent at" in err
    assert err.rstrip().endswith(": 3 payments differ")
    latest = env.audit().latest_validation()
    assert latest is not None and latest["mismatches"] == 3
    env.audit().record_validation({"status": "consistent"})

    env.put_cdc_latency(45.0)
    env.client("cloudwatch").delete_alarms(AlarmNames=["paymig-prod-dms-task-failure"])
    err = refused()
    assert "gate cdc-latency failed: CDC latency 45 s > threshold 30 s" in err
    assert "gate alarm:dms-task-failure failed: alarm paymig-prod-dms-task-failure not found" in err


def test_shift_refused_when_gates_cannot_be_read(env, capsys):
    """The audit table is there but CloudWatch answers errors: the gates fail, not pass."""
    aws = env.controller()

    def broken(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://monitoring", 500, {}, None), {
            "Error": {"Code": "InternalFailure", "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        }

    hook(aws.metrics.client, "before-call", "DescribeAlarms", broken)
    hook(aws.metrics.client, "before-call", "GetMetricStatistics", broken)
    with pytest.raises(ControllerRefusedError) as refused:
        actions.shift(aws, env.settings, target=10, reason="go")
    failed = {r.split(" failed:")[0] for r in refused.value.reasons}
    assert "gate cdc-latency" in failed
    assert "gate alarm:migration-health" in failed
    assert "cannot read alarm paymig-prod-5xx-rate: InternalFailure: injected" in str(refused.value)
    assert env.weights() == {"legacy": 100, "aws": 0}


def test_dwell_time_refuses_the_next_phase(make_env, capsys):
    env = make_env(controller={"dwell_minutes": {10: 60}})
    assert cli(env, capsys, "shift", "--to", "10", "--reason", "go")[0] == 0
    code, _, err = cli(env, capsys, "shift", "--to", "50", "--reason", "go")
    assert code == 1
    assert "gate dwell failed: at 10% for 0 min of 60 (60 min left)" in err


def test_skipping_phases_refused_unless_forced_and_recorded(env, capsys):
    code, _, err = cli(env, capsys, "shift", "--to", "100", "--reason", "all in")
    assert code == 1
    assert "--to 100 skips phase(s) 10%, 50% from 0%" in err
    assert env.weights() == {"legacy": 100, "aws": 0}

    code, out, _ = cli(env, capsys, "shift", "--to", "100", "--reason", "CAB-42", "--force")
    assert "shift 0% -> 100%: succeeded: forced: --to 100 skips phase(s) 10%, 50%" in out
    assert code == 0
    assert env.weights() == {"legacy": 0, "aws": 100}
    refused, forced = events(env)
    assert refused["result"] == "refused"
    assert (forced["result"], forced["forced"], forced["reason"]) == ("succeeded", True, "CAB-42")
    assert forced["detail"].startswith("forced: --to 100 skips phase(s) 10%, 50% from 0%")


def test_shift_to_current_phase_changes_nothing(env, capsys):
    assert cli(env, capsys, "shift", "--to", "10", "--reason", "go")[0] == 0
    aws = env.controller()
    seen = calls_to(aws)
    outcome = actions.shift(aws, env.settings, target=10, reason="again")
    assert outcome.result == "no-change"
    assert "ChangeResourceRecordSets" not in seen
    assert events(env)[-1]["detail"] == "already at 10% (legacy 90 / aws 10); nothing changed"


def test_shift_refuses_bad_input_in_one_line(env, capsys):
    code, _, err = cli(env, capsys, "shift", "--to", "30", "--reason", "go")
    assert (code, err) == (1, "paymig: --to 30: not a phase of 0, 10, 50, 100\n")
    code, _, err = cli(env, capsys, "shift", "--to", "10", "--reason", "  ")
    assert (code, err) == (1, "paymig: --reason: a reason is required and must not be blank\n")


# --------------------------------------------------------------------------- faults


def test_route53_throttling_is_retried_then_succeeds(env):
    aws = env.controller()
    throttled: list[str] = []

    def throttle(model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if len(throttled) >= 3:
            return None  # let the real call through to moto
        throttled.append(model.name)
        return AWSResponse("https://route53", 400, {}, None), {
            "Error": {"Code": "Throttling", "Message": "Rate exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    hook(aws.route53.client, "before-call", "ChangeResourceRecordSets", throttle)
    outcome = actions.shift(aws, env.settings, target=10, reason="go")
    assert outcome.result == "succeeded"
    assert throttled == ["ChangeResourceRecordSets"] * 3
    assert aws.route53.retries == 3
    assert env.weights() == {"legacy": 90, "aws": 10}


def test_route53_throttling_beyond_the_retries_fails_clearly_and_is_recorded(env):
    aws = env.controller()
    aws.route53.max_attempts = 3

    def throttle(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://route53", 400, {}, None), {
            "Error": {"Code": "Throttling", "Message": "Rate exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    hook(aws.route53.client, "before-call", "ChangeResourceRecordSets", throttle)
    with pytest.raises(Exception, match="Route 53 change: Throttling: Rate exceeded"):
        actions.shift(aws, env.settings, target=10, reason="go")
    assert events(env)[-1]["result"] == "failed"
    assert env.audit().current_lock() is None  # released


def test_change_pending_past_timeout_fails_clearly_and_records_state(env, capsys):
    """moto answers INSYNC at once, so an after-call hook rewrites GetChange to PENDING."""
    aws = env.controller()
    polls: list[str] = []

    def pending(parsed: dict[str, Any], **_: Any) -> None:
        polls.append(parsed["ChangeInfo"]["Status"])
        parsed["ChangeInfo"]["Status"] = "PENDING"

    hook(aws.route53.client, "after-call", "GetChange", pending)
    with pytest.raises(ChangeNotInSyncError) as failure:
        actions.shift(aws, env.settings, target=10, reason="go")
    assert "still PENDING after 1 s" in str(failure.value)
    assert len(polls) >= 2  # polled, then gave up at the timeout
    last = events(env)[-1]
    assert (last["result"], last["to_phase"]) == ("unconfirmed", 10)
    assert f"Route 53 change {last['change_id']} still PENDING" in str(failure.value)
    # The change was submitted: the recorded phase follows it, flagged unconfirmed.
    code, out, _ = cli(env, capsys, "status", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["phase"], doc["phase_unconfirmed"]) == (10, True)


def test_two_controllers_at_once_one_wins_one_refuses(env):
    first, second = env.controller(), env.controller()
    refusals: list[LockHeldError] = []

    def second_controller_starts(**_: Any) -> None:
        if refusals:
            return
        try:
            actions.shift(second, env.settings, target=10, reason="me too")
        except LockHeldError as exc:
            refusals.append(exc)

    hook(first.route53.client, "before-call", "ChangeResourceRecordSets", second_controller_starts)
    outcome = actions.shift(first, env.settings, target=10, reason="me first")
    assert outcome.result == "succeeded"
    assert len(refusals) == 1
    assert (
        "another controller holds the lock: arn:aws:sts::123456789012:user/moto "
        "(shift to 10%)" in str(refusals[0])
    )
    trail = events(env)
    assert [(e["reason"], e["result"]) for e in trail] == [
        ("me too", "refused"),
        ("me first", "succeeded"),
    ]
    assert env.weights() == {"legacy": 90, "aws": 10}
    assert env.audit().current_lock() is None


def test_rollback_takes_the_lock_over_from_a_shift_in_flight(env):
    shifter, rollbacker = env.controller(), env.controller()
    done: list[str] = []

    def rollback_now(**_: Any) -> None:
        if not done:
            done.append(actions.rollback(rollbacker, env.settings.rollback, reason="pager").result)

    hook(shifter.audit.client, "before-call", "UpdateItem", rollback_now)  # lock confirmation
    with pytest.raises(LockHeldError, match="the lock was taken over"):
        actions.shift(shifter, env.settings, target=10, reason="go")
    assert done == ["no-change"]
    assert env.weights() == {"legacy": 100, "aws": 0}
    rollback_event = next(e for e in events(env) if e["action"] == "rollback")
    assert rollback_event["preempted"]["action"] == "shift to 10%"


def test_alarm_flapping_during_a_shift_is_caught_before_the_change(env):
    """The alarm is OK when first read, flips while the other gates are read."""
    aws = env.controller()
    seen = calls_to(aws)

    def flip(**_: Any) -> None:
        env.set_alarm("p99-latency", "ALARM")

    hook(aws.metrics.client, "before-call", "GetMetricStatistics", flip)
    with pytest.raises(ControllerRefusedError, match="gate alarm:p99-latency failed"):
        actions.shift(aws, env.settings, target=10, reason="go")
    assert "ChangeResourceRecordSets" not in seen
    assert env.weights() == {"legacy": 100, "aws": 0}


# --------------------------------------------------------------------------- rollback


def test_rollback_restores_weights_and_listener_then_is_idempotent(make_env, capsys):
    env = make_env(aws_weight=50)
    aws = env.controller()
    aws.listener.set({"blue": 20, "green": 80})
    code, out, _ = cli(env, capsys, "rollback", "--reason", "errors up", "--format", "json")
    assert code == 0
    first = json.loads(out)
    assert first["result"] == "succeeded"
    assert (first["weights_before"], first["weights_after"]) == (
        {"legacy": 50, "aws": 50},
        {"legacy": 100, "aws": 0},
    )
    assert env.weights() == {"legacy": 100, "aws": 0}
    assert env.listener_weights() == {"blue": 100, "green": 0}

    again = env.controller()
    seen = calls_to(again)
    outcome = actions.rollback(again, env.settings.rollback, reason="again")
    assert outcome.result == "no-change"
    assert outcome.detail == (
        "already rolled back: Route 53 at legacy 100 / aws 0, listener at blue 100 / green 0; "
        "nothing changed"
    )
    assert "ChangeResourceRecordSets" not in seen and "ModifyListener" not in seen
    code, out, _ = cli(env, capsys, "rollback", "--reason", "third time")
    assert (code, out.split(":")[:2]) == (0, ["rollback", " no-change"])
    results = [(e["action"], e["result"]) for e in events(env)]
    assert results == [("rollback", "succeeded"), *[("rollback", "no-change")] * 2]
    subjects = [n["subject"] for n in env.notifications()]
    assert subjects[0].startswith("paymig rollback SUCCEEDED: Route 53 legacy 50 / aws 50")
    assert subjects[1].startswith("paymig rollback NO-CHANGE: already rolled back")


def test_rollback_reapplies_when_a_late_shift_lands_during_its_insync_wait(make_env):
    """A shift that confirmed its lock just before the take-over lands its change late."""
    env = make_env(aws_weight=10)
    aws = env.controller()
    landed: list[bool] = []

    def late_shift(**_: Any) -> None:
        if landed:
            return
        landed.append(True)
        records = env.client("route53").list_resource_record_sets(HostedZoneId=env.zone_id)
        changes = [
            {"Action": "UPSERT", "ResourceRecordSet": {**r, "Weight": 50}}
            for r in records["ResourceRecordSets"]
            if "SetIdentifier" in r
        ]
        env.client("route53").change_resource_record_sets(
            HostedZoneId=env.zone_id, ChangeBatch={"Changes": changes}
        )

    hook(aws.route53.client, "after-call", "GetChange", late_shift)
    outcome = actions.rollback(aws, env.settings.rollback, reason="pager")
    assert outcome.result == "succeeded"
    assert "weights moved to legacy 50 / aws 50 meanwhile: re-applied" in outcome.detail
    assert env.weights() == {"legacy": 100, "aws": 0}


def test_rollback_pending_past_timeout_is_recorded_and_notified(make_env):
    env = make_env(aws_weight=10)
    aws = env.controller()

    def pending(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ChangeInfo"]["Status"] = "PENDING"

    hook(aws.route53.client, "after-call", "GetChange", pending)
    with pytest.raises(ChangeNotInSyncError, match="still PENDING after 1 s"):
        actions.rollback(aws, env.settings.rollback, reason="pager")
    assert events(env)[-1]["result"] == "unconfirmed"
    assert env.weights() == {"legacy": 100, "aws": 0}  # submitted all the same
    assert env.notifications()[0]["subject"].startswith("paymig rollback UNCONFIRMED")


def test_rollback_without_records_fails_in_one_line_and_is_recorded(env, capsys):
    env.client("route53").change_resource_record_sets(
        HostedZoneId=env.zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "DELETE",
                    "ResourceRecordSet": next(
                        r
                        for r in env.client("route53").list_resource_record_sets(
                            HostedZoneId=env.zone_id
                        )["ResourceRecordSets"]
                        if r.get("SetIdentifier") == "aws"
                    ),
                }
            ]
        },
    )
    code, _, err = cli(env, capsys, "rollback", "--reason", "pager")
    assert code == 1
    assert err == (
        f"paymig: rollback: hosted zone {env.zone_id}: no weighted record "
        "api.payments.example.com with set identifier aws\n"
    )
    assert events(env)[-1]["result"] == "failed"


# --------------------------------------------------------------------------- Lambda


def sns_alarm_event(env: MigrationEnv, alarm: str, new: str = "ALARM") -> dict[str, Any]:
    """An SNS event as Lambda receives it, carrying a CloudWatch alarm notification."""
    topic = f"arn:aws:sns:us-east-2:123456789012:{env.stack}-migration-alarms"
    message = {
        "AlarmName": alarm,
        "AlarmDescription": "Any migration alarm in ALARM",
        "AWSAccountId": "123456789012",
        "AlarmConfigurationUpdatedTimestamp": "2026-11-29T21:00:00.000+0000",
        "NewStateValue": new,
        "NewStateReason": "paymig-prod-5xx-rate transitioned to ALARM",
        "StateChangeTime": "2026-11-29T21:30:00.000+0000",
        "Region": "US East (Ohio)",
        "AlarmArn": f"arn:aws:cloudwatch:us-east-2:123456789012:alarm:{alarm}",
        "OldStateValue": "OK",
        "OKActions": [],
        "AlarmActions": [topic],
        "InsufficientDataActions": [],
        "AlarmRule": f'ALARM("{env.stack}-5xx-rate")',
    }
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic}:0b4f2a9c-0000-4000-8000-000000000000",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
                    "TopicArn": topic,
                    "Subject": f'ALARM: "{alarm}" in US East (Ohio)',
                    "Message": json.dumps(message),
                    "Timestamp": "2026-11-29T21:30:01.000Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-2.amazonaws.com/cert.pem",
                    "UnsubscribeUrl": "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
        ]
    }


class LambdaContext:
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    function_name = "paymig-prod-rollback"


@pytest.fixture
def lambda_env(make_env, monkeypatch) -> MigrationEnv:
    env = make_env(aws_weight=50)
    for key, value in {
        "PAYMIG_STACK_NAME": env.stack,
        "PAYMIG_ENVIRONMENT": env.config.environment,
        "PAYMIG_HOSTED_ZONE_ID": env.zone_id,
        "PAYMIG_RECORD_NAME": env.config.dns.api_record_name,
        "PAYMIG_STABLE_ALIAS": "blue",
        "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS": "5",
    }.items():
        monkeypatch.setenv(key, value)
    return env


def test_lambda_rolls_back_on_the_composite_alarm_then_is_idempotent(lambda_env):
    env = lambda_env
    env.controller().listener.set({"blue": 0, "green": 100})
    event = sns_alarm_event(env, f"{env.stack}-migration-health")
    result = rollback_lambda.handler(event, LambdaContext())
    assert result["result"] == "succeeded"
    assert env.weights() == {"legacy": 100, "aws": 0}
    assert env.listener_weights() == {"blue": 100, "green": 0}
    recorded = events(env)[-1]
    assert recorded["source"] == "lambda"
    assert recorded["trigger"] == {
        "alarm": "paymig-prod-migration-health",
        "state_change_time": "2026-11-29T21:30:00.000+0000",
        "request_id": LambdaContext.aws_request_id,
    }
    assert recorded["reason"].startswith("alarm paymig-prod-migration-health OK -> ALARM")
    notes = env.notifications()
    assert notes[0]["source"] == "lambda" and notes[0]["result"] == "succeeded"

    second = rollback_lambda.handler(event, LambdaContext())  # SNS retries, a 2nd alarm...
    assert second["result"] == "no-change"
    assert second["already_rolled_back"] is True
    assert [e["result"] for e in events(env)] == ["succeeded", "no-change"]


def test_lambda_ignores_ok_transitions_foreign_alarms_and_its_own_messages(lambda_env):
    env = lambda_env
    ok = sns_alarm_event(env, f"{env.stack}-migration-health", new="OK")
    foreign = sns_alarm_event(env, "someone-elses-alarm")
    own = sns_alarm_event(env, "x")
    own["Records"][0]["Sns"]["Message"] = json.dumps({"action": "rollback", "result": "ok"})
    for event in (ok, foreign, own):
        assert rollback_lambda.handler(event, LambdaContext())["result"] == "ignored"
    assert env.weights() == {"legacy": 50, "aws": 50}
    assert events(env) == []


def test_lambda_without_its_environment_fails_naming_the_variables(monkeypatch):
    for key in ("PAYMIG_STACK_NAME", "PAYMIG_HOSTED_ZONE_ID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PAYMIG_ENVIRONMENT", "prod")
    monkeypatch.setenv("PAYMIG_RECORD_NAME", "api.payments.example.com")
    with pytest.raises(Exception, match="not set: PAYMIG_STACK_NAME, PAYMIG_HOSTED_ZONE_ID"):
        rollback_lambda.handler({"Records": []}, LambdaContext())
