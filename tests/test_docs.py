"""Generated documentation stays in step with the code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from paymig.config_docs import END, START, render, splice

REPO = Path(__file__).resolve().parents[1]


def test_readme_config_reference_is_fresh() -> None:
    readme = (REPO / "README.md").read_text()
    assert splice(readme, render()) == readme, "run: python -m paymig.config_docs --write"


def test_reference_lists_every_operator_field_as_required() -> None:
    text = render()
    must_set = text.split("#### All fields")[0]
    assert "| `dns.hosted_zone_id` |" in must_set
    assert "| `onprem.customer_gateway_ip` |" in must_set
    assert "| `network.vpc_cidr` |" not in must_set
    assert "| `network.vpc_cidr` | `IPv4Network` | `10.0.0.0/16` |" in text
    assert "| `dns.zone_name` | `str` | **required** |" in text


def test_splice_requires_markers() -> None:
    try:
        splice("no markers", "x")
    except ValueError as exc:
        assert "markers" in str(exc)
    else:
        raise AssertionError("expected ValueError")
    assert splice(f"a{START}old{END}b", f"{START}new{END}") == f"a{START}new{END}b"


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
