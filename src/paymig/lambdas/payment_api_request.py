"""Requests to the payment API: the ALB event read, a ``POST /payments`` body validated.

Pure: no AWS, no database. A refused request is a :class:`RequestError` carrying the HTTP
status and the one line the client gets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from typing import Any

IDEMPOTENCY_HEADER = "Idempotency-Key"

_MERCHANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
_AMOUNT_RE = re.compile(r"[0-9]{1,16}(\.[0-9]{1,2})?")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
_PAYMENT_FIELDS = frozenset({"merchant_id", "account_id", "amount", "currency"})
_CENT = Decimal("0.01")


class RequestError(Exception):
    """A request the API refuses; ``str(error)`` is the one-line message for the client."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        """Keep the HTTP status to answer with and the message."""
        super().__init__(message)
        self.status = status


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
