"""The controller, the CLI and the rollback Lambda against the real moto server.

Faults are injected with botocore event hooks on the controller's own clients: a
`before-call` handler that answers an error (or raises a connection error) instead of
sending the request, an `after-call` handler that rewrites an answer (moto reports every
change INSYNC at once and every health check healthy), and handlers that act (another
controller, an alarm flipping) at a chosen moment of the real call sequence. AWS itself
is never mocked: every other call goes to moto. Each fault test asserts the live weights,
the listener, the audit trail and the notification afterwards. What moto leaves untested
(composite alarm rules, alarm evaluation from metric data) is said in `controller_env`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError

from controller_env import MigrationEnv, build_env
from iam_calls import CUTOVER_COMMANDS, WATCH_COMMAND, IamCalls
from paymig.cli import main
from paymig.config import PaymigConfig
from paymig.lambdas import rollback as rollback_lambda
from paymig.local.emulator import MotoServer
from paymig.runtime.controller import actions
from paymig.runtime.controller.aws import ControllerAws
from paymig.runtime.controller.core import (
    ChangeNotInSyncError,
    ControllerRefusedError,
    IncompleteActionError,
    LockHeldError,
)
from paymig.runtime.controller.rollback import RollbackOutcome, rollback

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
    suffix = f".{operation}" if operation else ""
    aws_client.meta.events.register(f"{event}.{service}{suffix}", handler)


def error_answer(code: str, message: str, status: int = 400) -> Callable[..., Any]:
    """A before-call handler that answers an AWS error instead of sending the request."""

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse("https://aws", status, {}, None), {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    return answer


def unreachable(**_: Any) -> None:
    """A before-call handler for a service that cannot be reached."""
    raise EndpointConnectionError(endpoint_url="https://unreachable.amazonaws.com")


def api_params(aws_client: Any, operation: str) -> list[dict[str, Any]]:
    """The parameters of each call of `operation`, in order (before-call sees the wire)."""
    seen: list[dict[str, Any]] = []
    hook(aws_client, "before-parameter-build", operation, lambda params, **_: seen.append(params))
    return seen


def calls_to(aws: ControllerAws) -> list[str]:
    """Record every operation the controller's Route 53 and ELB clients send."""
    seen: list[str] = []
    for client in (aws.route53.client, aws.listener.client):
        client.meta.events.register("before-call.*.*", lambda model, **_: seen.append(model.name))
    return seen


def events(env: MigrationEnv) -> list[dict[str, Any]]:
    return env.audit().events()


def outcomes(env: MigrationEnv, action: str = "rollback") -> list[dict[str, Any]]:
    """The action's events without the rollbacks' records of intent."""
    return [e for e in events(env) if e["action"] == action and e["result"] != "started"]


def no_sleep(seconds: float) -> None:
    """The rollback's landing guard, without the real wait (no shift is in flight)."""


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
    assert [e["phase_after"] for e in trail] == [10, 50]
    assert trail[1]["actor"] == "arn:aws:sts::123456789012:user/moto"
    assert trail[1]["reason"] == "phase 2"
    assert trail[1]["weights_before"] == {"legacy": 90, "aws": 10}
    assert trail[1]["weights_after"] == {"legacy": 50, "aws": 50}
    # The other fields of both records survive the UPSERT, health checks included.
    records = env.client("route53").list_resource_record_sets(HostedZoneId=env.zone_id)
    by_id = {r["SetIdentifier"]: r for r in records["ResourceRecordSets"] if "SetIdentifier" in r}
    assert by_id["legacy"]["ResourceRecords"] == [
        {"Value": str(ip)} for ip in env.config.dns.legacy_addresses
    ]
    assert by_id["legacy"]["TTL"] == 60
    assert by_id["legacy"]["HealthCheckId"] == env.health_checks["legacy"]
    assert by_id["aws"]["AliasTarget"]["EvaluateTargetHealth"] is True
    # The traffic split is published as the dashboard's custom metric.
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
    assert doc["answer"]["summary"] == "Route 53 answers legacy 50% / aws 50%"
    assert doc["gates"]["armed"]["ok"] is True
    assert all(g["ok"] for g in doc["gates"].values()), doc["gates"]
    assert [e["to_phase"] for e in doc["events"]] == [50, 10]
    assert doc["rollback_budget_seconds"] == doc["rollback_budget"]["total_seconds"] <= 300
    assert (doc["drift"], doc["hold"]) == (None, None)


def test_status_is_read_only_and_shows_the_answer_and_budget(env, capsys):
    env.set_alarm("aurora-cpu", "ALARM")
    aws = env.controller()
    written: list[str] = []
    for client in (aws.metrics.client, aws.audit.client, aws.route53.client, aws.sns):
        client.meta.events.register(
            "before-call.*.*",
            lambda model, **_: (
                written.append(model.name)
                if model.name.startswith(("Put", "Change", "Update", "Delete", "Publish", "Modify"))
                else None
            ),
        )
    report = actions.status(aws, env.settings)
    assert written == []  # PutMetricData moved to `paymig progress`
    assert report.answer.describe() == "Route 53 answers legacy 100% / aws 0%"
    code, out, _ = cli(env, capsys, "status")
    assert code == 0
    assert "phase 0% on AWS" in out
    assert "Route 53 weights: legacy 100 / aws 0" in out
    assert "answer: Route 53 answers legacy 100% / aws 0%" in out
    assert "ALB listener: blue 100 / green 0" in out
    assert "rollback budget: 292 s worst case over every path (within the 300 s limit)" in out
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
    env.audit().record_validation(
        {"status": "consistent", "checked_at": "2099-01-01T00:00:00.000000Z"}
    )
    err = refused()
    assert "is dated in the future" in err
    env.audit().record_validation({"status": "consistent"})

    env.put_cdc_latency(45.0)
    env.client("cloudwatch").delete_alarms(AlarmNames=["paymig-prod-dms-task-failure"])
    err = refused()
    assert "gate cdc-latency failed: CDC latency 45 s > threshold 30 s" in err
    assert "gate alarm:dms-task-failure failed: alarm paymig-prod-dms-task-failure not found" in err


def test_armed_gate_refuses_while_the_automatic_rollback_cannot_fire(env, capsys):
    """Composite actions off; subscription gone; function throttled to 0 (issue 15, #8)."""
    name = "paymig-prod-migration-health"
    cloudwatch = env.client("cloudwatch")
    cloudwatch.disable_alarm_actions(AlarmNames=[name])
    code, _, err = cli(env, capsys, "shift", "--to", "10", "--reason", "go")
    assert code == 1
    assert f"gate armed failed: {name} has its actions disabled" in err
    cloudwatch.enable_alarm_actions(AlarmNames=[name])

    sns = env.client("sns")
    (sub,) = [
        s
        for s in sns.list_subscriptions_by_topic(TopicArn=env.alarm_topic_arn)["Subscriptions"]
        if s["Protocol"] == "lambda"
    ]
    sns.set_subscription_attributes(
        SubscriptionArn=sub["SubscriptionArn"],
        AttributeName="FilterPolicy",
        AttributeValue=json.dumps({"AlarmName": ["someone-else"]}),
    )
    code, _, err = cli(env, capsys, "shift", "--to", "10", "--reason", "go")
    assert "lets the composite's ALARM notification through" in err
    sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
    code, _, err = cli(env, capsys, "shift", "--to", "10", "--reason", "go")
    assert f"{env.alarm_topic_arn} has no Lambda subscription of {env.function_arn}" in err
    assert env.weights() == {"legacy": 100, "aws": 0}

    # moto drops a reserved concurrency of 0 from GetFunction; AWS reports it: rewrite it.
    fresh = make_armed(env)
    aws = env.controller()

    def throttled(parsed: dict[str, Any], **_: Any) -> None:
        parsed["Concurrency"] = {"ReservedConcurrentExecutions": 0}

    hook(aws.functions, "after-call", "GetFunction", throttled)
    with pytest.raises(ControllerRefusedError, match="is throttled to 0"):
        actions.shift(aws, env.settings, target=10, reason="go")
    assert fresh and events(env)[-1]["failed_gates"] == ["armed"]
    env.client("lambda").delete_function(FunctionName="paymig-prod-rollback")
    code, _, err = cli(env, capsys, "shift", "--to", "10", "--reason", "go")
    assert "gate armed failed: function paymig-prod-rollback not found" in err
    assert env.weights() == {"legacy": 100, "aws": 0}


def make_armed(env: MigrationEnv) -> bool:
    """Subscribe the function again as the stack does."""
    env.client("sns").subscribe(
        TopicArn=env.alarm_topic_arn,
        Protocol="lambda",
        Endpoint=env.function_arn,
        Attributes={
            "FilterPolicyScope": "MessageBody",
            "FilterPolicy": json.dumps(
                {"AlarmName": ["paymig-prod-migration-health"], "NewStateValue": ["ALARM"]}
            ),
        },
    )
    return True


def test_shift_refused_when_gates_cannot_be_read(env, capsys):
    """The audit table is there but CloudWatch answers errors: the gates fail, not pass."""
    aws = env.controller()
    broken = error_answer("InternalFailure", "injected", 500)
    hook(aws.metrics.client, "before-call", "DescribeAlarms", broken)
    hook(aws.metrics.client, "before-call", "GetMetricStatistics", broken)
    with pytest.raises(ControllerRefusedError) as refused:
        actions.shift(aws, env.settings, target=10, reason="go")
    failed = {r.split(" failed:")[0] for r in refused.value.reasons}
    assert {"gate cdc-latency", "gate alarm:migration-health", "gate armed"} <= failed
    assert "cannot read alarm paymig-prod-5xx-rate: InternalFailure: injected" in str(refused.value)
    assert env.weights() == {"legacy": 100, "aws": 0}


def test_dwell_time_refuses_the_next_phase(make_env, capsys):
    env = make_env(controller={"dwell_minutes": {10: 60}})
    assert cli(env, capsys, "shift", "--to", "10", "--reason", "go")[0] == 0
    code, _, err = cli(env, capsys, "shift", "--to", "50", "--reason", "go")
    assert code == 1
    assert "gate dwell failed: at 10% for 0 min of 60 (60 min left)" in err


def test_dwell_is_that_of_the_live_phase_even_when_forced(make_env, capsys):
    """Recorded 10% entered 5 h ago, live 50%: a forced shift to 100 is refused (#5)."""
    env = make_env(aws_weight=50, controller={"dwell_minutes": {10: 60, 50: 240}})
    env.record_event(
        datetime.now(UTC) - timedelta(hours=5),
        action="shift", result="succeeded", to_phase=10, phase_after=10, reason="earlier",
    )  # fmt: skip
    code, _, err = cli(env, capsys, "shift", "--to", "100", "--reason", "CAB-9", "--force")
    assert code == 1
    assert "gate dwell failed: no record of when the live phase 50% was entered" in err
    assert env.weights() == {"legacy": 50, "aws": 50}

    # A forced shift to the live phase records it: the trail reconciles, dwell restarts.
    code, out, _ = cli(env, capsys, "shift", "--to", "50", "--reason", "record live", "--force")
    assert code == 0
    assert "recorded the live phase 50% (legacy 50 / aws 50); the trail said 10%" in out
    assert events(env)[-1]["phase_after"] == 50
    doc = json.loads(cli(env, capsys, "status", "--format", "json")[1])
    assert (doc["phase"], doc["drift"]) == (50, None)
    assert doc["gates"]["dwell"]["detail"] == "at 50% for 0 min of 240 (240 min left)"


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


def test_audit_write_failure_after_a_successful_shift_is_one_line(env, capsys, monkeypatch):
    """The change lands, only its record fails: one line, exit 1, and status shows drift."""
    connect = ControllerAws.connect

    def connect_and_break(*args: Any, **kwargs: Any) -> ControllerAws:
        aws = connect(*args, **kwargs)
        puts = api_params(aws.audit.client, "PutItem")

        def fail_the_outcome(**_: Any) -> Any:
            if puts[-1]["Item"]["pk"]["S"] == "EVENT":
                return error_answer("ProvisionedThroughputExceededException", "slow down")()
            return None

        hook(aws.audit.client, "before-call", "PutItem", fail_the_outcome)
        return aws

    monkeypatch.setattr(ControllerAws, "connect", connect_and_break)
    code, out, err = cli(env, capsys, "shift", "--to", "10", "--reason", "go")
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("paymig: shift 0% -> 10% succeeded (legacy 100 / aws 0 -> legacy 90")
    assert "its audit record failed: ProvisionedThroughputExceededException: slow down" in err
    assert env.weights() == {"legacy": 90, "aws": 10}
    monkeypatch.setattr(ControllerAws, "connect", connect)
    doc = json.loads(cli(env, capsys, "status", "--format", "json")[1])
    assert doc["drift"] == "live weights (legacy 90 / aws 10) disagree with the recorded phase 0%"


def test_a_wrong_local_clock_writes_aws_time_to_the_trail(env):
    """The operator's clock is 10 min behind: events carry AWS's time (#10, clocks)."""
    aws = env.controller()
    aws.clock.local = lambda: datetime.now(UTC) - timedelta(minutes=10)
    assert actions.shift(aws, env.settings, target=10, reason="go").result == "succeeded"
    recorded = datetime.fromisoformat(events(env)[-1]["at"].replace("Z", "+00:00"))
    assert abs((recorded - datetime.now(UTC)).total_seconds()) < 5
    assert aws.clock.offset > timedelta(minutes=9)


# --------------------------------------------------------------------------- shift faults


def test_route53_throttling_is_retried_then_succeeds(env):
    aws = env.controller()
    throttled: list[str] = []
    throttle = error_answer("Throttling", "Rate exceeded")

    def sometimes(model: Any, **kwargs: Any) -> Any:
        if len(throttled) >= 3:
            return None  # let the real call through to moto
        throttled.append(model.name)
        return throttle()

    hook(aws.route53.client, "before-call", "ChangeResourceRecordSets", sometimes)
    outcome = actions.shift(aws, env.settings, target=10, reason="go")
    assert outcome.result == "succeeded"
    assert throttled == ["ChangeResourceRecordSets"] * 3
    assert env.weights() == {"legacy": 90, "aws": 10}


def test_route53_throttling_beyond_the_retries_fails_clearly_and_is_recorded(env):
    aws = env.controller()
    hook(aws.route53.client, "before-call", "ChangeResourceRecordSets",
         error_answer("Throttling", "Rate exceeded"))  # fmt: skip
    with pytest.raises(Exception, match="Route 53 change: Throttling: Rate exceeded"):
        actions.shift(aws, env.settings, target=10, reason="go")
    last = events(env)[-1]
    assert (last["result"], last["detail"]) == (
        "failed",
        "nothing changed: Throttling: Rate exceeded",
    )
    assert env.weights() == {"legacy": 100, "aws": 0}
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
    assert "still PENDING after" in str(failure.value)
    assert len(polls) >= 2  # polled, then gave up at the timeout
    last = events(env)[-1]
    assert (last["result"], last["to_phase"], last["phase_after"]) == ("unconfirmed", 10, 10)
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
    assert [(e["reason"], e["result"]) for e in events(env)] == [
        ("me too", "refused"),
        ("me first", "succeeded"),
    ]
    assert env.weights() == {"legacy": 90, "aws": 10}
    assert env.audit().current_lock() is None


def test_alarm_flapping_during_a_shift_is_caught_before_the_change(env):
    """The alarm is OK when first read, flips while the other gates are read."""
    aws = env.controller()
    seen = calls_to(aws)
    hook(aws.metrics.client, "before-call", "GetMetricStatistics",
         lambda **_: env.set_alarm("p99-latency", "ALARM"))  # fmt: skip
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
    assert [(s["step"], s["result"]) for s in first["steps"]] == [
        ("route53", "changed"),
        ("listener", "changed"),
        ("insync", "confirmed"),
    ]
    assert env.weights() == {"legacy": 100, "aws": 0}
    assert env.listener_weights() == {"blue": 100, "green": 0}

    again = env.controller()
    seen = calls_to(again)
    outcome = rollback(again, env.settings.rollback, reason="again", sleep=no_sleep)
    assert outcome.result == "no-change"
    assert outcome.detail == (
        "already rolled back: Route 53 at legacy 100 / aws 0; listener at blue 100 / green 0; "
        "nothing changed; Route 53 answers legacy 100% / aws 0%"
    )
    assert "ChangeResourceRecordSets" not in seen and "ModifyListener" not in seen
    code, out, _ = cli(env, capsys, "rollback", "--reason", "third time")
    assert (code, out.split(":")[:2]) == (0, ["rollback", " no-change"])
    trail = events(env)
    assert [(e["action"], e["result"]) for e in trail] == [
        ("rollback", "started"), ("rollback", "succeeded"),
        ("rollback", "started"), ("rollback", "no-change"),
        ("rollback", "started"), ("rollback", "no-change"),
    ]  # fmt: skip
    assert {e["phase_after"] for e in trail if e["result"] != "started"} == {0}
    subjects = [n["subject"] for n in env.notifications()]
    assert subjects[0].startswith("paymig rollback SUCCEEDED: Route 53 legacy 50 / aws 50")
    assert subjects[1].startswith("paymig rollback NO-CHANGE: already rolled back")


def test_rollback_crosses_a_shift_in_flight_and_reapplies(make_env, capsys):
    """A real crossing: the shift confirmed its lock, the rollback takes it over and changes
    Route 53, the shift's change lands after it; the rollback's landing guard re-reads and
    re-applies, the shift reports `preempted` (issue 15: lock takeover, #10)."""
    env = make_env(controller={"dwell_minutes": {}})
    assert cli(env, capsys, "shift", "--to", "10", "--reason", "phase 1")[0] == 0
    shifter, rollbacker = env.controller(), env.controller()
    shifter.listener.set({"blue": 0, "green": 100})
    took_over, landed, rolled_back = threading.Event(), threading.Event(), threading.Event()
    result: list[RollbackOutcome] = []
    guards: list[float] = []

    def run_rollback() -> None:
        def guard(seconds: float) -> None:
            guards.append(seconds)
            assert landed.wait(30)

        result.append(rollback(rollbacker, env.settings.rollback, reason="pager", sleep=guard))
        rolled_back.set()

    def lock_taken(params: dict[str, Any], **_: Any) -> None:
        if params["Item"]["pk"]["S"] == "LOCK":  # after its Route 53 change
            took_over.set()

    hook(rollbacker.audit_fast.client, "before-parameter-build", "PutItem", lock_taken)
    thread = threading.Thread(target=run_rollback)
    changes: list[str] = []

    def rollback_starts(**_: Any) -> None:
        if not changes:
            changes.append("shift")
            thread.start()
            assert took_over.wait(30)

    hook(shifter.route53.client, "before-call", "ChangeResourceRecordSets", rollback_starts)
    hook(shifter.route53.client, "after-call", "ChangeResourceRecordSets", lambda **_: landed.set())
    confirms: list[str] = []

    def after_landing(**_: Any) -> None:
        confirms.append("confirm")
        if len(confirms) == 2:  # the check after the change: let the rollback re-read first
            assert rolled_back.wait(30)

    hook(shifter.audit_fast.client, "before-call", "UpdateItem", after_landing)
    outcome = actions.shift(shifter, env.settings, target=50, reason="phase 2")
    thread.join(30)
    (done,) = result
    assert outcome.result == "preempted"
    assert "a rollback took the lock over while the change was in flight" in outcome.detail
    assert done.result == "succeeded"
    assert [(s.name, s.result) for s in done.steps] == [
        ("route53", "changed"),
        ("route53 re-apply", "changed"),
        ("listener", "changed"),
        ("insync", "confirmed"),
    ]
    assert done.steps[1].detail == "weights moved to legacy 50 / aws 50 meanwhile: re-applied"
    assert 0 < guards[0] <= 12
    assert env.weights() == {"legacy": 100, "aws": 0}
    assert env.listener_weights() == {"blue": 100, "green": 0}
    trail = events(env)
    rollback_event = next(
        e for e in trail if e["action"] == "rollback" and e["result"] == "succeeded"
    )
    assert rollback_event["preempted"]["action"] == "shift to 50%"
    shift_event = trail[-1]
    assert (shift_event["action"], shift_event["result"], shift_event["phase_after"]) == (
        "shift", "preempted", 0,
    )  # fmt: skip
    assert env.audit().current_lock() is None
    assert [n["result"] for n in env.notifications()] == ["succeeded"]
    doc = json.loads(cli(env, capsys, "status", "--format", "json")[1])
    assert (doc["phase"], doc["drift"]) == (0, None)


def test_rollback_pending_past_timeout_is_recorded_and_notified(make_env, capsys, monkeypatch):
    env = make_env(aws_weight=10)
    aws = env.controller()

    def pending(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ChangeInfo"]["Status"] = "PENDING"

    hook(aws.route53.client, "after-call", "GetChange", pending)
    outcome = rollback(aws, env.settings.rollback, reason="pager", sleep=no_sleep)
    assert (outcome.result, outcome.complete) == ("unconfirmed", False)
    assert outcome.steps[-1].name == "insync" and outcome.steps[-1].result == "timed-out"
    last = outcomes(env)[-1]
    assert (last["result"], last["phase_after"]) == ("unconfirmed", 0)
    assert env.weights() == {"legacy": 100, "aws": 0}  # submitted all the same
    assert env.notifications()[0]["subject"].startswith("paymig rollback UNCONFIRMED")


@pytest.mark.parametrize(
    ("fault", "clients", "operation", "answer"),
    [
        # DynamoDB unreachable: no lock, no intent, no record; DNS and listener still move.
        ("dynamodb", ("audit", "audit_fast"), "", unreachable),
        # The table's key denies the function (the lock table's CMK): same.
        ("kms", ("audit", "audit_fast"), "PutItem",
         error_answer("AccessDeniedException", "not authorized to perform kms:GenerateDataKey")),
        # The load balancer denies: DNS moves, the listener step fails.
        ("elb", ("listener",), "DescribeLoadBalancers",
         error_answer("AccessDenied", "not authorized to describe load balancers")),
        # STS unreachable: the actor is unknown, the alert topic is found by name.
        ("sts", ("sts",), "GetCallerIdentity", unreachable),
    ],
)  # fmt: skip
def test_rollback_makes_the_dns_change_whatever_else_fails(
    make_env, fault, clients, operation, answer
):
    """The rollback completes its DNS change while DynamoDB, KMS, ELB or STS fail (#1)."""
    env = make_env(aws_weight=50)
    env.controller().listener.set({"blue": 0, "green": 100})
    aws = env.controller()
    for name in clients:
        client = getattr(aws, name)
        client = getattr(client, "client", client)
        hook(client, "before-call", operation, answer)
    outcome = rollback(
        aws, env.settings.rollback, reason="pager", actor_hint="test", sleep=no_sleep
    )
    assert env.weights() == {"legacy": 100, "aws": 0}
    assert outcome.steps[0].name == "route53" and outcome.steps[0].result == "changed"
    trail = outcomes(env)
    (note,) = env.notifications()
    if fault in ("dynamodb", "kms"):
        assert trail == []
        assert outcome.audit_error is not None and not outcome.complete
        assert env.listener_weights() == {"blue": 100, "green": 0}
        assert note["subject"].startswith("paymig rollback SUCCEEDED (NOT RECORDED)")
        assert note["audit_problems"][0].startswith("intent record: ")
    elif fault == "elb":
        assert env.listener_weights() == {"blue": 0, "green": 100}
        assert (outcome.result, trail[-1]["result"]) == ("partial", "partial")
        assert trail[-1]["steps"][1] == {
            "step": "listener",
            "result": "failed",
            "detail": "listener: AccessDenied: not authorized to describe load balancers",
        }
        assert trail[-1]["phase_after"] == 0  # the weights did move
        assert note["subject"].startswith("paymig rollback PARTIAL")
    else:
        assert outcome.complete and trail[-1]["actor"] == "test"
        assert trail[-1]["audit_problems"] == [
            'identity: Could not connect to the endpoint URL: "https://unreachable.amazonaws.com"'
        ]
        assert note["subject"].startswith("paymig rollback SUCCEEDED")
    assert note["weights_after"] == {"legacy": 100, "aws": 0}


def test_rollback_retries_a_connection_error_on_route53(make_env):
    """One EndpointConnectionError used to fail the rollback (max_attempts=1)."""
    env = make_env(aws_weight=10)
    aws = env.controller()
    failures: list[str] = []

    def once(**_: Any) -> None:
        if not failures:
            failures.append("connection")
            unreachable()

    hook(aws.route53.client, "before-call", "ChangeResourceRecordSets", once)
    outcome = rollback(aws, env.settings.rollback, reason="pager", sleep=no_sleep)
    assert (outcome.result, aws.route53.retries, failures) == ("succeeded", 1, ["connection"])
    assert env.weights() == {"legacy": 100, "aws": 0}
    assert outcomes(env)[-1]["result"] == "succeeded"
    assert env.notifications()[0]["result"] == "succeeded"


def test_route53_failing_after_retries_records_the_listener_half_truthfully(make_env, capsys):
    """Route 53 denies; the listener still moves: `partial`, no fake weights_after (#4)."""
    env = make_env(aws_weight=50)
    env.controller().listener.set({"blue": 0, "green": 100})
    env.record_event(datetime.now(UTC) - timedelta(hours=1), action="shift", result="succeeded",
                     to_phase=50, phase_after=50, reason="earlier")  # fmt: skip
    aws = env.controller()
    hook(aws.route53.client, "before-call", "ChangeResourceRecordSets",
         error_answer("AccessDenied", "not authorized"))  # fmt: skip
    outcome = rollback(aws, env.settings.rollback, reason="pager", sleep=no_sleep)
    assert outcome.result == "partial"
    assert env.weights() == {"legacy": 50, "aws": 50}
    assert env.listener_weights() == {"blue": 100, "green": 0}
    last = outcomes(env)[-1]
    assert [(s["step"], s["result"]) for s in last["steps"]] == [
        ("route53", "failed"),
        ("listener", "changed"),
    ]
    assert "weights_after" not in last and "phase_after" not in last
    assert last["weights_before"] == {"legacy": 50, "aws": 50}
    assert env.notifications()[0]["subject"].startswith("paymig rollback PARTIAL: Route 53: ")
    doc = json.loads(cli(env, capsys, "status", "--format", "json")[1])
    assert (doc["phase"], doc["drift"]) == (50, None)  # the trail says what is live


def test_only_the_final_record_failing_is_reconciled_by_the_replay(make_env, capsys):
    """The rollback succeeds, only its outcome record fails: the notification says so, and
    the replay reconciles the intent with the live weights instead of showing drift (#4)."""
    env = make_env(aws_weight=50)
    env.record_event(datetime.now(UTC) - timedelta(hours=1), action="shift", result="succeeded",
                     to_phase=50, phase_after=50, reason="earlier")  # fmt: skip
    aws = env.controller()
    hook(
        aws.audit.client, "before-call", "PutItem", error_answer("InternalServerError", "down", 500)
    )
    outcome = rollback(aws, env.settings.rollback, reason="pager", sleep=no_sleep)
    assert (outcome.result, outcome.audit_error) == ("succeeded", "InternalServerError: down")
    assert [e["result"] for e in events(env)] == ["succeeded", "started"]
    (note,) = env.notifications()
    assert note["subject"].startswith("paymig rollback SUCCEEDED (NOT RECORDED)")
    assert note["result"] == "succeeded"
    doc = json.loads(cli(env, capsys, "status", "--format", "json")[1])
    assert (doc["phase"], doc["drift"]) == (0, None)
    assert "recorded no outcome" in doc["phase_reconciled"]
    assert doc["gates"]["rollback-hold"]["ok"] is False  # the intent counts as a rollback


def test_legacy_unhealthy_during_a_rollback_is_reported_and_incomplete(make_env, capsys):
    """Every legacy address down: Route 53 answers aws at legacy 100 / aws 0 (#2)."""
    env = make_env(aws_weight=50)
    aws = env.controller()
    children = set(env.legacy_children())
    asked = api_params(aws.route53.client, "GetHealthCheckStatus")

    def down(parsed: dict[str, Any], **_: Any) -> None:
        if asked[-1]["HealthCheckId"] in children:
            for observation in parsed["HealthCheckObservations"]:
                observation["StatusReport"]["Status"] = "Failure: Connection timed out."

    hook(aws.route53.client, "after-call", "GetHealthCheckStatus", down)
    outcome = rollback(aws, env.settings.rollback, reason="pager", sleep=no_sleep)
    assert env.weights() == {"legacy": 100, "aws": 0}
    assert {p["HealthCheckId"] for p in asked} == children | {env.health_checks["aws"]}
    assert outcome.answer is not None and outcome.answer.legacy_down_sends_to_aws
    assert not outcome.complete
    assert "Route 53 answers legacy 0% / aws 100%: every legacy address is unhealthy" in (
        outcome.detail
    )
    last = outcomes(env)[-1]
    assert last["answer"]["legacy_healthy"] is False
    assert env.notifications()[0]["subject"].startswith(
        "paymig rollback SUCCEEDED (LEGACY UNHEALTHY)"
    )

    # One address down: the calculated check (HealthThreshold 1) keeps legacy healthy.
    first = env.legacy_children()[0]
    again = env.controller()
    asked_again = api_params(again.route53.client, "GetHealthCheckStatus")

    def one_down(parsed: dict[str, Any], **_: Any) -> None:
        if asked_again[-1]["HealthCheckId"] == first:
            for observation in parsed["HealthCheckObservations"]:
                observation["StatusReport"]["Status"] = "Failure: Connection timed out."

    hook(again.route53.client, "after-call", "GetHealthCheckStatus", one_down)
    report = actions.status(again, env.settings)
    assert report.answer.describe() == "Route 53 answers legacy 100% / aws 0%"
    assert "1 of 2 addresses healthy, 1 needed" in report.answer.detail


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
    code, out, err = cli(env, capsys, "rollback", "--reason", "pager")
    assert code == 1
    assert out.startswith("rollback: failed: Route 53: hosted zone")
    assert err == (
        f"paymig: rollback failed: Route 53: hosted zone {env.zone_id}: no weighted A record "
        "api.payments.example.com with set identifier aws; run it again, or follow the "
        "runbook's manual rollback\n"
    )
    assert outcomes(env)[-1]["result"] == "failed"


# --------------------------------------------------------------------------- hold, ack


def test_after_a_rollback_shifts_wait_for_an_ack_and_a_newer_validation(env, capsys):
    """The composite is OK again and 0% has no dwell: only the hold stops a shift (#9)."""
    code, _, err = cli(env, capsys, "ack", "--reason", "nothing happened")
    assert (code, err) == (1, "paymig: nothing to acknowledge: no rollback is recorded\n")
    assert cli(env, capsys, "rollback", "--reason", "errors up")[0] == 0
    code, _, err = cli(env, capsys, "shift", "--to", "10", "--reason", "go again")
    assert code == 1
    assert "gate rollback-hold failed: held by the rollback at" in err
    assert "no `paymig ack --reason ...` since; no consistent validation checked after it" in err
    assert "shifts held: held by the rollback at" in cli(env, capsys, "status")[1]

    code, out, _ = cli(env, capsys, "ack", "--reason", "INC-42: root cause fixed")
    assert code == 0 and out.startswith("ack recorded at ")
    ack = events(env)[-1]
    assert (ack["action"], ack["result"], ack["reason"]) == ("ack", "recorded",
                                                            "INC-42: root cause fixed")  # fmt: skip
    code, _, err = cli(env, capsys, "shift", "--to", "10", "--reason", "go again")
    assert code == 1
    assert err.rstrip().endswith("no consistent validation checked after it")

    env.audit().record_validation({"status": "consistent", "summary": "after the incident"})
    code, out, _ = cli(env, capsys, "shift", "--to", "10", "--reason", "go again")
    assert code == 0, out
    assert env.weights() == {"legacy": 90, "aws": 10}


def test_progress_publishes_what_status_only_reads(env, capsys, monkeypatch):
    """moto implements no DescribeTableStatistics: an after-call-free stub answer stands in."""
    connect = ControllerAws.connect
    tables = [
        {"TableState": "Table completed", "ValidationFailedRecords": 1},
        {"TableState": "Full load", "ValidationSuspendedRecords": 2},
    ]

    def with_statistics(*args: Any, **kwargs: Any) -> ControllerAws:
        aws = connect(*args, **kwargs)

        def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            return AWSResponse("https://dms", 200, {}, None), {
                "TableStatistics": tables,
                "ResponseMetadata": {"HTTPStatusCode": 200},
            }

        hook(aws.metrics.dms, "before-call", "DescribeTableStatistics", answer)
        return aws

    env.dms_task_resource_id()
    monkeypatch.setattr(ControllerAws, "connect", with_statistics)
    code, out, _ = cli(env, capsys, "progress")
    assert code == 0
    assert out.strip() == (
        "published to Paymig/Migration: ValidationFailedRecords 1, ValidationSuspendedRecords 2, "
        "TablesLoadedPercent 50"
    )
    listed = env.client("cloudwatch").list_metrics(
        Namespace="Paymig/Migration", MetricName="TablesLoadedPercent"
    )["Metrics"]
    assert listed


# --------------------------------------------------------------------------- Lambda


class LambdaContext:
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    function_name = "paymig-prod-rollback"
    invoked_function_arn = "arn:aws:lambda:us-east-2:123456789012:function:paymig-prod-rollback"

    def __init__(self, remaining_seconds: float = 210.0) -> None:
        self.remaining = remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining * 1000)


@pytest.fixture
def lambda_env(make_env, monkeypatch) -> MigrationEnv:
    env = make_env(aws_weight=50)
    # The handler connects like env.controller() (fast test timing, roomy best effort).
    monkeypatch.setattr(rollback_lambda.ControllerAws, "connect", lambda *_, **__: env.controller())
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


def use_controllers(monkeypatch: pytest.MonkeyPatch, *controllers: ControllerAws) -> None:
    """The handler connects with these (prepared with hooks) instead of fresh clients."""
    pool = list(controllers)
    lock = threading.Lock()

    def connect(*_: Any, **__: Any) -> ControllerAws:
        with lock:
            return pool.pop(0)

    monkeypatch.setattr(rollback_lambda.ControllerAws, "connect", connect)


def test_lambda_rolls_back_on_the_composite_alarm_then_is_idempotent(lambda_env):
    env = lambda_env
    env.controller().listener.set({"blue": 0, "green": 100})
    event = env.composite_alarm_event()
    result = rollback_lambda.handler(event, LambdaContext())
    assert (result["result"], result["complete"]) == ("succeeded", True)
    assert env.weights() == {"legacy": 100, "aws": 0}
    assert env.listener_weights() == {"blue": 100, "green": 0}
    recorded = outcomes(env)[-1]
    assert recorded["source"] == "lambda"
    assert recorded["trigger"]["alarm"] == "paymig-prod-migration-health"
    assert recorded["trigger"]["request_id"] == LambdaContext.aws_request_id
    assert recorded["reason"].startswith("alarm paymig-prod-migration-health OK -> ALARM")
    assert recorded["actor"] == "arn:aws:sts::123456789012:user/moto"
    notes = env.notifications()
    assert notes[0]["source"] == "lambda" and notes[0]["result"] == "succeeded"

    second = rollback_lambda.handler(event, LambdaContext())  # SNS delivers twice...
    assert second["result"] == "no-change"
    assert second["already_rolled_back"] is True
    assert [e["result"] for e in outcomes(env)] == ["succeeded", "no-change"]


def test_lambda_ignores_everything_but_the_composite_entering_alarm(lambda_env):
    env = lambda_env
    ok = env.composite_alarm_event(state="OK", old="ALARM")
    member = json.loads(json.dumps(env.composite_alarm_event()))
    message = json.loads(member["Records"][0]["Sns"]["Message"])
    member["Records"][0]["Sns"]["Message"] = json.dumps(
        {**message, "AlarmName": "paymig-prod-5xx-rate"}
    )
    own = json.loads(json.dumps(member))
    own["Records"][0]["Sns"]["Message"] = json.dumps({"action": "rollback", "result": "ok"})
    for event in (ok, member, own):
        result = rollback_lambda.handler(event, LambdaContext())
        assert result["result"] == "ignored"
        assert result["detail"].startswith("no composite ALARM of this stack in the event")
    assert env.weights() == {"legacy": 50, "aws": 50}
    assert events(env) == []


def test_lambda_rejects_stale_events_with_a_log_line(lambda_env, caplog):
    """An event whose episode is over, or too old, must not undo a later shift (#7)."""
    env = lambda_env
    event = env.composite_alarm_event()
    env.set_alarm("migration-health", "OK")  # the episode ended after this event
    with caplog.at_level("WARNING", logger="paymig.rollback"):
        result = rollback_lambda.handler(event, LambdaContext())
    assert (result["result"], result["stale"]) == ("ignored", True)
    assert (
        "after this event's change" in result["detail"]
        and "that episode is over" in result["detail"]
    )
    assert any("stale alarm event, not acted on" in r.message for r in caplog.records)
    assert env.weights() == {"legacy": 50, "aws": 50}

    old = json.loads(json.dumps(env.composite_alarm_event()))
    message = json.loads(old["Records"][0]["Sns"]["Message"])
    message["StateChangeTime"] = "2020-01-01T00:00:00.000+0000"
    old["Records"][0]["Sns"]["Message"] = json.dumps(message)
    result = rollback_lambda.handler(old, LambdaContext())
    assert result["result"] == "ignored" and "beyond the maximum event age of" in result["detail"]
    assert env.weights() == {"legacy": 50, "aws": 50}
    assert events(env) == []


def test_lambda_acts_when_the_composite_cannot_be_read(lambda_env, monkeypatch):
    env = lambda_env
    event = env.composite_alarm_event()
    aws = env.controller()
    hook(aws.metrics_fast.client, "before-call", "DescribeAlarms", unreachable)
    use_controllers(monkeypatch, aws)
    result = rollback_lambda.handler(event, LambdaContext())
    assert result["result"] == "succeeded"
    assert env.weights() == {"legacy": 100, "aws": 0}


def test_lambda_duplicate_deliveries_at_once_both_finish_idempotently(lambda_env, monkeypatch):
    """Reserved concurrency 2: SNS delivers the event twice and both run side by side."""
    env = lambda_env
    event = env.composite_alarm_event()
    first, second = env.controller(), env.controller()
    both_read = threading.Barrier(2, timeout=30)

    def together(**_: Any) -> None:
        both_read.wait()  # both have read 50/50 before either changes it

    for aws in (first, second):
        hook(aws.route53.client, "before-call", "ChangeResourceRecordSets", together)
    use_controllers(monkeypatch, first, second)
    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(rollback_lambda.handler(event, LambdaContext()))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r["result"] for r in results) == ["succeeded", "succeeded"]
    assert env.weights() == {"legacy": 100, "aws": 0}
    assert env.listener_weights() == {"blue": 100, "green": 0}
    trail = outcomes(env)
    assert [e["result"] for e in trail] == ["succeeded", "succeeded"]
    assert sum(1 for e in trail if e.get("preempted", {}).get("action") == "rollback") == 1
    assert env.audit().current_lock() is None
    assert [n["result"] for n in env.notifications()] == ["succeeded", "succeeded"]


def test_lambda_insync_wait_stops_within_its_time_left(lambda_env, monkeypatch):
    """With 25 s left and Route 53 PENDING, it gives up in time, records and notifies."""
    env = lambda_env
    event = env.composite_alarm_event()
    aws = env.controller()

    def pending(parsed: dict[str, Any], **_: Any) -> None:
        parsed["ChangeInfo"]["Status"] = "PENDING"

    hook(aws.route53.client, "after-call", "GetChange", pending)
    use_controllers(monkeypatch, aws)
    with pytest.raises(IncompleteActionError, match="rollback unconfirmed: Route 53 legacy 50"):
        rollback_lambda.handler(event, LambdaContext(remaining_seconds=25))
    last = outcomes(env)[-1]
    insync = last["steps"][-1]
    assert (insync["step"], insync["result"]) == ("insync", "timed-out")
    # 25 s left - 2 s margin - 20 s reserve: at most 3 s of waiting.
    limit = float(insync["detail"].split("(limit ")[1].split(" s;")[0])
    assert 0 <= limit <= 3
    assert env.weights() == {"legacy": 100, "aws": 0}
    assert env.notifications()[0]["subject"].startswith("paymig rollback UNCONFIRMED")


def test_lambda_without_its_environment_fails_naming_the_variables(monkeypatch):
    for key in ("PAYMIG_STACK_NAME", "PAYMIG_HOSTED_ZONE_ID"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PAYMIG_ENVIRONMENT", "prod")
    monkeypatch.setenv("PAYMIG_RECORD_NAME", "api.payments.example.com")
    with pytest.raises(Exception, match="not set: PAYMIG_STACK_NAME, PAYMIG_HOSTED_ZONE_ID"):
        rollback_lambda.handler({"Records": []}, LambdaContext())


# --------------------------------------------------------------------------- IAM


def test_every_call_each_command_makes_is_in_the_permission_registry(
    lambda_env, capsys, monkeypatch
):
    """Records the IAM action of every call; `docs/controller.md`'s policy is built from the
    registry, so a call missing there would be missing from the operator's policy (#10).
    `paymig cutover` and `fallback` need PostgreSQL: tests/test_cutover.py runs them."""
    from paymig.runtime.controller.permissions import COMMANDS

    env = lambda_env
    monkeypatch.setattr(ControllerAws, "connect", lambda *_, **__: env.controller())
    calls = IamCalls().install(monkeypatch)
    env.dms_task_resource_id()
    for command, args in [
        ("status", ["status"]),
        ("shift", ["shift", "--to", "10", "--reason", "go"]),
        ("rollback", ["rollback", "--reason", "pager"]),
        ("ack", ["ack", "--reason", "looked"]),
        ("progress", ["progress"]),
    ]:
        calls.command = command
        cli(env, capsys, *args)
        calls.command = None
    env.controller().listener.set({"blue": 0, "green": 100})
    event = env.composite_alarm_event()
    calls.command = "rollback-function"
    assert rollback_lambda.handler(event, LambdaContext())["result"] == "succeeded"
    calls.command = None
    # The stage-aware path: after a cutover the function records, notifies and holds.
    env.move_stage("replicating", "cutover")
    env.move_stage("cut-over")
    event = env.composite_alarm_event()
    calls.command = "rollback-function"
    assert rollback_lambda.handler(event, LambdaContext())["result"] == "notified"
    calls.command = None
    assert set(calls.seen) | {*CUTOVER_COMMANDS, WATCH_COMMAND} == set(COMMANDS)
    assert calls.missing() == {}
    assert "dms:DescribeTableStatistics" in calls.actions("status")
    assert "elasticloadbalancing:ModifyListener" not in calls.actions("rollback")  # on blue
