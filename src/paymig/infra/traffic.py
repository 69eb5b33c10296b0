"""Traffic migration (requirement 5): Route 53 weighted records, legacy and AWS.

Two weighted A records share the public API name: ``legacy`` (the on-premises API's
addresses, TTL 60 s) and ``aws`` (an alias to the ALB that evaluates target health).
Route 53 requires one record type within a weighted set, and a CNAME cannot share a
name with other records, which is why ``legacy`` holds addresses, not a CNAME. The
first apply sets the weights from the configured starting phase. After that the
migration controller owns them (``paymig shift`` / ``paymig rollback`` and the rollback
Lambda), so Terraform ignores changes to ``weighted_routing_policy``: a later apply can
never silently put back old weights and undo a rollback.
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


@dataclass(frozen=True)
class TrafficProps:
    """Inputs of the traffic tier."""

    name: str
    dns: DnsConfig
    initial_aws_weight: int
    alb_dns_name: str
    alb_zone_id: str


def initial_weights(aws_percent: int) -> dict[str, int]:
    """Weights of the two records for a phase (percent of traffic on AWS)."""
    return {naming.LEGACY_SET_ID: 100 - aws_percent, naming.AWS_SET_ID: aws_percent}


class TrafficTier(Construct):
    """The weighted records and a health check on each endpoint.

    Attributes: :attr:`records` and :attr:`health_checks`, keyed by set identifier.
    """

    def __init__(self, scope: Construct, construct_id: str, props: TrafficProps) -> None:
        """Create both weighted records and their health checks."""
        super().__init__(scope, construct_id)
        weights = initial_weights(props.initial_aws_weight)
        # The legacy check probes the first on-prem address with the API's host name
        # (SNI and Host header); the AWS check probes the ALB by its DNS name.
        legacy_ip = str(props.dns.legacy_addresses[0])
        targets: dict[str, tuple[str, str | None]] = {
            naming.LEGACY_SET_ID: (props.dns.legacy_endpoint, legacy_ip),
            naming.AWS_SET_ID: (props.alb_dns_name, None),
        }
        self.health_checks = {
            set_id: Route53HealthCheck(
                self,
                f"health-{set_id}",
                type="HTTPS",
                fqdn=fqdn,
                ip_address=address,
                port=443,
                resource_path=HEALTH_PATH,
                request_interval=HEALTH_INTERVAL_SECONDS,
                failure_threshold=HEALTH_FAILURE_THRESHOLD,
                enable_sni=True,
                tags={"Name": f"{props.name}-{set_id}"},
            )
            for set_id, (fqdn, address) in targets.items()
        }
        ignore_weights = TerraformResourceLifecycle(ignore_changes=["weighted_routing_policy"])
        self.records = {
            naming.LEGACY_SET_ID: Route53Record(
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
            ),
            naming.AWS_SET_ID: Route53Record(
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
            ),
        }
