"""Traffic migration (requirement 5): Route 53 weighted records, legacy and AWS.

Two weighted A records share the public API name: ``legacy`` (the on-premises API's
addresses, TTL 60 s) and ``aws`` (an alias to the ALB that evaluates target health).
Route 53 requires one record type within a weighted set, and a CNAME cannot share a
name with other records, which is why ``legacy`` holds addresses, not a CNAME. The
first apply sets the weights from the configured starting phase. After that the
migration controller owns them (``paymig shift`` / ``paymig rollback`` and the rollback
Lambda), so Terraform ignores changes to ``weighted_routing_policy``: a later apply can
never silently put back old weights and undo a rollback.

Health. Route 53 answers with the weight-0 records when every record with a weight
above 0 is unhealthy ("How Amazon Route 53 chooses records when health checking is
configured"). At legacy 100 / aws 0, an unhealthy ``legacy`` record therefore sends all
traffic to AWS. So ``legacy`` is unhealthy only when *no* on-prem address answers: one
HTTPS check per address, and a calculated check over them with HealthThreshold 1
(:data:`LEGACY_HEALTH_THRESHOLD`). A higher threshold would make one host down enough
to move every client to the side a rollback has just left; while at least one host
answers, clients reach it (a multi-address A record lets them try the next address).
The ``aws`` record keeps its own check on the load balancer.

Once the migration is finished (``legacy`` False) the legacy record and its checks are
gone and the ``aws`` record is left alone in its weighted set, unchanged: Route 53
answers the only record of a set whatever its weight, and turning it into a simple
record would replace it (a moment with no answer).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.route53_health_check import Route53HealthCheck
from cdktf_cdktf_provider_aws.route53_record import (
    Route53Record,
    Route53RecordAlias,
    Route53RecordWeightedRoutingPolicy,
)
from constructs import Construct

from paymig import naming
from paymig.config import DnsConfig

HEALTH_PATH = "/health"
HEALTH_INTERVAL_SECONDS = 30
HEALTH_FAILURE_THRESHOLD = 3
#: Children of the legacy calculated check that must be healthy (see the module's text).
LEGACY_HEALTH_THRESHOLD = 1


@dataclass(frozen=True)
class TrafficProps:
    """Inputs of the traffic tier."""

    name: str
    dns: DnsConfig
    initial_aws_weight: int
    alb_dns_name: str
    alb_zone_id: str
    #: The legacy record and its health checks (False once the migration is finished).
    legacy: bool = True


def initial_weights(aws_percent: int) -> dict[str, int]:
    """Weights of the two records for a phase (percent of traffic on AWS)."""
    return {naming.LEGACY_SET_ID: 100 - aws_percent, naming.AWS_SET_ID: aws_percent}


class TrafficTier(Construct):
    """The weighted records and their health checks.

    Attributes: :attr:`records` and :attr:`health_checks` (the check each record uses),
    keyed by set identifier; :attr:`legacy_address_checks`, one per on-prem address,
    keyed by address (the children of the legacy calculated check).
    """

    def __init__(self, scope: Construct, construct_id: str, props: TrafficProps) -> None:
        """Create both weighted records and their health checks."""
        super().__init__(scope, construct_id)
        self.props = props
        self._build_health_checks()
        self._build_records()

    def _https_check(
        self, check_id: str, name: str, fqdn: str, address: str | None
    ) -> Route53HealthCheck:
        """An HTTPS check of `/health` with SNI and Host `fqdn` (at `address` if given)."""
        return Route53HealthCheck(
            self,
            check_id,
            type="HTTPS",
            fqdn=fqdn,
            ip_address=address,
            port=443,
            resource_path=HEALTH_PATH,
            request_interval=HEALTH_INTERVAL_SECONDS,
            failure_threshold=HEALTH_FAILURE_THRESHOLD,
            enable_sni=True,
            tags={"Name": name},
        )

    def _build_health_checks(self) -> None:
        """One check per legacy address, their calculated parent, and the ALB's check."""
        props = self.props
        aws = self._https_check(
            "health-aws", f"{props.name}-{naming.AWS_SET_ID}", props.alb_dns_name, None
        )
        self.health_checks = {naming.AWS_SET_ID: aws}
        self.legacy_address_checks: dict[str, Route53HealthCheck] = {}
        if not props.legacy:
            return
        self.legacy_address_checks = {
            str(address): self._https_check(
                f"health-legacy-{index}",
                f"{props.name}-legacy-{address}",
                props.dns.legacy_endpoint,
                str(address),
            )
            for index, address in enumerate(props.dns.legacy_addresses)
        }
        # A new address (not "health-legacy", the old single check): Terraform creates it
        # and moves the record to it before it deletes the old check.
        legacy = Route53HealthCheck(
            self,
            "health-legacy-calculated",
            type="CALCULATED",
            child_healthchecks=[check.id for check in self.legacy_address_checks.values()],
            child_health_threshold=LEGACY_HEALTH_THRESHOLD,
            tags={"Name": f"{props.name}-{naming.LEGACY_SET_ID}"},
        )
        self.health_checks[naming.LEGACY_SET_ID] = legacy

    def _build_records(self) -> None:
        """The two weighted A records; Terraform ignores their weights after creation."""
        props = self.props
        weights = initial_weights(props.initial_aws_weight)
        ignore_weights = TerraformResourceLifecycle(ignore_changes=["weighted_routing_policy"])
        self.records: dict[str, Route53Record] = {}
        if props.legacy:
            self.records[naming.LEGACY_SET_ID] = Route53Record(
                self,
                "legacy",
                zone_id=props.dns.hosted_zone_id,
                name=props.dns.api_record_name,
                type="A",
                ttl=props.dns.record_ttl_seconds,
                records=[str(address) for address in props.dns.legacy_addresses],
                set_identifier=naming.LEGACY_SET_ID,
                weighted_routing_policy=Route53RecordWeightedRoutingPolicy(
                    weight=weights[naming.LEGACY_SET_ID]
                ),
                health_check_id=self.health_checks[naming.LEGACY_SET_ID].id,
                lifecycle=ignore_weights,
            )
        self.records[naming.AWS_SET_ID] = Route53Record(
            self,
            "aws",
            zone_id=props.dns.hosted_zone_id,
            name=props.dns.api_record_name,
            type="A",
            alias=Route53RecordAlias(
                name=props.alb_dns_name,
                zone_id=props.alb_zone_id,
                evaluate_target_health=True,
            ),
            set_identifier=naming.AWS_SET_ID,
            weighted_routing_policy=Route53RecordWeightedRoutingPolicy(
                weight=weights[naming.AWS_SET_ID]
            ),
            health_check_id=self.health_checks[naming.AWS_SET_ID].id,
            lifecycle=ignore_weights,
        )
