"""The `usage` section: the usage assumptions of the cost estimate."""

from __future__ import annotations

from pydantic import Field

from paymig.config.base import _Model


class UsageConfig(_Model):
    """Usage assumptions the cost estimate prices the stack with.

    Volumes marked "scales" are multiplied by `paymig cost --scale`; counts and sizes that
    do not follow traffic (the 500 GB full load, secrets, dashboards) are not.
    """

    transactions_per_day: int = Field(
        default=50_000, gt=0, description="Payments per day at scale 1 (scales)."
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
    xray_sampled_share: float = Field(
        default=0.05, ge=0, le=1, description="Share of requests X-Ray records as traces."
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
        default=5.0, ge=0, description="DMS task log volume written to CloudWatch per month."
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
