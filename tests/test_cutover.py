"""`paymig cutover` and `paymig fallback` end to end: two real PostgreSQL servers and moto.

PostgreSQL logical replication stands in for the two DMS tasks: a subscription on the
target for the forward task (on-prem -> Aurora, full load and CDC) and, after the
cutover, a subscription on the source reading the slot the cutover made, for the
reverse task (Aurora -> on-prem, CDC only). It moves rows as DMS does: in commit order,
without DDL or sequence state. The audit table (stage, progress, fence records, lock,
events), the write-target SSM parameter and the Route 53 weights are moto's
(tests/controller_env.py builds the environment). A writer thread plays the API: it
reads the write target through the API's own cache class and writes with the API's
login, retrying a failed payment with the same idempotency key as a client would.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatch
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
import yaml
from botocore.awsrequest import AWSResponse
from psycopg import errors

from controller_env import REGION, MigrationEnv, build_env
from iam_calls import CUTOVER_COMMANDS, WATCH_COMMAND, IamCalls
from paymig.cli import cutover_commands, main
from paymig.config import AutomationConfig, PaymigConfig
from paymig.lambdas.payment_api_write_target import WriteTargetCache
from paymig.local.emulator import MotoServer
from paymig.naming import (
    audit_table_name,
    composite_alarm_name,
    dms_reverse_task_identifier,
    write_target_parameter_name,
)
from paymig.runtime.controller.core import ControllerRefusedError
from paymig.runtime.controller.permissions import COMMANDS, PERMISSIONS
from paymig.runtime.cutover import database as db
from paymig.runtime.cutover.dms import DmsReplication
from paymig.runtime.cutover.operations import CUTOVER_STEPS, FALLBACK_STEPS, run_operation
from paymig.runtime.cutover.progress import ProgressStore
from paymig.runtime.cutover.replication import LogicalReplicationPaths
from paymig.runtime.cutover.steps import CutoverEnv, Databases
from paymig.runtime.cutover.write_target import SsmWriteTarget
from pg_pair import Pair, replicated_pair

FORWARD = "paymig_fwd"
REVERSE = "paymig_rev"
CACHE_SECONDS = 1.0
ACCOUNT = "123456789012"  # moto's


def _roles(conn: psycopg.Connection[Any], side: str) -> None:
    """The API's group and login as paymig.logins makes them; legacy's role on the source."""
    statements = [
        "CREATE ROLE paymig_api_rw NOLOGIN",
        "CREATE ROLE paymig_api LOGIN IN ROLE paymig_api_rw",
        "GRANT SELECT, INSERT, UPDATE ON accounts, payments, refunds TO paymig_api_rw",
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO paymig_api_rw",
    ]
    if side == "source":
        statements += [
            "CREATE ROLE legacy_app LOGIN",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON accounts, payments, refunds TO legacy_app",
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO legacy_app",
        ]
    for statement in statements:
        conn.execute(statement)


def _prepare(conn: psycopg.Connection[Any], side: str) -> None:
    # A sequence the writers draw receipt numbers from (the payment keys are uuids): a
    # collision after a switch would show as a repeated receipt.
    conn.execute("CREATE SEQUENCE receipt_no")
    _roles(conn, side)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with replicated_pair("cutover-op", FORWARD, _prepare) as started:
        yield started


@pytest.fixture
def env(
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prod_config: PaymigConfig,
) -> MigrationEnv:
    """Traffic at 100% on AWS for 2 h, every gate passing, the write target `source`."""
    cutover = prod_config.cutover.model_copy(update={"legacy_write_roles": ["legacy_app"]})
    base = prod_config.model_copy(update={"cutover": cutover})
    built = build_env(moto_server, monkeypatch, tmp_path, base, aws_weight=100, validation=None)
    built.record_event(
        datetime.now(UTC) - timedelta(hours=2),
        action="shift", result="succeeded", from_phase=50, to_phase=100, phase_after=100,
    )  # fmt: skip
    built.audit().record_validation({"status": "consistent", "summary": "test"})
    built.client("ssm").put_parameter(
        Name=write_target_parameter_name(built.stack), Value="source", Type="String"
    )
    return built


def _cutover_env(env: MigrationEnv, pair: Pair, **kw: Any) -> CutoverEnv:
    session = boto3.Session(region_name=REGION)
    return CutoverEnv(
        aws=env.controller(),
        settings=env.settings,
        cutover=env.config.cutover,
        reverse_slot=env.config.replication.reverse_slot_name,
        databases=Databases(pair.dsn("source"), pair.dsn("target")),
        replication=LogicalReplicationPaths(
            pair.dsn("source"), pair.dsn("target"), forward=FORWARD, reverse=REVERSE
        ),
        write_target=SsmWriteTarget(session.client("ssm"), write_target_parameter_name(env.stack)),
        progress=ProgressStore(session.client("dynamodb"), audit_table_name(env.stack)),
        **{"cache_seconds": CACHE_SECONDS, **kw},
    )


# --------------------------------------------------------------------------- the writer


@dataclass(eq=False)
class Writer(threading.Thread):
    """The API: each payment goes where the cached write target says, retried until acked."""

    pair: Pair
    parameter: str
    acked: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(daemon=True)
        self.stopping = threading.Event()
        ssm = boto3.Session(region_name=REGION).client("ssm")
        self.cache = WriteTargetCache(
            self.parameter,
            lambda: str(ssm.get_parameter(Name=self.parameter)["Parameter"]["Value"]),
            time.monotonic,
            CACHE_SECONDS,
        )
        self.conns: dict[str, psycopg.Connection[Any]] = {}

    def _conn(self, target: str) -> psycopg.Connection[Any]:
        if target not in self.conns or self.conns[target].closed:
            side = "source" if target == "source" else "target"
            self.conns[target] = psycopg.connect(self.pair.dsn(side, "paymig_api"))
        return self.conns[target]

    def _pay(self, key: str, target: str) -> str:
        conn = self._conn(target)
        with conn.transaction():
            receipt = conn.execute("SELECT nextval('receipt_no')").fetchone()
            account = conn.execute(
                "INSERT INTO accounts (display_name) VALUES (%s) RETURNING id",
                (f"receipt-{receipt[0] if receipt else 0}",),
            ).fetchone()
            row = conn.execute(
                "INSERT INTO payments (account_id, merchant_id, idempotency_key, amount, "
                "currency, status, request_fingerprint) VALUES (%s, 'm-test', %s, 1, 'USD', "
                "'succeeded', %s) ON CONFLICT ON CONSTRAINT payments_merchant_idempotency_key "
                "DO NOTHING RETURNING id",
                (account[0] if account else None, key, hashlib.sha256(key.encode()).hexdigest()),
            ).fetchone()
            if row is None:
                row = conn.execute(
                    "SELECT id FROM payments WHERE merchant_id = 'm-test' AND idempotency_key = %s",
                    (key,),
                ).fetchone()
        assert row is not None
        return str(row[0])

    def run(self) -> None:
        while not self.stopping.is_set():
            key = str(uuid.uuid4())
            while True:  # a client retries the same payment (same key) until it is acked
                target = self.cache.current()
                try:
                    self.acked[key] = (self._pay(key, target), target, time.monotonic())
                    break
                except psycopg.Error as exc:
                    name = type(exc).__name__
                    self.failures[name] = self.failures.get(name, 0) + 1
                    self.conns.pop(target, None)
                    time.sleep(0.02)
            time.sleep(0.005)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)
        for conn in self.conns.values():
            conn.close()

    def gap(self, old: str, new: str) -> float:
        """Seconds between the last payment acked on ``old`` and the first on ``new``."""
        first_new = min(t for _, w, t in self.acked.values() if w == new)
        last_old = max(t for _, w, t in self.acked.values() if w == old and t < first_new)
        return first_new - last_old


# --------------------------------------------------------------------------- checks


def _drained(pair: Pair, old: str, new: str) -> None:
    """Everything committed on ``old`` so far is on ``new`` (a marker through the path)."""
    with pair.connect(old) as source, pair.connect(new) as target:
        db.wait_for_marker(target, db.write_marker(source, "test"), timeout_seconds=30)


def _payments(pair: Pair, side: str) -> dict[str, list[str]]:
    with pair.connect(side) as conn:
        rows = conn.execute(
            "SELECT idempotency_key, id::text FROM payments WHERE merchant_id = 'm-test'"
        ).fetchall()
    found: dict[str, list[str]] = {}
    for key, payment in rows:
        found.setdefault(key, []).append(payment)
    return found


def _repeated_receipts(pair: Pair, side: str) -> int:
    with pair.connect(side) as conn:
        row = conn.execute(
            "SELECT count(*) - count(DISTINCT display_name) FROM accounts "
            "WHERE display_name LIKE 'receipt-%'"
        ).fetchone()
    return int(row[0]) if row else -1


def _api_can_write(pair: Pair, side: str, user: str = "paymig_api") -> bool:
    with pair.connect(side, user) as conn:
        try:
            conn.execute("INSERT INTO accounts (display_name) VALUES ('fence probe')")
        except errors.InsufficientPrivilege:
            return False
    return True


def _receipt(pair: Pair, side: str) -> int:
    with pair.connect(side) as conn:
        # pg_sequences: NULL until the first nextval (the relation itself would say 1).
        row = conn.execute(
            "SELECT COALESCE(last_value, 0) FROM pg_sequences WHERE sequencename = 'receipt_no'"
        ).fetchone()
    return int(row[0]) if row else 0


def _assert_cut_over(env: MigrationEnv, pair: Pair) -> None:
    """Writes on Aurora only; its sequence past the source's; the way back replicating."""
    assert (
        env.client("ssm").get_parameter(Name=write_target_parameter_name(env.stack))["Parameter"][
            "Value"
        ]
        == "aurora"
    )
    stage = env.controller().stage.read()
    assert (stage.stored, stage.operation) == ("cut-over", None)
    assert not _api_can_write(pair, "source")
    assert not _api_can_write(pair, "source", "legacy_app")
    assert _api_can_write(pair, "target")
    assert _receipt(pair, "target") >= _receipt(pair, "source") + 1000
    _drained(pair, "target", "source")


def _assert_fallen_back(env: MigrationEnv, pair: Pair) -> None:
    """Writes on the source only, forward replicating again, legacy 100."""
    assert (
        env.client("ssm").get_parameter(Name=write_target_parameter_name(env.stack))["Parameter"][
            "Value"
        ]
        == "source"
    )
    stage = env.controller().stage.read()
    assert (stage.stored, stage.operation) == ("replicating", None)
    assert not _api_can_write(pair, "target")
    assert _api_can_write(pair, "source") and _api_can_write(pair, "source", "legacy_app")
    assert _receipt(pair, "source") >= _receipt(pair, "target") + 1000
    assert env.weights() == {"legacy": 100, "aws": 0}
    _drained(pair, "source", "target")


# --------------------------------------------------------------------------- tests


def test_cutover_and_fallback_under_load_lose_and_duplicate_nothing(
    env: MigrationEnv, pair: Pair
) -> None:
    writer = Writer(pair, write_target_parameter_name(env.stack))
    writer.start()
    try:
        time.sleep(1.0)
        cut = run_operation(_cutover_env(env, pair), "cutover", reason="test cutover")
        time.sleep(1.0)
        _assert_cut_over(env, pair)
        back = run_operation(_cutover_env(env, pair), "fallback", reason="test fallback")
        time.sleep(1.0)
    finally:
        writer.stop()
    _assert_fallen_back(env, pair)
    on_source, on_target = _payments(pair, "source"), _payments(pair, "target")
    acked = {key: payment for key, (payment, _, _) in writer.acked.items()}
    assert {w for _, w, _ in writer.acked.values()} == {"source", "aurora"}
    for found in (on_source, on_target):
        assert {k: v for k, v in found.items() if k in acked} == {k: [v] for k, v in acked.items()}
    assert on_source == on_target  # nothing only one side has
    assert _repeated_receipts(pair, "source") == 0
    assert _repeated_receipts(pair, "target") == 0
    # Only the fence refused them: revoked privileges and sessions ended by the fence.
    assert set(writer.failures) <= {"InsufficientPrivilege", "AdminShutdown", "OperationalError"}
    for outcome in (cut, back):
        assert outcome.result == "succeeded"
        assert outcome.window_seconds is not None
        assert CACHE_SECONDS <= outcome.window_seconds < CACHE_SECONDS + 10
        assert [s["step"] for s in outcome.steps] == [
            name for name, _ in (CUTOVER_STEPS if outcome is cut else FALLBACK_STEPS)
        ]
    print(
        f"\ncutover window {cut.window_seconds} s (writer gap {writer.gap('source', 'aurora'):.3f}"
        f" s); fallback window {back.window_seconds} s; {len(acked)} payments acked; "
        f"failed attempts {writer.failures}; steps "
        + "; ".join(f"{s['step']} {s['seconds']}" for o in (cut, back) for s in o.steps)
    )
    events = [e for e in env.audit().events() if e.get("action") in ("cutover", "fallback")]
    assert [(e["action"], e["result"]) for e in events] == [
        ("cutover", "succeeded"),
        ("fallback", "succeeded"),
    ]
    assert events[0]["window_seconds"] == cut.window_seconds
    assert [s["step"] for s in events[0]["steps"]] == [n for n, _ in CUTOVER_STEPS]


class Crash(Exception):
    """The process dies after a step was recorded."""


#: The crash tests need no writer: the API's cache is waited out for a token time.
FAST = {"cache_seconds": 0.05}


def _crash_after(step: str) -> Any:
    crashed: list[str] = []

    def hook(name: str) -> None:
        if name == step and not crashed:
            crashed.append(name)
            raise Crash(name)

    return hook


@pytest.mark.parametrize("step", [name for name, _ in CUTOVER_STEPS])
def test_a_cutover_crashed_after_any_step_completes_when_run_again(
    env: MigrationEnv, pair: Pair, step: str
) -> None:
    with pytest.raises(Crash):
        run_operation(
            _cutover_env(env, pair, after_step=_crash_after(step), **FAST), "cutover", reason="r"
        )
    progress = _cutover_env(env, pair, **FAST).progress.read()
    assert progress is not None and progress.last_step == step
    outcome = run_operation(_cutover_env(env, pair, **FAST), "cutover", reason="again")
    assert (outcome.result, outcome.resumed_after) == ("succeeded", step)
    assert _cutover_env(env, pair, **FAST).progress.read() is None
    _assert_cut_over(env, pair)
    run_operation(_cutover_env(env, pair, **FAST), "fallback", reason="reset the servers")
    _assert_fallen_back(env, pair)


@pytest.mark.parametrize("step", [name for name, _ in FALLBACK_STEPS])
def test_a_fallback_crashed_after_any_step_completes_when_run_again(
    env: MigrationEnv, pair: Pair, step: str
) -> None:
    run_operation(_cutover_env(env, pair, **FAST), "cutover", reason="first")
    with pytest.raises(Crash):
        run_operation(
            _cutover_env(env, pair, after_step=_crash_after(step), **FAST), "fallback", reason="r"
        )
    with pytest.raises(ControllerRefusedError) as refused:
        run_operation(_cutover_env(env, pair, **FAST), "cutover", reason="not now")
    assert str(refused.value) == (
        f"a fallback is under way (stopped after step {step}): run `paymig fallback` to "
        "finish it first"
    )
    outcome = run_operation(_cutover_env(env, pair, **FAST), "fallback", reason="again")
    assert (outcome.result, outcome.resumed_after) == ("succeeded", step)
    _assert_fallen_back(env, pair)


def test_a_cutover_is_refused_naming_each_failed_precondition(
    env: MigrationEnv, pair: Pair
) -> None:
    env.set_alarm("5xx-rate", "ALARM")
    route53 = env.client("route53")
    records = route53.list_resource_record_sets(HostedZoneId=env.zone_id)["ResourceRecordSets"]
    changes = []
    for record in records:
        if record.get("SetIdentifier") in ("legacy", "aws"):
            weight = 50
            changes.append({"Action": "UPSERT", "ResourceRecordSet": {**record, "Weight": weight}})
    route53.change_resource_record_sets(HostedZoneId=env.zone_id, ChangeBatch={"Changes": changes})
    with pytest.raises(ControllerRefusedError) as refused:
        run_operation(_cutover_env(env, pair, **FAST), "cutover", reason="too early")
    reasons = refused.value.reasons
    assert reasons[0] == (
        "precondition phase failed: live weights are legacy 50 / aws 50, not aws 100"
    )
    assert any(r.startswith("gate alarm:5xx-rate failed:") for r in reasons)
    assert any(r.startswith("precondition fresh-validation failed:") for r in reasons)
    assert env.controller().stage.read().version == 0  # nothing was marked
    assert _api_can_write(pair, "source")  # nothing was fenced
    refusals = [e for e in env.audit().events() if e.get("action") == "cutover"]
    assert [e["result"] for e in refusals] == ["refused"]


def test_a_fallback_before_any_cutover_is_refused(env: MigrationEnv, pair: Pair) -> None:
    with pytest.raises(ControllerRefusedError) as refused:
        run_operation(_cutover_env(env, pair, **FAST), "fallback", reason="nothing to undo")
    assert str(refused.value) == (
        "precondition stage failed: stage is replicating, not cut-over: the writes are not on "
        "aurora, nothing to fall back from"
    )


def test_status_shows_where_a_stopped_cutover_stands_and_the_cli_refuses_in_one_line(
    env: MigrationEnv, pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(Crash):
        run_operation(
            _cutover_env(env, pair, after_step=_crash_after("drain"), **FAST), "cutover", reason="r"
        )
    capsys.readouterr()
    assert main(["status", "--format", "json", "--config", str(env.config_path)]) == 0
    stage = json.loads(capsys.readouterr().out)["stage"]
    assert (stage["stage"], stage["writes_on"], stage["operation"]) == (
        "shifting", "source", "cutover",
    )  # fmt: skip
    assert stage["progress"]["steps_done"] == ["mark", "fence-source", "drain"]
    assert stage["progress"]["steps_left"] == [n for n, _ in CUTOVER_STEPS][3:]
    assert main(["status", "--config", str(env.config_path)]) == 0
    text = capsys.readouterr().out
    assert "stage: shifting, writes on source" in text
    assert "cutover under way since" in text and "last step done drain; left: stop-forward" in text
    # The CLI drives DMS, which moto does not run: a fallback now is refused before it.
    dsns = ["--source-dsn", pair.dsn("source"), "--target-dsn", pair.dsn("target")]
    code = main(["fallback", "--reason", "x", *dsns, "--config", str(env.config_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        "paymig: a cutover is under way (stopped after step drain): run `paymig cutover` to "
        "finish it first\n"
    )
    run_operation(_cutover_env(env, pair, **FAST), "cutover", reason="finish")
    run_operation(_cutover_env(env, pair, **FAST), "fallback", reason="reset the servers")
    _assert_fallen_back(env, pair)


# --------------------------------------------------------------------------- permissions


class DmsAndLogical:
    """The CLI's DMS calls go to moto, which replicates nothing; logical replication
    moves the rows. moto has no ModifyReplicationTask nor ModifyEndpoint, and the test
    environment's task names endpoints moto does not hold: those answers are AWS's
    documented ones (DMS API reference), given by before-call hooks."""

    plugin = LogicalReplicationPaths.plugin

    def __init__(self, dms: DmsReplication, rows: LogicalReplicationPaths) -> None:
        self.dms, self.rows = dms, rows

        def modified(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            sent = json.loads(params["body"])  # the serialized request
            task = {"ReplicationTaskArn": sent["ReplicationTaskArn"], "MigrationType": "cdc"}
            return AWSResponse("https://aws", 200, {}, None), {
                "ReplicationTask": task,
                "ResponseMetadata": {"HTTPStatusCode": 200},
            }

        def endpoint(sent: dict[str, Any]) -> dict[str, Any]:
            arn = sent.get("EndpointArn") or sent["Filters"][0]["Values"][0]
            settings = sent.get("PostgreSQLSettings", {})
            return {"EndpointArn": arn, "EngineName": "postgres", "PostgreSQLSettings": settings}

        def described(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            found = [endpoint(json.loads(params["body"]))]
            return AWSResponse("https://aws", 200, {}, None), {
                "Endpoints": found, "ResponseMetadata": {"HTTPStatusCode": 200}}  # fmt: skip

        def named(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            return AWSResponse("https://aws", 200, {}, None), {
                "Endpoint": endpoint(json.loads(params["body"])),
                "ResponseMetadata": {"HTTPStatusCode": 200}}  # fmt: skip

        events = dms.client.meta.events
        events.register("before-call.database-migration-service.ModifyReplicationTask", modified)
        events.register("before-call.database-migration-service.DescribeEndpoints", described)
        events.register("before-call.database-migration-service.ModifyEndpoint", named)

    def stop_forward(self) -> str:
        return f"{self.dms.stop_forward()}; {self.rows.stop_forward()}"

    def start_reverse(self, slot: str, lsn: str) -> str:
        return f"{self.dms.start_reverse(slot, lsn)}; {self.rows.start_reverse(slot, lsn)}"

    def stop_reverse(self) -> str:
        return f"{self.dms.stop_reverse()}; {self.rows.stop_reverse()}"

    def start_forward(self, slot: str, lsn: str) -> str:
        return f"{self.dms.start_forward(slot, lsn)}; {self.rows.start_forward(slot, lsn)}"


def _arn_pattern(resource: str, stack: str) -> str:
    return (
        resource.replace("<region>", REGION).replace("<account>", ACCOUNT).replace("<stack>", stack)
    )


def _cli_on_logical_replication(
    env: MigrationEnv, pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's cutover environment with DMS in moto and the rows moved by logical
    replication (DmsAndLogical): the forward task running, the reverse one created."""
    dms = env.client("dms")
    forward = dms.describe_replication_tasks()["ReplicationTasks"][0]
    dms.start_replication_task(
        ReplicationTaskArn=forward["ReplicationTaskArn"],
        StartReplicationTaskType="start-replication",
    )
    dms.create_replication_task(
        ReplicationTaskIdentifier=dms_reverse_task_identifier(env.stack),
        **{k: forward[k] for k in ("SourceEndpointArn", "TargetEndpointArn",
                                   "ReplicationInstanceArn", "TableMappings")},
        MigrationType="cdc",
    )  # fmt: skip
    rows = LogicalReplicationPaths(
        pair.dsn("source"), pair.dsn("target"), forward=FORWARD, reverse=REVERSE
    )
    monkeypatch.setattr(
        cutover_commands,
        "DmsReplication",
        lambda client, stack: DmsAndLogical(DmsReplication(client, stack, poll_seconds=0), rows),
    )
    monkeypatch.setattr(cutover_commands, "CutoverEnv", partial(CutoverEnv, **FAST))


def _dsns(pair: Pair) -> list[str]:
    return ["--source-dsn", pair.dsn("source"), "--target-dsn", pair.dsn("target")]


def test_every_call_cutover_and_fallback_make_is_in_the_permission_registry(
    env: MigrationEnv, pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`paymig cutover` then `paymig fallback` through the CLI, every call recorded: the
    operator's policy (docs/controller.md) is built from the registry, and moto enforces
    no IAM, so an action missing there would be denied on AWS half-way through."""
    _cli_on_logical_replication(env, pair, monkeypatch)
    calls = IamCalls().install(monkeypatch)
    for command in CUTOVER_COMMANDS:
        calls.command = command
        assert main([command, "--reason", "r", *_dsns(pair), "--config", str(env.config_path)]) == 0
        calls.command = None
    _assert_fallen_back(env, pair)
    assert calls.missing() == {}
    assert set(calls.seen) == set(CUTOVER_COMMANDS)
    # Nothing listed that the code does not call, but for two conditional calls: the
    # listener was already on the stable alias, and STS answered (no topic listing).
    assert calls.actions("cutover") == set(COMMANDS["cutover"])
    assert set(COMMANDS["fallback"]) - calls.actions("fallback") == {
        "elasticloadbalancing:ModifyListener",
        "sns:ListTopics",
    }
    for command in CUTOVER_COMMANDS:
        assert {"dms:StopReplicationTask", "dms:StartReplicationTask", "ssm:PutParameter"} <= (
            calls.actions(command)
        )
    assert {"dms:ModifyReplicationTask", "dms:ModifyEndpoint"} <= calls.actions("fallback")
    (named,) = calls.params("fallback", "dms:ModifyEndpoint")
    assert named["PostgreSQLSettings"] == {"SlotName": env.config.cutover.forward_slot_name}
    assert fnmatch(
        named["EndpointArn"],
        _arn_pattern(PERMISSIONS["dms:ModifyEndpoint"].resources[0], env.stack),
    )
    assert "route53:ChangeResourceRecordSets" in calls.actions("fallback")  # the weights
    # Each call's resource is inside the registry's scope (and its condition holds). moto's
    # task ARNs end in the identifier; AWS's in a generated resource id (DMS API reference,
    # ReplicationTask): both match task:*, which is why the scope is no narrower.
    for command in CUTOVER_COMMANDS:
        for action in ("dms:StopReplicationTask", "dms:StartReplicationTask",
                       "dms:ModifyReplicationTask"):  # fmt: skip
            for params in calls.params(command, action):
                (scope,) = PERMISSIONS[action].resources
                assert fnmatch(params["ReplicationTaskArn"], _arn_pattern(scope, env.stack))
        for action in ("ssm:GetParameter", "ssm:PutParameter"):
            for params in calls.params(command, action):
                (scope,) = PERMISSIONS[action].resources
                arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{params['Name']}"
                assert arn == _arn_pattern(scope, env.stack)
        assert [p["Overwrite"] for p in calls.params(command, "ssm:PutParameter")] == [True]
        table = {p["TableName"] for a, p in calls.seen[command] if a.startswith("dynamodb:")}
        assert table == {audit_table_name(env.stack)}
    assert PERMISSIONS["ssm:PutParameter"].condition == {"StringEquals": {"ssm:Overwrite": "true"}}


def test_watch_falls_back_by_itself_once_the_composite_has_held_alarm(
    env: MigrationEnv,
    pair: Pair,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """`paymig watch` after a CLI cutover. With the default (notify) it refuses; with
    `fallback` it waits while the composite is OK, then falls back by itself: writes and
    traffic on legacy, the audit and the alert topic say so, and every call it makes is
    in the registry (moto checks no IAM)."""
    _cli_on_logical_replication(env, pair, monkeypatch)
    assert main(["cutover", "--reason", "r", *_dsns(pair), "--config", str(env.config_path)]) == 0
    _assert_cut_over(env, pair)
    capsys.readouterr()
    assert main(["watch", *_dsns(pair), "--config", str(env.config_path)]) == 1
    assert capsys.readouterr().err == (
        "paymig: watch refused: automation.after_cutover is notify for env prod: an alarm "
        "after cutover only notifies; set it to fallback to let `paymig watch` fall back\n"
    )
    automation = AutomationConfig(
        after_cutover="fallback", fallback_alarm_seconds=0, watch_poll_seconds=1
    )
    config = tmp_path / "automatic" / env.config_path.name
    config.parent.mkdir()
    dumped = env.config.model_copy(update={"automation": automation}).model_dump(mode="json")
    config.write_text(yaml.safe_dump(dumped), encoding="utf-8")
    composite = composite_alarm_name(env.stack)
    cloudwatch = env.client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName=composite, StateValue="OK", StateReason="test")
    env.notifications()  # the cutover's, if any
    calls = IamCalls().install(monkeypatch)
    calls.command = WATCH_COMMAND
    codes: list[int] = []

    def watch() -> None:
        calls.thread = threading.get_ident()  # the test's own calls meanwhile are not its
        codes.append(main(["watch", *_dsns(pair), "--config", str(config)]))

    watching = threading.Thread(target=watch)
    watching.start()
    time.sleep(3.0)  # three polls with the composite OK
    assert watching.is_alive()
    _assert_cut_over(env, pair)
    cloudwatch.set_alarm_state(AlarmName=composite, StateValue="ALARM", StateReason="test")
    watching.join(timeout=120)
    calls.command = None
    assert codes == [0]
    _assert_fallen_back(env, pair)
    out = capsys.readouterr().out
    assert out.startswith("stage cut-over, composite alarm OK\n")
    assert "watch: fell-back: composite alarm in ALARM since " in out
    (event,) = [e for e in env.audit().events() if e.get("action") == "fallback"]
    assert (event["source"], event["result"]) == ("watch", "succeeded")
    assert event["reason"].startswith(
        "automatic fallback (automation.after_cutover): composite alarm in ALARM since "
    )
    told = [n for n in env.notifications() if str(n["subject"]).startswith("paymig watch")]
    assert [n["subject"] for n in told] == ["paymig watch: falling back", "paymig watch: fell back"]
    assert told[1]["window_seconds"] == event["window_seconds"]
    assert calls.missing() == {}
    assert {"cloudwatch:DescribeAlarms", "sns:Publish", "ssm:PutParameter"} <= calls.actions(
        WATCH_COMMAND
    )
