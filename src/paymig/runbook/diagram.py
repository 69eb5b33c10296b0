"""The architecture diagram's content: one box per top-level construct, and its arrows.

Which resource types headline a box, which constructs reference which, and where the
clients, the on-prem database and the legacy API attach are decided here from the
:class:`~paymig.runbook.facts.StackFacts`; ``templates/architecture.md.j2`` writes them
as a Mermaid flowchart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from paymig.runbook.facts import ConstructSummary, StackFacts

#: Resource types that wire others together; the diagram names the resources they wire.
_PLUMBING = re.compile(
    r"_(policy|policy_attachment|association|attachment|permission|alias|rule|route|"
    r"lifecycle_policy|versioning|public_access_block|notification|"
    r"server_side_encryption_configuration|lifecycle_configuration|logging_configuration|"
    r"validation)$"
)

#: Types a reader looks for first in a box of the diagram (presentation order only).
_HEADLINE = (
    "aws_lb",
    "aws_lambda_function",
    "aws_ecr_repository",
    "aws_rds_cluster",
    "aws_rds_cluster_instance",
    "aws_dms_replication_instance",
    "aws_dms_replication_task",
    "aws_dms_endpoint",
    "aws_vpc",
    "aws_subnet",
    "aws_nat_gateway",
    "aws_vpn_connection",
    "aws_wafv2_web_acl",
    "aws_route53_record",
    "aws_route53_health_check",
    "aws_cloudwatch_dashboard",
    "aws_cloudwatch_metric_alarm",
    "aws_cloudwatch_composite_alarm",
    "aws_dynamodb_table",
    "aws_secretsmanager_secret",
    "aws_kms_key",
)

#: How many resource types a box lists.
_TOP_TYPES = 4


@dataclass(frozen=True)
class Box:
    """One top-level construct in the diagram."""

    node: str
    name: str
    total: int
    #: The headline resource types (without `aws_`) and their counts.
    top: tuple[tuple[str, int], ...]
    #: Clients reach the API name here (the weighted records live in this construct).
    entry: bool
    #: The site-to-site VPN to the on-prem network starts here.
    vpn: bool
    #: DMS replicates from the on-prem database into this construct.
    dms: bool


@dataclass(frozen=True)
class Diagram:
    """Everything the Mermaid flowchart shows."""

    stack_node: str
    boxes: tuple[Box, ...]
    #: `(from, to)` node ids: a construct references a resource of another.
    edges: tuple[tuple[str, str], ...]
    #: Where clients enter when no construct is called `traffic` (None: one is).
    fallback_entry: str | None


def mermaid_id(name: str) -> str:
    """A Mermaid-safe node id."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _is_plumbing(kind: str) -> bool:
    """Whether a resource type only connects or configures other resources."""
    return bool(_PLUMBING.search(kind))


def _headline_rank(kind_count: tuple[str, int]) -> tuple[int, int, str]:
    """Sort key: listed headline types first, then the most numerous, then by name."""
    kind, count = kind_count
    rank = _HEADLINE.index(kind) if kind in _HEADLINE else len(_HEADLINE)
    return rank, -count, kind


def _box(construct: ConstructSummary) -> Box:
    """A construct's box: its headline types and what attaches to it."""
    main = [(k, n) for k, n in construct.counts if not _is_plumbing(k)] or list(construct.counts)
    top = sorted(main, key=_headline_rank)[:_TOP_TYPES]
    kinds = {kind for kind, _ in construct.counts}
    return Box(
        node=mermaid_id(construct.name),
        name=construct.name,
        total=construct.total,
        top=tuple((kind.removeprefix("aws_"), n) for kind, n in top),
        entry="aws_route53_health_check" in kinds
        or ("aws_route53_record" in kinds and construct.name == "traffic"),
        vpn="aws_vpn_connection" in kinds,
        dms="aws_dms_replication_task" in kinds,
    )


def architecture(facts: StackFacts) -> Diagram:
    """The diagram of the stack's top-level constructs."""
    names = {c.name for c in facts.constructs}
    return Diagram(
        stack_node=mermaid_id(facts.stack_name),
        boxes=tuple(_box(c) for c in facts.constructs),
        edges=tuple(
            (mermaid_id(c.name), mermaid_id(used)) for c in facts.constructs for used in c.uses
        ),
        fallback_entry=None if "traffic" in names else mermaid_id(facts.constructs[0].name),
    )
