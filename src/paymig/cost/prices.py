"""The dated on-demand price table (``prices_us_east_2.yaml``), loaded and validated.

No price literal lives anywhere else: pricing rules look prices up here by key, and an
unknown key or instance class is an error naming it.
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


class PriceTable(BaseModel):
    """All prices of one region."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(description="AWS region the prices apply to.")
    currency: str = Field(pattern=r"^USD$", description="Currency of every price.")
    prices: dict[str, Price] = Field(description="Prices by key.")
    instance_hours: dict[str, dict[str, Price]] = Field(
        description="Hourly instance prices by family (e.g. `dms`) and class."
    )

    def get(self, key: str) -> Price:
        """The price with this key, or a :class:`PricingError` naming it."""
        try:
            return self.prices[key]
        except KeyError:
            raise PricingError(f"price table {self.region}: no price {key!r}") from None

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
