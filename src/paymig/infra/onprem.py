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
        return [egress, *self.vpn_path()]

    def vpn_path(self) -> list[ITerraformDependable]:
        """The VPN connection and the app route tables' routes to it."""
        vpn: list[ITerraformDependable] = [self.network.vpn_connection, *self.network.onprem_routes]
        if self.network.vpn_static_route is not None:
            vpn.append(self.network.vpn_static_route)
        return vpn


@dataclass(frozen=True)
class OnPremStandby:
    """A hot standby of the source in the same on-prem network, verified with its CA.

    Connected after the source: on the source's port the source's egress rule (to the
    on-prem CIDR) already admits it, so only the VPN is added to what the client needs.
    """

    host: str
    port: int
    primary: OnPremDatabase

    server = "source"

    @property
    def dbname(self) -> str:
        """The source's database."""
        return self.primary.dbname

    def open_path(self, client: VpcClient) -> list[ITerraformDependable]:
        """The VPN, plus an egress rule when the standby listens on another port."""
        if self.port == self.primary.port:
            return self.primary.vpn_path()
        return OnPremDatabase(self.host, self.port, self.dbname, self.primary.network).open_path(
            client
        )
