"""Environments kept apart (PCI DSS 6.5.3): own state bucket, and no named resource shared."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from paymig.cli import main
from paymig.config import PaymigConfig, load_config
from paymig.config.isolation import folder_configs, isolation_problems, shared_state_buckets

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "config"

#: The attribute holding each created resource's name, unique in an account or region.
NAMED: dict[str, str] = {
    "aws_iam_role": "name",
    "aws_s3_bucket": "bucket",
    "aws_sns_topic": "name",
    "aws_sqs_queue": "name",
    "aws_dynamodb_table": "name",
    "aws_lambda_function": "function_name",
    "aws_cloudwatch_metric_alarm": "alarm_name",
    "aws_cloudwatch_composite_alarm": "alarm_name",
    "aws_cloudwatch_dashboard": "dashboard_name",
    "aws_cloudwatch_log_group": "name",
    "aws_cloudwatch_log_metric_filter": "name",
    "aws_cloudwatch_event_rule": "name",
    "aws_sfn_state_machine": "name",
    "aws_secretsmanager_secret": "name",
    "aws_ssm_parameter": "name",
    "aws_kms_alias": "name",
    "aws_rds_cluster": "cluster_identifier",
    "aws_rds_cluster_parameter_group": "name",
    "aws_db_subnet_group": "name",
    "aws_dms_replication_instance": "replication_instance_id",
    "aws_dms_replication_subnet_group": "replication_subnet_group_id",
    "aws_dms_replication_task": "replication_task_id",
    "aws_dms_endpoint": "endpoint_id",
    "aws_dms_certificate": "certificate_id",
    "aws_dms_event_subscription": "name",
    "aws_ecr_repository": "name",
    "aws_lb": "name",
    "aws_lb_target_group": "name",
    "aws_wafv2_web_acl": "name",
    "aws_security_group": "name",
    "aws_appautoscaling_policy": "name",
    "aws_acm_certificate": "domain_name",
    "aws_route53_record": "name",
}
#: Literal name-like attributes that name no resource of the stack (or one scoped inside
#: another resource, such as an alias of a function): they may be equal across environments.
NOT_NAMES = {
    ("aws_lambda_alias", "name"),  # blue/green, per function
    ("aws_lambda_permission", "statement_id"),  # per function's policy
    ("aws_dms_endpoint", "database_name"),
    ("aws_dms_endpoint", "engine_name"),
    ("aws_rds_cluster", "database_name"),  # a database inside the cluster
    ("aws_rds_cluster", "final_snapshot_identifier"),
    ("aws_rds_cluster_instance", "ca_cert_identifier"),  # AWS's CA
    ("aws_route53_record", "set_identifier"),  # per record name
    ("aws_route53_record", "zone_id"),  # the operator's zone
    ("aws_vpc_endpoint", "service_name"),  # AWS's service
    ("aws_appautoscaling_target", "resource_id"),
}
#: Resources whose names AWS fixes for the whole account (docs/environments.md).
ACCOUNT_WIDE = {("aws_iam_role", "dms-vpc-role"), ("aws_iam_role", "dms-cloudwatch-logs-role")}


def _is_name_like(key: str) -> bool:
    return key in {"name", "bucket", "name_prefix"} or key.endswith(("_name", "_identifier", "_id"))


def _names(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(type, name) of every named resource; every literal name-like field is classified."""
    found: set[tuple[str, str]] = set()
    for kind, items in document["resource"].items():
        for body in items.values():
            for key, value in body.items():
                literal = isinstance(value, str) and "${" not in value
                if not literal or not _is_name_like(key) or (kind, key) in NOT_NAMES:
                    continue
                assert NAMED.get(kind) == key, f"classify {kind}.{key} in NAMED or NOT_NAMES"
                found.add((kind, value))
    return found


def test_shipped_environments_have_their_own_state_buckets() -> None:
    configs, unreadable = folder_configs(CONFIG_DIR)
    assert unreadable == []
    assert {Path(p).stem for p in configs} == {"prod", "staging", "rehearsal"}
    assert shared_state_buckets(configs) == []
    assert len({(c.state.bucket, c.state.key_prefix) for c in configs.values()}) == len(configs)
    assert len({c.state_key for c in configs.values()}) == len(configs)


def _write(folder: Path, env: str, bucket: str) -> Path:
    text = (CONFIG_DIR / "staging.yaml").read_text(encoding="utf-8")
    text = text.replace("environment: staging", f"environment: {env}")
    text = text.replace("example-paymig-staging-tfstate", bucket)
    path = folder / f"{env}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_shared_bucket_is_named_with_both_files(tmp_path: Path) -> None:
    first = _write(tmp_path, "qa", "acme-tfstate")
    second = _write(tmp_path, "uat", "acme-tfstate")
    _write(tmp_path, "demo", "acme-demo-tfstate")
    (tmp_path / "broken.yaml").write_text("environment: [\n")
    (tmp_path / ".checkov.yaml").write_text("skip-check: []\n")  # hidden: not an environment
    problems, unreadable = isolation_problems(second, load_config(second))
    assert problems == [
        f"{second}: state.bucket 'acme-tfstate' is also the state bucket of {first}; each "
        "environment needs its own (docs/environments.md)"
    ]
    assert len(unreadable) == 1 and unreadable[0].startswith(f"{tmp_path / 'broken.yaml'}:")
    demo = tmp_path / "demo.yaml"
    assert isolation_problems(demo, load_config(demo))[0] == []


def test_check_refuses_a_shared_bucket_before_synthesizing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(CONFIG_DIR / "certs", tmp_path / "certs")
    _write(tmp_path, "qa", "acme-tfstate")
    second = _write(tmp_path, "uat", "acme-tfstate")
    out = tmp_path / "out"
    assert main(["check", "--config", str(second), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"paymig: {second}: state.bucket 'acme-tfstate' is also")
    assert not out.exists()


@pytest.mark.slow
def test_staging_and_prod_name_every_resource_apart(
    prod_tf: dict[str, Any],
    staging_synth: Any,
    prod_config: PaymigConfig,
    staging_config: PaymigConfig,
) -> None:
    from paymig.infra.replication import DMS_LOGS_ROLE, DMS_VPC_ROLE

    assert {DMS_VPC_ROLE, DMS_LOGS_ROLE} == {name for _, name in ACCOUNT_WIDE}
    prod, staging = _names(prod_tf), _names(staging_synth.document)
    # Every kind the issue names is compared: roles, buckets, topics, tables, functions,
    # alarms, secrets, parameters, key aliases.
    kinds = {kind for kind, _ in prod}
    assert {"aws_iam_role", "aws_s3_bucket", "aws_sns_topic", "aws_dynamodb_table",
            "aws_lambda_function", "aws_cloudwatch_metric_alarm", "aws_secretsmanager_secret",
            "aws_ssm_parameter", "aws_kms_alias"} <= kinds  # fmt: skip
    assert len(prod) > 90
    assert prod & staging <= ACCOUNT_WIDE
    # As shipped, prod creates the account-wide DMS roles and staging only refers to them.
    assert prod_config.replication.create_service_roles is True
    assert staging_config.replication.create_service_roles is False
    assert prod >= ACCOUNT_WIDE and not ACCOUNT_WIDE & staging
    # Separate state too: another bucket, another key.
    assert (
        prod_tf["terraform"]["backend"]["s3"]["bucket"]
        != staging_synth.document["terraform"]["backend"]["s3"]["bucket"]
    )
