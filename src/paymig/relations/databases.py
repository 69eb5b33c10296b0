"""Who connects to which database, with which TLS settings, read from the stack.

Two kinds of clients: Lambda functions, which declare each database they use in one
environment variable ``PAYMIG_DB_<NAME>`` holding JSON (:data:`ENV_PREFIX`, written by
``paymig.infra`` in the same call that opens the network path), and DMS replication
instances, whose endpoints name the server, the SSL mode and the CA certificate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from paymig.relations.network import Client, Network
from paymig.relations.paths import Server
from paymig.relations.stack import Address, StackGraph, first_block

#: Environment variables declaring a database connection of a Lambda function.
ENV_PREFIX = "PAYMIG_DB_"
POSTGRES_PORT = 5432
#: DMS engine names by server kind.
DMS_ENGINES = {"aurora-postgresql": "aurora", "postgres": "source"}


@dataclass(frozen=True)
class Connection:
    """One client's connection to one database."""

    client: Client
    name: str  # the env var, or the DMS endpoint's construct path
    server: Server
    sslmode: str
    #: The resource holding the CA the client verifies with (an SSM parameter or a DMS
    #: certificate), or None when the client names none.
    ca: Address | None


def _env(body: Mapping[str, Any]) -> Mapping[str, Any]:
    variables = first_block(body.get("environment")).get("variables", {})
    return variables if isinstance(variables, Mapping) else {}


def _parameter_named(graph: StackGraph, name: str) -> Address | None:
    """The SSM parameter a declaration names, by literal name or by reference."""
    referenced = graph.target(name, "aws_ssm_parameter")
    if referenced is not None:
        return referenced
    for address, body in graph.of_type("aws_ssm_parameter").items():
        if body.get("name") == name:
            return address
    return None


def lambda_connections(graph: StackGraph, client: Client) -> Iterator[Connection]:
    """The databases a Lambda function declares in its environment."""
    for variable, text in sorted(_env(graph.get(client.address)).items()):
        if not variable.startswith(ENV_PREFIX):
            continue
        try:
            spec = json.loads(str(text))
        except json.JSONDecodeError:
            spec = {}
        host = str(spec.get("host", ""))
        kind = "aurora" if graph.target(host, "aws_rds_cluster") else "source"
        ca_name = spec.get("ca_parameter")
        yield Connection(
            client=client,
            name=variable,
            server=Server(kind, host, int(spec.get("port", POSTGRES_PORT))),
            sslmode=str(spec.get("sslmode", "")),
            ca=_parameter_named(graph, str(ca_name)) if ca_name else None,
        )


def dms_connections(graph: StackGraph, client: Client) -> Iterator[Connection]:
    """The source and target endpoints of every task on a DMS replication instance."""
    endpoints: dict[Address, None] = {}
    for _, task in sorted(graph.of_type("aws_dms_replication_task").items()):
        if graph.target(task.get("replication_instance_arn")) != client.address:
            continue
        for field in ("source_endpoint_arn", "target_endpoint_arn"):
            endpoint = graph.target(task.get(field), "aws_dms_endpoint")
            if endpoint is not None:
                endpoints.setdefault(endpoint, None)
    for endpoint in endpoints:
        body = graph.get(endpoint)
        kind = DMS_ENGINES.get(str(body.get("engine_name")), "source")
        host = str(body.get("server_name", ""))
        yield Connection(
            client=client,
            name=graph.path(endpoint),
            server=Server(kind, host, int(body.get("port", POSTGRES_PORT))),
            sslmode=str(body.get("ssl_mode", "none")),
            ca=graph.target(body.get("certificate_arn"), "aws_dms_certificate"),
        )


def connections(net: Network) -> list[Connection]:
    """Every database connection of every VPC client in the stack."""
    found: list[Connection] = []
    for client in net.clients():
        if client.address.type == "aws_lambda_function":
            found.extend(lambda_connections(net.graph, client))
        else:
            found.extend(dms_connections(net.graph, client))
    return found


def undeclared_database_clients(net: Network) -> list[tuple[Client, Address]]:
    """Lambda clients allowed out to PostgreSQL that declare no database connection."""
    declared = {c.client.address for c in connections(net)}
    found: list[tuple[Client, Address]] = []
    for client in net.clients():
        if client.address.type != "aws_lambda_function" or client.address in declared:
            continue
        for group in client.security_groups:
            for rule, body in net.rules("aws_vpc_security_group_egress_rule", group):
                if body.get("from_port") == POSTGRES_PORT or body.get("to_port") == POSTGRES_PORT:
                    found.append((client, rule))
    return found


def ca_pem(graph: StackGraph, ca: Address) -> str:
    """The PEM text an SSM parameter or a DMS certificate holds."""
    body = graph.get(ca)
    return str(body.get("value") if ca.type == "aws_ssm_parameter" else body.get("certificate_pem"))


def is_sample(graph: StackGraph, ca: Address) -> bool:
    """Whether the CA resource is marked as a sample (a stand-in for the real bundle)."""
    tags = graph.get(ca).get("tags", {})
    return isinstance(tags, Mapping) and str(tags.get("Sample", "")).lower() == "true"
