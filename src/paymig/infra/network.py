"""Network tier (requirement 1): VPC, three subnet tiers, NAT per AZ, flow logs, VPN."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network

from cdktf_cdktf_provider_aws.customer_gateway import CustomerGateway
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.eip import Eip
from cdktf_cdktf_provider_aws.flow_log import FlowLog
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.internet_gateway import InternetGateway
from cdktf_cdktf_provider_aws.nat_gateway import NatGateway
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from cdktf_cdktf_provider_aws.vpn_connection import VpnConnection
from cdktf_cdktf_provider_aws.vpn_connection_route import VpnConnectionRoute
from cdktf_cdktf_provider_aws.vpn_gateway import VpnGateway
from constructs import Construct

from paymig.config import NetworkConfig, OnPremConfig
from paymig.infra.endpoints import EndpointsProps, ServiceEndpoints
from paymig.infra.iam import assume_role_policy, policy_document, statement
from paymig.infra.kms import CustomerManagedKey, KeyProps

ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class NetworkProps:
    """Inputs of the network tier."""

    name: str
    region: str
    account_id: str
    network: NetworkConfig
    onprem: OnPremConfig


class NetworkTier(Construct):
    """The VPC with public (web), private app and private data subnets in every AZ.

    Attributes other constructs use: :attr:`vpc`, :attr:`public_subnet_ids`,
    :attr:`app_subnet_ids`, :attr:`data_subnet_ids`, :attr:`vpn_gateway`.
    """

    def __init__(self, scope: Construct, construct_id: str, props: NetworkProps) -> None:
        """Create the VPC and everything routed inside it."""
        super().__init__(scope, construct_id)
        self.props = props
        self._build_vpc()
        self._build_subnets()
        self._build_public_routing()
        self._build_nat_per_az()
        self._build_data_routing()
        self._build_endpoints()
        self._build_vpn()
        self._build_flow_logs()

    # ---------------------------------------------------------------- builders

    def _build_vpc(self) -> None:
        """The VPC and its default security group, locked down."""
        props = self.props
        self.vpc = Vpc(
            self,
            "vpc",
            cidr_block=str(props.network.vpc_cidr),
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": props.name},
        )
        # With no rules, the default security group denies everything; nothing uses it.
        self.default_security_group = DefaultSecurityGroup(
            self, "default-sg", vpc_id=self.vpc.id, tags={"Name": f"{props.name}-default-deny"}
        )

    def _build_subnets(self) -> None:
        """One public (web), app and data subnet in every AZ."""
        cidrs = self.props.network.subnet_cidrs()
        self.public_subnets = self._subnets("public", cidrs["public"])
        self.app_subnets = self._subnets("app", cidrs["app"])
        self.data_subnets = self._subnets("data", cidrs["data"])

    def _subnets(self, tier: str, cidrs: list[IPv4Network]) -> list[Subnet]:
        """The subnets of one tier, one per AZ, in the given CIDRs."""
        props = self.props
        return [
            Subnet(
                self,
                f"{tier}-{zone}",
                vpc_id=self.vpc.id,
                cidr_block=str(cidr),
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{props.name}-{tier}-{zone}", "Tier": tier},
            )
            for zone, cidr in zip(props.network.availability_zones, cidrs, strict=True)
        ]

    def _build_public_routing(self) -> None:
        """The internet gateway and the public route table of the web tier."""
        props = self.props
        self.internet_gateway = InternetGateway(
            self, "igw", vpc_id=self.vpc.id, tags={"Name": props.name}
        )
        self.public_route_table = RouteTable(
            self, "public-rt", vpc_id=self.vpc.id, tags={"Name": f"{props.name}-public"}
        )
        Route(
            self,
            "public-default",
            route_table_id=self.public_route_table.id,
            destination_cidr_block=ANYWHERE,
            gateway_id=self.internet_gateway.id,
        )
        zones = props.network.availability_zones
        for zone, subnet in zip(zones, self.public_subnets, strict=True):
            RouteTableAssociation(
                self, f"public-{zone}-assoc", subnet_id=subnet.id,
                route_table_id=self.public_route_table.id,
            )  # fmt: skip

    def _build_nat_per_az(self) -> None:
        """A NAT gateway and an app route table per AZ."""
        props = self.props
        zones = props.network.availability_zones
        self.nat_gateways: list[NatGateway] = []
        self.app_route_tables: list[RouteTable] = []
        for zone, public, app in zip(zones, self.public_subnets, self.app_subnets, strict=True):
            eip = Eip(
                self, f"nat-eip-{zone}", domain="vpc", tags={"Name": f"{props.name}-nat-{zone}"}
            )
            nat = NatGateway(
                self,
                f"nat-{zone}",
                allocation_id=eip.id,
                subnet_id=public.id,
                tags={"Name": f"{props.name}-nat-{zone}"},
                depends_on=[self.internet_gateway],
            )
            table = RouteTable(
                self,
                f"app-rt-{zone}",
                vpc_id=self.vpc.id,
                tags={"Name": f"{props.name}-app-{zone}"},
            )
            # Each AZ's app tier leaves through its own NAT, so losing one AZ
            # never cuts the others off.
            Route(
                self,
                f"app-default-{zone}",
                route_table_id=table.id,
                destination_cidr_block=ANYWHERE,
                nat_gateway_id=nat.id,
            )
            RouteTableAssociation(
                self, f"app-{zone}-assoc", subnet_id=app.id, route_table_id=table.id
            )
            self.nat_gateways.append(nat)
            self.app_route_tables.append(table)

    def _build_data_routing(self) -> None:
        """The data tier's route table: no route to the internet."""
        props = self.props
        self.data_route_table = RouteTable(
            self, "data-rt", vpc_id=self.vpc.id, tags={"Name": f"{props.name}-data"}
        )
        zones = props.network.availability_zones
        for zone, subnet in zip(zones, self.data_subnets, strict=True):
            RouteTableAssociation(
                self, f"data-{zone}-assoc", subnet_id=subnet.id,
                route_table_id=self.data_route_table.id,
            )  # fmt: skip

    def _build_endpoints(self) -> None:
        """Interface endpoints in the app subnets; gateways on the private route tables."""
        props = self.props
        self.endpoints = ServiceEndpoints(
            self,
            "endpoints",
            EndpointsProps(
                name=props.name,
                region=props.region,
                vpc_id=str(self.vpc.id),
                subnet_ids=[str(s.id) for s in self.app_subnets],
                route_table_ids=[str(t.id) for t in self.app_route_tables]
                + [str(self.data_route_table.id)],
            ),
        )

    def _build_vpn(self) -> None:
        """The Site-to-Site VPN to on premises and the routes of the tiers that use it."""
        props = self.props
        self.vpn_gateway = VpnGateway(
            self, "vgw", vpc_id=self.vpc.id, tags={"Name": f"{props.name}-vgw"}
        )
        self.customer_gateway = CustomerGateway(
            self,
            "cgw",
            bgp_asn=str(props.onprem.bgp_asn),
            ip_address=str(props.onprem.customer_gateway_ip),
            type="ipsec.1",
            tags={"Name": f"{props.name}-onprem"},
        )
        vpn = props.onprem.vpn
        tunnel: dict[str, object] = {}
        for number in (1, 2):
            tunnel |= {
                f"tunnel{number}_ike_versions": list(vpn.ike_versions),
                f"tunnel{number}_phase1_encryption_algorithms": list(vpn.encryption_algorithms),
                f"tunnel{number}_phase2_encryption_algorithms": list(vpn.encryption_algorithms),
                f"tunnel{number}_phase1_integrity_algorithms": list(vpn.integrity_algorithms),
                f"tunnel{number}_phase2_integrity_algorithms": list(vpn.integrity_algorithms),
                f"tunnel{number}_phase1_dh_group_numbers": list(vpn.dh_group_numbers),
                f"tunnel{number}_phase2_dh_group_numbers": list(vpn.dh_group_numbers),
            }
        self.vpn_connection = VpnConnection(
            self,
            "vpn",
            vpn_gateway_id=self.vpn_gateway.id,
            customer_gateway_id=self.customer_gateway.id,
            type="ipsec.1",
            static_routes_only=props.onprem.static_routes_only,
            preshared_key_storage=vpn.preshared_key_storage,
            tags={"Name": f"{props.name}-onprem"},
            **tunnel,  # type: ignore[arg-type]
        )
        self.vpn_static_route: VpnConnectionRoute | None = None
        if props.onprem.static_routes_only:
            self.vpn_static_route = VpnConnectionRoute(
                self,
                "vpn-onprem-route",
                vpn_connection_id=self.vpn_connection.id,
                destination_cidr_block=str(props.onprem.cidr),
            )
        # Explicit routes (not propagation) so the reviewed plan shows exactly which
        # tiers can reach on premises: the app tier (DMS, Lambda) and the data tier.
        zones = props.network.availability_zones
        self.onprem_routes = [
            Route(
                self,
                f"onprem-{tier}",
                route_table_id=table.id,
                destination_cidr_block=str(props.onprem.cidr),
                gateway_id=self.vpn_gateway.id,
            )
            for tier, table in [
                *((f"app-{z}", t) for z, t in zip(zones, self.app_route_tables, strict=True)),
                ("data", self.data_route_table),
            ]
        ]

    def _build_flow_logs(self) -> None:
        """VPC flow logs into a CMK-encrypted log group, written through their own role."""
        props = self.props
        log_group_name = f"/paymig/{props.name}/vpc-flow-logs"
        log_group_arn = f"arn:aws:logs:{props.region}:{props.account_id}:log-group:{log_group_name}"
        self.flow_log_key = CustomerManagedKey(
            self,
            "flow-log-key",
            KeyProps(
                alias=f"{props.name}/flow-logs",
                description=f"{props.name}: encrypts VPC flow logs",
                account_id=props.account_id,
                region=props.region,
            ),
        )
        self.flow_log_group = self.flow_log_key.encrypted_log_group(
            self,
            "flow-log-group",
            name=log_group_name,
            retention_days=props.network.flow_log_retention_days,
        )
        self.flow_log_role = IamRole(
            self,
            "flow-log-role",
            name=f"{props.name}-vpc-flow-logs",
            assume_role_policy=assume_role_policy(
                "vpc-flow-logs.amazonaws.com",
                condition={"StringEquals": {"aws:SourceAccount": props.account_id}},
            ),
        )
        IamRolePolicy(
            self,
            "flow-log-policy",
            role=self.flow_log_role.id,
            policy=policy_document(
                statement(
                    "WriteFlowLogs",
                    ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    [log_group_arn, f"{log_group_arn}:*"],
                )
            ),
        )
        self.flow_log = FlowLog(
            self,
            "flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn,
            iam_role_arn=self.flow_log_role.arn,
            max_aggregation_interval=60,
        )

    # ---------------------------------------------------------------- exposed ids

    @property
    def vpc_id(self) -> str:
        """Id of the VPC."""
        return str(self.vpc.id)

    @property
    def public_subnet_ids(self) -> list[str]:
        """Ids of the public (web) subnets, one per AZ."""
        return [str(s.id) for s in self.public_subnets]

    @property
    def app_subnet_ids(self) -> list[str]:
        """Ids of the private app subnets, one per AZ."""
        return [str(s.id) for s in self.app_subnets]

    @property
    def data_subnet_ids(self) -> list[str]:
        """Ids of the private data subnets, one per AZ."""
        return [str(s.id) for s in self.data_subnets]
