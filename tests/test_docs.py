"""Generated documentation stays in step with the code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel

from paymig.config import ObservabilityConfig, UsageConfig
from paymig.config_docs import OUTPUT, render
from paymig.config_docs.__main__ import main
from paymig.config_docs.labels import type_label, yaml_text
from paymig.config_docs.reference import anchor

REPO = Path(__file__).resolve().parents[1]


def _description(model: type[BaseModel], name: str) -> str:
    """A field's description as the reference prints it in a table cell."""
    return (model.model_fields[name].description or "").replace("|", "\\|")


def test_configuration_reference_is_fresh() -> None:
    committed = (REPO / OUTPUT).read_text(encoding="utf-8")
    assert committed == render(), "run: python -m paymig.config_docs --write"


def test_reference_lists_every_operator_field_as_required() -> None:
    text = render()
    must_set = text.split("## All fields")[0]
    assert "| `dns.hosted_zone_id` |" in must_set
    assert "| `onprem.customer_gateway_ip` |" in must_set
    assert "| `network.vpc_cidr` |" not in must_set
    assert "| `network.vpc_cidr` | IPv4 CIDR | `10.0.0.0/16` |" in text
    assert "| `dns.zone_name` | str | **required** |" in text


def test_types_and_defaults_read_as_yaml_not_python() -> None:
    lines = render().splitlines()
    emails = (
        "| `observability.notification_emails` | list[email] | `[]` | "
        f"{_description(ObservabilityConfig, 'notification_emails')} |"
    )
    alarms = (
        "| `observability.alarms` | map of alarm → alarm settings | "
        "6 entries, [table below](#default-of-observabilityalarms) | "
        f"{_description(ObservabilityConfig, 'alarms')} |"
    )
    optional = (
        "| `usage.migration_start` | str (optional) | unset | "
        f"{_description(UsageConfig, 'migration_start')} |"
    )
    entry = (
        "| `observability.alarms.<alarm>.period_seconds` | int | `60` | Evaluation period: 10 "
        "or 30 (only for a metric published at high resolution) or a multiple of 60. |"
    )
    for row in (emails, alarms, optional, entry):
        assert row in lines
    assert (
        "| `app.listener_weights` | map of `blue` or `green` → int | `{blue: 100, green: 0}` |"
        in ("\n".join(lines))
    )
    assert "| `database.engine_version` | str | `'14.17'` |" in "\n".join(lines)
    assert "| `replication.table_rules[].action` | `include` or `exclude` | **required** |" in (
        "\n".join(lines)
    )
    for repr_noise in (
        "Annotated",
        "FieldInfo",
        "Literal[",
        "AlarmSettings(",
        "TableRule(",
        "None",
    ):
        assert repr_noise not in "\n".join(lines), repr_noise


def test_a_nested_default_has_its_own_table() -> None:
    text = render()
    heading = "### Default of `observability.alarms`"
    assert anchor(heading.removeprefix("### ")) == "default-of-observabilityalarms"
    table = text.split(heading + "\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert table[:2] == [
        "| alarm | threshold | period_seconds | evaluation_periods | datapoints_to_alarm "
        "| treat_missing_data | missing_data_reason | high_resolution |",
        "|---|---|---|---|---|---|---|---|",
    ]
    # Rows whose defaults no open change touches, exactly; the first column, every alarm.
    assert [row.split(" | ")[0] for row in table[2:]] == [
        "| `5xx-rate`", "| `p99-latency`", "| `cdc-latency`",
        "| `dms-task-failure`", "| `aurora-cpu`", "| `replica-lag`",
    ]  # fmt: skip
    assert table[4:] == [
        "| `cdc-latency` | `30.0` | `60` | `3` | `2` | `breaching` "
        "| A CDC task that stops reporting has stopped replicating. | `false` |",
        "| `dms-task-failure` | `0.0` | `60` | `5` | `3` | `notBreaching` "
        "| Error lines are counted only when they happen. | `false` |",
        "| `aurora-cpu` | `80.0` | `60` | `3` | `2` | `breaching` "
        "| A writer that stops reporting CPU is down or unreachable. | `false` |",
        "| `replica-lag` | `1000.0` | `60` | `3` | `2` | `breaching` "
        "| A reader that stops reporting lag has lost replication. | `false` |",
    ]
    rules = text.split("### Default of `replication.table_rules`\n\n", 1)[1].splitlines()
    assert rules[:3] == [
        "| schema_name | table_name | action |",
        "|---|---|---|",
        "| `public` | `'%'` | `include` |",
    ]
    assert "| `replication.table_rules` | list[table rule] | 1 entry, [table below]" in text


def test_type_labels_cover_unions_and_refuse_an_unnamed_type() -> None:
    assert type_label(int | str) == "int or str"
    assert type_label(dict[int, int]) == "map of int → int"
    assert type_label(list[Literal[19, 20, 21]]) == "list[`19`, `20` or `21`]"
    assert type_label(Literal["ikev2"]) == "`ikev2`"
    with pytest.raises(TypeError, match="no readable name for the type"):
        type_label(set[int])
    with pytest.raises(TypeError, match="no readable name for the type"):
        type_label(complex)
    assert yaml_text(["state change", "failure"]) == "[state change, failure]"
    assert yaml_text(True) == "true"


def test_command_line_writes_checks_and_refuses_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check"], tmp_path) == 1
    assert capsys.readouterr().err == (
        f"{OUTPUT} is stale: run `python -m paymig.config_docs --write`\n"
    )
    assert main(["--write"], tmp_path) == 0
    assert (tmp_path / OUTPUT).read_text(encoding="utf-8") == render()
    assert main(["--check"], tmp_path) == 0
    (tmp_path / OUTPUT).write_text("old\n", encoding="utf-8")
    assert main(["--check"], tmp_path) == 1
    capsys.readouterr()
    assert main([], tmp_path) == 0
    assert capsys.readouterr().out == render()
    assert main(["--bogus"], tmp_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown arguments '--bogus'" in err


def test_cdktf_entry_point_synthesizes_the_selected_environment(tmp_path: Path) -> None:
    """What `cdktf synth` runs (see cdktf.json), with CDKTF_OUTDIR as the CLI sets it."""
    config = json.loads((REPO / "cdktf.json").read_text())
    assert config["app"] == ".venv/bin/python -m paymig.infra.main"
    env = {**os.environ, "PAYMIG_ENV": "staging", "CDKTF_OUTDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "paymig.infra.main"], env=env, capture_output=True, text=True,
        check=False, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads((tmp_path / "stacks" / "paymig-staging" / "cdk.tf.json").read_text())
    assert doc["resource"]["aws_vpc"]
    bad = subprocess.run(
        [sys.executable, "-m", "paymig.infra.main"], env={**env, "PAYMIG_ENV": "qa"},
        capture_output=True, text=True, check=False, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 2
    assert (
        bad.stderr.startswith("paymig: ") and "no configuration for environment 'qa'" in bad.stderr
    )
