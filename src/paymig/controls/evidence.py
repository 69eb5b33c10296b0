"""Claims about the synthesized stack, each checked against the resources that back it.

A :class:`Claim` is a sentence and the resources it is about. Every function here reads
the stack (through :class:`~paymig.relations.stack.StackGraph`) and returns its claim only
if it holds for every resource it speaks of; otherwise it raises :class:`ControlMapError`
naming the resource that breaks it. So the control map cannot say what the stack does not
do: it fails to generate instead.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from paymig.errors import CommandFailedError
from paymig.relations.stack import Address, StackGraph, as_list, first_block, references_in


class ControlMapError(CommandFailedError):
    """A claim of the control map does not hold for the stack, or cites a missing test."""


@dataclass(frozen=True)
class Claim:
    """A sentence about the stack and the resources (``type path``) that make it true."""

    text: str
    resources: tuple[str, ...]


def name(graph: StackGraph, address: Address) -> str:
    """``type path`` with the path below the stack, as the map prints it."""
    path = graph.path(address)
    return f"{address.type} {path.split('/', 1)[1] if '/' in path else path}"


def every(
    graph: StackGraph, kinds: Iterable[str], holds: Callable[[Mapping[str, Any]], bool], text: str
) -> Claim:
    """`text` about every resource of `kinds` (at least one), each of which must satisfy `holds`."""
    items = {a: b for kind in kinds for a, b in graph.of_type(kind).items()}
    if not items:
        raise ControlMapError(f"control map: {text}: the stack has no {', '.join(kinds)}")
    broken = [name(graph, a) for a, body in sorted(items.items()) if not holds(body)]
    if broken:
        raise ControlMapError(f"control map: {text}: does not hold for {', '.join(broken)}")
    return Claim(text, tuple(name(graph, a) for a in sorted(items)))


def refers_to(kind: str) -> Callable[[Any], bool]:
    """A predicate: the value references a resource of `kind` (e.g. a customer-managed key)."""
    return lambda value: any(r.address.type == kind for r in references_in(value))


def parameters(body: Mapping[str, Any]) -> dict[str, str]:
    """A parameter group's parameters by name."""
    return {str(p.get("name")): str(p.get("value")) for p in as_list(body.get("parameter"))}


def lambda_databases(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The `PAYMIG_DB_*` declarations of a Lambda function (decision 4 of DESIGN.md)."""
    variables = first_block(body.get("environment")).get("variables", {})
    found = []
    for key, value in sorted(variables.items()):
        if key.startswith("PAYMIG_DB_") and isinstance(value, str):
            declared = json.loads(value)
            if isinstance(declared, dict):
                found.append(declared)
    return found


def is_private_source(rule: Mapping[str, Any]) -> bool:
    """An ingress rule whose source is a security group, a prefix list or a private CIDR."""
    if rule.get("referenced_security_group_id") or rule.get("prefix_list_id"):
        return True
    cidr = rule.get("cidr_ipv4")
    return isinstance(cidr, str) and ipaddress.ip_network(cidr, strict=False).is_private


def subnets_of_tier(graph: StackGraph, tier: str) -> set[Address]:
    """The subnets tagged `Tier = tier`."""
    return {
        a
        for a, body in graph.of_type("aws_subnet").items()
        if body.get("tags", {}).get("Tier") == tier
    }


def route_tables_of(graph: StackGraph, subnets: set[Address]) -> set[Address]:
    """The route tables associated with any of `subnets`."""
    tables = set()
    for body in graph.of_type("aws_route_table_association").values():
        subnet = graph.target(body.get("subnet_id"), "aws_subnet")
        table = graph.target(body.get("route_table_id"), "aws_route_table")
        if subnet in subnets and table is not None:
            tables.add(table)
    return tables


def default_routes(graph: StackGraph, table: Address) -> list[Address]:
    """Routes of `table` to 0.0.0.0/0 or ::/0 (separate resources or inline blocks)."""
    found = [
        a
        for a, body in graph.of_type("aws_route").items()
        if graph.target(body.get("route_table_id"), "aws_route_table") == table
        and (body.get("destination_cidr_block") == "0.0.0.0/0"
             or body.get("destination_ipv6_cidr_block") == "::/0")
    ]  # fmt: skip
    inline = as_list(graph.get(table).get("route"))
    return found + [table for r in inline if r.get("cidr_block") == "0.0.0.0/0"]
