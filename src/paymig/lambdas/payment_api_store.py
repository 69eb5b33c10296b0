"""The payment API's SQL: the health probe and the idempotent insert of a payment."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import psycopg

from paymig.lambdas.payment_api_outcome import PaymentOutcome, StoredPayment, resolve_existing
from paymig.lambdas.payment_api_request import PaymentRequest, RequestError

#: Status every payment recorded by this API gets (there is no asynchronous capture).
RECORDED_STATUS = "succeeded"


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
