"""A deployment check runs only after everything it reads exists, and only when that changes.

A check is an ``aws_lambda_invocation``: Terraform invokes the function once it and
the invocation's dependencies exist. Its function reads databases over network paths
(security-group rules on both sides, routes, the VPN, endpoints) and secrets, none of
which the function itself depends on, so the invocation must depend on them or it can
run before they exist and fail the apply. And an invocation re-runs whenever its
``triggers`` change: triggers that hold the function's code hash re-run the check when
an older commit is re-applied, blocking an infrastructure rollback for a reason that
has nothing to do with what the check checks.
"""

from __future__ import annotations

from paymig.relations.apis import code_services
from paymig.relations.databases import connections
from paymig.relations.findings import Finding
from paymig.relations.network import Client, Network
from paymig.relations.paths import api_path, database_path
from paymig.relations.stack import Address, StackGraph, references_in

RULE = "deployment-check"


def reads(net: Network, client: Client) -> list[Address]:
    """Every resource the function needs beyond itself: paths, databases, secrets."""
    graph = net.graph
    needed: list[Address] = []
    for service in sorted(code_services(graph, client)):
        needed.extend(api_path(net, client, service).resources)
    for connection in connections(net):
        if connection.client.address == client.address:
            needed.extend(database_path(net, client, connection.server).resources)
            if connection.ca is not None:
                needed.append(connection.ca)
    body = graph.get(client.address)
    for reference in references_in(body.get("environment")):
        if reference.address.type in ("aws_secretsmanager_secret", "aws_ssm_parameter"):
            needed.append(reference.address)
    return list(dict.fromkeys(needed))


def check(graph: StackGraph, region: str) -> list[Finding]:
    """Each invocation depends on what its function reads and is not keyed on code."""
    del region
    net = Network(graph)
    clients = {c.address: c for c in net.clients()}
    findings: list[Finding] = []
    for invocation, body in sorted(graph.of_type("aws_lambda_invocation").items()):
        function = graph.target(body.get("function_name"), "aws_lambda_function")
        if function is None:
            continue
        client = clients.get(function)
        for needed in reads(net, client) if client else []:
            if not graph.depends_on(invocation, needed):
                findings.append(
                    Finding(
                        RULE,
                        graph.path(invocation),
                        graph.path(needed),
                        "the check reads this but does not depend on it, so it can run "
                        "before it exists",
                    )
                )
        code_hash = graph.get(function).get("source_code_hash")
        triggers = body.get("triggers", {})
        if code_hash and isinstance(triggers, dict) and code_hash in triggers.values():
            findings.append(
                Finding(
                    RULE,
                    graph.path(invocation),
                    graph.path(function),
                    "triggers hold the function's code hash: re-applying an older commit "
                    "re-runs the check (key the triggers on what it checks)",
                )
            )
    return findings
