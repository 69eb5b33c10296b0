"""The dated on-demand price table (``prices_us_east_2.yaml``), loaded and validated.

No price literal lives anywhere else: pricing rules look prices up here by key, and an
unknown key or instance class is an error naming it. The table also holds the other
published figures a rule needs: free allowances and documented constants (``quantities``),
vCPUs per instance class, and the engine support calendar (RDS Extended Support).
"""

from __future__ import annotations

import datetime
from functools import cache
from importlib import resources
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError

from paymig.errors import PaymigError

TABLE_FILE = "prices_us_east_2.yaml"


class PricingError(PaymigError):
    """The stack or the price table cannot be priced (missing rule, class or price)."""


class Price(BaseModel):
    """One published on-demand price with where and when it was taken."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    usd: Annotated[float, Field(ge=0, description="Price in USD per `unit`.")]
    unit: Annotated[str, Field(min_length=1, description="What one `usd` buys.")]
    source: Annotated[HttpUrl, Field(description="AWS pricing page publishing the figure.")]
    taken: Annotated[datetime.date, Field(description="Date the figure was recorded.")]
    note: Annotated[str, Field(min_length=1, description="Scope, tier and caveats.")]
    confirmed_by: Annotated[
        HttpUrl | None,
        Field(default=None, description="A stored public page stating the same figure."),
    ]


class Quantity(BaseModel):
    """A published non-price figure (an allowance or a documented constant) and its source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: Annotated[float, Field(ge=0, description="The figure, in `unit`.")]
    unit: Annotated[str, Field(min_length=1, description="What `value` counts.")]
    source: Annotated[HttpUrl, Field(description="AWS page publishing the figure.")]
    taken: Annotated[datetime.date, Field(description="Date the figure was recorded.")]
    note: Annotated[str, Field(min_length=1, description="Scope and caveats.")]
    confirmed_by: Annotated[
        HttpUrl | None,
        Field(default=None, description="A stored public page stating the same figure."),
    ]


def _years_after(day: datetime.date, years: int) -> datetime.date:
    """The same day `years` later (29 February becomes 1 March)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return datetime.date(day.year + years, 3, 1)


class EngineSupport(BaseModel):
    """When a major engine version leaves standard support (AWS's release calendar)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    standard_support_ends: Annotated[
        datetime.date, Field(description="Last day of standard support.")
    ]
    source: Annotated[HttpUrl, Field(description="AWS release calendar page.")]
    taken: Annotated[datetime.date, Field(description="Date the entry was recorded.")]
    note: Annotated[str, Field(min_length=1, description="What the calendar says, caveats.")]
    confirmed_by: Annotated[
        HttpUrl | None,
        Field(default=None, description="A stored public page stating the same date."),
    ]

    @property
    def extended_support_starts(self) -> datetime.date:
        """First day charged: the day after standard support ends."""
        return self.standard_support_ends + datetime.timedelta(days=1)

    @property
    def year3_starts(self) -> datetime.date:
        """First day of the third year of Extended Support (the higher rate)."""
        return _years_after(self.extended_support_starts, 2)

    @property
    def extended_support_ends(self) -> datetime.date:
        """First day after Extended Support (3 years after it starts)."""
        return _years_after(self.extended_support_starts, 3)


class VcpuTable(BaseModel):
    """vCPUs per instance class (Extended Support is charged per vCPU-hour)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Annotated[HttpUrl, Field(description="AWS page listing the instance classes.")]
    taken: Annotated[datetime.date, Field(description="Date the figures were recorded.")]
    classes: dict[str, Annotated[int, Field(gt=0)]] = Field(description="vCPUs by class.")


class PriceTable(BaseModel):
    """All prices of one region."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(description="AWS region the prices apply to.")
    currency: str = Field(pattern=r"^USD$", description="Currency of every price.")
    prices: dict[str, Price] = Field(description="Prices by key.")
    instance_hours: dict[str, dict[str, Price]] = Field(
        description="Hourly instance prices by family (e.g. `dms`) and class."
    )
    quantities: dict[str, Quantity] = Field(
        default_factory=dict, description="Free allowances and documented constants by key."
    )
    vcpus: VcpuTable | None = Field(default=None, description="vCPUs per instance class.")
    engine_support: dict[str, dict[str, EngineSupport]] = Field(
        default_factory=dict,
        description="Standard support calendar by engine and major version.",
    )

    def get(self, key: str) -> Price:
        """The price with this key, or a :class:`PricingError` naming it."""
        try:
            return self.prices[key]
        except KeyError:
            raise PricingError(f"price table {self.region}: no price {key!r}") from None

    def quantity(self, key: str) -> float:
        """The value of a published quantity, or a :class:`PricingError` naming it."""
        try:
            return self.quantities[key].value
        except KeyError:
            raise PricingError(f"price table {self.region}: no quantity {key!r}") from None

    def vcpus_of(self, instance_class: str) -> int:
        """VCPUs of an instance class, or an error naming the class."""
        classes = self.vcpus.classes if self.vcpus else {}
        try:
            return classes[instance_class]
        except KeyError:
            raise PricingError(
                f"price table {self.region}: no vCPU count for instance class "
                f"{instance_class!r}; add it to {TABLE_FILE} (vcpus)"
            ) from None

    def support_calendar(self, engine: str, major: str) -> EngineSupport:
        """The standard-support end of an engine's major version, or an error naming it."""
        try:
            return self.engine_support[engine][major]
        except KeyError:
            raise PricingError(
                f"price table {self.region}: no support calendar for {engine} {major}; add "
                f"its end of standard support to {TABLE_FILE} (engine_support)"
            ) from None

    def instance_hour(self, family: str, instance_class: str) -> Price:
        """The hourly price of an instance class, or an error naming the class."""
        classes = self.instance_hours.get(family)
        if classes is None:
            raise PricingError(f"price table {self.region}: no instance family {family!r}")
        try:
            return classes[instance_class]
        except KeyError:
            known = ", ".join(sorted(classes))
            raise PricingError(
                f"price table {self.region}: no {family} price for instance class "
                f"{instance_class!r} (priced: {known}); add it to {TABLE_FILE}"
            ) from None


def parse_price_table(text: str, source: str = TABLE_FILE) -> PriceTable:
    """Parse and validate a price table; errors name the file and the entry."""
    try:
        data = yaml.safe_load(text)
        return PriceTable.model_validate(data)
    except yaml.YAMLError as exc:
        raise PricingError(f"{source}: YAML syntax error: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PricingError(f"{source}: {where}: {first['msg']}") from None


@cache
def load_price_table() -> PriceTable:
    """The repository's us-east-2 price table (read once)."""
    text = resources.files("paymig.cost").joinpath(TABLE_FILE).read_text(encoding="utf-8")
    return parse_price_table(text)
