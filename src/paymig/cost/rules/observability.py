"""CloudWatch: log groups, dashboards, alarms and custom metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paymig.cost import traffic
from paymig.cost.context import Context
from paymig.cost.lifetime import timing_of
from paymig.cost.line_item import LineItem, Timing, priced
from paymig.cost.prices import PricingError
from paymig.cost.rules.dms import tasks_on
from paymig.cost.stack_view import Resource, int_attr
from paymig.cost.units import DAYS_PER_MONTH, bytes_to_gb

#: What one log group receives a month: GB, the price key, why, and when.
Ingestion = tuple[float, str, str, Timing]


def _lambda_logs(ctx: Context, function: Resource) -> Ingestion:
    """A function's log bytes: per request, and the platform lines of each health check."""
    u = ctx.usage
    demands = traffic.function_demand(ctx, function)
    nbytes = 0.0
    parts = []
    for d in demands:
        per = u.health_check_log_bytes if d.health_check else u.log_bytes_per_request
        nbytes += d.invocations * per
        parts.append(f"{d.invocations:,.0f} {d.source} x {per} B")
    return (
        bytes_to_gb(nbytes),
        "cw_logs_ingest_gb",
        "Lambda logs: " + " + ".join(parts),
        traffic.function_timing(demands),
    )


def _dms_logs(ctx: Context, name: str) -> Ingestion | None:
    """The `dms-tasks-<instance id>` group DMS writes task logs to, when it is in the stack."""
    for instance in ctx.stack.of_type("aws_dms_replication_instance"):
        if name == f"dms-tasks-{instance.attrs.get('replication_instance_id')}":
            tasks = max(1, len(tasks_on(ctx, instance)))
            gb = ctx.usage.dms_log_gb_per_month * tasks * instance.count
            why = f"DMS task logs: {ctx.usage.dms_log_gb_per_month:g} GB/month x {tasks} task(s)"
            return gb, "cw_logs_ingest_gb", why, Timing.migration
    return None


def _log_ingestion(ctx: Context, res: Resource) -> Ingestion:
    """Monthly GB ingested into a log group, the price key, why and when."""
    u = ctx.usage
    name = str(res.attrs.get("name", res.label))
    flows = [
        f
        for f in ctx.stack.of_type("aws_flow_log")
        if ("aws_cloudwatch_log_group", res.logical_id) in f.references()
    ]
    if flows:
        gb = u.flow_log_gb_per_month * ctx.scale
        return (
            gb,
            "cw_logs_vended_gb",
            f"VPC flow logs {u.flow_log_gb_per_month:g} GB/month x scale {ctx.scale:g}",
            Timing.recurring,
        )
    if name.startswith("aws-waf-logs-"):
        inspected = ctx.requests_per_month + traffic.route53_requests_to_alb(ctx)
        gb = bytes_to_gb(inspected * u.waf_log_bytes_per_request)
        why = f"WAF logs: {inspected:,.0f} inspected requests x {u.waf_log_bytes_per_request} B"
        return gb, "cw_logs_vended_gb", why, Timing.recurring
    if name.startswith("/aws/lambda/"):
        functions = ctx.stack.of_type("aws_lambda_function")
        owner = [f for f in functions if name == f"/aws/lambda/{f.label}"] or (
            ctx.stack.referenced(res, "aws_lambda_function")
        )
        if not owner and len(functions) == 1:
            owner = functions
        if owner:
            return _lambda_logs(ctx, owner[0])
    if name.startswith("/aws/rds/"):
        gb = u.aurora_log_gb_per_month * ctx.scale
        return (
            gb,
            "cw_logs_ingest_gb",
            f"PostgreSQL logs {u.aurora_log_gb_per_month:g} GB/month x scale {ctx.scale:g}",
            Timing.recurring,
        )
    dms = _dms_logs(ctx, name)
    if dms is not None:
        return dms
    return u.other_log_gb_per_month, "cw_logs_ingest_gb", "other log group", Timing.recurring


def price_cloudwatch_log_group(ctx: Context, res: Resource) -> list[LineItem]:
    """Ingestion from usage by what writes the group; storage from its retention."""
    if res.attrs.get("log_group_class", "STANDARD") != "STANDARD":
        raise PricingError(
            f"{res.address}: log_group_class {res.attrs['log_group_class']!r} has no pricing rule"
        )
    gb, key, why, timing = _log_ingestion(ctx, res)
    if timing_of(ctx, res) is Timing.migration:
        timing = Timing.migration  # its writer goes, and the group (its stored logs) with it
    retention = int_attr(res, "retention_in_days", 0)
    if retention == 0:
        months = float(ctx.usage.log_storage_horizon_months)
        kept = f"never expires: {months:g} months kept"
    else:
        months = retention / DAYS_PER_MONTH
        kept = f"{retention} days retention = {months:.2f} months kept"
    return [
        priced(
            "CloudWatch",
            f"{res.label} ingestion",
            gb,
            ctx.price(key),
            f"{why}, x price per GB ingested",
            timing=timing,
        ),
        priced(
            "CloudWatch",
            f"{res.label} storage",
            gb * months,
            ctx.price("cw_logs_storage_gb_month"),
            f"{gb:.2f} GB/month x {kept} (no compression credit), x price per GB-month",
            timing=timing,
        ),
    ]


def price_cloudwatch_dashboard(ctx: Context, res: Resource) -> list[LineItem]:
    """One dashboard."""
    return [
        priced(
            "CloudWatch",
            f"dashboard {res.label}",
            float(res.count),
            ctx.price("cw_dashboard_month"),
            "1 dashboard-month",
        )
    ]


def price_cloudwatch_metric_alarm(ctx: Context, res: Resource) -> list[LineItem]:
    """A metric alarm: per metric evaluated, high resolution when the period is < 60 s."""
    queries = res.blocks("metric_query")
    if queries:
        metrics = [q for q in queries if q.get("metric")]
        periods = [int(m.get("period", 60)) for q in metrics for m in _as_list(q["metric"])]
    else:
        metrics = [res.attrs]
        periods = [int(res.attrs.get("period", 60))]
    high = any(p < 60 for p in periods)
    key = "cw_alarm_high_resolution_metric_month" if high else "cw_alarm_standard_metric_month"
    kind = "high-resolution" if high else "standard"
    return [
        priced(
            "CloudWatch",
            f"alarm {res.label}",
            float(len(metrics) * res.count),
            ctx.price(key),
            f"{len(metrics)} metric(s) evaluated by a {kind} alarm",
            unit="alarm metric-month",
            timing=timing_of(ctx, res),  # an alarm on DMS goes with it
        )
    ]


def _as_list(value: Any) -> list[Mapping[str, Any]]:
    """A block value as a list of mappings."""
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Mapping)]
    return [value] if isinstance(value, Mapping) else []


def price_cloudwatch_composite_alarm(ctx: Context, res: Resource) -> list[LineItem]:
    """One composite alarm."""
    return [
        priced(
            "CloudWatch",
            f"composite alarm {res.label}",
            float(res.count),
            ctx.price("cw_alarm_composite_month"),
            "1 composite alarm-month",
        )
    ]


def usage_custom_metrics(ctx: Context) -> list[LineItem]:
    """Custom metrics published by the API (EMF) and the controller."""
    if not ctx.stack.of_type("aws_lambda_function"):
        return []
    count = ctx.usage.custom_metric_count
    return [
        priced(
            "CloudWatch",
            "custom metrics",
            float(count),
            ctx.price("cw_custom_metric_month"),
            f"{count} custom metrics x price per metric-month",
        )
    ]
