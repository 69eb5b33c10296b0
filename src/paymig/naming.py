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

#: Environment variables the payment API Lambda reads (the infra half sets them): the two
#: databases it may use, declared as ``paymig.runtime.database_env`` reads them (the
#: write target, :data:`PAYMENT_API_ENV_WRITE_TARGET`, picks one at run time), and the
#: environment name of its metrics.
PAYMENT_API_ENV_DB_SOURCE = "PAYMIG_DB_SOURCE"
PAYMENT_API_ENV_DB_AURORA = "PAYMIG_DB_AURORA"
PAYMENT_API_ENV_ENVIRONMENT = "PAYMIG_ENVIRONMENT"

#: Handler the payment API image runs (its Dockerfile's CMD).
PAYMENT_API_HANDLER = "paymig.lambdas.payment_api.handler"


# ---------------------------------------------------------------- application tier


def payment_api_function(stack_name: str) -> str:
    """Name of the payment API Lambda function (and its IAM role)."""
    return f"{stack_name}-payment-api"


def db_setup_function(stack_name: str) -> str:
    """Name of the database setup function (the setup check Terraform invokes)."""
    return f"{stack_name}-db-setup"


# --------------------------------------------------------------------------- replication (DMS)


def dms_source_endpoint_id(stack_name: str) -> str:
    """Return the identifier of the DMS endpoint of the on-prem PostgreSQL."""
    return f"{resource_prefix(stack_name)}-onprem-source"


def dms_target_endpoint_id(stack_name: str) -> str:
    """Return the identifier of the DMS endpoint of the Aurora cluster."""
    return f"{resource_prefix(stack_name)}-aurora-target"


def login_secret_name(stack_name: str, server: str, client: str) -> str:
    """Name of the Secrets Manager secret of one client's login on one server."""
    return f"{resource_prefix(stack_name)}/{server}/{client}"


def dms_source_secret_name(stack_name: str) -> str:
    """Name of the secret DMS reads the on-prem source's credentials from."""
    return login_secret_name(stack_name, "source", "dms")


def ca_parameter_name(stack_name: str, server: str) -> str:
    """Name of the SSM parameter holding the CA bundle clients verify ``server`` with."""
    return f"/paymig/{stack_name}/ca/{server}"


def dms_event_topic_name(stack_name: str) -> str:
    """SNS topic that receives the DMS event subscriptions."""
    return f"{resource_prefix(stack_name)}-dms-events"


# --------------------------------------------------------------------------- traffic

#: Aliases of the payment API function; each has a target group behind the listener.
DEPLOYMENT_ALIASES = ("blue", "green")

#: Port of the ALB's HTTPS listener whose forward weights pick the alias.
HTTPS_LISTENER_PORT = 443


def alb_name(stack_name: str) -> str:
    """Name of the Application Load Balancer in front of the payment API."""
    return f"{resource_prefix(stack_name)}-alb"


def target_group_name(stack_name: str, alias: str) -> str:
    """Name of the lambda target group of one alias (`blue` or `green`)."""
    if alias not in DEPLOYMENT_ALIASES:
        raise ValueError(f"alias must be one of {DEPLOYMENT_ALIASES}, got {alias!r}")
    return f"{resource_prefix(stack_name)}-{alias}"


# --------------------------------------------------------------------------- alarms

#: The metric alarms of the migration, in display order; every one must be OK for a
#: shift. Units of their thresholds: 5xx-rate percent of requests, p99-latency seconds,
#: cdc-latency seconds, dms-task-failure count of error periods, aurora-cpu percent,
#: replica-lag milliseconds.
ALARM_METRICS = (
    "5xx-rate",
    "p99-latency",
    "cdc-latency",
    "dms-task-failure",
    "aurora-cpu",
    "replica-lag",
)

#: The alarms the composite `migration-health` alarm (the automatic rollback) watches:
#: the AWS side's user-facing health, which a traffic rollback fixes. The others page
#: people and gate shifts, and never move traffic (docs/controller.md).
ROLLBACK_ALARM_METRICS = ("5xx-rate", "p99-latency")
#: Replication alarms, armed (actions enabled) once CDC runs (`migration.stage: cdc`).
REPLICATION_ALARM_METRICS = ("cdc-latency", "dms-task-failure")

#: Suffix of the composite alarm that triggers the automatic rollback.
COMPOSITE_ALARM = "migration-health"


def alarm_name(stack_name: str, metric: str) -> str:
    """Name of the metric alarm on `metric` (one of :data:`ALARM_METRICS`)."""
    if metric not in ALARM_METRICS:
        raise ValueError(f"metric must be one of {ALARM_METRICS}, got {metric!r}")
    return f"{resource_prefix(stack_name)}-{metric}"


def composite_alarm_name(stack_name: str) -> str:
    """Name of the composite alarm over the rollback alarms."""
    return f"{resource_prefix(stack_name)}-{COMPOSITE_ALARM}"


def alarm_names(stack_name: str) -> tuple[str, ...]:
    """Every alarm the controller's gates read: the metric alarms, then the composite."""
    return (
        *(alarm_name(stack_name, m) for m in ALARM_METRICS),
        composite_alarm_name(stack_name),
    )


def alarm_topic_name(stack_name: str) -> str:
    """SNS topic the composite alarm notifies; it triggers the rollback Lambda."""
    return f"{resource_prefix(stack_name)}-migration-alarms"


def alert_topic_name(stack_name: str) -> str:
    """SNS topic that reaches people: single alarms and the controller's own notifications.

    The controller never publishes to the alarm topic, so it can never invoke itself.
    """
    return f"{resource_prefix(stack_name)}-migration-alerts"


def rollback_function_name(stack_name: str) -> str:
    """Name of the rollback Lambda function."""
    return f"{resource_prefix(stack_name)}-rollback"


# --------------------------------------------------------------------------- replication


def dms_instance_identifier(stack_name: str) -> str:
    """DMS replication instance identifier (dimension `ReplicationInstanceIdentifier`)."""
    return f"{resource_prefix(stack_name)}-dms"


def dms_task_identifier(stack_name: str) -> str:
    """DMS replication task identifier (dimension `ReplicationTaskIdentifier`)."""
    return f"{resource_prefix(stack_name)}-task"


def dms_reverse_task_identifier(stack_name: str) -> str:
    """Identifier of the reverse (Aurora to on-prem, CDC only) DMS task."""
    return f"{resource_prefix(stack_name)}-reverse-cdc"


#: Namespace and metric of the DMS CDC latency the controller's gate reads.
CDC_LATENCY_NAMESPACE = "AWS/DMS"
CDC_LATENCY_METRIC = "CDCLatencyTarget"


def cdc_latency_dimensions(stack_name: str, task_resource_id: str) -> dict[str, str]:
    """Dimensions of the CDC latency metric of this environment's task.

    CloudWatch names a DMS task by its resource id (the last field of the task's ARN),
    not by the identifier we give it; callers look the id up from the ARN.
    """
    return {
        "ReplicationInstanceIdentifier": dms_instance_identifier(stack_name),
        "ReplicationTaskIdentifier": task_resource_id,
    }


# --------------------------------------------------------------------------- controller

#: Custom metric of the live traffic split, published by the controller after each
#: change: dimensions `Environment` (config `environment`) and `SetIdentifier`
#: (`legacy` or `aws`), value the record's weight (percent of traffic), unit `Percent`.
TRAFFIC_METRIC_NAMESPACE = "Paymig/Migration"
TRAFFIC_METRIC_NAME = "TrafficWeight"


def audit_table_name(stack_name: str) -> str:
    """DynamoDB table of the controller's audit trail, lock and validation results."""
    return f"{resource_prefix(stack_name)}-migration-audit"


#: Key schema of the audit table: partition key `pk` (S) and sort key `sk` (S), both
#: strings, no secondary indexes, no TTL (the trail is kept).
AUDIT_PARTITION_KEY = "pk"
AUDIT_SORT_KEY = "sk"


def write_target_parameter_name(stack_name: str) -> str:
    """SSM parameter naming the database the payment API writes to (source or aurora)."""
    return f"/paymig/{resource_prefix(stack_name)}/write-target"


#: Environment variable naming :func:`write_target_parameter_name` in the payment API.
PAYMENT_API_ENV_WRITE_TARGET = "PAYMIG_WRITE_TARGET_PARAMETER"
#: Environment variable with ``app.write_target_cache_seconds`` in the payment API.
PAYMENT_API_ENV_WRITE_TARGET_CACHE = "PAYMIG_WRITE_TARGET_CACHE_SECONDS"
