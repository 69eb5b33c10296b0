"""Customer-managed KMS keys with explicit key policies.

Every key has rotation on and a policy that gives the account root administration
only; usage is granted statement by statement to named services or roles. Inside a key
policy ``"Resource": "*"`` means "this key", which is why it appears here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from constructs import Construct

from paymig.infra.iam import Statement, policy_document, statement

#: What the account root may do: administer, never use, the key.
KEY_ADMIN_ACTIONS = [
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
]

#: Usage that a service needs to encrypt and decrypt with the key.
KEY_USAGE_ACTIONS = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
]


@dataclass(frozen=True)
class KeyProps:
    """Inputs of a :class:`CustomerManagedKey`."""

    alias: str
    description: str
    account_id: str
    usage_statements: list[Statement] = field(default_factory=list)
    deletion_window_days: int = 30


class CustomerManagedKey(Construct):
    """A symmetric CMK with rotation, an alias and an explicit key policy."""

    def __init__(self, scope: Construct, construct_id: str, props: KeyProps) -> None:
        """Create the key and its alias."""
        super().__init__(scope, construct_id)
        admin = statement(
            "AccountRootAdministersKey",
            KEY_ADMIN_ACTIONS,
            "*",
            principal={"AWS": f"arn:aws:iam::{props.account_id}:root"},
        )
        self.key = KmsKey(
            self,
            "key",
            description=props.description,
            enable_key_rotation=True,
            deletion_window_in_days=props.deletion_window_days,
            policy=policy_document(admin, *props.usage_statements),
        )
        self.alias = KmsAlias(
            self, "alias", name=f"alias/{props.alias}", target_key_id=self.key.key_id
        )

    @property
    def arn(self) -> str:
        """ARN of the key."""
        return str(self.key.arn)


def service_usage(
    sid: str, service: str, *, condition: dict[str, object] | None = None
) -> Statement:
    """A key-policy statement letting an AWS service principal use the key."""
    return statement(
        sid, KEY_USAGE_ACTIONS, "*", principal={"Service": service}, condition=condition
    )
