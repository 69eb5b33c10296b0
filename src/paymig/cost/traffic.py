"""Who invokes what, how often and when in the day: the traffic the rules count.

Client requests follow a daily profile (`usage.peak_hours_per_day` at peak carrying
`usage.peak_share_of_requests` of the day's requests, the rest off-peak). Health checks
arrive at a constant rate and are counted from the synthesized checks themselves: every
load balancer node health-checks every target of a target group it serves ("Each load
balancer node checks the health of each target", ELB User Guide, "Health checks for
Application Load Balancer target groups"), and every Route 53 health checker sends one
request per `request_interval` ("How Amazon Route 53 determines whether a health check is
healthy"). Functions that a state machine drives (the validation job) and rotation
functions are invoked from the usage settings of the job and the rotation schedules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from paymig.config import UsageConfig
from paymig.cost.context import Context
from paymig.cost.line_item import Timing
from paymig.cost.prices import PricingError
from paymig.cost.stack_view import Resource, int_attr
from paymig.cost.units import DAYS_PER_MONTH, HOURS_PER_MONTH, SECONDS_PER_MONTH

#: Route 53 health check types whose requests reach the load balancer's listener.
HTTP_CHECKS = ("HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH")
#: ALB health check interval of a Lambda target group when none is set (ELB API reference).
DEFAULT_LAMBDA_HEALTH_INTERVAL_S = 35
_RATE_DAYS = re.compile(r"^rate\((\d+) days?\)$")


@dataclass(frozen=True)
class Period:
    """A part of the day profile, summed over the month."""

    name: str
    hours: float
    #: Share of the month's client requests that arrive in it.
    request_share: float

    @property
    def seconds(self) -> float:
        """Seconds of the month in this period."""
        return self.hours * 3600


def day_profile(usage: UsageConfig) -> tuple[Period, Period]:
    """Peak and off-peak hours of a month, with their shares of the client requests."""
    peak = usage.peak_hours_per_day * DAYS_PER_MONTH
    return (
        Period("peak", peak, usage.peak_share_of_requests),
        Period("off-peak", HOURS_PER_MONTH - peak, 1 - usage.peak_share_of_requests),
    )


@dataclass(frozen=True)
class Demand:
    """One source of invocations of a function, per month."""

    source: str
    invocations: float
    duration_ms: float
    #: Client traffic follows the day profile; checks and jobs are spread evenly.
    follows_profile: bool
    timing: Timing = Timing.recurring
    #: A health check (its log lines are the platform's only).
    health_check: bool = False

    def in_period(self, period: Period) -> float:
        """Invocations in one period of the day profile."""
        share = period.request_share if self.follows_profile else period.hours / HOURS_PER_MONTH
        return self.invocations * share


def route53_requests_to_alb(ctx: Context) -> float:
    """HTTP(S) health-check requests Route 53's checkers send to the load balancer a month."""
    total = 0.0
    for check in ctx.stack.of_type("aws_route53_health_check"):
        if str(check.attrs.get("type", "")) not in HTTP_CHECKS:
            continue
        if not any(kind == "aws_lb" for kind, _ in check.references()):
            continue
        interval = int_attr(check, "request_interval", 30)
        total += check.count * ctx.usage.route53_health_checkers * SECONDS_PER_MONTH / interval
    return total


def _load_balancer_nodes(ctx: Context, group: Resource) -> int:
    """Availability zones of the load balancers whose listeners forward to a target group."""
    nodes = 0
    balancers: dict[str, Resource] = {}
    for kind in ("aws_lb_listener", "aws_lb_listener_rule"):
        for listener in ctx.stack.of_type(kind):
            if group not in ctx.stack.referenced(listener, "aws_lb_target_group"):
                continue
            parent = ctx.stack.referenced(listener, "aws_lb_listener") or [listener]
            for lb in (b for p in parent for b in ctx.stack.referenced(p, "aws_lb")):
                balancers[lb.logical_id] = lb
    for lb in balancers.values():
        subnets = lb.attrs.get("subnets") or lb.blocks("subnet_mapping")
        nodes += len(subnets) if isinstance(subnets, list) else 0
    return nodes


def alb_health_checks(ctx: Context, function: Resource) -> float:
    """Health-check invocations of a function by the load balancers' nodes a month."""
    total = 0.0
    for attachment in ctx.stack.of_type("aws_lb_target_group_attachment"):
        if function not in ctx.stack.referenced(attachment, "aws_lambda_function"):
            continue
        for group in ctx.stack.referenced(attachment, "aws_lb_target_group"):
            if group.attrs.get("target_type") != "lambda":
                continue
            check = group.blocks("health_check")
            # Health checks of Lambda target groups are off unless enabled.
            if not check or check[0].get("enabled") is not True:
                continue
            interval = check[0].get("interval", DEFAULT_LAMBDA_HEALTH_INTERVAL_S)
            if isinstance(interval, bool) or not isinstance(interval, int):
                raise PricingError(f"{group.address}: health_check.interval is not a literal")
            nodes = _load_balancer_nodes(ctx, group)
            total += nodes * SECONDS_PER_MONTH / interval
    return total


def _rotations_per_month(ctx: Context, function: Resource) -> float:
    """Rotation-step invocations of a rotation function a month."""
    steps = ctx.quantity("secrets_rotation_steps")
    total = 0.0
    for rotation in ctx.stack.of_type("aws_secretsmanager_secret_rotation"):
        if function not in ctx.stack.referenced(rotation, "aws_lambda_function"):
            continue
        rules = rotation.blocks("rotation_rules")
        days = rules[0].get("automatically_after_days") if rules else None
        if days is None and rules:
            found = _RATE_DAYS.match(str(rules[0].get("schedule_expression", "")))
            days = int(found.group(1)) if found else None
        if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
            raise PricingError(
                f"{rotation.address}: rotation schedule is neither automatically_after_days "
                "nor rate(N days); cannot price its rotation function"
            )
        total += rotation.count * steps * DAYS_PER_MONTH / days
    return total


def _driven_by_state_machine(ctx: Context, function: Resource) -> bool:
    """Whether a state machine's definition invokes the function (the validation job)."""
    return any(
        function in ctx.stack.referenced(sm, "aws_lambda_function")
        for sm in ctx.stack.of_type("aws_sfn_state_machine")
    )


def function_demand(ctx: Context, function: Resource) -> tuple[Demand, ...]:
    """Every source of invocations of a function."""
    u = ctx.usage
    if ctx.is_api(function):
        share = 1 / len(ctx.api_functions)
        return (
            Demand("API requests", ctx.requests_per_month, u.lambda_duration_ms, True),
            Demand(
                "Route 53 health checks",
                route53_requests_to_alb(ctx) * share,
                u.health_check_duration_ms,
                False,
                health_check=True,
            ),
            Demand(
                "ALB health checks",
                alb_health_checks(ctx, function),
                u.health_check_duration_ms,
                False,
                health_check=True,
            ),
        )
    demands: list[Demand] = []
    if _driven_by_state_machine(ctx, function):
        demands.append(
            Demand(
                "validation slices",
                float(u.validation_passes_per_month * u.validation_slices_per_pass),
                u.validation_slice_seconds * 1000,
                False,
                Timing.migration,
            )
        )
    rotations = _rotations_per_month(ctx, function)
    if rotations:
        demands.append(Demand("rotation steps", rotations, u.lambda_duration_ms, False))
    if not demands:
        demands.append(
            Demand(
                "other invocations",
                float(u.other_lambda_invocations_per_month),
                u.lambda_duration_ms,
                False,
            )
        )
    return tuple(demands)


def function_timing(demands: Iterable[Demand]) -> Timing:
    """Recurring when any demand recurs, else the timing of the (migration-only) demands."""
    timings = {d.timing for d in demands}
    return Timing.recurring if Timing.recurring in timings or not timings else timings.pop()


def health_checks_of_api(ctx: Context) -> float:
    """Health-check invocations of every API function a month (Route 53 and ALB)."""
    functions = [f for f in ctx.stack.of_type("aws_lambda_function") if ctx.is_api(f)]
    alb = sum(alb_health_checks(ctx, f) for f in functions)
    return (route53_requests_to_alb(ctx) if functions else 0.0) + alb


def sampled(rate_per_s: float, reservoir: float, fixed_rate: float) -> float:
    """Traces per second a reservoir-plus-fixed-rate sampling rule records."""
    return min(rate_per_s, reservoir) + fixed_rate * max(rate_per_s - reservoir, 0.0)


def provisioned_units(concurrency: float, target: float, low: int, high: int) -> int:
    """Environments target tracking keeps for a steady concurrency, within [low, high]."""
    wanted = math.ceil(round(concurrency / target, 9)) if concurrency > 0 else 0
    return min(max(wanted, low), high)
