"""The typed configuration of one paymig environment.

One YAML file per environment (``config/<env>.yaml``) is loaded and validated once, at
the edge, into :class:`PaymigConfig`. Everything downstream takes the model and trusts it.

Fields marked ``operator_supplied`` have no default in code: only the operator knows them
(on-prem addresses, the hosted zone, the state bucket). The shipped YAML files carry
sample values for them taken from ranges reserved for documentation (RFC 5737 addresses,
RFC 2606 names, RFC 5398 AS numbers); :func:`sample_values_in_use` finds those so that
``paymig check`` can warn while one is still in place.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from paymig.errors import ConfigError

#: Retention periods CloudWatch Logs accepts, in days.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653,
)  # fmt: skip

#: Subnet tiers in address order. Their CIDRs are derived, never typed by hand.
SUBNET_TIERS = ("public", "app", "data")

_OPERATOR: dict[str, Any] = {"operator_supplied": True}


def _retention_allowed(value: int) -> int:
    """CloudWatch Logs accepts only a fixed set of retention periods."""
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"{value} is not a CloudWatch Logs retention period")
    return value


#: A CloudWatch Logs retention in days (one of :data:`LOG_RETENTION_DAYS`).
RetentionDays = Annotated[int, AfterValidator(_retention_allowed)]


def _operator_field(description: str, **kwargs: Any) -> Any:
    """Declare a required field whose value only the operator knows."""
    return Field(description=description, json_schema_extra=dict(_OPERATOR), **kwargs)


class _Model(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


HostName = Annotated[
    str,
    Field(max_length=253, pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"),
]


class TagsConfig(_Model):
    """Tags applied to every taggable resource."""

    owner: str = Field(min_length=1, description="Team that owns the environment.")
    cost_center: str = Field(min_length=1, description="Cost centre the spend is booked to.")
    data_classification: str = Field(
        min_length=1, description="Data classification of the environment, e.g. `pci-cde`."
    )

    def as_dict(self) -> dict[str, str]:
        """Return the tags as AWS tag keys and values."""
        return {
            "Owner": self.owner,
            "CostCenter": self.cost_center,
            "DataClassification": self.data_classification,
        }


class StateConfig(_Model):
    """Remote Terraform state: an S3 bucket with one key per environment."""

    bucket: str = _operator_field(
        "S3 bucket holding Terraform state (versioning on; see README for bootstrap).",
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
    )
    region: str = Field(default="us-east-2", description="Region of the state bucket.")
    key_prefix: str = Field(
        default="paymig",
        pattern=r"^[A-Za-z0-9._/-]+$",
        description="Key prefix; the state key is `<prefix>/<environment>/terraform.tfstate`.",
    )


class NetworkConfig(_Model):
    """The VPC and its three subnet tiers."""

    vpc_cidr: ipaddress.IPv4Network = Field(
        default=ipaddress.IPv4Network("10.0.0.0/16"), description="CIDR block of the VPC."
    )
    availability_zones: list[str] = Field(
        default=["us-east-2a", "us-east-2b", "us-east-2c"],
        description="Availability zones; one subnet per tier and one NAT gateway in each.",
    )
    subnet_prefix_length: int = Field(
        default=20,
        ge=16,
        le=28,
        description="Prefix length of every subnet, carved from the VPC CIDR in tier order.",
    )
    flow_log_retention_days: RetentionDays = Field(
        default=365,
        description="Retention of VPC flow logs in days (PCI DSS 10.5.1 asks for a year).",
    )

    @field_validator("vpc_cidr", mode="before")
    @classmethod
    def _strict_cidr(cls, value: Any) -> Any:
        """Reject a CIDR with host bits set rather than silently masking them."""
        if isinstance(value, str):
            try:
                return ipaddress.IPv4Network(value, strict=True)
            except ValueError as exc:
                raise ValueError(f"malformed CIDR {value!r}: {exc}") from None
        return value

    @field_validator("availability_zones")
    @classmethod
    def _enough_azs(cls, value: list[str]) -> list[str]:
        """Multi-AZ needs at least two distinct zones."""
        if len(value) < 2:
            raise ValueError(f"at least 2 availability zones are required, got {len(value)}")
        if len(set(value)) != len(value):
            raise ValueError("availability zones must be distinct")
        return value

    def subnet_cidrs(self) -> dict[str, list[ipaddress.IPv4Network]]:
        """Derive each tier's subnet CIDRs, one per availability zone, in tier order."""
        blocks = self.vpc_cidr.subnets(new_prefix=self.subnet_prefix_length)
        count = len(self.availability_zones)
        return {tier: [next(blocks) for _ in range(count)] for tier in SUBNET_TIERS}


class OnPremConfig(_Model):
    """The on-premises network and its Site-to-Site VPN."""

    cidr: ipaddress.IPv4Network = _operator_field("CIDR of the on-premises network.")
    customer_gateway_ip: ipaddress.IPv4Address = _operator_field(
        "Public IP of the on-premises VPN device (customer gateway)."
    )
    bgp_asn: int = _operator_field("BGP AS number of the customer gateway.", ge=1, le=4_294_967_294)
    static_routes_only: bool = Field(
        default=False,
        description="Use static routes instead of BGP on the VPN connection.",
    )

    @field_validator("cidr", mode="before")
    @classmethod
    def _strict_cidr(cls, value: Any) -> Any:
        """Reject a CIDR with host bits set rather than silently masking them."""
        if isinstance(value, str):
            try:
                return ipaddress.IPv4Network(value, strict=True)
            except ValueError as exc:
                raise ValueError(f"malformed CIDR {value!r}: {exc}") from None
        return value


class DnsConfig(_Model):
    """The public hosted zone and the API's record name."""

    hosted_zone_id: str = _operator_field(
        "Route 53 hosted zone id of `zone_name`.", pattern=r"^Z[A-Z0-9]{1,31}$"
    )
    zone_name: HostName = _operator_field("Public DNS zone, e.g. `payments.example.com`.")
    api_record_name: HostName = _operator_field(
        "Public name of the payment API; also the ACM certificate's domain."
    )
    legacy_endpoint: HostName = _operator_field(
        "DNS name of the on-premises API (the Host/SNI name its health check uses)."
    )
    legacy_addresses: list[ipaddress.IPv4Address] = _operator_field(
        "Public IPv4 addresses of the on-premises API: the `legacy` weighted A record. "
        "Route 53 needs both weighted records of one type, and `aws` is an alias A record.",
        min_length=1,
        max_length=8,
    )
    record_ttl_seconds: int = Field(
        default=60, ge=10, le=300, description="TTL of the weighted records."
    )

    @model_validator(mode="after")
    def _record_in_zone(self) -> DnsConfig:
        """The API record must live inside the hosted zone."""
        if not self.api_record_name.endswith("." + self.zone_name):
            raise ValueError(
                f"api_record_name {self.api_record_name!r} is not inside zone {self.zone_name!r}"
            )
        return self


class MigrationConfig(_Model):
    """The traffic migration plan."""

    phases: list[int] = Field(
        default=[0, 10, 50, 100],
        description="Percent of traffic on AWS at each phase; strictly increasing, ends at 100.",
    )
    initial_phase: int = Field(
        default=0, description="Phase the weighted records start at on the first apply."
    )

    @field_validator("phases")
    @classmethod
    def _phases_valid(cls, value: list[int]) -> list[int]:
        """Phases are percentages, strictly increasing, and the last one is 100."""
        if len(value) < 2:
            raise ValueError("at least two phases are required")
        if any(p < 0 or p > 100 for p in value):
            raise ValueError("every phase must be within 0-100")
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError(f"phases must be strictly increasing, got {value}")
        if value[-1] != 100:
            raise ValueError(f"the last phase must be 100, got {value[-1]}")
        return value

    @model_validator(mode="after")
    def _initial_is_a_phase(self) -> MigrationConfig:
        """The starting weight must be one of the phases."""
        if self.initial_phase not in self.phases:
            raise ValueError(f"initial_phase {self.initial_phase} is not one of {self.phases}")
        return self


class DatabaseConfig(_Model):
    """The Aurora PostgreSQL 14 cluster."""

    engine_version: str = Field(
        default="14.17",
        pattern=r"^14\.\d+$",
        description="Aurora PostgreSQL engine version, pinned (a 14.x release).",
    )
    # db.r6g.large (2 vCPU, 16 GiB) fits the workload with room: 50,000 payments a day is
    # under 1 write/s on average (tens/s at peak), and 16 GiB caches the hot part of a
    # 500 GB table's indexes. Two of them (writer + reader) stay well inside the budget.
    instance_class: str = Field(
        default="db.r6g.large",
        pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$",
        description="Instance class of the writer and the readers.",
    )
    instance_count: int = Field(
        default=2, ge=2, le=15, description="Instances: one writer plus readers in other AZs."
    )
    database_name: str = Field(
        default="payments", pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Initial database."
    )
    master_username: str = Field(
        default="paymig_admin",
        pattern=r"^[a-z][a-z0-9_]{0,15}$",
        description="Master user name (its password is generated and kept by RDS).",
    )
    backup_retention_days: int = Field(
        default=35, ge=1, le=35, description="Days of automated backups (PITR window)."
    )
    backup_window: str = Field(
        default="03:00-04:00", description="Daily backup window (UTC), hh:mm-hh:mm."
    )
    maintenance_window: str = Field(
        default="sun:04:30-sun:05:30", description="Weekly maintenance window (UTC)."
    )
    ca_cert_identifier: str = Field(
        default="rds-ca-rsa2048-g1",
        description="Server certificate authority, pinned so CA rotation is a planned change.",
    )
    monitoring_interval_seconds: int = Field(
        default=60, description="Enhanced monitoring interval: 1, 5, 10, 15, 30 or 60 seconds."
    )
    secret_rotation_days: int = Field(
        default=30, ge=1, le=365, description="Rotate the master credentials every N days."
    )
    log_retention_days: RetentionDays = Field(
        default=365, description="Retention of the cluster's PostgreSQL (audit) logs."
    )

    @field_validator("monitoring_interval_seconds")
    @classmethod
    def _monitoring_interval(cls, value: int) -> int:
        """RDS accepts only these enhanced monitoring intervals."""
        if value not in (1, 5, 10, 15, 30, 60):
            raise ValueError(f"{value} is not one of 1, 5, 10, 15, 30, 60")
        return value


class WafConfig(_Model):
    """The regional web ACL in front of the load balancer."""

    rate_limit_per_minute: int = Field(
        default=1000, ge=100, description="Requests per client IP per 60 s before blocking."
    )
    log_retention_days: RetentionDays = Field(default=365, description="Retention of WAF logs.")


class AppConfig(_Model):
    """The containerized payment API on Lambda behind the load balancer."""

    image_tag: str = Field(
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
        description="Tag of the payment API image in ECR (tags are immutable).",
    )
    memory_mb: int = Field(default=1024, ge=128, le=10240, description="Lambda memory.")
    timeout_seconds: int = Field(default=15, ge=1, le=900, description="Lambda timeout.")
    reserved_concurrency: int = Field(
        default=50, ge=1, description="Concurrency reserved for (and capping) the API."
    )
    provisioned_min: int = Field(
        default=2, ge=1, description="Minimum provisioned concurrency of the live alias."
    )
    provisioned_max: int = Field(
        default=10, ge=1, description="Maximum provisioned concurrency of the live alias."
    )
    target_utilization: float = Field(
        default=0.7,
        gt=0,
        lt=1,
        description="Target of LambdaProvisionedConcurrencyUtilization for scaling.",
    )
    listener_weights: dict[Literal["blue", "green"], int] = Field(
        default={"blue": 100, "green": 0},
        description="Weights of the blue and green target groups on the HTTPS listener.",
    )
    write_target: Literal["source", "aurora"] = Field(
        default="source",
        description=(
            "Database the AWS-side API writes to: `source` (the on-prem system of record, "
            "over the VPN) until cutover, then `aurora`. One writer means a rollback to "
            "legacy never strands a payment that only Aurora holds."
        ),
    )
    log_retention_days: RetentionDays = Field(
        default=365, description="Retention of the API's logs."
    )
    health_check_interval_seconds: int = Field(
        default=35, ge=5, le=300, description="ALB health check interval."
    )
    health_check_timeout_seconds: int = Field(
        default=30, ge=2, le=120, description="ALB health check timeout (below the interval)."
    )
    healthy_threshold: int = Field(default=2, ge=2, le=10, description="Checks to healthy.")
    unhealthy_threshold: int = Field(default=2, ge=2, le=10, description="Checks to unhealthy.")
    access_log_retention_days: int = Field(
        default=400, ge=365, description="Days ALB access logs are kept in S3 (PCI: a year+)."
    )

    @field_validator("listener_weights")
    @classmethod
    def _weights(cls, value: dict[str, int]) -> dict[str, int]:
        """Both target groups are named, with weights 0-100 that sum to 100."""
        if set(value) != {"blue", "green"}:
            raise ValueError("weights for both blue and green are required")
        if any(w < 0 or w > 100 for w in value.values()) or sum(value.values()) != 100:
            raise ValueError(f"weights must be 0-100 and sum to 100, got {value}")
        return value

    @model_validator(mode="after")
    def _scaling_consistent(self) -> AppConfig:
        """2 <= min <= max <= reserved, and the health check times out before its interval."""
        if self.provisioned_min > self.provisioned_max:
            raise ValueError(
                f"provisioned_min {self.provisioned_min} exceeds provisioned_max "
                f"{self.provisioned_max}"
            )
        if self.provisioned_max > self.reserved_concurrency:
            raise ValueError(
                f"provisioned_max {self.provisioned_max} exceeds reserved_concurrency "
                f"{self.reserved_concurrency}"
            )
        if self.health_check_timeout_seconds >= self.health_check_interval_seconds:
            raise ValueError("health_check_timeout_seconds must be below the interval")
        return self


# --------------------------------------------------------------------------- replication

#: Event categories AWS DMS publishes, per source type of an event subscription.
DMS_TASK_EVENT_CATEGORIES = (
    "configuration change", "creation", "deletion", "failure", "state change",
)  # fmt: skip
DMS_INSTANCE_EVENT_CATEGORIES = (
    "configuration change", "creation", "deletion", "failover", "failure", "low storage",
    "maintenance",
)  # fmt: skip

#: Names DMS accepts in a selection rule: letters, digits, `_`, `$`, and the `%` wildcard.
DmsObjectName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9_$%]+$")]
#: A schema or table name without wildcard (for table-settings rules).
PlainObjectName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9_$]+$")]


class SourceDatabaseConfig(_Model):
    """The on-premises PostgreSQL that AWS DMS reads from."""

    host: str = _operator_field(
        "Address (IP or DNS name) of the on-prem PostgreSQL, reachable over the VPN.",
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9.-]+$",
    )
    port: int = Field(default=5432, ge=1, le=65535, description="PostgreSQL port of the source.")
    database_name: str = Field(
        default="payments",
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z_][A-Za-z0-9_$]*$",
        description="Database on the source that holds the payment tables.",
    )
    ca_certificate_path: Path = _operator_field(
        "PEM file of the CA that signed the source server's certificate, relative to the "
        "repository root (the folder holding `config/`); DMS verifies the server with it "
        "(`verify-full`)."
    )
    engine_major_version: int = Field(
        default=14,
        ge=10,
        le=16,
        description="Major version of the source; DMS 3.5 supports PostgreSQL 10-16 as a source.",
    )

    @field_validator("ca_certificate_path")
    @classmethod
    def _pem_path(cls, value: Path) -> Path:
        """Require a relative `.pem` path, so the repository stays relocatable."""
        if value.is_absolute():
            raise ValueError(f"{value} must be relative to the repository root")
        if value.suffix not in (".pem", ".crt"):
            raise ValueError(f"{value} must be a PEM file (.pem or .crt)")
        return value


class TableRule(_Model):
    """One DMS selection rule: include or exclude tables by schema and table name."""

    schema_name: DmsObjectName = Field(description="Schema name; `%` matches any characters.")
    table_name: DmsObjectName = Field(description="Table name; `%` matches any characters.")
    action: Literal["include", "exclude"] = Field(
        description="`include` replicates matching tables; `exclude` wins over any include."
    )


class ParallelLoadRule(_Model):
    """Load one large table in parallel segments during the full load."""

    schema_name: PlainObjectName = Field(description="Schema of the table (no wildcard).")
    table_name: PlainObjectName = Field(description="Table to segment (no wildcard).")
    column: PlainObjectName | None = Field(
        default=None,
        description="Column to split on (`ranges`); omit to load each partition in parallel "
        "(`partitions-auto`, for partitioned tables).",
    )
    boundaries: list[str] = Field(
        default_factory=list,
        description="Upper bounds of the segments on `column`, ascending (`ranges` only).",
    )

    @model_validator(mode="after")
    def _ranges_complete(self) -> ParallelLoadRule:
        """Ranges need both a column and at least one boundary; partitions need neither."""
        if (self.column is None) != (not self.boundaries):
            raise ValueError("column and boundaries go together: set both for ranges, or neither")
        return self


class EventSubscriptionConfig(_Model):
    """Which DMS events reach the replication SNS topic."""

    task_categories: list[str] = Field(
        default=["failure", "state change", "configuration change"],
        description="Replication-task event categories to publish.",
    )
    instance_categories: list[str] = Field(
        default=["failure", "failover", "low storage", "configuration change", "maintenance"],
        description="Replication-instance event categories to publish.",
    )

    @field_validator("task_categories")
    @classmethod
    def _task_known(cls, value: list[str]) -> list[str]:
        """Only categories DMS publishes for replication tasks, and at least `failure`."""
        return _check_categories(value, DMS_TASK_EVENT_CATEGORIES)

    @field_validator("instance_categories")
    @classmethod
    def _instance_known(cls, value: list[str]) -> list[str]:
        """Only categories DMS publishes for replication instances, and at least `failure`."""
        return _check_categories(value, DMS_INSTANCE_EVENT_CATEGORIES)


def _check_categories(value: list[str], allowed: tuple[str, ...]) -> list[str]:
    """Reject unknown or duplicate categories, and a subscription without `failure`."""
    unknown = [c for c in value if c not in allowed]
    if unknown:
        raise ValueError(f"unknown event categories {unknown}; allowed: {list(allowed)}")
    if len(set(value)) != len(value):
        raise ValueError("event categories must be distinct")
    if "failure" not in value:
        raise ValueError("`failure` must be subscribed: a failed task must never go unnoticed")
    return value


class ReplicationConfig(_Model):
    """AWS DMS: full load of the on-prem PostgreSQL into Aurora, then CDC."""

    source: SourceDatabaseConfig = Field(description="The on-prem source database.")
    table_rules: list[TableRule] = Field(
        default_factory=lambda: [TableRule(schema_name="public", table_name="%", action="include")],
        description="Selection rules, in order; at least one `include`.",
    )
    lob_mode: Literal["none", "limited", "full"] = Field(
        default="limited",
        description="How DMS copies LOB columns (text, bytea, json...): `none` drops them, "
        "`limited` copies up to `lob_max_size_kb` (the task stops on truncation), `full` "
        "copies any size, slower.",
    )
    lob_max_size_kb: int = Field(
        default=32,
        ge=1,
        le=102_400,
        description="Largest LOB in `limited` mode, in KB (a larger value stops the task).",
    )
    # dms.r5.large (2 vCPU, 16 GiB): memory-optimised, which DMS recommends for CDC
    # because changes for tables still in full load are cached in memory before disk, and
    # batch apply sorts them there. 500 GB over the VPN is network-bound, not CPU-bound:
    # 8 parallel table loads keep two vCPUs busy. ~0.25 USD/h per AZ (Multi-AZ doubles).
    instance_class: str = Field(
        default="dms.r5.large",
        pattern=r"^dms\.[a-z0-9]+\.[a-z0-9]+$",
        description="Replication instance class; the default suits a 500 GB full load + CDC.",
    )
    # Storage holds task logs, cached changes and sorter swap, never the 500 GB itself
    # (DMS streams rows through). Headroom for 100 GB: changes cached during a full load of
    # at most 12 h at 50,000 tx/day and ~8 KB per decoded transaction = 25,000 x 8 KB
    # ~= 0.2 GB; logs at default severity ~1 GB/day, x30 days = 30 GB; one large
    # transaction spilled by the sorter (a batch re-price of 20 GB) = 20 GB. Total ~51 GB,
    # so 100 GB leaves ~2x headroom and keeps the `low storage` event quiet.
    allocated_storage_gb: int = Field(
        default=100,
        ge=5,
        le=6144,
        description="Replication instance storage in GB (logs, cached changes, swap).",
    )
    engine_version: str = Field(
        default="3.5.4",
        pattern=r"^3\.5\.\d+$",
        description="DMS engine version, pinned so that upgrades are planned changes "
        "(3.5.4 is the newest 3.5.x; it supports PostgreSQL 10-16 sources).",
    )
    multi_az: bool = Field(
        default=True, description="Run a standby replication instance in a second AZ."
    )
    create_service_roles: bool = Field(
        default=True,
        description="Create the account-wide `dms-vpc-role` and `dms-cloudwatch-logs-role`; "
        "set false when they already exist in the account (they are referenced instead).",
    )
    slot_name: str = Field(
        default="paymig_dms",
        pattern=r"^[a-z0-9_]{1,63}$",
        description="Logical replication slot DMS creates and reads on the source.",
    )
    heartbeat_frequency_minutes: int = Field(
        default=5,
        ge=1,
        le=60,
        description="DMS writes a heartbeat on the source this often so the slot's restart "
        "LSN advances (and WAL is recycled) even when the replicated tables are idle.",
    )
    max_full_load_subtasks: int = Field(
        default=8, ge=1, le=49, description="Tables loaded in parallel during the full load."
    )
    parallel_load: list[ParallelLoadRule] = Field(
        default_factory=list,
        description="Large tables loaded in parallel segments (table-settings rules).",
    )
    event_subscription: EventSubscriptionConfig = Field(
        default_factory=EventSubscriptionConfig, description="DMS events published to SNS."
    )

    @field_validator("table_rules")
    @classmethod
    def _rules_valid(cls, value: list[TableRule]) -> list[TableRule]:
        """At least one include, and no rule twice."""
        if not any(rule.action == "include" for rule in value):
            raise ValueError("at least one rule must have action `include`")
        keys = [(r.schema_name, r.table_name, r.action) for r in value]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate table rule")
        return value

    @model_validator(mode="after")
    def _parallel_tables_distinct(self) -> ReplicationConfig:
        """Allow one segmentation rule per table."""
        keys = [(r.schema_name, r.table_name) for r in self.parallel_load]
        if len(set(keys)) != len(keys):
            raise ValueError("parallel_load: a table appears more than once")
        return self


AlarmMetric = Literal[
    "5xx-rate", "p99-latency", "cdc-latency", "dms-task-failure", "aurora-cpu", "replica-lag"
]

#: Periods CloudWatch alarms accept: 10 and 30 s (high-resolution metrics only) or a
#: multiple of 60 s.
HIGH_RESOLUTION_PERIODS = (10, 30)


class AlarmSettings(_Model):
    """Threshold and evaluation of one metric alarm."""

    threshold: float = Field(
        ge=0,
        description=(
            "Alarm when the metric is above this value; unit per alarm: 5xx-rate percent, "
            "p99-latency seconds, cdc-latency seconds, dms-task-failure count, aurora-cpu "
            "percent, replica-lag milliseconds."
        ),
    )
    period_seconds: int = Field(
        default=60,
        description=(
            "Evaluation period: 10 or 30 (only for a metric published at high resolution) "
            "or a multiple of 60."
        ),
    )
    evaluation_periods: int = Field(
        default=3, ge=1, le=100, description="Number of most recent periods evaluated (N)."
    )
    datapoints_to_alarm: int = Field(
        default=2, ge=1, le=100, description="Breaching datapoints among them that alarm (M)."
    )
    treat_missing_data: Literal["breaching", "notBreaching", "ignore", "missing"] = Field(
        default="missing", description="How a period without data counts."
    )
    missing_data_reason: str = Field(
        min_length=10, description="Why this missing-data treatment is right for this metric."
    )
    high_resolution: bool = Field(
        default=False,
        description=(
            "The metric is published with 1 s storage resolution (required for 10/30 s "
            "periods; AWS service metrics such as ALB or RDS are not)."
        ),
    )

    @model_validator(mode="after")
    def _valid_evaluation(self) -> AlarmSettings:
        """CloudWatch's own rules: allowed periods and M of N with M <= N."""
        if self.period_seconds in HIGH_RESOLUTION_PERIODS:
            if not self.high_resolution:
                raise ValueError(
                    f"period_seconds {self.period_seconds} needs a high-resolution metric "
                    "(set high_resolution: true only if the metric is published at 1 s)"
                )
        elif self.period_seconds < 60 or self.period_seconds % 60:
            raise ValueError(
                f"period_seconds must be 10, 30 or a multiple of 60, got {self.period_seconds}"
            )
        if self.datapoints_to_alarm > self.evaluation_periods:
            raise ValueError(
                f"datapoints_to_alarm {self.datapoints_to_alarm} exceeds evaluation_periods "
                f"{self.evaluation_periods}"
            )
        return self

    @property
    def detection_seconds(self) -> int:
        """Worst-case time from a sustained breach to ALARM: M consecutive periods."""
        return self.period_seconds * self.datapoints_to_alarm


def _default_alarms() -> dict[AlarmMetric, AlarmSettings]:
    """Safe defaults for every alarm (the YAML files state each one explicitly)."""
    return {
        "5xx-rate": AlarmSettings(
            threshold=1.0,
            treat_missing_data="notBreaching",
            missing_data_reason="No requests in a period means no errors either.",
        ),
        "p99-latency": AlarmSettings(
            threshold=1.0,
            treat_missing_data="notBreaching",
            missing_data_reason="No requests in a period means no slow responses either.",
        ),
        "cdc-latency": AlarmSettings(
            threshold=30.0,
            treat_missing_data="breaching",
            missing_data_reason="A CDC task that stops reporting has stopped replicating.",
        ),
        "dms-task-failure": AlarmSettings(
            threshold=0.0,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data="notBreaching",
            missing_data_reason="Failure events are counted only when they happen.",
        ),
        "aurora-cpu": AlarmSettings(
            threshold=80.0,
            treat_missing_data="breaching",
            missing_data_reason="A writer that stops reporting CPU is down or unreachable.",
        ),
        "replica-lag": AlarmSettings(
            threshold=1000.0,
            treat_missing_data="breaching",
            missing_data_reason="A reader that stops reporting lag has lost replication.",
        ),
    }


EmailAddress = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,63}$")]
HttpsUrl = Annotated[str, Field(pattern=r"^https://[^\s]+$")]


class ObservabilityConfig(_Model):
    """Alarm settings the alarms are built from, and who is notified."""

    alarms: dict[AlarmMetric, AlarmSettings] = Field(
        default_factory=_default_alarms,
        description=(
            "One entry per alarm feeding the composite `migration-health` alarm: "
            "5xx-rate, p99-latency, cdc-latency, dms-task-failure, aurora-cpu, replica-lag."
        ),
    )
    notification_emails: list[EmailAddress] = Field(
        default_factory=list, description="E-mail subscriptions of the alarm topic."
    )
    notification_https_endpoints: list[HttpsUrl] = Field(
        default_factory=list, description="HTTPS subscriptions of the alarm topic."
    )

    @field_validator("alarms")
    @classmethod
    def _every_alarm(
        cls, value: dict[AlarmMetric, AlarmSettings]
    ) -> dict[AlarmMetric, AlarmSettings]:
        """Each alarm of the composite has its settings; none is left to chance."""
        missing = [m for m in get_args(AlarmMetric) if m not in value]
        if missing:
            raise ValueError(f"settings missing for alarm(s): {', '.join(missing)}")
        return value


class ControllerConfig(_Model):
    """The migration controller: gates, rollback and its time budget, lock."""

    cdc_latency_threshold_seconds: float = Field(
        default=30.0, gt=0, description="A shift is refused while CDC latency is above this."
    )
    cdc_latency_lookback_seconds: int = Field(
        default=300,
        ge=60,
        le=3600,
        description="Window searched for the latest CDC latency datapoint; none = gate fails.",
    )
    validation_max_age_minutes: int = Field(
        default=120,
        ge=1,
        description="A validation result older than this does not let a shift pass.",
    )
    stable_alias: Literal["blue", "green"] = Field(
        default="blue", description="Alias the ALB listener returns to 100% on rollback."
    )
    dwell_minutes: dict[int, int] = Field(
        default_factory=lambda: {10: 60, 50: 240},
        description=(
            "Minutes to stay at a phase (percent on AWS) before shifting to the next one; "
            "phases not listed have none."
        ),
    )
    composite_evaluation_seconds: int = Field(
        default=10,
        ge=0,
        le=300,
        description="Budgeted delay from a metric alarm's ALARM to the composite's ALARM.",
    )
    rollback_lambda_start_seconds: int = Field(
        default=15,
        ge=1,
        le=300,
        description=(
            "Budgeted SNS delivery, Lambda cold start and the ALB and Route 53 calls "
            "before the INSYNC wait."
        ),
    )
    route53_insync_timeout_seconds: int = Field(
        default=60,
        ge=1,
        le=300,
        description="Longest wait for a Route 53 change to be INSYNC before failing.",
    )
    lock_ttl_seconds: int = Field(
        default=600,
        ge=30,
        le=3600,
        description="A controller lock older than this is considered abandoned.",
    )

    @field_validator("dwell_minutes")
    @classmethod
    def _dwell_valid(cls, value: dict[int, int]) -> dict[int, int]:
        """Dwell times are non-negative and keyed by percentages."""
        for phase, minutes in value.items():
            if not 0 <= phase <= 100:
                raise ValueError(f"phase {phase} is not a percentage")
            if minutes < 0:
                raise ValueError(f"dwell of phase {phase} is negative ({minutes})")
        return value

    @model_validator(mode="after")
    def _lock_outlives_a_change(self) -> ControllerConfig:
        """The lock must outlive a whole change, INSYNC wait included."""
        if self.lock_ttl_seconds < 2 * self.route53_insync_timeout_seconds:
            raise ValueError(
                f"lock_ttl_seconds {self.lock_ttl_seconds} must be at least twice "
                f"route53_insync_timeout_seconds ({self.route53_insync_timeout_seconds})"
            )
        return self


class ValidationConfig(_Model):
    """The data-consistency validator (`paymig validate`, gate and post-migration check)."""

    grace_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description=(
            "Seconds after which a differing key is re-checked before it is reported, so "
            "that replication in flight is not reported as corruption. Used by the "
            "controller's gate and the post-migration check; `paymig validate` defaults to 0."
        ),
    )
    max_keys_reported: int = Field(
        default=100,
        ge=0,
        le=100_000,
        description="Keys listed per kind of difference and table; the full count is always given.",
    )
    workers: int = Field(
        default=4, ge=1, le=64, description="Parallel queries per side (connection pool size)."
    )
    range_rows: int = Field(
        default=5_000,
        ge=100,
        description="Target rows per top-level key range whose aggregate hash is compared.",
    )
    leaf_rows: int = Field(
        default=1_000,
        ge=1,
        description=(
            "A differing range with at most this many rows on each side is compared row by "
            "row (key and row hash); larger ones are split further."
        ),
    )
    fanout: int = Field(
        default=16, ge=2, le=256, description="Pieces a differing range is split into."
    )
    post_migration_check: bool = Field(
        default=False,
        description=(
            "Run the post-migration consistency and CDC-latency check on apply; enable it "
            "once DMS is replicating (the pre-migration check always runs)."
        ),
    )

    @model_validator(mode="after")
    def _leaf_below_range(self) -> ValidationConfig:
        """Require leaf ranges smaller than top-level ranges."""
        if self.leaf_rows >= self.range_rows:
            raise ValueError(
                f"leaf_rows ({self.leaf_rows}) must be smaller than range_rows ({self.range_rows})"
            )
        return self


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


class PaymigConfig(_Model):
    """One environment of the payment migration."""

    environment: str = Field(
        pattern=r"^[a-z][a-z0-9-]{1,15}$",
        description="Environment name; part of the stack name and the state key.",
    )
    region: str = Field(
        default="us-east-2", pattern=r"^[a-z]{2}-[a-z]+-\d$", description="AWS region."
    )
    budget_usd: float = Field(
        default=3000.0, gt=0, description="Monthly budget in USD that the cost gate enforces."
    )
    tags: TagsConfig = Field(description="Tags on every taggable resource.")
    state: StateConfig = Field(description="Remote state backend.")
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="VPC layout.")
    onprem: OnPremConfig = Field(description="On-premises network and VPN.")
    dns: DnsConfig = Field(description="Public DNS.")
    migration: MigrationConfig = Field(
        default_factory=MigrationConfig, description="Traffic migration phases."
    )
    database: DatabaseConfig = Field(
        default_factory=DatabaseConfig, description="Aurora PostgreSQL cluster."
    )
    waf: WafConfig = Field(default_factory=WafConfig, description="Web application firewall.")
    app: AppConfig = Field(description="Payment API on Lambda.")
    replication: ReplicationConfig = Field(description="AWS DMS replication from on-prem.")
    observability: ObservabilityConfig = Field(
        default_factory=ObservabilityConfig, description="Alarm settings and notifications."
    )
    controller: ControllerConfig = Field(
        default_factory=ControllerConfig, description="Migration controller and rollback."
    )
    validation: ValidationConfig = Field(
        default_factory=ValidationConfig, description="Data-consistency validator."
    )
    usage: UsageConfig = Field(
        default_factory=UsageConfig, description="Usage assumptions of the cost estimate."
    )

    @property
    def stack_name(self) -> str:
        """Name of the CDKTF stack (and its output folder) for this environment."""
        return f"paymig-{self.environment}"

    @property
    def state_key(self) -> str:
        """S3 key of this environment's Terraform state."""
        return f"{self.state.key_prefix}/{self.environment}/terraform.tfstate"

    @model_validator(mode="after")
    def _cross_checks(self) -> PaymigConfig:
        """Checks that span sections: AZs in region, subnet plan fits, no CIDR overlap."""
        for zone in self.network.availability_zones:
            if not zone.startswith(self.region) or len(zone) != len(self.region) + 1:
                raise ValueError(
                    f"network.availability_zones: {zone!r} is not a zone of region {self.region}"
                )
        net = self.network
        needed = len(SUBNET_TIERS) * len(net.availability_zones)
        if net.subnet_prefix_length <= net.vpc_cidr.prefixlen:
            raise ValueError(
                f"network.subnet_prefix_length: /{net.subnet_prefix_length} subnets do not fit "
                f"in VPC {net.vpc_cidr}"
            )
        available = 2 ** (net.subnet_prefix_length - net.vpc_cidr.prefixlen)
        if needed > available:
            raise ValueError(
                f"network.subnet_prefix_length: {needed} subnets of /{net.subnet_prefix_length} "
                f"do not fit in {net.vpc_cidr} (room for {available})"
            )
        source_host = self.replication.source.host
        try:
            source_ip: ipaddress.IPv4Address | None = ipaddress.IPv4Address(source_host)
        except ValueError:
            source_ip = None  # a DNS name: resolved on the VPN, not checkable here
        if source_ip is not None and source_ip not in self.onprem.cidr:
            raise ValueError(
                f"replication.source.host: {source_host} is outside the on-prem CIDR "
                f"{self.onprem.cidr}; DMS may only reach the on-prem network"
            )
        if net.vpc_cidr.overlaps(self.onprem.cidr):
            raise ValueError(
                f"network.vpc_cidr: {net.vpc_cidr} overlaps the on-prem CIDR {self.onprem.cidr}"
            )
        return self

    @model_validator(mode="after")
    def _dwell_keys_are_phases(self) -> PaymigConfig:
        """Every dwell time belongs to a configured phase."""
        unknown = sorted(set(self.controller.dwell_minutes) - set(self.migration.phases))
        if unknown:
            raise ValueError(
                f"controller.dwell_minutes: {unknown} not among migration.phases "
                f"{self.migration.phases}"
            )
        return self


# --------------------------------------------------------------------------- loading


def _format_location(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as a dotted field path (`a.b[2]`)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


def _format_validation_error(path: Path, error: ValidationError) -> str:
    """Render every validation problem on a single line."""
    parts = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling)"
        location = _format_location(tuple(item["loc"]))
        if not item["loc"] or message.startswith(location.split("[")[0] + ":"):
            parts.append(message)
        else:
            parts.append(f"{location}: {message}")
    return (f"{path}: " + "; ".join(parts)).replace("\n", "\\n")


def parse_config(text: str, source: Path) -> PaymigConfig:
    """Parse and validate YAML text; `source` names the file in error messages."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}{where}: YAML syntax error: {problem}") from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{source}: expected a mapping of settings, but the file is {kind}")
    try:
        return PaymigConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from None


def load_config(path: Path) -> PaymigConfig:
    """Read and validate one configuration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc}") from None
    return parse_config(text, path)


def default_config_dir() -> Path:
    """The `config/` folder: in the working directory if present, else the repository's."""
    local = Path.cwd() / "config"
    if local.is_dir():
        return local
    return Path(__file__).resolve().parents[2] / "config"


def resolve_config_path(env: str, config: Path | None) -> Path:
    """Choose the file to load: `--config` wins, otherwise `config/<env>.yaml`."""
    if config is not None:
        return config
    folder = default_config_dir()
    path = folder / f"{env}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ConfigError(
            f"{path}: no configuration for environment {env!r} (available: {', '.join(known)})"
        )
    return path


# --------------------------------------------------------------------------- sample values

_DOC_NETWORKS = tuple(
    ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
_DOC_NAMES = ("example.com", "example.net", "example.org")
_DOC_SUFFIXES = (".example", ".test", ".invalid")


def _normalise_sample(value: Any) -> Any:
    """Compare paths as text and address strings as addresses."""
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, str):
        try:
            return ipaddress.IPv4Address(value)
        except ValueError:
            return value
    return value


def _is_sample(value: Any) -> bool:
    """Whether a value (or any item of a list) comes from a documentation range."""
    if isinstance(value, list):
        return any(_is_sample(item) for item in value)
    return _is_sample_scalar(_normalise_sample(value))


def _is_sample_scalar(value: Any) -> bool:
    """Whether one value comes from a range reserved for documentation."""
    if isinstance(value, ipaddress.IPv4Network):
        return any(value.subnet_of(doc) for doc in _DOC_NETWORKS)
    if isinstance(value, ipaddress.IPv4Address):
        return any(value in doc for doc in _DOC_NETWORKS)
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 64496 <= value <= 64511 or 65536 <= value <= 65551  # RFC 5398
    if isinstance(value, str):
        lowered = value.lower()
        return (
            "example" in lowered
            or any(lowered == n or lowered.endswith("." + n) for n in _DOC_NAMES)
            or lowered.endswith(_DOC_SUFFIXES)
        )
    return False


def operator_fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield `(dotted name, FieldInfo)` of every operator-supplied field, depth first."""
    for name, info in model.model_fields.items():
        dotted = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from operator_fields(annotation, dotted + ".")
        elif isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get(
            "operator_supplied"
        ):
            yield dotted, info


def _lookup(config: BaseModel, dotted: str) -> Any:
    """Get a nested attribute by dotted path."""
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def sample_values_in_use(config: PaymigConfig) -> list[str]:
    """Operator-supplied fields (and alarm recipients) still holding a documentation sample."""
    names = [name for name, _ in operator_fields(PaymigConfig)] + list(SAMPLE_CHECKED_OPTIONAL)
    return [
        f"{name} = {_lookup(config, name)}" for name in names if _is_sample(_lookup(config, name))
    ]


#: Optional fields the shipped files fill with samples too: alarms would mail nobody real.
SAMPLE_CHECKED_OPTIONAL = (
    "observability.notification_emails",
    "observability.notification_https_endpoints",
)
