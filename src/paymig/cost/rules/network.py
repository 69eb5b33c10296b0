"""VPC networking: NAT gateways, Elastic IPs, Site-to-Site VPN, VPC endpoints, inter-AZ traffic."""

from __future__ import annotations

from paymig.cost import traffic
from paymig.cost.context import Context
from paymig.cost.line_item import LineItem, priced
from paymig.cost.prices import PricingError
from paymig.cost.stack_view import Resource, references_in, resource_hours
from paymig.cost.units import bytes_to_gb

#: The environment variable naming the SSM parameter that holds the API's write target.
WRITE_TARGET_VARIABLE = "PAYMIG_WRITE_TARGET_PARAMETER"


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


def _interface_endpoints(ctx: Context) -> int:
    """Interface endpoints in the stack (they share the endpoint data processing)."""
    return sum(
        r.count
        for r in ctx.stack.of_type("aws_vpc_endpoint")
        if r.attrs.get("vpc_endpoint_type") == "Interface"
    )


def price_vpc_endpoint(ctx: Context, res: Resource) -> list[LineItem]:
    """Gateway endpoints are free; interface endpoints cost per AZ-hour and per GB."""
    kind = res.attrs.get("vpc_endpoint_type", "Gateway")
    if kind == "Gateway":
        return []
    if kind != "Interface":
        raise PricingError(f"{res.address}: vpc_endpoint_type {kind!r} has no pricing rule")
    subnets = res.attrs.get("subnet_ids") or []
    azs = len(subnets) if isinstance(subnets, list) else 0
    if azs == 0:
        raise PricingError(f"{res.address}: interface endpoint without literal subnet_ids")
    u = ctx.usage
    endpoints = _interface_endpoints(ctx)
    share = u.interface_endpoint_gb_per_month * ctx.scale * res.count / endpoints
    return [
        priced(
            "VPC",
            res.label,
            azs * resource_hours(res),
            ctx.price("interface_endpoint_hour"),
            f"{azs} AZ(s) (one ENI per subnet) x 730 h x interface endpoint-hour price",
        ),
        priced(
            "VPC",
            f"{res.label} data processing",
            share,
            ctx.price("interface_endpoint_gb"),
            f"endpoint traffic {u.interface_endpoint_gb_per_month:g} GB/month x scale "
            f"{ctx.scale:g}, split evenly over {endpoints} interface endpoint(s), x price per GB",
        ),
    ]


def write_target(ctx: Context) -> str:
    """Where the API writes: the SSM parameter the API names, else `app.write_target`."""
    for function in ctx.stack.of_type("aws_lambda_function"):
        if not ctx.is_api(function):
            continue
        env = function.blocks("environment")
        variables = env[0].get("variables", {}) if env else {}
        named = variables.get(WRITE_TARGET_VARIABLE) if isinstance(variables, dict) else None
        if not isinstance(named, str):
            continue
        refs = {lid for kind, lid in references_in(named) if kind == "aws_ssm_parameter"}
        for parameter in ctx.stack.of_type("aws_ssm_parameter"):
            if parameter.logical_id in refs or parameter.attrs.get("name") == named:
                value = parameter.attrs.get("value")
                if value in ("source", "aurora"):
                    return str(value)
    return ctx.facts.write_target


def usage_api_database(ctx: Context) -> list[LineItem]:
    """The API's database traffic: across AZs to Aurora, or out over the VPN to the source.

    With the source as write target, every query leaves AWS over the Site-to-Site VPN
    (data out at the EC2 rate; the results come back in for free); only the requests and
    responses cross AZs. Health checks query the write target too.
    """
    if not ctx.stack.of_type("aws_rds_cluster") or not ctx.stack.of_type("aws_lambda_function"):
        return []
    u = ctx.usage
    checks = traffic.health_checks_of_api(ctx)
    db_bytes = ctx.transactions_per_month * u.db_bytes_per_transaction
    db_bytes += checks * u.health_check_db_bytes
    db_basis = (
        f"{ctx.transactions_per_month:,.0f} tx/month x {u.db_bytes_per_transaction} B + "
        f"{checks:,.0f} health checks x {u.health_check_db_bytes} B"
    )
    edge_bytes = ctx.transactions_per_month * (u.request_bytes + u.response_bytes)
    share = u.cross_az_traffic_share
    if write_target(ctx) == "aurora":
        return [
            priced(
                "Data transfer",
                "inter-AZ API to Aurora",
                2 * bytes_to_gb(edge_bytes + db_bytes) * share,
                ctx.price("inter_az_gb"),
                f"({ctx.transactions_per_month:,.0f} tx/month x ({u.request_bytes} + "
                f"{u.response_bytes}) B + {db_basis}) x cross-AZ share {share:g}, billed out "
                "and in (x2) at price per GB",
                unit="GB (both directions)",
            )
        ]
    return [
        priced(
            "Data transfer",
            "inter-AZ API requests and responses",
            2 * bytes_to_gb(edge_bytes) * share,
            ctx.price("inter_az_gb"),
            f"{ctx.transactions_per_month:,.0f} tx/month x ({u.request_bytes} + "
            f"{u.response_bytes}) B x cross-AZ share {share:g}, billed out and in (x2)",
            unit="GB (both directions)",
        ),
        priced(
            "Data transfer",
            "API to the source database over the VPN (data out)",
            bytes_to_gb(db_bytes),
            ctx.price("vpn_data_out_gb"),
            f"write target source: ({db_basis}) leave AWS over the VPN, x price per GB out",
        ),
    ]
