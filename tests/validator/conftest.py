"""Two PostgreSQL servers per test module (starting them is the slow part).

Every test creates its own uniquely named tables, so tests in a module share the
servers without seeing each other's data.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pgpair import Pair

from paymig.local.postgres import LocalPostgres


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with LocalPostgres("vsrc") as source, LocalPostgres("vtgt") as target:
        yield Pair(source, target)
