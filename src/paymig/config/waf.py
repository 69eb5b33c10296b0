"""The `waf` section: the web ACL in front of the load balancer."""

from __future__ import annotations

from pydantic import Field

from paymig.config.base import RetentionDays, _Model


class WafConfig(_Model):
    """The regional web ACL in front of the load balancer."""

    rate_limit_per_minute: int = Field(
        default=1000, ge=100, description="Requests per client IP per 60 s before blocking."
    )
    log_retention_days: RetentionDays = Field(default=365, description="Retention of WAF logs.")
