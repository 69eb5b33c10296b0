"""The `network` and `onprem` sections: the VPC and its subnets, the on-prem end of the VPN."""

from __future__ import annotations

import ipaddress
from typing import Any, Literal

from pydantic import Field, field_validator

from paymig.config.base import RetentionDays, _Model, _operator_field

#: Subnet tiers in address order. Their CIDRs are derived, never typed by hand.
SUBNET_TIERS = ("public", "app", "data")


class NetworkConfig(_Model):
    """The VPC and its three subnet tiers."""

    vpc_cidr: ipaddress.IPv4Network = Field(
        default=ipaddress.IPv4Network("10.0.0.0/16"), description="CIDR block of the VPC."
    )
    availability_zones: list[str] = Field(
        default=["us-east-2a", "us-east-2b", "us-east-2c"],
        description="Availability zones; one subnet per tier and one NAT gateway in each.",
    )
    subnet_prefix_length: int = Field(
        default=20,
        ge=16,
        le=28,
        description="Prefix length of every subnet, carved from the VPC CIDR in tier order.",
    )
    flow_log_retention_days: RetentionDays = Field(
        default=365,
        description="Retention of VPC flow logs in days (PCI DSS 10.5.1 asks for a year).",
    )

    @field_validator("vpc_cidr", mode="before")
    @classmethod
    def _strict_cidr(cls, value: Any) -> Any:
        """Reject a CIDR with host bits set rather than silently masking them."""
        if isinstance(value, str):
            try:
                return ipaddress.IPv4Network(value, strict=True)
            except ValueError as exc:
                raise ValueError(f"malformed CIDR {value!r}: {exc}") from None
        return value

    @field_validator("availability_zones")
    @classmethod
    def _enough_azs(cls, value: list[str]) -> list[str]:
        """Multi-AZ needs at least two distinct zones."""
        if len(value) < 2:
            raise ValueError(f"at least 2 availability zones are required, got {len(value)}")
        if len(set(value)) != len(value):
            raise ValueError("availability zones must be distinct")
        return value

    def subnet_cidrs(self) -> dict[str, list[ipaddress.IPv4Network]]:
        """Derive each tier's subnet CIDRs, one per availability zone, in tier order."""
        blocks = self.vpc_cidr.subnets(new_prefix=self.subnet_prefix_length)
        count = len(self.availability_zones)
        return {tier: [next(blocks) for _ in range(count)] for tier in SUBNET_TIERS}


#: What PCI DSS 4.0's "strong cryptography" allows of the values AWS's Site-to-Site VPN
#: accepts (VPN User Guide, "Tunnel options for your Site-to-Site VPN connection"):
#: AES-256 (CBC or GCM), SHA-2 256 or stronger, and the elliptic-curve DH groups 19-21.
#: Groups 22-24 are MODP groups with small prime-order subgroups (22 is 1024-bit), so
#: they are refused although AWS accepts them; SHA1, AES128 and groups 2/5/14-18 too.
VpnEncryption = Literal["AES256", "AES256-GCM-16"]
VpnIntegrity = Literal["SHA2-256", "SHA2-384", "SHA2-512"]
VpnDhGroup = Literal[19, 20, 21]


class VpnConfig(_Model):
    """Tunnel options of both VPN tunnels, set explicitly instead of AWS's defaults.

    AWS's defaults accept SHA1, AES128 and DH group 2 for compatibility; a PCI
    environment pins strong algorithms on both phases.
    """

    ike_versions: list[Literal["ikev2"]] = Field(
        default=["ikev2"], min_length=1, description="IKE versions: IKEv2 only."
    )
    encryption_algorithms: list[VpnEncryption] = Field(
        default=["AES256-GCM-16", "AES256"],
        min_length=1,
        description="Phase 1 and phase 2 encryption: AES-256 (GCM or CBC).",
    )
    integrity_algorithms: list[VpnIntegrity] = Field(
        default=["SHA2-256", "SHA2-384", "SHA2-512"],
        min_length=1,
        description="Phase 1 and phase 2 integrity: SHA-2 256 or stronger.",
    )
    dh_group_numbers: list[VpnDhGroup] = Field(
        default=[19, 20, 21],
        min_length=1,
        description="Phase 1 and phase 2 Diffie-Hellman groups: 19, 20, 21 (elliptic curve).",
    )
    preshared_key_storage: Literal["SecretsManager", "Standard"] = Field(
        default="SecretsManager",
        description=(
            "Where AWS keeps the tunnels' pre-shared keys: `SecretsManager` keeps them out of "
            "Terraform state (the provider then reads them as REDACTED)."
        ),
    )


class OnPremConfig(_Model):
    """The on-premises network and its Site-to-Site VPN."""

    cidr: ipaddress.IPv4Network = _operator_field("CIDR of the on-premises network.")
    customer_gateway_ip: ipaddress.IPv4Address = _operator_field(
        "Public IP of the on-premises VPN device (customer gateway)."
    )
    bgp_asn: int = _operator_field("BGP AS number of the customer gateway.", ge=1, le=4_294_967_294)
    static_routes_only: bool = Field(
        default=False,
        description="Use static routes instead of BGP on the VPN connection.",
    )
    vpn: VpnConfig = Field(
        default_factory=VpnConfig, description="Tunnel options of the Site-to-Site VPN."
    )

    @field_validator("cidr", mode="before")
    @classmethod
    def _strict_cidr(cls, value: Any) -> Any:
        """Reject a CIDR with host bits set rather than silently masking them."""
        if isinstance(value, str):
            try:
                return ipaddress.IPv4Network(value, strict=True)
            except ValueError as exc:
                raise ValueError(f"malformed CIDR {value!r}: {exc}") from None
        return value
