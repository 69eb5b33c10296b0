"""The `dns` section: the public hosted zone and the weighted records."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import Field, model_validator

from paymig.config.base import _Model, _operator_field

HostName = Annotated[
    str,
    Field(max_length=253, pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"),
]


class DnsConfig(_Model):
    """The public hosted zone and the API's record name."""

    hosted_zone_id: str = _operator_field(
        "Route 53 hosted zone id of `zone_name`.", pattern=r"^Z[A-Z0-9]{1,31}$"
    )
    zone_name: HostName = _operator_field("Public DNS zone, e.g. `payments.example.com`.")
    api_record_name: HostName = _operator_field(
        "Public name of the payment API; also the ACM certificate's domain."
    )
    legacy_endpoint: HostName = _operator_field(
        "DNS name of the on-premises API (the Host/SNI name its health check uses)."
    )
    legacy_addresses: list[ipaddress.IPv4Address] = _operator_field(
        "Public IPv4 addresses of the on-premises API: the `legacy` weighted A record. "
        "Route 53 needs both weighted records of one type, and `aws` is an alias A record.",
        min_length=1,
        max_length=8,
    )
    record_ttl_seconds: int = Field(
        default=60, ge=10, le=300, description="TTL of the weighted records."
    )

    @model_validator(mode="after")
    def _record_in_zone(self) -> DnsConfig:
        """The API record must live inside the hosted zone."""
        if not self.api_record_name.endswith("." + self.zone_name):
            raise ValueError(
                f"api_record_name {self.api_record_name!r} is not inside zone {self.zone_name!r}"
            )
        return self
