"""Route 53: health checks, record queries and hosted zones."""

from __future__ import annotations

from paymig.cost.context import Context
from paymig.cost.lifetime import timing_of
from paymig.cost.line_item import LineItem, priced
from paymig.cost.stack_view import Resource, int_attr
from paymig.cost.units import MILLION


def _is_aws_endpoint(res: Resource) -> bool:
    """Whether a health check probes an AWS resource (by reference) or not (on-prem)."""
    kinds = {kind for kind, _ in res.references()}
    return bool(kinds & {"aws_lb", "aws_eip", "aws_cloudfront_distribution", "aws_instance"})


def _free_checks(ctx: Context, res: Resource) -> int:
    """How many of this check's instances fall in the account's free AWS-endpoint checks.

    The allowance is per account; the stack's AWS-endpoint checks, in address order, are
    assumed to be the account's first.
    """
    allowance = int(ctx.quantity("route53_free_aws_health_checks"))
    before = 0
    for other in ctx.stack.of_type("aws_route53_health_check"):
        if other.logical_id == res.logical_id:
            return max(0, min(res.count, allowance - before))
        if _is_endpoint_check(other) and _is_aws_endpoint(other):
            before += other.count
    return 0


def _is_endpoint_check(res: Resource) -> bool:
    """Whether a health check probes an endpoint (not other checks, alarms or controls)."""
    kind = str(res.attrs.get("type", ""))
    return kind not in ("CALCULATED", "CLOUDWATCH_METRIC", "RECOVERY_CONTROL")


def price_route53_health_check(ctx: Context, res: Resource) -> list[LineItem]:
    """Health check, AWS or non-AWS endpoint, plus each optional feature.

    Calculated, CloudWatch-metric and recovery-control checks probe no endpoint: priced at
    the AWS-endpoint rate and, conservatively, outside the free allowance.
    """
    check_type = str(res.attrs.get("type", ""))
    if check_type in ("CALCULATED", "CLOUDWATCH_METRIC", "RECOVERY_CONTROL"):
        return [
            priced(
                "Route 53",
                res.label,
                float(res.count),
                ctx.price("route53_health_check_aws_month"),
                f"{check_type} health check, basic AWS price",
                timing=timing_of(ctx, res),  # the legacy record's checks go with it
            )
        ]
    aws = _is_aws_endpoint(res)
    features = []
    if check_type.startswith("HTTPS"):
        features.append("HTTPS")
    if check_type.endswith("STR_MATCH"):
        features.append("string matching")
    if int_attr(res, "request_interval", 30) == 10:
        features.append("fast interval")
    if res.attrs.get("measure_latency") is True:
        features.append("latency measurement")
    kind = "AWS" if aws else "non-AWS"
    where = f"an {kind}" if aws else f"a {kind}"
    suffix = "aws" if aws else "non_aws"
    free = _free_checks(ctx, res) if aws else 0
    first = ctx.quantity("route53_free_aws_health_checks")
    allowance = f", {free} within the account's first {first:g} free ones" if aws else ""
    timing = timing_of(ctx, res)  # the legacy record's checks go with it
    items = [
        priced(
            "Route 53",
            f"{res.label} ({kind} endpoint)",
            float(res.count - free),
            ctx.price(f"route53_health_check_{suffix}_month"),
            f"{res.count} health check(s) of {where} endpoint{allowance}",
            timing=timing,
        )
    ]
    if features:
        items.append(
            priced(
                "Route 53",
                f"{res.label} optional features",
                float(len(features) * res.count),
                ctx.price(f"route53_health_check_feature_{suffix}_month"),
                f"{', '.join(features)} on {where} endpoint, x price per feature",
                timing=timing,
            )
        )
    return items


def price_route53_record(ctx: Context, res: Resource) -> list[LineItem]:
    """Queries: alias records to AWS resources are free, others pay per million."""
    if res.blocks("alias"):
        return [
            priced(
                "Route 53",
                f"{res.label} queries (alias)",
                0.0,
                ctx.price("route53_standard_query_million"),
                "alias queries to an AWS resource are not charged",
                unit="1M queries (not charged)",
            )
        ]
    name = res.attrs.get("name")
    if ctx.facts.api_record_name is None or name != ctx.facts.api_record_name:
        return []  # auxiliary records (certificate validation) get negligible queries
    siblings = [
        r
        for r in ctx.stack.of_type("aws_route53_record")
        if r.attrs.get("name") == name and not r.blocks("alias")
    ]
    queries = ctx.requests_per_month * ctx.usage.dns_queries_per_request / len(siblings)
    return [
        priced(
            "Route 53",
            f"{res.label} queries",
            queries / MILLION,
            ctx.price("route53_standard_query_million"),
            f"requests x {ctx.usage.dns_queries_per_request:g} queries/request, shared by "
            f"{len(siblings)} non-alias record(s) of {name}, x price per million",
            timing=timing_of(ctx, res),  # the legacy record goes; alias queries are free
        )
    ]


def price_route53_zone(ctx: Context, res: Resource) -> list[LineItem]:
    """A hosted zone the stack creates."""
    return [
        priced(
            "Route 53",
            res.label,
            float(res.count),
            ctx.price("route53_hosted_zone_month"),
            "1 hosted zone",
        )
    ]


def usage_hosted_zone(ctx: Context) -> list[LineItem]:
    """The operator's existing hosted zone, when the stack writes records into it."""
    if not ctx.stack.of_type("aws_route53_record") or ctx.stack.of_type("aws_route53_zone"):
        return []
    return [
        priced(
            "Route 53",
            "hosted zone (dns.hosted_zone_id)",
            1.0,
            ctx.price("route53_hosted_zone_month"),
            "1 existing hosted zone holding the stack's records",
        )
    ]
