"""The `database` section: the Aurora PostgreSQL cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from paymig.config.base import RetentionDays, _Model, _operator_field


class DatabaseConfig(_Model):
    """The Aurora PostgreSQL 14 cluster."""

    engine_version: str = Field(
        default="14.17",
        pattern=r"^14\.\d+$",
        description="Aurora PostgreSQL engine version, pinned (a 14.x release).",
    )
    # AWS's own default, written down: at the end of standard support (Aurora PostgreSQL
    # 14: 28 February 2027) the cluster stays on 14 under paid RDS Extended Support. The
    # alternative, `...-disabled`, makes AWS upgrade the major version by itself once
    # standard support ends (AWS re:Post, "RDS Extended Support behavior"), at a time
    # nobody chose, on a payments database that logical replication (DMS CDC, reverse
    # replication) depends on. Paying while a planned blue/green upgrade is prepared is
    # the safe choice; `paymig cost` shows the charge and `paymig check` warns before it.
    engine_lifecycle_support: Literal[
        "open-source-rds-extended-support", "open-source-rds-extended-support-disabled"
    ] = Field(
        default="open-source-rds-extended-support",
        description=(
            "RDS Extended Support enrolment of the cluster (set at creation). "
            "`open-source-rds-extended-support` (default, AWS's default): after the end of "
            "standard support the cluster keeps its major version and Extended Support is "
            "charged per vCPU-hour until a major-version upgrade. "
            "`open-source-rds-extended-support-disabled`: no charge, but AWS upgrades the "
            "major version automatically after standard support ends, and a cluster cannot be "
            "created on a version already past it."
        ),
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
    ca_bundle_path: Path = _operator_field(
        "PEM bundle of AWS's RDS CAs for the region (AWS publishes it at "
        "https://truststore.pki.rds.amazonaws.com/<region>/<region>-bundle.pem), reviewed and "
        "committed, relative to the repository root; every client of Aurora verifies the "
        "server with it (`verify-full`). It must hold the CA `ca_cert_identifier` names."
    )
    monitoring_interval_seconds: int = Field(
        default=60, description="Enhanced monitoring interval: 1, 5, 10, 15, 30 or 60 seconds."
    )
    secret_rotation_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="Rotate every database login (and RDS the master) every N days.",
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
