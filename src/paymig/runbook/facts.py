"""What the runbook needs to know about a stack, read from its synthesized ``cdk.tf.json``.

Every name the runbook prints (the DMS task id, the record, the ALB, the secrets, the
KMS aliases, the state bucket...) comes from here, i.e. from the Terraform the stack
really synthesizes, so the runbook cannot drift from the infrastructure. A resource the
runbook relies on but the document lacks is a :class:`RunbookError`, never a guess.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paymig import naming
from paymig.errors import PaymigError

#: `${aws_type.logical_id...}` references between resources.
_REFERENCE = re.compile(r"\$\{(?:[a-z]+\()?(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)")


class RunbookError(PaymigError):
    """The runbook cannot be generated: a resource, value or command is missing."""


@dataclass(frozen=True)
class Resource:
    """One resource of the synthesized document."""

    kind: str
    logical_id: str
    body: Mapping[str, Any]

    @property
    def address(self) -> str:
        """Terraform address, e.g. `aws_ecr_repository.app_repository_FECC6B82`."""
        return f"{self.kind}.{self.logical_id}"

    @property
    def path(self) -> str:
        """Construct path, e.g. `paymig-prod/app/repository`."""
        meta = self.body.get("//", {}).get("metadata", {})
        return str(meta.get("path", f"?/{self.logical_id}"))

    @property
    def construct(self) -> str:
        """Top-level construct under the stack (`network`, `data`, `app`, ...)."""
        parts = self.path.split("/")
        return parts[1] if len(parts) > 2 else parts[-1]

    def get(self, key: str, default: Any = None) -> Any:
        """An attribute of the resource body."""
        return self.body.get(key, default)

    def references(self) -> set[tuple[str, str]]:
        """The `(type, logical id)` of every resource this one references."""
        found: set[tuple[str, str]] = set()

        def walk(value: Any) -> None:
            if isinstance(value, str):
                found.update(_REFERENCE.findall(value))
            elif isinstance(value, Mapping):
                for key, item in value.items():
                    if key != "//":
                        walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(self.body)
        found.discard((self.kind, self.logical_id))
        return found


@dataclass(frozen=True)
class WeightedRecord:
    """One weighted record of the API name."""

    set_identifier: str
    record_type: str
    weight: int
    ttl: int | None
    #: The record's values (addresses or a name); empty for an alias record.
    values: tuple[str, ...]
    #: True when the record is an alias (to the load balancer).
    is_alias: bool

    @property
    def target(self) -> str:
        """What the record answers, in words."""
        return "alias to the load balancer" if self.is_alias else ", ".join(self.values)


@dataclass(frozen=True)
class ConstructSummary:
    """A top-level construct: its resource counts by type and the constructs it uses."""

    name: str
    counts: tuple[tuple[str, int], ...]
    uses: tuple[str, ...]

    @property
    def total(self) -> int:
        """Number of resources in the construct."""
        return sum(n for _, n in self.counts)


@dataclass(frozen=True)
class StackFacts:  # pylint: disable=too-many-instance-attributes
    """The names and values the runbook prints, all read from the synthesized document."""

    stack_name: str
    state_bucket: str
    state_key: str
    state_region: str
    constructs: tuple[ConstructSummary, ...]
    dms_task_id: str
    dms_task_address: str
    dms_migration_type: str
    dms_reverse_task_id: str
    dms_instance_id: str
    dms_instance_class: str
    dms_multi_az: bool
    dms_endpoint_ids: tuple[str, ...]
    cluster_identifier: str
    instance_identifiers: tuple[str, ...]
    ca_cert_identifiers: tuple[str, ...]
    engine_version: str
    hosted_zone_id: str
    record_name: str
    records: tuple[WeightedRecord, ...]
    alb_name: str
    target_groups: tuple[str, ...]
    https_listener_address: str
    function_name: str
    function_address: str
    lambda_aliases: tuple[str, ...]
    ecr_repository: str
    ecr_address: str
    secret_names: tuple[str, ...]
    rotation_days: tuple[int, ...]
    kms_aliases: tuple[str, ...]
    web_acl_name: str
    log_groups: tuple[str, ...]
    sns_topics: tuple[str, ...]
    function_names: tuple[str, ...] = field(default=())
    dynamodb_tables: tuple[str, ...] = field(default=())
    metric_alarms: tuple[str, ...] = field(default=())
    composite_alarms: tuple[str, ...] = field(default=())
    dashboards: tuple[str, ...] = field(default=())

    def record(self, set_identifier: str) -> WeightedRecord:
        """The weighted record with this set identifier."""
        for rec in self.records:
            if rec.set_identifier == set_identifier:
                return rec
        raise RunbookError(
            f"synthesized stack {self.stack_name}: no weighted record {self.record_name} "
            f"with set identifier {set_identifier!r}"
        )


# --------------------------------------------------------------------------- reading


def _resources(document: Mapping[str, Any], kind: str) -> list[Resource]:
    """Every resource of a type, ordered by construct path."""
    items = document.get("resource", {}).get(kind, {})
    found = [Resource(kind, lid, body) for lid, body in items.items()]
    return sorted(found, key=lambda r: (r.path, r.logical_id))


def _one(document: Mapping[str, Any], kind: str, stack: str) -> Resource:
    """The single resource of a type; anything else is an error naming the type."""
    found = _resources(document, kind)
    if len(found) != 1:
        raise RunbookError(
            f"synthesized stack {stack}: expected exactly one {kind}, found {len(found)}"
        )
    return found[0]


def _at(document: Mapping[str, Any], kind: str, suffix: str, stack: str) -> Resource:
    """The resource of a type whose construct path ends with ``suffix``."""
    found = [r for r in _resources(document, kind) if r.path.endswith(suffix)]
    if len(found) != 1:
        raise RunbookError(
            f"synthesized stack {stack}: expected one {kind} at .../{suffix}, found {len(found)}"
        )
    return found[0]


def _text(resource: Resource, key: str, stack: str) -> str:
    """A required literal string attribute (not a `${...}` reference)."""
    value = resource.get(key)
    if not isinstance(value, str) or not value or value.startswith("${"):
        raise RunbookError(f"synthesized stack {stack}: {resource.address} has no literal `{key}`")
    return value


def _names(document: Mapping[str, Any], kind: str, key: str) -> tuple[str, ...]:
    """Sorted literal values of one attribute over every resource of a type."""
    values = {r.get(key) for r in _resources(document, kind)}
    return tuple(sorted(v for v in values if isinstance(v, str) and not v.startswith("${")))


def _constructs(document: Mapping[str, Any]) -> tuple[ConstructSummary, ...]:
    """Top-level constructs with their resource counts and the constructs they reference."""
    owner: dict[tuple[str, str], str] = {}
    counts: dict[str, Counter[str]] = {}
    every: list[Resource] = []
    for kind in sorted(document.get("resource", {})):
        for res in _resources(document, kind):
            owner[(kind, res.logical_id)] = res.construct
            counts.setdefault(res.construct, Counter())[kind] += 1
            every.append(res)
    uses: dict[str, set[str]] = {name: set() for name in counts}
    for res in every:
        for ref in res.references():
            target = owner.get(ref)
            if target is not None and target != res.construct:
                uses[res.construct].add(target)
    return tuple(
        ConstructSummary(
            name=name,
            counts=tuple(sorted(counts[name].items(), key=lambda kv: (-kv[1], kv[0]))),
            uses=tuple(sorted(uses[name])),
        )
        for name in sorted(counts)
    )


def _records(
    document: Mapping[str, Any], stack: str
) -> tuple[str, str, tuple[WeightedRecord, ...]]:
    """Zone id, record name and the weighted records of the API name."""
    weighted = [r for r in _resources(document, "aws_route53_record") if r.get("set_identifier")]
    if not weighted:
        raise RunbookError(f"synthesized stack {stack}: no weighted aws_route53_record")
    names = {r.get("name") for r in weighted}
    zones = {r.get("zone_id") for r in weighted}
    if len(names) != 1 or len(zones) != 1:
        raise RunbookError(
            f"synthesized stack {stack}: weighted records span several names or zones"
        )
    records = []
    for res in weighted:
        policy = res.get("weighted_routing_policy") or {}
        records.append(
            WeightedRecord(
                set_identifier=str(res.get("set_identifier")),
                record_type=str(res.get("type")),
                weight=int(policy.get("weight", 0)),
                ttl=res.get("ttl") if isinstance(res.get("ttl"), int) else None,
                values=tuple(str(v) for v in res.get("records", [])),
                is_alias=isinstance(res.get("alias"), Mapping),
            )
        )
    records.sort(key=lambda r: r.set_identifier)
    return str(zones.pop()), str(names.pop()), tuple(records)


def _https_listener(document: Mapping[str, Any], stack: str) -> Resource:
    """The ALB listener on 443."""
    found = [r for r in _resources(document, "aws_lb_listener") if r.get("port") == 443]
    if len(found) != 1:
        raise RunbookError(f"synthesized stack {stack}: expected one HTTPS (443) aws_lb_listener")
    return found[0]


def _payment_api(document: Mapping[str, Any], stack: str) -> Resource:
    """The payment API function, by the name both halves agree on."""
    name = naming.payment_api_function(stack)
    for res in _resources(document, "aws_lambda_function"):
        if res.get("function_name") == name:
            return res
    raise RunbookError(f"synthesized stack {stack}: no aws_lambda_function named {name}")


def _image_repository(document: Mapping[str, Any], function: Resource, stack: str) -> Resource:
    """The ECR repository the payment API's image comes from (its `image_uri` says which)."""
    refs = {lid for kind, lid in function.references() if kind == "aws_ecr_repository"}
    found = [r for r in _resources(document, "aws_ecr_repository") if r.logical_id in refs]
    if len(found) != 1:
        raise RunbookError(
            f"synthesized stack {stack}: {function.address} does not take its image from "
            "exactly one aws_ecr_repository"
        )
    return found[0]


def stack_facts(document: Mapping[str, Any]) -> StackFacts:
    """Read the runbook's facts from a synthesized `cdk.tf.json` document."""
    meta = document.get("//", {}).get("metadata", {})
    stack = meta.get("stackName")
    if not isinstance(stack, str) or not stack:
        raise RunbookError("synthesized document has no `//.metadata.stackName`")
    backend = document.get("terraform", {}).get("backend", {}).get("s3")
    if not isinstance(backend, Mapping):
        raise RunbookError(f"synthesized stack {stack}: no S3 backend in `terraform.backend`")
    task = _at(document, "aws_dms_replication_task", "replication/task", stack)
    reverse = _at(document, "aws_dms_replication_task", "replication/reverse-task", stack)
    instance = _one(document, "aws_dms_replication_instance", stack)
    cluster = _one(document, "aws_rds_cluster", stack)
    db_instances = _resources(document, "aws_rds_cluster_instance")
    zone, record_name, records = _records(document, stack)
    function = _payment_api(document, stack)
    ecr = _image_repository(document, function, stack)
    rotation = [
        (r.get("rotation_rules") or {}).get("automatically_after_days")
        for r in _resources(document, "aws_secretsmanager_secret_rotation")
    ]
    return StackFacts(
        stack_name=stack,
        state_bucket=str(backend.get("bucket")),
        state_key=str(backend.get("key")),
        state_region=str(backend.get("region")),
        constructs=_constructs(document),
        dms_task_id=_text(task, "replication_task_id", stack),
        dms_task_address=task.address,
        dms_migration_type=_text(task, "migration_type", stack),
        dms_reverse_task_id=_text(reverse, "replication_task_id", stack),
        dms_instance_id=_text(instance, "replication_instance_id", stack),
        dms_instance_class=_text(instance, "replication_instance_class", stack),
        dms_multi_az=bool(instance.get("multi_az")),
        dms_endpoint_ids=_names(document, "aws_dms_endpoint", "endpoint_id"),
        cluster_identifier=_text(cluster, "cluster_identifier", stack),
        instance_identifiers=tuple(_text(i, "identifier", stack) for i in db_instances),
        ca_cert_identifiers=_names(document, "aws_rds_cluster_instance", "ca_cert_identifier"),
        engine_version=_text(cluster, "engine_version", stack),
        hosted_zone_id=zone,
        record_name=record_name,
        records=records,
        alb_name=_text(_one(document, "aws_lb", stack), "name", stack),
        target_groups=_names(document, "aws_lb_target_group", "name"),
        https_listener_address=_https_listener(document, stack).address,
        function_name=_text(function, "function_name", stack),
        function_address=function.address,
        lambda_aliases=_names(document, "aws_lambda_alias", "name"),
        ecr_repository=_text(ecr, "name", stack),
        ecr_address=ecr.address,
        secret_names=_names(document, "aws_secretsmanager_secret", "name"),
        rotation_days=tuple(sorted({int(d) for d in rotation if isinstance(d, int)})),
        kms_aliases=_names(document, "aws_kms_alias", "name"),
        web_acl_name=_text(_one(document, "aws_wafv2_web_acl", stack), "name", stack),
        log_groups=_names(document, "aws_cloudwatch_log_group", "name"),
        sns_topics=_names(document, "aws_sns_topic", "name"),
        function_names=_names(document, "aws_lambda_function", "function_name"),
        dynamodb_tables=_names(document, "aws_dynamodb_table", "name"),
        metric_alarms=_names(document, "aws_cloudwatch_metric_alarm", "alarm_name"),
        composite_alarms=_names(document, "aws_cloudwatch_composite_alarm", "alarm_name"),
        dashboards=_names(document, "aws_cloudwatch_dashboard", "dashboard_name"),
    )
