"""`paymig rehearse`: pure parts without servers, then a shortened rehearsal for real.

The integration test runs the whole rehearsal (real moto server, two real PostgreSQL
servers, real Terraform against the emulator, the real controller, validator and
rollback handler) with a small dataset and asserts the figures of its report.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from background_rehearsal import BackgroundRehearsal
from paymig.cli import main
from paymig.config import load_config
from paymig.rehearsal.deploy import (
    EMULATOR_NEVER_COMPLETES,
    EMULATOR_SERVICES,
    OVERRIDE_FILE,
    _ApplyStream,
    _watch,
    dependents,
    emulator_override,
    resource_graph,
    synth_fingerprint,
    write_override,
)
from paymig.rehearsal.environment import RehearsalEnvironment, pid_alive, still_alive
from paymig.rehearsal.options import Options
from paymig.rehearsal.outcome import modelled
from run_folder import run_root

REPO = Path(__file__).resolve().parents[1]
REHEARSAL_CONFIG = REPO / "config" / "rehearsal.yaml"

# --------------------------------------------------------------------------- pure parts

DOCUMENT: dict[str, Any] = {
    "data": {"aws_caller_identity": {"caller": {}}},
    "resource": {
        "aws_dms_certificate": {"ca": {"certificate_pem": "x"}},
        "aws_dms_endpoint": {
            "source": {"certificate_arn": "${aws_dms_certificate.ca.certificate_arn}"}
        },
        "aws_dms_replication_task": {
            "task": {"source_endpoint_arn": "${aws_dms_endpoint.source.endpoint_arn}"}
        },
        "aws_vpc": {"main": {"cidr_block": "10.0.0.0/16"}},
        "aws_subnet": {
            "a": {
                "vpc_id": "${aws_vpc.main.id}",
                "tags": {"Account": "${data.aws_caller_identity.caller.account_id}"},
            }
        },
        "aws_sns_topic": {"t": {"depends_on": ["aws_subnet.a"]}},
        "aws_cloudwatch_metric_alarm": {"cdc": {"dimensions": {"Task": "${local.task_id}"}}},
    },
    "locals": {
        "task_id": '${element(split(":", local.task_arn), 6)}',
        "task_arn": "${aws_dms_replication_task.task.replication_task_arn}",
    },
}


def test_resource_graph_follows_references_and_depends_on() -> None:
    graph = resource_graph(DOCUMENT)
    assert graph == {
        "aws_dms_certificate.ca": set(),
        "aws_dms_endpoint.source": {"aws_dms_certificate.ca"},
        "aws_dms_replication_task.task": {"aws_dms_endpoint.source"},
        "aws_vpc.main": set(),
        "aws_subnet.a": {"aws_vpc.main"},
        "aws_sns_topic.t": {"aws_subnet.a"},
        "aws_cloudwatch_metric_alarm.cdc": {"aws_dms_replication_task.task"},
    }


def test_dependents_are_transitive_and_leave_the_rest() -> None:
    graph = resource_graph(DOCUMENT)
    assert dependents(graph, ["aws_dms_certificate.ca"]) == {
        "aws_dms_certificate.ca",
        "aws_dms_endpoint.source",
        "aws_dms_replication_task.task",
        "aws_cloudwatch_metric_alarm.cdc",
    }
    assert dependents(graph, ["aws_vpc.main"]) == {
        "aws_vpc.main",
        "aws_subnet.a",
        "aws_sns_topic.t",
    }


def test_override_points_every_service_at_the_emulator_with_a_local_backend(tmp_path: Path) -> None:
    path = write_override(tmp_path, "http://127.0.0.1:5000", tmp_path / "state.tfstate")
    assert path.name == OVERRIDE_FILE
    data = json.loads(path.read_text())
    assert data == emulator_override("http://127.0.0.1:5000", tmp_path / "state.tfstate")
    provider = data["provider"]["aws"]
    assert provider["endpoints"] == [{s: "http://127.0.0.1:5000" for s in EMULATOR_SERVICES}]
    assert (provider["access_key"], provider["secret_key"], provider["region"]) == (
        "testing",
        "testing",
        "us-east-2",
    )
    for flag in (
        "skip_credentials_validation",
        "skip_requesting_account_id",
        "skip_metadata_api_check",
        "s3_use_path_style",
    ):
        assert provider[flag] is True
    assert data["terraform"] == {"backend": {"local": {"path": str(tmp_path / "state.tfstate")}}}


#: The provider's endpoint key of each resource type's API (hashicorp/aws 5.100 docs,
#: "Custom Service Endpoints"), by the longest matching type prefix.
ENDPOINT_OF_TYPE = {
    "aws_acm_": "acm", "aws_appautoscaling_": "appautoscaling",
    "aws_cloudwatch_event_": "events", "aws_cloudwatch_log_": "cloudwatchlogs",
    "aws_cloudwatch_": "cloudwatch", "aws_customer_gateway": "ec2", "aws_db_": "rds",
    "aws_default_": "ec2", "aws_dms_": "dms", "aws_dynamodb_": "dynamodb", "aws_ecr_": "ecr",
    "aws_eip": "ec2", "aws_flow_log": "ec2", "aws_iam_": "iam", "aws_internet_gateway": "ec2",
    "aws_kms_": "kms", "aws_lambda_": "lambda", "aws_lb": "elbv2", "aws_nat_gateway": "ec2",
    "aws_rds_": "rds", "aws_route53_": "route53", "aws_route": "ec2", "aws_s3_": "s3",
    "aws_secretsmanager_": "secretsmanager", "aws_security_group": "ec2", "aws_sfn_": "sfn",
    "aws_sns_": "sns", "aws_sqs_": "sqs", "aws_ssm_": "ssm", "aws_subnet": "ec2",
    "aws_vpc": "ec2", "aws_vpn_": "ec2", "aws_wafv2_": "wafv2",
}  # fmt: skip


def test_every_service_of_the_stack_has_an_endpoint(rehearsal_tf: dict[str, Any]) -> None:
    """Each resource type of the rehearsal stack has its API pointed at the emulator: a
    type whose API is not would reach for AWS itself, and hang without a network."""
    for kind in rehearsal_tf["resource"]:
        if kind == "terraform_data":
            continue  # Terraform's own, no API
        prefixes = [p for p in ENDPOINT_OF_TYPE if kind.startswith(p)]
        assert prefixes, f"{kind}: add its endpoint key to ENDPOINT_OF_TYPE"
        assert ENDPOINT_OF_TYPE[max(prefixes, key=len)] in EMULATOR_SERVICES, kind
    assert "sts" in EMULATOR_SERVICES  # data.aws_caller_identity


def test_synth_fingerprint_changes_with_config_and_code(tmp_path: Path) -> None:
    package = tmp_path / "paymig"
    (package / "infra").mkdir(parents=True)
    (package / "infra" / "stack.py").write_text("A = 1\n")
    (package / "config").mkdir()
    (package / "config" / "root.py").write_text("B = 1\n")
    (package / "naming.py").write_text("C = 1\n")
    config = tmp_path / "rehearsal.yaml"
    config.write_text("environment: rehearsal\n")
    first = synth_fingerprint(config, package)
    assert synth_fingerprint(config, package) == first
    (package / "infra" / "stack.py").write_text("A = 2\n")
    second = synth_fingerprint(config, package)
    assert second != first
    config.write_text("environment: other\n")
    assert synth_fingerprint(config, package) not in (first, second)


def _line(kind: str, address: str | None = None, **extra: Any) -> str:
    message: dict[str, Any] = {"type": kind, **extra}
    if address:
        message["hook"] = {"resource": {"addr": address}}
    return json.dumps(message)


def test_apply_stream_tracks_each_resource() -> None:
    seen: list[str] = []
    stream = _ApplyStream(seen.append)
    for line in (
        _line("apply_start", "aws_vpc.main"),
        _line("apply_start", "aws_dms_endpoint.source"),
        _line("apply_start", "aws_rds_cluster.c"),
        _line("apply_complete", "aws_vpc.main"),
        _line("apply_errored", "aws_dms_endpoint.source"),
        _line(
            "diagnostic",
            diagnostic={
                "severity": "error",
                "summary": "creating DMS Endpoint",
                "detail": "StatusCode: 500\n  boom",
                "address": "aws_dms_endpoint.source",
            },
        ),
        _line("diagnostic", diagnostic={"severity": "warning", "summary": "ignored"}),
        _line("diagnostic", diagnostic={"severity": "error", "summary": "general"}),
        "not json",
    ):
        stream.feed(line)
    assert stream.completed == {"aws_vpc.main"}
    assert set(stream.errored_at) == {"aws_dms_endpoint.source"}
    assert stream.diagnostics == {
        "aws_dms_endpoint.source": "creating DMS Endpoint: StatusCode: 500 boom"
    }
    assert stream.general == ["general"]
    assert set(stream.in_flight()) == {"aws_rds_cluster.c"}
    assert seen == ["created aws_vpc.main"]


def _interruptible_sleep() -> subprocess.Popen[str]:
    """A child that SIGINT stops, as Terraform: a shell's background job ignores SIGINT,
    and a child exec'd while it is ignored ignores it too (a handled signal is reset)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(["sleep", "60"], start_new_session=True, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_stalled_create_waits_for_the_others_before_terraform_is_interrupted() -> None:
    """Terraform is interrupted only once every create in flight has stalled."""
    process = _interruptible_sleep()
    stream = _ApplyStream(lambda _: None)
    now = time.monotonic()
    stream.started = {"aws_vpn_connection.v": now - 1000.0, "aws_lb.alb": now + 1000.0}
    stalled: dict[str, str] = {}
    said: list[str] = []
    watcher = threading.Thread(target=_watch, args=(process, stream, stalled, 150.0, said.append))
    watcher.start()
    try:
        for _ in range(8):  # the watcher polls every 0.25 s: two seconds of polls
            time.sleep(0.25)
            assert process.poll() is None and stalled == {}  # the ALB is still being created
        stream.feed(_line("apply_complete", "aws_lb.alb"))
        watcher.join(timeout=30)
    finally:
        process.kill()
    assert not watcher.is_alive()
    assert set(stalled) == {"aws_vpn_connection.v"}
    assert said == ["interrupting terraform: aws_vpn_connection.v stalled"]
    assert process.wait() == -2  # SIGINT, as Terraform is stopped


def test_terraform_is_interrupted_when_nothing_has_moved_for_twice_the_stall_time() -> None:
    """A create that started recently but has made no event for 2 x the stall time (no
    create started, finished or failed meanwhile) cannot be cut off: Terraform stops."""
    process = _interruptible_sleep()
    stream = _ApplyStream(lambda _: None)
    now = time.monotonic()
    stream.started = {"aws_vpn_connection.v": now - 1000.0, "aws_lb.alb": now + 1000.0}
    stream.last_event = now - 301.0
    stalled: dict[str, str] = {}
    said: list[str] = []
    try:
        _watch(process, stream, stalled, 150.0, said.append)
    finally:
        process.kill()
    assert set(stalled) == {"aws_vpn_connection.v", "aws_lb.alb"}
    assert said == ["interrupting terraform: aws_lb.alb, aws_vpn_connection.v stalled"]


def test_known_emulator_gaps_are_only_types_that_never_complete() -> None:
    assert set(EMULATOR_NEVER_COMPLETES) == {
        "aws_dms_certificate",
        "aws_dms_replication_subnet_group",
        "aws_rds_cluster_instance",
        "aws_secretsmanager_secret_rotation",
        "aws_sfn_state_machine",
    }
    assert all(text.startswith("not attempted:") for text in EMULATOR_NEVER_COMPLETES.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rows", "0"], "--rows"),
        (["--rate", "0"], "--rate"),
        (["--clients", "0"], "--clients"),
    ],
)
def test_bad_options_are_one_line(args: list[str], message: str, capsys: Any) -> None:
    assert main(["rehearse", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("paymig: ") and message in err[0]


def test_options_check() -> None:
    with pytest.raises(Exception, match="--rate: must be above 0"):
        Options(workdir=Path("x"), rate=-1).check()
    with pytest.raises(Exception, match="--rows: must be at least 1"):
        Options(workdir=Path("x"), rows=0).check()
    with pytest.raises(Exception, match="--clients: must be between 1 and 10000"):
        Options(workdir=Path("x"), clients=0).check()
    with pytest.raises(
        Exception, match="--scenario: 'flood' is not one of migration, slow-db, vpn-cut"
    ):
        Options(workdir=Path("x"), scenario="flood").check()


# --------------------------------------------------------------------------- environment


@pytest.mark.slow
def test_environment_stops_everything_on_failure() -> None:
    env = RehearsalEnvironment()
    with pytest.raises(RuntimeError, match="boom"), env:
        pids = [p.pid for p in env.processes]
        assert [p.name for p in env.processes] == ["moto", "source", "target"]
        assert all(pid_alive(pid) for pid in pids)
        raise RuntimeError("boom")
    assert env.still_running() == []
    assert still_alive(pids, timeout=0) == []


@pytest.mark.slow
def test_environment_stops_everything_on_sigterm() -> None:
    env = RehearsalEnvironment()
    with pytest.raises(KeyboardInterrupt), env:
        pids = [p.pid for p in env.processes]
        os.kill(os.getpid(), signal.SIGTERM)
    assert still_alive(pids) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


# --------------------------------------------------------------------------- the rehearsal

STACK = "paymig-rehearsal"


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    """One `paymig rehearse --rows 2000` (the default load and clients), started with the run.

    conftest starts it in the background when the first worker starts; this waits for
    its end. Its output is printed here, so a failing test shows it.
    """
    started = BackgroundRehearsal(run_root(tmp_path_factory))
    code, workdir = started.result()
    print(started.log.read_text(encoding="utf-8", errors="replace"))
    return code, workdir


def _report(workdir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((workdir / "report.json").read_text())
    return data


@pytest.mark.slow
def test_rehearsal_passes_and_loses_no_acknowledged_payment(rehearsal: tuple[int, Path]) -> None:
    code, workdir = rehearsal
    report = _report(workdir)
    assert report["failure"] is None
    assert (code, report["outcome"]) == (0, "passed")
    assert report["payments_acknowledged"] > 0
    assert report["payments_found"] == report["payments_acknowledged"]
    assert report["payments_lost"] == 0
    assert report["dataset"]["payments"] == 2000
    assert report["preflight_passed"] is True
    # Every payment the source holds is accounted for: seeded, acknowledged, or recorded
    # although its answer was lost.
    payments = next(t for t in report["final_validation"]["tables"]
                    if t["table"] == "public.payments")  # fmt: skip
    assert (
        payments["source_rows"]
        == payments["target_rows"]
        == (2000 + report["payments_acknowledged"] + report["payments_recorded_unacknowledged"])
    )


@pytest.mark.slow
def test_traffic_follows_the_weights(rehearsal: tuple[int, Path]) -> None:
    phases = _report(rehearsal[1])["phases"]
    assert [(p["phase"], p["aws_weight"]) for p in phases] == [
        ("0%", 0), ("10%", 10), ("50%", 50), ("rolled back", 0),
        ("10%", 10), ("50%", 50), ("100%", 100), ("fallback", 0),
        ("10%", 10), ("50%", 50), ("100%", 100)]  # fmt: skip
    # The shares are measured in the first round (the later phases hold 2 s each).
    for phase in phases[:4]:
        weight, n = phase["aws_weight"], phase["requests"]
        assert n >= 100, phase
        if weight == 0:
            assert phase["aws_share"] == 0.0, phase  # weight 0: Route 53 never answers aws
            continue
        # Each request's side is a draw by weight (clients re-resolve after the TTL): the
        # measured share stays within 4.5 standard deviations of a binomial draw.
        spread = 4.5 * (weight * (100 - weight) / n) ** 0.5
        assert abs(phase["aws_share"] - weight) <= spread, phase


@pytest.mark.slow
def test_the_fault_is_detected_from_metrics_by_the_alarms_terraform_created(
    rehearsal: tuple[int, Path],
) -> None:
    report = _report(rehearsal[1])
    path = report["fault_path"]
    assert path["fired"] == f"{STACK}-5xx-rate"
    assert all(step["seconds"] is not None and step["seconds"] >= 0 for step in path["steps"])
    assert path["failed_to_clients"] > 0
    changes = [(t["alarm"], t["old"], t["new"]) for t in report["transitions"]]
    assert changes[:2] == [(f"{STACK}-5xx-rate", "OK", "ALARM"),
                           (f"{STACK}-migration-health", "OK", "ALARM")]  # fmt: skip
    # After the repair, with no more traffic on AWS, both return to OK.
    assert changes[2:4] == [(f"{STACK}-5xx-rate", "ALARM", "OK"),
                            (f"{STACK}-migration-health", "ALARM", "OK")]  # fmt: skip
    assert set(report["alarms_evaluated"]) == {
        f"{STACK}-5xx-rate", f"{STACK}-p99-latency", f"{STACK}-cdc-latency"}  # fmt: skip
    assert report["alarms_evaluated"][f"{STACK}-5xx-rate"].startswith("period 10 s, 3 of 3")
    assert {name: why.split(" ", 4)[:4] for name, why in report["alarms_not_evaluated"].items()} == {
        f"{STACK}-{m}": ["no", "local", "stand-in", "publishes"]
        for m in ("dms-task-failure", "aurora-cpu", "replica-lag")
    }  # fmt: skip
    # The modelled path: the controller's budget for prod, detection by the alarm that fired.
    prod = load_config(REPO / "config" / "prod.yaml")
    assert report["modelled_prod"] == modelled(prod, "5xx-rate")


@pytest.mark.slow
def test_the_notification_reaches_the_rollback_which_runs_under_its_own_role(
    rehearsal: tuple[int, Path],
) -> None:
    report = _report(rehearsal[1])
    delivered = [d for d in report["deliveries"] if d["matched"] and d["protocol"] == "lambda"]
    # The first fault rolls back; the one after cutover reaches the function too, which
    # then only notifies (the stage's rule). A switch's own 503s can trip the composite
    # as well (seen once): that run too may only notify.
    runs = [(d["source"], d["endpoint"].rsplit(":", 1)[-1], d["outcome"]) for d in delivered]
    composite = (f"CloudWatch: {STACK}-migration-health ALARM", f"{STACK}-rollback")
    assert runs[0] == (*composite, "succeeded")
    assert len(runs) >= 2 and set(runs[1:]) == {(*composite, "notified")}
    rollback = report["rollback"]
    role = f"{STACK}-rollback"
    assert rollback["principal"] == f"arn:aws:sts::123456789012:assumed-role/{role}/{role}"
    assert (rollback["result"], rollback["denied"]) == ("succeeded", [])
    assert rollback["weights_before"] == {"legacy": 50, "aws": 50}
    assert rollback["weights_after"] == {"legacy": 100, "aws": 0}
    assert {"route53:ChangeResourceRecordSets", "route53:GetChange",
            "elasticloadbalancing:DescribeListeners", "dynamodb:PutItem", "sns:Publish",
            "kms:GenerateDataKey"} <= set(rollback["actions"])  # fmt: skip
    assert report["final_weights"] == {"legacy": 0, "aws": 100}  # after the second cutover
    steps = {s["name"]: s for s in report["steps"]}
    assert "legacy 90 / aws 10" in steps["shift-10"]["detail"]
    assert "legacy 50 / aws 50" in steps["shift-50"]["detail"]
    assert steps["rollback"]["ok"]


@pytest.mark.slow
def test_the_writes_move_and_back_in_seconds_with_no_payment_lost_or_written_twice(
    rehearsal: tuple[int, Path],
) -> None:
    report = _report(rehearsal[1])
    writes = report["writes"]
    assert report["stages"] == ["replicating", "cut-over", "replicating", "cut-over", "complete"]
    windows = writes["windows"]
    assert [(w["operation"], w["result"]) for w in windows] == [
        ("cutover", "succeeded"), ("fallback", "succeeded"), ("cutover", "succeeded")]  # fmt: skip
    cache = load_config(REHEARSAL_CONFIG).app.write_target_cache_seconds
    for window in windows:
        # Measured by the clients and by the operation. Their size is a timing, so it is
        # reported (report.md, docs/rehearsal.md), not bounded here: on a loaded machine
        # a cutover took 6.4 s. What must hold: writes stopped, then resumed, and the
        # operation kept them stopped for the API's whole cache of the write target.
        assert window["window_seconds"] > 0, window
        assert window["last_ack_before"] < window["first_ack_after"], window
        assert window["operation_window_seconds"] >= cache, window
    assert writes["acknowledged"] == report["payments_acknowledged"] > 0
    assert writes["exactly_once"] == writes["acknowledged"]
    assert (writes["lost"], writes["duplicated_on_final_writer"],
            writes["duplicated_across_databases"]) == (0, 0, 0)  # fmt: skip
    # The receipt sequence: each switch sets the new writer past the old one by the
    # margin, so the values only grow and no number is handed out by both databases.
    margin = load_config(REHEARSAL_CONFIG).cutover.sequence_margin
    values = []
    for window in windows:
        seq = {s["name"]: s for s in window["sequences"]}["public.rehearsal_receipt_seq"]
        assert seq["new_writer"] >= (seq["old_writer"] or 0) + margin, seq
        values.append(seq["new_writer"])
    assert values == sorted(values) and len(set(values)) == 3
    assert writes["receipt_collisions"] == 0
    assert writes["receipts"]["aurora"]["count"] > 0 and writes["receipts"]["source"]["count"] > 0
    held = report["held_alarm"]
    assert (held["result"], held["audit_action"], held["audit_result"]) == (
        "notified", "alarm-after-cutover", "notified")  # fmt: skip
    assert held["weights_before"] == held["weights_after"] == {"legacy": 0, "aws": 100}


@pytest.mark.slow
def test_every_login_is_made_as_the_dba_and_the_setup_function_make_it(
    rehearsal: tuple[int, Path],
) -> None:
    report = _report(rehearsal[1])
    secrets = [line.split(": ", 1)[0] for line in report["logins"]]
    assert secrets[:5] == [f"{STACK}/source/{c}"
                           for c in ("api", "dms", "validation", "dms_apply", "rotation")]  # fmt: skip
    assert [s.rsplit(":", 1)[-1].rsplit("-", 1)[0] for s in secrets[5:]] == [
        f"{STACK}/aurora/{c}" for c in ("api", "dms_reverse", "dms_target", "validation")]  # fmt: skip
    role = f"{STACK}-db-setup"
    assert report["setup_check"].startswith(f"as arn:aws:sts::123456789012:assumed-role/{role}/")
    assert report["setup_check"].endswith("login checks, all passed")
    assert {s["name"]: s["ok"] for s in report["steps"]}["database logins"] is True


@pytest.mark.slow
def test_the_validation_explains_its_counts(rehearsal: tuple[int, Path]) -> None:
    report = _report(rehearsal[1])
    for result in (report["validation"], report["final_validation"]):
        assert result["consistent"] is True
        lines = result["explanation"]
        assert lines[-1] == "verdict: consistent"
        assert {line.split(":")[0] for line in lines[:-1]} == {
            "public.accounts", "public.payments", "public.refunds", "public.paymig_markers"}  # fmt: skip
    live = {t["table"]: t for t in report["validation"]["tables"]}["public.payments"]
    gap = live["source_rows"] - live["target_rows"]
    line = next(x for x in report["validation"]["explanation"] if x.startswith("public.payments"))
    assert (f"({abs(gap)} row(s) in flight" in line) is (gap != 0)


@pytest.mark.slow
def test_what_could_not_be_rehearsed_is_listed_and_the_rest_created(
    rehearsal: tuple[int, Path],
) -> None:
    report = _report(rehearsal[1])
    not_rehearsed = report["not_rehearsed"]
    assert report["resources_created"] + len(not_rehearsed) == report["resources_total"]
    assert report["resources_created"] > 100
    document = json.loads(
        (rehearsal[1] / "cdktf.out" / "stacks" / STACK / "cdk.tf.json").read_text()
    )
    resources = document["resource"]
    dms = {f"{kind}.{name}" for kind, items in resources.items() if kind.startswith("aws_dms_")
           for name in items}  # fmt: skip
    # cdc stage: forward and reverse endpoints and tasks, the instance and its subnet group,
    # the two CA certificates, the two event subscriptions.
    assert len(dms) == 12 and dms <= set(not_rehearsed)
    rotations = {f"aws_secretsmanager_secret_rotation.{n}"
                 for n in resources["aws_secretsmanager_secret_rotation"]}  # fmt: skip
    assert len(rotations) == 10 and rotations <= set(not_rehearsed)
    assert all(not_rehearsed[r].startswith("not attempted: moto 5.2.5's RotateSecret")
               for r in rotations)  # fmt: skip
    checks = {f"aws_lambda_invocation.{n}" for n in resources["aws_lambda_invocation"]}
    assert len(checks) == 3 and checks <= set(not_rehearsed)  # they wait on the instances
    provisioned = [a for a in not_rehearsed if a.startswith("aws_lambda_provisioned_concurrency")]
    assert len(provisioned) == 1
    assert "PutProvisionedConcurrencyConfig" in not_rehearsed[provisioned[0]]
    assert not any(
        a.startswith(("aws_vpc.", "aws_lb.", "aws_route53_record.", "aws_vpn_connection."))
        for a in not_rehearsed
    )
    created = report["created_by_rehearsal"]
    # The composite watches the two user-facing alarms only: Terraform creates it, through
    # the emulator's PutCompositeAlarm (paymig.local.moto_extensions).
    (composite,) = (f"aws_cloudwatch_composite_alarm.{n}"
                    for n in resources["aws_cloudwatch_composite_alarm"])  # fmt: skip
    assert composite not in not_rehearsed
    assert not any(item.startswith("CloudWatch composite alarm") for item in created)
    assert any(item.startswith(f"CloudWatch alarm {STACK}-cdc-latency") for item in created)
    assert any(item.startswith(f"CloudWatch dashboard {STACK}-migration") for item in created)
    with_data = report["dashboard_coverage"]["with data"]
    assert any("HTTPCode_Target_5XX_Count" in m for m in with_data)
    assert any("CDCLatencyTarget" in m for m in with_data)


@pytest.mark.slow
def test_rehearsal_stopped_every_process(rehearsal: tuple[int, Path]) -> None:
    report = _report(rehearsal[1])
    names = [p["name"] for p in report["processes"]]
    assert names[:3] == ["moto", "source", "target"]
    assert "aws side (ALB + payment API)" in names
    assert report["processes_still_running"] == []
    assert still_alive([p["pid"] for p in report["processes"]], timeout=0) == []


@pytest.mark.slow
def test_rehearsal_writes_report_and_timeline(rehearsal: tuple[int, Path]) -> None:
    workdir = rehearsal[1]
    report = _report(workdir)
    text = (workdir / "report.md").read_text()
    row = re.search(r"^\| payments acknowledged / found / lost \| (\d+) / (\d+) / (\d+) \|$",
                    text, re.M)  # fmt: skip
    assert row is not None
    assert [int(x) for x in row.groups()] == [report["payments_acknowledged"],
                                              report["payments_found"], 0]  # fmt: skip
    for address in report["not_rehearsed"]:
        assert f"| `{address}` |" in text
    assert (workdir / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    timeline = json.loads((workdir / "timeline.json").read_text())
    assert {"fault", "weights-restored", "repaired", "shift-10", "shift-50", "shift-100",
            "cutover", "fallback", "stage"} <= {e["name"] for e in timeline["events"]}  # fmt: skip
    assert "## Writes moved (cutover, fallback)" in text
    assert not (workdir / "work").exists()  # no --keep


@pytest.mark.slow
def test_a_failing_step_stops_everything_and_still_reports(tmp_path: Path, capsys: Any) -> None:
    """A configuration error after the servers started: one line, exit 2, report written."""
    from paymig.cli import rehearse_commands

    bad = tmp_path / "bad.yaml"
    bad.write_text("environment: rehearsal\n")
    options = Options(workdir=tmp_path / "out", rows=10, rate=1.0, config_path=bad)
    from paymig.errors import ConfigError
    from paymig.rehearsal.run import Rehearsal

    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        Rehearsal(options).run()
    report = _report(tmp_path / "out")
    assert report["outcome"] == "failed"
    assert "bad.yaml" in report["failure"]
    assert [p["name"] for p in report["processes"]] == ["moto", "source", "target"]
    assert report["processes_still_running"] == []
    assert still_alive([p["pid"] for p in report["processes"]], timeout=0) == []
    assert not (tmp_path / "out" / "work").exists()
    assert rehearse_commands.register  # the CLI module imports cleanly


@pytest.mark.slow
@pytest.mark.parametrize(
    ("raised", "code", "line"),
    [
        (KeyboardInterrupt(), 130, "paymig: rehearsal interrupted; every process it started "
         "was stopped"),
        (OSError("disk full"), 1, "paymig: deploying the stack to the emulator (terraform apply): OSError: disk full"),
    ],
)  # fmt: skip
def test_interruption_and_unexpected_errors_are_one_line(
    raised: BaseException, code: int, line: str, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    """Ctrl-C or an error no step expected, raised while deploying (fault injected)."""
    from paymig.rehearsal import run as run_module

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise raised

    monkeypatch.setattr(run_module, "deploy", fail)
    workdir = tmp_path / "out"
    assert main(["rehearse", "--workdir", str(workdir), "--rows", "10"]) == code
    assert capsys.readouterr().err.strip().splitlines() == [line]
    report = _report(workdir)
    assert report["outcome"] == ("interrupted" if code == 130 else "failed")
    assert report["processes_still_running"] == []
    assert still_alive([p["pid"] for p in report["processes"]], timeout=0) == []
