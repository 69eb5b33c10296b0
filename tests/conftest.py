"""Shared fixtures: configurations, one synthesis per session, real servers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paymig.config import PaymigConfig, load_config
from paymig.local.emulator import MotoServer
from paymig.local.postgres import LocalPostgres

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "config"


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
    """The prod stack, synthesized once per session (jsii import costs 10-20 s)."""
    from paymig.infra.synth import synthesize

    return synthesize(prod_config, tmp_path_factory.mktemp("synth") / "cdktf.out")


@pytest.fixture(scope="session")
def staging_synth(staging_config: PaymigConfig, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The staging stack, synthesized once per session."""
    from paymig.infra.synth import synthesize

    return synthesize(staging_config, tmp_path_factory.mktemp("synth-staging") / "cdktf.out")


@pytest.fixture(scope="session")
def rehearsal_synth(
    rehearsal_config: PaymigConfig, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """The rehearsal stack (deployment stage `cdc`), synthesized once per session."""
    from paymig.infra.synth import synthesize

    return synthesize(rehearsal_config, tmp_path_factory.mktemp("synth-rehearsal") / "cdktf.out")


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
    from paymig.infra.synth import synthesize

    documents: dict[str, dict[str, Any]] = {prod_config.migration.stage: prod_tf}

    def at(stage: str) -> dict[str, Any]:
        if stage not in documents:
            migration = prod_config.migration.model_copy(update={"stage": stage})
            config = prod_config.model_copy(update={"migration": migration})
            out = tmp_path_factory.mktemp(f"synth-{stage}") / "cdktf.out"
            documents[stage] = synthesize(config, out).document
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
    """One moto server for the session; tests reset it as they need."""
    with MotoServer() as server:
        yield server
