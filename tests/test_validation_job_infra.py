"""The validation job's infra: the state machine synthesized in a small stack, the function spec.

The stack composes the job's function like its other VPC functions (paths, logins, CA
bundles), so here the construct gets the function's ARN; what the function needs is
checked on :func:`job_function_spec`, and its package is imported from the zip alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from paymig.config import PaymigConfig, load_config
from paymig.infra.validation_job_definition import state_machine_definition
from tests.tf_helpers import by_path, ref

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

ACCOUNT = "111122223333"
FUNCTION = "arn:aws:lambda:us-east-2:111122223333:function:paymig-prod-validation-job"
LOG_GROUP = "arn:aws:logs:us-east-2:111122223333:log-group:/aws/vendedlogs/states/x"
TABLE = "arn:aws:dynamodb:us-east-2:111122223333:table/paymig-prod-migration-audit"
KEY = "arn:aws:kms:us-east-2:111122223333:key/11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def synth() -> dict[str, Any]:
    from cdktf import TerraformStack, Testing
    from cdktf_cdktf_provider_aws.provider import AwsProvider

    from paymig.infra.validation_job import ValidationJob, ValidationJobProps

    app = Testing.app()
    stack = TerraformStack(app, "paymig-prod")
    AwsProvider(stack, "aws", region="us-east-2")
    props = ValidationJobProps("paymig-prod", "us-east-2", ACCOUNT, FUNCTION, LOG_GROUP, 2)
    ValidationJob(stack, "validation-job", props)
    document: dict[str, Any] = json.loads(Testing.synth(stack))
    return document


def _one(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    (resource,) = doc["resource"][kind].values()
    return dict(resource)


def test_a_standard_state_machine_runs_the_definition_logged_and_traced(
    synth: dict[str, Any],
) -> None:
    machine = _one(synth, "aws_sfn_state_machine")
    assert (machine["name"], machine["type"]) == ("paymig-prod-validation-job", "STANDARD")
    assert json.loads(machine["definition"]) == state_machine_definition(FUNCTION, 2)
    assert machine["logging_configuration"] == {
        "include_execution_data": True,
        "level": "ALL",
        "log_destination": f"{LOG_GROUP}:*",
    }
    assert machine["tracing_configuration"] == {"enabled": True}
    role_id = next(iter(synth["resource"]["aws_iam_role"]))
    policy_id = next(iter(synth["resource"]["aws_iam_role_policy"]))
    assert machine["role_arn"] == f"${{aws_iam_role.{role_id}.arn}}"
    assert machine["depends_on"] == [f"aws_iam_role_policy.{policy_id}"]


def test_the_role_may_invoke_only_the_job_function(synth: dict[str, Any]) -> None:
    role = _one(synth, "aws_iam_role")
    trust = json.loads(role["assume_role_policy"])["Statement"]
    assert trust == [
        {
            "Sid": "TrustService",
            "Effect": "Allow",
            "Principal": {"Service": "states.amazonaws.com"},
            "Action": ["sts:AssumeRole"],
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }
    ]
    statements = {
        s["Sid"]: s for s in json.loads(_one(synth, "aws_iam_role_policy")["policy"])["Statement"]
    }
    assert statements["InvokeTheJobFunction"]["Action"] == ["lambda:InvokeFunction"]
    assert statements["InvokeTheJobFunction"]["Resource"] == [FUNCTION, f"{FUNCTION}:*"]
    assert statements["DeliverExecutionLogs"]["Resource"] == "*"
    assert all(a.startswith("logs:") for a in statements["DeliverExecutionLogs"]["Action"])
    assert all(a.startswith("xray:") for a in statements["WriteTraces"]["Action"])
    assert set(statements) == {"InvokeTheJobFunction", "DeliverExecutionLogs", "WriteTraces"}


def test_the_function_spec_names_what_its_code_calls(prod_config: PaymigConfig) -> None:
    from paymig.infra.validation_job import JOB_APIS, job_function_spec, progress_widget

    spec = job_function_spec(prod_config, TABLE, KEY)
    assert (spec.function_name, spec.handler) == (
        "paymig-prod-validation-job",
        "paymig.lambdas.validation_job.handler",
    )
    assert (spec.timeout_seconds, spec.memory_mb, spec.reserved_concurrency) == (900, 1769, 2)
    assert spec.apis == JOB_APIS == ("ssm", "secretsmanager", "dynamodb", "monitoring")
    actions = {s["Sid"]: (s["Action"], s["Resource"]) for s in spec.statements}
    assert actions["PassCheckpointsAndVerdict"] == (
        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"],
        [TABLE],
    )
    assert actions["ProgressMetrics"] == (["cloudwatch:PutMetricData"], "*")
    metric = next(s for s in spec.statements if s["Sid"] == "ProgressMetrics")
    assert metric["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Paymig/Validation"}}
    env = spec.environment
    assert json.loads(env["PAYMIG_VALIDATION"]) == prod_config.validation.model_dump(mode="json")
    assert env["PAYMIG_AUDIT_TABLE"] == "paymig-prod-migration-audit"
    assert not any(k.startswith("PAYMIG_DB_") for k in env)  # written by connecting the databases
    widget = progress_widget("prod").to_json("us-east-2", 0, 0)["properties"]
    assert [m[1] for m in widget["metrics"]] == [
        "RangesTotal",
        "RangesDone",
        "RowsCompared",
        "DifferingKeys",
    ]
    assert all(m[0] == "Paymig/Validation" and m[2:4] == ["Environment", "prod"]
               for m in widget["metrics"])  # fmt: skip


def test_the_package_imports_the_handler_with_nothing_but_the_lambda_runtime(
    prod_config: PaymigConfig, tmp_path: Path
) -> None:
    """The zip alone, plus what the python3.11 runtime brings (boto3), imports the handler."""
    from paymig.infra.lambda_package import build_package
    from paymig.infra.validation_job import job_function_spec

    spec = job_function_spec(prod_config, TABLE, KEY)
    package = build_package("validation-job", spec.modules, spec.distributions)
    with zipfile.ZipFile(package.path) as archive:
        archive.extractall(tmp_path / "task")
    runtime = tmp_path / "runtime"  # boto3 and its dependencies, as the Lambda runtime has
    runtime.mkdir()
    import boto3

    site = Path(boto3.__file__).parents[1]
    for name in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"):
        (runtime / name).symlink_to(site / name)
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]];"
        "import paymig.lambdas.validation_job as job, psycopg;"
        "print(job.handler.__module__, psycopg.__file__.startswith(sys.argv[1]))"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, str(tmp_path / "task"), str(runtime)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["paymig.lambdas.validation_job", "True"]


# --------------------------------------------------------------------------- in the stack


def test_the_stack_runs_the_job_over_the_reader_and_the_validation_logins(
    prod_tf: dict[str, Any],
) -> None:
    """The job's function reads both servers with the validator's login, and Aurora also
    through the reader endpoint (validation.use_aurora_reader), all verify-full."""
    fn_id, fn = by_path(prod_tf, "aws_lambda_function", "/validation/function/function")
    cluster_id, _ = by_path(prod_tf, "aws_rds_cluster", "/data/cluster")
    variables = fn["environment"]["variables"]
    declared = {name: json.loads(variables[f"PAYMIG_DB_{name}"])
                for name in ("SOURCE", "AURORA", "AURORA_READER")}  # fmt: skip
    assert "PAYMIG_DB_SOURCE_STANDBY" not in variables  # prod names no standby
    assert declared["AURORA_READER"]["host"] == ref(
        "aws_rds_cluster", cluster_id, "reader_endpoint"
    )
    assert declared["AURORA"]["host"] == ref("aws_rds_cluster", cluster_id, "endpoint")
    assert declared["AURORA_READER"]["secret_arn"] == declared["AURORA"]["secret_arn"]
    assert all(d["sslmode"] == "verify-full" for d in declared.values())
    secrets = {k: s["name"] for k, s in prod_tf["resource"]["aws_secretsmanager_secret"].items()}
    for name, server in (("SOURCE", "source"), ("AURORA", "aurora")):
        secret_id = declared[name]["secret_arn"].split(".")[1]
        assert secrets[secret_id] == f"paymig-prod/{server}/validation"
    _, machine = by_path(prod_tf, "aws_sfn_state_machine", "/validation/job/state-machine")
    log_id, log = by_path(prod_tf, "aws_cloudwatch_log_group", "prod/validation/log-group")
    assert log["name"] == "/aws/vendedlogs/states/paymig-prod-validation-job"
    assert machine["logging_configuration"]["log_destination"] == (
        ref("aws_cloudwatch_log_group", log_id, "arn") + ":*"
    )
    assert json.loads(machine["definition"]) == state_machine_definition(
        ref("aws_lambda_function", fn_id, "arn"), 1
    )


def test_a_standby_is_read_from_the_source_dsn_keywords() -> None:
    from paymig.errors import ConfigError
    from paymig.infra.onprem import OnPremDatabase
    from paymig.infra.validation_tier import source_standby

    config = load_config(REPO / "config" / "prod.yaml")
    source = OnPremDatabase("pg.example.com", 5432, "payments", network=None)  # type: ignore[arg-type]
    assert source_standby(config, source) is None

    def with_dsn(dsn: str) -> Any:
        return config.model_copy(
            update={"validation": config.validation.model_copy(update={"source_replica_dsn": dsn})}
        )

    standby = source_standby(with_dsn("host=pg-standby.example.com port=6432"), source)
    assert standby is not None
    assert (standby.host, standby.port, standby.dbname, standby.server) == (
        "pg-standby.example.com", 6432, "payments", "source",
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"^validation.source_replica_dsn: not libpq keywords"):
        source_standby(with_dsn("host"), source)
    with pytest.raises(ConfigError, match=r"^validation.source_replica_dsn: names no host$"):
        source_standby(with_dsn("port=5432"), source)
    with pytest.raises(ConfigError, match="must not hold a password"):
        source_standby(with_dsn("host=h password=x"), source)
