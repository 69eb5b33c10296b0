"""The public edge: the Application Load Balancer, WAF and ACM certificates."""

from __future__ import annotations

from paymig.cost import traffic
from paymig.cost.context import Context
from paymig.cost.line_item import LineItem, priced
from paymig.cost.prices import PricingError
from paymig.cost.stack_view import Resource, resource_hours
from paymig.cost.units import HOURS_PER_MONTH, MILLION, bytes_to_gb

#: What one ALB capacity unit (LCU) covers, per the ELB pricing page's LCU definition.
LCU_NEW_CONNECTIONS_PER_S = 25.0
LCU_GB_PER_HOUR = 1.0
LCU_GB_PER_HOUR_LAMBDA = 0.4


def price_lb(ctx: Context, res: Resource) -> list[LineItem]:
    """ALB hours, LCUs from traffic, public IPv4 per AZ, internet data out."""
    kind = res.attrs.get("load_balancer_type", "application")
    if kind != "application":
        raise PricingError(f"{res.address}: load_balancer_type {kind!r} has no pricing rule")
    u = ctx.usage
    checks = traffic.route53_requests_to_alb(ctx)
    per_hour = (ctx.requests_per_month + checks) / HOURS_PER_MONTH
    gb_per_hour = bytes_to_gb(
        ctx.requests_per_month / HOURS_PER_MONTH * (u.request_bytes + u.response_bytes)
    )
    lambda_targets = any(
        tg.attrs.get("target_type") == "lambda" for tg in ctx.stack.of_type("aws_lb_target_group")
    )
    gb_per_lcu = LCU_GB_PER_HOUR_LAMBDA if lambda_targets else LCU_GB_PER_HOUR
    new_conn_per_s = per_hour / 3600
    lcus = max(new_conn_per_s / LCU_NEW_CONNECTIONS_PER_S, gb_per_hour / gb_per_lcu)
    items = [
        priced(
            "ELB", res.label, resource_hours(res), ctx.price("alb_hour"), "730 h x ALB-hour price"
        ),
        priced(
            "ELB",
            f"{res.label} LCUs",
            lcus * resource_hours(res),
            ctx.price("alb_lcu_hour"),
            f"max(new connections/s / 25, GB/h / {gb_per_lcu:g}) over the month, one "
            f"connection per request ({ctx.requests_per_month:,.0f} API + {checks:,.0f} Route 53 "
            "health checks), x 730 h x LCU-hour price",
            unit="LCU-hour",
        ),
    ]
    if res.attrs.get("internal") is not True:
        subnets = res.attrs.get("subnets") or res.blocks("subnet_mapping")
        azs = len(subnets) if isinstance(subnets, list) else 0
        if azs == 0:
            raise PricingError(f"{res.address}: internet-facing ALB without literal subnets")
        items += [
            priced(
                "VPC",
                f"{res.label} public IPv4",
                azs * resource_hours(res),
                ctx.price("public_ipv4_hour"),
                f"{azs} AZ(s), one public IPv4 each, x 730 h x IPv4-hour price",
            ),
            priced(
                "Data transfer",
                f"{res.label} responses to the internet",
                bytes_to_gb(ctx.requests_per_month * u.response_bytes),
                ctx.price("internet_out_gb"),
                f"{ctx.requests_per_month:,.0f} requests/month x {u.response_bytes} bytes, x "
                "price per GB out",
            ),
        ]
    return items


def price_wafv2_web_acl(ctx: Context, res: Resource) -> list[LineItem]:
    """Web ACL, one charge per rule block, and the requests it inspects."""
    rules = len(res.blocks("rule"))
    checks = traffic.route53_requests_to_alb(ctx)
    inspected = ctx.requests_per_month + checks
    return [
        priced("WAF", res.label, float(res.count), ctx.price("waf_web_acl_month"), "1 web ACL"),
        priced(
            "WAF",
            f"{res.label} rules",
            float(rules * res.count),
            ctx.price("waf_rule_month"),
            f"{rules} rule block(s) in the ACL x price per rule",
        ),
        priced(
            "WAF",
            f"{res.label} requests",
            inspected / MILLION,
            ctx.price("waf_request_million"),
            f"{ctx.requests_per_month:,.0f} API requests + {checks:,.0f} Route 53 health checks "
            "a month inspected, x price per million",
        ),
    ]


def price_acm_certificate(ctx: Context, res: Resource) -> list[LineItem]:
    """Public certificates are free; private CA certificates have no rule."""
    if res.attrs.get("certificate_authority_arn"):
        raise PricingError(f"{res.address}: private CA certificates have no pricing rule")
    return [
        priced(
            "ACM",
            res.label,
            float(res.count),
            ctx.price("acm_public_certificate"),
            "public certificate, not charged",
        )
    ]
