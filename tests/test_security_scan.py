"""The checkov gate: zero failed checks, few and justified skips, none stale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from paymig.errors import CommandFailedError
from paymig.security_scan import find_checkov_config, run_checkov, security_gate, skipped_checks

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / ".checkov.yaml"


def test_skips_live_only_in_checkov_yaml_each_justified() -> None:
    assert find_checkov_config(REPO) == CONFIG
    skips = skipped_checks(CONFIG)
    assert 0 < len(skips) <= 10
    lines = CONFIG.read_text().splitlines()
    for check in skips:
        (index,) = [i for i, line in enumerate(lines) if line.strip() == f"- {check}"]
        comment = []
        for line in reversed(lines[:index]):
            if not line.strip().startswith("#"):
                break
            comment.insert(0, line.strip("# ").strip())
        assert comment and comment[0].startswith(f"{check} ("), f"{check} has no justification"
        assert len(" ".join(comment)) > 60


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["prod_synth", "staging_synth"])
def test_zero_failed_checks(stack: str, request: pytest.FixtureRequest) -> None:
    synth: Any = request.getfixturevalue(stack)
    result = security_gate(synth.json_path, CONFIG)
    assert result.failed == []
    assert result.passed > 100


@pytest.mark.slow
def test_no_skip_is_stale(prod_synth: Any) -> None:
    """Every skipped check must really fail without its skip; otherwise remove the skip."""
    result = run_checkov(prod_synth.json_path, config_file=None)
    failing = {f.check_id for f in result.failed}
    stale = [check for check in skipped_checks(CONFIG) if check not in failing]
    assert stale == []
    assert failing == set(skipped_checks(CONFIG))


def test_gate_names_failed_checks(tmp_path: Path) -> None:
    stack = tmp_path / "cdk.tf.json"
    stack.write_text('{"resource": {"aws_s3_bucket": {"logs": {"bucket": "b"}}}}')
    with pytest.raises(
        CommandFailedError, match=r"checkov: \d+ failed check\(s\) in .*CKV\S* aws_s3_bucket\.logs"
    ):
        security_gate(stack, CONFIG)
    empty = tmp_path / "empty.yaml"
    empty.write_text("skip-check: 3\n")
    with pytest.raises(Exception, match="skip-check must be a list of check ids"):
        skipped_checks(empty)
