"""The payment API handler: its pure core directly, its shell against real servers.

The database is a real PostgreSQL 15 started per test with TLS on (its self-signed
certificate, CN=127.0.0.1, serves as the CA for ``verify-full``), and ``pg_hba.conf``
makes the API's role log in with scram over TLS only, so the password from the secret
and the TLS path are both exercised. Secrets Manager is the real moto server.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import psycopg
import pytest

from paymig import naming
from paymig.lambdas import payment_api as api
from paymig.local.emulator import MotoServer
from paymig.local.postgres import LocalPostgres
from paymig.payments_schema import PAYMENT_STATUSES, TABLES, apply_schema

ARN = "arn:aws:lambda:us-east-2:123456789012:function:paymig-test-payment-api:blue"
CONTEXT = SimpleNamespace(aws_request_id="req-1", invoked_function_arn=ARN, function_version="7")
MERCHANT = "merchant-1"
API_ROLE = "payment_api"


# ---------------------------------------------------------------- helpers


def post_event(body: Any, key: str | None = "key-1", *, raw: str | None = None) -> dict[str, Any]:
    headers = {"content-type": "application/json", "host": "api.example.com"}
    if key is not None:
        headers["idempotency-key"] = key
    return {
        "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:tg"}},
        "httpMethod": "POST",
        "path": "/payments",
        "headers": headers,
        "body": raw if raw is not None else json.dumps(body),
        "isBase64Encoded": False,
    }


def get_event(path: str = "/health") -> dict[str, Any]:
    return {"httpMethod": "GET", "path": path, "headers": {}, "body": "", "isBase64Encoded": False}


def payment(account: uuid.UUID, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "merchant_id": MERCHANT,
        "account_id": str(account),
        "amount": "12.50",
        "currency": "USD",
    }
    body.update(changes)
    return body


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def emf_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def wait_until(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Poll until ``condition`` holds; the limit only stops a hung test."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


@dataclass
class ApiDatabase:
    server: LocalPostgres
    ca_file: Path
    account_id: uuid.UUID
    secret_arn: str
    password: str

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.server.dsn(dbname="payments"), autocommit=True)

    def rows(self) -> list[tuple[Any, ...]]:
        with self.admin() as conn:
            return conn.execute(
                "SELECT merchant_id, idempotency_key, amount, currency, status"
                " FROM payments ORDER BY created_at, id"
            ).fetchall()


def _restrict_role_to_tls_scram(server: LocalPostgres) -> None:
    """Make the API role log in only over TLS with its password (first hba lines win)."""
    assert server.directory is not None
    hba = server.directory / "data" / "pg_hba.conf"
    rules = (
        f"hostssl payments {API_ROLE} 127.0.0.1/32 scram-sha-256\n"
        f"host    all      {API_ROLE} 0.0.0.0/0    reject\n"
    )
    hba.write_text(rules + hba.read_text())
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")


@pytest.fixture
def api_db(
    postgres_factory: Callable[..., LocalPostgres],
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[ApiDatabase]:
    """A TLS PostgreSQL with the payments model, its secret in moto, the Lambda's env."""
    server = postgres_factory("payapi", ssl=True)
    assert server.directory is not None
    ca_file = tmp_path / "ca.pem"
    shutil.copy(server.directory / "data" / "server.crt", ca_file)
    password = secrets.token_urlsafe(24)
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE payments")
        conn.execute(f"CREATE ROLE {API_ROLE} LOGIN PASSWORD '{password}'")
    with psycopg.connect(server.dsn(dbname="payments"), autocommit=True) as conn:
        apply_schema(conn)
        conn.execute(f"GRANT SELECT, INSERT ON payments TO {API_ROLE}")
        row = conn.execute(
            "INSERT INTO accounts (display_name) VALUES ('Test account') RETURNING id"
        ).fetchone()
        assert row is not None
    _restrict_role_to_tls_scram(server)

    for name, value in moto_server.client_environment().items():
        monkeypatch.setenv(name, value)
    client = boto3.client("secretsmanager")
    secret_arn = client.create_secret(
        Name=f"paymig-test/payment-api/{uuid.uuid4()}",
        SecretString=json.dumps({"username": API_ROLE, "password": password}),
    )["ARN"]
    monkeypatch.setenv("DB_SECRET_ARN", secret_arn)
    monkeypatch.setenv("DB_HOST", "127.0.0.1")
    monkeypatch.setenv("DB_PORT", str(server.port))
    monkeypatch.setenv("DB_NAME", "payments")
    monkeypatch.setenv("DB_CA_BUNDLE", str(ca_file))
    monkeypatch.setenv("PAYMIG_ENVIRONMENT", "test")
    api.reset_runtime()
    yield ApiDatabase(server, ca_file, row[0], secret_arn, password)
    api.reset_runtime()


def backend_pid() -> int:
    conn = api.cached_connection()
    assert conn is not None
    return conn.info.backend_pid


# ================================================================ pure core


def test_metric_and_environment_names_match_the_shared_naming_module() -> None:
    pairs = [
        (api.PAYMENT_METRICS_NAMESPACE, naming.PAYMENT_METRICS_NAMESPACE),
        (api.METRIC_PAYMENTS_PROCESSED, naming.METRIC_PAYMENTS_PROCESSED),
        (api.METRIC_PAYMENTS_SUCCEEDED, naming.METRIC_PAYMENTS_SUCCEEDED),
        (api.METRIC_PAYMENTS_FAILED, naming.METRIC_PAYMENTS_FAILED),
        (api.METRIC_PAYMENT_VALUE, naming.METRIC_PAYMENT_VALUE),
        (api.DIMENSION_ENVIRONMENT, naming.DIMENSION_ENVIRONMENT),
        (api.DIMENSION_ALIAS, naming.DIMENSION_ALIAS),
        (api.DIMENSION_CURRENCY, naming.DIMENSION_CURRENCY),
        (api.PAYMENT_COUNT_DIMENSION_SETS, naming.PAYMENT_COUNT_DIMENSION_SETS),
        (api.PAYMENT_VALUE_DIMENSION_SETS, naming.PAYMENT_VALUE_DIMENSION_SETS),
        (api.ENV_SECRET_ARN, naming.PAYMENT_API_ENV_SECRET_ARN),
        (api.ENV_DB_HOST, naming.PAYMENT_API_ENV_DB_HOST),
        (api.ENV_DB_PORT, naming.PAYMENT_API_ENV_DB_PORT),
        (api.ENV_DB_NAME, naming.PAYMENT_API_ENV_DB_NAME),
        (api.ENV_CA_BUNDLE, naming.PAYMENT_API_ENV_CA_BUNDLE),
        (api.ENV_ENVIRONMENT, naming.PAYMENT_API_ENV_ENVIRONMENT),
    ]
    assert [a for a, _ in pairs] == [b for _, b in pairs]
    handler_path = f"{api.__name__}.{api.handler.__name__}"
    assert handler_path == naming.PAYMENT_API_HANDLER


def test_parse_event_reads_single_and_multi_value_headers_and_base64_bodies() -> None:
    single = api.parse_event(
        {"httpMethod": "post", "path": "/payments", "headers": {"Idempotency-Key": "k"},
         "body": '{"a":1}', "isBase64Encoded": False}
    )  # fmt: skip
    seen = (single.method, single.path, dict(single.headers), single.body(), single.multi_value)
    assert seen == ("POST", "/payments", {"idempotency-key": "k"}, b'{"a":1}', False)
    multi = api.parse_event(
        {"httpMethod": "POST", "path": "/payments",
         "multiValueHeaders": {"Idempotency-Key": ["old", "new"], "x-empty": []},
         "body": base64.b64encode(b'{"a":2}').decode(), "isBase64Encoded": True}
    )  # fmt: skip
    assert (dict(multi.headers), multi.body(), multi.multi_value) == (
        {"idempotency-key": "new"}, b'{"a":2}', True
    )  # fmt: skip
    broken = api.parse_event({"httpMethod": "POST", "path": "/", "body": "***",
                              "isBase64Encoded": True})  # fmt: skip
    with pytest.raises(api.RequestError, match=r"^body: invalid base64 encoding$"):
        broken.body()


def _parse(body: Any, key: str | None = "key-1", raw: str | None = None) -> api.PaymentRequest:
    return api.parse_payment(api.parse_event(post_event(body, key, raw=raw)))


ACCOUNT = uuid.UUID("6f1c2a4e-9a53-4d0e-8f25-3c1e6b9d7a10")


@pytest.mark.parametrize(
    ("body", "key", "raw", "message"),
    [
        (payment(ACCOUNT), None, None, "Idempotency-Key: header is required"),
        (payment(ACCOUNT), "", None, "Idempotency-Key: header is required"),
        (payment(ACCOUNT), "has space", None, "Idempotency-Key: 1 to 255 visible ASCII characters"),
        (payment(ACCOUNT), "k" * 256, None, "Idempotency-Key: 1 to 255 visible ASCII characters"),
        (None, "k", "{not json", "body: not valid JSON"),
        (None, "k", "", "body: not valid JSON"),
        ([1, 2], "k", None, "body: must be a JSON object"),
        (payment(ACCOUNT, note="x"), "k", None, "note: unknown field"),
        ({"account_id": str(ACCOUNT), "amount": "1.00", "currency": "USD"}, "k", None,
         "merchant_id: required"),
        (payment(ACCOUNT, merchant_id=7), "k", None, "merchant_id: must be a string"),
        (payment(ACCOUNT, merchant_id="-bad"), "k", None,
         "merchant_id: 1 to 64 characters of A-Z a-z 0-9 . _ : - (starting alphanumeric)"),
        (payment(ACCOUNT, account_id="acct-1"), "k", None, "account_id: must be a UUID"),
        (payment(ACCOUNT, amount=12.5), "k", None,
         'amount: must be a string decimal such as "12.50", not a JSON number'),
        (payment(ACCOUNT, amount="12.505"), "k", None,
         'amount: must be a decimal with up to 16 digits before and 2 after the point, '
         'e.g. "12.50"'),
        (payment(ACCOUNT, amount="-1.00"), "k", None,
         'amount: must be a decimal with up to 16 digits before and 2 after the point, '
         'e.g. "12.50"'),
        (payment(ACCOUNT, amount="1e3"), "k", None,
         'amount: must be a decimal with up to 16 digits before and 2 after the point, '
         'e.g. "12.50"'),
        (payment(ACCOUNT, amount="12345678901234567.00"), "k", None,
         'amount: must be a decimal with up to 16 digits before and 2 after the point, '
         'e.g. "12.50"'),
        (payment(ACCOUNT, amount="0.00"), "k", None, "amount: must be greater than 0"),
        (payment(ACCOUNT, currency="usd"), "k", None,
         "currency: must be a 3-letter ISO 4217 code in upper case, e.g. USD"),
        (payment(ACCOUNT, currency="US"), "k", None,
         "currency: must be a 3-letter ISO 4217 code in upper case, e.g. USD"),
    ],
)  # fmt: skip
def test_parse_payment_refuses_bad_input_with_one_clear_line(
    body: Any, key: str | None, raw: str | None, message: str
) -> None:
    with pytest.raises(api.RequestError) as caught:
        _parse(body, key, raw)
    assert (caught.value.status, str(caught.value)) == (HTTPStatus.BAD_REQUEST, message)


def test_parse_payment_returns_the_canonical_request() -> None:
    parsed = _parse(payment(ACCOUNT, amount="7.5", account_id=str(ACCOUNT).upper()), "key-9")
    assert parsed == api.PaymentRequest(MERCHANT, "key-9", ACCOUNT, Decimal("7.50"), "USD")
    assert str(parsed.amount) == "7.50"


def test_fingerprint_is_the_sha256_of_the_canonical_request() -> None:
    base = _parse(payment(ACCOUNT, amount="12.5"), "key-1")
    assert base.fingerprint() == _parse(payment(ACCOUNT, amount="12.50"), "other-key").fingerprint()
    assert base.fingerprint() == (
        __import__("hashlib").sha256(
            json.dumps(
                {"account_id": str(ACCOUNT), "amount": "12.50", "currency": "USD",
                 "merchant_id": MERCHANT, "method": "POST", "path": "/payments"},
                sort_keys=True, separators=(",", ":"),
            ).encode()
        ).hexdigest()
    )  # fmt: skip
    variants = [
        payment(ACCOUNT, amount="12.51"),
        payment(ACCOUNT, currency="EUR"),
        payment(ACCOUNT, merchant_id="merchant-2"),
        payment(uuid.UUID(int=1)),
    ]
    prints = {_parse(body).fingerprint() for body in variants} | {base.fingerprint()}
    assert len(prints) == len(variants) + 1


def _stored(fingerprint: str) -> api.StoredPayment:
    return api.StoredPayment(
        uuid.UUID(int=5), ACCOUNT, MERCHANT, Decimal("12.50"), "USD", "succeeded",
        datetime(2026, 11, 29, 21, 0, tzinfo=UTC), fingerprint,
    )  # fmt: skip


def test_resolve_existing_replays_the_same_request_and_refuses_another() -> None:
    stored = _stored("a" * 64)
    replay = api.resolve_existing(stored, "a" * 64)
    assert (replay.status, replay.replayed, replay.body) == (HTTPStatus.OK, True, stored.body())
    conflict = api.resolve_existing(stored, "b" * 64)
    assert (conflict.status, conflict.body, conflict.succeeded) == (
        HTTPStatus.CONFLICT,
        {"error": "Idempotency-Key: already used by this merchant for a different request"},
        False,
    )
    assert "fingerprint" not in repr(stored)


def test_build_response_has_the_alb_shape_in_both_header_modes() -> None:
    single = api.build_response(HTTPStatus.CREATED, {"a": "b"}, headers={"X-Y": "z"})
    assert single == {
        "statusCode": 201,
        "statusDescription": "201 Created",
        "isBase64Encoded": False,
        "body": '{"a":"b"}',
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store", "X-Y": "z"},
    }
    multi = api.build_response(HTTPStatus.NOT_FOUND, {}, multi_value=True)
    assert multi["multiValueHeaders"] == {
        "Content-Type": ["application/json"],
        "Cache-Control": ["no-store"],
    }
    assert "headers" not in multi


@pytest.mark.parametrize(
    ("arn", "alias"),
    [
        (ARN, "blue"),
        ("arn:aws:lambda:us-east-2:123456789012:function:f:12", "12"),
        ("arn:aws:lambda:us-east-2:123456789012:function:f", "$LATEST"),
        ("", "$LATEST"),
    ],
)
def test_alias_of_reads_the_invoked_qualifier(arn: str, alias: str) -> None:
    assert api.alias_of(arn) == alias


COUNT_DIRECTIVE = {
    "Namespace": "Paymig/Payments",
    "Dimensions": [["Environment"], ["Environment", "Alias"]],
    "Metrics": [
        {"Name": "PaymentsProcessed", "Unit": "Count"},
        {"Name": "PaymentsSucceeded", "Unit": "Count"},
        {"Name": "PaymentsFailed", "Unit": "Count"},
    ],
}
VALUE_DIRECTIVE = {
    "Namespace": "Paymig/Payments",
    "Dimensions": [["Environment", "Currency"]],
    "Metrics": [{"Name": "PaymentValue", "Unit": "None"}],
}


def test_emf_document_of_a_created_payment_counts_it_and_its_value() -> None:
    stored = _stored("a" * 64)
    outcome = api.PaymentOutcome(HTTPStatus.CREATED, stored.body(), payment=stored)
    document = api.emf_document(
        outcome, environment="prod", alias="green", function_version="3",
        request_id="r-1", timestamp_ms=1_700_000_000_000,
    )  # fmt: skip
    assert document == {
        "_aws": {"Timestamp": 1_700_000_000_000,
                 "CloudWatchMetrics": [COUNT_DIRECTIVE, VALUE_DIRECTIVE]},
        "Environment": "prod", "Alias": "green", "Currency": "USD",
        "PaymentsProcessed": 1, "PaymentsSucceeded": 1, "PaymentsFailed": 0,
        "PaymentValue": 12.5,
        "StatusCode": 201, "Outcome": "created", "FunctionVersion": "3", "RequestId": "r-1",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("outcome", "succeeded", "label"),
    [
        (api.resolve_existing(_stored("a" * 64), "a" * 64), 1, "replayed"),
        (api.resolve_existing(_stored("a" * 64), "b" * 64), 0, "conflict"),
        (api.error_outcome(api.RequestError(HTTPStatus.BAD_REQUEST, "x")), 0, "rejected"),
        (api.PaymentOutcome(HTTPStatus.SERVICE_UNAVAILABLE, {}), 0, "unavailable"),
        (api.PaymentOutcome(HTTPStatus.INTERNAL_SERVER_ERROR, {}), 0, "error"),
    ],
)
def test_emf_document_without_a_new_payment_has_no_value(
    outcome: api.PaymentOutcome, succeeded: int, label: str
) -> None:
    document = api.emf_document(
        outcome, environment="prod", alias="blue", function_version="3",
        request_id="r-2", timestamp_ms=5,
    )  # fmt: skip
    assert document == {
        "_aws": {"Timestamp": 5, "CloudWatchMetrics": [COUNT_DIRECTIVE]},
        "Environment": "prod", "Alias": "blue",
        "PaymentsProcessed": 1, "PaymentsSucceeded": succeeded, "PaymentsFailed": 1 - succeeded,
        "StatusCode": int(outcome.status), "Outcome": label,
        "FunctionVersion": "3", "RequestId": "r-2",
    }  # fmt: skip


MASTER_SECRET = {"username": "app", "password": "pw"}
FULL_ENV = {"DB_HOST": "db.internal", "DB_PORT": "6432", "DB_NAME": "payments"}


def test_db_settings_from_a_master_secret_and_the_environment() -> None:
    settings = api.db_settings(FULL_ENV, MASTER_SECRET)
    assert settings == api.DbSettings(
        "db.internal", 6432, "payments", "app", "pw", api.DEFAULT_CA_BUNDLE
    )
    assert "pw" not in repr(settings)


def test_db_settings_from_a_rotation_secret_the_environment_wins() -> None:
    secret = {**MASTER_SECRET, "host": "writer.rds", "port": 5433, "dbname": "pay"}
    from_secret = api.db_settings({"DB_CA_BUNDLE": "/ca.pem"}, secret)
    assert (from_secret.host, from_secret.port, from_secret.dbname, from_secret.ca_bundle) == (
        "writer.rds", 5433, "pay", "/ca.pem"
    )  # fmt: skip
    overridden = api.db_settings(FULL_ENV, secret)
    assert (overridden.host, overridden.port) == ("db.internal", 6432)
    assert overridden.dbname == "payments"
    defaulted = api.db_settings({"DB_HOST": "h", "DB_NAME": "d"}, MASTER_SECRET)
    assert defaulted.port == 5432


@pytest.mark.parametrize(
    ("env", "secret", "message"),
    [
        (FULL_ENV, {"password": "pw"}, "secret: field 'username' missing or not a string"),
        (FULL_ENV, {"username": "app", "password": 5},
         "secret: field 'password' missing or not a string"),
        ({"DB_NAME": "d"}, MASTER_SECRET, "DB_HOST: not set and the secret carries no host"),
        ({"DB_HOST": "h"}, MASTER_SECRET, "DB_NAME: not set and the secret carries no dbname"),
        ({**FULL_ENV, "DB_PORT": "x"}, MASTER_SECRET, "DB_PORT: not a port number: 'x'"),
        ({**FULL_ENV, "DB_PORT": "70000"}, MASTER_SECRET, "DB_PORT: not a port number: '70000'"),
    ],
)  # fmt: skip
def test_db_settings_refuses_what_cannot_connect(
    env: dict[str, str], secret: dict[str, Any], message: str
) -> None:
    with pytest.raises(api.ConfigurationError) as caught:
        api.db_settings(env, secret)
    assert str(caught.value) == message


def test_payments_schema_is_idempotent_and_enforces_the_model(
    postgres_factory: Callable[..., LocalPostgres],
) -> None:
    server = postgres_factory("schema")
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        apply_schema(conn)
        apply_schema(conn)  # a second run changes nothing and does not fail
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " ORDER BY table_name"
        ).fetchall()
        assert [t for (t,) in tables] == sorted(TABLES)
        types = dict(
            conn.execute(
                "SELECT table_name || '.' || column_name, data_type"
                " FROM information_schema.columns WHERE table_schema = 'public'"
                " AND column_name IN ('id', 'amount', 'currency', 'created_at')"
            ).fetchall()
        )
        assert types == {
            "accounts.id": "uuid", "accounts.created_at": "timestamp with time zone",
            "payments.id": "uuid", "payments.amount": "numeric",
            "payments.currency": "character",
            "payments.created_at": "timestamp with time zone",
            "refunds.id": "uuid", "refunds.amount": "numeric",
            "refunds.created_at": "timestamp with time zone",
        }  # fmt: skip
        account = conn.execute(
            "INSERT INTO accounts (display_name) VALUES ('a') RETURNING id"
        ).fetchone()
        assert account is not None
        insert = (
            "INSERT INTO payments (account_id, merchant_id, idempotency_key, amount, currency,"
            " status, request_fingerprint) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        )
        good = [account[0], "m", "k", Decimal("1.00"), "USD", "succeeded", "a" * 64]
        conn.execute(insert, good)
        bad_cases: list[tuple[int, Any, type[psycopg.Error]]] = [
            (2, "k", psycopg.errors.UniqueViolation),  # same merchant and key
            (3, Decimal("0.00"), psycopg.errors.CheckViolation),
            (4, "usd", psycopg.errors.CheckViolation),
            (5, "settled", psycopg.errors.CheckViolation),
            (6, "xyz", psycopg.errors.CheckViolation),
            (0, uuid.UUID(int=3), psycopg.errors.ForeignKeyViolation),
        ]
        for index, value, error in bad_cases:
            values = [*good]
            values[index] = value
            if index != 2:
                values[2] = f"other-{index}"
            with pytest.raises(error):
                conn.execute(insert, values)
        conn.execute(insert, [account[0], "m2", "k", Decimal("1.00"), "USD", "pending", "b" * 64])
        count = conn.execute("SELECT count(*) FROM payments").fetchone()
        assert count == (2,)
        assert set(PAYMENT_STATUSES) == {"pending", "succeeded", "failed", "refunded"}


# ================================================================ shell: real servers


def test_health_is_healthy_over_verified_tls_with_the_secret_credentials(
    api_db: ApiDatabase,
) -> None:
    response = api.handler(get_event(), CONTEXT)
    assert (response["statusCode"], body_of(response)) == (200, {"status": "healthy"})
    conn = api.cached_connection()
    assert conn is not None
    assert conn.execute(
        "SELECT s.ssl, current_user, current_database() FROM pg_stat_ssl s"
        " WHERE s.pid = pg_backend_pid()"
    ).fetchone() == (True, API_ROLE, "payments")
    assert (conn.info.get_parameters()["sslmode"], conn.info.host) == ("verify-full", "127.0.0.1")


def test_connection_is_reused_across_invocations(api_db: ApiDatabase) -> None:
    api.handler(get_event(), CONTEXT)
    first, pid = api.cached_connection(), backend_pid()
    api.handler(get_event(), CONTEXT)
    api.handler(post_event(payment(api_db.account_id)), CONTEXT)
    assert api.cached_connection() is first
    assert backend_pid() == pid


def test_reconnects_once_after_the_backend_is_terminated(api_db: ApiDatabase) -> None:
    api.handler(get_event(), CONTEXT)
    old_pid = backend_pid()
    with api_db.admin() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
    response = api.handler(post_event(payment(api_db.account_id)), CONTEXT)
    assert response["statusCode"] == 201
    assert backend_pid() != old_pid
    assert len(api_db.rows()) == 1


def test_reconnects_after_the_server_restarts(api_db: ApiDatabase) -> None:
    api.handler(get_event(), CONTEXT)
    old_pid = backend_pid()
    api_db.server.restart()
    response = api.handler(get_event(), CONTEXT)
    assert (response["statusCode"], body_of(response)) == (200, {"status": "healthy"})
    assert backend_pid() != old_pid


def test_reconnect_reads_the_rotated_password(api_db: ApiDatabase) -> None:
    api.handler(get_event(), CONTEXT)
    new_password = secrets.token_urlsafe(24)
    with api_db.admin() as admin:
        admin.execute(f"ALTER ROLE {API_ROLE} PASSWORD '{new_password}'")
        boto3.client("secretsmanager").put_secret_value(
            SecretId=api_db.secret_arn,
            SecretString=json.dumps({"username": API_ROLE, "password": new_password}),
        )
        admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid(),))
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200


class _Calls:
    """Counts calls to a real function and passes them on (a spy, not a mock)."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function, self.count = function, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return self.function(*args, **kwargs)


def test_the_secret_is_cached_and_read_again_only_when_a_login_fails(
    api_db: ApiDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = _Calls(api.read_secret)
    monkeypatch.setattr(api, "read_secret", reads)
    api.handler(get_event(), CONTEXT)
    with api_db.admin() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid(),))
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200
    assert reads.count == 1  # a new connection, the cached credentials
    new_password = secrets.token_urlsafe(24)
    with api_db.admin() as admin:
        admin.execute(f"ALTER ROLE {API_ROLE} PASSWORD '{new_password}'")
        boto3.client("secretsmanager").put_secret_value(
            SecretId=api_db.secret_arn,
            SecretString=json.dumps({"username": API_ROLE, "password": new_password}),
        )
        admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid(),))
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200
    assert reads.count == 2  # the failed login read it again


def test_a_failed_login_is_not_retried_when_the_secret_is_unchanged(
    api_db: ApiDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=api_db.secret_arn,
        SecretString=json.dumps({"username": API_ROLE, "password": "wrong"}),
    )
    reads, connects = _Calls(api.read_secret), _Calls(api.connect)
    monkeypatch.setattr(api, "read_secret", reads)
    monkeypatch.setattr(api, "connect", connects)
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 503
    assert (reads.count, connects.count) == (2, 1)


def test_an_unusable_secret_is_not_cached(api_db: ApiDatabase) -> None:
    client = boto3.client("secretsmanager")
    client.put_secret_value(SecretId=api_db.secret_arn, SecretString="not json")
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 503
    client.put_secret_value(
        SecretId=api_db.secret_arn,
        SecretString=json.dumps({"username": API_ROLE, "password": api_db.password}),
    )
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200


def test_health_is_503_when_the_database_goes_down(api_db: ApiDatabase) -> None:
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200
    api_db.server.stop()
    response = api.handler(get_event(), CONTEXT)
    assert (response["statusCode"], response["statusDescription"], body_of(response)) == (
        503, "503 Service Unavailable", {"status": "unhealthy"}
    )  # fmt: skip


def test_payment_is_503_and_counted_failed_when_the_database_is_down(
    api_db: ApiDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    api_db.server.stop()
    response = api.handler(post_event(payment(api_db.account_id)), CONTEXT)
    assert (response["statusCode"], body_of(response)) == (
        503, {"error": "database unavailable; retry with the same Idempotency-Key"}
    )  # fmt: skip
    [document] = emf_lines(capsys.readouterr().out)
    assert (document["PaymentsFailed"], document["Outcome"]) == (1, "unavailable")


def test_health_is_503_when_the_certificate_is_not_trusted(
    api_db: ApiDatabase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other-ca.pem"
    subprocess.run(
        ["openssl", "req", "-new", "-x509", "-days", "1", "-nodes", "-subj", "/CN=127.0.0.1",
         "-newkey", "rsa:2048", "-keyout", str(tmp_path / "k.pem"), "-out", str(other_ca)],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("DB_CA_BUNDLE", str(other_ca))
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 503
    settings = api.db_settings(
        {"DB_HOST": "127.0.0.1", "DB_PORT": str(api_db.server.port), "DB_NAME": "payments",
         "DB_CA_BUNDLE": str(other_ca)},
        {"username": API_ROLE, "password": api_db.password},
    )  # fmt: skip
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        api.connect(settings)


def test_verify_full_checks_the_host_name(api_db: ApiDatabase) -> None:
    settings = api.db_settings(
        {"DB_HOST": "localhost", "DB_PORT": str(api_db.server.port), "DB_NAME": "payments",
         "DB_CA_BUNDLE": str(api_db.ca_file)},
        {"username": API_ROLE, "password": api_db.password},
    )  # fmt: skip
    with pytest.raises(psycopg.OperationalError, match='does not match host name "localhost"'):
        api.connect(settings)


def test_health_is_503_with_a_wrong_password_in_the_secret(api_db: ApiDatabase) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=api_db.secret_arn,
        SecretString=json.dumps({"username": API_ROLE, "password": "wrong"}),
    )
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 503


@pytest.mark.parametrize(
    ("secret_string", "unset"),
    [
        (None, "DB_SECRET_ARN"),
        ("not json", None),
        ('["a list"]', None),
        (json.dumps({"username": API_ROLE}), None),
    ],
)
def test_health_is_503_when_the_secret_is_unusable(
    api_db: ApiDatabase,
    monkeypatch: pytest.MonkeyPatch,
    secret_string: str | None,
    unset: str | None,
) -> None:
    if unset is not None:
        monkeypatch.delenv(unset)
    if secret_string is not None:
        boto3.client("secretsmanager").put_secret_value(
            SecretId=api_db.secret_arn, SecretString=secret_string
        )
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 503
    assert api.cached_connection() is None


def test_health_is_503_when_the_secret_does_not_exist(
    api_db: ApiDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_SECRET_ARN", api_db.secret_arn + "-missing")
    expected = r"^DB_SECRET_ARN: cannot read the secret: ResourceNotFoundException$"
    with pytest.raises(api.ConfigurationError, match=expected):
        api.read_secret(boto3.client("secretsmanager"), api_db.secret_arn + "-missing")
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 503


def test_secret_carrying_host_and_port_needs_no_db_env(
    api_db: ApiDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=api_db.secret_arn,
        SecretString=json.dumps({"engine": "postgres", "host": "127.0.0.1",
                                 "port": api_db.server.port, "dbname": "payments",
                                 "username": API_ROLE, "password": api_db.password}),
    )  # fmt: skip
    for name in ("DB_HOST", "DB_PORT", "DB_NAME"):
        monkeypatch.delenv(name)
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200


def test_create_payment_returns_201_and_records_one_row(
    api_db: ApiDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    response = api.handler(post_event(payment(api_db.account_id)), CONTEXT)
    assert (response["statusCode"], response["statusDescription"]) == (201, "201 Created")
    assert "Idempotent-Replayed" not in response["headers"]
    body = body_of(response)
    with api_db.admin() as admin:
        row = admin.execute("SELECT id, created_at, request_fingerprint FROM payments").fetchone()
    assert row is not None
    assert body == {
        "payment_id": str(row[0]), "merchant_id": MERCHANT, "account_id": str(api_db.account_id),
        "amount": "12.50", "currency": "USD", "status": "succeeded",
        "created_at": row[1].astimezone(UTC).isoformat(),
    }  # fmt: skip
    assert row[2] == _parse(payment(api_db.account_id)).fingerprint()
    assert api_db.rows() == [(MERCHANT, "key-1", Decimal("12.50"), "USD", "succeeded")]


def test_emf_line_of_an_invocation_is_exact(
    api_db: ApiDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    before = int(time.time() * 1000)
    api.handler(post_event(payment(api_db.account_id, amount="99.99", currency="EUR")), CONTEXT)
    after = int(time.time() * 1000)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1
    document = json.loads(lines[0])
    timestamp = document["_aws"].pop("Timestamp")
    assert before <= timestamp <= after
    assert document == {
        "_aws": {"CloudWatchMetrics": [COUNT_DIRECTIVE, VALUE_DIRECTIVE]},
        "Environment": "test", "Alias": "blue", "Currency": "EUR",
        "PaymentsProcessed": 1, "PaymentsSucceeded": 1, "PaymentsFailed": 0,
        "PaymentValue": 99.99, "StatusCode": 201, "Outcome": "created",
        "FunctionVersion": "7", "RequestId": "req-1",
    }  # fmt: skip
    api.handler(get_event(), CONTEXT)
    assert capsys.readouterr().out == ""  # health checks publish no business metrics


def test_retry_with_the_same_key_returns_the_same_payment(
    api_db: ApiDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    first = api.handler(post_event(payment(api_db.account_id)), CONTEXT)
    retry = api.handler(post_event(payment(api_db.account_id)), CONTEXT)
    same_meaning = api.handler(post_event(payment(api_db.account_id, amount="12.5")), CONTEXT)
    assert (first["statusCode"], retry["statusCode"], same_meaning["statusCode"]) == (201, 200, 200)
    assert retry["body"] == first["body"] == same_meaning["body"]
    assert retry["headers"]["Idempotent-Replayed"] == "true"
    assert len(api_db.rows()) == 1
    documents = emf_lines(capsys.readouterr().out)
    assert [(d["Outcome"], d["PaymentsSucceeded"], "PaymentValue" in d) for d in documents] == [
        ("created", 1, True), ("replayed", 1, False), ("replayed", 1, False)
    ]  # fmt: skip


def test_same_key_with_a_different_request_is_409(
    api_db: ApiDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    api.handler(post_event(payment(api_db.account_id)), CONTEXT)
    response = api.handler(post_event(payment(api_db.account_id, amount="13.00")), CONTEXT)
    assert (response["statusCode"], body_of(response)) == (
        409, {"error": "Idempotency-Key: already used by this merchant for a different request"}
    )  # fmt: skip
    assert api_db.rows() == [(MERCHANT, "key-1", Decimal("12.50"), "USD", "succeeded")]
    documents = emf_lines(capsys.readouterr().out)
    assert [(d["Outcome"], d["PaymentsFailed"]) for d in documents] == [
        ("created", 0), ("conflict", 1)
    ]  # fmt: skip


def test_same_key_for_another_merchant_is_another_payment(api_db: ApiDatabase) -> None:
    first = api.handler(post_event(payment(api_db.account_id)), CONTEXT)
    other = api.handler(post_event(payment(api_db.account_id, merchant_id="merchant-2")), CONTEXT)
    assert (first["statusCode"], other["statusCode"]) == (201, 201)
    assert body_of(first)["payment_id"] != body_of(other)["payment_id"]
    assert sorted(api_db.rows()) == [
        (MERCHANT, "key-1", Decimal("12.50"), "USD", "succeeded"),
        ("merchant-2", "key-1", Decimal("12.50"), "USD", "succeeded"),
    ]


def test_bad_requests_get_a_clear_status_and_record_nothing(
    api_db: ApiDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    account = api_db.account_id
    cases = [
        (post_event(payment(account), key=None), 400, "Idempotency-Key: header is required"),
        (post_event(payment(account, amount="ten")), 400,
         'amount: must be a decimal with up to 16 digits before and 2 after the point, '
         'e.g. "12.50"'),
        (post_event(payment(account, currency="dollars")), 400,
         "currency: must be a 3-letter ISO 4217 code in upper case, e.g. USD"),
        (post_event(payment(uuid.UUID(int=9))), 422, "account_id: no such account"),
        ({**post_event(payment(account)), "body": "%%%", "isBase64Encoded": True}, 400,
         "body: invalid base64 encoding"),
        (get_event("/refunds"), 404, "path: no route /refunds"),
        (get_event("/payments"), 405, "method: /payments accepts POST only"),
        ({**post_event(payment(account)), "path": "/health"}, 405,
         "method: /health accepts GET only"),
    ]  # fmt: skip
    for event, status, message in cases:
        response = api.handler(event, CONTEXT)
        assert (response["statusCode"], body_of(response)) == (status, {"error": message})
        if status == 405:
            assert response["headers"]["Allow"] == ("POST" if "/payments" in message else "GET")
    assert api_db.rows() == []
    documents = emf_lines(capsys.readouterr().out)
    assert [(d["StatusCode"], d["PaymentsFailed"]) for d in documents] == [
        (400, 1), (400, 1), (400, 1), (422, 1), (400, 1)
    ]  # fmt: skip


def test_multi_value_target_groups_get_multi_value_responses(api_db: ApiDatabase) -> None:
    event = post_event(payment(api_db.account_id))
    event["multiValueHeaders"] = {k: [v] for k, v in event.pop("headers").items()}
    response = api.handler(event, CONTEXT)
    assert response["statusCode"] == 201
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    health = api.handler({**get_event(), "multiValueHeaders": {}}, CONTEXT)
    assert (health["statusCode"], health["multiValueHeaders"]["Cache-Control"]) == (
        200, ["no-store"]
    )  # fmt: skip


def test_unexpected_database_errors_are_500_without_details(
    api_db: ApiDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    with api_db.admin() as admin:
        admin.execute(f"REVOKE INSERT ON payments FROM {API_ROLE}")
    response = api.handler(post_event(payment(api_db.account_id)), CONTEXT)
    assert (response["statusCode"], body_of(response)) == (500, {"error": "internal error"})
    [document] = emf_lines(capsys.readouterr().out)
    assert (document["Outcome"], document["PaymentsFailed"]) == ("error", 1)


def _activity(admin: psycopg.Connection[Any], condition: str) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND " + condition,
        (api.APPLICATION_NAME,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_concurrent_requests_with_the_same_key_record_exactly_one_payment(
    api_db: ApiDatabase,
) -> None:
    """Two execution environments (threads, each with its own connection) race.

    A trigger makes the first insert wait, uncommitted, on an advisory lock the test
    holds; the second request then hits the unique index and waits for the first
    transaction. Releasing the lock lets both finish: one 201, one 200 replay.
    """
    with api_db.admin() as admin:
        admin.execute(
            "CREATE FUNCTION gate() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NEW; END $$"
        )
        admin.execute(
            "CREATE TRIGGER gate AFTER INSERT ON payments FOR EACH ROW EXECUTE FUNCTION gate()"
        )
        admin.execute("SELECT pg_advisory_lock(4242)")
        results: dict[str, dict[str, Any]] = {}

        def invoke(name: str) -> None:
            try:
                results[name] = api.handler(post_event(payment(api_db.account_id)), CONTEXT)
            finally:
                api.reset_runtime()

        first = threading.Thread(target=invoke, args=("first",))
        first.start()
        wait_until(
            lambda: _activity(admin, "wait_event_type = 'Lock' AND wait_event = 'advisory'") == 1,
            "first insert waiting on the gate",
        )
        second = threading.Thread(target=invoke, args=("second",))
        second.start()
        wait_until(
            lambda: (
                _activity(admin, "wait_event_type = 'Lock' AND wait_event = 'transactionid'") == 1
            ),
            "second insert waiting for the first transaction",
        )
        admin.execute("SELECT pg_advisory_unlock(4242)")
        first.join(timeout=60)
        second.join(timeout=60)

    assert (results["first"]["statusCode"], results["second"]["statusCode"]) == (201, 200)
    assert results["first"]["body"] == results["second"]["body"]
    assert len(api_db.rows()) == 1


def test_an_error_on_a_healthy_connection_is_not_retried(api_db: ApiDatabase) -> None:
    """A statement cancelled by its timeout leaves the connection usable: no reconnect."""
    api.handler(get_event(), CONTEXT)
    conn, pid = api.cached_connection(), backend_pid()
    calls: list[int] = []

    def slow(c: psycopg.Connection[Any]) -> None:
        calls.append(c.info.backend_pid)
        c.execute("SET statement_timeout = 1")
        try:
            c.execute("SELECT pg_sleep(5)")
        finally:
            c.execute("RESET statement_timeout")

    with pytest.raises(psycopg.errors.QueryCanceled):
        api.with_connection(slow)
    assert calls == [pid]
    assert api.cached_connection() is conn
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200
