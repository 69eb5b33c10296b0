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
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from paymig.errors import ConfigError

#: Retention periods CloudWatch Logs accepts, in days.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653,
)  # fmt: skip

#: Subnet tiers in address order. Their CIDRs are derived, never typed by hand.
SUBNET_TIERS = ("public", "app", "data")

_OPERATOR = {"operator_supplied": True}


def _operator_field(description: str, **kwargs: Any) -> Any:
    """Declare a required field whose value only the operator knows."""
    return Field(description=description, json_schema_extra=_OPERATOR, **kwargs)


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
    flow_log_retention_days: int = Field(
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

    @field_validator("flow_log_retention_days")
    @classmethod
    def _retention_allowed(cls, value: int) -> int:
        """CloudWatch Logs accepts only a fixed set of retention periods."""
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"{value} is not a CloudWatch Logs retention period")
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
    bgp_asn: int = _operator_field(
        "BGP AS number of the customer gateway.", ge=1, le=4_294_967_294
    )
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
        "DNS name of the on-premises API that the `legacy` weighted record points to."
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
        if any(b <= a for a, b in zip(value, value[1:], strict=False)):
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

    @model_validator(mode="after")
    def _leaf_below_range(self) -> ValidationConfig:
        """Require leaf ranges smaller than top-level ranges."""
        if self.leaf_rows >= self.range_rows:
            raise ValueError(
                f"leaf_rows ({self.leaf_rows}) must be smaller than range_rows ({self.range_rows})"
            )
        return self


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
    validation: ValidationConfig = Field(
        default_factory=ValidationConfig, description="Data-consistency validator."
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
        if net.vpc_cidr.overlaps(self.onprem.cidr):
            raise ValueError(
                f"network.vpc_cidr: {net.vpc_cidr} overlaps the on-prem CIDR {self.onprem.cidr}"
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
        if message.startswith(location.split("[")[0] + ":"):
            parts.append(message)
        else:
            parts.append(f"{location}: {message}")
    return f"{path}: " + "; ".join(parts)


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


def _is_sample(value: Any) -> bool:
    """Whether a value comes from a range reserved for documentation."""
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
    """Operator-supplied fields that still hold a documentation sample value."""
    return [
        f"{name} = {_lookup(config, name)}"
        for name, _ in operator_fields(PaymigConfig)
        if _is_sample(_lookup(config, name))
    ]
