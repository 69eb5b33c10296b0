"""The `cutover` section: how `paymig cutover` and `paymig fallback` move the writes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from paymig.config.base import _Model

#: A PostgreSQL role name as the cutover grants and revokes it (no quoting needed).
RoleName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z_][a-z0-9_$]*$")]


class CutoverConfig(_Model):
    """The write cutover (source to Aurora) and the fallback after it."""

    legacy_write_roles: list[RoleName] = Field(
        default_factory=list,
        description=(
            "Roles on the source that the legacy application writes payments with; the "
            "cutover fences them together with the payment API's group. A role missing here "
            "is not missed: the fence is proved afterwards, and any login other than the "
            "administrator and the reverse apply login that can still write a payment table "
            "stops the cutover, named."
        ),
    )
    dwell_minutes: int = Field(
        default=60,
        ge=0,
        description="Minutes traffic must have stayed at 100% on AWS before a cutover.",
    )
    validation_max_age_minutes: int = Field(
        default=30,
        ge=1,
        description=(
            "A cutover needs a consistent validation checked after traffic reached 100% and "
            "younger than this."
        ),
    )
    sequence_margin: int = Field(
        default=1000,
        ge=1,
        description=(
            "Each sequence on the new writer is set to the old writer's value plus this. "
            "Neither DMS nor logical replication carries sequence state; the margin covers "
            "values the old writer handed out in transactions that had not committed when "
            "its last value was read (a nextval is never rolled back), at far more than the "
            "API's peak rate for the seconds the read takes."
        ),
    )
    drain_timeout_seconds: int = Field(
        default=120,
        ge=1,
        le=3600,
        description=(
            "Longest wait for the marker written after the fence to arrive on the new "
            "writer; past it the operation stops before anything is switched."
        ),
    )
    forward_slot_name: str = Field(
        default="paymig_forward",
        pattern=r"^[a-z0-9_]{1,63}$",
        description=(
            "Logical replication slot on the source that `paymig fallback` creates at the "
            "fallback point, from which forward replication (on-prem to Aurora) restarts."
        ),
    )
