"""`paymig synth` and `paymig check` end to end, with the real Terraform CLI."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from paymig.cli import main
from paymig.cli.infra_commands import _relations_gate
from paymig.config import PaymigConfig
from paymig.errors import CommandFailedError, ToolMissingError
from paymig.security_scan import skipped_checks
from paymig.terraform import Terraform, mirror_cli_config

MIRROR = Path("/opt/tf-plugins")
REPO = Path(__file__).resolve().parents[1]


def test_synth_writes_the_stack_and_prints_resources_by_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prod_tf: dict[str, Any]
) -> None:
    out = tmp_path / "out"
    assert main(["synth", "--env", "staging", "--out", str(out), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    stack_json = out / "stacks" / "paymig-staging" / "cdk.tf.json"
    assert report["path"] == str(stack_json)
    doc = json.loads(stack_json.read_text())
    assert report["resources"] == {k: len(v) for k, v in sorted(doc["resource"].items())}
    assert doc["terraform"]["backend"]["s3"]["key"] == "paymig/staging/terraform.tfstate"
    assert doc["resource"]["aws_vpc"] != prod_tf["resource"]["aws_vpc"]
    # Nothing but the stack and the manifest is left behind: no staging folders.
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "stacks"]


def test_synth_replaces_a_previous_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    stale = out / "stacks" / "paymig-prod" / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    assert main(["synth", "--out", str(out)]) == 0
    assert not stale.exists()
    text = capsys.readouterr().out
    assert "aws_subnet" in text.split("\n", 5)[-1]


@pytest.mark.slow
@pytest.mark.parametrize("env", ["prod", "staging"])
def test_check_validates_with_terraform_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], env: str
) -> None:
    """Every gate passes on the shipped configs, in order, ending with the budget."""
    assert MIRROR.is_dir(), "the image's provider mirror is missing"
    out = tmp_path / "out"
    code = main(["check", "--env", env, "--out", str(out)])
    captured = capsys.readouterr()
    assert f"terraform validate: paymig-{env} is valid" in captured.out
    skips = len(skipped_checks(REPO / ".checkov.yaml"))
    checkov = re.search(rf"checkov: \d+ passed, 0 failed, {skips} skipped", captured.out)
    assert checkov
    # The relational check runs after checkov, and only the sample bundle warns.
    relations = captured.out.index("relational check: 5 rules, 0 broken relations, 2 warning(s)")
    assert relations > checkov.start()
    assert captured.err.count("warning: [tls-trust] ") == 2
    assert "warning: sample value still in place: dns.zone_name" in captured.err
    assert (
        f"environments: state bucket {'example-paymig-tfstate' if env == 'prod' else 'example-paymig-staging-tfstate'} belongs to {env} alone"
        in captured.out
    )
    assert re.search(
        r"IAM linter \(cloudsplaining\): \d+ policies, \d+ statements, 0 unjustified findings, "
        r"\d+ accepted \(reasons in src/paymig/iam_accepted.yaml\)",
        captured.out,
    )
    assert (
        "pre-shared keys are kept in AWS Secrets Manager (preshared_key_storage = SecretsManager)"
        in captured.out
    )
    assert (
        "hashicorp/aws 5.100.0 marks it sensitive, which hides it from plan output but not from the state file"
        in captured.out
    )
    assert (
        "organisation: AWS CloudTrail, Amazon GuardDuty, AWS Security Hub, AWS Config are not created by this stack"
        in captured.out
    )
    stack = out / "stacks" / f"paymig-{env}"
    assert (stack / ".terraformrc").read_text() == mirror_cli_config(MIRROR)
    lock = (stack / ".terraform.lock.hcl").read_text()
    assert 'provider "registry.terraform.io/hashicorp/aws"' in lock
    assert 'version     = "5.100.0"' in lock
    assert code == 0, captured.err
    assert "budget: load month $" in captured.out


def test_relations_gate_fails_naming_both_resources(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    prod_tf: dict[str, Any],
    prod_config: PaymigConfig,
) -> None:
    """`paymig check`'s relational gate on a deliberately broken stack (the command has no
    option to read a stack from a file, so the gate it runs is called as it calls it)."""
    doc = copy.deepcopy(prod_tf)
    for body in doc["resource"]["aws_kms_key"].values():
        if body["//"]["metadata"]["path"].endswith("/automation/key/key"):
            body["policy"] = body["policy"].replace('/aws/lambda/paymig-prod-validation"', '/x"')
    stack = tmp_path / "cdk.tf.json"
    stack.write_text(json.dumps(doc))
    with pytest.raises(CommandFailedError) as info:
        _relations_gate(Console(), Console(stderr=True), prod_config, stack)
    assert str(info.value) == (
        "relational check: 1 broken relation(s) in paymig-prod (listed above)"
    )
    assert info.value.exit_code == 1
    err = capsys.readouterr().err
    assert (
        "error: [log-group-key] paymig-prod/checks/validation/log-group -> "
        "paymig-prod/automation/key/key: the key policy does not let "
        "logs.us-east-2.amazonaws.com use the key for log group "
        "'/aws/lambda/paymig-prod-validation'; CreateLogGroup would be denied"
    ) in err
    assert err.count("warning: [tls-trust] ") == 2


def test_relations_gate_passes_the_shipped_stack_with_its_sample_warnings(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    prod_tf: dict[str, Any],
    prod_config: PaymigConfig,
) -> None:
    stack = tmp_path / "cdk.tf.json"
    stack.write_text(json.dumps(prod_tf))
    _relations_gate(Console(), Console(stderr=True), prod_config, stack)
    captured = capsys.readouterr()
    assert captured.out == "relational check: 5 rules, 0 broken relations, 2 warning(s)\n"
    lines = captured.err.splitlines()
    assert len(lines) == 2
    assert all(
        line.startswith("warning: [tls-trust] paymig-prod/trust/aurora-ca -> ") for line in lines
    )


def test_missing_terraform_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError, match="terraform: not found on PATH"):
        Terraform(tmp_path).init()


def test_invalid_terraform_is_reported_with_its_errors(tmp_path: Path) -> None:
    (tmp_path / "main.tf.json").write_text(
        json.dumps({"resource": {"aws_vpc": {"x": {"cidr_blok": "10.0.0.0/16"}}}})
    )
    tf = Terraform(tmp_path, mirror=MIRROR)
    tf.init()
    with pytest.raises(
        CommandFailedError,
        match=r"1 error\(s\) in .*No argument or block type is named \"cidr_blok\"",
    ):
        tf.validate()


def test_real_process_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    """As a user sees it: a separate `python -m paymig` process, no traceback."""
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("environment: prod\nnetwork: {vpc_cidr: 10.0.0.0/33}\n")
    result = subprocess.run(
        [sys.executable, "-m", "paymig", "synth", "--config", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"paymig: {bad}: ")
    assert "network.vpc_cidr: malformed CIDR '10.0.0.0/33'" in result.stderr
    assert not (tmp_path / "o").exists()
    usage = subprocess.run(
        [sys.executable, "-m", "paymig", "synth", "--bogus"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert usage.returncode == 2
    assert usage.stderr.startswith("paymig: No such option: --bogus")
    assert usage.stderr.count("\n") == 1
