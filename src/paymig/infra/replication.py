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
to exactly their secrets (:mod:`paymig.infra.credentials`); nothing in this module holds
a username or a password. Every endpoint verifies its server (``verify-full``) with the
server's CA bundle from :mod:`paymig.infra.trust`.

Replication slots (DMS User Guide, PostgreSQL source, ``SlotName``: "the name of a
previously created logical replication slot ... DMS verifies that the specified logical
replication slot exists before starting the CDC load task"): the forward
``full-load-and-cdc`` task names no slot, so DMS creates its own (``test-decoding``
plugin, which ships with PostgreSQL) when the task starts, before the full load, and CDC
starts from there. The reverse task (Aurora to on-prem, CDC only, for the way back
after cutover) names the slot ``paymig cutover`` creates at the cutover point and is
started with that slot's LSN as ``CdcStartPosition`` (a native CDC start point).

Network: the replication instance reads its endpoints' secrets itself, so it is a
client of the Secrets Manager endpoint, and connects to both databases; both are
written by :meth:`ReplicationTier._build_network` from both sides.

First apply in a fresh account: DMS looks ``dms-vpc-role`` up by name, and IAM
propagation makes a subnet group created right after the role fail with
AccessDeniedFault (terraform-provider-aws issues #11025, #32824). Everything DMS creates
waits for the role's policy attachment and then ``iam_propagation_seconds`` more
(``terraform_data`` with a local sleep; it runs only when the roles are created).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import DataResource, ITerraformDependable, LocalExecProvisioner
from cdktf_cdktf_provider_aws.data_aws_iam_role import DataAwsIamRole
from cdktf_cdktf_provider_aws.dms_endpoint import DmsEndpoint, DmsEndpointPostgresSettings
from cdktf_cdktf_provider_aws.dms_event_subscription import DmsEventSubscription
from cdktf_cdktf_provider_aws.dms_replication_instance import DmsReplicationInstance
from cdktf_cdktf_provider_aws.dms_replication_subnet_group import DmsReplicationSubnetGroup
from cdktf_cdktf_provider_aws.dms_replication_task import DmsReplicationTask
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.sns_topic import SnsTopic
from cdktf_cdktf_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktf_cdktf_provider_aws.sns_topic_subscription import SnsTopicSubscription
from constructs import Construct

from paymig import naming
from paymig.config import ReplicationConfig
from paymig.infra.connections import VpcClient
from paymig.infra.credentials import Credentials
from paymig.infra.dms_settings import (
    reverse_task_settings_json,
    table_mappings_json,
    task_settings_json,
)
from paymig.infra.endpoints import ServiceEndpoints
from paymig.infra.functions import DatabaseServer, LoginSecret
from paymig.infra.iam import assume_role_policy, policy_document, statement
from paymig.infra.kms import KEY_USAGE_ACTIONS, CustomerManagedKey, KeyProps
from paymig.infra.trust import TrustStore
from paymig.logins import HEARTBEAT_SCHEMA

#: Account-wide roles DMS itself assumes; their names are fixed by AWS.
DMS_VPC_ROLE = "dms-vpc-role"
DMS_LOGS_ROLE = "dms-cloudwatch-logs-role"
_MANAGED_POLICIES = {
    DMS_VPC_ROLE: "arn:aws:iam::aws:policy/service-role/AmazonDMSVPCManagementRole",
    DMS_LOGS_ROLE: "arn:aws:iam::aws:policy/service-role/AmazonDMSCloudWatchLogsRole",
}
#: The logical decoding plugin DMS uses (botocore's DMS model: PluginNameValue is
#: ``no-preference | test-decoding | pglogical``; test-decoding needs no extension).
PLUGIN = "test-decoding"


@dataclass(frozen=True)
class ReplicationProps:
    """Inputs of the replication tier."""

    name: str
    region: str
    account_id: str
    replication: ReplicationConfig
    vpc_id: str
    app_subnet_ids: list[str]
    endpoints: ServiceEndpoints
    source: DatabaseServer
    aurora: DatabaseServer
    credentials: Credentials
    trust: TrustStore
    notification_emails: tuple[str, ...] = ()
    notification_https_endpoints: tuple[str, ...] = ()


class ReplicationTier(Construct):
    """DMS replication instance, endpoints, tasks and events, with their IAM and KMS.

    Attributes: :attr:`security_group`, :attr:`replication_instance`, :attr:`task`
    (forward, full load and CDC), :attr:`reverse_task` (Aurora to on-prem, CDC only),
    :attr:`source_endpoint`, :attr:`target_endpoint`, :attr:`event_topic`, :attr:`key`,
    :attr:`client` (its network side).
    """

    def __init__(self, scope: Construct, construct_id: str, props: ReplicationProps) -> None:
        """Create the tier; the tasks are created stopped (the runbook starts them)."""
        super().__init__(scope, construct_id)
        self.props = props
        self._build_service_roles()
        self._build_secrets_access_role()
        self._build_key()
        self._build_network()
        self._build_replication_instance()
        self._build_forward_endpoints()
        self._build_reverse_endpoints()
        self._build_tasks()
        self._build_events()

    # ---------------------------------------------------------------- shared values

    @property
    def _secrets_via(self) -> str:
        """The Secrets Manager endpoint through which the endpoint secrets are read."""
        return f"secretsmanager.{self.props.region}.amazonaws.com"

    def _login(self, server: str, client: str) -> LoginSecret:
        return self.props.credentials.login(server, client)

    # ---------------------------------------------------------------- builders

    def _build_service_roles(self) -> None:
        """The two account-wide DMS service roles, created here (and waited for) or looked up.

        DMS looks these two roles up by name; they are account-wide, so exactly one
        environment per account creates them and the others reference them (the lookup
        fails the plan with a clear error when they do not exist yet).
        """
        rep = self.props.replication
        self.service_role_attachments: list[IamRolePolicyAttachment] = []
        self.service_role_lookups: list[DataAwsIamRole] = []
        self.propagation_wait: DataResource | None = None
        if not rep.create_service_roles:
            self.service_role_lookups = [
                DataAwsIamRole(self, role_name, name=role_name) for role_name in _MANAGED_POLICIES
            ]
            self._service_roles: list[ITerraformDependable] = list(self.service_role_lookups)
            return
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
        self.propagation_wait = DataResource(
            self,
            "service-roles-propagated",
            triggers_replace={"attachments": [a.id for a in self.service_role_attachments]},
            provisioners=[
                LocalExecProvisioner(
                    type="local-exec", command=f"sleep {rep.iam_propagation_seconds}"
                )
            ],
            depends_on=self.service_role_attachments,
        )
        self._service_roles = [self.propagation_wait]

    def _build_secrets_access_role(self) -> None:
        """The role the endpoints assume to read their secrets, and exactly those."""
        props = self.props
        self.secrets_access_role = IamRole(
            self,
            "secrets-access-role",
            name=f"{props.name}-dms-secrets-access",
            description="DMS reads its endpoints' login secrets",
            # Secrets access roles are assumed by the regional DMS principal.
            assume_role_policy=assume_role_policy(
                f"dms.{props.region}.amazonaws.com",
                condition={"StringEquals": {"aws:SourceAccount": props.account_id}},
            ),
        )
        logins = [
            self._login("source", "dms"),
            self._login("aurora", "dms_target"),
            self._login("aurora", "dms_reverse"),
            self._login("source", "dms_apply"),
        ]
        IamRolePolicy(
            self,
            "secrets-access-policy",
            role=self.secrets_access_role.id,
            policy=policy_document(
                statement(
                    "ReadEndpointSecrets",
                    ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    [login.arn for login in logins],
                ),
                statement(
                    "DecryptEndpointSecrets",
                    ["kms:Decrypt"],
                    # Every login secret is encrypted with the credentials key.
                    [self.props.credentials.key.arn],
                    condition={"StringEquals": {"kms:ViaService": self._secrets_via}},
                ),
            ),
        )

    def _build_key(self) -> None:
        """The CMK of DMS storage, the endpoints and the event topic."""
        props = self.props
        stack = props.name
        self.key = CustomerManagedKey(
            self,
            "key",
            KeyProps(
                alias=f"{stack}/dms",
                description=f"{stack}: DMS storage, endpoints, event topic",
                account_id=props.account_id,
                region=props.region,
                usage_statements=[
                    # DMS encrypts storage and endpoints through grants it creates for
                    # the caller, only through DMS.
                    statement(
                        "AccountUsesKeyThroughDms",
                        [*KEY_USAGE_ACTIONS, "kms:CreateGrant"],
                        "*",
                        principal={"AWS": f"arn:aws:iam::{props.account_id}:root"},
                        condition={
                            "StringEquals": {
                                "kms:CallerAccount": props.account_id,
                                "kms:ViaService": f"dms.{props.region}.amazonaws.com",
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
                    # People's subscriptions read the topic through SNS.
                    statement(
                        "AccountUsesKeyThroughSns",
                        KEY_USAGE_ACTIONS,
                        "*",
                        principal={"AWS": f"arn:aws:iam::{props.account_id}:root"},
                        condition={
                            "StringEquals": {
                                "kms:CallerAccount": props.account_id,
                                "kms:ViaService": f"sns.{props.region}.amazonaws.com",
                            }
                        },
                    ),
                ],
            ),
        )

    def _build_network(self) -> None:
        """The subnet group, the security group, and the paths to its secrets and databases."""
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
            description="DMS replication instance: egress to its databases and secrets only",
            vpc_id=props.vpc_id,
            tags={"Name": f"{stack}-dms"},
        )
        self.client = VpcClient(self, "dms", self.security_group)
        self.paths: list[ITerraformDependable] = [
            *props.endpoints.admit(self.client, ["secretsmanager"]),
            *props.source.open_path(self.client),
            *props.aurora.open_path(self.client),
        ]

    def _build_replication_instance(self) -> None:
        """The Multi-AZ replication instance in the app subnets."""
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
            depends_on=[*self._service_roles, *self.paths],
        )

    def _endpoint(  # noqa: PLR0917 - one endpoint's six facts, always in this order
        self,
        construct_id: str,
        endpoint_id: str,
        endpoint_type: str,
        server: DatabaseServer,
        login: LoginSecret,
        settings: DmsEndpointPostgresSettings | None,
    ) -> DmsEndpoint:
        """One endpoint: its server's login secret and verify-full with the server's CA."""
        engine = "aurora-postgresql" if server.server == "aurora" else "postgres"
        name = "aurora" if server.server == "aurora" else "onprem"
        certificate = self.props.trust.anchor(server.server).dms_certificate
        if certificate is None:  # pragma: no cover - the trust store has them while DMS runs
            raise ValueError("the trust store has no DMS certificates")
        return DmsEndpoint(
            self,
            construct_id,
            endpoint_id=endpoint_id,
            endpoint_type=endpoint_type,
            engine_name=engine,
            database_name=server.dbname,
            ssl_mode="verify-full",
            certificate_arn=certificate.certificate_arn,
            secrets_manager_arn=login.arn,
            secrets_manager_access_role_arn=self.secrets_access_role.arn,
            kms_key_arn=self.key.arn,
            postgres_settings=settings,
            tags={"Name": f"{self.props.name}-{construct_id}", "Server": name},
        )

    def _source_settings(self, slot_name: str | None) -> DmsEndpointPostgresSettings:
        rep = self.props.replication
        return DmsEndpointPostgresSettings(
            heartbeat_enable=True,
            heartbeat_frequency=rep.heartbeat_frequency_minutes,
            # DMS's heartbeat table in its own schema, outside the replicated `public.%`.
            heartbeat_schema=HEARTBEAT_SCHEMA,
            plugin_name=PLUGIN,
            slot_name=slot_name,
            # DDL capture installs event triggers (superuser) on the source; schema
            # changes during the migration go through change control instead.
            capture_ddls=False,
            # In limited LOB mode a LOB larger than lob_max_size_kb stops the task
            # instead of being silently truncated.
            fail_tasks_on_lob_truncation=True,
            map_boolean_as_boolean=True,
        )

    def _build_forward_endpoints(self) -> None:
        """On-prem source (DMS's own slot) and Aurora target."""
        props = self.props
        stack = props.name
        self.source_endpoint = self._endpoint(
            "source-endpoint",
            naming.dms_source_endpoint_id(stack),
            "source",
            props.source,
            self._login("source", "dms"),
            self._source_settings(slot_name=None),
        )
        # `paymig fallback` names cutover.forward_slot_name here at run time (ModifyEndpoint)
        # before it restarts the task from that slot; an apply must not take it away.
        self.source_endpoint.add_override(
            "lifecycle.ignore_changes", ["postgres_settings[0].slot_name"]
        )
        self.target_endpoint = self._endpoint(
            "target-endpoint",
            naming.dms_target_endpoint_id(stack),
            "target",
            props.aurora,
            self._login("aurora", "dms_target"),
            None,
        )

    def _build_reverse_endpoints(self) -> None:
        """Aurora as the source of the way back (the cutover's slot), on-prem as target."""
        props = self.props
        stack = props.name
        self.reverse_source_endpoint = self._endpoint(
            "reverse-source-endpoint",
            f"{stack}-aurora-reverse-source",
            "source",
            props.aurora,
            self._login("aurora", "dms_reverse"),
            self._source_settings(slot_name=props.replication.reverse_slot_name),
        )
        self.reverse_target_endpoint = self._endpoint(
            "reverse-target-endpoint",
            f"{stack}-onprem-reverse-target",
            "target",
            props.source,
            self._login("source", "dms_apply"),
            None,
        )

    def _build_tasks(self) -> None:
        """The forward full-load-and-CDC task and the reverse CDC task, created stopped."""
        rep = self.props.replication
        common = {
            "replication_instance_arn": self.replication_instance.replication_instance_arn,
            "table_mappings": table_mappings_json(rep),
            # Starting a task is an operator step: the runbook after preflight for the
            # forward task, `paymig cutover` for the reverse one.
            "start_replication_task": False,
            "depends_on": self._service_roles,
        }
        self.task = DmsReplicationTask(
            self,
            "task",
            replication_task_id=naming.dms_task_identifier(self.props.name),
            migration_type="full-load-and-cdc",
            source_endpoint_arn=self.source_endpoint.endpoint_arn,
            target_endpoint_arn=self.target_endpoint.endpoint_arn,
            replication_task_settings=task_settings_json(rep),
            **common,  # type: ignore[arg-type]
        )
        self.reverse_task = DmsReplicationTask(
            self,
            "reverse-task",
            replication_task_id=naming.dms_reverse_task_identifier(self.props.name),
            migration_type="cdc",
            source_endpoint_arn=self.reverse_source_endpoint.endpoint_arn,
            target_endpoint_arn=self.reverse_target_endpoint.endpoint_arn,
            replication_task_settings=reverse_task_settings_json(rep),
            **common,  # type: ignore[arg-type]
        )

    def _build_events(self) -> None:
        """The encrypted event topic, its recipients, and the tasks' and instance's events."""
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
        for index, email in enumerate(props.notification_emails):
            SnsTopicSubscription(
                self,
                f"event-email-{index}",
                topic_arn=self.event_topic.arn,
                protocol="email",
                endpoint=email,
            )
        for index, url in enumerate(props.notification_https_endpoints):
            SnsTopicSubscription(
                self,
                f"event-https-{index}",
                topic_arn=self.event_topic.arn,
                protocol="https",
                endpoint=url,
            )
        events = props.replication.event_subscription
        self.event_subscriptions = [
            DmsEventSubscription(
                self,
                "task-events",
                name=f"{stack}-dms-task-events",
                enabled=True,
                source_type="replication-task",
                source_ids=[self.task.replication_task_id, self.reverse_task.replication_task_id],
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
