"""Database credentials: one Secrets Manager secret per client login per server.

PCI DSS 4.0 7.2 and 8.2.2: no shared or privileged logins. Each client (the payment
API, DMS, the validator, the rotation function's admin) has its own login on each
server it uses, and each login its own secret, encrypted with the credentials CMK:

* on Aurora the database setup check creates the logins and stores their secrets
  (:mod:`paymig.lambdas.db_setup`); the master secret is RDS's and no client uses it;
* on the on-prem source only the DBA can create logins, so the secrets are created
  empty and the DBA stores their values (the runbook gives the SQL and the command).

Terraform never sets a secret value, so no password is in the plan or the state.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws.secretsmanager_secret import SecretsmanagerSecret
from constructs import Construct

from paymig import naming
from paymig.infra.functions import LoginSecret
from paymig.infra.iam import statement
from paymig.infra.kms import KEY_USAGE_ACTIONS, CustomerManagedKey, KeyProps


@dataclass(frozen=True)
class Login:
    """One client's login on one server, and who stores its secret."""

    server: str  # "source" or "aurora"
    client: str
    purpose: str

    @property
    def stored_by(self) -> str:
        """Who writes the secret's value."""
        return "the database setup check" if self.server == "aurora" else "the DBA"


#: Every login of the stack (names of the database roles: :mod:`paymig.logins`).
LOGINS: tuple[Login, ...] = (
    Login("source", "api", "the payment API until cutover"),
    Login("source", "dms", "DMS reads the source (REPLICATION and SELECT)"),
    Login("source", "validator", "the validator (SELECT only)"),
    Login("source", "admin", "the rotation function changes the other source logins"),
    Login("source", "dms-apply", "DMS writes the source after cutover (the way back)"),
    Login("aurora", "api", "the payment API after cutover"),
    Login("aurora", "dms", "DMS writes the target (full load and CDC apply)"),
    Login("aurora", "validator", "the validator (SELECT only)"),
    Login("aurora", "dms-reverse", "DMS reads Aurora after cutover (the way back)"),
)


@dataclass(frozen=True)
class CredentialsProps:
    """Inputs of the credentials construct."""

    name: str
    region: str
    account_id: str


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
        self.secrets = {
            (login.server, login.client): SecretsmanagerSecret(
                self,
                f"{login.server}-{login.client}",
                name=naming.login_secret_name(props.name, login.server, login.client),
                description=(
                    f"{login.server} login of {login.purpose}. JSON: engine, host, port, "
                    f"dbname, username, password, masterarn, ca; stored by "
                    f"{login.stored_by}, rotated every 30 days. Terraform never sets it."
                ),
                kms_key_id=self.key.arn,
                recovery_window_in_days=30,
            )
            for login in LOGINS
        }

    def login(self, server: str, client: str) -> LoginSecret:
        """The secret of ``client``'s login on ``server``."""
        secret = self.secrets[(server, client)]
        return LoginSecret(arn=str(secret.arn), key_arn=self.key.arn, resource=secret)
