"""What `paymig check` says about the VPN's secrets in Terraform state: only what is verified."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paymig.state_secrets import GATEWAY_CONFIGURATION, vpn_state_notes
from paymig.terraform import pinned_provider_schema

MIRROR = Path("/opt/tf-plugins")
AWS = "registry.terraform.io/hashicorp/aws"


def _document(**vpn: Any) -> dict[str, Any]:
    return {
        "terraform": {"required_providers": {"aws": {"source": "aws", "version": "5.100.0"}}},
        "resource": {"aws_vpn_connection": {"network_vpn_1": vpn}} if vpn else {},
    }


def _schema(attribute: dict[str, Any] | None) -> dict[str, Any]:
    attributes = {GATEWAY_CONFIGURATION: attribute} if attribute is not None else {}
    block = {"block": {"attributes": attributes}}
    return {"provider_schemas": {AWS: {"resource_schemas": {"aws_vpn_connection": block}}}}


def test_keys_in_secrets_manager_and_a_sensitive_gateway_configuration() -> None:
    notes = vpn_state_notes(
        _document(preshared_key_storage="SecretsManager"), _schema({"sensitive": True})
    )
    assert notes == [
        "VPN network_vpn_1: the tunnels' pre-shared keys are kept in AWS Secrets Manager "
        "(preshared_key_storage = SecretsManager)",
        "VPN: customer_gateway_configuration (AWS returns it with the tunnel details) is still "
        "stored in Terraform state; hashicorp/aws 5.100.0 marks it sensitive, which hides it "
        "from plan output but not from the state file: keep the state bucket encrypted and its "
        "access restricted",
    ]


def test_what_is_said_follows_the_stack_and_the_schema() -> None:
    standard = vpn_state_notes(_document(static_routes_only=False), _schema({"sensitive": False}))
    assert standard[0].endswith(
        "preshared_key_storage is unset (Standard): the pre-shared keys are generated into "
        "Terraform state"
    )
    assert "does NOT mark it sensitive: plan output shows it" in standard[1]
    absent = vpn_state_notes(_document(preshared_key_storage="Standard"), _schema(None))
    assert "preshared_key_storage is Standard" in absent[0]
    assert absent[1].endswith("has no customer_gateway_configuration attribute in its schema; "
                              "nothing verified about it")  # fmt: skip
    assert vpn_state_notes(_document(), _schema({"sensitive": True})) == []


@pytest.mark.slow
def test_the_pinned_provider_marks_the_gateway_configuration_sensitive(tmp_path: Path) -> None:
    """Read from the real `terraform providers schema -json` of the provider the stack pins."""
    document = _document(preshared_key_storage="SecretsManager")
    schema = pinned_provider_schema(document, tmp_path / "schema", MIRROR)
    assert (tmp_path / "schema" / ".terraform.lock.hcl").is_file()
    notes = vpn_state_notes(document, schema)
    assert "hashicorp/aws 5.100.0 marks it sensitive" in notes[1]
