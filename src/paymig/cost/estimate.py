"""Price a synthesized stack for one month: every resource through its rule, plus stack usage.

The inputs are the synthesized Terraform document (``cdk.tf.json``), the usage assumptions
(:class:`paymig.config.UsageConfig`), the price table, the migration plan, the month and
a traffic scale. Each rule (:mod:`paymig.cost.rules`) turns one resource's configured
attributes (instance class, storage, Multi-AZ, retention, memory, rule blocks ...) and the
usage into :class:`~paymig.cost.line_item.LineItem` s whose ``basis`` states the formula
in words and whose ``timing`` says which months bill it; :mod:`paymig.cost.registry` says
which rule prices which type.

Months are 730 hours (the AWS pricing convention); dated charges (RDS Extended Support,
key rotations) are placed in the month by the calendar. Free allowances AWS applies to a
resource by itself are deducted; free tiers that expire or depend on the account are not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from paymig.config import UsageConfig
from paymig.cost.context import ConfigFacts, Context
from paymig.cost.line_item import LineItem, Timing
from paymig.cost.months import MigrationPlan, Month, Phase
from paymig.cost.prices import PriceTable, PricingError
from paymig.cost.registry import FREE_TYPES, RULES, STACK_RULES, UNPRICED_BILLABLE
from paymig.cost.stack_view import StackView

#: What each phase of the plan bills.
BILLED: Mapping[Phase, frozenset[Timing]] = {
    Phase.before: frozenset({Timing.recurring, Timing.migration}),
    Phase.load: frozenset(Timing),
    Phase.migration: frozenset({Timing.recurring, Timing.migration}),
    Phase.steady: frozenset({Timing.recurring}),
}


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


def _sum(items: Iterable[LineItem]) -> float:
    """Monthly USD of some items."""
    return float(sum(i.monthly_usd for i in items))


@dataclass(frozen=True)
class Estimate:
    """The priced line items of one stack in one month of the plan, at one scale."""

    items: tuple[LineItem, ...]
    scale: float
    month: Month
    plan: MigrationPlan

    @property
    def migration_months(self) -> int:
        """Months DMS runs."""
        return self.plan.months

    @property
    def phase(self) -> Phase:
        """Where the month falls in the plan."""
        return self.plan.phase(self.month)

    def billed_items(self) -> list[LineItem]:
        """The items the month's bill shows."""
        billed = BILLED[self.phase]
        return [i for i in self.items if i.timing in billed]

    @property
    def bill_usd(self) -> float:
        """The month's bill."""
        return _sum(self.billed_items())

    @property
    def total_monthly_usd(self) -> float:
        """A migration month at this month's prices: DMS running, without the one-off load."""
        return _sum(i for i in self.items if i.timing is not Timing.one_off)

    @property
    def load_month_usd(self) -> float:
        """The load month at this month's prices: a migration month plus the one-off load."""
        return _sum(self.items)

    @property
    def one_off_usd(self) -> float:
        """The one-off charges of the initial load."""
        return _sum(i for i in self.items if i.timing is Timing.one_off)

    @property
    def steady_state_monthly_usd(self) -> float:
        """A month after DMS is removed, at this month's prices."""
        return _sum(self.steady_state_items())

    def steady_state_items(self) -> list[LineItem]:
        """The items that remain after the migration."""
        return [i for i in self.items if not i.migration_only]

    def largest(self, n: int = 3, *, steady_state: bool = False) -> list[LineItem]:
        """The `n` most expensive items (of the steady state if asked)."""
        pool = self.steady_state_items() if steady_state else list(self.items)
        return sorted(pool, key=lambda i: (-i.monthly_usd, i.service, i.resource))[:n]

    def by_service(self, items: Iterable[LineItem] | None = None) -> dict[str, list[LineItem]]:
        """Items (all, unless given) grouped by service, most expensive service first."""
        groups: dict[str, list[LineItem]] = {}
        for item in self.items if items is None else items:
            groups.setdefault(item.service, []).append(item)
        return dict(sorted(groups.items(), key=lambda kv: (-_sum(kv[1]), kv[0])))


def price_stack(
    stack: StackView,
    usage: UsageConfig,
    prices: PriceTable,
    *,
    plan: MigrationPlan,
    month: Month,
    scale: float = 1.0,
    facts: ConfigFacts | None = None,
) -> Estimate:
    """Price an already-checked stack view for one month."""
    ctx = Context(stack, usage, prices, plan, month, scale=scale, facts=facts or ConfigFacts())
    items: list[LineItem] = []
    for kind, resources in stack.by_type.items():
        rule = RULES.get(kind)
        if rule is None:
            continue
        for res in resources:
            items.extend(rule(ctx, res))
    for stack_rule in STACK_RULES:
        items.extend(stack_rule(ctx))
    return Estimate(items=tuple(items), scale=scale, month=month, plan=plan)


def estimate(
    document: Mapping[str, Any],
    usage: UsageConfig,
    prices: PriceTable,
    *,
    plan: MigrationPlan,
    month: Month | None = None,
    scale: float = 1.0,
    facts: ConfigFacts | None = None,
) -> Estimate:
    """Price every resource of a synthesized document in a month (default: the plan's start)."""
    if scale <= 0:
        raise PricingError(f"--scale: must be greater than 0, got {scale:g}")
    stack = StackView(document)
    check_priceable(stack)
    return price_stack(
        stack, usage, prices, plan=plan, month=month or plan.start, scale=scale, facts=facts
    )


def service_total(items: Iterable[LineItem], service: str) -> float:
    """Monthly USD of one service's items."""
    return _sum(i for i in items if i.service == service)
