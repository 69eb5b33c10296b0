"""Paths from a VPC client to an AWS API or to a database, with what they are made of."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from paymig.relations.apis import GATEWAY, NO_ENDPOINT
from paymig.relations.network import (
    ANYWHERE,
    HTTPS,
    Client,
    Network,
    Path,
    endpoint_type,
    private_dns,
)
from paymig.relations.stack import Address, unique


def api_path(net: Network, client: Client, service: str) -> Path:
    """How the client reaches ``service``'s API, or why it cannot."""
    endpoints = net.endpoints(service)
    interfaces = [(a, e) for a, e in endpoints if endpoint_type(e) == "Interface"]
    gateways = [(a, e) for a, e in endpoints if endpoint_type(e) == "Gateway"]
    if service in GATEWAY and gateways:
        return _gateway_path(net, client, *gateways[0])
    if interfaces:
        address, body = interfaces[0]
        if not private_dns(body):
            return Path(False, f"the {service} endpoint has private DNS off")
        return _interface_path(net, client, service, address, body)
    return _nat_path(net, client, service)


def _interface_path(
    net: Network, client: Client, service: str, endpoint: Address, body: Any
) -> Path:
    groups = net.endpoint_groups(body)
    for group in groups:
        egress = net.egress_to_group(client, group, HTTPS)
        ingress = net.ingress_from(group, client, HTTPS)
        if egress and ingress:
            return Path(True, resources=[endpoint, egress[0], ingress[0]])
    # With private DNS the service's name resolves to the endpoint for every client in
    # the VPC, so a client the endpoint does not admit cannot fall back to NAT.
    return Path(
        False,
        f"the {service} interface endpoint answers for the API's name in this VPC, but "
        "its security group does not admit the client on 443 (or the client's security "
        "group does not allow 443 out to it)",
    )


def _gateway_path(net: Network, client: Client, endpoint: Address, body: Any) -> Path:
    tables = net.route_tables(client)
    missing = [t for t in tables if t not in net.gateway_tables(body)]
    if missing or not tables:
        return Path(False, "the gateway endpoint is not associated with the client's route tables")
    egress = net.egress_to_prefix_list(client, endpoint, HTTPS)
    if not egress:
        return Path(False, "the client's security group allows no 443 out to the endpoint")
    return Path(True, resources=[endpoint, egress[0]])


def _nat_path(net: Network, client: Client, service: str) -> Path:
    egress = net.egress_to_cidr(client, ANYWHERE, HTTPS)
    if not egress:
        return Path(False, f"no {service} endpoint, and no 443 egress to the internet")
    tables = net.route_tables(client)
    routes = [net.nat_route(t) for t in tables]
    if not tables or None in routes:
        return Path(False, f"no {service} endpoint, and a client subnet has no NAT route")
    path = Path(True, resources=[egress[0], *(r for r in routes if r is not None)])
    if service not in NO_ENDPOINT:
        path.ok = False
        path.reason = (
            f"{service} has a VPC endpoint in AWS; reach it through one instead of the NAT "
            "gateways (keep NAT egress for APIs without an endpoint)"
        )
    return path


@dataclass(frozen=True)
class Server:
    """A database a client connects to: Aurora in the stack, or the on-prem source."""

    kind: str  # "aurora" or "source"
    host: str
    port: int


def database_path(net: Network, client: Client, server: Server) -> Path:
    """How the client reaches the database, or why it cannot."""
    if server.kind == "aurora":
        return _aurora_path(net, client, server)
    return _onprem_path(net, client, server)


def _aurora_path(net: Network, client: Client, server: Server) -> Path:
    graph = net.graph
    clusters = graph.of_type("aws_rds_cluster")
    if not clusters:
        return Path(False, "the stack has no Aurora cluster")
    cluster, body = next(iter(sorted(clusters.items())))
    instances = graph.referrers(cluster, "aws_rds_cluster_instance", "cluster_identifier")
    for group in graph.targets(body.get("vpc_security_group_ids"), "aws_security_group"):
        egress = net.egress_to_group(client, group, server.port)
        ingress = net.ingress_from(group, client, server.port)
        if egress and ingress:
            return Path(True, resources=unique([cluster, *instances, egress[0], ingress[0]]))
    return Path(
        False,
        f"Aurora's security group and the client's do not both allow {server.port} between them",
    )


def _onprem_path(net: Network, client: Client, server: Server) -> Path:
    tables = net.route_tables(client)
    destination = _host_cidr(server.host) or _vpn_cidr(net, tables)
    if destination is None:
        return Path(False, f"no route to the on-prem network for host {server.host!r}")
    egress = net.egress_to_cidr(client, destination, server.port)
    if not egress:
        return Path(False, f"the client's security group allows no {server.port} out to it")
    routes = [net.vpn_route(t, destination) for t in tables]
    if not tables or None in routes:
        return Path(False, "a client subnet has no route to it through the VPN gateway")
    vpn = sorted(net.graph.of_type("aws_vpn_connection"))
    vpn_routes = sorted(net.graph.of_type("aws_vpn_connection_route"))
    found = [egress[0], *(r for r in routes if r is not None), *vpn, *vpn_routes]
    return Path(True, resources=unique(found))


def _host_cidr(host: str) -> str | None:
    """``host/32`` for an IPv4 literal (a DNS name is routed by the VPN's CIDR instead)."""
    try:
        return f"{ipaddress.IPv4Address(host)}/32"
    except ValueError:
        return None


def _vpn_cidr(net: Network, tables: list[Address]) -> str | None:
    """The on-prem CIDR the client's first route table sends to the VPN gateway."""
    for table in tables[:1]:
        for _, route in net.routes(table):
            if net.graph.target(route.get("gateway_id"), "aws_vpn_gateway") is not None:
                return str(route.get("destination_cidr_block"))
    return None
