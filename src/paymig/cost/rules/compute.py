"""Lambda: requests, duration, provisioned concurrency that follows the day, X-Ray traces.

Invocations come from :mod:`paymig.cost.traffic` (client requests, health checks, the
validation job, rotations). Provisioned concurrency managed by Application Auto Scaling
with target tracking is priced per period of the day profile: the environments that keep
the period's concurrency at the policy's target utilization, within the target's minimum
and maximum; without auto scaling, the configured environments all month.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from paymig.cost import traffic
from paymig.cost.context import Context
from paymig.cost.line_item import LineItem, Timing, priced
from paymig.cost.stack_view import Resource, int_attr
from paymig.cost.traffic import Demand, Period
from paymig.cost.units import MILLION

_PC_DIMENSION = "lambda:function:ProvisionedConcurrency"


@dataclass(frozen=True)
class _Scaling:
    """How a function's provisioned concurrency is set."""

    configured: int
    low: int
    high: int
    #: Target utilization of a target-tracking policy (None: no scaling policy).
    target: float | None

    def units(self, concurrency: float) -> int:
        """Environments provisioned for a steady concurrency."""
        if self.target is None:
            return max(self.configured, self.low)
        return traffic.provisioned_units(concurrency, self.target, self.low, self.high)


def _scaling_targets(ctx: Context, function: Resource) -> list[Resource]:
    """Auto Scaling targets of the function's provisioned concurrency (by reference or name)."""
    name = function.attrs.get("function_name")
    found = []
    for target in ctx.stack.of_type("aws_appautoscaling_target"):
        if target.attrs.get("scalable_dimension") != _PC_DIMENSION:
            continue
        resource_id = str(target.attrs.get("resource_id", ""))
        named = isinstance(name, str) and resource_id.startswith(f"function:{name}:")
        if named or function in ctx.stack.referenced(target, "aws_lambda_function"):
            found.append(target)
    return found


def _target_value(ctx: Context, target: Resource) -> float | None:
    """Target utilization of the target-tracking policy on an Auto Scaling target."""
    for policy in ctx.stack.of_type("aws_appautoscaling_policy"):
        if policy.attrs.get("policy_type") != "TargetTrackingScaling":
            continue
        if target not in ctx.stack.referenced(policy, "aws_appautoscaling_target"):
            continue
        for config in policy.blocks("target_tracking_scaling_policy_configuration"):
            value = config.get("target_value")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return float(value)
    return None


def _scaling(ctx: Context, function: Resource) -> _Scaling | None:
    """The function's provisioned concurrency settings (None: no provisioned concurrency)."""
    configured = 0
    for pc in ctx.stack.of_type("aws_lambda_provisioned_concurrency_config"):
        if function in ctx.stack.referenced(pc, "aws_lambda_function"):
            configured += int_attr(pc, "provisioned_concurrent_executions", 0)
    targets = _scaling_targets(ctx, function)
    if not targets:
        return _Scaling(configured, configured, configured, None) if configured else None
    low = sum(int_attr(t, "min_capacity", 0) for t in targets)
    high = sum(int_attr(t, "max_capacity", 0) for t in targets)
    values = [v for v in (_target_value(ctx, t) for t in targets) if v is not None]
    return _Scaling(configured, low, high, min(values) if values else None)


def _requests(res: Resource, demands: Sequence[Demand], ctx: Context) -> list[LineItem]:
    """One requests line per timing (recurring traffic; the migration-only job)."""
    items = []
    for timing in (Timing.recurring, Timing.migration):
        group = [d for d in demands if d.timing is timing]
        if not group:
            continue
        total = sum(d.invocations for d in group)
        parts = " + ".join(f"{d.invocations:,.0f} {d.source}" for d in group)
        items.append(
            priced(
                "Lambda",
                f"{res.label} requests"
                + (" (validation job)" if timing is Timing.migration else ""),
                total / MILLION,
                ctx.price("lambda_request_million"),
                f"{parts} a month x price per million",
                timing=timing,
            )
        )
    return items


def _period_gb_seconds(demands: Sequence[Demand], period: Period, memory_gb: float) -> float:
    """GB-seconds the demands use in one period."""
    return sum(d.in_period(period) * d.duration_ms / 1000 * memory_gb for d in demands)


def _concurrency(demands: Sequence[Demand], period: Period) -> float:
    """Average concurrent executions the demands need in one period."""
    return sum(d.in_period(period) / period.seconds * d.duration_ms / 1000 for d in demands)


def _duration(ctx: Context, res: Resource, demands: Sequence[Demand]) -> list[LineItem]:
    """Provisioned concurrency by period, duration on it, and duration on demand."""
    memory_mb = int_attr(res, "memory_size", 128)
    memory_gb = memory_mb / 1024
    arch = "arm" if "arm64" in (res.attrs.get("architectures") or []) else "x86"
    scaling = _scaling(ctx, res)
    recurring = [d for d in demands if d.timing is Timing.recurring]
    job = [d for d in demands if d.timing is Timing.migration]
    items: list[LineItem] = []
    on_demand = 0.0
    if scaling is not None:
        capacity = on_pc = 0.0
        shape = []
        for period in traffic.day_profile(ctx.usage):
            units = scaling.units(_concurrency(recurring, period))
            cap = units * memory_gb * period.seconds
            used = _period_gb_seconds(recurring, period, memory_gb)
            capacity += cap
            on_pc += min(used, cap)
            on_demand += used - min(used, cap)
            shape.append(f"{period.name} {units} env x {period.hours:,.1f} h")
        target = f"target tracking at {scaling.target:g}" if scaling.target else "no scaling"
        items += [
            priced(
                "Lambda",
                f"{res.label} provisioned concurrency",
                capacity,
                ctx.price(f"lambda_provisioned_gb_second_{arch}"),
                f"{', '.join(shape)} ({target}, {scaling.low}-{scaling.high}) x {memory_mb} MB "
                "x 3600 s, x price per GB-second provisioned",
            ),
            priced(
                "Lambda",
                f"{res.label} duration on provisioned concurrency",
                on_pc,
                ctx.price(f"lambda_provisioned_duration_gb_second_{arch}"),
                "per period min(used, provisioned) GB-seconds; used = invocations x duration "
                f"x {memory_mb} MB",
            ),
        ]
    else:
        on_demand = sum(
            _period_gb_seconds(recurring, p, memory_gb) for p in traffic.day_profile(ctx.usage)
        )
    durations = ", ".join(f"{d.source} {d.duration_ms:g} ms" for d in recurring)
    if recurring:  # the validation job's function runs only the job (priced below)
        items.append(
            priced(
                "Lambda",
                f"{res.label} duration on demand",
                on_demand,
                ctx.price(f"lambda_gb_second_{arch}"),
                f"invocations x duration ({durations}) x {memory_mb} MB beyond provisioned "
                "concurrency, x price per GB-second",
            )
        )
    if job:
        used = sum(d.invocations * d.duration_ms / 1000 * memory_gb for d in job)
        items.append(
            priced(
                "Lambda",
                f"{res.label} duration (validation job)",
                used,
                ctx.price(f"lambda_gb_second_{arch}"),
                f"{sum(d.invocations for d in job):,.0f} slices x {job[0].duration_ms / 1000:g} s "
                f"x {memory_mb} MB, x price per GB-second",
                timing=Timing.migration,
            )
        )
    return items


def _traces(ctx: Context, res: Resource, demands: Sequence[Demand]) -> list[LineItem]:
    """Traces the default sampling rule records: a reservoir per second plus a fixed rate."""
    tracing = res.blocks("tracing_config")
    if not tracing or tracing[0].get("mode") != "Active":
        return []
    reservoir = ctx.quantity("xray_reservoir_per_second")
    rate = ctx.quantity("xray_fixed_rate")
    traces = 0.0
    for period in traffic.day_profile(ctx.usage):
        per_s = sum(d.in_period(period) for d in demands) / period.seconds
        traces += traffic.sampled(per_s, reservoir, rate) * period.seconds
    return [
        priced(
            "X-Ray",
            f"{res.label} traces",
            traces / MILLION,
            ctx.price("xray_traces_million"),
            f"per period of the day: min(invocations/s, {reservoir:g}) + {rate:g} x the rest "
            "(default sampling rule), x seconds, x price per million traces",
            timing=traffic.function_timing(demands),
        )
    ]


def price_lambda_function(ctx: Context, res: Resource) -> list[LineItem]:
    """Requests, provisioned concurrency, duration (on PC, then on demand), X-Ray traces."""
    demands = traffic.function_demand(ctx, res)
    return _requests(res, demands, ctx) + _duration(ctx, res, demands) + _traces(ctx, res, demands)
