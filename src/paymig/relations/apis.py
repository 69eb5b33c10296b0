"""Which AWS APIs a VPC-attached client's own code calls, read from its IAM policies.

Some actions in a Lambda function's role are used by the Lambda *service* on the
function's behalf, not by its code through the function's network interfaces, so they
need no network path from the VPC (AWS Lambda Developer Guide: the service writes the
function's logs, manages its ENIs, sends to its dead-letter queue and decrypts its
environment). Every other action is called by the code, so the client needs a path to
that service's endpoint. A DMS replication instance reads its endpoints' Secrets
Manager secrets itself (DMS User Guide: engine 3.4.7 and later in a private subnet
needs a Secrets Manager VPC endpoint or a public route).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from paymig.relations.network import Client
from paymig.relations.stack import Address, StackGraph, as_list, parse_policy, statements

#: IAM service prefix -> the VPC endpoint service name of its API.
ENDPOINT_NAME = {"cloudwatch": "monitoring"}
#: APIs with no VPC endpoint: reachable only through a NAT gateway (Route 53's API is
#: global and has no interface endpoint).
NO_ENDPOINT = frozenset({"route53"})
#: Services reached through a gateway endpoint (route table + prefix list).
GATEWAY = frozenset({"s3", "dynamodb"})
#: Actions the Lambda service performs for the function, outside its network.
SERVICE_SIDE_PREFIXES = ("logs:", "ec2:", "sqs:SendMessage")


def endpoint_service(prefix: str) -> str:
    """The endpoint service name (``secretsmanager``, ``monitoring``...) of an IAM prefix."""
    return ENDPOINT_NAME.get(prefix, prefix)


def _role_statements(graph: StackGraph, role: Address) -> Iterator[Mapping[str, Any]]:
    for _, body in sorted(graph.of_type("aws_iam_role_policy").items()):
        if graph.target(body.get("role"), "aws_iam_role") == role:
            yield from statements(parse_policy(body.get("policy")))
    inline = graph.get(role).get("inline_policy")
    for block in as_list(inline):
        if isinstance(block, Mapping):
            yield from statements(parse_policy(block.get("policy")))


def code_services(graph: StackGraph, client: Client) -> set[str]:
    """The endpoint service names the client's code calls."""
    body = graph.get(client.address)
    if client.address.type == "aws_dms_replication_instance":
        return {"secretsmanager"} if _dms_reads_secrets(graph) else set()
    role = graph.target(body.get("role"), "aws_iam_role")
    if role is None:
        return set()
    services: set[str] = set()
    for statement in _role_statements(graph, role):
        if statement.get("Effect") != "Allow":
            continue
        for action in as_list(statement.get("Action")):
            text = str(action)
            if ":" not in text or text.startswith(SERVICE_SIDE_PREFIXES):
                continue
            if text.startswith("kms:") and _kms_via_services_only(statement):
                continue
            services.add(endpoint_service(text.split(":", 1)[0]))
    return services


def _kms_via_services_only(statement: Mapping[str, Any]) -> bool:
    """A KMS grant limited by ``kms:ViaService`` is used by that service, not the code."""
    condition = statement.get("Condition", {})
    return isinstance(condition, Mapping) and any(
        isinstance(clauses, Mapping) and "kms:ViaService" in clauses
        for clauses in condition.values()
    )


def _dms_reads_secrets(graph: StackGraph) -> bool:
    return any(
        body.get("secrets_manager_arn") for body in graph.of_type("aws_dms_endpoint").values()
    )
