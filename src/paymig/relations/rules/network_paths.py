"""Every VPC client has a network path to every AWS API and database it uses.

moto checks no security group, route or endpoint, so a missing path shows up only on
real AWS, as a timeout. AWS's rules applied here: a security group rule must exist on
both sides (the client's egress, the destination's ingress); an interface endpoint
with private DNS answers for the service's name across the VPC ("Access an AWS
service using an interface VPC endpoint", AWS PrivateLink Guide), so a client its
security group does not admit cannot fall back to the NAT gateways; a gateway endpoint
needs the client's route tables; anything else needs a NAT route.
"""

from __future__ import annotations

from paymig.relations.apis import NO_ENDPOINT, code_services
from paymig.relations.databases import connections, undeclared_database_clients
from paymig.relations.findings import Finding
from paymig.relations.network import ANYWHERE, HTTPS, Network
from paymig.relations.paths import api_path, database_path
from paymig.relations.stack import StackGraph

RULE = "network-path"


def check(graph: StackGraph, region: str) -> list[Finding]:
    """Paths to APIs, paths to databases, and no internet egress without a reason."""
    del region  # endpoint names are matched by suffix
    net = Network(graph)
    findings: list[Finding] = []
    for client in net.clients():
        services = code_services(graph, client)
        for service in sorted(services):
            path = api_path(net, client, service)
            if not path.ok:
                findings.append(
                    Finding(RULE, graph.path(client.address), f"{service} API", path.reason)
                )
        if not services & NO_ENDPOINT:
            for rule in net.egress_to_cidr(client, ANYWHERE, HTTPS):
                findings.append(
                    Finding(
                        RULE,
                        graph.path(client.address),
                        graph.path(rule),
                        "443 egress to 0.0.0.0/0, but every API the client calls has a "
                        "VPC endpoint",
                    )
                )
    for connection in connections(net):
        path = database_path(net, connection.client, connection.server)
        if not path.ok:
            findings.append(
                Finding(
                    RULE,
                    graph.path(connection.client.address),
                    f"{connection.server.kind} database ({connection.name})",
                    path.reason,
                )
            )
    for client, rule in undeclared_database_clients(net):
        findings.append(
            Finding(
                RULE,
                graph.path(client.address),
                graph.path(rule),
                "allowed out to PostgreSQL but declares no database connection "
                "(PAYMIG_DB_* environment variable), so its TLS settings cannot be checked",
            )
        )
    return findings
