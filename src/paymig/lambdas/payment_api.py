"""The payment API: an AWS Lambda function behind an Application Load Balancer.

Routes:

- ``GET /health``: 200 ``{"status": "healthy"}`` only when the database answers
  ``SELECT 1``, else 503 ``{"status": "unhealthy"}``.
- ``POST /payments``: records a payment idempotently. The ``Idempotency-Key`` header is
  required and scoped per merchant: a retry with the same key and the same request gets
  the original payment back (201 the first time, 200 with the same body afterwards, and
  an ``Idempotent-Replayed: true`` header), the same key with a different request gets
  409. The database's ``UNIQUE (merchant_id, idempotency_key)`` plus
  ``INSERT ... ON CONFLICT DO NOTHING`` decides, so two concurrent requests can never
  both record a payment.

Every ``POST /payments`` prints one CloudWatch embedded metric format (EMF) document on
stdout: ``PaymentsProcessed``, ``PaymentsSucceeded``, ``PaymentsFailed`` (counts) and,
for a newly recorded payment, ``PaymentValue``.

Database access: the credentials come from Secrets Manager (``DB_SECRET_ARN``; the
secret's JSON carries ``username`` and ``password``, and may carry ``host``, ``port`` and
``dbname``, which ``DB_HOST``, ``DB_PORT`` and ``DB_NAME`` override). The connection uses
TLS with ``sslmode=verify-full`` against the CA bundle at ``DB_CA_BUNDLE`` and is cached
across invocations; a connection found broken is replaced once. The secret is cached too
(:class:`SecretCredentials`) and read again only when a login fails: with the
alternating-users rotation (``paymig.lambdas.rotation``) the credentials read last keep
working until the rotation after next, and an open connection is never cut off.

This module runs inside the Lambda image without the rest of paymig, so it imports only
the standard library, psycopg and boto3. The metric names repeat those in
``paymig.naming`` (a test keeps them equal).

The code is a pure core (event parsing, validation, fingerprint, responses, the EMF
document) and a thin shell (Secrets Manager, PostgreSQL, :func:`handler`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any, TypeVar

import boto3
import psycopg
from botocore.exceptions import BotoCoreError, ClientError

LOGGER = logging.getLogger("paymig.payment_api")

# ---------------------------------------------------------------- names (see paymig.naming)

PAYMENT_METRICS_NAMESPACE = "Paymig/Payments"
METRIC_PAYMENTS_PROCESSED = "PaymentsProcessed"
METRIC_PAYMENTS_SUCCEEDED = "PaymentsSucceeded"
METRIC_PAYMENTS_FAILED = "PaymentsFailed"
METRIC_PAYMENT_VALUE = "PaymentValue"
DIMENSION_ENVIRONMENT = "Environment"
DIMENSION_ALIAS = "Alias"
DIMENSION_CURRENCY = "Currency"
PAYMENT_COUNT_DIMENSION_SETS: tuple[tuple[str, ...], ...] = (
    (DIMENSION_ENVIRONMENT,),
    (DIMENSION_ENVIRONMENT, DIMENSION_ALIAS),
)
PAYMENT_VALUE_DIMENSION_SETS: tuple[tuple[str, ...], ...] = (
    (DIMENSION_ENVIRONMENT, DIMENSION_CURRENCY),
)

ENV_SECRET_ARN = "DB_SECRET_ARN"  # noqa: S105 - a variable name, not a secret
ENV_DB_HOST = "DB_HOST"
ENV_DB_PORT = "DB_PORT"
ENV_DB_NAME = "DB_NAME"
ENV_CA_BUNDLE = "DB_CA_BUNDLE"
ENV_ENVIRONMENT = "PAYMIG_ENVIRONMENT"

#: Where the Dockerfile puts the RDS CA bundle (used when ``DB_CA_BUNDLE`` is unset).
DEFAULT_CA_BUNDLE = "/opt/paymig/rds-ca/us-east-2-bundle.pem"
DEFAULT_DB_PORT = 5432
#: Seconds to wait for a TCP/TLS connection, and milliseconds a statement may run.
CONNECT_TIMEOUT_SECONDS = 5
STATEMENT_TIMEOUT_MS = 5000
APPLICATION_NAME = "paymig-payment-api"

#: Status every payment recorded by this API gets (there is no asynchronous capture).
RECORDED_STATUS = "succeeded"

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

_MERCHANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
_AMOUNT_RE = re.compile(r"[0-9]{1,16}(\.[0-9]{1,2})?")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
_PAYMENT_FIELDS = frozenset({"merchant_id", "account_id", "amount", "currency"})
_CENT = Decimal("0.01")

T = TypeVar("T")


# ================================================================ pure core


class RequestError(Exception):
    """A request the API refuses; ``str(error)`` is the one-line message for the client."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        """Keep the HTTP status to answer with and the message."""
        super().__init__(message)
        self.status = status


class ConfigurationError(Exception):
    """The function's environment or secret cannot give a database to connect to."""


@dataclass(frozen=True)
class HttpRequest:
    """The parts of an ALB Lambda-target event the API uses."""

    method: str
    path: str
    headers: Mapping[str, str]  # names in lower case
    raw_body: str
    base64_encoded: bool
    multi_value: bool  # the target group has multi-value headers on: answer in kind

    def body(self) -> bytes:
        """Return the body's bytes; raise :class:`RequestError` if its base64 is broken."""
        if not self.base64_encoded:
            return self.raw_body.encode()
        try:
            return base64.b64decode(self.raw_body, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(HTTPStatus.BAD_REQUEST, "body: invalid base64 encoding") from None


def parse_event(event: Mapping[str, Any]) -> HttpRequest:
    """Read an ALB event (single- or multi-value headers, body possibly base64)."""
    multi = event.get("multiValueHeaders")
    headers: dict[str, str] = {}
    if isinstance(multi, Mapping):
        for name, values in multi.items():
            if isinstance(values, list) and values:
                headers[str(name).lower()] = str(values[-1])
    else:
        for name, value in (event.get("headers") or {}).items():
            headers[str(name).lower()] = str(value)
    return HttpRequest(
        method=str(event.get("httpMethod", "")).upper(),
        path=str(event.get("path", "")),
        headers=headers,
        raw_body=str(event.get("body") or ""),
        base64_encoded=bool(event.get("isBase64Encoded")),
        multi_value=isinstance(multi, Mapping),
    )


@dataclass(frozen=True)
class PaymentRequest:
    """A validated ``POST /payments`` request, in canonical form."""

    merchant_id: str
    idempotency_key: str
    account_id: uuid.UUID
    amount: Decimal  # quantized to cents
    currency: str

    def fingerprint(self) -> str:
        """sha256 (hex) of the canonical request, idempotency key excluded.

        Equal for requests that mean the same payment (``"12.5"`` and ``"12.50"``,
        upper/lower-case uuids), different as soon as any paid-for field differs.
        """
        canonical = {
            "method": "POST",
            "path": "/payments",
            "merchant_id": self.merchant_id,
            "account_id": str(self.account_id),
            "amount": str(self.amount),
            "currency": self.currency,
        }
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _bad(message: str) -> RequestError:
    return RequestError(HTTPStatus.BAD_REQUEST, message)


def _string_field(payload: Mapping[str, Any], name: str) -> str:
    if name not in payload:
        raise _bad(f"{name}: required")
    value = payload[name]
    if not isinstance(value, str):
        raise _bad(f"{name}: must be a string")
    return value


def parse_payment(request: HttpRequest) -> PaymentRequest:
    """Validate a ``POST /payments`` request; raise :class:`RequestError` (400) if bad."""
    key = request.headers.get(IDEMPOTENCY_HEADER.lower())
    if key is None or key == "":
        raise _bad(f"{IDEMPOTENCY_HEADER}: header is required")
    if not _IDEMPOTENCY_KEY_RE.fullmatch(key):
        raise _bad(f"{IDEMPOTENCY_HEADER}: 1 to 255 visible ASCII characters")
    try:
        payload = json.loads(request.body().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad("body: not valid JSON") from None
    if not isinstance(payload, dict):
        raise _bad("body: must be a JSON object")
    unknown = sorted(set(payload) - _PAYMENT_FIELDS)
    if unknown:
        raise _bad(f"{unknown[0]}: unknown field")

    merchant_id = _string_field(payload, "merchant_id")
    if not _MERCHANT_RE.fullmatch(merchant_id):
        raise _bad("merchant_id: 1 to 64 characters of A-Z a-z 0-9 . _ : - (starting alphanumeric)")
    account_text = _string_field(payload, "account_id")
    try:
        account_id = uuid.UUID(account_text)
    except ValueError:
        raise _bad("account_id: must be a UUID") from None
    if "amount" in payload and not isinstance(payload["amount"], str):
        raise _bad('amount: must be a string decimal such as "12.50", not a JSON number')
    amount_text = _string_field(payload, "amount")
    if not _AMOUNT_RE.fullmatch(amount_text):
        raise _bad(
            "amount: must be a decimal with up to 16 digits before and 2 after the point, "
            'e.g. "12.50"'
        )
    amount = Decimal(amount_text).quantize(_CENT)
    if amount <= 0:
        raise _bad("amount: must be greater than 0")
    currency = _string_field(payload, "currency")
    if not _CURRENCY_RE.fullmatch(currency):
        raise _bad("currency: must be a 3-letter ISO 4217 code in upper case, e.g. USD")
    return PaymentRequest(merchant_id, key, account_id, amount, currency)


@dataclass(frozen=True)
class StoredPayment:
    """A row of ``payments`` as the API returns it."""

    payment_id: uuid.UUID
    account_id: uuid.UUID
    merchant_id: str
    amount: Decimal
    currency: str
    status: str
    created_at: datetime
    request_fingerprint: str = field(repr=False)

    def body(self) -> dict[str, str]:
        """Return the JSON body of the 201 and of every replay (identical by construction)."""
        return {
            "payment_id": str(self.payment_id),
            "merchant_id": self.merchant_id,
            "account_id": str(self.account_id),
            "amount": str(self.amount),
            "currency": self.currency,
            "status": self.status,
            "created_at": self.created_at.astimezone(UTC).isoformat(),
        }


@dataclass(frozen=True)
class PaymentOutcome:
    """What a ``POST /payments`` came to: the response and what the metrics count."""

    status: HTTPStatus
    body: dict[str, str]
    replayed: bool = False
    payment: StoredPayment | None = None

    @property
    def succeeded(self) -> bool:
        """A payment is on record for this request (new or replayed)."""
        return self.payment is not None

    @property
    def created(self) -> bool:
        """Whether this request recorded a new payment."""
        return self.payment is not None and not self.replayed

    @property
    def label(self) -> str:
        """One word for logs: created, replayed, rejected, conflict, unavailable, error."""
        if self.created:
            return "created"
        if self.replayed:
            return "replayed"
        return {
            HTTPStatus.CONFLICT: "conflict",
            HTTPStatus.SERVICE_UNAVAILABLE: "unavailable",
            HTTPStatus.INTERNAL_SERVER_ERROR: "error",
        }.get(self.status, "rejected")


def resolve_existing(existing: StoredPayment, fingerprint: str) -> PaymentOutcome:
    """Decide on a request whose key is already on record: replay it, or refuse it."""
    if existing.request_fingerprint == fingerprint:
        return PaymentOutcome(HTTPStatus.OK, existing.body(), replayed=True, payment=existing)
    return PaymentOutcome(
        HTTPStatus.CONFLICT,
        {"error": f"{IDEMPOTENCY_HEADER}: already used by this merchant for a different request"},
    )


def error_outcome(error: RequestError) -> PaymentOutcome:
    """Turn a refused request into its outcome."""
    return PaymentOutcome(error.status, {"error": str(error)})


def build_response(
    status: HTTPStatus,
    body: Mapping[str, str],
    *,
    headers: Mapping[str, str] | None = None,
    multi_value: bool = False,
) -> dict[str, Any]:
    """Build an ALB Lambda-target response with a JSON body."""
    all_headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
    all_headers.update(headers or {})
    response: dict[str, Any] = {
        "statusCode": int(status),
        "statusDescription": f"{int(status)} {status.phrase}",
        "isBase64Encoded": False,
        "body": json.dumps(body, separators=(",", ":")),
    }
    if multi_value:
        response["multiValueHeaders"] = {name: [value] for name, value in all_headers.items()}
    else:
        response["headers"] = all_headers
    return response


def alias_of(invoked_function_arn: str) -> str:
    """Return the qualifier (alias or version) of an invoked ARN; ``$LATEST`` if none."""
    parts = invoked_function_arn.split(":")
    return parts[7] if len(parts) == 8 and parts[7] else "$LATEST"


def emf_document(
    outcome: PaymentOutcome,
    *,
    environment: str,
    alias: str,
    function_version: str,
    request_id: str,
    timestamp_ms: int,
) -> dict[str, Any]:
    """Build the embedded-metric-format document of one ``POST /payments`` invocation."""
    directives: list[dict[str, Any]] = [
        {
            "Namespace": PAYMENT_METRICS_NAMESPACE,
            "Dimensions": [list(dims) for dims in PAYMENT_COUNT_DIMENSION_SETS],
            "Metrics": [
                {"Name": METRIC_PAYMENTS_PROCESSED, "Unit": "Count"},
                {"Name": METRIC_PAYMENTS_SUCCEEDED, "Unit": "Count"},
                {"Name": METRIC_PAYMENTS_FAILED, "Unit": "Count"},
            ],
        }
    ]
    document: dict[str, Any] = {
        "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": directives},
        DIMENSION_ENVIRONMENT: environment,
        DIMENSION_ALIAS: alias,
        METRIC_PAYMENTS_PROCESSED: 1,
        METRIC_PAYMENTS_SUCCEEDED: 1 if outcome.succeeded else 0,
        METRIC_PAYMENTS_FAILED: 0 if outcome.succeeded else 1,
        "StatusCode": int(outcome.status),
        "Outcome": outcome.label,
        "FunctionVersion": function_version,
        "RequestId": request_id,
    }
    if outcome.created and outcome.payment is not None:
        directives.append(
            {
                "Namespace": PAYMENT_METRICS_NAMESPACE,
                "Dimensions": [list(dims) for dims in PAYMENT_VALUE_DIMENSION_SETS],
                "Metrics": [{"Name": METRIC_PAYMENT_VALUE, "Unit": "None"}],
            }
        )
        document[DIMENSION_CURRENCY] = outcome.payment.currency
        document[METRIC_PAYMENT_VALUE] = float(outcome.payment.amount)
    return document


@dataclass(frozen=True)
class DbSettings:
    """Where and as whom to connect; the password never appears in ``repr``."""

    host: str
    port: int
    dbname: str
    user: str
    password: str = field(repr=False)
    ca_bundle: str


def db_settings(env: Mapping[str, str], secret: Mapping[str, Any]) -> DbSettings:
    """Combine the function's environment and the secret's JSON into connection settings.

    Works with an RDS-managed master secret (``username``/``password`` only) and with a
    rotation-style secret that also carries ``host``/``port``/``dbname``; the environment
    variables, when set, win.
    """
    for name in ("username", "password"):
        if not isinstance(secret.get(name), str) or not secret[name]:
            raise ConfigurationError(f"secret: field {name!r} missing or not a string")
    host = env.get(ENV_DB_HOST) or secret.get("host")
    if not isinstance(host, str) or not host:
        raise ConfigurationError(f"{ENV_DB_HOST}: not set and the secret carries no host")
    dbname = env.get(ENV_DB_NAME) or secret.get("dbname")
    if not isinstance(dbname, str) or not dbname:
        raise ConfigurationError(f"{ENV_DB_NAME}: not set and the secret carries no dbname")
    port_value = env.get(ENV_DB_PORT) or secret.get("port") or DEFAULT_DB_PORT
    try:
        port = int(port_value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{ENV_DB_PORT}: not a port number: {port_value!r}") from None
    if not 0 < port < 65536:
        raise ConfigurationError(f"{ENV_DB_PORT}: not a port number: {port_value!r}")
    return DbSettings(
        host=host,
        port=port,
        dbname=dbname,
        user=secret["username"],
        password=secret["password"],
        ca_bundle=env.get(ENV_CA_BUNDLE) or DEFAULT_CA_BUNDLE,
    )


# ================================================================ shell: AWS and PostgreSQL


def read_secret(client: Any, secret_arn: str) -> dict[str, Any]:
    """Fetch and decode a JSON secret; raise :class:`ConfigurationError` if it is not one."""
    try:
        # AWSCURRENT is the default; named, because during a rotation moto answers a
        # stage-less read with the new, still empty version.
        answer = client.get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise ConfigurationError(f"{ENV_SECRET_ARN}: cannot read the secret: {code}") from None
    try:
        value = json.loads(answer["SecretString"])
    except (KeyError, json.JSONDecodeError):
        raise ConfigurationError(f"{ENV_SECRET_ARN}: the secret is not a JSON string") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{ENV_SECRET_ARN}: the secret is not a JSON object")
    return value


def connect(settings: DbSettings) -> psycopg.Connection[Any]:
    """Open an autocommit connection over TLS, verifying the server's name and chain."""
    return psycopg.connect(
        host=settings.host,
        port=settings.port,
        dbname=settings.dbname,
        user=settings.user,
        password=settings.password,
        sslmode="verify-full",
        sslrootcert=settings.ca_bundle,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        application_name=APPLICATION_NAME,
        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        autocommit=True,
    )


class SecretCredentials:
    """The database settings from a secret, read once and again when a login fails.

    psycopg 3.3 reports a failed login without a SQLSTATE (libpq gives startup errors as
    text only, in the server's language), so any failed connection makes it read the
    secret again; it retries once, and only if the secret now holds other settings.
    """

    def __init__(self, client: Any, secret_arn: str, env: Mapping[str, str]) -> None:
        """Read nothing yet; ``env`` is consulted at each connection (it may override)."""
        self._client = client
        self._secret_arn = secret_arn
        self._env = env
        self._secret: dict[str, Any] | None = None

    def _read(self) -> DbSettings:
        """Read the secret; keep it only if it gives settings (a bad one is read again)."""
        secret = read_secret(self._client, self._secret_arn)
        settings = db_settings(self._env, secret)
        self._secret = secret
        return settings

    def connect(self) -> psycopg.Connection[Any]:
        """Connect with the cached settings; on failure, re-read the secret and retry once."""
        settings = self._read() if self._secret is None else db_settings(self._env, self._secret)
        try:
            return connect(settings)
        except psycopg.OperationalError as error:
            fresh = self._read()
            if fresh == settings:
                raise
            LOGGER.warning(
                "database login as %s failed (%s); the secret now names %s: retrying once",
                settings.user, str(error).strip().splitlines()[0], fresh.user,
            )  # fmt: skip
            return connect(fresh)


class _Runtime(threading.local):
    """What the function keeps between invocations of one execution environment.

    Lambda runs one invocation at a time per environment; keeping the state per thread
    also keeps it right if the handler is ever called from several threads (the tests
    do this to play two execution environments racing each other).
    """

    def __init__(self) -> None:
        self.credentials: SecretCredentials | None = None
        self.connection: psycopg.Connection[Any] | None = None

    def new_connection(self) -> psycopg.Connection[Any]:
        """Connect with the cached credentials (read from the secret on first use)."""
        if self.credentials is None:
            secret_arn = os.environ.get(ENV_SECRET_ARN)
            if not secret_arn:
                raise ConfigurationError(f"{ENV_SECRET_ARN}: not set")
            self.credentials = SecretCredentials(
                boto3.client("secretsmanager"), secret_arn, os.environ
            )
        self.connection = self.credentials.connect()
        return self.connection

    def drop_connection(self) -> None:
        """Close and forget the cached connection."""
        if self.connection is not None:
            self.connection.close()
        self.connection = None


_RUNTIME = _Runtime()


def cached_connection() -> psycopg.Connection[Any] | None:
    """Return the connection this thread's environment keeps, if any (tests, probes)."""
    return _RUNTIME.connection


def reset_runtime() -> None:
    """Close the cached connection and forget the cached credentials."""
    _RUNTIME.drop_connection()
    _RUNTIME.credentials = None


def with_connection(operation: Callable[[psycopg.Connection[Any]], T]) -> T:
    """Run ``operation`` on the cached connection; on a broken one, reconnect once."""
    conn = _RUNTIME.connection
    if conn is None or conn.closed:
        conn = _RUNTIME.new_connection()
    try:
        return operation(conn)
    except psycopg.OperationalError:
        if not conn.broken:
            raise
        LOGGER.warning("database connection lost; reconnecting once")
        _RUNTIME.drop_connection()
        return operation(_RUNTIME.new_connection())


def database_answers(conn: psycopg.Connection[Any]) -> bool:
    """Tell whether ``SELECT 1`` returns 1."""
    row = conn.execute("SELECT 1").fetchone()
    return row == (1,)


_RETURNING = (
    "id, account_id, merchant_id, amount, currency, status, created_at, request_fingerprint"
)
_INSERT_PAYMENT = f"""
    INSERT INTO payments (account_id, merchant_id, idempotency_key, amount, currency,
                          status, request_fingerprint)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (merchant_id, idempotency_key) DO NOTHING
    RETURNING {_RETURNING}
""".encode()
_SELECT_PAYMENT = f"""
    SELECT {_RETURNING} FROM payments WHERE merchant_id = %s AND idempotency_key = %s
""".encode()


def record_payment(conn: psycopg.Connection[Any], request: PaymentRequest) -> PaymentOutcome:
    """Insert the payment unless its key is on record; decide from what the database holds.

    Under READ COMMITTED a concurrent insert with the same key makes this ``INSERT`` wait
    for the other transaction, then do nothing; the ``SELECT`` that follows (a new
    snapshot) sees the committed row. A key whose first holder rolled back is free again,
    hence the second round.
    """
    fingerprint = request.fingerprint()
    for _ in range(2):
        try:
            with conn.transaction():
                row = conn.execute(
                    _INSERT_PAYMENT,
                    (request.account_id, request.merchant_id, request.idempotency_key,
                     request.amount, request.currency, RECORDED_STATUS, fingerprint),
                ).fetchone()  # fmt: skip
                if row is not None:
                    payment = StoredPayment(*row)
                    return PaymentOutcome(HTTPStatus.CREATED, payment.body(), payment=payment)
                row = conn.execute(
                    _SELECT_PAYMENT, (request.merchant_id, request.idempotency_key)
                ).fetchone()
        except psycopg.errors.ForeignKeyViolation:
            raise RequestError(
                HTTPStatus.UNPROCESSABLE_ENTITY, "account_id: no such account"
            ) from None
        if row is not None:
            return resolve_existing(StoredPayment(*row), fingerprint)
    raise RuntimeError("idempotency key neither insertable nor found twice in a row")


# ================================================================ handler


def _health(multi_value: bool) -> dict[str, Any]:
    try:
        healthy = with_connection(database_answers)
    except (psycopg.Error, ConfigurationError, BotoCoreError) as error:
        LOGGER.error("health check failed: %s: %s", type(error).__name__, error)
        healthy = False
    if healthy:
        return build_response(HTTPStatus.OK, {"status": "healthy"}, multi_value=multi_value)
    return build_response(
        HTTPStatus.SERVICE_UNAVAILABLE, {"status": "unhealthy"}, multi_value=multi_value
    )


def _create_payment(request: HttpRequest) -> PaymentOutcome:
    try:
        payment = parse_payment(request)
        return with_connection(lambda conn: record_payment(conn, payment))
    except RequestError as error:
        return error_outcome(error)
    except (psycopg.OperationalError, ConfigurationError, BotoCoreError) as error:
        LOGGER.error("payment not recorded: %s: %s", type(error).__name__, error)
        return PaymentOutcome(
            HTTPStatus.SERVICE_UNAVAILABLE,
            {"error": "database unavailable; retry with the same Idempotency-Key"},
        )
    except Exception:
        LOGGER.exception("payment not recorded: unexpected error")
        return PaymentOutcome(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})


_ROUTES: dict[str, str] = {"/health": "GET", "/payments": "POST"}


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point for ALB target-group events."""
    request = parse_event(event)
    allowed = _ROUTES.get(request.path)
    if allowed is None:
        return build_response(
            HTTPStatus.NOT_FOUND,
            {"error": f"path: no route {request.path}"},
            multi_value=request.multi_value,
        )
    if request.method != allowed:
        return build_response(
            HTTPStatus.METHOD_NOT_ALLOWED,
            {"error": f"method: {request.path} accepts {allowed} only"},
            headers={"Allow": allowed},
            multi_value=request.multi_value,
        )
    if request.path == "/health":
        return _health(request.multi_value)

    outcome = _create_payment(request)
    document = emf_document(
        outcome,
        environment=os.environ.get(ENV_ENVIRONMENT, "unknown"),
        alias=alias_of(str(getattr(context, "invoked_function_arn", ""))),
        function_version=str(getattr(context, "function_version", "$LATEST")),
        request_id=str(getattr(context, "aws_request_id", "")),
        timestamp_ms=int(time.time() * 1000),
    )
    sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    extra = {REPLAYED_HEADER: "true"} if outcome.replayed else {}
    return build_response(
        outcome.status, outcome.body, headers=extra, multi_value=request.multi_value
    )
