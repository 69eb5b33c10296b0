"""A priced quantity, the unit every rule returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paymig.cost.prices import Price


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
    migration_only: bool = False

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
        }


def priced(
    service: str,
    resource: str,
    quantity: float,
    price: Price,
    basis: str,
    *,
    unit: str | None = None,
    migration_only: bool = False,
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
        migration_only=migration_only,
    )
