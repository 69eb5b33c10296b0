"""Replication tier (requirement 4): AWS DMS full load of the on-prem PostgreSQL, then CDC.

Sizing of the defaults (``ReplicationConfig``) for a 500 GB initial load:

* **Full-load duration.** The load is bounded by the Site-to-Site VPN (two tunnels of
  ~1.25 Gbit/s each; one flow uses one tunnel). At a conservative 40 MB/s sustained
  with 8 tables in parallel on a dms.r5.large: 500 GB = 512,000 MB / 40 MB/s =
  12,800 s ~= 3.6 h. At a pessimistic 15 MB/s (VPN shared with production traffic) it
  is 34,000 s ~= 9.5 h. Plan for one night; CDC keeps the target current afterwards.
* **Storage headroom.** DMS streams rows and never stores the 500 GB. Its disk holds
  task logs, changes cached while tables are still loading, and sorter swap. With 100 GB:
  cached changes for a 12 h load at 50,000 tx/day x ~8 KB = 0.2 GB; logs at default
  severity ~1 GB/day x 30 days = 30 GB; one spilled 20 GB batch transaction = 20 GB;
  total ~51 GB, so ~2x headroom before the `low storage` event fires.

Credentials: the endpoints read them from Secrets Manager through an access role scoped
to exactly the two secrets; nothing in this module holds a username or a password. The
source secret is created empty: the operator stores its value (see
:data:`SOURCE_SECRET_KEYS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cdktf_cdktf_provider_aws.data_aws_iam_role import DataAwsIamRole
from cdktf_cdktf_provider_aws.dms_certificate import DmsCertificate
from cdktf_cdktf_provider_aws.dms_endpoint import DmsEndpoint, DmsEndpointPostgresSettings
from cdktf_cdktf_provider_aws.dms_event_subscription import DmsEventSubscription
from cdktf_cdktf_provider_aws.dms_replication_instance import DmsReplicationInstance
from cdktf_cdktf_provider_aws.dms_replication_subnet_group import DmsReplicationSubnetGroup
from cdktf_cdktf_provider_aws.dms_replication_task import DmsReplicationTask
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.secretsmanager_secret import SecretsmanagerSecret
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from constructs import Construct

from paymig import naming
from paymig.config import ReplicationConfig
from paymig.errors import ConfigError
from paymig.infra.dms_settings import table_mappings_json, task_settings_json
from paymig.infra.iam import assume_role_policy, policy_document, statement
from paymig.infra.kms import KEY_USAGE_ACTIONS, CustomerManagedKey, KeyProps

#: The repository root: relative paths in the configuration are resolved against it.
REPO_ROOT = Path(__file__).resolve().parents[3]

#: JSON keys of the source secret value, which the operator stores (never Terraform):
#: ``{"username": ..., "password": ..., "host": ..., "port": 5432}``. DMS reads the
#: server address from the secret whenever an endpoint uses `secrets_manager_arn`.
SOURCE_SECRET_KEYS = ("username", "password", "host", "port")

#: Account-wide roles DMS itself assumes; their names are fixed by AWS.
DMS_VPC_ROLE = "dms-vpc-role"
DMS_LOGS_ROLE = "dms-cloudwatch-logs-role"
_MANAGED_POLICIES = {
    DMS_VPC_ROLE: "arn:aws:iam::aws:policy/service-role/AmazonDMSVPCManagementRole",
    DMS_LOGS_ROLE: "arn:aws:iam::aws:policy/service-role/AmazonDMSCloudWatchLogsRole",
}

PEM_HEADER = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class ReplicationProps:
    """Inputs of the replication tier."""

    name: str
    region: str
    account_id: str
    replication: ReplicationConfig
    vpc_id: str
    app_subnet_ids: list[str]
    onprem_cidr: str
    data_security_group_id: str
    target_endpoint_address: str
    target_port: int
    target_database_name: str
    target_secret_arn: str
    target_secret_kms_key_arn: str
    base_dir: Path = REPO_ROOT


def read_ca_certificate(replication: ReplicationConfig, base_dir: Path) -> str:
    """Read the source CA certificate at synth time, or fail naming the config field."""
    field = "replication.source.ca_certificate_path"
    path = base_dir / replication.source.ca_certificate_path
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ConfigError(f"{field}: {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{field}: cannot read {path}: {exc}") from None
    if PEM_HEADER not in text or "PRIVATE KEY" in text:
        raise ConfigError(f"{field}: {path} is not a PEM CA certificate")
    return text


class ReplicationTier(Construct):
    """DMS replication instance, endpoints, task and events, with their IAM and KMS.

    Attributes: :attr:`security_group`, :attr:`replication_instance`, :attr:`task`,
    :attr:`source_endpoint`, :attr:`target_endpoint`, :attr:`source_secret`,
    :attr:`event_topic`, :attr:`key`.
    """

    def __init__(self, scope: Construct, construct_id: str, props: ReplicationProps) -> None:
        """Create the tier; the task is created stopped (the runbook starts it)."""
        super().__init__(scope, construct_id)
        self.props = props
        #: The on-prem CA certificate (PEM text), for other checks that connect to the source.
        self.ca_pem = read_ca_certificate(props.replication, props.base_dir)
        self._build_service_roles()
        self._build_secrets_access_role()
        self._build_key()
        self._build_source_secret()
        self._build_network()
        self._build_replication_instance()
        self._build_source_endpoint()
        self._build_target_endpoint()
        self._build_task()
        self._build_events()

    # ---------------------------------------------------------------- shared values

    @property
    def _service_roles(self) -> list[IamRolePolicyAttachment | DataAwsIamRole]:
        """What everything DMS creates must wait for: its service roles."""
        return [*self.service_role_attachments, *self.service_role_lookups]

    @property
    def _secrets_via(self) -> str:
        """The Secrets Manager endpoint through which the endpoint secrets are read."""
        return f"secretsmanager.{self.props.region}.amazonaws.com"

    # ---------------------------------------------------------------- builders

    def _build_service_roles(self) -> None:
        """The two account-wide DMS service roles, created here or looked up.

        DMS looks these two roles up by name; they are account-wide, so exactly one
        environment per account creates them and the others reference them (the lookup
        fails the plan with a clear error when they do not exist yet).
        """
        self.service_role_attachments: list[IamRolePolicyAttachment] = []
        self.service_role_lookups: list[DataAwsIamRole] = []
        if self.props.replication.create_service_roles:
            for role_name, policy_arn in _MANAGED_POLICIES.items():
                role = IamRole(
                    self,
                    role_name,
                    name=role_name,
                    description=f"Assumed by AWS DMS ({role_name}, name fixed by AWS)",
                    assume_role_policy=assume_role_policy("dms.amazonaws.com"),
                )
                self.service_role_attachments.append(
                    IamRolePolicyAttachment(
                        self, f"{role_name}-policy", role=role.name, policy_arn=policy_arn
                    )
                )
        else:
            self.service_role_lookups = [
                DataAwsIamRole(self, role_name, name=role_name) for role_name in _MANAGED_POLICIES
            ]

    def _build_secrets_access_role(self) -> None:
        """The role the endpoints assume to read their secrets."""
        props = self.props
        self.secrets_access_role = IamRole(
            self,
            "secrets-access-role",
            name=f"{props.name}-dms-secrets-access",
            description="DMS reads the source and target endpoint secrets",
            # Secrets access roles are assumed by the regional DMS principal.
            assume_role_policy=assume_role_policy(
                f"dms.{props.region}.amazonaws.com",
                condition={"StringEquals": {"aws:SourceAccount": props.account_id}},
            ),
        )

    def _build_key(self) -> None:
        """The CMK of DMS storage, the endpoints, the source secret and the event topic."""
        props = self.props
        stack = props.name
        secrets_via = self._secrets_via
        self.key = CustomerManagedKey(
            self,
            "key",
            KeyProps(
                alias=f"{stack}/dms",
                description=f"{stack}: DMS storage, endpoints, source secret, event topic",
                account_id=props.account_id,
                usage_statements=[
                    statement(
                        "DmsAccessRoleDecryptsSecret",
                        ["kms:Decrypt", "kms:DescribeKey"],
                        "*",
                        principal={"AWS": self.secrets_access_role.arn},
                        condition={"StringEquals": {"kms:ViaService": secrets_via}},
                    ),
                    # Operators store the source secret value through Secrets Manager,
                    # and DMS encrypts storage and endpoints through grants it creates
                    # for the caller; both only through those two services.
                    statement(
                        "AccountUsesKeyThroughSecretsManagerAndDms",
                        [*KEY_USAGE_ACTIONS, "kms:CreateGrant"],
                        "*",
                        principal={"AWS": f"arn:aws:iam::{props.account_id}:root"},
                        condition={
                            "StringEquals": {
                                "kms:CallerAccount": props.account_id,
                                "kms:ViaService": [
                                    secrets_via,
                                    f"dms.{props.region}.amazonaws.com",
                                ],
                            }
                        },
                    ),
                    # DMS publishes events to the encrypted SNS topic.
                    statement(
                        "DmsPublishesToEncryptedTopic",
                        ["kms:GenerateDataKey*", "kms:Decrypt"],
                        "*",
                        principal={"Service": "dms.amazonaws.com"},
                        condition={"StringEquals": {"aws:SourceAccount": props.account_id}},
                    ),
                ],
            ),
        )

    def _build_source_secret(self) -> None:
        """The empty source secret, and the access role's policy on both secrets."""
        props = self.props
        source = props.replication.source
        self.source_secret = SecretsmanagerSecret(
            self,
            "source-secret",
            name=naming.dms_source_secret_name(props.name),
            description=(
                "On-prem PostgreSQL credentials for DMS. The operator stores the value as "
                'JSON {"username", "password", "host", "port"}: host '
                f"{source.host}, port {source.port}. Terraform never sets it."
            ),
            kms_key_id=self.key.arn,
            recovery_window_in_days=30,
        )
        IamRolePolicy(
            self,
            "secrets-access-policy",
            role=self.secrets_access_role.id,
            policy=policy_document(
                statement(
                    "ReadEndpointSecrets",
                    ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    [self.source_secret.arn, props.target_secret_arn],
                ),
                statement(
                    "DecryptEndpointSecrets",
                    ["kms:Decrypt"],
                    [self.key.arn, props.target_secret_kms_key_arn],
                    condition={"StringEquals": {"kms:ViaService": self._secrets_via}},
                ),
            ),
        )

    def _build_network(self) -> None:
        """The subnet group and a security group with egress to source and target only."""
        props = self.props
        stack = props.name
        self.subnet_group = DmsReplicationSubnetGroup(
            self,
            "subnet-group",
            replication_subnet_group_id=f"{stack}-dms",
            replication_subnet_group_description=f"{stack}: DMS in the private app subnets",
            subnet_ids=props.app_subnet_ids,
            depends_on=self._service_roles,
        )
        self.security_group = SecurityGroup(
            self,
            "security-group",
            name=f"{stack}-dms",
            description="DMS replication instance: egress to the source and the target only",
            vpc_id=props.vpc_id,
            tags={"Name": f"{stack}-dms"},
        )
        source_port = props.replication.source.port
        self.egress_rules = [
            VpcSecurityGroupEgressRule(
                self,
                "egress-onprem-source",
                security_group_id=self.security_group.id,
                description="DMS reads the on-prem PostgreSQL source over the VPN",
                ip_protocol="tcp",
                from_port=source_port,
                to_port=source_port,
                cidr_ipv4=props.onprem_cidr,
            ),
            VpcSecurityGroupEgressRule(
                self,
                "egress-aurora-target",
                security_group_id=self.security_group.id,
                description="DMS writes to the Aurora PostgreSQL target in the data tier",
                ip_protocol="tcp",
                from_port=props.target_port,
                to_port=props.target_port,
                referenced_security_group_id=props.data_security_group_id,
            ),
        ]

    def _build_replication_instance(self) -> None:
        """The replication instance in the app subnets, not publicly accessible."""
        rep = self.props.replication
        self.replication_instance = DmsReplicationInstance(
            self,
            "instance",
            replication_instance_id=naming.dms_instance_identifier(self.props.name),
            replication_instance_class=rep.instance_class,
            allocated_storage=rep.allocated_storage_gb,
            engine_version=rep.engine_version,
            multi_az=rep.multi_az,
            publicly_accessible=False,
            kms_key_arn=self.key.arn,
            replication_subnet_group_id=self.subnet_group.replication_subnet_group_id,
            vpc_security_group_ids=[self.security_group.id],
            # DMS upgrades automatically only when the pinned version is deprecated,
            # which it would force anyway; it never moves a supported pinned version.
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            apply_immediately=False,
            preferred_maintenance_window="sun:06:00-sun:07:00",
            depends_on=self._service_roles,
        )

    def _build_source_endpoint(self) -> None:
        """The on-prem CA certificate and the source endpoint that verifies against it."""
        props = self.props
        rep = props.replication
        stack = props.name
        self.certificate = DmsCertificate(
            self,
            "source-ca",
            certificate_id=f"{stack}-onprem-ca",
            certificate_pem=self.ca_pem,
        )
        self.source_endpoint = DmsEndpoint(
            self,
            "source-endpoint",
            endpoint_id=naming.dms_source_endpoint_id(stack),
            endpoint_type="source",
            engine_name="postgres",
            database_name=rep.source.database_name,
            ssl_mode="verify-full",
            certificate_arn=self.certificate.certificate_arn,
            secrets_manager_arn=self.source_secret.arn,
            secrets_manager_access_role_arn=self.secrets_access_role.arn,
            kms_key_arn=self.key.arn,
            postgres_settings=DmsEndpointPostgresSettings(
                heartbeat_enable=True,
                heartbeat_frequency=rep.heartbeat_frequency_minutes,
                slot_name=rep.slot_name,
                # test_decoding ships with PostgreSQL and needs no publication.
                plugin_name="test_decoding",
                # DDL capture installs event triggers (superuser) on the source; schema
                # changes during the migration go through change control instead.
                capture_ddls=False,
                # In limited LOB mode a LOB larger than lob_max_size_kb stops the task
                # instead of being silently truncated.
                fail_tasks_on_lob_truncation=True,
                map_boolean_as_boolean=True,
            ),
            tags={"Name": f"{stack}-onprem-source"},
        )

    def _build_target_endpoint(self) -> None:
        """The Aurora target endpoint."""
        props = self.props
        stack = props.name
        self.target_endpoint = DmsEndpoint(
            self,
            "target-endpoint",
            endpoint_id=naming.dms_target_endpoint_id(stack),
            endpoint_type="target",
            engine_name="aurora-postgresql",
            database_name=props.target_database_name,
            # Aurora enforces TLS (rds.force_ssl); `require` encrypts without a
            # client-side CA bundle, which would have to be imported like the source's.
            ssl_mode="require",
            secrets_manager_arn=props.target_secret_arn,
            secrets_manager_access_role_arn=self.secrets_access_role.arn,
            kms_key_arn=self.key.arn,
            tags={
                "Name": f"{stack}-aurora-target",
                "TargetHost": props.target_endpoint_address,
            },
        )

    def _build_task(self) -> None:
        """The full-load-and-CDC task, created stopped."""
        rep = self.props.replication
        self.task = DmsReplicationTask(
            self,
            "task",
            replication_task_id=naming.dms_task_identifier(self.props.name),
            migration_type="full-load-and-cdc",
            replication_instance_arn=self.replication_instance.replication_instance_arn,
            source_endpoint_arn=self.source_endpoint.endpoint_arn,
            target_endpoint_arn=self.target_endpoint.endpoint_arn,
            table_mappings=table_mappings_json(rep),
            replication_task_settings=task_settings_json(rep),
            # Starting the task is an operator step in the runbook, after preflight.
            start_replication_task=False,
            depends_on=self._service_roles,
        )

    def _build_events(self) -> None:
        """The encrypted event topic and the task's and instance's event subscriptions."""
        props = self.props
        stack = props.name
        self.event_topic = SnsTopic(
            self,
            "event-topic",
            name=naming.dms_event_topic_name(stack),
            kms_master_key_id=self.key.arn,
        )
        SnsTopicPolicy(
            self,
            "event-topic-policy",
            arn=self.event_topic.arn,
            policy=policy_document(
                statement(
                    "DmsPublishesEvents",
                    ["sns:Publish"],
                    self.event_topic.arn,
                    principal={"Service": "dms.amazonaws.com"},
                    condition={"StringEquals": {"aws:SourceAccount": props.account_id}},
                )
            ),
        )
        events = props.replication.event_subscription
        self.event_subscriptions = [
            DmsEventSubscription(
                self,
                "task-events",
                name=f"{stack}-dms-task-events",
                enabled=True,
                source_type="replication-task",
                source_ids=[self.task.replication_task_id],
                event_categories=events.task_categories,
                sns_topic_arn=self.event_topic.arn,
            ),
            DmsEventSubscription(
                self,
                "instance-events",
                name=f"{stack}-dms-instance-events",
                enabled=True,
                source_type="replication-instance",
                source_ids=[self.replication_instance.replication_instance_id],
                event_categories=events.instance_categories,
                sns_topic_arn=self.event_topic.arn,
            ),
        ]
