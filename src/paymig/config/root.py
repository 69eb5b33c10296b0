"""The root of the configuration: one environment, its sections, and checks across them."""

from __future__ import annotations

import ipaddress

from pydantic import Field, model_validator

from paymig.config.app import AppConfig
from paymig.config.automation import AutomationConfig
from paymig.config.base import _Model
from paymig.config.controller import ControllerConfig
from paymig.config.cutover import CutoverConfig
from paymig.config.database import DatabaseConfig
from paymig.config.dns import DnsConfig
from paymig.config.migration import MigrationConfig
from paymig.config.network import SUBNET_TIERS, NetworkConfig, OnPremConfig
from paymig.config.observability import ObservabilityConfig
from paymig.config.replication import ReplicationConfig
from paymig.config.state import StateConfig
from paymig.config.tags import TagsConfig
from paymig.config.usage import UsageConfig
from paymig.config.validation import ValidationConfig
from paymig.config.waf import WafConfig


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
    # Required: `database.ca_bundle_path` has no default, so a default factory would
    # fail with an error that names neither the section nor the file's other problems.
    database: DatabaseConfig = Field(description="Aurora PostgreSQL cluster.")
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
    cutover: CutoverConfig = Field(
        default_factory=CutoverConfig, description="Write cutover and fallback."
    )
    automation: AutomationConfig = Field(
        default_factory=AutomationConfig, description="What an alarm does after cutover."
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
