"""Shared fixtures: configurations, one synthesis per run, real servers.

The suite runs three workers on the two cores (``pytest -n 3 --dist loadscope``, see
scripts/test.sh; much of a test's time is waiting on servers): each module's tests stay
on one worker, so a module-scoped server starts once, and the modules are handed out in
the order sorted here (``--no-loadscope-reorder`` in pyproject.toml: xdist would
otherwise hand out the modules with the most tests first).
A synthesis is shared by every worker of the run through a folder beside the workers'
own, under a file lock: the first worker to need it synthesizes, the others wait and
read it. The end-to-end rehearsal runs beside the workers from the start
(tests/background_rehearsal.py); its tests come last and read what it wrote.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from background_rehearsal import FIXTURE as REHEARSAL_FIXTURE
from background_rehearsal import WORKER_NICENESS, BackgroundRehearsal
from botocore_models import share_one_loader
from paymig.config import PaymigConfig, load_config
from paymig.local.emulator import MotoServer
from paymig.local.postgres import LocalPostgres
from run_folder import run_root

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
share_one_loader()

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "config"

#: Modules started first, longest first (by their wall time in a suite run), so that the
#: short ones fill the workers' ends.
LONGEST_MODULES = (
    "tests/test_cutover.py",
    "tests/test_controller_moto.py",
    "tests/test_finish_guard.py",
    "tests/test_cli_infra.py",
    "tests/test_rotation.py",
    "tests/test_validation_lambda.py",
    "tests/test_docs.py",
    "tests/test_db_setup.py",
)
#: Started last: its rehearsal runs in the background from the start (background_rehearsal).
LAST_MODULES = ("tests/test_rehearse.py",)


#: Fixtures that start a server or wait for the rehearsal: a test using one, directly or
#: through another fixture, is marked `slow` here, so the fast set cannot include it.
SERVER_FIXTURES = frozenset(
    {"moto_server", "extended_moto", "postgres_factory", "pair", REHEARSAL_FIXTURE}
)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark server tests `slow`; longest modules first, the rehearsal's last (xdist order)."""
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        if path in LAST_MODULES:
            return len(LONGEST_MODULES) + 1
        return LONGEST_MODULES.index(path) if path in LONGEST_MODULES else len(LONGEST_MODULES)

    items.sort(key=rank)  # stable: the order inside each module is kept


@pytest.fixture(scope="session", autouse=True)
def _rehearsal_in_background(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """When the rehearsal's tests are selected, start it now; then give it the CPU first."""
    if not any(REHEARSAL_FIXTURE in item.fixturenames for item in request.session.items):
        return
    BackgroundRehearsal(run_root(tmp_path_factory)).start_once()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.nice(WORKER_NICENESS)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The controller (or the only process) stops a rehearsal an interrupted run left."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)  # pytest's own, set at start
    if factory is not None:
        BackgroundRehearsal(run_root(factory)).stop()


def shared_synthesis(
    config: PaymigConfig, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Any:
    """``config``'s stack, synthesized once per run whatever the number of workers."""
    from paymig.infra.synth import SynthResult, synthesize

    root = run_root(tmp_path_factory)
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
