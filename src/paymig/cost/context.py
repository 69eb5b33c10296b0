"""What a pricing rule may read (stack, usage, prices, scale) and the shape of a rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

from paymig.config import UsageConfig
from paymig.cost.line_item import LineItem
from paymig.cost.prices import Price, PriceTable, PricingError
from paymig.cost.stack_view import Resource, StackView
from paymig.cost.units import DAYS_PER_MONTH


@dataclass(frozen=True)
class Context:
    """Everything a rule may read: the stack, the usage, the prices and the scale."""

    stack: StackView
    usage: UsageConfig
    prices: PriceTable
    scale: float = 1.0
    api_record_name: str | None = None

    def price(self, key: str) -> Price:
        """A price from the table."""
        return self.prices.get(key)

    @property
    def transactions_per_month(self) -> float:
        """Payments per month at this scale."""
        return self.usage.transactions_per_day * self.scale * DAYS_PER_MONTH

    @property
    def requests_per_month(self) -> float:
        """API requests per month at this scale."""
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

    def invocations(self, function: Resource) -> float:
        """Invocations per month of one function."""
        if function.logical_id in self.api_functions:
            return self.requests_per_month
        return float(self.usage.other_lambda_invocations_per_month)


Rule = Callable[[Context, Resource], list[LineItem]]
StackRule = Callable[[Context], list[LineItem]]
