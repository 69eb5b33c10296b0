"""Pieces every Lambda function of the stack has: its role, its log group, HTTPS egress.

Each helper creates its resources on the calling construct with fixed ids (``role``,
``role-managed-<n>``, ``role-policy``, ``log-group``, ``egress-https``), so a function's
resources keep the same construct paths wherever it is defined.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from constructs import Construct

from paymig.infra.iam import Statement, assume_role_policy, policy_document

#: AWS managed policies every function here needs: ENIs in the VPC, and X-Ray traces.
LAMBDA_VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
XRAY_WRITE_POLICY = "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"


def log_group_arn(region: str, account_id: str, name: str) -> str:
    """ARN of a CloudWatch log group (without the `:*` stream suffix)."""
    return f"arn:aws:logs:{region}:{account_id}:log-group:{name}"


def function_role(scope: Construct, name: str, statements: list[Statement]) -> IamRole:
    """The function's role: Lambda trust, VPC and X-Ray managed policies, an inline policy."""
    role = IamRole(
        scope, "role", name=name, assume_role_policy=assume_role_policy("lambda.amazonaws.com")
    )
    for index, managed in enumerate((LAMBDA_VPC_POLICY, XRAY_WRITE_POLICY)):
        IamRolePolicyAttachment(scope, f"role-managed-{index}", role=role.name, policy_arn=managed)
    IamRolePolicy(scope, "role-policy", role=role.id, policy=policy_document(*statements))
    return role


def function_log_group(
    scope: Construct, function_name: str, retention_days: int, key_arn: str
) -> CloudwatchLogGroup:
    """The function's log group, created up front so retention and the CMK apply."""
    return CloudwatchLogGroup(
        scope,
        "log-group",
        name=f"/aws/lambda/{function_name}",
        retention_in_days=retention_days,
        kms_key_id=key_arn,
    )


def https_egress(scope: Construct, security_group_id: str, why: str) -> VpcSecurityGroupEgressRule:
    """Egress on 443 to anywhere: AWS APIs through the NAT gateways."""
    return VpcSecurityGroupEgressRule(
        scope,
        "egress-https",
        security_group_id=security_group_id,
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        cidr_ipv4="0.0.0.0/0",
        description=why,
    )
