"""What of the VPN's secrets reaches Terraform state, said only as far as it is verified.

Two facts are read, never assumed: where the stack asks AWS to keep the tunnels'
pre-shared keys (``preshared_key_storage`` on ``aws_vpn_connection``, from the
synthesized JSON), and which of the resource's attributes the pinned provider marks
sensitive (``terraform providers schema -json``). A sensitive attribute is hidden from
plan and apply output but is still written to the state file (Terraform documentation,
"Sensitive data in state"); so state must stay encrypted and access-restricted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The attribute AWS fills with the customer gateway's configuration (tunnel details).
GATEWAY_CONFIGURATION = "customer_gateway_configuration"
_AWS_PROVIDER = "registry.terraform.io/hashicorp/aws"


def vpn_schema_attributes(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The attributes of `aws_vpn_connection` in a `terraform providers schema -json` report."""
    providers = schema.get("provider_schemas", {})
    aws = providers.get(_AWS_PROVIDER, {})
    resource = aws.get("resource_schemas", {}).get("aws_vpn_connection", {})
    attributes: Mapping[str, Any] = resource.get("block", {}).get("attributes", {})
    return attributes


def aws_provider_version(document: Mapping[str, Any]) -> str:
    """The hashicorp/aws version the stack pins (`terraform.required_providers.aws`)."""
    providers = document.get("terraform", {}).get("required_providers", {})
    return str(providers.get("aws", {}).get("version", "unknown"))


def vpn_state_notes(document: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """One line per VPN connection on its pre-shared keys, then one on the gateway configuration."""
    connections = document.get("resource", {}).get("aws_vpn_connection", {})
    if not connections:
        return []
    provider_version = aws_provider_version(document)
    notes = []
    for name, body in sorted(connections.items()):
        storage = body.get("preshared_key_storage")
        if storage == "SecretsManager":
            notes.append(
                f"VPN {name}: the tunnels' pre-shared keys are kept in AWS Secrets Manager "
                "(preshared_key_storage = SecretsManager)"
            )
        else:
            notes.append(
                f"VPN {name}: preshared_key_storage is {storage or 'unset (Standard)'}: the "
                "pre-shared keys are generated into Terraform state"
            )
    attribute = vpn_schema_attributes(schema).get(GATEWAY_CONFIGURATION)
    if attribute is None:
        notes.append(
            f"VPN: hashicorp/aws {provider_version} has no {GATEWAY_CONFIGURATION} attribute in "
            "its schema; nothing verified about it"
        )
    elif attribute.get("sensitive"):
        notes.append(
            f"VPN: {GATEWAY_CONFIGURATION} (AWS returns it with the tunnel details) is still "
            f"stored in Terraform state; hashicorp/aws {provider_version} marks it sensitive, "
            "which hides it from plan output but not from the state file: keep the state "
            "bucket encrypted and its access restricted"
        )
    else:
        notes.append(
            f"VPN: {GATEWAY_CONFIGURATION} (AWS returns it with the tunnel details) is stored "
            f"in Terraform state and hashicorp/aws {provider_version} does NOT mark it sensitive: "
            "plan output shows it"
        )
    return notes
