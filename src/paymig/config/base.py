"""What every config section shares: the strict base model, operator fields, retention."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

#: Retention periods CloudWatch Logs accepts, in days.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653,
)  # fmt: skip

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
