"""Fixtures of the rehearsal's tests: an emulator with this project's extensions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from paymig.local.emulator import EMULATOR_REGION, MotoServer


@pytest.fixture(scope="session")
def extended_moto() -> Iterator[MotoServer]:
    """One moto server with PutCompositeAlarm, for the session; tests reset it."""
    with MotoServer(extended=True) as server:
        yield server


@pytest.fixture
def aws(extended_moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh emulator and a boto3 session on it (boto3's defaults point there too)."""
    extended_moto.reset()
    for name, value in extended_moto.client_environment().items():
        monkeypatch.setenv(name, value)
    return boto3.Session(region_name=EMULATOR_REGION)
