"""The `migration` section: the deployment stage and the phases of the traffic shift."""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, field_validator, model_validator

from paymig.config.base import _Model

#: What the stack is deployed for, in order (see :attr:`MigrationConfig.stage`).
DeploymentStage = Literal["bootstrap", "full-load", "cdc", "finished"]
STAGES: tuple[DeploymentStage, ...] = ("bootstrap", "full-load", "cdc", "finished")


class MigrationConfig(_Model):
    """The deployment stage and the traffic migration plan."""

    stage: DeploymentStage = Field(
        default="bootstrap",
        description=(
            "What the stack is deployed for, changed only by an apply, in order: `bootstrap` "
            "(the first apply: no check reads the source logins the DBA has not stored "
            "yet), `full-load` (the pre-migration check runs; the operator then starts DMS), "
            "`cdc` (the full load is done: CDC alarms armed, foreign keys finalized on "
            "Aurora, the post-migration check runs), `finished` (both DMS tasks, the endpoints, "
            "the instance, the legacy weighted record and its health checks removed; the plan "
            "fails until `paymig finish` has stored the stage `complete`)."
        ),
    )

    finish_after_hours: float = Field(
        default=840,
        ge=0,
        description=(
            "How long the writes must have stayed on Aurora (stage `cut-over`, the way back "
            "open) before `paymig finish` may end the migration and removal of DMS and the "
            "legacy record is allowed. 840 h = 35 days: whatever day the cutover falls on, "
            "the hold then contains a whole month-end (the longest month is 31 days) plus "
            "the days after it when settlement files, chargebacks and the reconciliation "
            "against the card schemes and the bank arrive; a fallback stays possible until "
            "the business cycle has run once on Aurora. A fallback restarts the hold."
        ),
    )

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
        if any(b <= a for a, b in itertools.pairwise(value)):
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
