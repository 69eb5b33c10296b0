"""The DMS replication tier: on the synthesized prod and staging stacks, and in a small
stack whose replication settings differ from every default (so each is seen to flow)."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest

from paymig.config import PaymigConfig
from tests.small_stacks import add_replication, with_changes, world
from tests.tf_helpers import by_path, only, path_of, policy, ref, resources

STACK_ACCOUNT = "${data.aws_caller_identity.caller.account_id}"


def replication_resources(doc: dict[str, Any], stack: str) -> dict[str, dict[str, Any]]:
    """The resources of the replication tier, by type and logical id."""
    found: dict[str, dict[str, Any]] = {}
    for kind, items in doc["resource"].items():
        for key, body in items.items():
            if path_of(body).startswith(f"{stack}/replication/"):
                found.setdefault(kind, {})[key] = body
    return found


def secret(doc: dict[str, Any], server: str, client: str) -> str:
    key, _ = by_path(doc, "aws_secretsmanager_secret", f"/credentials/{server}-{client}")
    return ref("aws_secretsmanager_secret", key, "arn")


def test_exactly_the_expected_resources(prod_tf: dict[str, Any]) -> None:
    counts = {k: len(v) for k, v in replication_resources(prod_tf, "paymig-prod").items()}
    assert counts == {
        "aws_dms_endpoint": 4,
        "aws_dms_event_subscription": 2,
        "aws_dms_replication_instance": 1,
        "aws_dms_replication_subnet_group": 1,
        "aws_dms_replication_task": 2,
        "aws_iam_role": 3,
        "aws_iam_role_policy": 1,
        "aws_iam_role_policy_attachment": 2,
        "aws_kms_alias": 1,
        "aws_kms_key": 1,
        "aws_security_group": 1,
        "aws_sns_topic": 1,
        "aws_sns_topic_policy": 1,
        "aws_sns_topic_subscription": 1,
        "aws_vpc_security_group_egress_rule": 3,
        "terraform_data": 1,
    }
    assert "aws_secretsmanager_secret_version" not in prod_tf["resource"]


def test_no_dms_once_the_migration_is_finished(prod_at_stage: Any) -> None:
    doc = prod_at_stage("finished")
    assert replication_resources(doc, "paymig-prod") == {}
    assert not any(kind.startswith("aws_dms_") and kind != "aws_dms_certificate"
                   for kind in doc["resource"])  # fmt: skip


def test_replication_instance(prod_tf: dict[str, Any]) -> None:
    _, instance = by_path(prod_tf, "aws_dms_replication_instance", "/replication/instance")
    group_id, group = by_path(
        prod_tf, "aws_dms_replication_subnet_group", "/replication/subnet-group"
    )
    sg_id, _ = by_path(prod_tf, "aws_security_group", "/replication/security-group")
    key_id, _ = by_path(prod_tf, "aws_kms_key", "/replication/key/key")
    assert {k: v for k, v in instance.items() if k not in ("//", "tags", "depends_on")} == {
        "replication_instance_id": "paymig-prod-dms",
        "replication_instance_class": "dms.r5.large",
        "allocated_storage": 100,
        "engine_version": "3.5.4",
        "multi_az": True,
        "publicly_accessible": False,
        "kms_key_arn": ref("aws_kms_key", key_id, "arn"),
        "replication_subnet_group_id": ref(
            "aws_dms_replication_subnet_group", group_id, "replication_subnet_group_id"
        ),
        "vpc_security_group_ids": [ref("aws_security_group", sg_id)],
        "auto_minor_version_upgrade": True,
        "allow_major_version_upgrade": False,
        "apply_immediately": False,
        "preferred_maintenance_window": "sun:06:00-sun:07:00",
    }
    app_subnets = [
        ref("aws_subnet", by_path(prod_tf, "aws_subnet", f"/network/app-{z}")[0])
        for z in ("us-east-2a", "us-east-2b", "us-east-2c")
    ]
    assert group["subnet_ids"] == app_subnets
    assert group["replication_subnet_group_id"] == "paymig-prod-dms"


def test_network_path_to_its_secrets_and_both_databases_both_sides(
    prod_tf: dict[str, Any],
) -> None:
    """Pins defect 4: DMS's security group allowed only 5432 out and no Secrets Manager
    endpoint existed, so DMS 3.4.7+ in a private subnet could not read its secrets."""
    sg_id, sg = by_path(prod_tf, "aws_security_group", "/replication/security-group")
    assert "ingress" not in sg and "egress" not in sg
    group = ref("aws_security_group", sg_id)
    endpoints_sg, _ = by_path(prod_tf, "aws_security_group", "/network/endpoints/sg")
    data_sg, _ = by_path(prod_tf, "aws_security_group", "/data/sg")
    egress = sorted(
        (
            {k: v for k, v in r.items() if k not in ("//", "tags", "description")}
            for r in resources(prod_tf, "aws_vpc_security_group_egress_rule").values()
            if r["security_group_id"] == group
        ),
        key=lambda r: (r["from_port"], r.get("cidr_ipv4", "")),
    )
    assert egress == [
        {"security_group_id": group, "ip_protocol": "tcp", "from_port": 443, "to_port": 443,
         "referenced_security_group_id": ref("aws_security_group", endpoints_sg)},
        {"security_group_id": group, "ip_protocol": "tcp", "from_port": 5432, "to_port": 5432,
         "referenced_security_group_id": ref("aws_security_group", data_sg)},
        {"security_group_id": group, "ip_protocol": "tcp", "from_port": 5432, "to_port": 5432,
         "cidr_ipv4": "192.0.2.0/24"},
    ]  # fmt: skip
    # The other halves: the endpoints' and Aurora's security groups admit DMS.
    for target, port in ((endpoints_sg, 443), (data_sg, 5432)):
        admitted = [
            r for r in resources(prod_tf, "aws_vpc_security_group_ingress_rule").values()
            if r["security_group_id"] == ref("aws_security_group", target)
            and r["referenced_security_group_id"] == group
        ]  # fmt: skip
        assert [(r["ip_protocol"], r["from_port"], r["to_port"]) for r in admitted] == [
            ("tcp", port, port)
        ]
    _, secrets_endpoint = by_path(prod_tf, "aws_vpc_endpoint", "/network/endpoints/secretsmanager")
    assert secrets_endpoint["vpc_endpoint_type"] == "Interface"
    assert secrets_endpoint["private_dns_enabled"] is True
    assert secrets_endpoint["security_group_ids"] == [ref("aws_security_group", endpoints_sg)]


def test_instance_waits_for_every_part_of_its_paths(prod_tf: dict[str, Any]) -> None:
    _, instance = by_path(prod_tf, "aws_dms_replication_instance", "/replication/instance")
    needed = [
        ("terraform_data", "/replication/service-roles-propagated"),
        ("aws_vpc_endpoint", "/network/endpoints/secretsmanager"),
        ("aws_vpc_security_group_egress_rule", "/replication/egress-endpoints"),
        ("aws_vpc_security_group_ingress_rule", "/network/endpoints/ingress-dms"),
        ("aws_vpc_security_group_egress_rule", "/replication/egress-source-5432"),
        ("aws_vpn_connection", "/network/vpn"),
        ("aws_vpc_security_group_egress_rule", "/replication/egress-aurora-5432"),
        ("aws_vpc_security_group_ingress_rule", "/data/ingress-dms-5432"),
        ("aws_rds_cluster", "/data/cluster"),
    ]
    for kind, suffix in needed:
        assert f"{kind}.{by_path(prod_tf, kind, suffix)[0]}" in instance["depends_on"], suffix
    routes = [f"aws_route.{k}" for k in resources(prod_tf, "aws_route") if "onprem" in k]
    instances = [
        f"aws_rds_cluster_instance.{k}" for k in resources(prod_tf, "aws_rds_cluster_instance")
    ]
    assert len(routes) == 4 and len(instances) == 2
    assert set(routes + instances) <= set(instance["depends_on"])


# --------------------------------------------------------------------------- service roles


def test_service_roles_created_by_fixed_name_then_waited_for(prod_tf: dict[str, Any]) -> None:
    """Pins defect 11: `dms-vpc-role` created in the same apply as the subnet group races
    IAM propagation (AccessDeniedFault); everything DMS creates waits for it."""
    roles = {r["name"]: (k, r) for k, r in resources(prod_tf, "aws_iam_role").items()}
    for name in ("dms-vpc-role", "dms-cloudwatch-logs-role"):
        assert policy(roles[name][1]["assume_role_policy"])["Statement"] == [
            {
                "Sid": "TrustService",
                "Effect": "Allow",
                "Principal": {"Service": "dms.amazonaws.com"},
                "Action": ["sts:AssumeRole"],
            }
        ]
    attachments = {
        a["policy_arn"]: (k, a["role"])
        for k, a in resources(prod_tf, "aws_iam_role_policy_attachment").items()
        if "/replication/" in path_of(a)
    }
    managed = "arn:aws:iam::aws:policy/service-role/"
    assert {arn: role for arn, (_, role) in attachments.items()} == {
        f"{managed}AmazonDMSVPCManagementRole": ref(
            "aws_iam_role", roles["dms-vpc-role"][0], "name"
        ),
        f"{managed}AmazonDMSCloudWatchLogsRole": ref(
            "aws_iam_role", roles["dms-cloudwatch-logs-role"][0], "name"
        ),
    }
    wait_id, wait = only(prod_tf, "terraform_data")
    attachment_ids = [f"aws_iam_role_policy_attachment.{k}" for k, _ in attachments.values()]
    assert sorted(wait["depends_on"]) == sorted(attachment_ids)
    assert wait["provisioner"] == [{"local-exec": {"command": "sleep 30"}}]
    assert sorted(wait["triggers_replace"]["attachments"]) == sorted(
        f"${{{a}.id}}" for a in attachment_ids
    )
    waited = f"terraform_data.{wait_id}"
    for kind, suffix in (
        ("aws_dms_replication_subnet_group", "/replication/subnet-group"),
        ("aws_dms_replication_instance", "/replication/instance"),
        ("aws_dms_replication_task", "/replication/task"),
        ("aws_dms_replication_task", "/replication/reverse-task"),
    ):
        assert waited in by_path(prod_tf, kind, suffix)[1]["depends_on"], suffix


def test_service_roles_looked_up_without_a_wait_when_they_exist(
    staging_tf: dict[str, Any],
) -> None:
    """`create_service_roles: false` (staging): no roles, no wait, data sources instead."""
    stack = replication_resources(staging_tf, "paymig-staging")
    assert sorted(r["name"] for r in stack["aws_iam_role"].values()) == [
        "paymig-staging-dms-secrets-access"
    ]
    assert "aws_iam_role_policy_attachment" not in stack
    assert "terraform_data" not in staging_tf["resource"]
    looked_up = staging_tf["data"]["aws_iam_role"]
    assert sorted(d["name"] for d in looked_up.values()) == [
        "dms-cloudwatch-logs-role",
        "dms-vpc-role",
    ]
    lookups = sorted(f"data.aws_iam_role.{k}" for k in looked_up)
    for kind in ("aws_dms_replication_subnet_group", "aws_dms_replication_task"):
        for body in stack[kind].values():
            assert sorted(body["depends_on"]) == lookups
    (instance,) = stack["aws_dms_replication_instance"].values()
    assert set(lookups) <= set(instance["depends_on"])
    assert not any(d.startswith("terraform_data.") for d in instance["depends_on"])


# --------------------------------------------------------------------------- endpoints


def test_access_role_reads_exactly_the_four_dms_login_secrets(prod_tf: dict[str, Any]) -> None:
    role_id, role = by_path(prod_tf, "aws_iam_role", "/replication/secrets-access-role")
    assert policy(role["assume_role_policy"])["Statement"] == [
        {
            "Sid": "TrustService",
            "Effect": "Allow",
            "Principal": {"Service": "dms.us-east-2.amazonaws.com"},
            "Action": ["sts:AssumeRole"],
            "Condition": {"StringEquals": {"aws:SourceAccount": STACK_ACCOUNT}},
        }
    ]
    _, inline = by_path(prod_tf, "aws_iam_role_policy", "/replication/secrets-access-policy")
    assert inline["role"] == ref("aws_iam_role", role_id)
    read, decrypt = policy(inline["policy"])["Statement"]
    assert read == {
        "Sid": "ReadEndpointSecrets",
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
        "Resource": [
            secret(prod_tf, "source", "dms"),
            secret(prod_tf, "aurora", "dms_target"),
            secret(prod_tf, "aurora", "dms_reverse"),
            secret(prod_tf, "source", "dms_apply"),
        ],
    }
    key_id, _ = by_path(prod_tf, "aws_kms_key", "/credentials/key/key")
    assert decrypt["Action"] == ["kms:Decrypt"]
    assert set(decrypt["Resource"]) == {ref("aws_kms_key", key_id, "arn")}
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.us-east-2.amazonaws.com"}
    }


def endpoint(doc: dict[str, Any], name: str) -> dict[str, Any]:
    _, body = by_path(doc, "aws_dms_endpoint", f"/replication/{name}")
    return {k: v for k, v in body.items() if k not in ("//", "tags")}


def test_every_endpoint_verifies_its_server_with_the_servers_ca(prod_tf: dict[str, Any]) -> None:
    """Pins defect 12: the DMS target endpoint used `require` (no server verification)."""
    key_id, _ = by_path(prod_tf, "aws_kms_key", "/replication/key/key")
    role_id, _ = by_path(prod_tf, "aws_iam_role", "/replication/secrets-access-role")
    certificate = {
        server: ref(
            "aws_dms_certificate",
            by_path(prod_tf, "aws_dms_certificate", f"/trust/{server}-dms-ca")[0],
            "certificate_arn",
        )
        for server in ("source", "aurora")
    }
    common = {
        "database_name": "payments",
        "ssl_mode": "verify-full",
        "kms_key_arn": ref("aws_kms_key", key_id, "arn"),
        "secrets_manager_access_role_arn": ref("aws_iam_role", role_id, "arn"),
    }
    settings = {
        "heartbeat_enable": True,
        "heartbeat_frequency": 5,
        "heartbeat_schema": "awsdms_heartbeat",
        "plugin_name": "test-decoding",
        "capture_ddls": False,
        "fail_tasks_on_lob_truncation": True,
        "map_boolean_as_boolean": True,
    }
    assert endpoint(prod_tf, "source-endpoint") == {
        **common,
        "endpoint_id": "paymig-prod-onprem-source",
        "endpoint_type": "source",
        "engine_name": "postgres",
        "certificate_arn": certificate["source"],
        "secrets_manager_arn": secret(prod_tf, "source", "dms"),
        "postgres_settings": settings,  # no slot_name: DMS creates its own slot
        # A fallback names the slot it created (ModifyEndpoint); an apply must keep it.
        "lifecycle": {"ignore_changes": ["postgres_settings[0].slot_name"]},
    }
    assert endpoint(prod_tf, "target-endpoint") == {
        **common,
        "endpoint_id": "paymig-prod-aurora-target",
        "endpoint_type": "target",
        "engine_name": "aurora-postgresql",
        "certificate_arn": certificate["aurora"],
        "secrets_manager_arn": secret(prod_tf, "aurora", "dms_target"),
    }
    assert endpoint(prod_tf, "reverse-source-endpoint") == {
        **common,
        "endpoint_id": "paymig-prod-aurora-reverse-source",
        "endpoint_type": "source",
        "engine_name": "aurora-postgresql",
        "certificate_arn": certificate["aurora"],
        "secrets_manager_arn": secret(prod_tf, "aurora", "dms_reverse"),
        "postgres_settings": {**settings, "slot_name": "paymig_reverse"},
    }
    assert endpoint(prod_tf, "reverse-target-endpoint") == {
        **common,
        "endpoint_id": "paymig-prod-onprem-reverse-target",
        "endpoint_type": "target",
        "engine_name": "postgres",
        "certificate_arn": certificate["source"],
        "secrets_manager_arn": secret(prod_tf, "source", "dms_apply"),
    }
    for body in resources(prod_tf, "aws_dms_endpoint").values():
        assert "password" not in body and "username" not in body


def dms_plugin_names() -> list[str]:
    """The plugin names DMS's API accepts, from botocore's DMS service model."""
    model = botocore.session.get_session().get_service_model("dms")
    names: list[str] = model.shape_for("PluginNameValue").enum
    return names


def test_source_plugin_is_a_name_dms_accepts_and_no_forward_slot_is_named(
    prod_tf: dict[str, Any],
) -> None:
    """Pins defect 6: `slot_name` names an *existing* slot, checked at CDC start ("DMS
    verifies that the specified logical replication slot exists", DMS User Guide,
    PostgreSQL source settings), but nothing created one before the forward task; the
    plugin was spelled `test_decoding`, which the DMS API does not accept."""
    assert "test-decoding" in dms_plugin_names()
    for name in ("source-endpoint", "reverse-source-endpoint"):
        assert endpoint(prod_tf, name)["postgres_settings"]["plugin_name"] in dms_plugin_names()
    assert "slot_name" not in endpoint(prod_tf, "source-endpoint")["postgres_settings"]
    reverse = endpoint(prod_tf, "reverse-source-endpoint")["postgres_settings"]
    assert reverse["slot_name"] == "paymig_reverse"


def test_tasks_are_created_stopped(prod_tf: dict[str, Any]) -> None:
    instance_id, _ = by_path(prod_tf, "aws_dms_replication_instance", "/replication/instance")
    instance_arn = ref("aws_dms_replication_instance", instance_id, "replication_instance_arn")

    def endpoint_arn(name: str) -> str:
        key, _ = by_path(prod_tf, "aws_dms_endpoint", f"/replication/{name}")
        return ref("aws_dms_endpoint", key, "endpoint_arn")

    tasks = {
        suffix: {
            k: v
            for k, v in by_path(prod_tf, "aws_dms_replication_task", f"/replication/{suffix}")[
                1
            ].items()
            if k not in ("//", "tags", "depends_on", "table_mappings", "replication_task_settings")
        }
        for suffix in ("task", "reverse-task")
    }
    assert tasks == {
        "task": {
            "replication_task_id": "paymig-prod-task",
            "migration_type": "full-load-and-cdc",
            "start_replication_task": False,
            "replication_instance_arn": instance_arn,
            "source_endpoint_arn": endpoint_arn("source-endpoint"),
            "target_endpoint_arn": endpoint_arn("target-endpoint"),
        },
        "reverse-task": {
            "replication_task_id": "paymig-prod-reverse-cdc",
            "migration_type": "cdc",
            "start_replication_task": False,
            "replication_instance_arn": instance_arn,
            "source_endpoint_arn": endpoint_arn("reverse-source-endpoint"),
            "target_endpoint_arn": endpoint_arn("reverse-target-endpoint"),
        },
    }


def test_task_mappings_and_settings_are_the_built_documents(
    prod_tf: dict[str, Any], prod_config: PaymigConfig
) -> None:
    from paymig.infra.dms_settings import (
        reverse_task_settings_json,
        table_mappings,
        task_settings,
    )

    rep = prod_config.replication
    _, task = by_path(prod_tf, "aws_dms_replication_task", "/replication/task")
    _, reverse = by_path(prod_tf, "aws_dms_replication_task", "/replication/reverse-task")
    assert json.loads(task["table_mappings"]) == table_mappings(rep)
    assert json.loads(reverse["table_mappings"]) == table_mappings(rep)
    settings = json.loads(task["replication_task_settings"])
    assert settings == task_settings(rep)
    assert reverse["replication_task_settings"] == reverse_task_settings_json(rep)
    assert "FullLoadSettings" not in json.loads(reverse["replication_task_settings"])
    assert settings["TargetMetadata"]["LimitedSizeLobMode"] is True
    assert settings["FullLoadSettings"]["TargetTablePrepMode"] == "DO_NOTHING"
    assert settings["ErrorBehavior"]["DataErrorPolicy"] == "STOP_TASK"


# --------------------------------------------------------------------------- events


def test_events_go_to_an_encrypted_topic_with_recipients(prod_tf: dict[str, Any]) -> None:
    """Pins defect 10: the DMS event topic had no subscription."""
    key_id, _ = by_path(prod_tf, "aws_kms_key", "/replication/key/key")
    topic_id, topic = by_path(prod_tf, "aws_sns_topic", "/replication/event-topic")
    topic_arn = ref("aws_sns_topic", topic_id, "arn")
    assert (topic["name"], topic["kms_master_key_id"]) == (
        "paymig-prod-dms-events",
        ref("aws_kms_key", key_id, "arn"),
    )
    _, topic_policy = by_path(prod_tf, "aws_sns_topic_policy", "/replication/event-topic-policy")
    assert topic_policy["arn"] == topic_arn
    assert policy(topic_policy["policy"])["Statement"] == [
        {
            "Sid": "DmsPublishesEvents",
            "Effect": "Allow",
            "Principal": {"Service": "dms.amazonaws.com"},
            "Action": ["sns:Publish"],
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": STACK_ACCOUNT}},
        }
    ]
    subscriptions = [
        {k: v for k, v in s.items() if k != "//"}
        for s in resources(prod_tf, "aws_sns_topic_subscription").values()
        if s["topic_arn"] == topic_arn
    ]
    assert subscriptions == [
        {"topic_arn": topic_arn, "protocol": "email", "endpoint": "payments-oncall@example.com"}
    ]
    task_id, _ = by_path(prod_tf, "aws_dms_replication_task", "/replication/task")
    reverse_id, _ = by_path(prod_tf, "aws_dms_replication_task", "/replication/reverse-task")
    instance_id, _ = by_path(prod_tf, "aws_dms_replication_instance", "/replication/instance")
    events = {
        s["source_type"]: {k: v for k, v in s.items() if k not in ("//", "tags")}
        for s in resources(prod_tf, "aws_dms_event_subscription").values()
    }
    assert events == {
        "replication-task": {
            "name": "paymig-prod-dms-task-events",
            "enabled": True,
            "source_type": "replication-task",
            "source_ids": [
                ref("aws_dms_replication_task", task_id, "replication_task_id"),
                ref("aws_dms_replication_task", reverse_id, "replication_task_id"),
            ],
            "event_categories": ["failure", "state change", "configuration change"],
            "sns_topic_arn": topic_arn,
        },
        "replication-instance": {
            "name": "paymig-prod-dms-instance-events",
            "enabled": True,
            "source_type": "replication-instance",
            "source_ids": [
                ref("aws_dms_replication_instance", instance_id, "replication_instance_id")
            ],
            "event_categories": [
                "failure",
                "failover",
                "low storage",
                "configuration change",
                "maintenance",
            ],
            "sns_topic_arn": topic_arn,
        },
    }


def test_key_policy_grants_usage_only_through_named_principals(prod_tf: dict[str, Any]) -> None:
    _, key = by_path(prod_tf, "aws_kms_key", "/replication/key/key")
    assert key["enable_key_rotation"] is True
    statements = {s["Sid"]: s for s in policy(key["policy"])["Statement"]}
    assert list(statements) == [
        "AccountRootAdministersKey",
        "AccountUsesKeyThroughDms",
        "DmsPublishesToEncryptedTopic",
        "AccountUsesKeyThroughSns",
    ]
    assert statements["AccountUsesKeyThroughDms"]["Condition"] == {
        "StringEquals": {
            "kms:CallerAccount": STACK_ACCOUNT,
            "kms:ViaService": "dms.us-east-2.amazonaws.com",
        }
    }
    assert statements["DmsPublishesToEncryptedTopic"] == {
        "Sid": "DmsPublishesToEncryptedTopic",
        "Effect": "Allow",
        "Principal": {"Service": "dms.amazonaws.com"},
        "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": STACK_ACCOUNT}},
    }
    assert statements["AccountUsesKeyThroughSns"]["Condition"] == {
        "StringEquals": {
            "kms:CallerAccount": STACK_ACCOUNT,
            "kms:ViaService": "sns.us-east-2.amazonaws.com",
        }
    }
    _, alias = by_path(prod_tf, "aws_kms_alias", "/replication/key/alias")
    assert alias["name"] == "alias/paymig-prod/dms"


# --------------------------------------------------------------------------- configured values


@pytest.fixture(scope="module")
def custom(prod_config: PaymigConfig) -> dict[str, Any]:
    """The tier in a small stack, every replication setting away from its default."""
    config = with_changes(
        prod_config,
        replication={
            "source": {**prod_config.replication.source.model_dump(mode="json"), "port": 5433},
            "table_rules": [
                {"schema_name": "public", "table_name": "%", "action": "include"},
                {"schema_name": "public", "table_name": "tmp_%", "action": "exclude"},
            ],
            "heartbeat_frequency_minutes": 7,
            "reverse_slot_name": "paymig_way_back",
            "iam_propagation_seconds": 45,
            "lob_mode": "full",
        },
    )
    w = world(config)
    add_replication(w)
    return w.synth()


def test_configured_values_reach_the_tier(custom: dict[str, Any]) -> None:
    source = endpoint(custom, "source-endpoint")
    assert source["postgres_settings"]["heartbeat_frequency"] == 7
    reverse = endpoint(custom, "reverse-source-endpoint")
    assert reverse["postgres_settings"]["slot_name"] == "paymig_way_back"
    (wait,) = resources(custom, "terraform_data").values()
    assert wait["provisioner"] == [{"local-exec": {"command": "sleep 45"}}]
    _, task = by_path(custom, "aws_dms_replication_task", "/replication/task")
    rules = json.loads(task["table_mappings"])["rules"]
    assert [(r["rule-action"], r["object-locator"]) for r in rules] == [
        ("include", {"schema-name": "public", "table-name": "%"}),
        ("exclude", {"schema-name": "public", "table-name": "tmp_%"}),
    ]
    assert json.loads(task["replication_task_settings"])["TargetMetadata"]["FullLobMode"] is True
    sg_id, _ = by_path(custom, "aws_security_group", "/replication/security-group")
    to_source = [
        r for r in resources(custom, "aws_vpc_security_group_egress_rule").values()
        if r["security_group_id"] == ref("aws_security_group", sg_id) and "cidr_ipv4" in r
    ]  # fmt: skip
    assert [(r["from_port"], r["to_port"], r["cidr_ipv4"]) for r in to_source] == [
        (5433, 5433, "192.0.2.0/24")
    ]


def test_no_credentials_anywhere(prod_tf: dict[str, Any], custom: dict[str, Any]) -> None:
    def keys(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [k for key, item in value.items() for k in [key, *keys(item)]]
        if isinstance(value, list):
            return [k for item in value for k in keys(item)]
        return []

    for doc in (prod_tf, custom):
        found = set(keys(replication_resources(doc, "paymig-prod")))
        assert found and not {"password", "username", "secret_string"} & found
