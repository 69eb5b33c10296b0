"""The `validation` section: the data-consistency validator."""

from __future__ import annotations

from pydantic import Field, model_validator

from paymig.config.base import _Model


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
