"""Price a synthesized stack: every resource through its rule, plus the stack-wide usage.

The inputs are the synthesized Terraform document (``cdk.tf.json``), the usage assumptions
(:class:`paymig.config.UsageConfig`), the price table and a traffic scale. Each rule
(:mod:`paymig.cost.rules`) turns one resource's configured attributes (instance class,
storage, Multi-AZ, retention, memory, rule blocks ...) and the usage into
:class:`~paymig.cost.line_item.LineItem` s whose ``basis`` states the formula in words;
:mod:`paymig.cost.registry` says which rule prices which type.

Months are 730 hours (the AWS pricing convention). Free tiers are not deducted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from paymig.config import UsageConfig
from paymig.cost.context import Context
from paymig.cost.line_item import LineItem
from paymig.cost.prices import PriceTable, PricingError
from paymig.cost.registry import FREE_TYPES, RULES, STACK_RULES, UNPRICED_BILLABLE
from paymig.cost.stack_view import StackView


def check_priceable(stack: StackView) -> None:
    """Fail loudly when a resource type has neither a rule nor a reason to be free."""
    for kind, items in stack.by_type.items():
        if kind in RULES or kind in FREE_TYPES:
            continue
        example = items[0].address
        if kind in UNPRICED_BILLABLE:
            raise PricingError(
                f"{kind} is billable but has no pricing rule ({len(items)} in the stack, e.g. "
                f"{example}); add one to paymig.cost.registry.RULES"
            )
        raise PricingError(
            f"{kind} is neither priced nor listed as free ({len(items)} in the stack, e.g. "
            f"{example}); add a rule to paymig.cost.registry.RULES or a reason to FREE_TYPES"
        )


@dataclass(frozen=True)
class Estimate:
    """The priced line items of one stack at one scale."""

    items: tuple[LineItem, ...]
    scale: float
    migration_months: int = 1

    @property
    def total_monthly_usd(self) -> float:
        """Monthly total during the migration (DMS running)."""
        return float(sum(i.monthly_usd for i in self.items))

    @property
    def steady_state_monthly_usd(self) -> float:
        """Monthly total after DMS is removed."""
        return float(sum(i.monthly_usd for i in self.items if not i.migration_only))

    def steady_state_items(self) -> list[LineItem]:
        """The items that remain after the migration."""
        return [i for i in self.items if not i.migration_only]

    def largest(self, n: int = 3, *, steady_state: bool = False) -> list[LineItem]:
        """The `n` most expensive items (of the steady state if asked)."""
        pool = self.steady_state_items() if steady_state else list(self.items)
        return sorted(pool, key=lambda i: (-i.monthly_usd, i.service, i.resource))[:n]

    def by_service(self) -> dict[str, list[LineItem]]:
        """Items grouped by service, most expensive service first."""
        groups: dict[str, list[LineItem]] = {}
        for item in self.items:
            groups.setdefault(item.service, []).append(item)
        return dict(
            sorted(groups.items(), key=lambda kv: (-sum(i.monthly_usd for i in kv[1]), kv[0]))
        )


def estimate(
    document: Mapping[str, Any],
    usage: UsageConfig,
    prices: PriceTable,
    *,
    scale: float = 1.0,
    api_record_name: str | None = None,
) -> Estimate:
    """Price every resource of a synthesized document at a traffic scale."""
    if scale <= 0:
        raise PricingError(f"--scale: must be greater than 0, got {scale:g}")
    stack = StackView(document)
    check_priceable(stack)
    ctx = Context(stack, usage, prices, scale=scale, api_record_name=api_record_name)
    items: list[LineItem] = []
    for kind, resources in stack.by_type.items():
        rule = RULES.get(kind)
        if rule is None:
            continue
        for res in resources:
            items.extend(rule(ctx, res))
    for stack_rule in STACK_RULES:
        items.extend(stack_rule(ctx))
    return Estimate(items=tuple(items), scale=scale, migration_months=usage.migration_months)


def service_total(items: Iterable[LineItem], service: str) -> float:
    """Monthly USD of one service's items."""
    return float(sum(i.monthly_usd for i in items if i.service == service))
