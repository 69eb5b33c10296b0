"""What a payment API request comes to: the stored payment, ALB response, EMF document.

Pure: built from values, no AWS, no database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from paymig.lambdas.payment_api_names import (
    DIMENSION_ALIAS,
    DIMENSION_CURRENCY,
    DIMENSION_ENVIRONMENT,
    METRIC_PAYMENT_VALUE,
    METRIC_PAYMENTS_FAILED,
    METRIC_PAYMENTS_PROCESSED,
    METRIC_PAYMENTS_SUCCEEDED,
    PAYMENT_COUNT_DIMENSION_SETS,
    PAYMENT_METRICS_NAMESPACE,
    PAYMENT_VALUE_DIMENSION_SETS,
)
from paymig.lambdas.payment_api_request import IDEMPOTENCY_HEADER, RequestError

REPLAYED_HEADER = "Idempotent-Replayed"


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
