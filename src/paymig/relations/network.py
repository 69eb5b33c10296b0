"""Network paths inside the synthesized stack: security-group rules, routes, endpoints.

A VPC-attached client (a Lambda function with ``vpc_config``, a DMS replication
instance) reaches a destination only when *both* sides agree: its own security group
allows the traffic out, the destination's security group (an interface endpoint, the
database) lets it in, and the client's subnets route it (an interface endpoint is local
to the VPC; a gateway endpoint needs the route table; anything else needs a NAT route).
This module answers those questions from the JSON alone, and names every resource a
path is made of, so a deployment check can be made to depend on them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paymig.relations.stack import Address, StackGraph, as_list, first_block, unique

HTTPS = 443
ANYWHERE = "0.0.0.0/0"
INGRESS = "aws_vpc_security_group_ingress_rule"
EGRESS = "aws_vpc_security_group_egress_rule"


@dataclass(frozen=True)
class Client:
    """A resource with network interfaces in the VPC, and where they sit."""

    address: Address
    security_groups: tuple[Address, ...]
    subnets: tuple[Address, ...]


@dataclass
class Path:
    """Whether a path holds, why not, and the resources it is made of."""

    ok: bool
    reason: str = ""
    resources: list[Address] = field(default_factory=list)


def _ports(rule: Mapping[str, Any]) -> tuple[str, int | None, int | None]:
    protocol = str(rule.get("ip_protocol", rule.get("protocol", "-1")))
    low = rule.get("from_port")
    high = rule.get("to_port")
    return protocol, _int(low), _int(high)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def allows_port(rule: Mapping[str, Any], port: int) -> bool:
    """Whether a rule's protocol and port range admit TCP ``port``."""
    protocol, low, high = _ports(rule)
    if protocol in ("-1", "all"):
        return True
    if protocol not in ("tcp", "6"):
        return False
    return low is not None and high is not None and low <= port <= high


def cidr_covers(outer: Any, inner: str) -> bool:
    """Whether literal CIDR ``outer`` contains CIDR ``inner`` (false for interpolations)."""
    try:
        return ipaddress.ip_network(str(inner), strict=False).subnet_of(
            ipaddress.ip_network(str(outer), strict=False)  # type: ignore[arg-type]
        )
    except (ValueError, TypeError):
        return False


class Network:
    """The security groups, routes and endpoints of one stack."""

    def __init__(self, graph: StackGraph) -> None:
        """Index the stack's network resources."""
        self.graph = graph

    # ---------------------------------------------------------------- clients

    def clients(self) -> list[Client]:
        """Every Lambda function in a VPC and every DMS replication instance."""
        found: list[Client] = []
        for address, body in sorted(self.graph.of_type("aws_lambda_function").items()):
            vpc = first_block(body.get("vpc_config"))
            if vpc:
                found.append(
                    self._client(address, vpc.get("security_group_ids"), vpc.get("subnet_ids"))
                )
        for address, body in sorted(self.graph.of_type("aws_dms_replication_instance").items()):
            group = self.graph.target(
                body.get("replication_subnet_group_id"), "aws_dms_replication_subnet_group"
            )
            subnets = self.graph.get(group).get("subnet_ids") if group else None
            found.append(self._client(address, body.get("vpc_security_group_ids"), subnets))
        return found

    def _client(self, address: Address, groups: Any, subnets: Any) -> Client:
        return Client(
            address,
            tuple(self.graph.targets(groups, "aws_security_group")),
            tuple(self.graph.targets(subnets, "aws_subnet")),
        )

    # ---------------------------------------------------------------- security groups

    def rules(self, kind: str, group: Address) -> list[tuple[Address, Mapping[str, Any]]]:
        """The standalone ingress or egress rules of one security group."""
        return [
            (a, body)
            for a, body in sorted(self.graph.of_type(kind).items())
            if self.graph.target(body.get("security_group_id"), "aws_security_group") == group
        ]

    def egress_to_group(self, client: Client, group: Address, port: int) -> list[Address]:
        """Egress rules of the client that let TCP ``port`` out to ``group``."""
        return [
            a
            for sg in client.security_groups
            for a, rule in self.rules(EGRESS, sg)
            if allows_port(rule, port)
            and (
                self.graph.target(rule.get("referenced_security_group_id")) == group
                or rule.get("cidr_ipv4") == ANYWHERE
            )
        ]

    def egress_to_cidr(self, client: Client, cidr: str, port: int) -> list[Address]:
        """Egress rules of the client that let TCP ``port`` out to ``cidr``."""
        return [
            a
            for sg in client.security_groups
            for a, rule in self.rules(EGRESS, sg)
            if allows_port(rule, port) and cidr_covers(rule.get("cidr_ipv4"), cidr)
        ]

    def egress_to_prefix_list(self, client: Client, endpoint: Address, port: int) -> list[Address]:
        """Egress rules that reach a gateway endpoint's prefix list (or anywhere)."""
        return [
            a
            for sg in client.security_groups
            for a, rule in self.rules(EGRESS, sg)
            if allows_port(rule, port)
            and (
                self.graph.target(rule.get("prefix_list_id")) == endpoint
                or rule.get("cidr_ipv4") == ANYWHERE
            )
        ]

    def ingress_from(self, group: Address, client: Client, port: int) -> list[Address]:
        """Ingress rules of ``group`` that admit the client's security groups on ``port``."""
        return [
            a
            for a, rule in self.rules(INGRESS, group)
            if allows_port(rule, port)
            and self.graph.target(rule.get("referenced_security_group_id"))
            in client.security_groups
        ]

    # ---------------------------------------------------------------- routes

    def route_tables(self, client: Client) -> list[Address]:
        """Route tables associated with the client's subnets."""
        tables: list[Address] = []
        for _, body in sorted(self.graph.of_type("aws_route_table_association").items()):
            if self.graph.target(body.get("subnet_id")) in client.subnets:
                table = self.graph.target(body.get("route_table_id"), "aws_route_table")
                if table is not None:
                    tables.append(table)
        return unique(tables)

    def routes(self, table: Address) -> list[tuple[Address, Mapping[str, Any]]]:
        """Standalone routes of one route table."""
        return [
            (a, body)
            for a, body in sorted(self.graph.of_type("aws_route").items())
            if self.graph.target(body.get("route_table_id"), "aws_route_table") == table
        ]

    def nat_route(self, table: Address) -> Address | None:
        """The table's default route through a NAT gateway, if it has one."""
        for address, route in self.routes(table):
            if route.get("destination_cidr_block") == ANYWHERE and route.get("nat_gateway_id"):
                return address
        return None

    def vpn_route(self, table: Address, cidr: str) -> Address | None:
        """A route of the table sending ``cidr`` to a VPN gateway, if there is one."""
        for address, route in self.routes(table):
            gateway = self.graph.target(route.get("gateway_id"), "aws_vpn_gateway")
            if gateway is not None and cidr_covers(route.get("destination_cidr_block"), cidr):
                return address
        return None

    # ---------------------------------------------------------------- endpoints

    def endpoints(self, service: str) -> list[tuple[Address, Mapping[str, Any]]]:
        """VPC endpoints whose service name ends with ``.<service>``."""
        return [
            (a, body)
            for a, body in sorted(self.graph.of_type("aws_vpc_endpoint").items())
            if str(body.get("service_name", "")).endswith(f".{service}")
        ]

    def endpoint_groups(self, endpoint: Mapping[str, Any]) -> list[Address]:
        """Security groups of an interface endpoint."""
        return self.graph.targets(endpoint.get("security_group_ids"), "aws_security_group")

    def gateway_tables(self, endpoint: Mapping[str, Any]) -> list[Address]:
        """Route tables a gateway endpoint is associated with."""
        return self.graph.targets(endpoint.get("route_table_ids"), "aws_route_table")


def endpoint_type(body: Mapping[str, Any]) -> str:
    """``Interface`` or ``Gateway`` (Terraform's default is Gateway)."""
    return str(body.get("vpc_endpoint_type", "Gateway"))


def private_dns(body: Mapping[str, Any]) -> bool:
    """Whether an interface endpoint answers for the service's public name."""
    return bool(body.get("private_dns_enabled", False))


def literal_cidrs(values: Any) -> list[str]:
    """The literal CIDR strings of a value."""
    return [str(v) for v in as_list(values) if "${" not in str(v)]
