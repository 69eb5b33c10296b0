"""What the rehearsal does in the emulator besides Terraform's apply.

- The hosted zone exists before the apply (the stack looks it up by id).
- What the controller's gates read and the apply did not create is created here with
  boto3, and listed in the report as such: alarms (moto implements no composite alarm,
  so ``migration-health`` becomes a metric alarm of that name; the CDC latency alarm
  needs the DMS task), the audit table and the alarm topic if missing, and the DMS task
  whose CDC latency the gate reads (the emulator cannot create it through Terraform).
- The CDC latency the gate reads is the replication lag measured on the local servers,
  published under the DMS metric's name and dimensions.
- The fault: alarms set to ALARM with ``set_alarm_state`` (moto evaluates no alarm from
  metric data), and the SNS event AWS would deliver to the rollback Lambda, built from
  the alarm as the emulator describes it (moto cannot run the Lambda).
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from paymig.config import PaymigConfig
from paymig.errors import CommandFailedError
from paymig.naming import (
    ALARM_METRICS,
    AUDIT_PARTITION_KEY,
    AUDIT_SORT_KEY,
    CDC_LATENCY_METRIC,
    CDC_LATENCY_NAMESPACE,
    alarm_names,
    alarm_topic_name,
    audit_table_name,
    cdc_latency_dimensions,
    composite_alarm_name,
    dms_task_identifier,
)

#: Region name AWS prints in alarm notification subjects.
REGION_NAMES = {"us-east-2": "US East (Ohio)", "us-east-1": "US East (N. Virginia)"}


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


@dataclass(frozen=True)
class GateInputs:
    """What exists for the gates, and which of it the rehearsal had to create."""

    created_by_rehearsal: list[str]
    dms_task_resource_id: str
    topic_arn: str


def _alarm_exists(cloudwatch: Any, names: list[str]) -> set[str]:
    """Names among `names` of alarms that exist (metric or composite)."""
    found = cloudwatch.describe_alarms(AlarmNames=names)
    return {a["AlarmName"] for a in found.get("MetricAlarms", [])} | {
        a["AlarmName"] for a in found.get("CompositeAlarms", [])
    }


def provision_gate_inputs(session: Any, config: PaymigConfig) -> GateInputs:
    """Create what the gates and the rollback read, unless the apply created it."""
    stack = config.stack_name
    created: list[str] = []
    sns = session.client("sns")
    topic_name = alarm_topic_name(stack)
    topics = [t["TopicArn"] for t in sns.list_topics().get("Topics", [])]
    topic = next((t for t in topics if t.rsplit(":", 1)[-1] == topic_name), None)
    if topic is None:
        topic = sns.create_topic(Name=topic_name)["TopicArn"]
        created.append(f"SNS topic {topic_name}")
    cloudwatch = session.client("cloudwatch")
    names = list(alarm_names(stack))
    existing = _alarm_exists(cloudwatch, names)
    for metric, name in zip((*ALARM_METRICS, None), names, strict=True):
        if name in existing:
            continue
        # Thresholds from config where the alarm has one; the composite watches nothing.
        settings = config.observability.alarms.get(metric) if metric else None  # type: ignore[call-overload]
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            AlarmDescription="created by paymig rehearse: the apply did not create it",
            Namespace="Paymig/Rehearsal",
            MetricName=metric or "MigrationHealth",
            Statistic="Maximum",
            Period=settings.period_seconds if settings else 60,
            EvaluationPeriods=settings.evaluation_periods if settings else 1,
            Threshold=settings.threshold if settings else 0.0,
            ComparisonOperator="GreaterThanThreshold",
            # The composite's stand-in notifies the alarm topic as the composite does (the
            # controller's `armed` gate checks it); moto never runs alarm actions.
            ActionsEnabled=metric is None,
            AlarmActions=[topic] if metric is None else [],
        )
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="rehearsal start")
        created.append(f"CloudWatch alarm {name}")
    dynamodb = session.client("dynamodb")
    table = audit_table_name(stack)
    if table not in dynamodb.list_tables().get("TableNames", []):
        dynamodb.create_table(
            TableName=table,
            KeySchema=[
                {"AttributeName": AUDIT_PARTITION_KEY, "KeyType": "HASH"},
                {"AttributeName": AUDIT_SORT_KEY, "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": AUDIT_PARTITION_KEY, "AttributeType": "S"},
                {"AttributeName": AUDIT_SORT_KEY, "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        created.append(f"DynamoDB audit table {table}")
    dms = session.client("dms")
    task_id = dms_task_identifier(stack)
    tasks = dms.describe_replication_tasks(
        Filters=[{"Name": "replication-task-id", "Values": [task_id]}]
    ).get("ReplicationTasks", [])
    if tasks:
        arn = str(tasks[0]["ReplicationTaskArn"])
    else:
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
        created.append(f"DMS replication task {task_id} (record only: it moves no data)")
    return GateInputs(created, str(arn).rsplit(":", 1)[-1], str(topic))


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


def alarm_state(cloudwatch: Any, name: str) -> dict[str, Any] | None:
    """The alarm as CloudWatch describes it, or None."""
    found = cloudwatch.describe_alarms(AlarmNames=[name])
    alarms = found.get("MetricAlarms", []) + found.get("CompositeAlarms", [])
    return alarms[0] if alarms else None


def inject_fault(cloudwatch: Any, config: PaymigConfig, reason: str) -> list[str]:
    """Drive the 5xx-rate alarm and the migration-health alarm to ALARM."""
    stack = config.stack_name
    names = [f"{stack}-5xx-rate", composite_alarm_name(stack)]
    for name in names:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason=reason)
    return names


def alarm_sns_event(
    alarm: dict[str, Any], *, topic_arn: str, message_id: str, region: str, old_state: str
) -> dict[str, Any]:
    """The SNS event Lambda receives for an alarm's state change, as AWS delivers it."""
    changed = alarm.get("StateUpdatedTimestamp") or datetime.now(UTC)
    changed_text = changed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    account = topic_arn.split(":")[4]
    message = {
        "AlarmName": alarm["AlarmName"],
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": changed_text,
        "NewStateValue": alarm["StateValue"],
        "NewStateReason": alarm.get("StateReason", ""),
        "StateChangeTime": changed_text,
        "Region": REGION_NAMES.get(region, region),
        "AlarmArn": alarm.get("AlarmArn"),
        "OldStateValue": old_state,
        "OKActions": alarm.get("OKActions", []),
        "AlarmActions": alarm.get("AlarmActions", []),
        "InsufficientDataActions": alarm.get("InsufficientDataActions", []),
        "Trigger": {
            "MetricName": alarm.get("MetricName"),
            "Namespace": alarm.get("Namespace"),
            "StatisticType": "Statistic",
            "Statistic": str(alarm.get("Statistic", "")).upper(),
            "Unit": None,
            "Dimensions": alarm.get("Dimensions", []),
            "Period": alarm.get("Period"),
            "EvaluationPeriods": alarm.get("EvaluationPeriods"),
            "ComparisonOperator": alarm.get("ComparisonOperator"),
            "Threshold": alarm.get("Threshold"),
            "TreatMissingData": alarm.get("TreatMissingData", "missing"),
        },
    }
    subject = f'ALARM: "{alarm["AlarmName"]}" in {REGION_NAMES.get(region, region)}'
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:{uuid.uuid4()}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": message_id,
                    "TopicArn": topic_arn,
                    "Subject": subject[:100],
                    "Message": json.dumps(message),
                    "Timestamp": now,
                    "SignatureVersion": "1",
                    "Signature": "",
                    "SigningCertUrl": "",
                    "UnsubscribeUrl": "",
                    "MessageAttributes": {},
                },
            }
        ]
    }
