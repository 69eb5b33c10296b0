"""VPC networking: NAT gateways, Elastic IPs, Site-to-Site VPN, VPC endpoints, inter-AZ traffic."""

from __future__ import annotations

from paymig.cost.context import Context
from paymig.cost.line_item import LineItem, priced
from paymig.cost.prices import PricingError
from paymig.cost.stack_view import Resource, resource_hours
from paymig.cost.units import bytes_to_gb


def price_nat_gateway(ctx: Context, res: Resource) -> list[LineItem]:
    """NAT gateway hours, plus its even share of the NAT data processing."""
    gateways = sum(r.count for r in ctx.stack.of_type("aws_nat_gateway"))
    share = ctx.usage.nat_processed_gb_per_month * ctx.scale * res.count / gateways
    return [
        priced(
            "VPC",
            res.label,
            resource_hours(res),
            ctx.price("nat_gateway_hour"),
            "730 h x NAT gateway-hour price",
        ),
        priced(
            "VPC",
            f"{res.label} data processing",
            share,
            ctx.price("nat_gateway_gb"),
            f"NAT traffic {ctx.usage.nat_processed_gb_per_month:g} GB/month x scale "
            f"{ctx.scale:g}, split evenly over {gateways} gateway(s), x price per GB",
        ),
    ]


def price_eip(ctx: Context, res: Resource) -> list[LineItem]:
    """The public IPv4 charge of an Elastic IP."""
    return [
        priced(
            "VPC",
            f"{res.label} public IPv4",
            resource_hours(res),
            ctx.price("public_ipv4_hour"),
            "730 h x public IPv4 address-hour price",
        )
    ]


def price_vpn_connection(ctx: Context, res: Resource) -> list[LineItem]:
    """Site-to-Site VPN connection hours (data in over the VPN is free)."""
    return [
        priced(
            "VPN",
            res.label,
            resource_hours(res),
            ctx.price("vpn_connection_hour"),
            "730 h x VPN connection-hour price",
        )
    ]


def price_vpc_endpoint(ctx: Context, res: Resource) -> list[LineItem]:
    """Gateway endpoints are free; interface endpoints cost per AZ-hour."""
    kind = res.attrs.get("vpc_endpoint_type", "Gateway")
    if kind == "Gateway":
        return []
    if kind != "Interface":
        raise PricingError(f"{res.address}: vpc_endpoint_type {kind!r} has no pricing rule")
    subnets = res.attrs.get("subnet_ids") or []
    azs = len(subnets) if isinstance(subnets, list) else 0
    if azs == 0:
        raise PricingError(f"{res.address}: interface endpoint without literal subnet_ids")
    return [
        priced(
            "VPC",
            res.label,
            azs * resource_hours(res),
            ctx.price("interface_endpoint_hour"),
            f"{azs} AZ(s) x 730 h x interface endpoint-hour price",
        )
    ]


def usage_inter_az(ctx: Context) -> list[LineItem]:
    """API-to-database traffic crossing AZs, billed in both directions."""
    if not ctx.stack.of_type("aws_rds_cluster") or not ctx.stack.of_type("aws_lambda_function"):
        return []
    u = ctx.usage
    per_tx = u.request_bytes + u.response_bytes + u.db_bytes_per_transaction
    gb = bytes_to_gb(ctx.transactions_per_month * per_tx) * u.cross_az_traffic_share
    return [
        priced(
            "Data transfer",
            "inter-AZ API to Aurora",
            2 * gb,
            ctx.price("inter_az_gb"),
            f"{ctx.transactions_per_month:,.0f} tx/month x ({u.request_bytes} + "
            f"{u.response_bytes} + {u.db_bytes_per_transaction}) bytes x cross-AZ share "
            f"{u.cross_az_traffic_share:g}, billed out and in (x2) at price per GB",
            unit="GB (both directions)",
        )
    ]
