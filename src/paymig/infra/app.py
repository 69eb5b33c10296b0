"""Application tier (requirement 3): the payment API image on Lambda behind an HTTPS ALB.

Blue/green: two aliases, each behind its own target group; the HTTPS listener forwards
to both with configured weights, so a new version is canaried and switched back without
touching DNS. Scaling: Application Auto Scaling keeps the live alias's provisioned
concurrency between 2 and 10, tracking ``LambdaProvisionedConcurrencyUtilization`` (the
Lambda counterpart of "2-10 tasks scaled on CPU").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.acm_certificate import AcmCertificate
from cdktf_cdktf_provider_aws.acm_certificate_validation import AcmCertificateValidation
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicy,
)
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration as TargetTracking,
)
from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification as PredefinedMetric,  # noqa: E501
)
from cdktf_cdktf_provider_aws.appautoscaling_target import AppautoscalingTarget
from cdktf_cdktf_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
    EcrRepositoryImageScanningConfiguration,
)
from cdktf_cdktf_provider_aws.lambda_alias import LambdaAlias
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.lambda_provisioned_concurrency_config import (
    LambdaProvisionedConcurrencyConfig,
)
from cdktf_cdktf_provider_aws.lb import Lb, LbAccessLogs
from cdktf_cdktf_provider_aws.lb_listener import (
    LbListener,
    LbListenerDefaultAction,
    LbListenerDefaultActionForward,
    LbListenerDefaultActionForwardTargetGroup,
    LbListenerDefaultActionRedirect,
)
from cdktf_cdktf_provider_aws.lb_target_group import LbTargetGroup, LbTargetGroupHealthCheck
from cdktf_cdktf_provider_aws.lb_target_group_attachment import LbTargetGroupAttachment
from cdktf_cdktf_provider_aws.route53_record import Route53Record
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.ssm_parameter import SsmParameter
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import (
    VpcSecurityGroupIngressRule,
)
from cdktf_cdktf_provider_aws.wafv2_web_acl_association import Wafv2WebAclAssociation
from constructs import Construct

from paymig import naming
from paymig.config import AppConfig
from paymig.infra.alb_access_logs import ALB_LOG_PREFIX, build_access_logs
from paymig.infra.credentials import Credentials
from paymig.infra.endpoints import ServiceEndpoints
from paymig.infra.functions import DatabaseServer, FunctionProps, VpcFunction
from paymig.infra.iam import statement
from paymig.infra.kms import CustomerManagedKey, KeyProps
from paymig.infra.trust import TrustStore

ALIASES: tuple[Literal["blue", "green"], ...] = ("blue", "green")
HTTPS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class AppProps:
    """Inputs of the application tier."""

    name: str
    environment: str
    region: str
    account_id: str
    app: AppConfig
    vpc_id: str
    public_subnet_ids: list[str]
    app_subnet_ids: list[str]
    hosted_zone_id: str
    api_record_name: str
    web_acl_arn: str
    endpoints: ServiceEndpoints
    source: DatabaseServer
    aurora: DatabaseServer
    credentials: Credentials
    trust: TrustStore
    #: The stable alias: autoscaled, and where a rollback sends the listener.
    live_alias: Literal["blue", "green"] = "blue"


class AppTier(Construct):
    """ECR, the payment API function and its aliases, scaling, the ALB and its listeners.

    Attributes other constructs use: :attr:`load_balancer`, :attr:`https_listener`,
    :attr:`target_groups`, :attr:`function`, :attr:`aliases`, :attr:`security_group`.
    """

    def __init__(self, scope: Construct, construct_id: str, props: AppProps) -> None:
        """Create the API and its front door."""
        super().__init__(scope, construct_id)
        self.props = props
        self._build_key()
        self._build_repository()
        # ------------------------------------------------------------ function
        self._build_write_target()
        self._build_function()
        self._build_aliases()
        self._build_scaling()
        # ------------------------------------------------------------ load balancer
        self._build_alb_security_group()
        self._build_access_logs()
        self._build_load_balancer()
        self._build_certificate()
        self._build_target_groups()
        self._build_listeners()

    # ---------------------------------------------------------------- names

    @property
    def _function_name(self) -> str:
        """Name of the payment API function."""
        return naming.payment_api_function(self.props.name)

    # ---------------------------------------------------------------- builders: function

    def _build_key(self) -> None:
        """The app tier's CMK: image, environment, queue and logs."""
        props = self.props
        self.key = CustomerManagedKey(
            self,
            "key",
            KeyProps(
                alias=f"{props.name}/app",
                description=f"{props.name}: encrypts the API's image, environment, queue, logs",
                account_id=props.account_id,
                region=props.region,
                usage_statements=[
                    statement(
                        "AwsServicesUseKeyForThisAccount",
                        [
                            "kms:Encrypt",
                            "kms:Decrypt",
                            "kms:ReEncrypt*",
                            "kms:GenerateDataKey*",
                            "kms:DescribeKey",
                            "kms:CreateGrant",
                        ],
                        "*",
                        principal={"AWS": f"arn:aws:iam::{props.account_id}:root"},
                        condition={
                            "StringEquals": {
                                "kms:ViaService": [
                                    f"lambda.{props.region}.amazonaws.com",
                                    f"ecr.{props.region}.amazonaws.com",
                                    f"sqs.{props.region}.amazonaws.com",
                                ],
                                "kms:CallerAccount": props.account_id,
                            }
                        },
                    ),
                ],
            ),
        )

    def _build_repository(self) -> None:
        """The image registry: immutable tags, scanned on push, old images expired."""
        self.repository = EcrRepository(
            self,
            "repository",
            name=f"{self.props.name}/payment-api",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=EcrRepositoryImageScanningConfiguration(scan_on_push=True),
            encryption_configuration=[
                EcrRepositoryEncryptionConfiguration(encryption_type="KMS", kms_key=self.key.arn)
            ],
        )
        EcrLifecyclePolicy(
            self,
            "repository-lifecycle",
            repository=self.repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": "Drop untagged layers after 7 days",
                            "selection": {
                                "tagStatus": "untagged",
                                "countType": "sinceImagePushed",
                                "countUnit": "days",
                                "countNumber": 7,
                            },
                            "action": {"type": "expire"},
                        },
                        {
                            "rulePriority": 2,
                            "description": "Keep the 50 newest images (rollback targets)",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": 50,
                            },
                            "action": {"type": "expire"},
                        },
                    ]
                }
            ),
        )

    def _build_write_target(self) -> None:
        """The run-time write target the API reads (``source`` or ``aurora``).

        Terraform sets the first value from ``app.write_target``; afterwards ``paymig
        cutover`` / ``paymig fallback`` own it, so Terraform ignores changes to it (as it
        does the Route 53 weights): a later apply can never move the writes back.
        """
        props = self.props
        self.write_target = SsmParameter(
            self,
            "write-target",
            name=naming.write_target_parameter_name(props.name),
            description="Database the payment API writes to: source or aurora",
            type="String",
            value=props.app.write_target,
            lifecycle=TerraformResourceLifecycle(ignore_changes=["value"]),
        )

    def _build_function(self) -> None:
        """The payment API function, from its image, connected to both databases."""
        props = self.props
        app = props.app
        write_target_arn = (
            f"arn:aws:ssm:{props.region}:{props.account_id}:parameter"
            f"{naming.write_target_parameter_name(props.name)}"
        )
        self.api = VpcFunction(
            self,
            "api",
            FunctionProps(
                function_name=self._function_name,
                description="paymig payment API",
                region=props.region,
                account_id=props.account_id,
                key=self.key,
                log_retention_days=app.log_retention_days,
                vpc_id=props.vpc_id,
                subnet_ids=props.app_subnet_ids,
                endpoints=props.endpoints,
                apis=("ssm", "xray"),
                statements=[statement("ReadWriteTarget", ["ssm:GetParameter"], [write_target_arn])],
                code={
                    "package_type": "Image",
                    "image_uri": f"{self.repository.repository_url}:{app.image_tag}",
                },
                environment={
                    naming.PAYMENT_API_ENV_ENVIRONMENT: props.environment,
                    naming.PAYMENT_API_ENV_WRITE_TARGET: naming.write_target_parameter_name(
                        props.name
                    ),
                    naming.PAYMENT_API_ENV_WRITE_TARGET_CACHE: (
                        f"{app.write_target_cache_seconds:g}"
                    ),
                },
                memory_mb=app.memory_mb,
                timeout_seconds=app.timeout_seconds,
                reserved_concurrency=app.reserved_concurrency,
                publish=True,
            ),
        )
        for name, server in (("source", props.source), ("aurora", props.aurora)):
            self.api.connect_database(
                name, server, props.credentials.login(server.server, "api"),
                props.trust.anchor(server.server),
            )  # fmt: skip
        self.function = self.api.function
        self.role = self.api.role
        self.log_group = self.api.log_group
        self.security_group = self.api.security_group
        self.dead_letter_queue = self.api.dead_letter_queue

    def _build_aliases(self) -> None:
        """The blue and green aliases, each serving its own version from config.

        ``latest`` follows the version the current image publishes; a number pins a
        version, so a new image moves only the alias that follows ``latest``.
        :attr:`live_alias` is the stable one.
        """
        versions = self.props.app.alias_versions
        self.aliases = {
            alias: LambdaAlias(
                self,
                f"alias-{alias}",
                name=alias,
                function_name=self.function.function_name,
                function_version=(
                    self.function.version if versions[alias] == "latest" else versions[alias]
                ),
            )
            for alias in ALIASES
        }
        self.live_alias = self.aliases[self.props.live_alias]

    def _build_scaling(self) -> None:
        """Provisioned concurrency of the live alias, autoscaled between min and max.

        It starts at the minimum; Application Auto Scaling owns the number afterwards,
        so Terraform ignores later changes to it.
        """
        props = self.props
        app = props.app
        self.provisioned_concurrency = LambdaProvisionedConcurrencyConfig(
            self,
            "provisioned",
            function_name=self.function.function_name,
            qualifier=self.live_alias.name,
            provisioned_concurrent_executions=app.provisioned_min,
            lifecycle=TerraformResourceLifecycle(
                ignore_changes=["provisioned_concurrent_executions"]
            ),
        )
        self.scaling_target = AppautoscalingTarget(
            self,
            "scaling-target",
            service_namespace="lambda",
            resource_id=f"function:{self._function_name}:{props.live_alias}",
            scalable_dimension="lambda:function:ProvisionedConcurrency",
            min_capacity=app.provisioned_min,
            max_capacity=app.provisioned_max,
            depends_on=[self.provisioned_concurrency],
        )
        self.scaling_policy = AppautoscalingPolicy(
            self,
            "scaling-policy",
            name=f"{self._function_name}-provisioned-utilization",
            policy_type="TargetTrackingScaling",
            service_namespace=self.scaling_target.service_namespace,
            resource_id=self.scaling_target.resource_id,
            scalable_dimension=self.scaling_target.scalable_dimension,
            target_tracking_scaling_policy_configuration=TargetTracking(
                target_value=app.target_utilization,
                predefined_metric_specification=PredefinedMetric(
                    predefined_metric_type="LambdaProvisionedConcurrencyUtilization"
                ),
            ),
        )

    # ---------------------------------------------------------------- builders: load balancer

    def _build_alb_security_group(self) -> None:
        """The ALB's security group: HTTPS, and HTTP for the redirect, from anywhere."""
        self.alb_security_group = SecurityGroup(
            self,
            "alb-sg",
            name=f"{self.props.name}-alb",
            description="Payment API ALB: HTTPS (and HTTP for the redirect) from clients",
            vpc_id=self.props.vpc_id,
        )
        for port, why in ((443, "HTTPS from API clients"), (80, "HTTP, only redirected to HTTPS")):
            VpcSecurityGroupIngressRule(
                self,
                f"alb-ingress-{port}",
                security_group_id=self.alb_security_group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4=ANYWHERE,
                description=why,
            )

    def _build_access_logs(self) -> None:
        """The ALB's access-log bucket, its retention and its policy."""
        props = self.props
        logs = build_access_logs(
            self, name=props.name, region=props.region, account_id=props.account_id,
            retention_days=props.app.access_log_retention_days,
        )  # fmt: skip
        self.access_logs, self.access_logs_policy = logs.bucket, logs.policy

    def _build_load_balancer(self) -> None:
        """The internet-facing ALB in the public subnets, guarded by the web ACL."""
        props = self.props
        self.load_balancer = Lb(
            self,
            "alb",
            name=naming.alb_name(props.name),
            internal=False,
            load_balancer_type="application",
            security_groups=[self.alb_security_group.id],
            subnets=props.public_subnet_ids,
            drop_invalid_header_fields=True,
            enable_deletion_protection=True,
            access_logs=LbAccessLogs(
                bucket=self.access_logs.id, prefix=ALB_LOG_PREFIX, enabled=True
            ),
            depends_on=[self.access_logs_policy],
        )
        Wafv2WebAclAssociation(
            self,
            "waf-association",
            resource_arn=self.load_balancer.arn,
            web_acl_arn=props.web_acl_arn,
        )

    def _build_certificate(self) -> None:
        """The ACM certificate of the API's name, validated through DNS."""
        self.certificate = AcmCertificate(
            self,
            "certificate",
            domain_name=self.props.api_record_name,
            validation_method="DNS",
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        option = self.certificate.domain_validation_options.get(0)
        self.certificate_record = Route53Record(
            self,
            "certificate-validation-record",
            zone_id=self.props.hosted_zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=60,
            allow_overwrite=True,
        )
        self.certificate_validation = AcmCertificateValidation(
            self,
            "certificate-validation",
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=[self.certificate_record.fqdn],
        )

    def _build_target_groups(self) -> None:
        """A health-checked target group per alias, each allowed to invoke its alias."""
        props = self.props
        app = props.app
        self.target_groups: dict[str, LbTargetGroup] = {}
        for alias_name, alias in self.aliases.items():
            group = LbTargetGroup(
                self,
                f"tg-{alias_name}",
                name=naming.target_group_name(props.name, alias_name),
                target_type="lambda",
                health_check=LbTargetGroupHealthCheck(
                    enabled=True,
                    path="/health",
                    matcher="200",
                    interval=app.health_check_interval_seconds,
                    timeout=app.health_check_timeout_seconds,
                    healthy_threshold=app.healthy_threshold,
                    unhealthy_threshold=app.unhealthy_threshold,
                ),
            )
            permission = LambdaPermission(
                self,
                f"allow-alb-{alias_name}",
                statement_id=f"AllowAlbInvoke-{alias_name}",
                action="lambda:InvokeFunction",
                function_name=self.function.function_name,
                qualifier=alias.name,
                principal="elasticloadbalancing.amazonaws.com",
                source_arn=group.arn,
            )
            LbTargetGroupAttachment(
                self,
                f"tg-{alias_name}-attachment",
                target_group_arn=group.arn,
                target_id=alias.arn,
                depends_on=[permission],
            )
            self.target_groups[alias_name] = group

    def _build_listeners(self) -> None:
        """The HTTPS listener, weighted over blue and green, and the HTTP redirect."""
        weights = self.props.app.listener_weights
        self.https_listener = LbListener(
            self,
            "https",
            load_balancer_arn=self.load_balancer.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=HTTPS_POLICY,
            certificate_arn=self.certificate_validation.certificate_arn,
            default_action=[
                LbListenerDefaultAction(
                    type="forward",
                    forward=LbListenerDefaultActionForward(
                        target_group=[
                            LbListenerDefaultActionForwardTargetGroup(
                                arn=self.target_groups[alias].arn, weight=weights[alias]
                            )
                            for alias in ALIASES
                        ]
                    ),
                )
            ],
            # Like the Route 53 weights, the listener weights are the controller's once
            # created: an apply must never undo the listener half of a rollback.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["default_action"]),
        )
        self.http_listener = LbListener(
            self,
            "http-redirect",
            load_balancer_arn=self.load_balancer.arn,
            port=80,
            protocol="HTTP",
            default_action=[
                LbListenerDefaultAction(
                    type="redirect",
                    redirect=LbListenerDefaultActionRedirect(
                        protocol="HTTPS", port="443", status_code="HTTP_301"
                    ),
                )
            ],
        )
