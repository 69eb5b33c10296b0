"""Environments kept apart: no two environments share a Terraform state bucket.

PCI DSS 6.5.3 asks that pre-production be separated from production. Terraform state
holds every attribute of every resource, and whoever can write one environment's state
can change that environment; so each environment gets its own bucket (and, recommended,
its own account: see docs/environments.md). :func:`shared_state_buckets` compares the
environments of one configuration folder; `paymig check` runs it for the selected one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from paymig.config.loading import load_config
from paymig.config.root import PaymigConfig
from paymig.errors import ConfigError


@dataclass(frozen=True)
class SharedBucket:
    """Two environments (named by their files) whose state lives in one bucket."""

    bucket: str
    first: str
    second: str

    def line(self) -> str:
        """One line naming both files and the field."""
        return (
            f"{self.second}: state.bucket {self.bucket!r} is also the state bucket of "
            f"{self.first}; each environment needs its own (docs/environments.md)"
        )


def shared_state_buckets(configs: Mapping[str, PaymigConfig]) -> list[SharedBucket]:
    """Every pair of environments (by source name) whose state buckets are the same."""
    owners: dict[str, str] = {}
    shared = []
    for source, config in sorted(configs.items()):
        bucket = config.state.bucket
        if bucket in owners:
            shared.append(SharedBucket(bucket, owners[bucket], source))
        else:
            owners[bucket] = source
    return shared


def folder_configs(folder: Path) -> tuple[dict[str, PaymigConfig], list[str]]:
    """Every configuration in `folder` by file path, and one line per file that is invalid."""
    configs: dict[str, PaymigConfig] = {}
    unreadable = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name.startswith("."):  # e.g. .checkov.yaml: not an environment
            continue
        try:
            configs[str(path)] = load_config(path)
        except ConfigError as exc:
            unreadable.append(str(exc))
    return configs, unreadable


def isolation_problems(selected: Path, config: PaymigConfig) -> tuple[list[str], list[str]]:
    """What the selected environment shares with another in its folder, and files skipped.

    Only pairs that involve the selected file are reported: `paymig check --env staging`
    fails when staging shares a bucket, not when two other environments do.
    """
    configs, unreadable = folder_configs(selected.parent)
    me = str(selected)
    configs[me] = config
    problems = [p.line() for p in shared_state_buckets(configs) if me in (p.first, p.second)]
    return problems, unreadable
