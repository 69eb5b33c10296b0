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

This module runs inside the Lambda image without most of paymig: it and its
``payment_api_*`` modules import the standard library, psycopg, boto3 and two paymig
modules that need nothing else, :mod:`paymig.errors` and
:mod:`paymig.runtime.database_env` (the image copies exactly these;
``tests/test_payment_api_image.py`` checks it). The metric and variable names
(:mod:`~paymig.lambdas.payment_api_names`) repeat those in ``paymig.naming`` (a test
keeps them equal).

The code is a pure core and a thin shell, one module each concern:

- :mod:`~paymig.lambdas.payment_api_request`: the ALB event, a payment's validation and
  fingerprint;
- :mod:`~paymig.lambdas.payment_api_outcome`: the stored payment, responses, the EMF
  document;
- :mod:`~paymig.lambdas.payment_api_write_target`: the write-target value and its cache;
- :mod:`~paymig.lambdas.payment_api_connections` (shell): SSM, Secrets Manager, the
  connection kept between invocations;
- :mod:`~paymig.lambdas.payment_api_store` (shell): the SQL;
- this module: the routes and :func:`handler`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import psycopg
from botocore.exceptions import BotoCoreError

from paymig.errors import ConfigError
from paymig.lambdas.payment_api_connections import describe_database, one_line, with_connection
from paymig.lambdas.payment_api_names import ENV_ENVIRONMENT
from paymig.lambdas.payment_api_outcome import (
    REPLAYED_HEADER,
    PaymentOutcome,
    alias_of,
    build_response,
    emf_document,
    error_outcome,
)
from paymig.lambdas.payment_api_request import HttpRequest, RequestError, parse_event, parse_payment
from paymig.lambdas.payment_api_store import database_answers, record_payment
from paymig.lambdas.payment_api_write_target import WriteTargetError

LOGGER = logging.getLogger("paymig.payment_api")


def _log_failure(what: str, error: Exception) -> None:
    """One line naming the database and the reason (write-target errors are logged once)."""
    if isinstance(error, WriteTargetError):
        return
    LOGGER.error("%s: %s: %s: %s", what, describe_database(), type(error).__name__, one_line(error))


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
