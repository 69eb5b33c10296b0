"""The validation Lambda that `terraform apply` invokes: real PostgreSQL, real moto.

The handler runs in-process (moto cannot run a Lambda) against two TLS PostgreSQL
servers started here, declared as the stack declares them (``PAYMIG_DB_SOURCE`` /
``PAYMIG_DB_AURORA``, verify-full against the CA in SSM), and a moto server holding the
logins, the CA bundles, the audit table and the CDC metric. The post-migration check
reads the latest full pass, which the validation job's actions record first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from iam_calls import IamCalls
from paymig.config import PaymigConfig, ValidationConfig
from paymig.errors import ConfigError, PaymigError
from paymig.lambdas.validation import CheckFailedError, LambdaSettings, handler
from paymig.lambdas.validation_job import handler as job_handler
from paymig.local.emulator import MotoServer
from paymig.local.postgres import LocalPostgres
from tests.controller_env import MigrationEnv, build_env
from tests.tf_helpers import by_path, path_of, policy, ref, resources
from tests.validation_env import (
    LambdaContext,
    declare,
    execute,
    payment_id,
    set_environment,
    start_databases,
)

pytestmark = pytest.mark.slow

VALIDATION = ValidationConfig(grace_seconds=0, workers=2, range_rows=100, leaf_rows=10)


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[LocalPostgres, LocalPostgres]]:
    servers = start_databases(500)
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def lambda_env(
    databases: tuple[LocalPostgres, LocalPostgres],
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prod_config: PaymigConfig,
) -> MigrationEnv:
    env = build_env(
        moto_server, monkeypatch, tmp_path, prod_config, validation=None, cdc_latency=None
    )
    source, target = databases
    session = boto3.Session()
    declare(session, monkeypatch, env.config.stack_name, "SOURCE", source)
    declare(session, monkeypatch, env.config.stack_name, "AURORA", target)
    set_environment(monkeypatch, env.config, VALIDATION)
    return env


def full_pass() -> str:
    """Run the validation job's actions to the end; return the pass id."""
    planned = job_handler({"action": "plan", "state": {}}, LambdaContext(900))
    for number in planned["slices"]:
        state = {"action": "slice", "pass_id": planned["pass_id"], "slice": number}
        while not job_handler(state, LambdaContext(900))["done"]:
            pass
    job_handler({"action": "verdict", "pass_id": planned["pass_id"]}, LambdaContext(900))
    return str(planned["pass_id"])


def test_pre_check_passes_on_a_ready_source(lambda_env: MigrationEnv) -> None:
    result = handler({"check": "pre"}, None)
    assert result["check"] == "pre" and result["passed"] is True
    assert {"wal_level", "primary_keys", "tls", "select_privilege"} <= set(result["checks"])


def test_pre_check_fails_the_apply_naming_each_problem(
    lambda_env: MigrationEnv, databases: tuple[LocalPostgres, LocalPostgres]
) -> None:
    source, _ = databases
    execute(source, "CREATE TABLE public.no_key (v int)")
    try:
        with pytest.raises(CheckFailedError, match=r"pre-migration check failed: .*no_key"):
            handler({"check": "pre"}, None)
    finally:
        execute(source, "DROP TABLE public.no_key")


def test_post_check_without_a_full_pass_fails_and_records_why(lambda_env: MigrationEnv) -> None:
    lambda_env.put_cdc_latency(4.0)
    with pytest.raises(
        CheckFailedError,
        match=r"^post-migration check failed: no full validation pass recorded: run the "
        r"validation job$",
    ):
        handler({"check": "post"}, None)
    latest = lambda_env.audit().latest_validation()
    assert latest is not None
    assert (latest["status"], latest["source"]) == ("error", "deploy-check")


def test_post_check_passes_after_a_consistent_full_pass(lambda_env: MigrationEnv) -> None:
    lambda_env.put_cdc_latency(4.0)
    pass_id = full_pass()
    result = handler({"check": "post"}, None)
    assert result["passed"] is True and result["full_pass"].startswith(f"full pass {pass_id} ")
    modes = {t["table"]: t["mode"] for t in result["tables"]}
    assert modes == {
        "public.accounts": "full",
        "public.payments": "changed-since",
        "public.paymig_markers": "full",  # the cutover's fence markers replicate too
        "public.refunds": "full",
    }
    latest = lambda_env.audit().latest_validation()
    assert latest is not None
    assert (latest["status"], latest["source"], latest["pass_id"]) == (
        "consistent",
        "deploy-check",
        pass_id,
    )


def test_post_check_finds_a_change_made_since_the_pass(
    lambda_env: MigrationEnv, databases: tuple[LocalPostgres, LocalPostgres]
) -> None:
    source, _ = databases
    lambda_env.put_cdc_latency(4.0)
    full_pass()
    later = datetime.now(UTC) + timedelta(minutes=1)
    execute(
        source,
        "UPDATE payments SET status = 'refunded', updated_at = %s WHERE id = %s",
        [later, payment_id(7)],
    )
    try:
        with pytest.raises(
            CheckFailedError, match=r"public\.payments: 0 missing, 0 extra, 1 different"
        ):
            handler({"check": "post"}, None)
    finally:
        execute(
            source,
            "UPDATE payments SET status = 'succeeded', updated_at = created_at WHERE id = %s",
            [payment_id(7)],
        )
    latest = lambda_env.audit().latest_validation()
    assert latest is not None and latest["status"] == "inconsistent"
    assert "public.payments: 0 missing, 0 extra, 1 different" in latest["summary"]


def test_post_check_fails_when_cdc_lags(lambda_env: MigrationEnv) -> None:
    lambda_env.put_cdc_latency(95.0)
    full_pass()
    with pytest.raises(CheckFailedError, match=r"CDC latency 95s above 30s"):
        handler({"check": "post"}, None)


NEW_ON_AURORA = (
    "INSERT INTO payments (id, account_id, merchant_id, idempotency_key, amount, currency, "
    "status, request_fingerprint, created_at, updated_at) VALUES "
    "('20000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', 'm1', "
    "'after-cutover', 9.99, 'USD', 'succeeded', repeat('b', 64), %s, %s)"
)


def test_post_check_after_cutover_reads_aurora_as_the_writer(
    lambda_env: MigrationEnv, databases: tuple[LocalPostgres, LocalPostgres]
) -> None:
    """Pins gap 1: after cutover the forward task is stopped (no datapoint) and Aurora
    takes the writes. The check reads the reverse task's latency, compares Aurora as the
    primary, and a payment on Aurora that has not reached on-prem is *missing* there."""
    _, target = databases
    lambda_env.move_stage("cut-over")
    lambda_env.dms_task_resource_id()  # the forward task exists, stopped: no datapoint
    lambda_env.put_cdc_latency(4.0, reverse=True)
    full_pass()
    result = handler({"check": "post"}, None)
    assert (result["passed"], result["writer"]) == (True, "aurora")
    latest = lambda_env.audit().latest_validation()
    assert latest is not None and latest["writer"] == "aurora"

    later = datetime.now(UTC) + timedelta(minutes=1)
    execute(target, NEW_ON_AURORA, [later, later])
    try:
        with pytest.raises(
            CheckFailedError, match=r"public\.payments: 1 missing, 0 extra, 0 different"
        ):
            handler({"check": "post"}, None)
    finally:
        execute(target, "DELETE FROM payments WHERE idempotency_key = 'after-cutover'")


def test_post_check_after_cutover_fails_when_neither_task_reports(
    lambda_env: MigrationEnv,
) -> None:
    lambda_env.move_stage("cut-over")
    lambda_env.dms_task_resource_id()
    lambda_env.dms_task_resource_id(reverse=True)
    full_pass()
    with pytest.raises(
        CheckFailedError, match=r"CDC latency: no datapoint from the forward or the reverse task"
    ):
        handler({"check": "post"}, None)


def test_post_check_refuses_while_the_writes_are_moving(lambda_env: MigrationEnv) -> None:
    lambda_env.put_cdc_latency(4.0)
    lambda_env.move_stage("replicating", "cutover")
    with pytest.raises(
        CheckFailedError,
        match=r"^post-migration check failed: stage: a cutover is under way \(since ",
    ):
        handler({"check": "post"}, None)
    assert lambda_env.audit().latest_validation() is None  # nothing compared or recorded


def test_bad_event_and_environment_are_clear_errors(
    lambda_env: MigrationEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(PaymigError, match=r"event.check must be 'pre' or 'post', got 'both'"):
        handler({"check": "both"}, None)
    monkeypatch.setenv("PAYMIG_CDC_LOOKBACK_SECONDS", "soon")
    with pytest.raises(ConfigError, match=r"^PAYMIG_CDC_LOOKBACK_SECONDS: invalid literal"):
        LambdaSettings.from_env(os.environ)
    monkeypatch.delenv("PAYMIG_LOB_MODE")
    with pytest.raises(ConfigError, match="PAYMIG_LOB_MODE: required environment variable"):
        LambdaSettings.from_env(os.environ)


def test_a_login_secret_without_a_password_is_named(lambda_env: MigrationEnv) -> None:
    target = json.loads(os.environ["PAYMIG_DB_SOURCE"])
    boto3.client("secretsmanager").put_secret_value(
        SecretId=target["secret_arn"], SecretString=json.dumps({"username": "postgres"})
    )
    with pytest.raises(ConfigError, match=r"secret field 'password' missing$"):
        handler({"check": "pre"}, None)


def invocations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        json.loads(r["input"])["check"]: r
        for r in doc["resource"].get("aws_lambda_invocation", {}).values()
    }


# Which checks the apply invokes in which stage, and what each waits for, is pinned by
# tests/test_deployment_checks.py; the function's environment, here.


def test_the_checks_function_has_the_validation_environment(prod_tf: dict[str, Any]) -> None:
    fn = next(
        f
        for f in prod_tf["resource"]["aws_lambda_function"].values()
        if f["function_name"] == "paymig-prod-validation"
    )
    variables = fn["environment"]["variables"]
    assert json.loads(variables["PAYMIG_TABLE_RULES"]) == [
        {"schema_name": "public", "table_name": "%", "action": "include"}
    ]
    assert json.loads(variables["PAYMIG_VALIDATION"])["full_pass_max_age_hours"] == 168
    for name in ("SOURCE", "AURORA"):
        declared = json.loads(variables[f"PAYMIG_DB_{name}"])
        assert declared["sslmode"] == "verify-full"
        assert declared["secret_arn"].startswith("${aws_secretsmanager_secret.")
    assert "PAYMIG_SOURCE_CA_FILE" not in variables  # CAs come from SSM, not the package


def test_package_holds_the_validator_and_lambda_compatible_wheels(prod_synth: Any) -> None:
    import zipfile

    fn = next(
        f
        for f in prod_synth.document["resource"]["aws_lambda_function"].values()
        if f["function_name"] == "paymig-prod-validation"
    )
    with zipfile.ZipFile(prod_synth.stack_dir / fn["filename"]) as archive:
        names = set(archive.namelist())
        wheel = archive.read(
            next(n for n in names if n.startswith("psycopg_binary-") and n.endswith("/WHEEL"))
        ).decode()
    assert {
        "paymig/lambdas/validation.py",
        "paymig/runtime/validator/engine.py",
        "paymig/runtime/preflight.py",
        "paymig/payments_schema.py",
    } <= names
    assert not any(n.startswith("ca/") for n in names)  # CA bundles are read from SSM
    assert "cp311-cp311-manylinux2014_x86_64" in wheel
    assert not any(n.startswith("paymig/infra/") for n in names)


def test_incompatible_wheels_are_refused() -> None:
    from paymig.errors import ToolMissingError
    from paymig.infra.lambda_package import check_lambda_compatible

    check_lambda_compatible("ok", "Tag: py3-none-any\n")
    with pytest.raises(
        ToolMissingError,
        match=r"x: installed wheel \(cp312-cp312-macosx_11_0_arm64\) does not run on Lambda",
    ):
        check_lambda_compatible("x", "Wheel-Version: 1.0\nTag: cp312-cp312-macosx_11_0_arm64\n")


def test_cli_validate_record_feeds_the_shift_gate(
    lambda_env: MigrationEnv,
    databases: tuple[LocalPostgres, LocalPostgres],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from paymig.cli import main

    source, target = databases
    args = ["validate", "--source-dsn", source.dsn("payments"), "--target-dsn", target.dsn("payments"),
            "--config", str(lambda_env.config_path), "--format", "json", "--record"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["consistent"] is True
    assert [t["table"] for t in report["tables"]] == [
        "public.accounts",
        "public.payments",
        "public.paymig_markers",  # the cutover's fence markers replicate too
        "public.refunds",
    ]
    latest = lambda_env.audit().latest_validation()
    assert latest is not None
    assert (latest["status"], latest["source"]) == ("consistent", "cli")


def test_every_call_the_post_check_makes_after_cutover_is_granted_by_its_synthesized_role(
    lambda_env: MigrationEnv,
    databases: tuple[LocalPostgres, LocalPostgres],
    monkeypatch: pytest.MonkeyPatch,
    prod_tf: dict[str, Any],
) -> None:
    """moto checks no IAM, so the calls the check's code makes (recorded here) are compared
    with the role policy the stack gives the function: each action is granted, and the
    audit-table actions (the stage read among them) on the audit table's own ARN."""
    lambda_env.move_stage("cut-over")
    lambda_env.dms_task_resource_id()
    lambda_env.put_cdc_latency(4.0, reverse=True)
    full_pass()
    calls = IamCalls(command="post-check").install(monkeypatch)
    assert handler({"check": "post"}, None)["passed"]
    called = calls.actions("post-check")
    assert "dynamodb:GetItem" in called  # the stage: which database takes the writes

    role_policy = next(
        body
        for body in resources(prod_tf, "aws_iam_role_policy").values()
        if path_of(body).endswith("/checks/validation/role-policy")
    )
    statements = policy(role_policy["policy"])["Statement"]
    table_id, _ = by_path(prod_tf, "aws_dynamodb_table", "/automation/audit-table")
    table_arn = ref("aws_dynamodb_table", table_id, "arn")

    def granted(action: str) -> list[Any]:
        return [
            s["Resource"] for s in statements
            if s["Effect"] == "Allow" and action in s["Action"]
        ]  # fmt: skip

    for action in sorted(called):
        assert granted(action), f"{action} is not granted to the validation function"
        if action.startswith("dynamodb:"):
            assert granted(action) == [[table_arn]], action
