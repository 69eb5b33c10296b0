"""`PaymentMigrationStack`: one construct per concern, each kept as an attribute."""

from __future__ import annotations

import json

from cdktf import Aspects, S3Backend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

from paymig import naming
from paymig.config import PaymigConfig
from paymig.infra.app import AppProps, AppTier, DatabaseTarget
from paymig.infra.automation import (
    AutomationProps,
    AutomationTier,
    ValidationChecks,
    ValidationTarget,
)
from paymig.infra.data import POSTGRES_PORT, DataProps, DataTier
from paymig.infra.network import NetworkProps, NetworkTier
from paymig.infra.observability import ObservabilityProps, ObservabilityTier
from paymig.infra.replication import ReplicationProps, ReplicationTier
from paymig.infra.security import SecurityProps, SecurityTier
from paymig.infra.tagging import TagEverything
from paymig.infra.traffic import TrafficProps, TrafficTier


class PaymentMigrationStack(TerraformStack):
    """The complete AWS target environment of one paymig environment."""

    def __init__(self, scope: Construct, config: PaymigConfig) -> None:
        """Compose the tiers from the configuration."""
        super().__init__(scope, config.stack_name)
        self.config = config
        self._build_provider_and_state()
        self._build_network()
        self._build_data()
        self._build_security()
        self._build_replication()
        self._build_app()
        self._build_traffic()
        self._build_observability()
        self._build_automation()
        self._build_validation()
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

    def _build_network(self) -> None:
        """The VPC, its subnet tiers, NAT, VPN and flow logs."""
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

    def _build_data(self) -> None:
        """The Aurora cluster; the payment API's role may decrypt with its key."""
        config = self.config
        name = config.stack_name
        self.database = DataTier(
            self,
            "data",
            DataProps(
                name=name,
                region=config.region,
                account_id=self.account_id,
                database=config.database,
                vpc_id=self.network.vpc_id,
                data_subnet_ids=self.network.data_subnet_ids,
                availability_zones=config.network.availability_zones,
                log_retention_days=config.database.log_retention_days,
                key_user_role_names=(naming.payment_api_function(name),),
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
        """DMS from the on-prem source to Aurora, admitted by the database."""
        config = self.config
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
                onprem_cidr=str(config.onprem.cidr),
                data_security_group_id=str(self.database.security_group.id),
                target_endpoint_address=str(self.database.cluster.endpoint),
                target_port=POSTGRES_PORT,
                target_database_name=config.database.database_name,
                target_secret_arn=str(self.database.dms_secret.arn),
                target_secret_kms_key_arn=self.database.key.arn,
            ),
        )
        self.database.allow_postgres_from(
            "dms",
            str(self.replication.security_group.id),
            "PostgreSQL from the DMS replication instance",
        )

    def _build_app(self) -> None:
        """The payment API behind the ALB and the web ACL, admitted by the database."""
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
                database=self._api_database(),
                live_alias=config.controller.stable_alias,
            ),
        )
        self.database.allow_postgres_from(
            "app", str(self.app.security_group.id), "PostgreSQL from the payment API Lambda"
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
            ),
        )

    def _build_observability(self) -> None:
        """The alarms on the real resources, their composite, and the dashboard."""
        config = self.config
        name = config.stack_name
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
                dms_task_arn=str(self.replication.task.replication_task_arn),
                log_retention_days=config.database.log_retention_days,
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
                alarm_topic_arn=str(self.observability.topic.arn),
                alarm_topic_key_arn=self.observability.key.arn,
                https_listener_arn=str(self.app.https_listener.arn),
                log_retention_days=config.app.log_retention_days,
                validation=self._validation_target(),
            ),
        )

    def _build_validation(self) -> None:
        """The validation checks run during apply, admitted by the database."""
        self.validation = ValidationChecks(
            self, "validation", self.automation.props, self.automation
        )
        self.database.allow_postgres_from(
            "validation",
            str(self.validation.security_group.id),
            "PostgreSQL from the validation Lambda (read-only checks)",
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

    def _api_database(self) -> DatabaseTarget:
        """The database the payment API uses (see `app.write_target` in the config).

        Until cutover the system of record is the on-prem source, reached over the VPN
        with the same credentials secret DMS uses; afterwards it is Aurora.
        """
        if self.config.app.write_target == "source":
            source = self.config.replication.source
            return DatabaseTarget(
                host=source.host,
                port=source.port,
                name=source.database_name,
                secret_arn=str(self.replication.source_secret.arn),
                secret_key_arn=self.replication.key.arn,
                cidr=str(self.config.onprem.cidr),
            )
        return DatabaseTarget(
            host=str(self.database.cluster.endpoint),
            port=POSTGRES_PORT,
            name=self.config.database.database_name,
            secret_arn=self.database.master_secret_arn,
            secret_key_arn=self.database.key.arn,
            security_group_id=str(self.database.security_group.id),
        )

    def _validation_target(self) -> ValidationTarget:
        """What the deployment checks compare: the DMS logins and the migration settings."""
        rep = self.config.replication
        return ValidationTarget(
            source_secret_arn=str(self.replication.source_secret.arn),
            source_key_arn=self.replication.key.arn,
            source_database=rep.source.database_name,
            source_port=rep.source.port,
            source_ca_pem=self.replication.ca_pem,
            onprem_cidr=str(self.config.onprem.cidr),
            target_secret_arn=str(self.database.dms_secret.arn),
            target_key_arn=self.database.key.arn,
            target_database=self.config.database.database_name,
            target_security_group_id=str(self.database.security_group.id),
            table_rules_json=json.dumps([r.model_dump() for r in rep.table_rules]),
            lob_mode=rep.lob_mode,
            grace_seconds=self.config.validation.grace_seconds,
            cdc_threshold_seconds=self.config.controller.cdc_latency_threshold_seconds,
            cdc_lookback_seconds=self.config.controller.cdc_latency_lookback_seconds,
            post_migration_check=self.config.validation.post_migration_check,
        )
