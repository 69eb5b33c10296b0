"""The `observability` section: the alarms' settings and who is notified."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, field_validator, model_validator

from paymig.config.base import _Model

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


def _default_alarms() -> dict[AlarmMetric, AlarmSettings]:
    """Safe defaults for every alarm (the YAML files state each one explicitly)."""
    return {
        # The composite's members: high resolution, or the rollback budget cannot hold
        # (paymig.runtime.controller.budget).
        "5xx-rate": AlarmSettings(
            threshold=1.0,
            period_seconds=10,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            high_resolution=True,
            treat_missing_data="notBreaching",
            missing_data_reason="No requests in a period means no errors either.",
        ),
        "p99-latency": AlarmSettings(
            threshold=1.0,
            period_seconds=10,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            high_resolution=True,
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
            evaluation_periods=5,
            datapoints_to_alarm=3,
            treat_missing_data="notBreaching",
            missing_data_reason="Error lines are counted only when they happen.",
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
            "One entry per metric alarm: 5xx-rate and p99-latency feed the composite "
            "`migration-health` alarm (the automatic rollback); cdc-latency, "
            "dms-task-failure, aurora-cpu and replica-lag notify the alert topic and gate "
            "shifts. dms-task-failure counts error lines in the DMS task log and defaults "
            "to 3 of 5 one-minute periods with any (threshold 0): a full load logs "
            "recoverable errors (a connection DMS retries, a table it reloads) in single "
            "periods, which 1 of 1 would page on; a task that stops on an error is reported "
            "at once by the DMS `failure` event (`replication.event_subscription`)."
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
