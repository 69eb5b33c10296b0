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
from cdktf_cdktf_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableServerSideEncryption,
)
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionDeadLetterConfig,
    LambdaFunctionEnvironment,
    LambdaFunctionLoggingConfig,
    LambdaFunctionTracingConfig,
    LambdaFunctionVpcConfig,
)
from cdktf_cdktf_provider_aws.lambda_invocation import LambdaInvocation
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from constructs import Construct

from paymig import naming
from paymig.config import ControllerConfig, DnsConfig
from paymig.infra.functions import (
    function_log_group,
    function_role,
    https_egress,
    log_group_arn,
)
from paymig.infra.iam import statement
from paymig.infra.kms import KEY_USAGE_ACTIONS, CustomerManagedKey, KeyProps, service_usage
from paymig.infra.lambda_package import build_package

PYTHON_RUNTIME = "python3.11"

#: Modules and installed distributions the validation function needs.
VALIDATION_MODULES = ("errors.py", "naming.py", "config", "runtime/__init__.py",
                      "runtime/preflight.py", "runtime/validator", "runtime/controller",
                      "lambdas/__init__.py", "lambdas/validation.py")  # fmt: skip
VALIDATION_DISTRIBUTIONS = ("psycopg", "psycopg-binary", "psycopg-pool", "typing-extensions",
                            "pydantic", "pydantic-core", "annotated-types",
                            "typing-inspection", "pyyaml")  # fmt: skip
#: Where the on-prem CA certificate sits inside the validation package.
SOURCE_CA_IN_PACKAGE = "ca/onprem-ca.pem"

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
    validation: ValidationTarget | None = None


@dataclass(frozen=True)
class ValidationTarget:
    """What the validation function checks: both databases and the migration settings."""

    source_secret_arn: str
    source_key_arn: str
    source_database: str
    source_port: int
    source_ca_pem: str
    onprem_cidr: str
    target_secret_arn: str
    target_key_arn: str
    target_database: str
    target_security_group_id: str
    table_rules_json: str
    lob_mode: str
    grace_seconds: float
    cdc_threshold_seconds: float
    cdc_lookback_seconds: int
    post_migration_check: bool


class AutomationTier(Construct):
    """The audit table and the rollback function wired to the alarm topic.

    Attributes: :attr:`audit_table`, :attr:`rollback_function`, :attr:`key`,
    :attr:`security_group` (egress HTTPS only).
    """

    def __init__(self, scope: Construct, construct_id: str, props: AutomationProps) -> None:
        """Create the table, the function, its permissions and its subscription."""
        super().__init__(scope, construct_id)
        self.props = props
        self._build_key()
        self._build_audit_table()
        # ------------------------------------------------------------ rollback function
        self._build_dead_letter_queue()
        self._build_log_group()
        self._build_role()
        self._build_security_group()
        self._build_function()
        self._build_alarm_subscription()

    # ---------------------------------------------------------------- names

    @property
    def _function_name(self) -> str:
        """Name of the rollback function."""
        return naming.rollback_function_name(self.props.name)

    @property
    def _log_arn(self) -> str:
        """ARN of the rollback function's log group."""
        props = self.props
        return log_group_arn(props.region, props.account_id, f"/aws/lambda/{self._function_name}")

    # ---------------------------------------------------------------- builders

    def _build_key(self) -> None:
        """The CMK of the audit table and the function's environment, queue and logs."""
        props = self.props
        stack = props.name
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
                    ),
                    service_usage(
                        "CloudWatchLogsUsesKey",
                        f"logs.{props.region}.amazonaws.com",
                        condition={
                            "ArnEquals": {"kms:EncryptionContext:aws:logs:arn": self._log_arn}
                        },
                    ),
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

    def _build_dead_letter_queue(self) -> None:
        """The encrypted queue of failed asynchronous invocations (also the validator's)."""
        self.dead_letter_queue = SqsQueue(
            self,
            "dlq",
            name=f"{self._function_name}-dlq",
            kms_master_key_id=self.key.arn,
            message_retention_seconds=1_209_600,
        )

    def _build_log_group(self) -> None:
        """The rollback function's CMK-encrypted log group."""
        self.log_group = function_log_group(
            self, self._function_name, self.props.log_retention_days, self.key.arn
        )

    def _build_role(self) -> None:
        """The execution role, scoped to the one zone, listener, table and topic."""
        props = self.props
        zone_arn = f"arn:aws:route53:::hostedzone/{props.dns.hosted_zone_id}"
        self.role = function_role(
            self,
            self._function_name,
            [
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
                    [f"{self._log_arn}:*"],
                ),
                statement("DeadLetters", ["sqs:SendMessage"], [str(self.dead_letter_queue.arn)]),
            ],
        )

    def _build_security_group(self) -> None:
        """The function's security group: HTTPS egress only."""
        self.security_group = SecurityGroup(
            self,
            "sg",
            name=f"{self._function_name}-lambda",
            description="Rollback Lambda: HTTPS to AWS APIs only",
            vpc_id=self.props.vpc_id,
        )
        https_egress(
            self,
            self.security_group.id,
            "HTTPS to Route 53, ELB, DynamoDB, SNS and CloudWatch APIs via NAT",
        )

    def _build_function(self) -> None:
        """The rollback function, from its package, in the app subnets."""
        props = self.props
        self.package = build_package("rollback", ROLLBACK_MODULES)
        asset = TerraformAsset(self, "package", path=str(self.package.path), type=AssetType.FILE)
        ctl = props.controller
        self.rollback_function = LambdaFunction(
            self,
            "rollback",
            function_name=self._function_name,
            description="paymig: automatic rollback to legacy on the migration-health alarm",
            role=self.role.arn,
            runtime=PYTHON_RUNTIME,
            handler="paymig.lambdas.rollback.handler",
            filename=asset.path,
            source_code_hash=self.package.sha256_base64,
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
                    "PAYMIG_STACK_NAME": props.name,
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

    def _build_alarm_subscription(self) -> None:
        """The alarm topic invokes the function, except for its own notifications."""
        alarm_topic_arn = self.props.alarm_topic_arn
        LambdaPermission(
            self,
            "allow-sns",
            statement_id="AllowAlarmTopicInvoke",
            action="lambda:InvokeFunction",
            function_name=self.rollback_function.function_name,
            principal="sns.amazonaws.com",
            source_arn=alarm_topic_arn,
        )
        # The function's own notifications carry `paymig_source`; they must not invoke it.
        self.subscription = SnsTopicSubscription(
            self,
            "subscription",
            topic_arn=alarm_topic_arn,
            protocol="lambda",
            endpoint=self.rollback_function.arn,
            filter_policy_scope="MessageBody",
            filter_policy=json.dumps(
                {
                    "AlarmName": [naming.composite_alarm_name(self.props.name)],
                    "NewStateValue": ["ALARM"],
                }
            ),
        )


class ValidationChecks(Construct):
    """The validation function and its invocations during apply (pre, and post if enabled).

    Attributes: :attr:`function`, :attr:`security_group`, :attr:`pre_check`,
    :attr:`post_check` (None until config enables it).
    """

    def __init__(
        self, scope: Construct, construct_id: str, props: AutomationProps, tier: AutomationTier
    ) -> None:
        """Create the function and invoke it from Terraform."""
        super().__init__(scope, construct_id)
        if props.validation is None:
            raise ValueError("ValidationChecks needs AutomationProps.validation")
        self.props = props
        #: What the checks compare (``props.validation``).
        self.target: ValidationTarget = props.validation
        self._tier = tier
        self._build_log_group()
        self._build_role()
        self._build_security_group()
        self._build_function()
        self._build_invocations()

    # ---------------------------------------------------------------- names

    @property
    def _function_name(self) -> str:
        """Name of the validation function."""
        return f"{self.props.name}-validation"

    # ---------------------------------------------------------------- builders

    def _build_log_group(self) -> None:
        """The function's log group, encrypted with the automation tier's key."""
        self.log_group = function_log_group(
            self, self._function_name, self.props.log_retention_days, self._tier.key.arn
        )

    def _build_role(self) -> None:
        """The execution role: the two secrets, the audit table, CDC latency, own logs."""
        props = self.props
        target = self.target
        tier = self._tier
        log_arn = log_group_arn(
            props.region, props.account_id, f"/aws/lambda/{self._function_name}"
        )
        self.role = function_role(
            self,
            self._function_name,
            [
                statement(
                    "ReadTheTwoSecrets",
                    ["secretsmanager:GetSecretValue"],
                    [target.source_secret_arn, target.target_secret_arn],
                ),
                statement(
                    "DecryptTheTwoSecrets",
                    ["kms:Decrypt"],
                    [target.source_key_arn, target.target_key_arn],
                    condition={
                        "StringEquals": {
                            "kms:ViaService": f"secretsmanager.{props.region}.amazonaws.com"
                        }
                    },
                ),
                statement(
                    "RecordValidation",
                    ["dynamodb:PutItem", "dynamodb:Query"],
                    [str(tier.audit_table.arn)],
                ),
                statement("AuditTableKey", ["kms:Decrypt", "kms:GenerateDataKey"], [tier.key.arn]),
                statement(
                    # Reads without resource-level permission: metric statistics and the
                    # DMS task lookup (the CDC latency check).
                    "ReadCdcLatency",
                    ["cloudwatch:GetMetricStatistics", "dms:DescribeReplicationTasks"],
                    "*",
                ),
                statement(
                    "WriteOwnLogs",
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    [f"{log_arn}:*"],
                ),
                statement("DeadLetters", ["sqs:SendMessage"], [str(tier.dead_letter_queue.arn)]),
            ],
        )

    def _build_security_group(self) -> None:
        """The function's security group: PostgreSQL to both databases, HTTPS to AWS."""
        target = self.target
        self.security_group = SecurityGroup(
            self,
            "sg",
            name=f"{self._function_name}-lambda",
            description="Validation Lambda: PostgreSQL to both databases, HTTPS to AWS APIs",
            vpc_id=self.props.vpc_id,
        )
        for rule_id, port, cidr, group, why in (
            (
                "source",
                target.source_port,
                target.onprem_cidr,
                None,
                "PostgreSQL to the on-prem source",
            ),
            ("target", 5432, None, target.target_security_group_id, "PostgreSQL to Aurora"),
        ):
            VpcSecurityGroupEgressRule(
                self,
                f"egress-{rule_id}",
                security_group_id=self.security_group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4=cidr,
                referenced_security_group_id=group,
                description=why,
            )
        https_egress(
            self, self.security_group.id, "HTTPS to Secrets Manager, DynamoDB, CloudWatch, DMS"
        )

    def _build_function(self) -> None:
        """The validation function, from its package (with the on-prem CA certificate)."""
        props = self.props
        target = self.target
        tier = self._tier
        self.package = build_package(
            "validation",
            VALIDATION_MODULES,
            VALIDATION_DISTRIBUTIONS,
            extra_files={SOURCE_CA_IN_PACKAGE: target.source_ca_pem.encode()},
        )
        asset = TerraformAsset(self, "package", path=str(self.package.path), type=AssetType.FILE)
        self.function = LambdaFunction(
            self,
            "function",
            function_name=self._function_name,
            description="paymig: pre- and post-migration checks, invoked during apply",
            role=self.role.arn,
            runtime=PYTHON_RUNTIME,
            handler="paymig.lambdas.validation.handler",
            filename=asset.path,
            source_code_hash=self.package.sha256_base64,
            memory_size=1024,
            timeout=900,
            reserved_concurrent_executions=2,
            kms_key_arn=tier.key.arn,
            tracing_config=LambdaFunctionTracingConfig(mode="Active"),
            vpc_config=LambdaFunctionVpcConfig(
                subnet_ids=props.app_subnet_ids, security_group_ids=[self.security_group.id]
            ),
            dead_letter_config=LambdaFunctionDeadLetterConfig(
                target_arn=tier.dead_letter_queue.arn
            ),
            environment=LambdaFunctionEnvironment(
                variables={
                    "PAYMIG_STACK_NAME": props.name,
                    "PAYMIG_ENVIRONMENT": props.environment,
                    "PAYMIG_SOURCE_SECRET_ARN": target.source_secret_arn,
                    "PAYMIG_TARGET_SECRET_ARN": target.target_secret_arn,
                    "PAYMIG_SOURCE_DATABASE": target.source_database,
                    "PAYMIG_TARGET_DATABASE": target.target_database,
                    "PAYMIG_SOURCE_CA_FILE": f"/var/task/{SOURCE_CA_IN_PACKAGE}",
                    "PAYMIG_TABLE_RULES": target.table_rules_json,
                    "PAYMIG_LOB_MODE": target.lob_mode,
                    "PAYMIG_GRACE_SECONDS": str(target.grace_seconds),
                    "PAYMIG_CDC_THRESHOLD_SECONDS": str(target.cdc_threshold_seconds),
                    "PAYMIG_CDC_LOOKBACK_SECONDS": str(target.cdc_lookback_seconds),
                }
            ),
            logging_config=LambdaFunctionLoggingConfig(
                log_format="JSON", log_group=self.log_group.name
            ),
            depends_on=[self.log_group],
        )

    def _build_invocations(self) -> None:
        """The pre-check, and the post-check after it when the config enables it."""
        # Re-run whenever the code or what it checks changes.
        triggers = {"package": self.package.sha256_base64, "settings": self.target.table_rules_json}
        self.pre_check = LambdaInvocation(
            self,
            "pre-check",
            function_name=self.function.function_name,
            input=json.dumps({"check": "pre"}),
            triggers=triggers,
        )
        self.post_check: LambdaInvocation | None = None
        if self.target.post_migration_check:
            self.post_check = LambdaInvocation(
                self,
                "post-check",
                function_name=self.function.function_name,
                input=json.dumps({"check": "post"}),
                triggers=triggers,
                depends_on=[self.pre_check],
            )
