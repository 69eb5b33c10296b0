"""A priced quantity, the unit every rule returns, and when in the plan it is billed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from paymig.cost.prices import Price


class Timing(StrEnum):
    """Which months of the migration plan an item is billed in."""

    #: Every month the resource exists.
    recurring = "recurring"
    #: Every month DMS runs (from the load month to the end of the migration).
    migration = "migration"
    #: Once, in the load month (the initial full load and its validation).
    one_off = "one-off"


@dataclass(frozen=True)
class LineItem:
    """One priced quantity: `monthly_usd = quantity * unit_usd`."""

    service: str
    resource: str
    quantity: float
    unit: str
    unit_usd: float
    monthly_usd: float
    basis: str
    timing: Timing = Timing.recurring

    @property
    def migration_only(self) -> bool:
        """Whether the item ends with the migration (DMS removed)."""
        return self.timing is not Timing.recurring

    @property
    def flag(self) -> str:
        """The suffix the reports put after the resource name."""
        return {
            Timing.recurring: "",
            Timing.migration: " (migration only)",
            Timing.one_off: " (one-off, load month)",
        }[self.timing]

    def as_json(self) -> dict[str, Any]:
        """The item as the JSON output carries it."""
        return {
            "service": self.service,
            "resource": self.resource,
            "quantity": round(self.quantity, 6),
            "unit": self.unit,
            "unit_usd": self.unit_usd,
            "monthly_usd": round(self.monthly_usd, 6),
            "basis": self.basis,
            "timing": str(self.timing),
        }


def priced(
    service: str,
    resource: str,
    quantity: float,
    price: Price,
    basis: str,
    *,
    unit: str | None = None,
    timing: Timing = Timing.recurring,
) -> LineItem:
    """A line item of `quantity` units at `price` (quantity is in the price's unit)."""
    return LineItem(
        service=service,
        resource=resource,
        quantity=quantity,
        unit=unit or price.unit,
        unit_usd=price.usd,
        monthly_usd=quantity * price.usd,
        basis=basis,
        timing=timing,
    )
