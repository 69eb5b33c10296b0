"""Customer-managed KMS keys with explicit key policies.

Every key has rotation on and a policy that gives the account root administration
only; usage is granted statement by statement to named services or roles. Inside a key
policy ``"Resource": "*"`` means "this key", which is why it appears here.

A log group encrypted with a key needs that key's policy to admit CloudWatch Logs for
that group's ARN (CloudWatch Logs User Guide, "Encrypt log data in CloudWatch Logs
using AWS KMS"), so the two are written by one call,
:meth:`CustomerManagedKey.encrypted_log_group`: a log group can never be encrypted with
a key whose policy does not name it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
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

#: What CloudWatch Logs needs on the key of an encrypted log group (AWS documented).
LOGS_KEY_ACTIONS = [
    "kms:Encrypt*",
    "kms:Decrypt*",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:Describe*",
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
    region: str
    usage_statements: list[Statement] = field(default_factory=list)
    deletion_window_days: int = 30


def log_group_arn(region: str, account_id: str, name: str) -> str:
    """ARN of a CloudWatch log group (without the `:*` stream suffix)."""
    return f"arn:aws:logs:{region}:{account_id}:log-group:{name}"


class CustomerManagedKey(Construct):
    """A symmetric CMK with rotation, an alias and an explicit key policy.

    The policy is rendered from the statements given at creation plus what later
    calls add (:meth:`add_statement`, :meth:`encrypted_log_group`), so it always lists
    every user of the key that this stack creates.
    """

    def __init__(self, scope: Construct, construct_id: str, props: KeyProps) -> None:
        """Create the key and its alias."""
        super().__init__(scope, construct_id)
        self.props = props
        admin = statement(
            "AccountRootAdministersKey",
            KEY_ADMIN_ACTIONS,
            "*",
            principal={"AWS": f"arn:aws:iam::{props.account_id}:root"},
        )
        self._statements: list[Statement] = [admin, *props.usage_statements]
        self._log_group_arns: list[str] = []
        self.key = KmsKey(
            self,
            "key",
            description=props.description,
            enable_key_rotation=True,
            deletion_window_in_days=props.deletion_window_days,
            policy=self._policy(),
        )
        self.alias = KmsAlias(
            self, "alias", name=f"alias/{props.alias}", target_key_id=self.key.key_id
        )

    @property
    def arn(self) -> str:
        """ARN of the key."""
        return str(self.key.arn)

    def add_statement(self, usage: Statement) -> None:
        """Add one usage statement to the key policy."""
        self._statements.append(usage)
        self.key.policy = self._policy()

    def encrypted_log_group(
        self, scope: Construct, construct_id: str, *, name: str, retention_days: int
    ) -> CloudwatchLogGroup:
        """Create a log group encrypted with this key, and admit it in the key policy."""
        group = CloudwatchLogGroup(
            scope, construct_id, name=name, retention_in_days=retention_days, kms_key_id=self.arn
        )
        self._log_group_arns.append(log_group_arn(self.props.region, self.props.account_id, name))
        self.key.policy = self._policy()
        return group

    def _policy(self) -> str:
        extra: list[Statement] = []
        if self._log_group_arns:
            extra.append(
                statement(
                    "CloudWatchLogsUsesKey",
                    LOGS_KEY_ACTIONS,
                    "*",
                    principal={"Service": f"logs.{self.props.region}.amazonaws.com"},
                    condition={
                        "ArnEquals": {"kms:EncryptionContext:aws:logs:arn": self._log_group_arns}
                    },
                )
            )
        return policy_document(*self._statements, *extra)


def service_usage(
    sid: str, service: str, *, condition: dict[str, object] | None = None
) -> Statement:
    """A key-policy statement letting an AWS service principal use the key."""
    return statement(
        sid, KEY_USAGE_ACTIONS, "*", principal={"Service": service}, condition=condition
    )
