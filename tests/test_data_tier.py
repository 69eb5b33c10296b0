"""Data tier (requirement 2) and credentials (requirement 7) on the synthesized prod stack."""

from __future__ import annotations

from typing import Any

from tests.tf_helpers import by_path, only, policy, ref, resources


def cluster(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return only(doc, "aws_rds_cluster")


def data_key(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return by_path(doc, "aws_kms_key", "/data/key/key")


def test_engine_and_version_pinned(prod_tf: dict[str, Any]) -> None:
    _, c = cluster(prod_tf)
    assert c["engine"] == "aurora-postgresql"
    assert c["engine_version"] == "14.17"
    for instance in resources(prod_tf, "aws_rds_cluster_instance").values():
        assert instance["engine_version"] == "14.17"


def test_writer_and_reader_in_different_azs(prod_tf: dict[str, Any]) -> None:
    cluster_id, _ = cluster(prod_tf)
    instances = sorted(
        resources(prod_tf, "aws_rds_cluster_instance").values(), key=lambda i: i["promotion_tier"]
    )
    assert len(instances) == 2
    assert [i["availability_zone"] for i in instances] == ["us-east-2a", "us-east-2b"]
    for instance in instances:
        assert instance["cluster_identifier"] == ref("aws_rds_cluster", cluster_id)
        assert instance["instance_class"] == "db.r6g.large"
        assert instance["publicly_accessible"] is False
        assert instance["ca_cert_identifier"] == "rds-ca-rsa2048-g1"
        assert instance["performance_insights_enabled"] is True
        assert instance["monitoring_interval"] == 60


def test_only_in_the_data_subnets(prod_tf: dict[str, Any]) -> None:
    group_id, group = only(prod_tf, "aws_db_subnet_group")
    data_subnets = [
        ref("aws_subnet", by_path(prod_tf, "aws_subnet", f"/network/data-{z}")[0])
        for z in ("us-east-2a", "us-east-2b", "us-east-2c")
    ]
    assert group["subnet_ids"] == data_subnets
    _, c = cluster(prod_tf)
    assert c["db_subnet_group_name"] == ref("aws_db_subnet_group", group_id, "name")


def test_storage_pi_and_secret_encrypted_with_the_data_cmk(prod_tf: dict[str, Any]) -> None:
    key_id, key = data_key(prod_tf)
    key_arn = ref("aws_kms_key", key_id, "arn")
    _, c = cluster(prod_tf)
    assert c["storage_encrypted"] is True
    assert c["kms_key_id"] == key_arn
    assert c["master_user_secret_kms_key_id"] == key_arn
    for instance in resources(prod_tf, "aws_rds_cluster_instance").values():
        assert instance["performance_insights_kms_key_id"] == key_arn
    assert key["enable_key_rotation"] is True


ACCOUNT = "${data.aws_caller_identity.caller.account_id}"


def test_data_key_policy_grants_root_admin_and_only_named_services_usage(
    prod_tf: dict[str, Any],
) -> None:
    _, key = data_key(prod_tf)
    statements = {s["Sid"]: s for s in policy(key["policy"])["Statement"]}
    assert list(statements) == [
        "AccountRootAdministersKey",
        "RdsAndSecretsManagerUseKey",
        "CloudWatchLogsUsesKey",
    ]
    usage = statements["RdsAndSecretsManagerUseKey"]
    assert usage["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert usage["Condition"] == {
        "StringEquals": {
            "kms:ViaService": [
                "rds.us-east-2.amazonaws.com",
                "secretsmanager.us-east-2.amazonaws.com",
            ],
            "kms:CallerAccount": ACCOUNT,
        }
    }
    assert "kms:Decrypt" not in statements["AccountRootAdministersKey"]["Action"]
    # The key admits exactly the cluster's exported log group (written by the same call).
    assert statements["CloudWatchLogsUsesKey"]["Condition"] == {
        "ArnEquals": {
            "kms:EncryptionContext:aws:logs:arn": [
                f"arn:aws:logs:us-east-2:{ACCOUNT}:log-group:"
                "/aws/rds/cluster/paymig-prod-aurora/postgresql"
            ]
        }
    }


def test_tls_enforced_and_audit_logging(prod_tf: dict[str, Any]) -> None:
    from paymig.logins import PGAUDIT_PARAMETERS

    group_id, group = only(prod_tf, "aws_rds_cluster_parameter_group")
    assert group["family"] == "aurora-postgresql14"
    params = {p["name"]: (p["value"], p["apply_method"]) for p in group["parameter"]}
    assert params == {
        "rds.force_ssl": ("1", "immediate"),
        "ssl_min_protocol_version": ("TLSv1.2", "immediate"),
        "log_connections": ("1", "immediate"),
        "log_disconnections": ("1", "immediate"),
        "shared_preload_libraries": ("pgaudit,pg_stat_statements", "pending-reboot"),
        # Writes, DDL and role changes; never `read` (paymig.logins explains why).
        "pgaudit.log": ("ddl,role,write", "immediate"),
        "pgaudit.log_parameter": ("0", "immediate"),
        "pgaudit.log_catalog": ("0", "immediate"),
        # Static: set from the first apply so the way back needs no reboot at cutover.
        "rds.logical_replication": ("1", "pending-reboot"),
        "log_min_duration_statement": ("1000", "immediate"),
        "log_lock_waits": ("1", "immediate"),
    }
    assert {k: params[k][0] for k in PGAUDIT_PARAMETERS} == PGAUDIT_PARAMETERS
    _, c = cluster(prod_tf)
    assert c["db_cluster_parameter_group_name"] == ref(
        "aws_rds_cluster_parameter_group", group_id, "name"
    )


def test_protection_backups_and_logs(prod_tf: dict[str, Any]) -> None:
    _, c = cluster(prod_tf)
    assert c["deletion_protection"] is True
    assert c["backup_retention_period"] == 35
    assert c["copy_tags_to_snapshot"] is True
    assert c["skip_final_snapshot"] is False
    assert c["final_snapshot_identifier"] == "paymig-prod-aurora-final"
    assert c["enabled_cloudwatch_logs_exports"] == ["postgresql"]
    assert c["iam_database_authentication_enabled"] is True
    _, log_group = by_path(prod_tf, "aws_cloudwatch_log_group", "/data/logs")
    assert log_group["name"] == "/aws/rds/cluster/paymig-prod-aurora/postgresql"
    assert log_group["kms_key_id"] == ref("aws_kms_key", data_key(prod_tf)[0], "arn")


def test_enhanced_monitoring_role(prod_tf: dict[str, Any]) -> None:
    role_id, role = by_path(prod_tf, "aws_iam_role", "/data/monitoring-role")
    assert policy(role["assume_role_policy"])["Statement"][0]["Principal"] == {
        "Service": "monitoring.rds.amazonaws.com"
    }
    _, attachment = by_path(prod_tf, "aws_iam_role_policy_attachment", "/data/monitoring-policy")
    assert (
        attachment["policy_arn"]
        == "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
    )
    for instance in resources(prod_tf, "aws_rds_cluster_instance").values():
        assert instance["monitoring_role_arn"] == ref("aws_iam_role", role_id, "arn")


def test_credentials_managed_by_rds_and_rotated_every_30_days(prod_tf: dict[str, Any]) -> None:
    cluster_id, c = cluster(prod_tf)
    assert c["manage_master_user_password"] is True
    assert "master_password" not in c
    assert c["master_username"] == "paymig_admin"
    _, rotation = by_path(prod_tf, "aws_secretsmanager_secret_rotation", "/data/secret-rotation")
    assert (
        rotation["secret_id"]
        == f"${{aws_rds_cluster.{cluster_id}.master_user_secret[0].secret_arn}}"
    )
    assert rotation["rotation_rules"] == {"automatically_after_days": 30}


def test_security_group_admits_exactly_its_clients_on_5432(prod_tf: dict[str, Any]) -> None:
    sg_id, sg = by_path(prod_tf, "aws_security_group", "/data/sg")
    assert "ingress" not in sg and "egress" not in sg
    _, c = cluster(prod_tf)
    assert c["vpc_security_group_ids"] == [ref("aws_security_group", sg_id)]
    group = ref("aws_security_group", sg_id)
    assert [
        r for r in resources(prod_tf, "aws_vpc_security_group_egress_rule").values()
        if r["security_group_id"] == group
    ] == []  # fmt: skip
    ingress = {
        r["referenced_security_group_id"]: r
        for r in resources(prod_tf, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == group
    }
    clients = [
        "/app/api/sg", "/checks/db-setup/sg", "/checks/validation/sg",
        "/credentials/rotation/sg", "/replication/security-group", "/validation/function/sg",
    ]  # fmt: skip
    expected = {
        ref("aws_security_group", by_path(prod_tf, "aws_security_group", c)[0]) for c in clients
    }
    assert set(ingress) == expected
    for rule in ingress.values():
        assert "cidr_ipv4" not in rule
        assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 5432, 5432)
        assert rule["description"]
        # The client's own half of the path: egress to this group on 5432.
        assert [
            e for e in resources(prod_tf, "aws_vpc_security_group_egress_rule").values()
            if e["security_group_id"] == rule["referenced_security_group_id"]
            and e.get("referenced_security_group_id") == group
            and (e["from_port"], e["to_port"]) == (5432, 5432)
        ]  # fmt: skip
