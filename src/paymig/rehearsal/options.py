"""What the user asked of a rehearsal (its options and their checks) and how it is shown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from paymig.config import resolve_config_path
from paymig.errors import PaymigError
from paymig.rehearsal.scenarios import DEFAULT_SCENARIO, SCENARIOS

#: Default size of the seed dataset (payments).
DEFAULT_ROWS = 50_000
#: Default load, in payments per second, and the number of virtual clients sending it.
DEFAULT_RATE = 20.0
DEFAULT_CLIENTS = 200


class Display:
    """What the rehearsal tells the user; the CLI gives a rich implementation."""

    def step(self, name: str) -> None:
        """A new step starts."""

    def info(self, message: str) -> None:
        """A line of detail."""

    def bar(self, name: str, total: int) -> Callable[[int], None]:
        """A progress bar; returns its advance function."""
        return lambda n: None

    def signals(self, weights: dict[str, int], lag: float | None, written: int) -> None:
        """The live weights, replication lag and payments acknowledged."""


@dataclass
class Options:
    """What the user asked for."""

    workdir: Path
    rows: int = DEFAULT_ROWS
    rate: float = DEFAULT_RATE
    clients: int = DEFAULT_CLIENTS
    scenario: str = DEFAULT_SCENARIO
    keep: bool = False
    config_path: Path = field(default_factory=lambda: resolve_config_path("rehearsal", None))
    stall_seconds: float = 150.0

    def check(self) -> None:
        """Reject impossible values with one line naming the option."""
        if self.rows < 1:
            raise PaymigError(f"--rows: must be at least 1, got {self.rows}")
        if not 0 < self.rate <= 1000:
            raise PaymigError(f"--rate: must be above 0 and at most 1000, got {self.rate:g}")
        if not 1 <= self.clients <= 10_000:
            raise PaymigError(f"--clients: must be between 1 and 10000, got {self.clients}")
        if self.scenario not in SCENARIOS:
            raise PaymigError(
                f"--scenario: {self.scenario!r} is not one of {', '.join(sorted(SCENARIOS))}"
            )
