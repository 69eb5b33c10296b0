"""The relational check: pairs of resources whose relation AWS enforces, read from the JSON.

checkov looks at one resource at a time; these rules look at pairs (a log group and its
key's policy, a client and the network path to what it calls, a client and the CA of
its server, an alarm and the function its notification must reach, a deployment check
and what it reads). Each rule is a module under :mod:`paymig.relations.rules` with a
``check(graph, region)`` function; :data:`RULES` lists them in the order reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from paymig.relations.findings import Finding
from paymig.relations.rules import (
    alarm_delivery,
    deployment_checks,
    log_group_keys,
    network_paths,
    tls_trust,
)
from paymig.relations.stack import StackGraph

Rule = Callable[[StackGraph, str], list[Finding]]

#: Every relational rule, by name.
RULES: dict[str, Rule] = {
    log_group_keys.RULE: log_group_keys.check,
    network_paths.RULE: network_paths.check,
    tls_trust.RULE: tls_trust.check,
    alarm_delivery.RULE: alarm_delivery.check,
    deployment_checks.RULE: deployment_checks.check,
}


def check_stack(document: Mapping[str, Any], region: str) -> list[Finding]:
    """Run every rule over a synthesized stack; findings in rule order."""
    graph = StackGraph(document)
    findings: list[Finding] = []
    for rule in RULES.values():
        findings.extend(sorted(rule(graph, region)))
    return findings


__all__ = ["RULES", "Finding", "check_stack"]
