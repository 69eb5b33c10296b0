"""Automation (requirement 8): the audit table and the automatic rollback Lambda.

The composite ``migration-health`` alarm notifies the alarm topic; the topic invokes the
rollback function (code: :mod:`paymig.lambdas.rollback`, the same path as
``paymig rollback``), which sets the listener back to the stable alias and the Route 53
weights back to legacy 100 / aws 0, waits for INSYNC, records the event in the audit
table and publishes a notification. Its IAM policy names the one hosted zone, the
listener, the table and the topic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cdktf import AssetType, TerraformAsset
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionDeadLetterConfig,
    LambdaFunctionEnvironment,
    LambdaFunctionLoggingConfig,
    LambdaFunctionTracingConfig,
    LambdaFunctionVpcConfig,
)
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from constructs import Construct

from paymig import naming
from paymig.config import ControllerConfig, DnsConfig
from paymig.infra.iam import assume_role_policy, policy_document, statement
from paymig.infra.kms import KEY_USAGE_ACTIONS, CustomerManagedKey, KeyProps, service_usage
from paymig.infra.lambda_package import build_package

LAMBDA_VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
XRAY_WRITE_POLICY = "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"
PYTHON_RUNTIME = "python3.11"

#: Modules of paymig the rollback function needs (boto3 comes with the runtime).
ROLLBACK_MODULES = ("errors.py", "naming.py", "runtime/__init__.py", "runtime/controller",
                    "lambdas/__init__.py", "lambdas/rollback.py")  # fmt: skip


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
    alarm_topic_arn: str
    alarm_topic_key_arn: str
    https_listener_arn: str
    log_retention_days: int


class AutomationTier(Construct):
    """The audit table and the rollback function wired to the alarm topic.

    Attributes: :attr:`audit_table`, :attr:`rollback_function`, :attr:`key`,
    :attr:`security_group` (egress HTTPS only).
    """

    def __init__(self, scope: Construct, construct_id: str, props: AutomationProps) -> None:
        """Create the table, the function, its permissions and its subscription."""
        super().__init__(scope, construct_id)
        self.props = props
        stack = props.name
        function_name = naming.rollback_function_name(stack)
        log_group_name = f"/aws/lambda/{function_name}"
        log_group_arn = f"arn:aws:logs:{props.region}:{props.account_id}:log-group:{log_group_name}"
        root = f"arn:aws:iam::{props.account_id}:root"

        self.key = CustomerManagedKey(
            self,
            "key",
            KeyProps(
                alias=f"{stack}/automation",
                description=f"{stack}: audit table, rollback function environment, queue, logs",
                account_id=props.account_id,
                usage_statements=[
                    statement(
                        "AwsServicesUseKeyForThisAccount",
                        [*KEY_USAGE_ACTIONS, "kms:CreateGrant"],
                        "*",
                        principal={"AWS": root},
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
                    ),
                    service_usage(
                        "CloudWatchLogsUsesKey",
                        f"logs.{props.region}.amazonaws.com",
                        condition={
                            "ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}
                        },
                    ),
                ],
            ),
        )

        # ------------------------------------------------------------ audit table
        self.audit_table = DynamodbTable(
            self,
            "audit-table",
            name=naming.audit_table_name(stack),
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

        # ------------------------------------------------------------ rollback function
        self.dead_letter_queue = SqsQueue(
            self,
            "dlq",
            name=f"{function_name}-dlq",
            kms_master_key_id=self.key.arn,
            message_retention_seconds=1_209_600,
        )
        self.log_group = CloudwatchLogGroup(
            self,
            "log-group",
            name=log_group_name,
            retention_in_days=props.log_retention_days,
            kms_key_id=self.key.arn,
        )
        self.role = IamRole(
            self,
            "role",
            name=function_name,
            assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
        )
        for index, managed in enumerate((LAMBDA_VPC_POLICY, XRAY_WRITE_POLICY)):
            IamRolePolicyAttachment(
                self, f"role-managed-{index}", role=self.role.name, policy_arn=managed
            )
        zone_arn = f"arn:aws:route53:::hostedzone/{props.dns.hosted_zone_id}"
        IamRolePolicy(
            self,
            "role-policy",
            role=self.role.id,
            policy=policy_document(
                statement(
                    "WeightedRecordsOfOneZone",
                    ["route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets"],
                    [zone_arn],
                ),
                statement("WaitForInsync", ["route53:GetChange"], ["arn:aws:route53:::change/*"]),
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
                statement("Notify", ["sns:Publish"], [props.alarm_topic_arn]),
                statement(
                    "UseKeys",
                    ["kms:Decrypt", "kms:GenerateDataKey"],
                    [self.key.arn, props.alarm_topic_key_arn],
                ),
                statement(
                    "TrafficMetric",
                    ["cloudwatch:PutMetricData"],
                    "*",
                    condition={
                        "StringEquals": {"cloudwatch:namespace": naming.TRAFFIC_METRIC_NAMESPACE}
                    },
                ),
                statement(
                    "WriteOwnLogs",
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    [f"{log_group_arn}:*"],
                ),
                statement("DeadLetters", ["sqs:SendMessage"], [str(self.dead_letter_queue.arn)]),
            ),
        )
        self.security_group = SecurityGroup(
            self,
            "sg",
            name=f"{function_name}-lambda",
            description="Rollback Lambda: HTTPS to AWS APIs only",
            vpc_id=props.vpc_id,
        )
        VpcSecurityGroupEgressRule(
            self,
            "egress-https",
            security_group_id=self.security_group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4="0.0.0.0/0",
            description="HTTPS to Route 53, ELB, DynamoDB, SNS and CloudWatch APIs via NAT",
        )
        package = build_package("rollback", ROLLBACK_MODULES)
        self.package = package
        asset = TerraformAsset(self, "package", path=str(package.path), type=AssetType.FILE)
        ctl = props.controller
        self.rollback_function = LambdaFunction(
            self,
            "rollback",
            function_name=function_name,
            description="paymig: automatic rollback to legacy on the migration-health alarm",
            role=self.role.arn,
            runtime=PYTHON_RUNTIME,
            handler="paymig.lambdas.rollback.handler",
            filename=asset.path,
            source_code_hash=package.sha256_base64,
            memory_size=256,
            # Two INSYNC waits plus the API calls (see docs/controller.md).
            timeout=max(150, 2 * ctl.route53_insync_timeout_seconds + 30),
            reserved_concurrent_executions=2,
            kms_key_arn=self.key.arn,
            tracing_config=LambdaFunctionTracingConfig(mode="Active"),
            vpc_config=LambdaFunctionVpcConfig(
                subnet_ids=props.app_subnet_ids, security_group_ids=[self.security_group.id]
            ),
            dead_letter_config=LambdaFunctionDeadLetterConfig(
                target_arn=self.dead_letter_queue.arn
            ),
            environment=LambdaFunctionEnvironment(
                variables={
                    "PAYMIG_STACK_NAME": stack,
                    "PAYMIG_ENVIRONMENT": props.environment,
                    "PAYMIG_HOSTED_ZONE_ID": props.dns.hosted_zone_id,
                    "PAYMIG_RECORD_NAME": props.dns.api_record_name,
                    "PAYMIG_STABLE_ALIAS": ctl.stable_alias,
                    "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS": str(
                        ctl.route53_insync_timeout_seconds
                    ),
                    "PAYMIG_LOCK_TTL_SECONDS": str(ctl.lock_ttl_seconds),
                }
            ),
            logging_config=LambdaFunctionLoggingConfig(
                log_format="JSON", log_group=self.log_group.name
            ),
            depends_on=[self.log_group],
        )
        LambdaPermission(
            self,
            "allow-sns",
            statement_id="AllowAlarmTopicInvoke",
            action="lambda:InvokeFunction",
            function_name=self.rollback_function.function_name,
            principal="sns.amazonaws.com",
            source_arn=props.alarm_topic_arn,
        )
        # The function's own notifications carry `paymig_source`; they must not invoke it.
        self.subscription = SnsTopicSubscription(
            self,
            "subscription",
            topic_arn=props.alarm_topic_arn,
            protocol="lambda",
            endpoint=self.rollback_function.arn,
            filter_policy_scope="MessageAttributes",
            filter_policy=json.dumps({"paymig_source": [{"exists": False}]}),
        )
