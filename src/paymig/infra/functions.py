"""A Lambda function in the VPC, with everything a use of it needs written by one call.

:class:`VpcFunction` creates the function with its role, its CMK-encrypted log group
(admitted in the key policy by the same call), its security group and its dead-letter
queue, and opens the network path to every AWS API its code calls. Connecting it to a
database (:meth:`VpcFunction.connect_database`) writes, together: the security-group
rules on both sides (or the VPN route), IAM to read its login secret and the CA bundle,
and the ``PAYMIG_DB_<NAME>`` declaration (``verify-full``, the server's CA) the code
reads. :meth:`VpcFunction.check` makes a deployment check that depends on all of it.

No AWS managed policy is attached: ``AWSLambdaVPCAccessExecutionRole`` grants
``logs:*``-style writes on ``*``, which would make the scoped log statement pointless.
The role carries only what the Lambda service needs for ENIs, traces and the
function's own log group, plus what the caller grants.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionDeadLetterConfig,
    LambdaFunctionEnvironment,
    LambdaFunctionLoggingConfig,
    LambdaFunctionTracingConfig,
    LambdaFunctionVpcConfig,
)
from cdktf_cdktf_provider_aws.lambda_invocation import LambdaInvocation
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from constructs import Construct

from paymig.infra.connections import VpcClient
from paymig.infra.endpoints import ServiceEndpoints
from paymig.infra.iam import Statement, assume_role_policy, policy_document, statement
from paymig.infra.kms import CustomerManagedKey, log_group_arn
from paymig.infra.trust import TrustAnchor

#: The Lambda service manages a VPC function's network interfaces with these; none
#: of them has resource-level permissions (Lambda Developer Guide, "Execution role and
#: user permissions" for VPC functions).
ENI_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]
#: Active tracing sends segments with these (no resource-level permissions).
XRAY_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]


class DatabaseServer(Protocol):
    """A database a VPC client can be connected to (Aurora, or the on-prem source)."""

    @property
    def server(self) -> str:
        """``source`` or ``aurora``."""

    @property
    def host(self) -> str:
        """The name the server's certificate carries (what verify-full checks)."""

    @property
    def port(self) -> int:
        """The PostgreSQL port."""

    @property
    def dbname(self) -> str:
        """The database the payment tables are in."""

    def open_path(self, client: VpcClient) -> list[ITerraformDependable]:
        """Write both halves of the client's path to the server; return its resources."""


@dataclass(frozen=True)
class LoginSecret:
    """A login's Secrets Manager secret and the key it is encrypted with."""

    arn: str
    key_arn: str
    resource: ITerraformDependable | None = None


@dataclass(frozen=True)
class FunctionProps:
    """Inputs of a :class:`VpcFunction`."""

    function_name: str
    description: str
    region: str
    account_id: str
    key: CustomerManagedKey
    log_retention_days: int
    vpc_id: str
    subnet_ids: list[str]
    endpoints: ServiceEndpoints
    #: Endpoint service names of the APIs the code calls (see ``paymig.infra.endpoints``).
    apis: tuple[str, ...]
    #: The code's own IAM statements (what it calls, on which resources).
    statements: list[Statement]
    #: Code: ``{"filename": ..., "source_code_hash": ..., "handler": ..., "runtime": ...}``
    #: or ``{"package_type": "Image", "image_uri": ...}``.
    code: Mapping[str, Any]
    environment: Mapping[str, str] = field(default_factory=dict)
    memory_mb: int = 256
    timeout_seconds: int = 60
    reserved_concurrency: int = 2
    publish: bool = False


class VpcFunction(Construct):
    """A Lambda function in the app subnets and everything it needs.

    Attributes: :attr:`function`, :attr:`role`, :attr:`log_group`,
    :attr:`security_group`, :attr:`dead_letter_queue`, :attr:`client` (its network
    side), :attr:`reads` (every resource its code needs at run time).
    """

    def __init__(self, scope: Construct, construct_id: str, props: FunctionProps) -> None:
        """Create the function and open the paths to the APIs it calls."""
        super().__init__(scope, construct_id)
        self.props = props
        self._statements: list[Statement] = list(props.statements)
        self._environment: dict[str, str] = dict(props.environment)
        self.reads: list[ITerraformDependable] = []
        self._build_dead_letter_queue()
        self.log_group = props.key.encrypted_log_group(
            self,
            "log-group",
            name=f"/aws/lambda/{props.function_name}",
            retention_days=props.log_retention_days,
        )
        self._build_role()
        self._build_security_group()
        self._build_function()
        # Active tracing: the X-Ray segments leave through the function's own network.
        self.call_apis("xray", *props.apis)

    # ---------------------------------------------------------------- builders

    def _build_dead_letter_queue(self) -> None:
        self.dead_letter_queue = SqsQueue(
            self,
            "dlq",
            name=f"{self.props.function_name}-dlq",
            kms_master_key_id=self.props.key.arn,
            message_retention_seconds=1_209_600,
        )

    def _service_statements(self) -> list[Statement]:
        """What the Lambda service itself needs with this role."""
        p = self.props
        log_arn = log_group_arn(p.region, p.account_id, f"/aws/lambda/{p.function_name}")
        return [
            statement("ManageVpcNetworkInterfaces", ENI_ACTIONS, "*"),
            statement("WriteTraces", XRAY_ACTIONS, "*"),
            statement(
                "WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_arn}:*"]
            ),
            statement("DeadLetters", ["sqs:SendMessage"], [str(self.dead_letter_queue.arn)]),
            statement(
                "KeyThroughLambdaAndSqs",
                ["kms:Decrypt", "kms:GenerateDataKey"],
                [p.key.arn],
                condition={
                    "StringEquals": {
                        "kms:ViaService": [
                            f"lambda.{p.region}.amazonaws.com",
                            f"sqs.{p.region}.amazonaws.com",
                        ]
                    }
                },
            ),
        ]

    def _build_role(self) -> None:
        self.role = IamRole(
            self,
            "role",
            name=self.props.function_name,
            assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
        )
        self.role_policy = IamRolePolicy(
            self, "role-policy", role=self.role.id, policy=self._policy()
        )

    def _policy(self) -> str:
        return policy_document(*self._service_statements(), *self._statements)

    def _build_security_group(self) -> None:
        self.security_group = SecurityGroup(
            self,
            "sg",
            name=f"{self.props.function_name}-lambda",
            description=f"{self.props.description}: egress only to what it calls",
            vpc_id=self.props.vpc_id,
        )
        self.client = VpcClient(self, self.props.function_name, self.security_group)

    def _build_function(self) -> None:
        p = self.props
        self.function = LambdaFunction(
            self,
            "function",
            function_name=p.function_name,
            description=p.description,
            role=self.role.arn,
            memory_size=p.memory_mb,
            timeout=p.timeout_seconds,
            reserved_concurrent_executions=p.reserved_concurrency,
            publish=p.publish,
            kms_key_arn=p.key.arn,
            tracing_config=LambdaFunctionTracingConfig(mode="Active"),
            vpc_config=LambdaFunctionVpcConfig(
                subnet_ids=p.subnet_ids, security_group_ids=[self.security_group.id]
            ),
            dead_letter_config=LambdaFunctionDeadLetterConfig(
                target_arn=self.dead_letter_queue.arn
            ),
            environment=LambdaFunctionEnvironment(variables=dict(self._environment)),
            logging_config=LambdaFunctionLoggingConfig(
                log_format="JSON", log_group=self.log_group.name
            ),
            depends_on=[self.log_group, self.role_policy],
            **p.code,
        )

    # ---------------------------------------------------------------- uses

    def grant(self, *statements: Statement) -> None:
        """Add IAM statements for what the code calls."""
        self._statements.extend(statements)
        self.role_policy.policy = self._policy()

    def set_environment(self, name: str, value: str) -> None:
        """Add (or replace) one environment variable."""
        self._environment[name] = value
        self.function.put_environment(variables=dict(self._environment))

    def call_apis(self, *services: str) -> None:
        """Open the network path to more AWS APIs the code calls."""
        if services:
            self.reads.extend(self.props.endpoints.admit(self.client, services))

    def read_secret(self, sid: str, secret: LoginSecret) -> None:
        """Let the code read one secret (and decrypt it only through Secrets Manager)."""
        self.grant(
            statement(sid, ["secretsmanager:GetSecretValue"], [secret.arn]),
            statement(
                f"{sid}Key",
                ["kms:Decrypt"],
                [secret.key_arn],
                condition={
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{self.props.region}.amazonaws.com"
                    }
                },
            ),
        )
        self.call_apis("secretsmanager")
        if secret.resource is not None:
            self.reads.append(secret.resource)

    def connect_database(
        self, name: str, server: DatabaseServer, secret: LoginSecret, anchor: TrustAnchor
    ) -> None:
        """Connect the function to a database: path, login, CA and declaration at once."""
        if anchor.server != server.server:
            raise ValueError(f"{name}: the {anchor.server} CA cannot verify {server.server}")
        self.reads.extend(server.open_path(self.client))
        self.read_secret(f"Read{name.title()}Login", secret)
        p = self.props
        parameter_arn = f"arn:aws:ssm:{p.region}:{p.account_id}:parameter{anchor.parameter_name}"
        self.grant(statement(f"Read{name.title()}Ca", ["ssm:GetParameter"], [parameter_arn]))
        self.call_apis("ssm")
        self.reads.append(anchor.parameter)
        declaration = {
            "server": server.server,
            "host": server.host,
            "port": server.port,
            "dbname": server.dbname,
            "secret_arn": secret.arn,
            "sslmode": "verify-full",
            "ca_parameter": anchor.parameter_name,
        }
        self.set_environment(f"PAYMIG_DB_{name.upper()}", json.dumps(declaration))

    def check(
        self,
        construct_id: str,
        payload: Mapping[str, Any],
        triggers: Mapping[str, str],
        *,
        after: Sequence[ITerraformDependable] = (),
    ) -> LambdaInvocation:
        """A deployment check: invoke the function during apply, after all it reads.

        ``triggers`` are what the check checks (never the code hash): re-applying an
        older commit with the same settings does not re-run it.
        """
        return LambdaInvocation(
            self,
            construct_id,
            function_name=self.function.function_name,
            input=json.dumps(dict(payload)),
            triggers=dict(triggers),
            depends_on=[*dict.fromkeys([*self.reads, *after])],
        )
