"""EventBridge rules."""

from __future__ import annotations

from paymig.cost.context import Context
from paymig.cost.line_item import LineItem
from paymig.cost.prices import PricingError
from paymig.cost.stack_view import Resource


def price_cloudwatch_event_rule(ctx: Context, res: Resource) -> list[LineItem]:
    """Rules on the default bus are free; a custom bus's events are not (no rule yet).

    Events AWS services publish to the default bus, and schedules, are not charged
    (EventBridge pricing); the invoked target is priced with its own resource.
    """
    bus = res.attrs.get("event_bus_name", "default")
    if bus != "default":
        raise PricingError(
            f"{res.address}: a rule on event bus {bus!r} (custom events are charged) has no "
            "pricing rule"
        )
    return []
