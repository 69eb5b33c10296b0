"""Network connections written from both sides in one call (CDK's ``connections`` habit).

A VPC client (a Lambda function, the DMS replication instance) reaches a destination
only when its own security group lets the traffic out *and* the destination lets it in
(or routes it, for the on-prem network). Writing the two halves in different places is
how they drift apart, so here one call writes both and returns every resource the path
is made of; a deployment check that uses the path depends on exactly those.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktf_cdktf_provider_aws.vpc_security_group_ingress_rule import (
    VpcSecurityGroupIngressRule,
)
from constructs import Construct

POSTGRES_PORT = 5432


@dataclass
class VpcClient:
    """A client's security group, the construct its rules are created in, and its name."""

    scope: Construct
    name: str
    security_group: SecurityGroup
    #: Every resource a path of this client is made of, in creation order.
    path_resources: list[ITerraformDependable] = field(default_factory=list)

    @property
    def group_id(self) -> str:
        """Id of the client's security group."""
        return str(self.security_group.id)

    def egress(
        self,
        rule_id: str,
        port: int,
        why: str,
        *,
        cidr: str | None = None,
        group_id: str | None = None,
        prefix_list_id: str | None = None,
    ) -> VpcSecurityGroupEgressRule:
        """One egress rule of the client (TCP ``port`` to a CIDR, group or prefix list)."""
        rule = VpcSecurityGroupEgressRule(
            self.scope,
            f"egress-{rule_id}",
            security_group_id=self.group_id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            cidr_ipv4=cidr,
            referenced_security_group_id=group_id,
            prefix_list_id=prefix_list_id,
            description=why,
        )
        self.path_resources.append(rule)
        return rule


def admit(
    scope: Construct,
    rule_id: str,
    group: SecurityGroup,
    client: VpcClient,
    *,
    port: int,
    why: str,
) -> VpcSecurityGroupIngressRule:
    """Let ``client`` in to ``group`` on TCP ``port`` and record the rule on the client."""
    rule = VpcSecurityGroupIngressRule(
        scope,
        rule_id,
        security_group_id=group.id,
        referenced_security_group_id=client.group_id,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        description=why,
    )
    client.path_resources.append(rule)
    return rule


def connect_to_group(
    server_scope: Construct,
    server_group: SecurityGroup,
    client: VpcClient,
    port: int,
    *,
    server_name: str,
) -> list[ITerraformDependable]:
    """Both halves of client -> server-group on ``port``: client egress, server ingress."""
    egress = client.egress(
        f"{server_name}-{port}", port, f"{server_name} on {port}", group_id=str(server_group.id)
    )
    ingress = admit(
        server_scope,
        f"ingress-{client.name}-{port}",
        server_group,
        client,
        port=port,
        why=f"{port} from {client.name}",
    )
    return [egress, ingress]
