"""Automation (requirement 8): the audit table and the automatic rollback Lambda.

The composite ``migration-health`` alarm notifies the alarm topic; the topic invokes the
rollback function (code: :mod:`paymig.lambdas.rollback`, the same path as
``paymig rollback``), which moves Route 53 back to legacy 100 / aws 0 first, then the
listener to the stable alias, records the event and notifies the alert topic.

The subscription's filter is on the message *body* (scope ``MessageBody``): CloudWatch
alarm notifications carry no message attributes, and SNS never matches a
``MessageAttributes`` filter against a message without attributes ("an empty set of
attributes results in the filter not matching", SNS Developer Guide, "Key matching").
It admits only the composite's ALARM transitions; the function's own notifications go
to the alert topic, so they can never invoke it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf import AssetType, TerraformAsset
from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
)
from cdktf_cdktf_provider_aws.lambda_function_event_invoke_config import (
    LambdaFunctionEventInvokeConfig,
)
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from paymig import naming
from paymig.config import ControllerConfig, DnsConfig
from paymig.infra.endpoints import ServiceEndpoints
from paymig.infra.functions import FunctionProps, VpcFunction
from paymig.infra.iam import statement
from paymig.infra.kms import KEY_USAGE_ACTIONS, CustomerManagedKey, KeyProps
from paymig.infra.lambda_package import build_package
from paymig.rollback_timing import (
    LAMBDA_MAX_RETRY_ATTEMPTS,
    rollback_event_age_seconds,
    rollback_timeout_seconds,
)

PYTHON_RUNTIME = "python3.11"

#: Modules of paymig the rollback function needs (boto3 comes with the runtime).
ROLLBACK_MODULES = ("errors.py", "naming.py", "rollback_timing.py", "runtime/__init__.py",
                    "runtime/controller", "lambdas/__init__.py", "lambdas/rollback.py",
                    "semantics/__init__.py", "semantics/route53_weighted.py")  # fmt: skip
#: The APIs the rollback code calls. Route 53's API has no VPC endpoint (NAT).
ROLLBACK_APIS = ("route53", "elasticloadbalancing", "dynamodb", "sns", "monitoring", "sts")
#: Asynchronous (SNS) invocations: Lambda's two retries; the maximum event age is
#: :func:`paymig.rollback_timing.rollback_event_age_seconds` of the function's timeout, so
#: both retries can start, and the handler rejects anything older (a late delivery can
#: never undo a later, deliberate shift).
ROLLBACK_RETRIES = LAMBDA_MAX_RETRY_ATTEMPTS


@dataclass(frozen=True)
class AutomationProps:
    """Inputs of the automation tier."""

    name: str
    environment: str
    region: str
    account_id: str
    dns: DnsConfig
    controller: ControllerConfig
    vpc_id: str
    app_subnet_ids: list[str]
    endpoints: ServiceEndpoints
    alarm_topic_arn: str
    alert_topic_arn: str
    topic_key_arn: str
    composite_alarm_name: str
    https_listener_arn: str
    log_retention_days: int
    #: `automation.after_cutover: fallback`: the composite's ALARM hold before `paymig
    #: watch` falls back (the function names it in its advice); None: notify.
    automatic_fallback_seconds: float | None = None


class AutomationTier(Construct):
    """The audit table and the rollback function wired to the alarm topic.

    Attributes: :attr:`audit_table`, :attr:`rollback` (the :class:`VpcFunction`),
    :attr:`rollback_function`, :attr:`key`, :attr:`subscription`,
    :attr:`event_invoke_config`.
    """

    def __init__(self, scope: Construct, construct_id: str, props: AutomationProps) -> None:
        """Create the table, the function, its permissions and its subscription."""
        super().__init__(scope, construct_id)
        self.props = props
        self._build_key()
        self._build_audit_table()
        self._build_function()
        self._build_alarm_subscription()

    @property
    def _function_name(self) -> str:
        """Name of the rollback function."""
        return naming.rollback_function_name(self.props.name)

    def _build_key(self) -> None:
        """The CMK of the audit table and the functions' environments, queues and logs."""
        props = self.props
        stack = props.name
        self.key = CustomerManagedKey(
            self,
            "key",
            KeyProps(
                alias=f"{stack}/automation",
                description=f"{stack}: audit table, automation functions, queues, logs",
                account_id=props.account_id,
                region=props.region,
                usage_statements=[
                    statement(
                        "AwsServicesUseKeyForThisAccount",
                        [*KEY_USAGE_ACTIONS, "kms:CreateGrant"],
                        "*",
                        principal={"AWS": f"arn:aws:iam::{props.account_id}:root"},
                        condition={
                            "StringEquals": {
                                "kms:ViaService": [
                                    f"dynamodb.{props.region}.amazonaws.com",
                                    f"lambda.{props.region}.amazonaws.com",
                                    f"sqs.{props.region}.amazonaws.com",
                                ],
                                "kms:CallerAccount": props.account_id,
                            }
                        },
                    )
                ],
            ),
        )

    def _build_audit_table(self) -> None:
        """The audit table (events and the controller's lock), encrypted and recoverable."""
        self.audit_table = DynamodbTable(
            self,
            "audit-table",
            name=naming.audit_table_name(self.props.name),
            billing_mode="PAY_PER_REQUEST",
            hash_key=naming.AUDIT_PARTITION_KEY,
            range_key=naming.AUDIT_SORT_KEY,
            attribute=[
                DynamodbTableAttribute(name=naming.AUDIT_PARTITION_KEY, type="S"),
                DynamodbTableAttribute(name=naming.AUDIT_SORT_KEY, type="S"),
            ],
            server_side_encryption=DynamodbTableServerSideEncryption(
                enabled=True, kms_key_arn=self.key.arn
            ),
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            deletion_protection_enabled=True,
        )

    def _statements(self) -> list[dict[str, object]]:
        """What the rollback code calls, scoped to the one zone, listener, table, topic."""
        props = self.props
        zone_arn = f"arn:aws:route53:::hostedzone/{props.dns.hosted_zone_id}"
        via = {
            "StringEquals": {
                "kms:ViaService": [
                    f"dynamodb.{props.region}.amazonaws.com",
                    f"sns.{props.region}.amazonaws.com",
                ]
            }
        }
        return [
            statement(
                "WeightedRecordsOfOneZone",
                ["route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets"],
                [zone_arn],
            ),
            statement("WaitForInsync", ["route53:GetChange"], ["arn:aws:route53:::change/*"]),
            statement(
                # What Route 53 answers: the records' health checks (is legacy healthy?).
                "ReadHealthChecks",
                ["route53:GetHealthCheck", "route53:GetHealthCheckStatus"],
                ["arn:aws:route53:::healthcheck/*"],
            ),
            statement(
                # Is the alarm event still current? The composite is only returned to a
                # DescribeAlarms permission scoped to * (CloudWatch API reference).
                "CompositeAlarmNow",
                ["cloudwatch:DescribeAlarms"],
                "*",
            ),
            statement(
                # elasticloadbalancing Describe* has no resource-level permission.
                "FindListener",
                [
                    "elasticloadbalancing:DescribeLoadBalancers",
                    "elasticloadbalancing:DescribeListeners",
                    "elasticloadbalancing:DescribeTargetGroups",
                ],
                "*",
            ),
            statement(
                "ListenerBackToStable",
                ["elasticloadbalancing:ModifyListener"],
                [props.https_listener_arn],
            ),
            statement(
                "AuditTrailAndLock",
                [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:Query",
                ],
                [str(self.audit_table.arn)],
            ),
            statement("Notify", ["sns:Publish"], [props.alert_topic_arn]),
            statement(
                "KeysThroughDynamodbAndSns",
                ["kms:Decrypt", "kms:GenerateDataKey"],
                [self.key.arn, props.topic_key_arn],
                condition=via,
            ),
            statement(
                "TrafficMetric",
                ["cloudwatch:PutMetricData"],
                "*",
                condition={
                    "StringEquals": {"cloudwatch:namespace": naming.TRAFFIC_METRIC_NAMESPACE}
                },
            ),
        ]

    def _fallback_environment(self) -> dict[str, str]:
        """The automatic fallback's hold, only when `paymig watch` is to fall back."""
        seconds = self.props.automatic_fallback_seconds
        return {} if seconds is None else {"PAYMIG_AUTOMATIC_FALLBACK_SECONDS": f"{seconds:g}"}

    def _build_function(self) -> None:
        """The rollback function, from its package, and how its events are delivered."""
        props = self.props
        ctl = props.controller
        self.package = build_package("rollback", ROLLBACK_MODULES)
        self.timeout_seconds = rollback_timeout_seconds(
            ctl.route53_submit_seconds, ctl.route53_insync_timeout_seconds
        )
        self.max_event_age_seconds = rollback_event_age_seconds(self.timeout_seconds)
        asset = TerraformAsset(self, "package", path=str(self.package.path), type=AssetType.FILE)
        self.rollback = VpcFunction(
            self,
            "rollback",
            FunctionProps(
                function_name=self._function_name,
                description="paymig: automatic rollback to legacy on the migration-health alarm",
                region=props.region,
                account_id=props.account_id,
                key=self.key,
                log_retention_days=props.log_retention_days,
                vpc_id=props.vpc_id,
                subnet_ids=props.app_subnet_ids,
                endpoints=props.endpoints,
                apis=ROLLBACK_APIS,
                statements=self._statements(),
                code={
                    "runtime": PYTHON_RUNTIME,
                    "handler": "paymig.lambdas.rollback.handler",
                    "filename": asset.path,
                    "source_code_hash": self.package.sha256_base64,
                },
                environment={
                    "PAYMIG_STACK_NAME": props.name,
                    "PAYMIG_ENVIRONMENT": props.environment,
                    "PAYMIG_HOSTED_ZONE_ID": props.dns.hosted_zone_id,
                    "PAYMIG_RECORD_NAME": props.dns.api_record_name,
                    "PAYMIG_STABLE_ALIAS": ctl.stable_alias,
                    "PAYMIG_ALERT_TOPIC_ARN": props.alert_topic_arn,
                    "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS": str(
                        ctl.route53_insync_timeout_seconds
                    ),
                    "PAYMIG_LOCK_TTL_SECONDS": str(ctl.lock_ttl_seconds),
                    "PAYMIG_ROUTE53_SUBMIT_SECONDS": str(ctl.route53_submit_seconds),
                    "PAYMIG_MAX_EVENT_AGE_SECONDS": str(self.max_event_age_seconds),
                    **self._fallback_environment(),
                },
                memory_mb=256,
                # Every bounded step of the rollback path (docs/controller.md).
                timeout_seconds=self.timeout_seconds,
                reserved_concurrency=2,
            ),
        )
        self.rollback_function = self.rollback.function
        self.dead_letter_queue = self.rollback.dead_letter_queue
        self.event_invoke_config = LambdaFunctionEventInvokeConfig(
            self,
            "event-invoke",
            function_name=self.rollback_function.function_name,
            maximum_retry_attempts=ROLLBACK_RETRIES,
            maximum_event_age_in_seconds=self.max_event_age_seconds,
        )

    def _build_alarm_subscription(self) -> None:
        """The alarm topic invokes the function for the composite's ALARM transitions only."""
        props = self.props
        LambdaPermission(
            self,
            "allow-sns",
            statement_id="AllowAlarmTopicInvoke",
            action="lambda:InvokeFunction",
            function_name=self.rollback_function.function_name,
            principal="sns.amazonaws.com",
            source_arn=props.alarm_topic_arn,
        )
        self.subscription = SnsTopicSubscription(
            self,
            "subscription",
            topic_arn=props.alarm_topic_arn,
            protocol="lambda",
            endpoint=self.rollback_function.arn,
            filter_policy_scope="MessageBody",
            filter_policy=json.dumps(
                {"AlarmName": [props.composite_alarm_name], "NewStateValue": ["ALARM"]}
            ),
        )
