"""The payment API: an AWS Lambda function behind an Application Load Balancer.

Routes:

- ``GET /health``: 200 ``{"status": "healthy"}`` only when the write target's database
  answers ``SELECT 1``, else 503 ``{"status": "unhealthy"}``.
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

Databases are declared, not configured here: ``PAYMIG_DB_SOURCE`` and ``PAYMIG_DB_AURORA``
each hold the JSON :mod:`paymig.runtime.database_env` parses (host, port, dbname, the
login secret's ARN, ``sslmode: verify-full`` and the SSM parameter holding the server's
CA bundle). Which of the two the API uses, for reads and writes alike, is decided at run
time: ``PAYMIG_WRITE_TARGET_PARAMETER`` names an SSM String parameter holding ``source``
or ``aurora``, read before each request and cached for :data:`WRITE_TARGET_CACHE_SECONDS`.
When it changes, the connection to the old database is closed and the new one is
connected; any other value is a configuration error (503, logged once), never a default.

Every connection is TLS with ``sslmode=verify-full`` against the declared server's CA
bundle, fetched once per execution environment from its SSM parameter. A connection is
cached across invocations; one found broken is replaced once. The login secret
(``username``, ``password``; anything else in it is ignored) is cached too
(:class:`SecretCredentials`) and read again only when a login fails: with the
alternating-users rotation (``paymig.lambdas.rotation``) the credentials read last keep
working until the rotation after next, and an open connection is never cut off.

This module runs inside the Lambda image without most of paymig: it imports the standard
library, psycopg, boto3 and two paymig modules that need nothing else,
:mod:`paymig.errors` and :mod:`paymig.runtime.database_env` (the image copies exactly
these; ``tests/test_payment_api_image.py`` checks it). The metric and variable names
repeat those in ``paymig.naming`` (a test keeps them equal).

The code is a pure core (event parsing, validation, fingerprint, responses, the EMF
document, the write-target cache) and a thin shell (SSM, Secrets Manager, PostgreSQL,
:func:`handler`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

import boto3
import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from paymig.errors import ConfigError
from paymig.runtime import database_env
from paymig.runtime.database_env import CaBundles, DatabaseTarget

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

ENV_DB_SOURCE = "PAYMIG_DB_SOURCE"
ENV_DB_AURORA = "PAYMIG_DB_AURORA"
ENV_WRITE_TARGET = "PAYMIG_WRITE_TARGET_PARAMETER"
ENV_ENVIRONMENT = "PAYMIG_ENVIRONMENT"

#: How long a read of the write-target parameter is trusted. A switch (cutover, fallback)
#: reaches every execution environment within this time, which the operator waits out;
#: reading it for every request would add an SSM round trip to each payment and, across
#: the API's concurrency, exceed Parameter Store's default throughput (40 transactions per
#: second per account and Region, shared by GetParameter and GetParameters: "AWS Systems
#: Manager endpoints and quotas"). At 5 s one environment reads it 0.2 times a second.
WRITE_TARGET_CACHE_SECONDS = 5.0
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


class ConfigurationError(ConfigError):
    """The function's environment, a secret or a parameter cannot give a database to use."""


class WriteTargetError(ConfigurationError):
    """The write-target parameter cannot be read or holds no known database."""


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


def parse_write_target(parameter: str, value: str) -> str:
    """Return the database the write-target parameter names; anything else is refused."""
    if value not in database_env.SERVERS:
        raise WriteTargetError(
            f"{ENV_WRITE_TARGET}: SSM parameter {parameter} holds {value[:64]!r}, "
            f"expected one of {', '.join(database_env.SERVERS)}"
        )
    return value


class WriteTargetCache:
    """The write target, read through ``read`` at most once per cache time.

    A read is trusted from the moment ``clock`` says it was made until ``seconds`` have
    passed; a clock that went backwards makes it stale too, so a value never looks
    fresher than it is. A failed read is not kept: the next request reads again.
    """

    def __init__(
        self,
        parameter: str,
        read: Callable[[], str],
        clock: Callable[[], float],
        seconds: float = WRITE_TARGET_CACHE_SECONDS,
    ) -> None:
        """Read nothing yet; ``read`` returns the parameter's raw value."""
        self.parameter = parameter
        self._read = read
        self._clock = clock
        self._seconds = seconds
        self._value: str | None = None
        self._read_at = 0.0

    def current(self) -> str:
        """The database to use now (re-read if stale); :class:`WriteTargetError` if unknown."""
        now = self._clock()
        if self._value is None or not self._read_at <= now < self._read_at + self._seconds:
            self._value = None
            self._value, self._read_at = self._read(), now
        return parse_write_target(self.parameter, self._value)


# ================================================================ shell: AWS and PostgreSQL


def aws_client(service: str) -> Any:
    """A boto3 client for ``service`` (made in one place, so tests can count its calls)."""
    return boto3.client(service)


def variable_of(target: DatabaseTarget) -> str:
    """The environment variable that declares ``target`` (``PAYMIG_DB_SOURCE``...)."""
    return f"{database_env.ENV_PREFIX}{target.name}"


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "error"))


def one_line(error: BaseException) -> str:
    """The error's message on one line (libpq reports each address it tried on its own)."""
    return " ".join(part.strip() for part in str(error).splitlines() if part.strip())


def read_write_target(ssm: Any, parameter: str) -> str:
    """The raw value of the write-target parameter; a failed read is a WriteTargetError."""
    try:
        answer = ssm.get_parameter(Name=parameter)
    except ClientError as error:
        reason = _error_code(error)
    except BotoCoreError as error:
        reason = type(error).__name__
    else:
        return str(answer["Parameter"]["Value"])
    raise WriteTargetError(f"{ENV_WRITE_TARGET}: cannot read SSM parameter {parameter}: {reason}")


def read_secret(client: Any, target: DatabaseTarget) -> dict[str, Any]:
    """Fetch and decode ``target``'s login secret; ConfigurationError if it is not JSON."""
    variable = variable_of(target)
    try:
        # AWSCURRENT is the default; named, because during a rotation moto answers a
        # stage-less read with the new, still empty version.
        answer = client.get_secret_value(SecretId=target.secret_arn, VersionStage="AWSCURRENT")
    except ClientError as error:
        raise ConfigurationError(
            f"{variable}: cannot read the secret: {_error_code(error)}"
        ) from None
    try:
        value = json.loads(answer["SecretString"])
    except (KeyError, json.JSONDecodeError):
        raise ConfigurationError(f"{variable}: the secret is not a JSON string") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{variable}: the secret is not a JSON object")
    return value


def connect(login: Mapping[str, Any]) -> psycopg.Connection[Any]:
    """Open an autocommit connection with ``database_env.connect_kwargs``'s ``login``.

    Those arguments carry ``sslmode=verify-full`` and the CA file: TLS, with the server's
    chain and its name checked.
    """
    return psycopg.connect(
        **login,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        application_name=APPLICATION_NAME,
        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        autocommit=True,
    )


class SecretCredentials:
    """A database's login from its secret, read once and again when a login fails.

    psycopg 3.3 reports a failed login without a SQLSTATE (libpq gives startup errors as
    text only, in the server's language), so any failed connection makes it read the
    secret again; it retries once, and only if the secret now holds another login.
    """

    def __init__(self, client: Any, target: DatabaseTarget, ca_file: Path) -> None:
        """Read nothing yet; connect to ``target``, verifying it with ``ca_file``."""
        self._client = client
        self._target = target
        self._ca_file = ca_file
        self._secret: dict[str, Any] | None = None

    def _login(self, secret: Mapping[str, Any]) -> dict[str, Any]:
        return database_env.connect_kwargs(self._target, secret, self._ca_file)

    def _read(self) -> dict[str, Any]:
        """Read the secret; keep it only if it gives a login (a bad one is read again)."""
        secret = read_secret(self._client, self._target)
        login = self._login(secret)
        self._secret = secret
        return login

    def connect(self) -> psycopg.Connection[Any]:
        """Connect with the cached login; on failure, re-read the secret and retry once."""
        login = self._read() if self._secret is None else self._login(self._secret)
        try:
            return connect(login)
        except psycopg.OperationalError as error:
            fresh = self._read()
            if fresh == login:
                raise
            LOGGER.warning(
                "%s: login as %s failed (%s); the secret now names %s: retrying once",
                variable_of(self._target), login["user"], one_line(error), fresh["user"],
            )  # fmt: skip
            return connect(fresh)


class _Process:
    """What every thread of the process shares: the CA bundle files and the clock.

    The clock is the wall clock, not ``time.monotonic``: Lambda freezes an execution
    environment between invocations, and whether the monotonic clock runs while frozen
    is not documented; a write target read before a freeze must not look fresh after it.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clock: Callable[[], float] = time.time
        self.ca_directory: Path | None = None
        self.ca_bundles: CaBundles | None = None

    def ca_file(self, target: DatabaseTarget) -> Path:
        """The file holding ``target``'s CA bundle, fetched from SSM on first use."""
        with self.lock:
            if self.ca_bundles is None:
                self.ca_directory = Path(tempfile.mkdtemp(prefix="paymig-ca-"))
                self.ca_bundles = CaBundles(aws_client("ssm"), self.ca_directory)
            try:
                return self.ca_bundles.path_for(target.ca_parameter)
            except ClientError as error:
                raise ConfigurationError(
                    f"{variable_of(target)}: cannot read the CA bundle from SSM parameter "
                    f"{target.ca_parameter}: {_error_code(error)}"
                ) from None

    def reset(self, clock: Callable[[], float]) -> None:
        """Forget the CA bundles (and delete their files); use ``clock`` from now on."""
        with self.lock:
            if self.ca_directory is not None:
                shutil.rmtree(self.ca_directory, ignore_errors=True)
            self.ca_directory, self.ca_bundles, self.clock = None, None, clock


_PROCESS = _Process()


class _Runtime(threading.local):
    """What the function keeps between invocations of one execution environment.

    Lambda runs one invocation at a time per environment; keeping the state per thread
    also keeps it right if the handler is ever called from several threads (the tests
    do this to play two execution environments racing each other).
    """

    def __init__(self) -> None:
        self.connection: psycopg.Connection[Any] | None = None
        self.forget()

    def forget(self) -> None:
        """Close the connection and forget everything, as a new environment starts."""
        self.drop_connection()
        self.write_target: WriteTargetCache | None = None
        self.reported: str | None = None  # the write-target error logged last
        self.target: DatabaseTarget | None = None
        self.credentials: SecretCredentials | None = None

    def _write_target(self) -> str:
        """The server to use now; an error is logged once, however many requests it fails."""
        try:
            if self.write_target is None:
                parameter = os.environ.get(ENV_WRITE_TARGET)
                if not parameter:
                    raise WriteTargetError(f"{ENV_WRITE_TARGET}: not set")
                ssm = aws_client("ssm")
                self.write_target = WriteTargetCache(
                    parameter, lambda: read_write_target(ssm, parameter), _PROCESS.clock
                )
            server = self.write_target.current()
        except WriteTargetError as error:
            if str(error) != self.reported:
                LOGGER.error("no write target, answering 503: %s", error)
                self.reported = str(error)
            raise
        if self.reported is not None:
            LOGGER.warning("write target is %s again", server)
            self.reported = None
        return server

    def resolve(self) -> DatabaseTarget:
        """The database this request uses: the write target, switched to if it changed."""
        server = self._write_target()
        if self.target is not None and self.target.server == server:
            return self.target
        if self.target is not None:
            LOGGER.warning(
                "write target changed from %s to %s: closing the connection to %s",
                self.target.server, server, self.target.server,
            )  # fmt: skip
        self.drop_connection()
        self.target, self.credentials = None, None
        declared = database_env.target(server.upper())
        if declared.server != server:
            raise ConfigurationError(
                f"{variable_of(declared)}: declares the {declared.server} server, "
                f"but it is the declaration of the {server} write target"
            )
        self.target = declared
        return declared

    def new_connection(self, target: DatabaseTarget) -> psycopg.Connection[Any]:
        """Connect to ``target`` with the cached credentials (made on first use)."""
        if self.credentials is None:
            self.credentials = SecretCredentials(
                aws_client("secretsmanager"), target, _PROCESS.ca_file(target)
            )
        self.connection = self.credentials.connect()
        return self.connection

    def drop_connection(self) -> None:
        """Close and forget the cached connection."""
        if self.connection is not None:
            self.connection.close()
        self.connection = None

    def describe(self) -> str:
        """The database in use, for log lines."""
        if self.target is None:
            return "no database selected"
        t = self.target
        return f"{variable_of(t)} ({t.server} at {t.host}:{t.port})"


_RUNTIME = _Runtime()


def cached_connection() -> psycopg.Connection[Any] | None:
    """Return the connection this thread's environment keeps, if any (tests, probes)."""
    return _RUNTIME.connection


def close_connection() -> None:
    """Close this thread's cached connection; the next request connects again."""
    _RUNTIME.drop_connection()


def reset_runtime(clock: Callable[[], float] = time.time) -> None:
    """Start afresh as a new execution environment would, reading time from ``clock``.

    Closes this thread's connection, forgets its credentials and write target, and the
    process's CA bundle files.
    """
    _RUNTIME.forget()
    _PROCESS.reset(clock)


def with_connection(operation: Callable[[psycopg.Connection[Any]], T]) -> T:
    """Run ``operation`` on the write target's connection; on a broken one, reconnect once."""
    target = _RUNTIME.resolve()
    conn = _RUNTIME.connection
    if conn is None or conn.closed:
        conn = _RUNTIME.new_connection(target)
    try:
        return operation(conn)
    except psycopg.OperationalError:
        if not conn.broken:
            raise
        LOGGER.warning("%s: database connection lost; reconnecting once", _RUNTIME.describe())
        _RUNTIME.drop_connection()
        return operation(_RUNTIME.new_connection(target))


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


def _log_failure(what: str, error: Exception) -> None:
    """One line naming the database and the reason (write-target errors are logged once)."""
    if isinstance(error, WriteTargetError):
        return
    LOGGER.error("%s: %s: %s: %s", what, _RUNTIME.describe(), type(error).__name__, one_line(error))


def _health(multi_value: bool) -> dict[str, Any]:
    try:
        healthy = with_connection(database_answers)
    except (psycopg.Error, ConfigError, BotoCoreError) as error:
        _log_failure("health check failed", error)
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
    except (psycopg.OperationalError, ConfigError, BotoCoreError) as error:
        _log_failure("payment not recorded", error)
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
