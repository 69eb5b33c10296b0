"""The `replication` section: AWS DMS from the on-prem PostgreSQL into Aurora."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from paymig.config.base import _Model, _operator_field

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
    reverse_slot_name: str = Field(
        default="paymig_reverse",
        pattern=r"^[a-z0-9_]{1,63}$",
        description="Logical replication slot on Aurora that `paymig cutover` creates at the "
        "cutover point and the reverse DMS task (Aurora to on-prem) reads. The forward task "
        "names no slot: DMS creates its own when the task starts.",
    )
    iam_propagation_seconds: int = Field(
        default=30,
        ge=0,
        le=300,
        description="Seconds DMS resources wait after the account-wide DMS roles are created "
        "(IAM propagation), only on the apply that creates them.",
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
