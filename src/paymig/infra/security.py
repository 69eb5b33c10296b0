"""Edge security (requirement 7): the WAF web ACL that guards the load balancer.

Rules, in evaluation order: a per-IP rate limit of N requests per **60 seconds**
(``evaluation_window_sec = 60``; the provider's default window is 5 minutes, which would
allow five times more), AWS's known-bad-inputs, SQL injection, common and anonymous-IP
rule sets.
Every rule publishes CloudWatch metrics and sampled requests; the ACL logs to a CMK
encrypted log group with the ``authorization`` and ``cookie`` headers redacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.wafv2_web_acl import (
    Wafv2WebAcl,
    Wafv2WebAclDefaultAction,
    Wafv2WebAclDefaultActionAllow,
    Wafv2WebAclRule,
    Wafv2WebAclRuleAction,
    Wafv2WebAclRuleActionBlock,
    Wafv2WebAclRuleOverrideAction,
    Wafv2WebAclRuleOverrideActionNone,
    Wafv2WebAclRuleVisibilityConfig,
    Wafv2WebAclVisibilityConfig,
)
from cdktf_cdktf_provider_aws.wafv2_web_acl_logging_configuration import (
    Wafv2WebAclLoggingConfiguration,
    Wafv2WebAclLoggingConfigurationRedactedFields,
    Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader,
)
from constructs import Construct

from paymig.config import WafConfig
from paymig.infra.kms import CustomerManagedKey, KeyProps

#: AWS managed rule groups, in priority order after the rate limit. Known-bad-inputs
#: carries the Log4j rules; the anonymous IP list blocks Tor and anonymising VPNs.
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesSQLiRuleSet",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesAnonymousIpList",
)

#: Rules of a managed group that only count instead of blocking, with the reason:
#: merchants call the API from their own servers, often on cloud hosting.
COUNT_ONLY_RULES = {"AWSManagedRulesAnonymousIpList": ("HostingProviderIPList",)}

#: Request headers never written to WAF logs (credentials and sessions).
REDACTED_HEADERS = ("authorization", "cookie")

RATE_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class SecurityProps:
    """Inputs of the security tier."""

    name: str
    region: str
    account_id: str
    waf: WafConfig


def _visibility(metric: str) -> Wafv2WebAclRuleVisibilityConfig:
    """Metrics and sampled requests on for one rule."""
    return Wafv2WebAclRuleVisibilityConfig(
        cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


def _managed_group(group: str) -> dict[str, Any]:
    """The statement of one AWS managed rule group, with its count-only overrides."""
    statement: dict[str, Any] = {"name": group, "vendor_name": "AWS"}
    overrides = COUNT_ONLY_RULES.get(group, ())
    if overrides:
        statement["rule_action_override"] = [
            {"name": rule, "action_to_use": {"count": {}}} for rule in overrides
        ]
    return statement


class SecurityTier(Construct):
    """The regional WAFv2 web ACL and its logging.

    Attribute other constructs use: :attr:`web_acl` (the app tier associates it with the
    load balancer).
    """

    def __init__(self, scope: Construct, construct_id: str, props: SecurityProps) -> None:
        """Create the web ACL, its rules and its encrypted log group."""
        super().__init__(scope, construct_id)
        self.props = props
        self._build_log_group()
        self._build_web_acl()
        self._build_logging()

    # ---------------------------------------------------------------- builders

    def _build_log_group(self) -> None:
        """The WAF log group and the CMK that encrypts it (and admits it)."""
        props = self.props
        self.log_key = CustomerManagedKey(
            self,
            "log-key",
            KeyProps(
                alias=f"{props.name}/waf-logs",
                description=f"{props.name}: encrypts WAF logs",
                account_id=props.account_id,
                region=props.region,
            ),
        )
        # WAF requires the log group name to start with `aws-waf-logs-`.
        self.log_group = self.log_key.encrypted_log_group(
            self,
            "log-group",
            name=f"aws-waf-logs-{props.name}",
            retention_days=props.waf.log_retention_days,
        )

    def _build_web_acl(self) -> None:
        """The regional web ACL: allow by default, block what its rules match."""
        name = self.props.name
        self.web_acl = Wafv2WebAcl(
            self,
            "web-acl",
            name=f"{name}-api",
            description="paymig API: per-IP rate limit, SQL injection and common rule sets",
            scope="REGIONAL",
            default_action=Wafv2WebAclDefaultAction(allow=Wafv2WebAclDefaultActionAllow()),
            rule=self._rules(),
            visibility_config=Wafv2WebAclVisibilityConfig(
                cloudwatch_metrics_enabled=True,
                metric_name=f"{name}-api",
                sampled_requests_enabled=True,
            ),
        )

    def _rules(self) -> list[Wafv2WebAclRule]:
        """The per-IP rate limit first, then the managed rule groups in priority order."""
        props = self.props
        rate_statement: dict[str, Any] = {
            "rate_based_statement": {
                "limit": props.waf.rate_limit_per_minute,
                "aggregate_key_type": "IP",
                "evaluation_window_sec": RATE_WINDOW_SECONDS,
            }
        }
        rules = [
            Wafv2WebAclRule(
                name="rate-limit-per-ip",
                priority=0,
                action=Wafv2WebAclRuleAction(block=Wafv2WebAclRuleActionBlock()),
                statement=rate_statement,
                visibility_config=_visibility(f"{props.name}-rate-limit-per-ip"),
            )
        ]
        for priority, group in enumerate(MANAGED_RULE_GROUPS, start=1):
            rules.append(
                Wafv2WebAclRule(
                    name=group,
                    priority=priority,
                    override_action=Wafv2WebAclRuleOverrideAction(
                        none=Wafv2WebAclRuleOverrideActionNone()
                    ),
                    statement={"managed_rule_group_statement": _managed_group(group)},
                    visibility_config=_visibility(f"{props.name}-{group}"),
                )
            )
        return rules

    def _build_logging(self) -> None:
        """The ACL's logging into the log group, credentials and sessions redacted."""
        self.logging = Wafv2WebAclLoggingConfiguration(
            self,
            "logging",
            resource_arn=self.web_acl.arn,
            log_destination_configs=[self.log_group.arn],
            redacted_fields=[
                Wafv2WebAclLoggingConfigurationRedactedFields(
                    single_header=Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader(
                        name=header
                    )
                )
                for header in REDACTED_HEADERS
            ],
        )
