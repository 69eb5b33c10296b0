"""Network tier properties, asserted on the synthesized prod stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from paymig.config import PaymigConfig, parse_config
from paymig.errors import ConfigError
from tests.tf_helpers import by_path, only, path_of, policy, ref, resources

ZONES = ["us-east-2a", "us-east-2b", "us-east-2c"]


def test_vpc(prod_tf: dict[str, Any]) -> None:
    _, vpc = only(prod_tf, "aws_vpc")
    assert vpc["cidr_block"] == "10.0.0.0/16"
    assert vpc["enable_dns_support"] is True
    assert vpc["enable_dns_hostnames"] is True


def test_nine_subnets_in_three_tiers_across_three_azs(
    prod_tf: dict[str, Any], prod_config: PaymigConfig
) -> None:
    subnets = resources(prod_tf, "aws_subnet")
    assert len(subnets) == 9
    expected = prod_config.network.subnet_cidrs()
    for tier in ("public", "app", "data"):
        for zone, cidr in zip(ZONES, expected[tier], strict=True):
            _, subnet = by_path(prod_tf, "aws_subnet", f"/network/{tier}-{zone}")
            assert subnet["availability_zone"] == zone
            assert subnet["cidr_block"] == str(cidr)
            assert subnet["map_public_ip_on_launch"] is False
            assert subnet["tags"]["Tier"] == tier


def _routes_of(doc: dict[str, Any], table_id: str) -> list[dict[str, Any]]:
    target = ref("aws_route_table", table_id)
    return [r for r in resources(doc, "aws_route").values() if r["route_table_id"] == target]


def _associated_subnets(doc: dict[str, Any], table_id: str) -> set[str]:
    target = ref("aws_route_table", table_id)
    return {
        a["subnet_id"]
        for a in resources(doc, "aws_route_table_association").values()
        if a["route_table_id"] == target
    }


def test_data_tier_has_no_internet_route(prod_tf: dict[str, Any]) -> None:
    table_id, _ = by_path(prod_tf, "aws_route_table", "/network/data-rt")
    routes = _routes_of(prod_tf, table_id)
    assert all(r["destination_cidr_block"] != "0.0.0.0/0" for r in routes)
    assert [r["destination_cidr_block"] for r in routes] == ["192.0.2.0/24"]
    vgw_id, _ = only(prod_tf, "aws_vpn_gateway")
    assert routes[0]["gateway_id"] == ref("aws_vpn_gateway", vgw_id)
    data_subnets = {
        ref("aws_subnet", by_path(prod_tf, "aws_subnet", f"/network/data-{z}")[0]) for z in ZONES
    }
    assert _associated_subnets(prod_tf, table_id) == data_subnets


def test_each_app_route_table_uses_its_own_azs_nat(prod_tf: dict[str, Any]) -> None:
    for zone in ZONES:
        table_id, _ = by_path(prod_tf, "aws_route_table", f"/network/app-rt-{zone}")
        nat_id, nat = by_path(prod_tf, "aws_nat_gateway", f"/network/nat-{zone}")
        public_id, _ = by_path(prod_tf, "aws_subnet", f"/network/public-{zone}")
        app_id, _ = by_path(prod_tf, "aws_subnet", f"/network/app-{zone}")
        assert nat["subnet_id"] == ref("aws_subnet", public_id)
        routes = {r["destination_cidr_block"]: r for r in _routes_of(prod_tf, table_id)}
        assert set(routes) == {"0.0.0.0/0", "192.0.2.0/24"}
        assert routes["0.0.0.0/0"]["nat_gateway_id"] == ref("aws_nat_gateway", nat_id)
        assert _associated_subnets(prod_tf, table_id) == {ref("aws_subnet", app_id)}
    assert len(resources(prod_tf, "aws_nat_gateway")) == 3
    assert {e["domain"] for e in resources(prod_tf, "aws_eip").values()} == {"vpc"}


def test_public_tier_routes_to_the_internet_gateway(prod_tf: dict[str, Any]) -> None:
    table_id, _ = by_path(prod_tf, "aws_route_table", "/network/public-rt")
    igw_id, _ = only(prod_tf, "aws_internet_gateway")
    routes = _routes_of(prod_tf, table_id)
    assert [(r["destination_cidr_block"], r["gateway_id"]) for r in routes] == [
        ("0.0.0.0/0", ref("aws_internet_gateway", igw_id))
    ]


def test_flow_logs_encrypted_and_kept_a_year(prod_tf: dict[str, Any]) -> None:
    _, flow_log = only(prod_tf, "aws_flow_log")
    group_id, group = by_path(prod_tf, "aws_cloudwatch_log_group", "/network/flow-log-group")
    key_id, key = by_path(prod_tf, "aws_kms_key", "/network/flow-log-key/key")
    assert flow_log["traffic_type"] == "ALL"
    assert flow_log["log_destination"] == ref("aws_cloudwatch_log_group", group_id, "arn")
    assert group["retention_in_days"] == 365
    assert group["kms_key_id"] == ref("aws_kms_key", key_id, "arn")
    assert key["enable_key_rotation"] is True
    statements = {s["Sid"]: s for s in policy(key["policy"])["Statement"]}
    assert set(statements) == {"AccountRootAdministersKey", "CloudWatchLogsUsesKey"}
    root = statements["AccountRootAdministersKey"]
    assert root["Principal"] == {
        "AWS": "arn:aws:iam::${data.aws_caller_identity.caller.account_id}:root"
    }
    assert not any(a in ("kms:*", "kms:Decrypt", "kms:Encrypt") for a in root["Action"])
    logs = statements["CloudWatchLogsUsesKey"]
    assert logs["Principal"] == {"Service": "logs.us-east-2.amazonaws.com"}
    # Exactly this key's one log group: the key admits no other group's context.
    assert logs["Condition"] == {
        "ArnEquals": {
            "kms:EncryptionContext:aws:logs:arn": [
                "arn:aws:logs:us-east-2:${data.aws_caller_identity.caller.account_id}"
                ":log-group:/paymig/paymig-prod/vpc-flow-logs"
            ]
        }
    }


def test_flow_log_role_is_scoped(prod_tf: dict[str, Any]) -> None:
    _, role = by_path(prod_tf, "aws_iam_role", "/network/flow-log-role")
    trust = policy(role["assume_role_policy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    _, inline = by_path(prod_tf, "aws_iam_role_policy", "/network/flow-log-policy")
    (stmt,) = policy(inline["policy"])["Statement"]
    assert all(r.startswith("arn:aws:logs:us-east-2:") for r in stmt["Resource"])


def test_default_security_group_has_no_rules(prod_tf: dict[str, Any]) -> None:
    _, sg = only(prod_tf, "aws_default_security_group")
    assert "ingress" not in sg
    assert "egress" not in sg


INTERFACE_SERVICES = [
    "secretsmanager", "monitoring", "sns", "sts", "ssm", "xray", "elasticloadbalancing", "dms",
    "kms", "states",
]  # fmt: skip
GATEWAY_SERVICES = ["dynamodb", "s3"]
#: Every VPC client of the stack, by the name its endpoint ingress rule carries.
VPC_CLIENTS = [
    "dms", "paymig-prod-db-setup", "paymig-prod-payment-api", "paymig-prod-rollback",
    "paymig-prod-rotation", "paymig-prod-validation", "paymig-prod-validation-job",
]  # fmt: skip


def _app_subnets(doc: dict[str, Any]) -> list[str]:
    return [ref("aws_subnet", by_path(doc, "aws_subnet", f"/network/app-{z}")[0]) for z in ZONES]


def _private_route_tables(doc: dict[str, Any]) -> list[str]:
    return [
        ref("aws_route_table", by_path(doc, "aws_route_table", f"/network/app-rt-{z}")[0])
        for z in ZONES
    ] + [ref("aws_route_table", by_path(doc, "aws_route_table", "/network/data-rt")[0])]


def test_interface_endpoints_answer_for_the_apis_in_the_app_subnets(
    prod_tf: dict[str, Any],
) -> None:
    vpc_id, _ = only(prod_tf, "aws_vpc")
    sg_id, _ = by_path(prod_tf, "aws_security_group", "/network/endpoints/sg")
    endpoints = {
        e["service_name"]: e
        for e in resources(prod_tf, "aws_vpc_endpoint").values()
        if e["vpc_endpoint_type"] == "Interface"
    }
    assert sorted(endpoints) == sorted(f"com.amazonaws.us-east-2.{s}" for s in INTERFACE_SERVICES)
    for service in INTERFACE_SERVICES:
        endpoint = endpoints[f"com.amazonaws.us-east-2.{service}"]
        # Private DNS: the API's public name resolves to the endpoint inside the VPC.
        assert endpoint["private_dns_enabled"] is True
        assert endpoint["vpc_id"] == ref("aws_vpc", vpc_id)
        assert endpoint["subnet_ids"] == _app_subnets(prod_tf)
        assert endpoint["security_group_ids"] == [ref("aws_security_group", sg_id)]
        assert endpoint["tags"]["Name"] == f"paymig-prod-{service}"


def test_gateway_endpoints_on_the_private_route_tables(prod_tf: dict[str, Any]) -> None:
    gateways = {
        e["service_name"]: e
        for e in resources(prod_tf, "aws_vpc_endpoint").values()
        if e["vpc_endpoint_type"] == "Gateway"
    }
    assert sorted(gateways) == sorted(f"com.amazonaws.us-east-2.{s}" for s in GATEWAY_SERVICES)
    for endpoint in gateways.values():
        assert endpoint["route_table_ids"] == _private_route_tables(prod_tf)
        assert "security_group_ids" not in endpoint and "subnet_ids" not in endpoint


def test_endpoint_security_group_admits_exactly_the_vpc_clients_on_443(
    prod_tf: dict[str, Any],
) -> None:
    sg_id, sg = by_path(prod_tf, "aws_security_group", "/network/endpoints/sg")
    assert "ingress" not in sg and "egress" not in sg
    group = ref("aws_security_group", sg_id)
    egress = [
        r for r in resources(prod_tf, "aws_vpc_security_group_egress_rule").values()
        if r["security_group_id"] == group
    ]  # fmt: skip
    assert egress == []  # endpoints answer; they never open connections
    ingress = {
        path_of(r).rsplit("/ingress-", 1)[1]: r
        for r in resources(prod_tf, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == group
    }
    assert sorted(ingress) == VPC_CLIENTS
    client_groups = {
        "dms": "/replication/security-group",
        "paymig-prod-db-setup": "/checks/db-setup/sg",
        "paymig-prod-payment-api": "/app/api/sg",
        "paymig-prod-rollback": "/automation/rollback/sg",
        "paymig-prod-rotation": "/credentials/rotation/sg",
        "paymig-prod-validation": "/checks/validation/sg",
        "paymig-prod-validation-job": "/validation/function/sg",
    }
    for client, suffix in client_groups.items():
        rule = ingress[client]
        client_sg, _ = by_path(prod_tf, "aws_security_group", suffix)
        assert {k: v for k, v in rule.items() if k not in ("//", "description", "tags")} == {
            "security_group_id": group,
            "referenced_security_group_id": ref("aws_security_group", client_sg),
            "ip_protocol": "tcp",
            "from_port": 443,
            "to_port": 443,
        }


def test_site_to_site_vpn(prod_tf: dict[str, Any]) -> None:
    """Issue 14 #4: the tunnels took AWS's defaults (SHA1, AES128, DH group 2 accepted)
    and Terraform state held the pre-shared keys; both tunnels now carry exactly the
    configured options and the keys stay in Secrets Manager."""
    _, cgw = only(prod_tf, "aws_customer_gateway")
    assert cgw["ip_address"] == "203.0.113.10"
    assert cgw["bgp_asn"] == "64500"
    vgw_id, _ = only(prod_tf, "aws_vpn_gateway")
    _, vpn = only(prod_tf, "aws_vpn_connection")
    assert vpn["vpn_gateway_id"] == ref("aws_vpn_gateway", vgw_id)
    assert vpn["static_routes_only"] is False
    assert vpn["type"] == "ipsec.1"
    # The pre-shared keys stay out of Terraform state.
    assert vpn["preshared_key_storage"] == "SecretsManager"
    tunnel_options = {k: v for k, v in vpn.items() if k.startswith("tunnel")}
    expected = {}
    for number in (1, 2):
        expected[f"tunnel{number}_ike_versions"] = ["ikev2"]
        for phase in (1, 2):
            prefix = f"tunnel{number}_phase{phase}"
            expected[f"{prefix}_encryption_algorithms"] = ["AES256-GCM-16", "AES256"]
            expected[f"{prefix}_integrity_algorithms"] = ["SHA2-256", "SHA2-384", "SHA2-512"]
            expected[f"{prefix}_dh_group_numbers"] = [19, 20, 21]
    assert tunnel_options == expected
    onprem = [
        r
        for r in resources(prod_tf, "aws_route").values()
        if r["destination_cidr_block"] == "192.0.2.0/24"
    ]
    assert len(onprem) == 4  # three app route tables and the data route table
    assert {r["gateway_id"] for r in onprem} == {ref("aws_vpn_gateway", vgw_id)}


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("integrity_algorithms", ["SHA2-256", "SHA1"],
         "prod.yaml: onprem.vpn.integrity_algorithms[1]: Input should be 'SHA2-256', "
         "'SHA2-384' or 'SHA2-512'"),
        ("encryption_algorithms", ["AES128"],
         "prod.yaml: onprem.vpn.encryption_algorithms[0]: Input should be 'AES256' or "
         "'AES256-GCM-16'"),
        ("dh_group_numbers", [14],
         "prod.yaml: onprem.vpn.dh_group_numbers[0]: Input should be 19, 20 or 21"),
        ("ike_versions", ["ikev1"],
         "prod.yaml: onprem.vpn.ike_versions[0]: Input should be 'ikev2'"),
    ],
)  # fmt: skip
def test_weak_vpn_algorithms_are_refused_in_one_line(
    option: str, value: list[object], message: str
) -> None:
    """AWS accepts SHA1, AES128 and DH group 14 on a tunnel; the config does not."""
    data = yaml.safe_load((Path(__file__).parents[1] / "config" / "prod.yaml").read_text())
    data["onprem"]["vpn"] = {option: value}
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_dump(data), Path("prod.yaml"))
    assert str(info.value) == message


def test_state_backend_is_per_environment_encrypted_and_locked(prod_tf: dict[str, Any]) -> None:
    assert prod_tf["terraform"]["backend"] == {
        "s3": {
            "bucket": "example-paymig-tfstate",
            "key": "paymig/prod/terraform.tfstate",
            "region": "us-east-2",
            "encrypt": True,
            "use_lockfile": True,
        }
    }


def taggable(kind: str) -> bool:
    """Whether the provider schema gives a resource type `tags` (read from the bindings).

    Only AWS provider types can be: `terraform_data` is Terraform's own.
    """
    import importlib

    if not kind.startswith("aws_"):
        return False

    from cdktf import TerraformResource

    module = importlib.import_module(f"cdktf_cdktf_provider_aws.{kind.removeprefix('aws_')}")
    (cls,) = [
        v for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, TerraformResource) and v is not TerraformResource
    ]  # fmt: skip
    return hasattr(cls, "tags_input")


def test_every_taggable_resource_carries_the_configured_tags(prod_tf: dict[str, Any]) -> None:
    expected = {
        "Owner": "payments-platform",
        "CostCenter": "cc-4100-payments",
        "DataClassification": "pci-cde",
        "Environment": "prod",
        "ManagedBy": "paymig",
    }
    checked = 0
    for kind, items in prod_tf["resource"].items():
        if not taggable(kind):
            continue
        for resource in items.values():
            assert expected.items() <= resource.get("tags", {}).items(), path_of(resource)
            checked += 1
    assert checked >= 60
    assert not taggable("aws_route") and taggable("aws_vpc")
