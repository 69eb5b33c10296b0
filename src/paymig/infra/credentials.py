"""Database credentials: one Secrets Manager secret per client login per server.

PCI DSS 4.0 7.2 and 8.2.2: no shared or privileged logins. Each client (the payment
API, DMS, the validator, the rotation function's admin) has its own login on each
server it uses, and each login its own secret, encrypted with the credentials CMK:

The logins themselves (names, privileges) are :mod:`paymig.logins`.

* on Aurora the database setup check creates the logins and stores their secrets
  (:mod:`paymig.lambdas.db_setup`); the master secret is RDS's and no client uses it;
* on the on-prem source only the DBA can create logins, so the secrets are created
  empty and the DBA stores their values (the runbook gives the SQL and the command).

Terraform never sets a secret value, so no password is in the plan or the state.

Every login rotates every ``database.secret_rotation_days`` (30) with the alternating
users scheme (:mod:`paymig.lambdas.rotation`): the rotation function changes the
password of the *other* user of the login's pair, so a client holding the current
credentials keeps working until it reads the secret again. It acts through an admin
login per server: the RDS master secret on Aurora (RDS rotates that one itself), the
DBA's ``rotation`` login on the source (rotated single-user, by the same function).
Rotation is never immediate: a secret whose value the DBA has not stored yet is not
touched until its first scheduled rotation.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import AssetType, TerraformAsset
from cdktf_cdktf_provider_aws.lambda_permission import LambdaPermission
from cdktf_cdktf_provider_aws.secretsmanager_secret import SecretsmanagerSecret
from cdktf_cdktf_provider_aws.secretsmanager_secret_rotation import (
    SecretsmanagerSecretRotation,
    SecretsmanagerSecretRotationRotationRules,
)
from constructs import Construct

from paymig import naming
from paymig.infra.endpoints import ServiceEndpoints
from paymig.infra.functions import DatabaseServer, FunctionProps, LoginSecret, VpcFunction
from paymig.infra.iam import statement
from paymig.infra.kms import KEY_USAGE_ACTIONS, CustomerManagedKey, KeyProps
from paymig.infra.lambda_package import build_package
from paymig.infra.trust import TrustStore
from paymig.lambdas.rotation import (
    ROTATION_DISTRIBUTIONS,
    ROTATION_HANDLER,
    ROTATION_MODULES,
)
from paymig.logins import SERVERS, Login, logins_for

PYTHON_RUNTIME = "python3.11"


def stored_by(login: Login) -> str:
    """Who writes a login secret's value."""
    return "the database setup check" if login.server == "aurora" else "the DBA"


@dataclass(frozen=True)
class CredentialsProps:
    """Inputs of the credentials construct, and of its rotation function."""

    name: str
    region: str
    account_id: str
    rotation_days: int
    log_retention_days: int
    vpc_id: str
    app_subnet_ids: list[str]
    endpoints: ServiceEndpoints
    source: DatabaseServer
    aurora: DatabaseServer
    trust: TrustStore
    #: The Aurora admin login: the RDS-managed master secret.
    aurora_admin: LoginSecret


class Credentials(Construct):
    """The credentials CMK and one secret per login.

    Use :meth:`login` to get a login's :class:`~paymig.infra.functions.LoginSecret`.
    """

    def __init__(self, scope: Construct, construct_id: str, props: CredentialsProps) -> None:
        """Create the key and every secret (empty)."""
        super().__init__(scope, construct_id)
        self.props = props
        secrets_via = f"secretsmanager.{props.region}.amazonaws.com"
        self.key = CustomerManagedKey(
            self,
            "key",
            KeyProps(
                alias=f"{props.name}/credentials",
                description=f"{props.name}: encrypts every database login secret",
                account_id=props.account_id,
                region=props.region,
                usage_statements=[
                    statement(
                        "AccountUsesKeyThroughSecretsManager",
                        KEY_USAGE_ACTIONS,
                        "*",
                        principal={"AWS": f"arn:aws:iam::{props.account_id}:root"},
                        condition={
                            "StringEquals": {
                                "kms:ViaService": secrets_via,
                                "kms:CallerAccount": props.account_id,
                            }
                        },
                    )
                ],
            ),
        )
        self.secrets: dict[tuple[str, str], SecretsmanagerSecret] = {
            (login.server, login.client): SecretsmanagerSecret(
                self,
                f"{login.server}-{login.client}",
                name=naming.login_secret_name(props.name, login.server, login.client),
                description=(
                    f"{login.server} login {login.base} ({login.purpose}). JSON: engine, host, "
                    f"port, dbname, username, password, masterarn, ca; stored by "
                    f"{stored_by(login)}, rotated every {props.rotation_days} days. "
                    "Terraform never sets it."
                ),
                kms_key_id=self.key.arn,
                recovery_window_in_days=30,
            )
            for server in SERVERS
            for login in logins_for(server)
        }

        self._build_rotation()

    def _build_rotation(self) -> None:
        """The rotation function and, per secret, its schedule."""
        self._build_rotation_function()
        self._build_rotation_schedules()

    def _build_rotation_function(self) -> None:
        """The rotation function, from its package, acting on each server as its admin."""
        props = self.props
        package = build_package("rotation", ROTATION_MODULES, ROTATION_DISTRIBUTIONS)
        asset = TerraformAsset(
            self, "rotation-package", path=str(package.path), type=AssetType.FILE
        )
        secret_arns = [str(s.arn) for s in self.secrets.values()]
        self.rotation = VpcFunction(
            self,
            "rotation",
            FunctionProps(
                function_name=f"{props.name}-rotation",
                description="paymig: rotates every database login (alternating users)",
                region=props.region,
                account_id=props.account_id,
                key=self.key,
                log_retention_days=props.log_retention_days,
                vpc_id=props.vpc_id,
                subnet_ids=props.app_subnet_ids,
                endpoints=props.endpoints,
                apis=("secretsmanager", "ssm"),
                statements=[
                    statement(
                        "RotateLoginSecrets",
                        [
                            "secretsmanager:DescribeSecret",
                            "secretsmanager:GetSecretValue",
                            "secretsmanager:PutSecretValue",
                            "secretsmanager:UpdateSecretVersionStage",
                        ],
                        secret_arns,
                    ),
                    # GetRandomPassword has no resource (Secrets Manager API reference).
                    statement("NewPasswords", ["secretsmanager:GetRandomPassword"], "*"),
                    statement(
                        "LoginSecretsKeyThroughSecretsManager",
                        ["kms:Decrypt", "kms:GenerateDataKey"],
                        [self.key.arn],
                        condition={
                            "StringEquals": {
                                "kms:ViaService": f"secretsmanager.{props.region}.amazonaws.com"
                            }
                        },
                    ),
                ],
                code={
                    "runtime": PYTHON_RUNTIME,
                    "handler": ROTATION_HANDLER,
                    "filename": asset.path,
                    "source_code_hash": package.sha256_base64,
                },
                memory_mb=256,
                timeout_seconds=120,
                reserved_concurrency=2,
            ),
        )
        # It acts on each server as that server's admin login.
        for db_name, db, admin in (
            ("source", props.source, self.login("source", "rotation")),
            ("aurora", props.aurora, props.aurora_admin),
        ):
            self.rotation.connect_database(db_name, db, admin, props.trust.anchor(db.server))

    def _build_rotation_schedules(self) -> None:
        """Per secret: Secrets Manager allowed to invoke the function, and the schedule."""
        props = self.props
        self.rotations: list[SecretsmanagerSecretRotation] = []
        for (server, client), secret in self.secrets.items():
            permission = LambdaPermission(
                self,
                f"allow-rotation-{server}-{client}",
                statement_id=f"AllowSecretsManager-{server}-{client}",
                action="lambda:InvokeFunction",
                function_name=self.rotation.function.function_name,
                principal="secretsmanager.amazonaws.com",
                source_arn=secret.arn,
            )
            self.rotations.append(
                SecretsmanagerSecretRotation(
                    self,
                    f"rotate-{server}-{client}",
                    secret_id=secret.id,
                    rotation_lambda_arn=self.rotation.function.arn,
                    rotation_rules=SecretsmanagerSecretRotationRotationRules(
                        automatically_after_days=props.rotation_days
                    ),
                    # Never rotate a secret the DBA has not stored yet.
                    rotate_immediately=False,
                    depends_on=[permission],
                )
            )

    def login(self, server: str, client: str) -> LoginSecret:
        """The secret of ``client``'s login on ``server``."""
        secret = self.secrets[(server, client)]
        return LoginSecret(arn=str(secret.arn), key_arn=self.key.arn, resource=secret)
