"""The IaC security gate: checkov over a synthesized stack, with zero failed checks.

checkov runs offline (``--skip-download``, ``BC_SKIP_MAPPING=TRUE``) with the skips in
the repository's ``.checkov.yaml``; each skip there carries its justification.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from paymig.errors import CommandFailedError, ConfigError, ToolMissingError
from paymig.tool_env import tool_environment


@dataclass(frozen=True)
class Finding:
    """One failed check on one resource."""

    check_id: str
    check_name: str
    resource: str


@dataclass(frozen=True)
class ScanResult:
    """What checkov reported for one stack."""

    passed: int
    failed: list[Finding]
    skipped: int  # checks skipped by the config file (checkov does not count them)


def find_checkov_config(start: Path | None = None) -> Path:
    """`.checkov.yaml` in the working directory, else at the repository root."""
    for folder in (start or Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = folder / ".checkov.yaml"
        if candidate.is_file():
            return candidate
    raise ConfigError(".checkov.yaml: not found in the working directory or the repository")


def skipped_checks(config_file: Path) -> list[str]:
    """The check ids listed under `skip-check`."""
    data = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    skips = data.get("skip-check", [])
    if not isinstance(skips, list) or not all(isinstance(s, str) for s in skips):
        raise ConfigError(f"{config_file}: skip-check must be a list of check ids")
    return skips


def _checkov() -> str:
    """Locate the checkov executable, preferring the one beside this Python."""
    beside = Path(sys.executable).parent / "checkov"
    found = str(beside) if beside.exists() else shutil.which("checkov")
    if found is None:
        raise ToolMissingError("checkov: not installed (pip install '.[dev]')")
    return found


def run_checkov(
    stack_json: Path, *, config_file: Path | None, skip: list[str] | None = None
) -> ScanResult:
    """Scan one `cdk.tf.json`. `config_file=None` scans without the configured skips."""
    stack_json = stack_json.resolve()
    command = [
        _checkov(), "-f", str(stack_json), "--framework", "terraform_json",
        "--skip-download", "--quiet", "--compact", "-o", "json",
    ]  # fmt: skip
    if config_file is not None:
        command += ["--config-file", str(config_file.resolve())]
    if skip:
        command += ["--skip-check", ",".join(skip)]
    env = tool_environment(BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false")
    # Run from the stack's folder: checkov also reads a `.checkov.yaml` in its working
    # directory, and only the file named here may add skips.
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, env=env, timeout=600,
        cwd=stack_json.parent,
    )  # fmt: skip
    try:
        report: Any = json.loads(result.stdout)
    except json.JSONDecodeError:
        tail = (result.stderr or result.stdout).strip().splitlines()
        raise CommandFailedError(
            f"checkov failed on {stack_json}: {tail[-1] if tail else 'no output'}"
        ) from None
    if isinstance(report, list):  # one entry per framework
        report = report[0]
    summary = report.get("summary", {})
    failed = [
        Finding(c["check_id"], c.get("check_name", ""), c.get("resource", ""))
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    return ScanResult(
        passed=int(summary.get("passed", 0)),
        failed=failed,
        skipped=len(skipped_checks(config_file)) if config_file is not None else 0,
    )


def security_gate(stack_json: Path, config_file: Path) -> ScanResult:
    """Scan with the configured skips; raise naming each failed check if any fails."""
    result = run_checkov(stack_json, config_file=config_file)
    if result.failed:
        names = "; ".join(f"{f.check_id} {f.resource}" for f in result.failed[:10])
        raise CommandFailedError(
            f"checkov: {len(result.failed)} failed check(s) in {stack_json}: {names}"
        )
    return result
