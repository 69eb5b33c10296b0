"""Shared fixtures: configurations, one synthesis per run, real servers.

The suite runs on both cores (``pytest -n 2 --dist loadscope``, see scripts/test.sh):
each module's tests stay on one worker, so a module-scoped server or rehearsal starts
once. A synthesis is shared by every worker of the run through a folder beside the
workers' own, under a file lock: the first worker to need it synthesizes, the others
wait and read it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from botocore_models import share_one_loader
from paymig.config import PaymigConfig, load_config
from paymig.local.emulator import MotoServer
from paymig.local.postgres import LocalPostgres

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
share_one_loader()

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "config"

#: Modules started first, longest first, so that the other worker takes the rest meanwhile.
LONGEST_MODULES = ("tests/test_rehearse.py", "tests/test_controller_moto.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the longest modules first (xdist hands out modules in collection order)."""

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_MODULES.index(path) if path in LONGEST_MODULES else len(LONGEST_MODULES)

    items.sort(key=rank)  # stable: the order inside each module is kept


def shared_synthesis(
    config: PaymigConfig, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Any:
    """``config``'s stack, synthesized once per run whatever the number of workers."""
    from paymig.infra.synth import SynthResult, synthesize

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above every worker's own
    out = root / f"shared-synth-{name}" / "cdktf.out"
    stack_dir = out / "stacks" / config.stack_name
    with open(root / f"shared-synth-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if (stack_dir / "cdk.tf.json").exists():
            document = json.loads((stack_dir / "cdk.tf.json").read_text(encoding="utf-8"))
            return SynthResult(stack_dir=stack_dir, document=document)
        return synthesize(config, out)


@pytest.fixture(scope="session")
def prod_config() -> PaymigConfig:
    return load_config(CONFIG_DIR / "prod.yaml")


@pytest.fixture(scope="session")
def staging_config() -> PaymigConfig:
    return load_config(CONFIG_DIR / "staging.yaml")


@pytest.fixture(scope="session")
def rehearsal_config() -> PaymigConfig:
    return load_config(CONFIG_DIR / "rehearsal.yaml")


@pytest.fixture(scope="session")
def prod_synth(prod_config: PaymigConfig, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The prod stack, synthesized once per run (jsii import costs 10-20 s)."""
    return shared_synthesis(prod_config, tmp_path_factory, "prod")


@pytest.fixture(scope="session")
def staging_synth(staging_config: PaymigConfig, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The staging stack, synthesized once per run."""
    return shared_synthesis(staging_config, tmp_path_factory, "staging")


@pytest.fixture(scope="session")
def rehearsal_synth(
    rehearsal_config: PaymigConfig, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """The rehearsal stack (deployment stage `cdc`), synthesized once per run."""
    return shared_synthesis(rehearsal_config, tmp_path_factory, "rehearsal")


@pytest.fixture(scope="session")
def prod_tf(prod_synth: Any) -> dict[str, Any]:
    """The synthesized prod stack as data."""
    document: dict[str, Any] = prod_synth.document
    return document


@pytest.fixture(scope="session")
def staging_tf(staging_synth: Any) -> dict[str, Any]:
    """The synthesized staging stack (DMS service roles looked up, not created) as data."""
    document: dict[str, Any] = staging_synth.document
    return document


@pytest.fixture(scope="session")
def rehearsal_tf(rehearsal_synth: Any) -> dict[str, Any]:
    """The synthesized rehearsal stack as data."""
    document: dict[str, Any] = rehearsal_synth.document
    return document


@pytest.fixture(scope="session")
def prod_at_stage(
    prod_config: PaymigConfig, prod_tf: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], dict[str, Any]]:
    """The prod stack at another `migration.stage`, each stage synthesized at most once."""
    documents: dict[str, dict[str, Any]] = {prod_config.migration.stage: prod_tf}

    def at(stage: str) -> dict[str, Any]:
        if stage not in documents:
            migration = prod_config.migration.model_copy(update={"stage": stage})
            config = prod_config.model_copy(update={"migration": migration})
            documents[stage] = shared_synthesis(config, tmp_path_factory, f"prod-{stage}").document
        return documents[stage]

    return at


@pytest.fixture
def postgres_factory() -> Iterator[Callable[..., LocalPostgres]]:
    """Start PostgreSQL servers on loopback; all are stopped after the test."""
    started: list[LocalPostgres] = []

    def start(name: str = "pg", **kwargs: Any) -> LocalPostgres:
        server = LocalPostgres(name, **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the session; tests reset it as they need.

    No test on it attaches an AWS managed policy, so they are not loaded: each reset and
    the first request after it are then about 1.3 s faster (about 100 tests reset).
    """
    with MotoServer(managed_policies=False) as server:
        yield server
