"""What the rehearsal does in the emulator besides Terraform's apply.

- Before the apply: the hosted zone (the stack looks it up by id), and a fixed seed for
  the emulator's ids (so the synthesized stack, which names the zone, stays the same).
- After the apply: the DMS task record the gates and the CDC alarm name (the emulator
  cannot run DMS; the record moves no data), then the resources the apply could not
  create but the emulator can hold, from their synthesized definitions
  (:mod:`paymig.rehearsal.stack_defs`).
- During the run: the measured replication lag, published as the DMS CDC latency.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paymig.config import PaymigConfig
from paymig.errors import CommandFailedError
from paymig.naming import (
    CDC_LATENCY_METRIC,
    CDC_LATENCY_NAMESPACE,
    cdc_latency_dimensions,
    dms_task_identifier,
)
from paymig.rehearsal.delivery import CompositeDefinition
from paymig.rehearsal.stack_defs import (
    Resolver,
    composite_definition,
    dashboard_metrics,
    metric_alarm_request,
    put_composite,
    resources_of,
    state_attributes,
)

_TASK_ID_LOCAL = re.compile(
    r'^\$\{element\(split\(":",\s*(aws_dms_replication_task\.[A-Za-z0-9_-]+)'
    r"\.replication_task_arn\),\s*6\)\}$"
)


def seed(endpoint_url: str, value: int = 13) -> None:
    """Seed the emulator's random ids, so that they repeat from run to run."""
    request = urllib.request.Request(  # noqa: S310 - loopback URL of the emulator
        f"{endpoint_url}/moto-api/seed?a={value}", data=b"", method="POST"
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


def create_hosted_zone(route53: Any, name: str, attempts: int = 2000) -> str:
    """Create the public zone; return its id, shaped like a real one (starts with Z).

    The config validates the id's shape; moto draws ids from [A-Z0-9], so zones whose
    id does not start with Z are deleted and drawn again (with the fixed seed, the first
    draw already qualifies, which keeps the id, and so the synthesized stack, stable).
    """
    for attempt in range(attempts):
        zone = route53.create_hosted_zone(Name=name, CallerReference=f"paymig-{attempt}")
        zone_id = str(zone["HostedZone"]["Id"]).rsplit("/", 1)[-1]
        if zone_id.startswith("Z"):
            return zone_id
        route53.delete_hosted_zone(Id=zone_id)
    raise CommandFailedError("the emulator never produced a hosted zone id starting with Z")


def dms_task_record(session: Any, config: PaymigConfig) -> str:
    """The DMS task's resource id; its record is created if the apply did not create it."""
    dms = session.client("dms")
    task_id = dms_task_identifier(config.stack_name)
    tasks = dms.describe_replication_tasks(
        Filters=[{"Name": "replication-task-id", "Values": [task_id]}]
    ).get("ReplicationTasks", [])
    if tasks:
        return str(tasks[0]["ReplicationTaskArn"]).rsplit(":", 1)[-1]
    account = session.client("sts").get_caller_identity()["Account"]
    base = f"arn:aws:dms:{config.region}:{account}"
    arn = dms.create_replication_task(
        ReplicationTaskIdentifier=task_id,
        SourceEndpointArn=f"{base}:endpoint:rehearsal-source",
        TargetEndpointArn=f"{base}:endpoint:rehearsal-target",
        ReplicationInstanceArn=f"{base}:rep:rehearsal-instance",
        MigrationType="full-load-and-cdc",
        TableMappings=json.dumps({"rules": []}),
    )["ReplicationTask"]["ReplicationTaskArn"]
    return str(arn).rsplit(":", 1)[-1]


def task_locals(document: Mapping[str, Any], task_resource_id: str) -> dict[str, str]:
    """Values of the locals that take the DMS task's resource id from its ARN."""
    return {
        name: task_resource_id
        for name, text in document.get("locals", {}).items()
        if isinstance(text, str) and _TASK_ID_LOCAL.match(text)
    }


@dataclass
class CompletedStack:
    """What the rehearsal created from definitions, and the composite it stands for."""

    created: list[str] = field(default_factory=list)
    composite: CompositeDefinition | None = None
    dashboard_body: dict[str, Any] | None = None


def complete_stack(
    session: Any,
    document: Mapping[str, Any],
    *,
    state_path: Path,
    not_rehearsed: Mapping[str, str],
    task_resource_id: str,
    config: PaymigConfig,
) -> CompletedStack:
    """Create the alarms, the composite and the dashboard the apply could not create."""
    resolver = Resolver(state_attributes(state_path), task_locals(document, task_resource_id))
    cloudwatch = session.client("cloudwatch")
    done = CompletedStack()
    account = session.client("sts").get_caller_identity()["Account"]
    for address, body in resources_of(document, "aws_cloudwatch_metric_alarm").items():
        if address in not_rehearsed:
            cloudwatch.put_metric_alarm(**metric_alarm_request(resolver.value(body)))
            done.created.append(f"CloudWatch alarm {body['alarm_name']} ({address})")
    for address, body in resources_of(document, "aws_cloudwatch_composite_alarm").items():
        definition = composite_definition(resolver.value(body), account, config.region)
        done.composite = definition
        if address in not_rehearsed:
            put_composite(cloudwatch, definition)
            done.created.append(
                f"CloudWatch composite alarm {definition.name} ({address}), through the "
                "emulator's PutCompositeAlarm (paymig.local.moto_extensions)"
            )
    for address, body in resources_of(document, "aws_cloudwatch_dashboard").items():
        resolved = resolver.value(body)
        done.dashboard_body = json.loads(resolved["dashboard_body"])
        if address in not_rehearsed:
            cloudwatch.put_dashboard(
                DashboardName=resolved["dashboard_name"], DashboardBody=resolved["dashboard_body"]
            )
            done.created.append(f"CloudWatch dashboard {resolved['dashboard_name']} ({address})")
    return done


def dashboard_coverage(cloudwatch: Any, body: Mapping[str, Any]) -> dict[str, list[str]]:
    """Which of the dashboard's metrics received data in the emulator, and which did not."""
    coverage: dict[str, list[str]] = {"with data": [], "without data": []}
    for namespace, name, dims in dashboard_metrics(body):
        found = cloudwatch.list_metrics(
            Namespace=namespace, MetricName=name,
            Dimensions=[{"Name": k, "Value": v} for k, v in dims],
        ).get("Metrics", [])  # fmt: skip
        wanted = sorted(dims)
        hit = any(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]) == wanted for m in found)
        label = f"{namespace} {name} " + ",".join(f"{k}={v}" for k, v in dims)
        coverage["with data" if hit else "without data"].append(label.strip())
    return coverage


def publish_cdc_latency(
    cloudwatch: Any, config: PaymigConfig, task_id: str, seconds: float
) -> None:
    """Publish a measured replication lag as the DMS CDC latency the gate reads."""
    cloudwatch.put_metric_data(
        Namespace=CDC_LATENCY_NAMESPACE,
        MetricData=[
            {
                "MetricName": CDC_LATENCY_METRIC,
                "Dimensions": [
                    {"Name": k, "Value": v}
                    for k, v in cdc_latency_dimensions(config.stack_name, task_id).items()
                ],
                "Timestamp": datetime.now(UTC),
                "Value": seconds,
                "Unit": "Seconds",
            }
        ],
    )


def read_weights(route53: Any, zone_id: str, record_name: str) -> dict[str, int]:
    """Weights of the API name's weighted records, by set identifier, as Route 53 has them."""
    wanted = record_name.rstrip(".") + "."
    records = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {
        str(r["SetIdentifier"]): int(r["Weight"])
        for r in records
        if "SetIdentifier" in r and str(r["Name"]).rstrip(".") + "." == wanted
    }
