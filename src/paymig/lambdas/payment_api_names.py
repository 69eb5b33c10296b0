"""The payment API's metric and environment-variable names.

The handler cannot import :mod:`paymig.naming` in its image, so these repeat
its values; ``tests/test_payment_api.py`` keeps both equal.
"""

from __future__ import annotations

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
ENV_WRITE_TARGET_CACHE = "PAYMIG_WRITE_TARGET_CACHE_SECONDS"
ENV_ENVIRONMENT = "PAYMIG_ENVIRONMENT"
