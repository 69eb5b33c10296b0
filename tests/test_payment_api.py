"""The payment API handler: its pure core directly, its shell against real servers.

Two real PostgreSQL 15 servers stand for the two databases the API declares, ``source``
and ``aurora``. Each has TLS on with a certificate signed by its own test CA
(:class:`LocalCertificateAuthority`): the source's certificate names 127.0.0.1 and
aurora's names localhost, so ``verify-full`` is exercised on an address and on a DNS
name. ``pg_hba.conf`` lets the API's role log in only with scram over TLS, so the
password from the secret and the TLS path are both used. Secrets Manager and SSM (the
CA bundles, the write target) are the real moto server.

The servers are started once per module and put back between tests (payments emptied,
role password and grants restored, secrets and parameters rewritten): starting them per
test cost 3 s a test. A fake clock drives the write-target cache: no test sleeps.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import pwd
import re
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
from paymig.lambdas import payment_api_connections as api_connections
from paymig.lambdas import payment_api_names as api_names
from paymig.lambdas import payment_api_outcome as api_outcome
from paymig.lambdas import payment_api_request as api_request
from paymig.lambdas import payment_api_write_target as api_write_target
from paymig.local.emulator import MotoServer
from paymig.local.postgres import LocalPostgres
from paymig.local.tls import LocalCertificateAuthority
from paymig.payments_schema import PAYMENT_STATUSES, REPLICATED_TABLES, apply_schema
from paymig.runtime import database_env

ARN = "arn:aws:lambda:us-east-2:123456789012:function:paymig-test-payment-api:blue"
CONTEXT = SimpleNamespace(aws_request_id="req-1", invoked_function_arn=ARN, function_version="7")
MERCHANT = "merchant-1"
API_ROLE = "payment_api"
#: The account both databases hold (replication would give it the same id on both).
ACCOUNT = uuid.UUID("6f1c2a4e-9a53-4d0e-8f25-3c1e6b9d7a10")
CACHE = api_write_target.WRITE_TARGET_CACHE_SECONDS


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


def payment(account: uuid.UUID = ACCOUNT, **changes: Any) -> dict[str, Any]:
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


def api_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The error lines the API logged."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == api.LOGGER.name and r.levelno >= logging.ERROR
    ]


class FakeClock:
    """The clock the write-target cache reads; tests move it instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Database:
    """One of the two servers, its login secret and its CA parameter in moto."""

    server_name: str  # source | aurora
    server: LocalPostgres
    ca: LocalCertificateAuthority
    host: str  # the name its certificate carries
    password: str
    secret_arn: str
    ca_parameter: str

    @property
    def variable(self) -> str:
        return f"PAYMIG_DB_{self.server_name.upper()}"

    def declaration(self, **changes: Any) -> str:
        spec = {
            "server": self.server_name, "host": self.host, "port": self.server.port,
            "dbname": "payments", "secret_arn": self.secret_arn, "sslmode": "verify-full",
            "ca_parameter": self.ca_parameter,
        }  # fmt: skip
        spec.update(changes)
        return json.dumps(spec)

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.server.dsn(dbname="payments"), autocommit=True)

    def rows(self) -> list[tuple[Any, ...]]:
        with self.admin() as conn:
            return conn.execute(
                "SELECT merchant_id, idempotency_key, amount, currency, status"
                " FROM payments ORDER BY created_at, id"
            ).fetchall()

    def keys(self) -> list[str]:
        return [row[1] for row in self.rows()]

    def put_secret(self, value: Any) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        boto3.client("secretsmanager").put_secret_value(SecretId=self.secret_arn, SecretString=text)

    def api_backends(self) -> int:
        with self.admin() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (api_connections.APPLICATION_NAME,),
            ).fetchone()
        assert row is not None
        return int(row[0])

    def reset(self) -> None:
        """Undo what a test may have changed on the server and in the secret."""
        with self.admin() as conn:
            conn.execute("DROP TRIGGER IF EXISTS gate ON payments")
            conn.execute("DROP FUNCTION IF EXISTS gate()")
            conn.execute("TRUNCATE payments, refunds")
            conn.execute(f"GRANT SELECT, INSERT ON payments TO {API_ROLE}")
            conn.execute(f"ALTER ROLE {API_ROLE} PASSWORD '{self.password}'")
        self.put_secret({"username": API_ROLE, "password": self.password})


def _provision(server: LocalPostgres, password: str) -> None:
    """The payments model, the API's role, and scram over TLS as its only way in."""
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE payments")
        conn.execute(f"CREATE ROLE {API_ROLE} LOGIN PASSWORD '{password}'")
    with psycopg.connect(server.dsn(dbname="payments"), autocommit=True) as conn:
        apply_schema(conn)
        conn.execute(f"GRANT SELECT, INSERT ON payments TO {API_ROLE}")
        conn.execute(
            "INSERT INTO accounts (id, display_name) VALUES (%s, 'Test account')", (ACCOUNT,)
        )
    assert server.directory is not None
    hba = server.directory / "data" / "pg_hba.conf"
    rules = (  # the first matching line wins
        f"hostssl payments {API_ROLE} 127.0.0.1/32 scram-sha-256\n"
        f"host    all      {API_ROLE} 0.0.0.0/0    reject\n"
    )
    hba.write_text(rules + hba.read_text())
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")


@dataclass
class Stack:
    """The two databases and the write-target parameter, shared by the module."""

    source: Database
    aurora: Database
    write_target_parameter: str

    def database(self, server_name: str) -> Database:
        return self.source if server_name == "source" else self.aurora


@pytest.fixture(scope="module")
def stack(moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two TLS servers, each with its own CA, their secrets and CA parameters in moto."""
    prefix = f"/paymig/test-{uuid.uuid4().hex[:12]}"
    started: list[LocalPostgres] = []
    with pytest.MonkeyPatch.context() as patch, contextlib.ExitStack() as cleanup:
        for name, value in moto_server.client_environment().items():
            patch.setenv(name, value)
        cleanup.callback(lambda: [server.stop() for server in started])
        ssm, sm = boto3.client("ssm"), boto3.client("secretsmanager")
        databases = {}
        for server_name, host in (("source", "127.0.0.1"), ("aurora", "localhost")):
            ca = LocalCertificateAuthority(
                tmp_path_factory.mktemp(f"ca-{server_name}"), f"paymig test CA {server_name}"
            )
            server = LocalPostgres(
                f"payapi-{server_name}", certificate_authority=ca, server_names=(host,)
            )
            started.append(server.start())
            password = secrets.token_urlsafe(24)
            _provision(server, password)
            ca_parameter = f"{prefix}/ca/{server_name}"
            ssm.put_parameter(Name=ca_parameter, Value=ca.certificate.read_text(), Type="String")
            secret_arn = sm.create_secret(
                Name=f"{prefix.strip('/')}/{server_name}/api",
                SecretString=json.dumps({"username": API_ROLE, "password": password}),
            )["ARN"]
            databases[server_name] = Database(
                server_name, server, ca, host, password, secret_arn, ca_parameter
            )
        write_target = f"{prefix}/write-target"
        ssm.put_parameter(Name=write_target, Value="source", Type="String")
        yield Stack(databases["source"], databases["aurora"], write_target)


@dataclass
class Api:
    """The API's environment in one test: the stack, the clock, switching the target."""

    stack: Stack
    clock: FakeClock
    source: Database
    aurora: Database

    def set_write_target(self, value: str) -> None:
        boto3.client("ssm").put_parameter(
            Name=self.stack.write_target_parameter, Value=value, Type="String", Overwrite=True
        )

    def switch(self, value: str) -> None:
        """Set the parameter and let the cache time pass."""
        self.set_write_target(value)
        self.clock.advance(CACHE)


@pytest.fixture
def api_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """A fresh execution environment over the shared servers, put back as new."""
    for database in (stack.source, stack.aurora):
        database.reset()
        monkeypatch.setenv(database.variable, database.declaration())
    boto3.client("ssm").put_parameter(
        Name=stack.write_target_parameter, Value="source", Type="String", Overwrite=True
    )
    monkeypatch.setenv("PAYMIG_WRITE_TARGET_PARAMETER", stack.write_target_parameter)
    monkeypatch.setenv("PAYMIG_ENVIRONMENT", "test")
    clock = FakeClock()
    api_connections.reset_runtime(clock=clock)
    yield Api(stack, clock, stack.source, stack.aurora)
    api_connections.reset_runtime()


def backend_pid() -> int:
    conn = api_connections.cached_connection()
    assert conn is not None
    return conn.info.backend_pid


def connected_port() -> int:
    conn = api_connections.cached_connection()
    assert conn is not None
    return int(conn.info.port)


@contextlib.contextmanager
def server_down(server: LocalPostgres) -> Iterator[None]:
    """Stop ``server`` keeping its data (``LocalPostgres.stop`` deletes it); start it after."""
    assert server.directory is not None
    data = server.directory / "data"
    user = pwd.getpwuid(data.stat().st_uid).pw_name if os.geteuid() == 0 else None
    pg_ctl = shutil.which("pg_ctl") or "/usr/lib/postgresql/15/bin/pg_ctl"

    def run(*args: str) -> None:
        subprocess.run(
            [pg_ctl, "-D", str(data), *args],
            user=user,
            check=True,
            capture_output=True,
            timeout=120,
        )

    run("-m", "fast", "-w", "stop")
    try:
        yield
    finally:
        run("-l", str(server.log_file), "-w", "start")


class _Calls:
    """Counts calls to a real function and passes them on (a spy, not a mock)."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function, self.count = function, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return self.function(*args, **kwargs)


# ================================================================ pure core


def test_metric_and_environment_names_match_the_shared_naming_module() -> None:
    pairs = [
        (api_names.PAYMENT_METRICS_NAMESPACE, naming.PAYMENT_METRICS_NAMESPACE),
        (api_names.METRIC_PAYMENTS_PROCESSED, naming.METRIC_PAYMENTS_PROCESSED),
        (api_names.METRIC_PAYMENTS_SUCCEEDED, naming.METRIC_PAYMENTS_SUCCEEDED),
        (api_names.METRIC_PAYMENTS_FAILED, naming.METRIC_PAYMENTS_FAILED),
        (api_names.METRIC_PAYMENT_VALUE, naming.METRIC_PAYMENT_VALUE),
        (api_names.DIMENSION_ENVIRONMENT, naming.DIMENSION_ENVIRONMENT),
        (api_names.DIMENSION_ALIAS, naming.DIMENSION_ALIAS),
        (api_names.DIMENSION_CURRENCY, naming.DIMENSION_CURRENCY),
        (api_names.PAYMENT_COUNT_DIMENSION_SETS, naming.PAYMENT_COUNT_DIMENSION_SETS),
        (api_names.PAYMENT_VALUE_DIMENSION_SETS, naming.PAYMENT_VALUE_DIMENSION_SETS),
        (api_names.ENV_DB_SOURCE, naming.PAYMENT_API_ENV_DB_SOURCE),
        (api_names.ENV_DB_AURORA, naming.PAYMENT_API_ENV_DB_AURORA),
        (api_names.ENV_WRITE_TARGET, naming.PAYMENT_API_ENV_WRITE_TARGET),
        (api_names.ENV_ENVIRONMENT, naming.PAYMENT_API_ENV_ENVIRONMENT),
    ]
    assert [a for a, _ in pairs] == [b for _, b in pairs]
    # The declarations are the ones paymig.runtime.database_env reads, one per server.
    assert tuple(
        f"{database_env.ENV_PREFIX}{server.upper()}" for server in database_env.SERVERS
    ) == (api_names.ENV_DB_SOURCE, api_names.ENV_DB_AURORA)
    handler_path = f"{api.__name__}.{api.handler.__name__}"
    assert handler_path == naming.PAYMENT_API_HANDLER


def test_parse_event_reads_single_and_multi_value_headers_and_base64_bodies() -> None:
    single = api_request.parse_event(
        {"httpMethod": "post", "path": "/payments", "headers": {"Idempotency-Key": "k"},
         "body": '{"a":1}', "isBase64Encoded": False}
    )  # fmt: skip
    seen = (single.method, single.path, dict(single.headers), single.body(), single.multi_value)
    assert seen == ("POST", "/payments", {"idempotency-key": "k"}, b'{"a":1}', False)
    multi = api_request.parse_event(
        {"httpMethod": "POST", "path": "/payments",
         "multiValueHeaders": {"Idempotency-Key": ["old", "new"], "x-empty": []},
         "body": base64.b64encode(b'{"a":2}').decode(), "isBase64Encoded": True}
    )  # fmt: skip
    assert (dict(multi.headers), multi.body(), multi.multi_value) == (
        {"idempotency-key": "new"}, b'{"a":2}', True
    )  # fmt: skip
    broken = api_request.parse_event({"httpMethod": "POST", "path": "/", "body": "***",
                              "isBase64Encoded": True})  # fmt: skip
    with pytest.raises(api_request.RequestError, match=r"^body: invalid base64 encoding$"):
        broken.body()


def _parse(
    body: Any, key: str | None = "key-1", raw: str | None = None
) -> api_request.PaymentRequest:
    return api_request.parse_payment(api_request.parse_event(post_event(body, key, raw=raw)))


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
    with pytest.raises(api_request.RequestError) as caught:
        _parse(body, key, raw)
    assert (caught.value.status, str(caught.value)) == (HTTPStatus.BAD_REQUEST, message)


def test_parse_payment_returns_the_canonical_request() -> None:
    parsed = _parse(payment(ACCOUNT, amount="7.5", account_id=str(ACCOUNT).upper()), "key-9")
    assert parsed == api_request.PaymentRequest(MERCHANT, "key-9", ACCOUNT, Decimal("7.50"), "USD")
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


def _stored(fingerprint: str) -> api_outcome.StoredPayment:
    return api_outcome.StoredPayment(
        uuid.UUID(int=5), ACCOUNT, MERCHANT, Decimal("12.50"), "USD", "succeeded",
        datetime(2026, 11, 29, 21, 0, tzinfo=UTC), fingerprint,
    )  # fmt: skip


def test_resolve_existing_replays_the_same_request_and_refuses_another() -> None:
    stored = _stored("a" * 64)
    replay = api_outcome.resolve_existing(stored, "a" * 64)
    assert (replay.status, replay.replayed, replay.body) == (HTTPStatus.OK, True, stored.body())
    conflict = api_outcome.resolve_existing(stored, "b" * 64)
    assert (conflict.status, conflict.body, conflict.succeeded) == (
        HTTPStatus.CONFLICT,
        {"error": "Idempotency-Key: already used by this merchant for a different request"},
        False,
    )
    assert "fingerprint" not in repr(stored)


def test_build_response_has_the_alb_shape_in_both_header_modes() -> None:
    single = api_outcome.build_response(HTTPStatus.CREATED, {"a": "b"}, headers={"X-Y": "z"})
    assert single == {
        "statusCode": 201,
        "statusDescription": "201 Created",
        "isBase64Encoded": False,
        "body": '{"a":"b"}',
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store", "X-Y": "z"},
    }
    multi = api_outcome.build_response(HTTPStatus.NOT_FOUND, {}, multi_value=True)
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
    assert api_outcome.alias_of(arn) == alias


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
    outcome = api_outcome.PaymentOutcome(HTTPStatus.CREATED, stored.body(), payment=stored)
    document = api_outcome.emf_document(
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
        (api_outcome.resolve_existing(_stored("a" * 64), "a" * 64), 1, "replayed"),
        (api_outcome.resolve_existing(_stored("a" * 64), "b" * 64), 0, "conflict"),
        (
            api_outcome.error_outcome(api_request.RequestError(HTTPStatus.BAD_REQUEST, "x")),
            0,
            "rejected",
        ),
        (api_outcome.PaymentOutcome(HTTPStatus.SERVICE_UNAVAILABLE, {}), 0, "unavailable"),
        (api_outcome.PaymentOutcome(HTTPStatus.INTERNAL_SERVER_ERROR, {}), 0, "error"),
    ],
)
def test_emf_document_without_a_new_payment_has_no_value(
    outcome: api_outcome.PaymentOutcome, succeeded: int, label: str
) -> None:
    document = api_outcome.emf_document(
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


class _Reads:
    """A write-target reader that answers from a list and counts its reads."""

    def __init__(self, *answers: str | Exception) -> None:
        self.answers, self.count = list(answers), 0

    def __call__(self) -> str:
        self.count += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_write_target_is_read_once_per_cache_time_and_again_when_it_is_over() -> None:
    clock, reads = FakeClock(), _Reads("source", "aurora")
    cache = api_write_target.WriteTargetCache("/p/write-target", reads, clock)
    assert (cache.current(), reads.count) == ("source", 1)
    clock.advance(CACHE - 0.001)
    assert (cache.current(), reads.count) == ("source", 1)
    clock.advance(0.001)  # exactly the cache time: stale
    assert (cache.current(), reads.count) == ("aurora", 2)
    assert CACHE == 5.0


def test_write_target_read_before_the_clock_went_back_is_stale() -> None:
    clock, reads = FakeClock(), _Reads("source", "aurora")
    cache = api_write_target.WriteTargetCache("/p/write-target", reads, clock)
    cache.current()
    clock.advance(-1.0)
    assert (cache.current(), reads.count) == ("aurora", 2)


def test_write_target_failed_read_is_not_kept() -> None:
    failure = api_write_target.WriteTargetError(
        "PAYMIG_WRITE_TARGET_PARAMETER: cannot read SSM parameter"
    )
    clock, reads = FakeClock(), _Reads("source", failure, "aurora")
    cache = api_write_target.WriteTargetCache("/p/write-target", reads, clock)
    cache.current()
    clock.advance(CACHE)
    with pytest.raises(api_write_target.WriteTargetError):
        cache.current()
    assert (cache.current(), reads.count) == ("aurora", 3)  # no clock move: read again


@pytest.mark.parametrize("value", ["", "Aurora", "both", "source ", "aurora\n"])
def test_an_unknown_write_target_is_refused_every_time_not_defaulted(value: str) -> None:
    clock, reads = FakeClock(), _Reads(value)
    cache = api_write_target.WriteTargetCache("/p/write-target", reads, clock)
    message = (
        f"PAYMIG_WRITE_TARGET_PARAMETER: SSM parameter /p/write-target holds {value!r}, "
        "expected one of source, aurora"
    )
    for _ in range(2):
        with pytest.raises(api_write_target.WriteTargetError) as caught:
            cache.current()
        assert str(caught.value) == message
    assert reads.count == 1  # an unknown value is cached like any other
    assert isinstance(caught.value, api_write_target.ConfigurationError)


def test_one_line_joins_what_libpq_reports_per_address() -> None:
    error = psycopg.OperationalError(
        'connection failed: connection to server at "::1", port 5 failed: refused\n'
        '  connection to server at "127.0.0.1", port 5 failed: refused\n'
    )
    assert api_connections.one_line(error) == (
        'connection failed: connection to server at "::1", port 5 failed: refused '
        'connection to server at "127.0.0.1", port 5 failed: refused'
    )


def test_payments_schema_is_idempotent_and_enforces_the_model(stack: Stack) -> None:
    server = stack.source.server
    with psycopg.connect(server.dsn(), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS schema_check")
        admin.execute("CREATE DATABASE schema_check")
    try:
        with psycopg.connect(server.dsn(dbname="schema_check"), autocommit=True) as conn:
            _check_schema(conn)
    finally:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute("DROP DATABASE schema_check")


def _check_schema(conn: psycopg.Connection[Any]) -> None:
    apply_schema(conn)
    apply_schema(conn)  # a second run changes nothing and does not fail
    tables = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        " ORDER BY table_name"
    ).fetchall()
    assert [t for (t,) in tables] == sorted(REPLICATED_TABLES)
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
        "paymig_markers.id": "uuid",  # the cutover's fence markers travel with the data
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

# ---------------------------------------------------------------- declared databases, TLS


@pytest.mark.parametrize("server_name", ["source", "aurora"])
def test_health_is_healthy_over_tls_verified_with_the_write_targets_own_ca(
    api_env: Api, server_name: str
) -> None:
    database = api_env.stack.database(server_name)
    api_env.set_write_target(server_name)
    response = api.handler(get_event(), CONTEXT)
    assert (response["statusCode"], body_of(response)) == (200, {"status": "healthy"})
    conn = api_connections.cached_connection()
    assert conn is not None
    assert conn.execute(
        "SELECT s.ssl, current_user, current_database() FROM pg_stat_ssl s"
        " WHERE s.pid = pg_backend_pid()"
    ).fetchone() == (True, API_ROLE, "payments")
    parameters = conn.info.get_parameters()
    assert (parameters["sslmode"], conn.info.host, conn.info.port) == (
        "verify-full", database.host, database.server.port
    )  # fmt: skip
    assert Path(parameters["sslrootcert"]).read_text() == database.ca.certificate.read_text()


@pytest.mark.parametrize("server_name", ["source", "aurora"])
def test_a_declaration_naming_the_other_ca_is_503_with_one_clear_line(
    api_env: Api,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    server_name: str,
) -> None:
    database = api_env.stack.database(server_name)
    other = api_env.aurora if database is api_env.source else api_env.source
    monkeypatch.setenv(database.variable, database.declaration(ca_parameter=other.ca_parameter))
    api_env.set_write_target(server_name)
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 503
    [line] = api_errors(caplog)
    where = f"{database.variable} ({server_name} at {database.host}:{database.server.port})"
    assert line.startswith(f"health check failed: {where}: OperationalError: connection ")
    assert line.endswith("SSL error: certificate verify failed")
    assert "\n" not in line
    assert api_connections.cached_connection() is None


@pytest.mark.parametrize(
    ("server_name", "wrong_host", "certified"),
    [("source", "localhost", "127.0.0.1"), ("aurora", "127.0.0.1", "localhost")],
)
def test_a_declaration_naming_another_host_is_503_with_one_clear_line(
    api_env: Api,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    server_name: str,
    wrong_host: str,
    certified: str,
) -> None:
    """Same server, same CA, a name its certificate does not carry: verify-full refuses."""
    database = api_env.stack.database(server_name)
    monkeypatch.setenv(database.variable, database.declaration(host=wrong_host))
    api_env.set_write_target(server_name)
    response = api.handler(post_event(payment()), CONTEXT)
    assert response["statusCode"] == 503
    [line] = api_errors(caplog)
    where = f"{database.variable} ({server_name} at {wrong_host}:{database.server.port})"
    assert line.startswith(f"payment not recorded: {where}: OperationalError: ")
    # libpq adds "(and N other names)" when the certificate carries more (its CN here).
    assert re.search(
        f'server certificate for "{re.escape(certified)}"( \\(and \\d+ other names?\\))? '
        f'does not match host name "{re.escape(wrong_host)}"$',
        line,
    )
    assert database.rows() == []


@pytest.mark.parametrize(
    ("unset", "changes", "message"),
    [
        ("PAYMIG_DB_SOURCE", {}, "ConfigError: PAYMIG_DB_SOURCE: not set"),
        (None, {"sslmode": "require"},
         "ConfigError: PAYMIG_DB_SOURCE: sslmode must be verify-full, not 'require'"),
        (None, {"server": "aurora"},
         "ConfigurationError: PAYMIG_DB_SOURCE: declares the aurora server, but it is the "
         "declaration of the source write target"),
        (None, {"ca_parameter": "/paymig/test-missing/ca/source"},
         "ConfigurationError: PAYMIG_DB_SOURCE: cannot read the CA bundle from SSM parameter "
         "/paymig/test-missing/ca/source: ParameterNotFound"),
    ],
)  # fmt: skip
def test_a_missing_or_bad_declaration_is_503_naming_the_variable(
    api_env: Api,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    unset: str | None,
    changes: dict[str, str],
    message: str,
) -> None:
    if unset is not None:
        monkeypatch.delenv(unset)
    else:
        monkeypatch.setenv("PAYMIG_DB_SOURCE", api_env.source.declaration(**changes))
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 503
    [line] = api_errors(caplog)
    assert line.startswith("health check failed: ") and line.endswith(message)


def test_a_ca_parameter_without_a_certificate_is_503(
    api_env: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    parameter = f"{api_env.source.ca_parameter}-not-pem"
    boto3.client("ssm").put_parameter(
        Name=parameter, Value="not a certificate", Type="String", Overwrite=True
    )
    monkeypatch.setenv("PAYMIG_DB_SOURCE", api_env.source.declaration(ca_parameter=parameter))
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 503
    assert api_errors(caplog) == [
        "health check failed: PAYMIG_DB_SOURCE (source at 127.0.0.1:"
        f"{api_env.source.server.port}): ConfigError: {parameter}: the SSM parameter holds "
        "no PEM certificate"
    ]


class _CountingSsm:
    """moto's SSM, with the parameters read recorded in order (a spy)."""

    def __init__(self, client: Any, names: list[str]) -> None:
        self.client, self.names = client, names

    def get_parameter(self, **kwargs: Any) -> Any:
        self.names.append(kwargs["Name"])
        return self.client.get_parameter(**kwargs)


def test_ca_bundles_are_fetched_once_per_environment_the_write_target_once_per_cache_time(
    api_env: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    names: list[str] = []

    def client(service: str) -> Any:
        made = boto3.client(service)
        return _CountingSsm(made, names) if service == "ssm" else made

    monkeypatch.setattr(api_connections, "aws_client", client)
    target, source_ca, aurora_ca = (
        api_env.stack.write_target_parameter, api_env.source.ca_parameter,
        api_env.aurora.ca_parameter,
    )  # fmt: skip
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200  # within the cache time
    assert names == [target, source_ca]
    api_env.switch("aurora")
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200
    with api_env.aurora.admin() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid(),))
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200  # a reconnect
    api_env.switch("source")
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200
    assert names == [target, source_ca, target, aurora_ca, target]


# ---------------------------------------------------------------- the write target at run time


def test_switching_the_parameter_moves_new_payments_within_the_cache_time(
    api_env: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    source, aurora = api_env.source, api_env.aurora
    assert api.handler(post_event(payment(), key="k1"), CONTEXT)["statusCode"] == 201
    source_conn = api_connections.cached_connection()
    assert source_conn is not None and connected_port() == source.server.port

    api_env.set_write_target("aurora")
    assert api.handler(post_event(payment(), key="k2"), CONTEXT)["statusCode"] == 201
    api_env.clock.advance(CACHE - 0.001)
    assert api.handler(post_event(payment(), key="k3"), CONTEXT)["statusCode"] == 201
    assert (source.keys(), aurora.keys()) == (["k1", "k2", "k3"], [])  # cached: still source
    assert api_connections.cached_connection() is source_conn

    api_env.clock.advance(0.001)
    assert api.handler(post_event(payment(), key="k4"), CONTEXT)["statusCode"] == 201
    assert (source.keys(), aurora.keys()) == (["k1", "k2", "k3"], ["k4"])
    assert connected_port() == aurora.server.port
    assert source_conn.closed
    wait_until(lambda: source.api_backends() == 0, "the source backend to end")

    aurora_conn = api_connections.cached_connection()
    assert aurora_conn is not None
    api_env.switch("source")
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200  # health checks the target
    assert api.handler(post_event(payment(), key="k5"), CONTEXT)["statusCode"] == 201
    assert (source.keys(), aurora.keys()) == (["k1", "k2", "k3", "k5"], ["k4"])
    assert aurora_conn.closed and connected_port() == source.server.port
    wait_until(lambda: aurora.api_backends() == 0, "the aurora backend to end")
    assert [d["Outcome"] for d in emf_lines(capsys.readouterr().out)] == ["created"] * 5


def test_reads_go_to_the_write_target_too(api_env: Api) -> None:
    """A retry after the switch is answered from the new database, not the old one."""
    with api_env.aurora.admin() as admin:  # as replication would have copied it
        admin.execute(
            "INSERT INTO payments (account_id, merchant_id, idempotency_key, amount, currency,"
            " status, request_fingerprint) VALUES (%s, %s, 'k1', 12.50, 'USD', 'succeeded', %s)",
            (ACCOUNT, MERCHANT, _parse(payment(), "k1").fingerprint()),
        )
    first = api.handler(post_event(payment(), key="k1"), CONTEXT)
    api_env.switch("aurora")
    retry = api.handler(post_event(payment(), key="k1"), CONTEXT)
    assert (first["statusCode"], retry["statusCode"]) == (201, 200)
    [(aurora_id,)] = api_env.aurora.admin().execute("SELECT id FROM payments").fetchall()
    assert body_of(retry)["payment_id"] == str(aurora_id) != body_of(first)["payment_id"]
    assert (len(api_env.source.rows()), len(api_env.aurora.rows())) == (1, 1)


def test_an_unknown_write_target_is_503_logged_once_and_never_defaulted(
    api_env: Api, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    assert api.handler(post_event(payment(), key="k1"), CONTEXT)["statusCode"] == 201
    api_env.switch("Aurora")
    responses = [api.handler(post_event(payment(), key="k2"), CONTEXT)]
    responses.append(api.handler(get_event(), CONTEXT))
    api_env.clock.advance(CACHE)  # read again: still unknown, not logged again
    responses.append(api.handler(post_event(payment(), key="k3"), CONTEXT))
    assert [(r["statusCode"], body_of(r)) for r in responses] == [
        (503, {"error": "database unavailable; retry with the same Idempotency-Key"}),
        (503, {"status": "unhealthy"}),
        (503, {"error": "database unavailable; retry with the same Idempotency-Key"}),
    ]
    assert api_errors(caplog) == [
        "no write target, answering 503: PAYMIG_WRITE_TARGET_PARAMETER: SSM parameter "
        f"{api_env.stack.write_target_parameter} holds 'Aurora', expected one of source, aurora"
    ]
    assert (api_env.source.keys(), api_env.aurora.keys()) == (["k1"], [])
    documents = emf_lines(capsys.readouterr().out)
    assert [(d["Outcome"], d["PaymentsFailed"]) for d in documents] == [
        ("created", 0), ("unavailable", 1), ("unavailable", 1)
    ]  # fmt: skip

    api_env.switch("aurora")
    caplog.clear()
    assert api.handler(post_event(payment(), key="k2"), CONTEXT)["statusCode"] == 201
    assert api_env.aurora.keys() == ["k2"]
    assert [r.getMessage() for r in caplog.records if r.name == api.LOGGER.name] == [
        "write target is aurora again",
        "write target changed from source to aurora: closing the connection to source",
    ]


@pytest.mark.parametrize("broken", ["unset", "missing", "unreachable"])
def test_a_write_target_that_cannot_be_read_is_503_logged_once(
    api_env: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, broken: str
) -> None:
    parameter = api_env.stack.write_target_parameter
    if broken == "unset":
        monkeypatch.delenv("PAYMIG_WRITE_TARGET_PARAMETER")
        expected = "PAYMIG_WRITE_TARGET_PARAMETER: not set"
    elif broken == "missing":
        parameter += "-missing"
        monkeypatch.setenv("PAYMIG_WRITE_TARGET_PARAMETER", parameter)
        expected = f"cannot read SSM parameter {parameter}: ParameterNotFound"
    else:  # SSM's endpoint refuses connections (a closed port), and boto3 tries once
        monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:1")
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        expected = f"cannot read SSM parameter {parameter}: EndpointConnectionError"
    for _ in range(2):
        assert api.handler(get_event(), CONTEXT)["statusCode"] == 503
        api_env.clock.advance(CACHE)
    [line] = api_errors(caplog)
    assert line.startswith("no write target, answering 503: PAYMIG_WRITE_TARGET_PARAMETER: ")
    assert line.endswith(expected)
    assert api_connections.cached_connection() is None


# ---------------------------------------------------------------- connections and secrets


def test_connection_is_reused_across_invocations(api_env: Api) -> None:
    api.handler(get_event(), CONTEXT)
    first, pid = api_connections.cached_connection(), backend_pid()
    api.handler(get_event(), CONTEXT)
    api_env.clock.advance(CACHE)  # the target is read again, and is the same
    api.handler(post_event(payment()), CONTEXT)
    assert api_connections.cached_connection() is first
    assert backend_pid() == pid


def test_reconnects_once_after_the_backend_is_terminated(api_env: Api) -> None:
    api.handler(get_event(), CONTEXT)
    old_pid = backend_pid()
    with api_env.source.admin() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
    response = api.handler(post_event(payment()), CONTEXT)
    assert response["statusCode"] == 201
    assert backend_pid() != old_pid
    assert len(api_env.source.rows()) == 1


def test_reconnects_after_the_server_restarts(api_env: Api) -> None:
    api.handler(get_event(), CONTEXT)
    old_pid = backend_pid()
    api_env.source.server.restart()
    response = api.handler(get_event(), CONTEXT)
    assert (response["statusCode"], body_of(response)) == (200, {"status": "healthy"})
    assert backend_pid() != old_pid


def _rotate_password(database: Database) -> None:
    """Change the role's password and the secret, and cut the API's connection."""
    new_password = secrets.token_urlsafe(24)
    with database.admin() as admin:
        admin.execute(f"ALTER ROLE {API_ROLE} PASSWORD '{new_password}'")
        database.put_secret({"username": API_ROLE, "password": new_password})
        admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid(),))


def test_reconnect_reads_the_rotated_password(api_env: Api) -> None:
    api.handler(get_event(), CONTEXT)
    _rotate_password(api_env.source)
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200


def test_the_secret_is_cached_and_read_again_only_when_a_login_fails(
    api_env: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = _Calls(api_connections.read_secret)
    monkeypatch.setattr(api_connections, "read_secret", reads)
    api.handler(get_event(), CONTEXT)
    with api_env.source.admin() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (backend_pid(),))
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200
    assert reads.count == 1  # a new connection, the cached credentials
    _rotate_password(api_env.source)
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200
    assert reads.count == 2  # the failed login read it again


def test_a_failed_login_is_not_retried_when_the_secret_is_unchanged(
    api_env: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api_env.source.put_secret({"username": API_ROLE, "password": "wrong"})
    reads, connects = _Calls(api_connections.read_secret), _Calls(api_connections.connect)
    monkeypatch.setattr(api_connections, "read_secret", reads)
    monkeypatch.setattr(api_connections, "connect", connects)
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 503
    assert (reads.count, connects.count) == (2, 1)


def test_an_unusable_secret_is_not_cached(api_env: Api) -> None:
    api_env.source.put_secret("not json")
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 503
    api_env.source.put_secret({"username": API_ROLE, "password": api_env.source.password})
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200


def test_the_secrets_host_port_and_dbname_are_ignored_for_the_declarations(api_env: Api) -> None:
    api_env.source.put_secret(
        {"engine": "postgres", "host": "192.0.2.1", "port": 1, "dbname": "elsewhere",
         "username": API_ROLE, "password": api_env.source.password}
    )  # fmt: skip
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200
    assert connected_port() == api_env.source.server.port


def test_health_is_503_when_the_database_goes_down(api_env: Api) -> None:
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200
    with server_down(api_env.source.server):
        response = api.handler(get_event(), CONTEXT)
    assert (response["statusCode"], response["statusDescription"], body_of(response)) == (
        503, "503 Service Unavailable", {"status": "unhealthy"}
    )  # fmt: skip
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200  # back up: reconnects


def test_payment_is_503_and_counted_failed_when_the_database_is_down(
    api_env: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    with server_down(api_env.source.server):
        response = api.handler(post_event(payment()), CONTEXT)
    assert (response["statusCode"], body_of(response)) == (
        503, {"error": "database unavailable; retry with the same Idempotency-Key"}
    )  # fmt: skip
    [document] = emf_lines(capsys.readouterr().out)
    assert (document["PaymentsFailed"], document["Outcome"]) == (1, "unavailable")


def test_health_is_503_with_a_wrong_password_in_the_secret(
    api_env: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api_env.source.put_secret({"username": API_ROLE, "password": "wrong"})
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 503
    [line] = api_errors(caplog)
    assert line.endswith(f'password authentication failed for user "{API_ROLE}"')
    assert "wrong" not in line


@pytest.mark.parametrize(
    ("secret_string", "message"),
    [
        ("not json", "PAYMIG_DB_SOURCE: the secret is not a JSON string"),
        ('["a list"]', "PAYMIG_DB_SOURCE: the secret is not a JSON object"),
        (json.dumps({"username": API_ROLE}), "secret field 'password' missing"),
    ],
)
def test_health_is_503_when_the_secret_is_unusable(
    api_env: Api, caplog: pytest.LogCaptureFixture, secret_string: str, message: str
) -> None:
    api_env.source.put_secret(secret_string)
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 503
    [line] = api_errors(caplog)
    assert line.endswith(message)
    assert api_connections.cached_connection() is None


def test_health_is_503_when_the_secret_does_not_exist(
    api_env: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = api_env.source.secret_arn + "-missing"
    monkeypatch.setenv("PAYMIG_DB_SOURCE", api_env.source.declaration(secret_arn=missing))
    expected = r"^PAYMIG_DB_SOURCE: cannot read the secret: ResourceNotFoundException$"
    with pytest.raises(api_write_target.ConfigurationError, match=expected):
        api_connections.read_secret(boto3.client("secretsmanager"), database_env.target("SOURCE"))
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 503


# ---------------------------------------------------------------- payments


def test_create_payment_returns_201_and_records_one_row(
    api_env: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    response = api.handler(post_event(payment()), CONTEXT)
    assert (response["statusCode"], response["statusDescription"]) == (201, "201 Created")
    assert "Idempotent-Replayed" not in response["headers"]
    body = body_of(response)
    with api_env.source.admin() as admin:
        row = admin.execute("SELECT id, created_at, request_fingerprint FROM payments").fetchone()
    assert row is not None
    assert body == {
        "payment_id": str(row[0]), "merchant_id": MERCHANT, "account_id": str(ACCOUNT),
        "amount": "12.50", "currency": "USD", "status": "succeeded",
        "created_at": row[1].astimezone(UTC).isoformat(),
    }  # fmt: skip
    assert row[2] == _parse(payment()).fingerprint()
    assert api_env.source.rows() == [(MERCHANT, "key-1", Decimal("12.50"), "USD", "succeeded")]
    assert api_env.aurora.rows() == []


def test_emf_line_of_an_invocation_is_exact(
    api_env: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    before = int(time.time() * 1000)
    api.handler(post_event(payment(amount="99.99", currency="EUR")), CONTEXT)
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
    api_env: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    first = api.handler(post_event(payment()), CONTEXT)
    retry = api.handler(post_event(payment()), CONTEXT)
    same_meaning = api.handler(post_event(payment(amount="12.5")), CONTEXT)
    assert (first["statusCode"], retry["statusCode"], same_meaning["statusCode"]) == (201, 200, 200)
    assert retry["body"] == first["body"] == same_meaning["body"]
    assert retry["headers"]["Idempotent-Replayed"] == "true"
    assert len(api_env.source.rows()) == 1
    documents = emf_lines(capsys.readouterr().out)
    assert [(d["Outcome"], d["PaymentsSucceeded"], "PaymentValue" in d) for d in documents] == [
        ("created", 1, True), ("replayed", 1, False), ("replayed", 1, False)
    ]  # fmt: skip


def test_same_key_with_a_different_request_is_409(
    api_env: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    api.handler(post_event(payment()), CONTEXT)
    response = api.handler(post_event(payment(amount="13.00")), CONTEXT)
    assert (response["statusCode"], body_of(response)) == (
        409, {"error": "Idempotency-Key: already used by this merchant for a different request"}
    )  # fmt: skip
    assert api_env.source.rows() == [(MERCHANT, "key-1", Decimal("12.50"), "USD", "succeeded")]
    documents = emf_lines(capsys.readouterr().out)
    assert [(d["Outcome"], d["PaymentsFailed"]) for d in documents] == [
        ("created", 0), ("conflict", 1)
    ]  # fmt: skip


def test_same_key_for_another_merchant_is_another_payment(api_env: Api) -> None:
    first = api.handler(post_event(payment()), CONTEXT)
    other = api.handler(post_event(payment(merchant_id="merchant-2")), CONTEXT)
    assert (first["statusCode"], other["statusCode"]) == (201, 201)
    assert body_of(first)["payment_id"] != body_of(other)["payment_id"]
    assert sorted(api_env.source.rows()) == [
        (MERCHANT, "key-1", Decimal("12.50"), "USD", "succeeded"),
        ("merchant-2", "key-1", Decimal("12.50"), "USD", "succeeded"),
    ]


def test_bad_requests_get_a_clear_status_and_record_nothing(
    api_env: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        (post_event(payment(), key=None), 400, "Idempotency-Key: header is required"),
        (post_event(payment(amount="ten")), 400,
         'amount: must be a decimal with up to 16 digits before and 2 after the point, '
         'e.g. "12.50"'),
        (post_event(payment(currency="dollars")), 400,
         "currency: must be a 3-letter ISO 4217 code in upper case, e.g. USD"),
        (post_event(payment(uuid.UUID(int=9))), 422, "account_id: no such account"),
        ({**post_event(payment()), "body": "%%%", "isBase64Encoded": True}, 400,
         "body: invalid base64 encoding"),
        (get_event("/refunds"), 404, "path: no route /refunds"),
        (get_event("/payments"), 405, "method: /payments accepts POST only"),
        ({**post_event(payment()), "path": "/health"}, 405,
         "method: /health accepts GET only"),
    ]  # fmt: skip
    for event, status, message in cases:
        response = api.handler(event, CONTEXT)
        assert (response["statusCode"], body_of(response)) == (status, {"error": message})
        if status == 405:
            assert response["headers"]["Allow"] == ("POST" if "/payments" in message else "GET")
    assert api_env.source.rows() == []
    documents = emf_lines(capsys.readouterr().out)
    assert [(d["StatusCode"], d["PaymentsFailed"]) for d in documents] == [
        (400, 1), (400, 1), (400, 1), (422, 1), (400, 1)
    ]  # fmt: skip


def test_multi_value_target_groups_get_multi_value_responses(api_env: Api) -> None:
    event = post_event(payment())
    event["multiValueHeaders"] = {k: [v] for k, v in event.pop("headers").items()}
    response = api.handler(event, CONTEXT)
    assert response["statusCode"] == 201
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    health = api.handler({**get_event(), "multiValueHeaders": {}}, CONTEXT)
    assert (health["statusCode"], health["multiValueHeaders"]["Cache-Control"]) == (
        200, ["no-store"]
    )  # fmt: skip


def test_unexpected_database_errors_are_500_without_details(
    api_env: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    with api_env.source.admin() as admin:
        admin.execute(f"REVOKE INSERT ON payments FROM {API_ROLE}")
    response = api.handler(post_event(payment()), CONTEXT)
    assert (response["statusCode"], body_of(response)) == (500, {"error": "internal error"})
    [document] = emf_lines(capsys.readouterr().out)
    assert (document["Outcome"], document["PaymentsFailed"]) == ("error", 1)


def _activity(admin: psycopg.Connection[Any], condition: str) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND " + condition,
        (api_connections.APPLICATION_NAME,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_concurrent_requests_with_the_same_key_record_exactly_one_payment(api_env: Api) -> None:
    """Two execution environments (threads, each with its own connection) race.

    A trigger makes the first insert wait, uncommitted, on an advisory lock the test
    holds; the second request then hits the unique index and waits for the first
    transaction. Releasing the lock lets both finish: one 201, one 200 replay.
    """
    with api_env.source.admin() as admin:
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
                results[name] = api.handler(post_event(payment()), CONTEXT)
            finally:
                api_connections.close_connection()

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
    assert len(api_env.source.rows()) == 1


def test_an_error_on_a_healthy_connection_is_not_retried(api_env: Api) -> None:
    """A statement cancelled by its timeout leaves the connection usable: no reconnect."""
    api.handler(get_event(), CONTEXT)
    conn, pid = api_connections.cached_connection(), backend_pid()
    calls: list[int] = []

    def slow(c: psycopg.Connection[Any]) -> None:
        calls.append(c.info.backend_pid)
        c.execute("SET statement_timeout = 1")
        try:
            c.execute("SELECT pg_sleep(5)")
        finally:
            c.execute("RESET statement_timeout")

    with pytest.raises(psycopg.errors.QueryCanceled):
        api_connections.with_connection(slow)
    assert calls == [pid]
    assert api_connections.cached_connection() is conn
    assert api.handler(get_event(), CONTEXT)["statusCode"] == 200
