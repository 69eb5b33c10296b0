"""The controller's thin boto3 shell: the clients of one environment, wired together.

Each service concern has its module (:mod:`.route53`, :mod:`.listener`, :mod:`.metrics`,
:mod:`.audit`); this one creates their clients with the right call settings
(:mod:`.calls`), attaches the clock that follows AWS's time (:mod:`.clock`), and holds
the notifier and the caller's identity. boto3 honours `AWS_ENDPOINT_URL`, so the same
code runs against the emulator. Nothing is decided here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3

from paymig.naming import alarm_topic_name, alert_topic_name, audit_table_name
from paymig.runtime.controller.audit import AuditTrail, LockLease, utc_timestamp
from paymig.runtime.controller.calls import (
    AWS_ERRORS,
    SHELL_ERRORS,
    AwsCallError,
    attempt_config,
    best_effort_config,
    client_config,
    describe_error,
    guarded,
)
from paymig.runtime.controller.clock import ServerClock
from paymig.runtime.controller.core import RollbackSettings
from paymig.runtime.controller.listener import ListenerWeights
from paymig.runtime.controller.metrics import Metrics
from paymig.runtime.controller.route53 import Route53Weights, TokenBucket, WeightedRecords
from paymig.runtime.controller.stage import StageStore

__all__ = [
    "AWS_ERRORS",
    "SHELL_ERRORS",
    "AuditTrail",
    "AwsCallError",
    "CallerIdentity",
    "ControllerAws",
    "ListenerWeights",
    "LockLease",
    "Metrics",
    "Notifier",
    "Route53Weights",
    "TokenBucket",
    "WeightedRecords",
    "describe_error",
    "guarded",
    "utc_timestamp",
]


class Notifier:
    """Publishes the controller's notifications to the alert topic (people, not the Lambda)."""

    #: Message attribute naming which part of the controller published the message.
    SOURCE_ATTRIBUTE = "paymig_source"

    def __init__(self, client: Any, topic_arn: str) -> None:
        """Wrap an SNS client and the topic ARN."""
        self.client = client
        self.topic_arn = topic_arn

    def publish(self, subject: str, message: Mapping[str, Any], source: str) -> str:
        """Publish a JSON message; return the message id."""
        response = self.client.publish(
            TopicArn=self.topic_arn,
            Subject=subject[:100],
            Message=json.dumps(message, default=str, indent=1),
            MessageAttributes={
                self.SOURCE_ATTRIBUTE: {"DataType": "String", "StringValue": source}
            },
        )
        message_id: str = response["MessageId"]
        return message_id


@dataclass(frozen=True)
class CallerIdentity:
    """Who is calling AWS."""

    arn: str
    account: str

    @property
    def partition(self) -> str:
        """The ARN partition (`aws`, `aws-cn`, ...)."""
        return self.arn.split(":")[1]


@dataclass
class ControllerAws:
    """Every AWS face the controller uses, for one environment."""

    route53: Route53Weights
    listener: ListenerWeights
    metrics: Metrics
    #: CloudWatch through a client that makes one short attempt (the rollback's event check).
    metrics_fast: Metrics
    audit: AuditTrail
    #: The same table through a client that makes one short attempt (before DNS).
    audit_fast: AuditTrail
    #: The run-time migration stage (an item of the audit table).
    stage: StageStore
    #: The same item through a client that makes one short attempt (the rollback's read).
    stage_fast: StageStore
    sts: Any
    sns: Any
    functions: Any
    clock: ServerClock
    region: str
    stack_name: str
    alert_topic_arn: str | None = None

    @classmethod
    def connect(
        cls, settings: RollbackSettings, session: boto3.Session | None = None
    ) -> ControllerAws:
        """Create the clients from a boto3 session (the default one if not given)."""
        session = session or boto3.Session()
        clock = ServerClock()

        def client(service: str, config: Any) -> Any:
            """A client of the session, watched by the clock."""
            return clock.attach(session.client(service, config=config))

        stack = settings.stack_name
        table = audit_table_name(stack)
        return cls(
            route53=Route53Weights(
                client("route53", attempt_config()), settings.hosted_zone_id, settings.record_name
            ),
            listener=ListenerWeights(client("elbv2", attempt_config()), stack),
            metrics=Metrics(
                client("cloudwatch", client_config()),
                stack,
                settings.environment,
                dms=client("dms", client_config(max_attempts=2)),
            ),
            metrics_fast=Metrics(
                client("cloudwatch", best_effort_config()), stack, settings.environment
            ),
            audit=AuditTrail(client("dynamodb", client_config(max_attempts=3)), table, clock.now),
            audit_fast=AuditTrail(client("dynamodb", best_effort_config()), table, clock.now),
            stage=StageStore(client("dynamodb", client_config(max_attempts=3)), table),
            stage_fast=StageStore(client("dynamodb", best_effort_config()), table),
            sts=client("sts", attempt_config()),
            sns=client("sns", client_config()),
            functions=client("lambda", client_config()),
            clock=clock,
            region=session.region_name or "us-east-1",
            stack_name=stack,
            alert_topic_arn=settings.alert_topic_arn,
        )

    def identity(self) -> CallerIdentity:
        """The caller's identity (recorded as `actor`)."""
        response = self.sts.get_caller_identity()
        return CallerIdentity(arn=response["Arn"], account=response["Account"])

    def topic_arn(self, name: str, identity: CallerIdentity | None) -> str:
        """ARN of one of the environment's topics: from the identity, else by listing."""
        if identity is not None:
            return f"arn:{identity.partition}:sns:{self.region}:{identity.account}:{name}"
        kwargs: dict[str, Any] = {}
        while True:
            page = self.sns.list_topics(**kwargs)
            for topic in page.get("Topics", []):
                if str(topic["TopicArn"]).rsplit(":", 1)[-1] == name:
                    return str(topic["TopicArn"])
            if not page.get("NextToken"):
                raise AwsCallError(f"SNS topic {name} not found")
            kwargs["NextToken"] = page["NextToken"]

    def alarm_topic_arn(self, identity: CallerIdentity | None) -> str:
        """The alarm topic (the composite's; it invokes the rollback function)."""
        return self.topic_arn(alarm_topic_name(self.stack_name), identity)

    def notifier(self, identity: CallerIdentity | None) -> Notifier:
        """The alert topic's notifier: the configured ARN, else derived or looked up."""
        arn = self.alert_topic_arn or self.topic_arn(alert_topic_name(self.stack_name), identity)
        return Notifier(self.sns, arn)
