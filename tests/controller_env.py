"""Build a migration environment in the moto server for the controller's tests.

Creates what the stack would: the hosted zone with the `legacy` and `aws` weighted
records, the ALB with its HTTPS listener over the blue/green lambda target groups, the
alarms (all OK; the composite's stand-in notifies the alarm topic), the DMS CDC latency
metric, the audit table with the controller's key schema, the alarm topic with the
rollback function subscribed (MessageBody filter on the composite's ALARM), the function
(reserved concurrency 2), the alert topic (with an SQS queue subscribed, to read what the
controller published) and a consistent validation result.

moto does not implement composite alarms (put_composite_alarm answers HTTP 500), so
`<stack>-migration-health` is created as a metric alarm of that name: the controller
reads both kinds alike, but the composite's rule (ALARM when any child is in ALARM) is
not exercised here. moto does not evaluate alarms from metric data either: states are
driven with set_alarm_state, so the alarms' thresholds, periods and dimensions are not
tested here (the synthesized-alarm tests cover those).
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.config import Config

from audit_table import create_audit_table
from paymig.config import PaymigConfig, load_config
from paymig.local.emulator import MotoServer
from paymig.naming import (
    CDC_LATENCY_METRIC,
    CDC_LATENCY_NAMESPACE,
    alarm_names,
    alarm_topic_name,
    alb_name,
    alert_topic_name,
    audit_table_name,
    cdc_latency_dimensions,
    composite_alarm_name,
    dms_reverse_task_identifier,
    dms_task_identifier,
    rollback_function_name,
    target_group_name,
)
from paymig.runtime.controller.aws import (
    AuditTrail,
    ControllerAws,
    Metrics,
    Route53Weights,
    TokenBucket,
)
from paymig.runtime.controller.calls import Retrier
from paymig.runtime.controller.core import ControllerSettings
from paymig.runtime.controller.stage import StageStore, StoredStage
from paymig.semantics.cloudwatch_alarm import AlarmState
from paymig.semantics.cloudwatch_notification import (
    AlarmIdentity,
    StateChange,
    composite_alarm_notification,
)
from paymig.semantics.sns_lambda_event import lambda_event

REGION = "us-east-2"
#: The real connect, kept for env.controller() when a test patches it for the CLI/Lambda.
CONNECT = ControllerAws.connect


@dataclass
class MigrationEnv:
    """Handles on the emulated environment."""

    config: PaymigConfig
    config_path: Path
    session: Any
    zone_id: str
    queue_url: str
    alarm_topic_arn: str
    alert_topic_arn: str
    function_arn: str
    health_checks: dict[str, str]

    @property
    def stack(self) -> str:
        return self.config.stack_name

    @property
    def settings(self) -> ControllerSettings:
        return ControllerSettings.from_config(self.config)

    def controller(self) -> ControllerAws:
        """A fresh controller shell (its own clients, so hooks stay local to it)."""
        aws = CONNECT(self.settings.rollback, boto3.Session(region_name=REGION))
        # Fast test timing: no real rate-limit waits between tests, short backoff and polls.
        aws.route53 = Route53Weights(
            aws.route53.client,
            self.zone_id,
            self.config.dns.api_record_name,
            bucket=TokenBucket(5, 5),
            retrier=Retrier(base_delay=0.01, max_delay=0.05),
            poll_interval=0.2,
        )
        aws.listener.retrier = Retrier(base_delay=0.01, max_delay=0.05)
        # A loaded test machine can answer slower than the 1 s of the best-effort calls:
        # give them room here, so that what the tests inject is the only failure.
        roomy = Config(retries={"mode": "standard", "max_attempts": 1}, read_timeout=20)
        aws.audit_fast = AuditTrail(
            aws.clock.attach(self.session.client("dynamodb", config=roomy)),
            audit_table_name(self.stack),
            aws.clock.now,
        )
        aws.metrics_fast = Metrics(
            aws.clock.attach(self.session.client("cloudwatch", config=roomy)),
            self.stack,
            self.config.environment,
        )
        aws.stage_fast = StageStore(
            aws.clock.attach(self.session.client("dynamodb", config=roomy)),
            audit_table_name(self.stack),
        )
        return aws

    def client(self, name: str) -> Any:
        return self.session.client(name)

    def weights(self) -> dict[str, int]:
        records = self.client("route53").list_resource_record_sets(HostedZoneId=self.zone_id)
        return {
            r["SetIdentifier"]: r["Weight"]
            for r in records["ResourceRecordSets"]
            if "SetIdentifier" in r
        }

    def listener_weights(self) -> dict[str, int]:
        elb = self.client("elbv2")
        lb = elb.describe_load_balancers(Names=[alb_name(self.stack)])["LoadBalancers"][0]
        listener = elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"][0]
        arns = {
            g["TargetGroupArn"]: g["TargetGroupName"].rsplit("-", 1)[1]
            for g in elb.describe_target_groups()["TargetGroups"]
        }
        groups = listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
        return {arns[g["TargetGroupArn"]]: g["Weight"] for g in groups}

    def set_alarm(self, metric: str, state: str) -> None:
        self.client("cloudwatch").set_alarm_state(
            AlarmName=f"{self.stack}-{metric}", StateValue=state, StateReason="test"
        )

    def dms_task_resource_id(self, *, reverse: bool = False) -> str:
        """Create the environment's forward (or reverse) DMS task in moto once; its id."""
        dms = self.client("dms")
        identifier = (
            dms_reverse_task_identifier(self.stack) if reverse else dms_task_identifier(self.stack)
        )
        found = dms.describe_replication_tasks(
            Filters=[{"Name": "replication-task-id", "Values": [identifier]}]
        )["ReplicationTasks"]
        if found:
            return str(found[0]["ReplicationTaskArn"]).rsplit(":", 1)[-1]
        arn = "arn:aws:dms:us-east-2:123456789012:{}:{}"
        task = dms.create_replication_task(
            ReplicationTaskIdentifier=identifier,
            SourceEndpointArn=arn.format("endpoint", "AURORA" if reverse else "SOURCE"),
            TargetEndpointArn=arn.format("endpoint", "SOURCE" if reverse else "TARGET"),
            ReplicationInstanceArn=arn.format("rep", "INSTANCE"),
            MigrationType="cdc" if reverse else "full-load-and-cdc",
            TableMappings='{"rules": []}',
        )["ReplicationTask"]
        return str(task["ReplicationTaskArn"]).rsplit(":", 1)[-1]

    def put_cdc_latency(
        self, seconds: float, *, reverse: bool = False, at: datetime | None = None
    ) -> None:
        """A CDCLatencyTarget datapoint of the forward (or reverse) task, now or ``at``."""
        task_id = self.dms_task_resource_id(reverse=reverse)
        self.client("cloudwatch").put_metric_data(
            Namespace=CDC_LATENCY_NAMESPACE,
            MetricData=[
                {
                    "MetricName": CDC_LATENCY_METRIC,
                    "Dimensions": [
                        {"Name": k, "Value": v}
                        for k, v in cdc_latency_dimensions(self.stack, task_id).items()
                    ],
                    "Timestamp": at or datetime.now(UTC),
                    "Value": seconds,
                    "Unit": "Seconds",
                }
            ],
        )

    def audit(self) -> AuditTrail:
        return AuditTrail(self.client("dynamodb"), audit_table_name(self.stack))

    def stage(self) -> StageStore:
        return StageStore(self.client("dynamodb"), audit_table_name(self.stack))

    def move_stage(self, to: StoredStage, operation: str | None = None) -> None:
        """Store the stage as `paymig cutover`/`fallback` would (a conditional write)."""
        store = self.stage()
        store.move(
            store.read(),
            to,
            operation=operation,  # type: ignore[arg-type]
            now=datetime.now(UTC),
            actor="arn:aws:iam::123456789012:user/cutover",
            reason="set by the test",
        )

    def legacy_children(self) -> list[str]:
        """The per-address health checks under the legacy record's calculated check."""
        return self.health_checks["children"].split(",")

    def record_event(self, at: datetime, **event: Any) -> None:
        """Write an audit event dated `at` (as another controller did earlier)."""
        self.audit().record_event(event, at)

    def composite_alarm_event(self, state: str = "ALARM", old: str = "OK") -> dict[str, Any]:
        """Set the composite's stand-in to `state`; the SNS event Lambda then receives.

        The message is the composite's as CloudWatch documents it, delivered as SNS
        hands it to Lambda (paymig.semantics.cloudwatch_notification, sns_lambda_event).
        """
        name = composite_alarm_name(self.stack)
        cloudwatch = self.client("cloudwatch")
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
        alarm = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        changed = alarm["StateUpdatedTimestamp"]
        identity = AlarmIdentity(
            name=name,
            description="composite stand-in",
            account_id="123456789012",
            region=REGION,
            region_name="US East (Ohio)",
            alarm_actions=(self.alarm_topic_arn,),
        )
        message = composite_alarm_notification(
            identity,
            StateChange(AlarmState(state), AlarmState(old), "test", changed),
            alarm_rule=f'ALARM("{self.stack}-5xx-rate") OR ALARM("{self.stack}-p99-latency")',
            triggering_children=(),
        )
        return lambda_event(
            topic_arn=self.alarm_topic_arn,
            subscription_arn=f"{self.alarm_topic_arn}:0b4f2a9c-0000-4000-8000-000000000000",
            message_id=str(uuid.uuid4()),
            message=json.dumps(message),
            timestamp=changed,
            subject=f'{state}: "{name}" in US East (Ohio)',
            attributes={},
            signature="EXAMPLE",
            signing_cert_url="https://sns.us-east-2.amazonaws.com/cert.pem",
        )

    def notifications(self) -> list[dict[str, Any]]:
        """Messages the alert topic delivered to the test queue (SNS envelopes decoded)."""
        sqs = self.client("sqs")
        out = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return out
            for m in messages:
                envelope = json.loads(m["Body"])
                out.append({"subject": envelope.get("Subject"), **json.loads(envelope["Message"])})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


def _zone_with_real_shaped_id(route53: Any, name: str) -> str:
    """Create the hosted zone until moto's random id starts with Z, as real ids do.

    The config validates `hosted_zone_id` against Route 53's id format; moto draws ids
    from [A-Z0-9], so about one zone in 36 qualifies. The others are deleted.
    """
    for _ in range(2000):
        zone = route53.create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()))
        zone_id = zone["HostedZone"]["Id"].split("/")[-1]
        if zone_id.startswith("Z"):
            return str(zone_id)
        route53.delete_hosted_zone(Id=zone_id)
    raise AssertionError("moto never produced a zone id starting with Z")


def _health_checks(route53: Any, base: PaymigConfig, alb_dns: str) -> dict[str, str]:
    """As `infra.traffic` creates them: one check per legacy address, a calculated check
    over them (HealthThreshold 1) for the legacy record, and the load balancer's check."""

    def https(fqdn: str, address: str | None) -> str:
        config: dict[str, Any] = {
            "Type": "HTTPS",
            "FullyQualifiedDomainName": fqdn,
            "Port": 443,
            "ResourcePath": "/health",
            "RequestInterval": 30,
            "FailureThreshold": 3,
        }
        if address:
            config["IPAddress"] = address
        return str(
            route53.create_health_check(
                CallerReference=str(uuid.uuid4()), HealthCheckConfig=config
            )["HealthCheck"]["Id"]
        )

    children = [https(base.dns.legacy_endpoint, str(a)) for a in base.dns.legacy_addresses]
    legacy = route53.create_health_check(
        CallerReference=str(uuid.uuid4()),
        HealthCheckConfig={
            "Type": "CALCULATED",
            "ChildHealthChecks": children,
            "HealthThreshold": 1,
        },
    )["HealthCheck"]["Id"]
    return {"legacy": str(legacy), "aws": https(alb_dns, None), "children": ",".join(children)}


def _rollback_function(session: Any, stack: str) -> str:
    """The rollback function as the stack creates it (its code is not run here)."""
    role = session.client("iam").create_role(
        RoleName=f"{stack}-rollback",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    functions = session.client("lambda")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    arn = functions.create_function(
        FunctionName=rollback_function_name(stack),
        Runtime="python3.11",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": buffer.getvalue()},
    )["FunctionArn"]
    functions.put_function_concurrency(
        FunctionName=rollback_function_name(stack), ReservedConcurrentExecutions=2
    )
    return str(arn)


def _reset(moto: MotoServer) -> None:
    """Reset the emulator; its control call has a 5 s timeout that a loaded machine exceeds."""
    for attempt in range(3):
        try:
            moto.reset()
            return
        except (TimeoutError, urllib.error.URLError):
            if attempt == 2:
                raise


def build_env(
    moto: MotoServer,
    monkeypatch: Any,
    tmp_path: Path,
    base: PaymigConfig,
    *,
    controller: dict[str, Any] | None = None,
    cdc_latency: float | None = 5.0,
    validation: str | None = "consistent",
    aws_weight: int = 0,
) -> MigrationEnv:
    """Reset moto and create a whole environment for `base`'s stack."""
    _reset(moto)
    # A fixed seed makes moto's random ids repeatable (the first zone id then starts with Z).
    urllib.request.urlopen(
        urllib.request.Request(f"{moto.endpoint_url}/moto-api/seed?a=13", data=b"", method="POST")
    ).close()
    for key, value in moto.client_environment().items():
        monkeypatch.setenv(key, value)
    session = boto3.Session(region_name=REGION)
    stack = base.stack_name

    route53 = session.client("route53")
    zone_id = _zone_with_real_shaped_id(route53, base.dns.zone_name)

    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("abc")
    ]
    elb = session.client("elbv2")
    lb = elb.create_load_balancer(Name=alb_name(stack), Subnets=subnets)["LoadBalancers"][0]
    groups = {
        alias: elb.create_target_group(Name=target_group_name(stack, alias), TargetType="lambda")[
            "TargetGroups"
        ][0]["TargetGroupArn"]
        for alias in ("blue", "green")
    }
    cert = session.client("acm").request_certificate(DomainName=base.dns.api_record_name)
    elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTPS",
        Port=443,
        Certificates=[{"CertificateArn": cert["CertificateArn"]}],
        DefaultActions=[
            {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": groups["blue"], "Weight": 100},
                        {"TargetGroupArn": groups["green"], "Weight": 0},
                    ]
                },
            }
        ],
    )
    checks = _health_checks(route53, base, lb["DNSName"])
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": base.dns.api_record_name,
                        "Type": "A",
                        "SetIdentifier": "legacy",
                        "Weight": 100 - aws_weight,
                        "TTL": base.dns.record_ttl_seconds,
                        "ResourceRecords": [{"Value": str(ip)} for ip in base.dns.legacy_addresses],
                        "HealthCheckId": checks["legacy"],
                    },
                },
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": base.dns.api_record_name,
                        "Type": "A",
                        "SetIdentifier": "aws",
                        "Weight": aws_weight,
                        "AliasTarget": {
                            "HostedZoneId": lb["CanonicalHostedZoneId"],
                            "DNSName": lb["DNSName"],
                            "EvaluateTargetHealth": True,
                        },
                        "HealthCheckId": checks["aws"],
                    },
                },
            ]
        },
    )

    sns = session.client("sns")
    alarm_topic = sns.create_topic(Name=alarm_topic_name(stack))["TopicArn"]
    alert_topic = sns.create_topic(Name=alert_topic_name(stack))["TopicArn"]
    cloudwatch = session.client("cloudwatch")
    for name in alarm_names(stack):
        # moto implements no composite alarm: its stand-in is a metric alarm that notifies
        # the alarm topic as the composite does (moto never runs alarm actions).
        composite = name == composite_alarm_name(stack)
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="Paymig/Test",
            MetricName=name,
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanThreshold",
            ActionsEnabled=True,
            AlarmActions=[alarm_topic] if composite else [alert_topic],
        )
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="test setup")

    create_audit_table(session.client("dynamodb"), audit_table_name(stack))
    function_arn = _rollback_function(session, stack)
    sns.subscribe(
        TopicArn=alarm_topic,
        Protocol="lambda",
        Endpoint=function_arn,
        Attributes={
            "FilterPolicyScope": "MessageBody",
            "FilterPolicy": json.dumps(
                {"AlarmName": [composite_alarm_name(stack)], "NewStateValue": ["ALARM"]}
            ),
        },
    )
    sqs = session.client("sqs")
    queue_url = sqs.create_queue(QueueName=f"{stack}-test-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=alert_topic, Protocol="sqs", Endpoint=queue_arn)

    config = base.model_copy(
        update={
            "dns": base.dns.model_copy(update={"hosted_zone_id": zone_id}),
            "controller": base.controller.model_copy(
                update={
                    "dwell_minutes": {},
                    "route53_insync_timeout_seconds": 1,
                    **(controller or {}),
                }
            ),
        }
    )
    # Round-trip through YAML so the CLI loads exactly this config, validated.
    config_path = tmp_path / f"{config.environment}.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8")
    config = load_config(config_path)

    env = MigrationEnv(
        config,
        config_path,
        session,
        zone_id,
        queue_url,
        alarm_topic,
        alert_topic,
        function_arn,
        checks,
    )
    if cdc_latency is not None:
        env.put_cdc_latency(cdc_latency)
    if validation is not None:
        env.audit().record_validation({"status": validation, "summary": "set up by the test"})
    return env
