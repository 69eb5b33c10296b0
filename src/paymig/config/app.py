"""The `app` section: the payment API on Lambda behind the load balancer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from paymig.config.base import RetentionDays, _Model

#: Parameter Store's default throughput for GetParameter (per account and Region), the
#: bound on how often the API's environments may re-read the write target.
SSM_GET_PARAMETER_TPS = 40


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
        description=(
            "Weights of the blue and green target groups on the HTTPS listener when it is "
            "created; from then on the controller owns them (the stack ignores changes), "
            "as it owns the Route 53 weights."
        ),
    )
    alias_versions: dict[Literal["blue", "green"], str] = Field(
        default={"blue": "latest", "green": "latest"},
        description=(
            "Function version each alias serves: a published version number, or `latest` "
            "for the version `image_tag` publishes. Blue/green: pin the stable alias to the "
            "tested version and let the other follow `latest`, so a new image goes to green "
            "while blue stays. On the first apply both follow `latest` (nothing is published "
            "yet); `paymig check` warns while the stable alias follows `latest`."
        ),
    )
    write_target: Literal["source", "aurora"] = Field(
        default="source",
        description=(
            "Database the AWS-side API writes to on the first apply: `source` (the on-prem "
            "system of record, over the VPN). Afterwards `paymig cutover` and `paymig "
            "fallback` switch it at run time (an SSM parameter the API reads) and Terraform "
            "leaves it alone. One writer at a time means a rollback to legacy never strands a "
            "payment that only Aurora holds."
        ),
    )
    write_target_cache_seconds: float = Field(
        default=2.0,
        ge=0.5,
        le=30,
        description=(
            "How long the API trusts a read of the write-target parameter. A cutover or "
            "fallback waits this long (plus 0.5 s) after the switch, so it is most of the "
            "write-unavailability window. Each execution environment reads the parameter "
            "once per this time: `reserved_concurrency` / this must stay within Parameter "
            "Store's default 40 GetParameter transactions per second."
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

    @field_validator("alias_versions")
    @classmethod
    def _versions(cls, value: dict[str, str]) -> dict[str, str]:
        """Both aliases are named, each with `latest` or a version number."""
        if set(value) != {"blue", "green"}:
            raise ValueError("versions for both blue and green are required")
        for alias, version in value.items():
            if version != "latest" and not (version.isdigit() and int(version) >= 1):
                raise ValueError(f"{alias}: {version!r} is neither `latest` nor a version number")
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
        reads = self.reserved_concurrency / self.write_target_cache_seconds
        if reads > SSM_GET_PARAMETER_TPS:
            raise ValueError(
                f"write_target_cache_seconds {self.write_target_cache_seconds:g}: "
                f"{self.reserved_concurrency} environments would read the write target "
                f"{reads:g} times a second, above Parameter Store's {SSM_GET_PARAMETER_TPS} "
                "(raise it, or lower reserved_concurrency)"
            )
        return self
