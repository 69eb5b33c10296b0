"""`PaymentMigrationStack`: one construct per concern, each kept as an attribute.

What is deployed follows ``migration.stage`` (see :mod:`paymig.config.migration`):
the checks that run, the replication alarms' arming, and, once ``finished``, no DMS, no
legacy record and a guard that fails the plan until `paymig finish` has stored
``complete`` (:mod:`paymig.infra.finish_guard`).
"""

from __future__ import annotations

from cdktf import Aspects, S3Backend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

from paymig import naming
from paymig.config import PaymigConfig
from paymig.infra.app import AppProps, AppTier
from paymig.infra.automation import AutomationProps, AutomationTier
from paymig.infra.checks import ChecksProps, DeploymentChecks
from paymig.infra.credentials import Credentials, CredentialsProps
from paymig.infra.data import DataProps, DataTier
from paymig.infra.finish_guard import FinishGuard
from paymig.infra.functions import LoginSecret
from paymig.infra.network import NetworkProps, NetworkTier
from paymig.infra.observability import ObservabilityProps, ObservabilityTier
from paymig.infra.onprem import OnPremDatabase
from paymig.infra.replication import ReplicationProps, ReplicationTier
from paymig.infra.security import SecurityProps, SecurityTier
from paymig.infra.tagging import TagEverything
from paymig.infra.traffic import TrafficProps, TrafficTier
from paymig.infra.trust import TrustStore, read_pem
from paymig.infra.validation_tier import ValidationTier


class PaymentMigrationStack(TerraformStack):
    """The complete AWS target environment of one paymig environment.

    Attributes (one per concern): :attr:`network`, :attr:`database`, :attr:`source`
    (the on-prem database as a server), :attr:`trust`, :attr:`credentials`,
    :attr:`security`, :attr:`replication` (None once finished), :attr:`app`,
    :attr:`traffic`, :attr:`observability`, :attr:`automation`, :attr:`checks`.
    """

    def __init__(self, scope: Construct, config: PaymigConfig) -> None:
        """Compose the tiers from the configuration."""
        super().__init__(scope, config.stack_name)
        self.config = config
        self._build_provider_and_state()
        self._build_finish_guard()
        self._build_network()
        self._build_data()
        self._build_trust_and_credentials()
        self._build_security()
        self._build_replication()
        self._build_app()
        self._build_traffic()
        self._build_observability()
        self._build_automation()
        self._build_checks()
        self._build_validation_job()
        self._build_watchers()
        self._build_outputs()
        self._tag_everything()

    # ---------------------------------------------------------------- builders

    def _build_provider_and_state(self) -> None:
        """The AWS provider, the S3 state backend and the caller's account id."""
        config = self.config
        self.provider = AwsProvider(self, "aws", region=config.region)
        # One state object per environment: its own key, encrypted at rest, with S3's
        # native lock file so two applies never interleave.
        self.backend = S3Backend(
            self,
            bucket=config.state.bucket,
            key=config.state_key,
            region=config.state.region,
            encrypt=True,
        )
        self.add_override("terraform.backend.s3.use_lockfile", True)
        self.caller = DataAwsCallerIdentity(self, "caller")
        #: The deploying account's id (a Terraform reference), for ARNs and key policies.
        self.account_id = str(self.caller.account_id)

    def _build_finish_guard(self) -> None:
        """At ``finished``: fail the plan unless the stored stage is ``complete``."""
        self.finish_guard: FinishGuard | None = None
        if self.config.migration.stage == "finished":
            self.finish_guard = FinishGuard(
                self,
                "finish-guard",
                stack_name=self.config.stack_name,
                env=self.config.environment,
            )

    def _build_network(self) -> None:
        """The VPC, its subnet tiers, NAT, endpoints, VPN and flow logs."""
        config = self.config
        self.network = NetworkTier(
            self,
            "network",
            NetworkProps(
                name=config.stack_name,
                region=config.region,
                account_id=self.account_id,
                network=config.network,
                onprem=config.onprem,
            ),
        )
        source = config.replication.source
        self.source = OnPremDatabase(
            host=source.host,
            port=source.port,
            dbname=source.database_name,
            network=self.network,
        )

    def _build_data(self) -> None:
        """The Aurora cluster."""
        config = self.config
        self.database = DataTier(
            self,
            "data",
            DataProps(
                name=config.stack_name,
                region=config.region,
                account_id=self.account_id,
                database=config.database,
                vpc_id=self.network.vpc_id,
                data_subnet_ids=self.network.data_subnet_ids,
                availability_zones=config.network.availability_zones,
                log_retention_days=config.database.log_retention_days,
            ),
        )

    def _build_trust_and_credentials(self) -> None:
        """Each server's CA bundle, and one login secret per client per server."""
        config = self.config
        self.trust = TrustStore(
            self,
            "trust",
            config.stack_name,
            {
                "source": read_pem(
                    "replication.source.ca_certificate_path",
                    config.replication.source.ca_certificate_path,
                ),
                "aurora": read_pem("database.ca_bundle_path", config.database.ca_bundle_path),
            },
            dms=config.migration.stage != "finished",
        )
        self.credentials = Credentials(
            self,
            "credentials",
            CredentialsProps(
                name=config.stack_name,
                region=config.region,
                account_id=self.account_id,
                rotation_days=config.database.secret_rotation_days,
                log_retention_days=config.app.log_retention_days,
                vpc_id=self.network.vpc_id,
                app_subnet_ids=self.network.app_subnet_ids,
                endpoints=self.network.endpoints,
                source=self.source,
                aurora=self.database,
                trust=self.trust,
                aurora_admin=LoginSecret(
                    arn=self.database.master_secret_arn, key_arn=self.database.key.arn
                ),
            ),
        )

    def _build_security(self) -> None:
        """The WAF web ACL."""
        config = self.config
        self.security = SecurityTier(
            self,
            "security",
            SecurityProps(
                name=config.stack_name,
                region=config.region,
                account_id=self.account_id,
                waf=config.waf,
            ),
        )

    def _build_replication(self) -> None:
        """DMS from the on-prem source to Aurora and back, until the migration is finished."""
        config = self.config
        self.replication: ReplicationTier | None = None
        if config.migration.stage == "finished":
            return
        observability = config.observability
        self.replication = ReplicationTier(
            self,
            "replication",
            ReplicationProps(
                name=config.stack_name,
                region=config.region,
                account_id=self.account_id,
                replication=config.replication,
                vpc_id=self.network.vpc_id,
                app_subnet_ids=self.network.app_subnet_ids,
                endpoints=self.network.endpoints,
                source=self.source,
                aurora=self.database,
                credentials=self.credentials,
                trust=self.trust,
                notification_emails=tuple(observability.notification_emails),
                notification_https_endpoints=tuple(observability.notification_https_endpoints),
            ),
        )

    def _build_app(self) -> None:
        """The payment API behind the ALB and the web ACL, connected to both databases."""
        config = self.config
        self.app = AppTier(
            self,
            "app",
            AppProps(
                name=config.stack_name,
                environment=config.environment,
                region=config.region,
                account_id=self.account_id,
                app=config.app,
                vpc_id=self.network.vpc_id,
                public_subnet_ids=self.network.public_subnet_ids,
                app_subnet_ids=self.network.app_subnet_ids,
                hosted_zone_id=config.dns.hosted_zone_id,
                api_record_name=config.dns.api_record_name,
                web_acl_arn=str(self.security.web_acl.arn),
                endpoints=self.network.endpoints,
                source=self.source,
                aurora=self.database,
                credentials=self.credentials,
                trust=self.trust,
                live_alias=config.controller.stable_alias,
            ),
        )

    def _build_traffic(self) -> None:
        """The weighted Route 53 records between legacy and the ALB."""
        config = self.config
        self.traffic = TrafficTier(
            self,
            "traffic",
            TrafficProps(
                name=config.stack_name,
                dns=config.dns,
                initial_aws_weight=config.migration.initial_phase,
                alb_dns_name=str(self.app.load_balancer.dns_name),
                alb_zone_id=str(self.app.load_balancer.zone_id),
                legacy=config.migration.stage != "finished",
            ),
        )

    def _build_observability(self) -> None:
        """The alarms on the real resources, their composite, and the dashboard."""
        config = self.config
        name = config.stack_name
        task = self.replication.task if self.replication is not None else None
        reverse = self.replication.reverse_task if self.replication is not None else None
        self.observability = ObservabilityTier(
            self,
            "observability",
            ObservabilityProps(
                name=name,
                environment=config.environment,
                region=config.region,
                account_id=self.account_id,
                observability=config.observability,
                alb_arn_suffix=str(self.app.load_balancer.arn_suffix),
                target_group_arn_suffixes={
                    alias: str(group.arn_suffix) for alias, group in self.app.target_groups.items()
                },
                function_name=str(self.app.function.function_name),
                cluster_identifier=str(self.database.cluster.cluster_identifier),
                dms_instance_identifier=naming.dms_instance_identifier(name),
                dms_task_arn=str(task.replication_task_arn) if task is not None else None,
                dms_reverse_task_arn=(
                    str(reverse.replication_task_arn) if reverse is not None else None
                ),
                log_retention_days=config.database.log_retention_days,
                stage=config.migration.stage,
            ),
        )

    def _build_automation(self) -> None:
        """The audit table and the rollback function on the composite alarm's topic."""
        config = self.config
        self.automation = AutomationTier(
            self,
            "automation",
            AutomationProps(
                name=config.stack_name,
                environment=config.environment,
                region=config.region,
                account_id=self.account_id,
                dns=config.dns,
                controller=config.controller,
                vpc_id=self.network.vpc_id,
                app_subnet_ids=self.network.app_subnet_ids,
                endpoints=self.network.endpoints,
                alarm_topic_arn=str(self.observability.topic.arn),
                alert_topic_arn=str(self.observability.alert_topic.arn),
                topic_key_arn=self.observability.key.arn,
                composite_alarm_name=naming.composite_alarm_name(config.stack_name),
                https_listener_arn=str(self.app.https_listener.arn),
                log_retention_days=config.app.log_retention_days,
                automatic_fallback_seconds=config.automation.automatic_fallback_seconds,
            ),
        )

    def _build_validation_job(self) -> None:
        """The full validation pass on Step Functions (not once the migration is finished)."""
        self.validation: ValidationTier | None = None
        if self.config.migration.stage == "finished":
            return
        # The same servers, logins, CAs and network as the deployment checks.
        self.validation = ValidationTier(self, "validation", self.checks.props)

    def _build_checks(self) -> None:
        """The deployment checks run during apply, as the stage asks."""
        self.checks = DeploymentChecks(
            self,
            "checks",
            ChecksProps(
                config=self.config,
                account_id=self.account_id,
                vpc_id=self.network.vpc_id,
                app_subnet_ids=self.network.app_subnet_ids,
                endpoints=self.network.endpoints,
                automation=self.automation,
                source=self.source,
                aurora=self.database,
                credentials=self.credentials,
                trust=self.trust,
                aurora_admin=LoginSecret(
                    arn=self.database.master_secret_arn, key_arn=self.database.key.arn
                ),
            ),
        )

    def _build_watchers(self) -> None:
        """Alarms on the rollback function itself, and on deletions of access logs."""
        rollback = self.automation.rollback
        self.observability.watch_function(
            "rollback",
            str(rollback.function.function_name),
            str(rollback.dead_letter_queue.name),
        )
        self.observability.watch_bucket_deletions(
            "access-log-deletions", str(self.app.access_logs.bucket)
        )

    def _build_outputs(self) -> None:
        """The network ids other stacks and operators read."""
        TerraformOutput(self, "vpc_id", value=self.network.vpc_id)
        TerraformOutput(self, "app_subnet_ids", value=self.network.app_subnet_ids)
        TerraformOutput(self, "data_subnet_ids", value=self.network.data_subnet_ids)

    def _tag_everything(self) -> None:
        """The configured tags, the environment and `ManagedBy` on every taggable resource."""
        config = self.config
        Aspects.of(self).add(
            TagEverything(
                {**config.tags.as_dict(), "Environment": config.environment, "ManagedBy": "paymig"}
            )
        )
