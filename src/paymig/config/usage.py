"""The `usage` section: the usage assumptions of the cost estimate."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from paymig.config.base import _Model


class UsageConfig(_Model):
    """Usage assumptions the cost estimate prices the stack with.

    Volumes marked "scales" are multiplied by `paymig cost --scale`; counts and sizes that
    do not follow traffic (the 500 GB full load, secrets, dashboards) are not.
    """

    migration_start: str | None = Field(
        default=None,
        description="First month of the migration (YYYY-MM): the DMS full load runs in it, "
        "DMS runs `migration_months` from it, and the 12-month cost table starts at it. "
        "Unset: the current month.",
    )
    transactions_per_day: int = Field(
        default=50_000, gt=0, description="Payments per day at scale 1 (scales)."
    )
    peak_hours_per_day: float = Field(
        default=4.0,
        gt=0,
        lt=24,
        description="Hours a day at peak traffic (provisioned concurrency and X-Ray sampling "
        "follow the daily profile).",
    )
    peak_share_of_requests: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Share of a day's API requests that arrive in the peak hours.",
    )
    api_requests_per_transaction: float = Field(
        default=1.0, gt=0, description="HTTP requests reaching the ALB per payment."
    )
    request_bytes: int = Field(default=2_048, ge=0, description="Bytes of one API request.")
    response_bytes: int = Field(default=1_024, ge=0, description="Bytes of one API response.")
    db_bytes_per_transaction: int = Field(
        default=8_192,
        ge=0,
        description="Bytes exchanged between the API and Aurora per payment (queries and results).",
    )
    cross_az_traffic_share: float = Field(
        default=0.67,
        ge=0,
        le=1,
        description="Share of API-to-database traffic crossing AZs (2 of 3 AZs reach a writer "
        "in another AZ).",
    )
    log_bytes_per_request: int = Field(
        default=1_024, ge=0, description="Lambda log bytes written per API request."
    )
    waf_log_bytes_per_request: int = Field(
        default=1_500, ge=0, description="WAF log bytes per inspected request."
    )
    alb_log_bytes_per_request: int = Field(
        default=500, ge=0, description="ALB access-log bytes per request (stored in S3)."
    )
    lambda_duration_ms: float = Field(
        default=200.0, gt=0, description="Average duration of one API invocation in ms."
    )
    other_lambda_invocations_per_month: int = Field(
        default=1_000,
        ge=0,
        description="Invocations of each Lambda function that does not serve the API "
        "(rollback, rotation).",
    )
    health_check_duration_ms: float = Field(
        default=50.0,
        gt=0,
        description="Average duration of one `/health` invocation (a `SELECT 1` on the "
        "write target).",
    )
    health_check_log_bytes: int = Field(
        default=300,
        ge=0,
        description="Lambda log bytes per health-check invocation (the platform's START, END "
        "and REPORT lines).",
    )
    health_check_db_bytes: int = Field(
        default=300, ge=0, description="Bytes exchanged with the database per health check."
    )
    route53_health_checkers: int = Field(
        default=16,
        ge=1,
        description="Route 53 health checkers probing an endpoint; each sends a request every "
        "`request_interval` (AWS documents checkers in several regions that do not "
        "coordinate, publishes no count; observers report about 15).",
    )
    dms_full_load_gb: float = Field(
        default=500.0, ge=0, description="Data copied by the DMS initial (full) load, in GB."
    )
    cdc_gb_per_month: float = Field(
        default=30.0, ge=0, description="Change data captured and applied per month (scales)."
    )
    dms_cross_az_share: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Share of DMS-to-Aurora traffic crossing AZs (1.0: assume the writer is "
        "never in the replication instance's AZ).",
    )
    dms_log_gb_per_month: float = Field(
        default=5.0,
        ge=0,
        description="DMS log volume each replication task writes to CloudWatch per month.",
    )
    aurora_load_write_amplification: float = Field(
        default=2.0,
        ge=1,
        description="Bytes of transaction log Aurora writes per byte of the initial load "
        "(heap rows plus index entries); Aurora counts write I/Os in 4 KB units.",
    )
    validation_passes_per_month: int = Field(
        default=30,
        ge=0,
        description="Full validation passes per month while DMS runs; each reads the whole "
        "table from Aurora storage (`aurora_storage_gb`).",
    )
    validation_slices_per_pass: int = Field(
        default=500, ge=1, description="Slices (validation function invocations) per pass."
    )
    validation_transitions_per_slice: int = Field(
        default=4, ge=1, description="Step Functions state transitions per slice."
    )
    validation_slice_seconds: float = Field(
        default=60.0, gt=0, description="Duration of one validation slice invocation."
    )
    migration_months: int = Field(
        default=3, ge=1, description="Months DMS runs before it is removed (steady state)."
    )
    aurora_storage_gb: float = Field(
        default=500.0, ge=0, description="Aurora storage at cut-over, in GB."
    )
    aurora_storage_growth_gb_per_month: float = Field(
        default=10.0, ge=0, description="Aurora storage growth per month (scales)."
    )
    storage_horizon_months: int = Field(
        default=12,
        ge=0,
        description="Months of growth the estimate includes (prices the storage reached then).",
    )
    aurora_io_per_transaction: float = Field(
        default=40.0, ge=0, description="Aurora storage I/O requests per payment."
    )
    aurora_backup_daily_change_gb: float = Field(
        default=2.0,
        ge=0,
        description="Changed data per day kept by backups beyond the free allowance (scales).",
    )
    aurora_log_gb_per_month: float = Field(
        default=5.0,
        ge=0,
        description="PostgreSQL log volume exported to CloudWatch per cluster (connections, "
        "audit) per month (scales).",
    )
    enhanced_monitoring_bytes_per_sample: int = Field(
        default=1_000,
        ge=0,
        description="Bytes of one enhanced-monitoring sample (RDSOSMetrics log) per instance.",
    )
    flow_log_gb_per_month: float = Field(
        default=30.0, ge=0, description="VPC flow log volume per month (scales)."
    )
    other_log_gb_per_month: float = Field(
        default=1.0,
        ge=0,
        description="Ingestion per month of any other log group the stack creates.",
    )
    log_storage_horizon_months: int = Field(
        default=36,
        ge=1,
        description="Months of logs stored by a group whose retention never expires.",
    )
    interface_endpoint_gb_per_month: float = Field(
        default=10.0,
        ge=0,
        description="Data through the interface VPC endpoints per month (calls to AWS APIs: "
        "traces, metrics, secrets, parameters), split evenly over them (scales).",
    )
    nat_processed_gb_per_month: float = Field(
        default=20.0,
        ge=0,
        description="Traffic through the NAT gateways per month (AWS API calls without an "
        "endpoint, updates) (scales).",
    )
    dns_queries_per_request: float = Field(
        default=1.0,
        ge=0,
        description="DNS queries reaching Route 53 per API request (1.0 ignores resolver "
        "caching: conservative).",
    )
    custom_metric_count: int = Field(
        default=20,
        ge=0,
        description="Custom metrics published (business KPIs, controller weights and DMS "
        "table statistics).",
    )
    kms_requests_per_month: int = Field(
        default=100_000, ge=0, description="KMS API requests per month (scales)."
    )
    secrets_api_calls_per_month: int = Field(
        default=50_000, ge=0, description="Secrets Manager API calls per month."
    )
    ssm_api_calls_per_month: int = Field(
        default=10_000,
        ge=0,
        description="Parameter Store API calls per Advanced-tier parameter per month "
        "(Standard-tier calls at standard throughput are free).",
    )
    blue_green_upgrade_hours: float = Field(
        default=72.0,
        gt=0,
        description="Hours the green environment of the major-version upgrade (Aurora "
        "blue/green deployment) runs before switchover and deletion.",
    )
    ecr_storage_gb: float = Field(default=2.0, ge=0, description="Images kept in ECR, in GB.")
    s3_log_retention_months: int = Field(
        default=12, ge=1, description="Months of ALB access logs kept in S3."
    )
    s3_other_bucket_gb: float = Field(
        default=1.0, ge=0, description="Stored GB of any other bucket the stack creates."
    )
    sns_publishes_per_month: int = Field(
        default=10_000, ge=0, description="Publishes per SNS topic per month."
    )
    sqs_requests_per_month: int = Field(
        default=100_000, ge=0, description="Requests per SQS queue per month (polling included)."
    )
    dynamodb_writes_per_month: int = Field(
        default=10_000, ge=0, description="Write request units per DynamoDB table per month."
    )
    dynamodb_reads_per_month: int = Field(
        default=100_000, ge=0, description="Read request units per DynamoDB table per month."
    )
    dynamodb_storage_gb: float = Field(
        default=1.0, ge=0, description="Stored GB per DynamoDB table."
    )

    @field_validator("migration_start")
    @classmethod
    def _month(cls, value: str | None) -> str | None:
        """A calendar month, YYYY-MM."""
        if value is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
            raise ValueError(f"{value!r} is not a month (YYYY-MM)")
        return value
