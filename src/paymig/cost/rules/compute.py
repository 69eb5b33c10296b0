"""Lambda: requests, duration, provisioned concurrency and X-Ray traces."""

from __future__ import annotations

from paymig.cost.context import Context
from paymig.cost.line_item import LineItem, priced
from paymig.cost.stack_view import Resource, int_attr
from paymig.cost.units import MILLION, SECONDS_PER_MONTH


def _provisioned_units(ctx: Context, function: Resource) -> int:
    """Provisioned concurrency of a function: config blocks or the autoscaling minimum."""
    configured = 0
    for pc in ctx.stack.of_type("aws_lambda_provisioned_concurrency_config"):
        if function in ctx.stack.referenced(pc, "aws_lambda_function"):
            configured += int_attr(pc, "provisioned_concurrent_executions", 0)
    autoscaled = 0
    for target in ctx.stack.of_type("aws_appautoscaling_target"):
        if target.attrs.get("scalable_dimension") != "lambda:function:ProvisionedConcurrency":
            continue
        if function in ctx.stack.referenced(target, "aws_lambda_function"):
            autoscaled += int_attr(target, "min_capacity", 0)
    return max(configured, autoscaled)


def price_lambda_function(ctx: Context, res: Resource) -> list[LineItem]:
    """Requests, provisioned concurrency, duration (on PC, then on demand), X-Ray traces."""
    memory_mb = int_attr(res, "memory_size", 128)
    memory_gb = memory_mb / 1024
    arch = "arm" if "arm64" in (res.attrs.get("architectures") or []) else "x86"
    invocations = ctx.invocations(res)
    duration_s = ctx.usage.lambda_duration_ms / 1000
    used = invocations * duration_s * memory_gb
    units = _provisioned_units(ctx, res)
    capacity = units * memory_gb * SECONDS_PER_MONTH
    on_pc = min(used, capacity)
    items = [
        priced(
            "Lambda",
            f"{res.label} requests",
            invocations / MILLION,
            ctx.price("lambda_request_million"),
            f"{invocations:,.0f} invocations/month x price per million",
        )
    ]
    if units:
        items += [
            priced(
                "Lambda",
                f"{res.label} provisioned concurrency",
                capacity,
                ctx.price(f"lambda_provisioned_gb_second_{arch}"),
                f"{units} environment(s) x {memory_mb} MB x 730 h x 3600 s, x price per "
                "GB-second provisioned",
            ),
            priced(
                "Lambda",
                f"{res.label} duration on provisioned concurrency",
                on_pc,
                ctx.price(f"lambda_provisioned_duration_gb_second_{arch}"),
                f"min(used, provisioned) GB-seconds; used = invocations x "
                f"{ctx.usage.lambda_duration_ms:g} ms x {memory_mb} MB",
            ),
        ]
    items.append(
        priced(
            "Lambda",
            f"{res.label} duration on demand",
            used - on_pc,
            ctx.price(f"lambda_gb_second_{arch}"),
            f"invocations x {ctx.usage.lambda_duration_ms:g} ms x {memory_mb} MB beyond "
            "provisioned concurrency, x price per GB-second",
        )
    )
    tracing = res.blocks("tracing_config")
    if tracing and tracing[0].get("mode") == "Active":
        traces = invocations * ctx.usage.xray_sampled_share
        items.append(
            priced(
                "X-Ray",
                f"{res.label} traces",
                traces / MILLION,
                ctx.price("xray_traces_million"),
                f"invocations x sampled share {ctx.usage.xray_sampled_share:g}, x price per "
                "million traces",
            )
        )
    return items
