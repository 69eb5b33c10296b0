"""A bounded-memory list of candidate keys: kept in memory up to a limit, then on disk.

Candidates are the keys that differed in the first pass and are re-checked after the
grace period. Their number is unbounded (a target that is empty has as many candidates
as the source has rows), so past :attr:`KeySpool.memory_keys` they go to a temporary
file, one JSON array per line, and are read back in batches.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from types import TracebackType
from typing import IO

from paymig.runtime.validator.plan import Key


class KeySpool:
    """Append keys; iterate them back in batches; memory stays bounded."""

    def __init__(self, memory_keys: int = 50_000) -> None:
        """Keep up to ``memory_keys`` keys in memory before spilling to a file."""
        self.memory_keys = memory_keys
        self._memory: list[Key] = []
        self._file: IO[str] | None = None
        self.count = 0

    def add(self, key: Key) -> None:
        """Append one key."""
        self.count += 1
        if self._file is None and len(self._memory) < self.memory_keys:
            self._memory.append(key)
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        self._file.write(json.dumps(key) + "\n")

    def batches(self, size: int) -> Iterator[list[Key]]:
        """Yield the keys in insertion order, ``size`` at a time."""
        for start in range(0, len(self._memory), size):
            yield self._memory[start : start + size]
        if self._file is None:
            return
        self._file.flush()
        self._file.seek(0)
        batch: list[Key] = []
        for line in self._file:
            batch.append(tuple(json.loads(line)))
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch

    @property
    def spilled(self) -> bool:
        """Whether keys went to disk."""
        return self._file is not None

    def close(self) -> None:
        """Drop the keys and delete the file."""
        self._memory = []
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> KeySpool:
        """Use in a ``with`` block."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close on leaving the block."""
        self.close()
