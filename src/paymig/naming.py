"""Names of AWS resources that both halves must agree on.

The infra half creates resources with these names; the runtime half (controller,
rollback Lambda, rehearsal) finds them by the same names. Keep them here, derived from
the environment's stack name, so the two can never drift apart.
"""

from __future__ import annotations

#: Set identifiers of the two weighted records of the public API name.
LEGACY_SET_ID = "legacy"
AWS_SET_ID = "aws"


def resource_prefix(stack_name: str) -> str:
    """Prefix of every named resource of an environment (e.g. `paymig-prod`)."""
    return stack_name


# ---------------------------------------------------------------- payment API metrics
# Business KPIs the payment API publishes through the CloudWatch embedded metric format.
# The handler (paymig.lambdas.payment_api) cannot import this module in its image, so it
# repeats these values; tests/test_payment_api.py asserts that both agree.

#: CloudWatch namespace of the payment API's business metrics.
PAYMENT_METRICS_NAMESPACE = "Paymig/Payments"

#: Count of ``POST /payments`` requests handled (= succeeded + failed).
METRIC_PAYMENTS_PROCESSED = "PaymentsProcessed"
#: Count of requests that returned a recorded payment (201 new, or 200 idempotent replay).
METRIC_PAYMENTS_SUCCEEDED = "PaymentsSucceeded"
#: Count of requests that recorded nothing (bad input, key conflict, server error).
METRIC_PAYMENTS_FAILED = "PaymentsFailed"
#: Sum of newly recorded payment amounts (replays excluded), per currency.
METRIC_PAYMENT_VALUE = "PaymentValue"

#: Dimension: the environment name (``prod``, ``staging``), from the Lambda environment.
DIMENSION_ENVIRONMENT = "Environment"
#: Dimension: the Lambda alias (``blue``/``green``) the ALB invoked.
DIMENSION_ALIAS = "Alias"
#: Dimension of ``PaymentValue`` only: the ISO 4217 currency of the summed amounts.
DIMENSION_CURRENCY = "Currency"

#: Dimension sets of the three counters: per environment, and per environment and alias.
PAYMENT_COUNT_DIMENSION_SETS: tuple[tuple[str, ...], ...] = (
    (DIMENSION_ENVIRONMENT,),
    (DIMENSION_ENVIRONMENT, DIMENSION_ALIAS),
)
#: Dimension set of ``PaymentValue``: amounts in different currencies never add up.
PAYMENT_VALUE_DIMENSION_SETS: tuple[tuple[str, ...], ...] = (
    (DIMENSION_ENVIRONMENT, DIMENSION_CURRENCY),
)

#: Environment variables the payment API Lambda reads (the infra half sets them).
PAYMENT_API_ENV_SECRET_ARN = "DB_SECRET_ARN"  # noqa: S105 - a variable name
PAYMENT_API_ENV_DB_HOST = "DB_HOST"
PAYMENT_API_ENV_DB_PORT = "DB_PORT"
PAYMENT_API_ENV_DB_NAME = "DB_NAME"
PAYMENT_API_ENV_CA_BUNDLE = "DB_CA_BUNDLE"
PAYMENT_API_ENV_ENVIRONMENT = "PAYMIG_ENVIRONMENT"

#: Handler the payment API image runs (its Dockerfile's CMD).
PAYMENT_API_HANDLER = "paymig.lambdas.payment_api.handler"


# ---------------------------------------------------------------- application tier


def payment_api_function(stack_name: str) -> str:
    """Name of the payment API Lambda function (and its IAM role)."""
    return f"{stack_name}-payment-api"


def load_balancer(stack_name: str) -> str:
    """Name of the API's Application Load Balancer (at most 32 characters)."""
    return f"{stack_name}-alb"


def target_group(stack_name: str, alias: str) -> str:
    """Name of the target group in front of one alias (`blue` or `green`)."""
    return f"{stack_name}-{alias}"


# --------------------------------------------------------------------------- replication (DMS)


def dms_replication_instance_id(stack_name: str) -> str:
    """Return the identifier of the DMS replication instance."""
    return f"{resource_prefix(stack_name)}-dms"


def dms_replication_task_id(stack_name: str) -> str:
    """Return the identifier of the full-load-and-CDC replication task (the runbook starts it)."""
    return f"{resource_prefix(stack_name)}-full-load-and-cdc"


def dms_source_endpoint_id(stack_name: str) -> str:
    """Return the identifier of the DMS endpoint of the on-prem PostgreSQL."""
    return f"{resource_prefix(stack_name)}-onprem-source"


def dms_target_endpoint_id(stack_name: str) -> str:
    """Return the identifier of the DMS endpoint of the Aurora cluster."""
    return f"{resource_prefix(stack_name)}-aurora-target"


def dms_source_secret_name(stack_name: str) -> str:
    """Secrets Manager name of the on-prem source credentials DMS reads."""
    return f"{resource_prefix(stack_name)}/dms/source"


def dms_event_topic_name(stack_name: str) -> str:
    """SNS topic that receives the DMS event subscriptions."""
    return f"{resource_prefix(stack_name)}-dms-events"
