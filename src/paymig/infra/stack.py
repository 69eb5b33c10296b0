"""`PaymentMigrationStack`: one construct per concern, each kept as an attribute."""

from __future__ import annotations

from cdktf import Aspects, S3Backend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.provider import AwsProvider
from constructs import Construct

from paymig.config import PaymigConfig
from paymig.infra.data import DataProps, DataTier
from paymig.infra.network import NetworkProps, NetworkTier
from paymig.infra.security import SecurityProps, SecurityTier
from paymig.infra.tagging import TagEverything


class PaymentMigrationStack(TerraformStack):
    """The complete AWS target environment of one paymig environment."""

    def __init__(self, scope: Construct, config: PaymigConfig) -> None:
        """Compose the tiers from the configuration."""
        super().__init__(scope, config.stack_name)
        self.config = config
        name = config.stack_name

        # ------------------------------------------------------------ provider and state
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
        account_id = str(self.caller.account_id)

        # ------------------------------------------------------------ tiers
        self.network = NetworkTier(
            self,
            "network",
            NetworkProps(
                name=name,
                region=config.region,
                account_id=account_id,
                network=config.network,
                onprem=config.onprem,
            ),
        )

        self.database = DataTier(
            self,
            "data",
            DataProps(
                name=name,
                region=config.region,
                account_id=account_id,
                database=config.database,
                vpc_id=self.network.vpc_id,
                data_subnet_ids=self.network.data_subnet_ids,
                availability_zones=config.network.availability_zones,
                log_retention_days=config.database.log_retention_days,
            ),
        )
        self.security = SecurityTier(
            self,
            "security",
            SecurityProps(name=name, region=config.region, account_id=account_id, waf=config.waf),
        )

        # ------------------------------------------------------------ outputs and tags
        TerraformOutput(self, "vpc_id", value=self.network.vpc_id)
        TerraformOutput(self, "app_subnet_ids", value=self.network.app_subnet_ids)
        TerraformOutput(self, "data_subnet_ids", value=self.network.data_subnet_ids)
        Aspects.of(self).add(
            TagEverything(
                {**config.tags.as_dict(), "Environment": config.environment, "ManagedBy": "paymig"}
            )
        )
