"""Data tier (requirement 2): Aurora PostgreSQL 14, Multi-AZ, CMK-encrypted, TLS only.

Credentials (requirement 7): the master password is generated and kept by RDS in a
Secrets Manager secret (``manage_master_user_password``), encrypted with the data CMK
and rotated every 30 days by ``aws_secretsmanager_secret_rotation``. We chose this over
a secret with our own rotation Lambda because the password then never passes through
Terraform (no literal, nothing in state), RDS performs the rotation itself with no code
of ours to keep patched, and the schedule is still explicit and reviewable in the plan.
No client connects as the master user: each has its own login (``paymig.logins``), kept
in :mod:`paymig.infra.credentials` and created by the database setup check.

Clients reach the cluster only through :meth:`DataTier.open_path`, which writes the
client's egress and the cluster's ingress in one call.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_aws.db_subnet_group import DbSubnetGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.rds_cluster import RdsCluster
from cdktf_cdktf_provider_aws.rds_cluster_instance import RdsClusterInstance
from cdktf_cdktf_provider_aws.rds_cluster_parameter_group import (
    RdsClusterParameterGroup,
    RdsClusterParameterGroupParameter,
)
from cdktf_cdktf_provider_aws.secretsmanager_secret_rotation import (
    SecretsmanagerSecretRotation,
    SecretsmanagerSecretRotationRotationRules,
)
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from constructs import Construct

from paymig.config import DatabaseConfig
from paymig.infra.connections import POSTGRES_PORT, VpcClient, connect_to_group
from paymig.infra.iam import assume_role_policy, statement
from paymig.infra.kms import CustomerManagedKey, KeyProps
from paymig.logins import PGAUDIT_PARAMETERS

#: AWS managed policy for RDS enhanced monitoring (it only writes to RDSOSMetrics logs).
ENHANCED_MONITORING_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


@dataclass(frozen=True)
class DataProps:
    """Inputs of the data tier."""

    name: str
    region: str
    account_id: str
    database: DatabaseConfig
    vpc_id: str
    data_subnet_ids: list[str]
    availability_zones: list[str]
    log_retention_days: int


class DataTier(Construct):
    """Aurora PostgreSQL cluster, its CMK, parameter group, security group and secret.

    Attributes other constructs use: :attr:`security_group` (clients connect with
    :meth:`open_path`), :attr:`cluster`, :attr:`instances`, :attr:`key`,
    :attr:`master_secret_arn`; and as a database server: :attr:`server`, :attr:`host`,
    :attr:`port`, :attr:`dbname`.
    """

    server = "aurora"

    def __init__(self, scope: Construct, construct_id: str, props: DataProps) -> None:
        """Create the cluster and everything it depends on."""
        super().__init__(scope, construct_id)
        self.props = props
        self._build_key()
        self._build_network_placement()
        self._build_parameter_group()
        self._build_log_group()
        self._build_cluster()
        self._build_instances()
        self._build_secret_rotation()

    # ---------------------------------------------------------------- names

    @property
    def _cluster_id(self) -> str:
        """Identifier of the Aurora cluster; its instances and log group derive from it."""
        return f"{self.props.name}-aurora"

    @property
    def _log_group_name(self) -> str:
        """The log group RDS exports the cluster's PostgreSQL log to (name fixed by RDS)."""
        return f"/aws/rds/cluster/{self._cluster_id}/postgresql"

    # ---------------------------------------------------------------- builders

    def _build_key(self) -> None:
        """The data CMK: used only by RDS and Secrets Manager acting for this account.

        The cluster's log group is admitted by :meth:`_build_log_group`, in the same call
        that creates it.
        """
        props = self.props
        root = f"arn:aws:iam::{props.account_id}:root"
        self.key = CustomerManagedKey(
            self,
            "key",
            KeyProps(
                alias=f"{props.name}/data",
                description=f"{props.name}: encrypts Aurora storage, its secret and its logs",
                account_id=props.account_id,
                region=props.region,
                usage_statements=[
                    statement(
                        "RdsAndSecretsManagerUseKey",
                        [
                            "kms:Encrypt",
                            "kms:Decrypt",
                            "kms:ReEncrypt*",
                            "kms:GenerateDataKey*",
                            "kms:DescribeKey",
                            "kms:CreateGrant",
                            "kms:ListGrants",
                        ],
                        "*",
                        principal={"AWS": root},
                        condition={
                            "StringEquals": {
                                "kms:ViaService": [
                                    f"rds.{props.region}.amazonaws.com",
                                    f"secretsmanager.{props.region}.amazonaws.com",
                                ],
                                "kms:CallerAccount": props.account_id,
                            }
                        },
                    )
                ],
            ),
        )

    def _build_network_placement(self) -> None:
        """The subnet group (data subnets only) and the cluster's security group."""
        props = self.props
        self.subnet_group = DbSubnetGroup(
            self,
            "subnets",
            name=f"{props.name}-data",
            subnet_ids=props.data_subnet_ids,
            description="Aurora: private data subnets only (no internet route)",
        )
        # No inline rules: Terraform removes AWS's default allow-all egress, so the
        # database can open no connections; ingress is added per caller (:meth:`open_path`).
        self.security_group = SecurityGroup(
            self,
            "sg",
            name=f"{props.name}-aurora",
            description="Aurora PostgreSQL: 5432 from the app tier and DMS only",
            vpc_id=props.vpc_id,
        )

    def _build_parameter_group(self) -> None:
        """The cluster parameter group: TLS only, and audit logging."""
        parameters = {
            # TLS only, 1.2 or later: the server refuses plaintext connections.
            "rds.force_ssl": ("1", "immediate"),
            "ssl_min_protocol_version": ("TLSv1.2", "immediate"),
            # PCI DSS 10.2: who connected, when, and what they did to cardholder data.
            "log_connections": ("1", "immediate"),
            "log_disconnections": ("1", "immediate"),
            "shared_preload_libraries": ("pgaudit,pg_stat_statements", "pending-reboot"),
            # Writes, DDL and role changes, without `read` (paymig.logins explains why).
            **{name: (value, "immediate") for name, value in PGAUDIT_PARAMETERS.items()},
            # Aurora as a logical-replication source (the way back after cutover): a
            # static parameter, so it is set from the first apply, not at cutover time.
            "rds.logical_replication": ("1", "pending-reboot"),
            "log_min_duration_statement": ("1000", "immediate"),
            "log_lock_waits": ("1", "immediate"),
        }
        self.parameter_group = RdsClusterParameterGroup(
            self,
            "params",
            name=f"{self.props.name}-aurora-pg14",
            family="aurora-postgresql14",
            description="paymig: TLS enforced, connection and pgaudit logging",
            parameter=[
                RdsClusterParameterGroupParameter(name=k, value=v, apply_method=m)
                for k, (v, m) in parameters.items()
            ],
        )

    def _build_log_group(self) -> None:
        """The CMK-encrypted log group of the exported PostgreSQL log."""
        self.log_group = self.key.encrypted_log_group(
            self,
            "logs",
            name=self._log_group_name,
            retention_days=self.props.log_retention_days,
        )

    def _build_cluster(self) -> None:
        """The Aurora PostgreSQL cluster, its master password managed by RDS."""
        db = self.props.database
        cluster_id = self._cluster_id
        self.cluster = RdsCluster(
            self,
            "cluster",
            cluster_identifier=cluster_id,
            engine="aurora-postgresql",
            engine_version=db.engine_version,
            # Explicit, with AWS's own default (see DatabaseConfig.engine_lifecycle_support).
            engine_lifecycle_support=db.engine_lifecycle_support,
            database_name=db.database_name,
            master_username=db.master_username,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=self.key.arn,
            port=POSTGRES_PORT,
            db_subnet_group_name=self.subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            db_cluster_parameter_group_name=self.parameter_group.name,
            storage_encrypted=True,
            kms_key_id=self.key.arn,
            iam_database_authentication_enabled=True,
            deletion_protection=True,
            backup_retention_period=db.backup_retention_days,
            preferred_backup_window=db.backup_window,
            preferred_maintenance_window=db.maintenance_window,
            copy_tags_to_snapshot=True,
            skip_final_snapshot=False,
            final_snapshot_identifier=f"{cluster_id}-final",
            enabled_cloudwatch_logs_exports=["postgresql"],
            depends_on=[self.log_group],
        )

    def _build_instances(self) -> None:
        """The enhanced monitoring role, the writer and the readers."""
        props = self.props
        db = props.database
        self.monitoring_role = IamRole(
            self,
            "monitoring-role",
            name=f"{props.name}-rds-monitoring",
            assume_role_policy=assume_role_policy("monitoring.rds.amazonaws.com"),
        )
        IamRolePolicyAttachment(
            self,
            "monitoring-policy",
            role=self.monitoring_role.name,
            policy_arn=ENHANCED_MONITORING_POLICY,
        )
        # The writer goes to the first AZ and each reader to the next, so a reader is
        # always in another AZ and failover keeps the cluster Multi-AZ.
        zones = props.availability_zones
        self.instances = [
            RdsClusterInstance(
                self,
                f"instance-{index}",
                identifier=f"{self._cluster_id}-{index}",
                cluster_identifier=self.cluster.id,
                engine="aurora-postgresql",
                engine_version=db.engine_version,
                instance_class=db.instance_class,
                availability_zone=zones[index % len(zones)],
                db_subnet_group_name=self.subnet_group.name,
                publicly_accessible=False,
                ca_cert_identifier=db.ca_cert_identifier,
                auto_minor_version_upgrade=True,
                promotion_tier=index,
                performance_insights_enabled=True,
                performance_insights_kms_key_id=self.key.arn,
                performance_insights_retention_period=7,
                monitoring_interval=db.monitoring_interval_seconds,
                monitoring_role_arn=self.monitoring_role.arn,
                copy_tags_to_snapshot=True,
                preferred_maintenance_window=db.maintenance_window,
            )
            for index in range(db.instance_count)
        ]

    def _build_secret_rotation(self) -> None:
        """Rotation of the RDS-managed master secret on the configured schedule."""
        self.secret_rotation = SecretsmanagerSecretRotation(
            self,
            "secret-rotation",
            secret_id=self.master_secret_arn,
            rotation_rules=SecretsmanagerSecretRotationRotationRules(
                automatically_after_days=self.props.database.secret_rotation_days
            ),
        )

    @property
    def master_secret_arn(self) -> str:
        """ARN of the RDS-managed secret holding the master credentials."""
        return str(self.cluster.master_user_secret.get(0).secret_arn)

    @property
    def writer(self) -> RdsClusterInstance:
        """The instance created as writer (promotion tier 0)."""
        return self.instances[0]

    # ---------------------------------------------------------------- as a server

    @property
    def host(self) -> str:
        """The cluster (writer) endpoint: the name its certificate carries."""
        return str(self.cluster.endpoint)

    @property
    def port(self) -> int:
        """PostgreSQL's port."""
        return POSTGRES_PORT

    @property
    def dbname(self) -> str:
        """The payments database."""
        return self.props.database.database_name

    def open_path(self, client: VpcClient) -> list[ITerraformDependable]:
        """Let ``client`` reach the cluster: both rules, and the cluster and instances."""
        rules = connect_to_group(
            self, self.security_group, client, POSTGRES_PORT, server_name="aurora"
        )
        return [*rules, self.cluster, *self.instances]
