"""The finish guard stops `terraform plan` itself, before anything is destroyed.

A folder holding only the AWS provider (pointed at the moto server) and the guard's data
source, as `test_finish_stack` proves the synthesized stack holds it, is planned by the
real Terraform with the provider from the offline mirror. moto's DynamoDB answers
GetItem as AWS does; the data source is read during the plan because its arguments are
literals, and a failed postcondition fails the plan (Terraform's documented behaviour for
custom conditions on data sources: "Terraform evaluates postconditions ... after reading
the data source", and an unmet condition is an error that halts the plan).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from audit_table import create_audit_table
from paymig.errors import CommandFailedError
from paymig.infra.finish_guard import GUARD_CONDITION, guard_message
from paymig.local.emulator import MotoServer
from paymig.naming import AUDIT_PARTITION_KEY, AUDIT_SORT_KEY
from paymig.runtime.controller.stage import StageStore
from paymig.terraform import DEFAULT_MIRROR, Terraform

pytestmark = pytest.mark.slow

TABLE = "paymig-prod-migration-audit"


@pytest.fixture
def planned(moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    if not DEFAULT_MIRROR.is_dir():
        pytest.skip("no offline provider mirror")
    moto_server.reset()
    for key, value in moto_server.client_environment().items():
        monkeypatch.setenv(key, value)
    dynamodb = boto3.client("dynamodb", region_name="us-east-2")
    create_audit_table(dynamodb, TABLE)
    endpoint = moto_server.endpoint_url
    document = {
        "terraform": {
            "required_providers": {"aws": {"source": "hashicorp/aws", "version": "5.100.0"}}
        },
        "provider": {
            "aws": [
                {
                    "region": "us-east-2",
                    "access_key": "testing",
                    "secret_key": "testing",
                    "skip_credentials_validation": True,
                    "skip_requesting_account_id": True,
                    "skip_metadata_api_check": "true",
                    "endpoints": [{"dynamodb": endpoint, "sts": endpoint}],
                }
            ]
        },
        "data": {
            "aws_dynamodb_table_item": {
                "stage": {
                    "table_name": TABLE,
                    "key": json.dumps(
                        {AUDIT_PARTITION_KEY: {"S": "STAGE"}, AUDIT_SORT_KEY: {"S": "current"}},
                        sort_keys=True,
                    ),
                    "lifecycle": {
                        "postcondition": [
                            {"condition": GUARD_CONDITION, "error_message": guard_message("prod")}
                        ]
                    },
                }
            }
        },
    }
    (tmp_path / "main.tf.json").write_text(json.dumps(document), encoding="utf-8")
    terraform = Terraform(tmp_path, extra_env={"TF_DATA_DIR": str(tmp_path / ".terraform")})
    terraform.init()
    return terraform, StageStore(dynamodb, TABLE)


def plan(terraform: Terraform) -> str:
    return terraform.run("plan", "-no-color", "-input=false", timeout=300).stdout


@pytest.mark.parametrize("stored", [None, "replicating", "cut-over"])
def test_the_plan_fails_until_the_stage_is_complete(planned: Any, stored: str | None) -> None:
    terraform, stages = planned
    if stored is not None:
        stages.move(stages.read(), stored, now=_now(), actor="a", reason="r")
    with pytest.raises(CommandFailedError) as failed:
        plan(terraform)
    message = str(failed.value)
    if stored is None:  # no item: the data source's own error stops the plan
        assert "terraform plan failed" in message
    else:
        assert "Resource postcondition failed" in message or guard_message("prod") in message, (
            message
        )


def test_the_plan_passes_once_complete(planned: Any) -> None:
    terraform, stages = planned
    cut = stages.move(stages.read(), "cut-over", now=_now(), actor="a", reason="r")
    stages.move(cut, "complete", now=_now(), actor="a", reason="finish")
    out = plan(terraform)
    assert "No changes." in out


def _now() -> datetime:
    return datetime.now(UTC)
