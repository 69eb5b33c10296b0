"""The `automation` section: what happens by itself when an alarm fires after cutover."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from paymig.config.base import _Model


class AutomationConfig(_Model):
    """What an alarm leads to once the writes are on Aurora (stage cut-over)."""

    after_cutover: Literal["notify", "fallback"] = Field(
        default="notify",
        description=(
            "`notify` (the safe default): the rollback function moves nothing and tells "
            "people to run `paymig fallback`. `fallback`: `paymig watch`, kept running on "
            "the host that ran the cutover, runs the fallback itself once the composite "
            "alarm has held ALARM for `fallback_alarm_seconds`. Traffic never goes to "
            "legacy by an alarm alone in either mode: its database is fenced."
        ),
    )
    fallback_alarm_seconds: int = Field(
        default=120,
        ge=0,
        le=3600,
        description=(
            "How long the composite alarm must have been in ALARM before `paymig watch` "
            "falls back: a fallback closes the writes for seconds and moves all traffic, "
            "so one short spike does not trigger it."
        ),
    )
    watch_poll_seconds: int = Field(
        default=10,
        ge=1,
        le=300,
        description="How often `paymig watch` reads the stage and the composite alarm.",
    )

    @property
    def automatic_fallback_seconds(self) -> float | None:
        """The ALARM hold before `paymig watch` falls back; None when people do (notify)."""
        return float(self.fallback_alarm_seconds) if self.after_cutover == "fallback" else None
