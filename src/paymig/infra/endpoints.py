"""VPC endpoints for the AWS APIs the stack's VPC clients call, and the one call to use them.

Which path serves which API (README, "Network paths to AWS APIs"):

* **Interface endpoints** (PrivateLink, private DNS on) in the app subnets for every
  API with one that a client calls: Secrets Manager, CloudWatch (``monitoring``), SNS,
  STS, SSM, X-Ray, Elastic Load Balancing, DMS, KMS and Step Functions (``states``).
  With private DNS the API's public name resolves to the endpoint everywhere in the
  VPC, so a client the endpoint's security group does not admit cannot reach the API
  at all: :meth:`ServiceEndpoints.admit` writes both the client's egress and the
  endpoint's ingress.
* **Gateway endpoints** for DynamoDB and S3: free, attached to the private route
  tables; the client needs egress to the endpoint's prefix list.
* **NAT**, only for APIs AWS offers no endpoint for: Route 53's API (global). Those
  clients keep egress 443 to 0.0.0.0/0.

The DMS replication instance reads its endpoints' secrets itself, so it is a client of
the Secrets Manager endpoint too (DMS User Guide: engine 3.4.7+ in a private subnet).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_aws.security_group import SecurityGroup
from cdktf_cdktf_provider_aws.vpc_endpoint import VpcEndpoint
from constructs import Construct

from paymig.infra.connections import VpcClient, admit

HTTPS = 443
ANYWHERE = "0.0.0.0/0"

#: APIs reached through an interface endpoint, by endpoint service name.
INTERFACE_SERVICES: tuple[str, ...] = (
    "secretsmanager",
    "monitoring",
    "sns",
    "sts",
    "ssm",
    "xray",
    "elasticloadbalancing",
    "dms",
    "kms",
    "states",
)
#: APIs reached through a gateway endpoint.
GATEWAY_SERVICES: tuple[str, ...] = ("dynamodb", "s3")
#: APIs with no VPC endpoint at all: reached through the NAT gateways.
NAT_ONLY_SERVICES: tuple[str, ...] = ("route53",)


@dataclass(frozen=True)
class EndpointsProps:
    """Inputs of the endpoints: where they live and who routes to the gateways."""

    name: str
    region: str
    vpc_id: str
    subnet_ids: list[str]
    route_table_ids: list[str]


class ServiceEndpoints(Construct):
    """The interface and gateway endpoints, their security group, and client wiring.

    Attributes: :attr:`interface` and :attr:`gateway` (endpoints by service),
    :attr:`security_group`.
    """

    def __init__(self, scope: Construct, construct_id: str, props: EndpointsProps) -> None:
        """Create every endpoint; clients are admitted later with :meth:`admit`."""
        super().__init__(scope, construct_id)
        self.props = props
        self.security_group = SecurityGroup(
            self,
            "sg",
            name=f"{props.name}-endpoints",
            description="Interface endpoints: 443 from the stack's VPC clients only",
            vpc_id=props.vpc_id,
        )
        self.interface = {
            service: VpcEndpoint(
                self,
                service,
                vpc_id=props.vpc_id,
                service_name=f"com.amazonaws.{props.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=props.subnet_ids,
                security_group_ids=[self.security_group.id],
                tags={"Name": f"{props.name}-{service}"},
            )
            for service in INTERFACE_SERVICES
        }
        self.gateway = {
            service: VpcEndpoint(
                self,
                service,
                vpc_id=props.vpc_id,
                service_name=f"com.amazonaws.{props.region}.{service}",
                vpc_endpoint_type="Gateway",
                route_table_ids=props.route_table_ids,
                tags={"Name": f"{props.name}-{service}"},
            )
            for service in GATEWAY_SERVICES
        }
        #: Per client, the rules already written (each is written once).
        self._written: dict[str, dict[str, list[ITerraformDependable]]] = {}

    def admit(self, client: VpcClient, services: Iterable[str]) -> list[ITerraformDependable]:
        """Open the path from ``client`` to each service's API; return what it is made of.

        Calling it again for the same client adds only what is new. Unknown service
        names fail at synth, so a client can never be wired to an API this module does
        not know how to reach.
        """
        wanted = sorted(set(services))
        known = INTERFACE_SERVICES + GATEWAY_SERVICES + NAT_ONLY_SERVICES
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise ValueError(f"no known network path to the API of {', '.join(unknown)}")
        written = self._written.setdefault(client.name, {})
        path: list[ITerraformDependable] = []
        for service in wanted:
            if service in INTERFACE_SERVICES:
                path.append(self.interface[service])
                path += self._once(written, "interfaces", lambda: self._interface_rules(client))
            elif service in GATEWAY_SERVICES:
                path.append(self.gateway[service])
                path += self._once(written, service, partial(self._gateway_rule, client, service))
            else:
                path += self._once(written, "nat", lambda: [
                    client.egress("internet-https", HTTPS,
                                  "HTTPS to APIs without a VPC endpoint (Route 53) via NAT",
                                  cidr=ANYWHERE)
                ])  # fmt: skip
        return path

    @staticmethod
    def _once(
        written: dict[str, list[ITerraformDependable]],
        what: str,
        make: Callable[[], list[ITerraformDependable]],
    ) -> list[ITerraformDependable]:
        if what not in written:
            written[what] = make()
        return written[what]

    def _gateway_rule(self, client: VpcClient, service: str) -> list[ITerraformDependable]:
        """The client's egress to a gateway endpoint's prefix list."""
        endpoint = self.gateway[service]
        return [
            client.egress(
                service,
                HTTPS,
                f"HTTPS to the {service} gateway endpoint",
                prefix_list_id=str(endpoint.prefix_list_id),
            )
        ]

    def _interface_rules(self, client: VpcClient) -> list[ITerraformDependable]:
        """One egress and one ingress rule cover every interface endpoint (one group)."""
        return [
            client.egress(
                "endpoints",
                HTTPS,
                "HTTPS to the VPC's interface endpoints (AWS APIs)",
                group_id=str(self.security_group.id),
            ),
            admit(
                self,
                f"ingress-{client.name}",
                self.security_group,
                client,
                port=HTTPS,
                why=f"HTTPS from {client.name}",
            ),
        ]
