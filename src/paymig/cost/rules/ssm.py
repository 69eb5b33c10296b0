"""Systems Manager Parameter Store parameters."""

from __future__ import annotations

from paymig.cost.context import Context
from paymig.cost.line_item import LineItem, priced
from paymig.cost.prices import PricingError
from paymig.cost.stack_view import Resource


def price_ssm_parameter(ctx: Context, res: Resource) -> list[LineItem]:
    """Standard parameters are free; Advanced ones cost per month and per 10,000 API calls."""
    tier = res.attrs.get("tier", "Standard")
    if tier == "Standard":
        return []
    if tier not in ("Advanced", "Intelligent-Tiering"):
        raise PricingError(f"{res.address}: tier {tier!r} has no pricing rule")
    # Intelligent-Tiering picks Advanced when the value needs it: priced as Advanced.
    calls = ctx.usage.ssm_api_calls_per_month * res.count
    return [
        priced(
            "SSM",
            f"{res.label} (Advanced parameter)",
            float(res.count),
            ctx.price("ssm_advanced_parameter_month"),
            f"{res.count} {tier} parameter(s) x price per parameter-month",
        ),
        priced(
            "SSM",
            f"{res.label} API interactions",
            calls / 10_000,
            ctx.price("ssm_api_10k"),
            f"{calls:,} calls/month to an Advanced parameter x price per 10,000",
        ),
    ]
