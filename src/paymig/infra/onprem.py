"""The on-prem PostgreSQL source as a database server VPC clients connect to.

The path is the client's egress to the on-prem CIDR on the source's port, the app
route tables' routes to the VPN gateway and the VPN connection itself. The on-prem
firewall is outside the stack; the runbook names what it must allow.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import ITerraformDependable

from paymig.infra.connections import VpcClient
from paymig.infra.network import NetworkTier


@dataclass(frozen=True)
class OnPremDatabase:
    """The source database: where it is and the network that reaches it."""

    host: str
    port: int
    dbname: str
    network: NetworkTier

    server = "source"

    @property
    def cidr(self) -> str:
        """The on-prem network the source sits in."""
        return str(self.network.props.onprem.cidr)

    def open_path(self, client: VpcClient) -> list[ITerraformDependable]:
        """The client's egress to the source, and the VPN it goes through."""
        egress = client.egress(
            f"source-{self.port}",
            self.port,
            "PostgreSQL to the on-prem source over the VPN",
            cidr=self.cidr,
        )
        vpn: list[ITerraformDependable] = [self.network.vpn_connection, *self.network.onprem_routes]
        if self.network.vpn_static_route is not None:
            vpn.append(self.network.vpn_static_route)
        return [egress, *vpn]
