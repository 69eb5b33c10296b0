"""What a pricing rule may read (stack, usage, prices, month, scale) and the shape of a rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from paymig.config import PaymigConfig, UsageConfig
from paymig.cost.line_item import LineItem
from paymig.cost.months import MigrationPlan, Month
from paymig.cost.prices import Price, PriceTable, PricingError
from paymig.cost.stack_view import Resource, StackView
from paymig.cost.units import DAYS_PER_MONTH

#: The value AWS applies when a cluster sets no `engine_lifecycle_support`.
EXTENDED_SUPPORT = "open-source-rds-extended-support"


@dataclass(frozen=True)
class ConfigFacts:
    """Settings a rule falls back to when the synthesized JSON does not carry them."""

    #: The API's DNS name (its non-alias weighted records answer the API's queries).
    api_record_name: str | None = None
    #: Database the API writes to (`app.write_target`), when no SSM parameter says.
    write_target: Literal["source", "aurora"] = "source"
    #: `database.engine_lifecycle_support`, when the cluster resource sets none.
    engine_lifecycle_support: str = EXTENDED_SUPPORT

    @classmethod
    def of(cls, config: PaymigConfig) -> ConfigFacts:
        """The facts of one environment's configuration."""
        return cls(
            api_record_name=config.dns.api_record_name,
            write_target=config.app.write_target,
            engine_lifecycle_support=config.database.engine_lifecycle_support,
        )


@dataclass(frozen=True)
class Context:
    """Everything a rule may read: the stack, the usage, the prices, the month and the scale."""

    stack: StackView
    usage: UsageConfig
    prices: PriceTable
    plan: MigrationPlan
    month: Month
    scale: float = 1.0
    facts: ConfigFacts = field(default_factory=ConfigFacts)

    def price(self, key: str) -> Price:
        """A price from the table."""
        return self.prices.get(key)

    def quantity(self, key: str) -> float:
        """A published allowance or constant from the table."""
        return self.prices.quantity(key)

    @property
    def transactions_per_month(self) -> float:
        """Payments per month at this scale."""
        return self.usage.transactions_per_day * self.scale * DAYS_PER_MONTH

    @property
    def requests_per_month(self) -> float:
        """API requests per month at this scale (clients only; health checks are apart)."""
        return self.transactions_per_month * self.usage.api_requests_per_transaction

    @cached_property
    def api_functions(self) -> set[str]:
        """Logical ids of the Lambda functions that serve the API (targets of the ALB)."""
        found: set[str] = set()
        for perm in self.stack.of_type("aws_lambda_permission"):
            if perm.attrs.get("principal") == "elasticloadbalancing.amazonaws.com":
                found |= {f.logical_id for f in self.stack.referenced(perm, "aws_lambda_function")}
        for attachment in self.stack.of_type("aws_lb_target_group_attachment"):
            found |= {
                f.logical_id for f in self.stack.referenced(attachment, "aws_lambda_function")
            }
        functions = self.stack.of_type("aws_lambda_function")
        if not found and self.stack.of_type("aws_lb") and functions:
            if len(functions) == 1:
                return {functions[0].logical_id}
            raise PricingError(
                "cannot tell which Lambda function serves the API: no aws_lambda_permission "
                "for elasticloadbalancing.amazonaws.com or target group attachment names one"
            )
        return found

    def is_api(self, function: Resource) -> bool:
        """Whether a Lambda function serves the API."""
        return function.logical_id in self.api_functions


Rule = Callable[[Context, Resource], list[LineItem]]
StackRule = Callable[[Context], list[LineItem]]
