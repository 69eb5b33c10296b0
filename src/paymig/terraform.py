"""Run the Terraform CLI on a synthesized stack, offline when a provider mirror exists.

When the local filesystem mirror (default ``/opt/tf-plugins``) exists, a CLI config that
installs providers only from it is written beside the stack and passed through
``TF_CLI_CONFIG_FILE``; Terraform then never downloads. Without a mirror, Terraform's
normal provider installation applies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paymig.errors import CommandFailedError, ToolMissingError

DEFAULT_MIRROR = Path("/opt/tf-plugins")


def find_terraform() -> str:
    """Locate the terraform binary or fail with a clear message."""
    found = shutil.which("terraform")
    if found is None:
        raise ToolMissingError(
            "terraform: not found on PATH; install Terraform >= 1.10 "
            "(this project is tested with 1.11.4)"
        )
    return found


def mirror_cli_config(mirror: Path) -> str:
    """A Terraform CLI config that installs every provider from `mirror` only."""
    return (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(mirror))}\n"
        '    include = ["*/*/*"]\n'
        "  }\n"
        "}\n"
    )


@dataclass
class Terraform:
    """Terraform commands for one stack folder."""

    stack_dir: Path
    mirror: Path | None = DEFAULT_MIRROR
    extra_env: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        """The environment Terraform runs with."""
        env = {
            **os.environ,
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            **self.extra_env,
        }
        if self.mirror is not None and self.mirror.is_dir():
            rc = self.stack_dir / ".terraformrc"
            rc.write_text(mirror_cli_config(self.mirror), encoding="utf-8")
            env["TF_CLI_CONFIG_FILE"] = str(rc)
        return env

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Run `terraform -chdir=<stack> ARGS`, raising with Terraform's error on failure."""
        command = [find_terraform(), f"-chdir={self.stack_dir}", *args]
        result = subprocess.run(
            command,
            env=self.environment(),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise CommandFailedError(
                f"terraform {args[0]} failed in {self.stack_dir}: {first_error(result)}"
            )
        return result

    def init(self, *, backend: bool = False) -> None:
        """Install providers (from the mirror when present); no backend by default."""
        self.run("init", f"-backend={'true' if backend else 'false'}", "-no-color")

    def providers_schema(self) -> dict[str, Any]:
        """`terraform providers schema -json` of the initialised folder's providers."""
        result = self.run("providers", "schema", "-json", "-no-color", timeout=300)
        try:
            schema: dict[str, Any] = json.loads(result.stdout)
        except json.JSONDecodeError:
            raise CommandFailedError(
                f"terraform providers schema in {self.stack_dir}: output is not JSON"
            ) from None
        return schema

    def validate(self) -> dict[str, object]:
        """Run `terraform validate -json` and return its report; raise if invalid."""
        command = [find_terraform(), f"-chdir={self.stack_dir}", "validate", "-json"]
        result = subprocess.run(
            command, env=self.environment(), capture_output=True, text=True, check=False
        )
        try:
            report: dict[str, object] = json.loads(result.stdout)
        except json.JSONDecodeError:
            raise CommandFailedError(
                f"terraform validate failed in {self.stack_dir}: {first_error(result)}"
            ) from None
        if not report.get("valid"):
            diagnostics = report.get("diagnostics")
            items = diagnostics if isinstance(diagnostics, list) else []
            errors = [
                f"{d.get('summary')}: {d.get('detail', '')}".strip(": ")
                for d in items
                if isinstance(d, dict) and d.get("severity") == "error"
            ]
            raise CommandFailedError(
                f"terraform validate: {len(errors)} error(s) in {self.stack_dir}: "
                + " | ".join(errors[:5])
            )
        return report


def first_error(result: subprocess.CompletedProcess[str]) -> str:
    """The most useful line of a failed Terraform run's output."""
    lines = [
        line.strip() for line in (result.stderr + "\n" + result.stdout).splitlines() if line.strip()
    ]
    for line in lines:
        if line.startswith("Error:"):
            return line
    return lines[-1] if lines else f"exit code {result.returncode}"


def pinned_provider_schema(
    document: Mapping[str, Any], folder: Path, mirror: Path | None = DEFAULT_MIRROR
) -> dict[str, Any]:
    """The schema of the providers a synthesized stack pins, read in a scratch `folder`.

    `terraform providers schema` needs an initialised backend, which `paymig check` never
    configures; a folder holding only the stack's `required_providers` needs none.
    """
    folder.mkdir(parents=True, exist_ok=True)
    providers = document.get("terraform", {}).get("required_providers", {})
    config = {"terraform": {"required_providers": providers}}
    (folder / "main.tf.json").write_text(json.dumps(config), encoding="utf-8")
    terraform = Terraform(folder, mirror=mirror)
    terraform.init()
    return terraform.providers_schema()
