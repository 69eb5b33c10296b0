"""The validation Lambda that `terraform apply` invokes: real PostgreSQL, real moto.

The handler runs in-process (moto cannot run a Lambda) against two PostgreSQL servers
started here and a moto server holding the secrets, the audit table and the CDC metric.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from paymig.config import PaymigConfig
from paymig.errors import PaymigError
from paymig.lambdas.validation import CheckFailedError, LambdaSettings, dsn_from_secret, handler
from paymig.local.emulator import MotoServer
from paymig.local.postgres import LocalPostgres
from paymig.payments_schema import apply_schema
from tests.controller_env import MigrationEnv, build_env

pytestmark = pytest.mark.slow

ROWS = """
INSERT INTO accounts (id, display_name, created_at)
SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'acct ' || i,
       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute'
FROM generate_series(1, 20) AS i;
INSERT INTO payments (id, account_id, merchant_id, idempotency_key, amount, currency, status,
                      request_fingerprint, created_at, updated_at)
SELECT ('10000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid,
       ('00000000-0000-0000-0000-' || lpad((1 + i % 20)::text, 12, '0'))::uuid,
       'm' || (i % 3), 'key-' || i, (i * 1.25)::numeric(18, 2), 'USD', 'succeeded',
       repeat('a', 64), timestamptz '2026-02-01 00:00:00+00' + i * interval '1 second',
       timestamptz '2026-02-01 00:00:00+00' + i * interval '1 second'
FROM generate_series(1, 500) AS i;
"""


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[LocalPostgres, LocalPostgres]]:
    with LocalPostgres("val-src", ssl=True) as source, LocalPostgres("val-tgt", ssl=True) as target:
        for server in (source, target):
            with psycopg.connect(server.dsn(), autocommit=True) as conn:
                conn.execute("CREATE DATABASE payments")
            with psycopg.connect(server.dsn("payments"), autocommit=True) as conn:
                apply_schema(conn)
                conn.execute(ROWS)
        yield source, target


@pytest.fixture
def lambda_env(
    databases: tuple[LocalPostgres, LocalPostgres],
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prod_config: PaymigConfig,
) -> MigrationEnv:
    env = build_env(moto_server, monkeypatch, tmp_path, prod_config, validation=None)
    source, target = databases
    secrets = boto3.client("secretsmanager")
    arns = {}
    for name, server in (("source", source), ("target", target)):
        value = {
            "username": "postgres",
            "password": "trust-auth",
            "host": "127.0.0.1",
            "port": server.port,
        }
        arns[name] = secrets.create_secret(
            Name=f"{name}-{tmp_path.name}", SecretString=json.dumps(value)
        )["ARN"]
    assert source.directory is not None
    ca = Path(str(source.directory)) / "data" / "server.crt"
    variables = {
        "PAYMIG_STACK_NAME": env.config.stack_name,
        "PAYMIG_ENVIRONMENT": env.config.environment,
        "PAYMIG_SOURCE_SECRET_ARN": arns["source"],
        "PAYMIG_TARGET_SECRET_ARN": arns["target"],
        "PAYMIG_SOURCE_DATABASE": "payments",
        "PAYMIG_TARGET_DATABASE": "payments",
        "PAYMIG_SOURCE_CA_FILE": str(ca),
        "PAYMIG_TABLE_RULES": json.dumps(
            [{"schema_name": "public", "table_name": "%", "action": "include"}]
        ),
        "PAYMIG_LOB_MODE": "limited",
        "PAYMIG_GRACE_SECONDS": "0",
        "PAYMIG_CDC_THRESHOLD_SECONDS": "30",
        "PAYMIG_CDC_LOOKBACK_SECONDS": "300",
    }
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    return env


def test_pre_check_passes_on_a_ready_source(lambda_env: MigrationEnv) -> None:
    result = handler({"check": "pre"}, None)
    assert result["check"] == "pre" and result["passed"] is True
    assert {"wal_level", "primary_keys", "tls", "select_privilege"} <= set(result["checks"])


def test_pre_check_fails_the_apply_naming_each_problem(
    lambda_env: MigrationEnv, databases: tuple[LocalPostgres, LocalPostgres]
) -> None:
    source, _ = databases
    with psycopg.connect(source.dsn("payments"), autocommit=True) as conn:
        conn.execute("CREATE TABLE public.no_key (v int)")
    try:
        with pytest.raises(CheckFailedError, match=r"pre-migration check failed: .*no_key"):
            handler({"check": "pre"}, None)
    finally:
        with psycopg.connect(source.dsn("payments"), autocommit=True) as conn:
            conn.execute("DROP TABLE public.no_key")


def test_post_check_records_consistent_result_and_checks_cdc_latency(
    lambda_env: MigrationEnv,
) -> None:
    lambda_env.put_cdc_latency(4.0)
    result = handler({"check": "post"}, None)
    assert result["consistent"] is True
    assert {t["table"] for t in result["tables"]} == {
        "public.accounts",
        "public.payments",
        "public.refunds",
    }
    latest = lambda_env.audit().latest_validation()
    assert latest is not None and latest["status"] == "consistent"
    assert latest["source"] == "lambda"


def test_post_check_fails_and_records_differences(
    lambda_env: MigrationEnv, databases: tuple[LocalPostgres, LocalPostgres]
) -> None:
    _, target = databases
    lambda_env.put_cdc_latency(4.0)
    with psycopg.connect(target.dsn("payments"), autocommit=True) as conn:
        conn.execute("UPDATE payments SET amount = amount + 0.01 WHERE idempotency_key = 'key-7'")
    try:
        with pytest.raises(CheckFailedError, match=r"tables differ: public\.payments"):
            handler({"check": "post"}, None)
        latest = lambda_env.audit().latest_validation()
        assert latest is not None and latest["status"] == "inconsistent"
        assert "public.payments" in latest["summary"]
    finally:
        with psycopg.connect(target.dsn("payments"), autocommit=True) as conn:
            conn.execute(
                "UPDATE payments SET amount = amount - 0.01 WHERE idempotency_key = 'key-7'"
            )


def test_post_check_fails_when_cdc_lags(lambda_env: MigrationEnv) -> None:
    lambda_env.put_cdc_latency(95.0)
    with pytest.raises(CheckFailedError, match=r"CDC latency 95s above 30s"):
        handler({"check": "post"}, None)


def test_bad_event_and_environment_are_clear_errors(
    lambda_env: MigrationEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(PaymigError, match=r"event.check must be 'pre' or 'post', got 'both'"):
        handler({"check": "both"}, None)
    monkeypatch.delenv("PAYMIG_SOURCE_SECRET_ARN")
    with pytest.raises(
        PaymigError, match="PAYMIG_SOURCE_SECRET_ARN: required environment variable"
    ):
        LambdaSettings.from_env(__import__("os").environ)
    with pytest.raises(PaymigError, match="database secret lacks password, host"):
        dsn_from_secret({"username": "u", "port": 5432}, "db", {})


def invocations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        json.loads(r["input"])["check"]: r
        for r in doc["resource"].get("aws_lambda_invocation", {}).values()
    }


def test_apply_invokes_the_pre_check(prod_tf: dict[str, Any]) -> None:
    found = invocations(prod_tf)
    assert set(found) == {"pre"}  # the post check waits until config enables it
    fn = next(
        k
        for k, f in prod_tf["resource"]["aws_lambda_function"].items()
        if f["function_name"] == "paymig-prod-validation"
    )
    assert found["pre"]["function_name"] == f"${{aws_lambda_function.{fn}.function_name}}"
    assert set(found["pre"]["triggers"]) == {"package", "settings"}
    variables = prod_tf["resource"]["aws_lambda_function"][fn]["environment"]["variables"]
    assert variables["PAYMIG_SOURCE_CA_FILE"] == "/var/task/ca/onprem-ca.pem"
    assert json.loads(variables["PAYMIG_TABLE_RULES"]) == [
        {"schema_name": "public", "table_name": "%", "action": "include"}
    ]


def test_post_check_is_wired_when_enabled(prod_config: PaymigConfig, tmp_path: Path) -> None:
    from paymig.infra.synth import synthesize

    enabled = prod_config.model_copy(
        update={
            "validation": prod_config.validation.model_copy(update={"post_migration_check": True})
        }
    )
    doc = synthesize(enabled, tmp_path / "out").document
    found = invocations(doc)
    assert set(found) == {"pre", "post"}
    pre_id = next(
        k
        for k, r in doc["resource"]["aws_lambda_invocation"].items()
        if json.loads(r["input"])["check"] == "pre"
    )
    assert found["post"]["depends_on"] == [f"aws_lambda_invocation.{pre_id}"]


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
        "ca/onprem-ca.pem",
    } <= names
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
        "public.refunds",
    ]
    latest = lambda_env.audit().latest_validation()
    assert latest is not None
    assert (latest["status"], latest["source"]) == ("consistent", "cli")
