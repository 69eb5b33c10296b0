"""The `controller` section: the migration controller's gates, rollback and lock."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from paymig.config.base import _Model


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
        description=(
            "Budgeted delay from a metric alarm's ALARM to the composite's ALARM and its "
            "action (AWS documents no bound: an assumption of the rollback budget)."
        ),
    )
    metric_ingestion_seconds: int = Field(
        default=15,
        ge=0,
        le=300,
        description=(
            "Budgeted delay from the end of a high-resolution period until the alarm sees "
            "its datapoint (embedded metrics travel through the function's logs; AWS "
            "documents no bound: an assumption of the rollback budget, measure it)."
        ),
    )
    lambda_queue_seconds: int = Field(
        default=5,
        ge=0,
        le=300,
        description=(
            "Budgeted wait of the alarm's event in Lambda's asynchronous queue before the "
            "rollback function starts (AWS documents no bound: an assumption)."
        ),
    )
    route53_submit_seconds: int = Field(
        default=30,
        ge=5,
        le=120,
        description=(
            "How long the rollback keeps retrying one Route 53 change that is throttled or "
            "cannot connect; part of the rollback budget."
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
