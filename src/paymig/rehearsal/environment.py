"""The embedded environment: the AWS emulator and two PostgreSQL servers, always stopped.

Everything is started inside one :class:`contextlib.ExitStack`, so leaving the ``with``
block stops each server in reverse order whatever happened: success, an error, Ctrl-C
(KeyboardInterrupt) or SIGTERM/SIGHUP (turned into KeyboardInterrupt while the
environment is up). The process ids are recorded so that a caller (and the test) can
check that every process started was stopped.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from paymig.local.emulator import MotoServer
from paymig.local.postgres import LocalPostgres

#: Signals that stop a rehearsal cleanly (Ctrl-C is SIGINT, already KeyboardInterrupt).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class StartedProcess:
    """A server process the rehearsal started."""

    name: str
    pid: int


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn a stop signal into KeyboardInterrupt, so the ExitStack unwinds."""
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (a zombie, dead but not yet reaped, does not)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True  # no procfs: the signal test is all we have
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def still_alive(pids: Iterable[int], timeout: float = 10.0) -> list[int]:
    """The pids still running after up to `timeout` seconds (a process may be exiting)."""
    waiting = list(pids)
    deadline = time.monotonic() + timeout
    while True:
        waiting = [pid for pid in waiting if pid_alive(pid)]
        if not waiting or time.monotonic() > deadline:
            return waiting
        time.sleep(0.1)


@dataclass
class RehearsalEnvironment:
    """moto server plus the "source" (on-prem) and "target" (Aurora) PostgreSQL, both TLS."""

    moto: MotoServer = field(default_factory=lambda: MotoServer(extended=True))
    source: LocalPostgres = field(default_factory=lambda: LocalPostgres("source", ssl=True))
    target: LocalPostgres = field(default_factory=lambda: LocalPostgres("target", ssl=True))
    processes: list[StartedProcess] = field(default_factory=list)
    _stack: ExitStack | None = None
    _previous: dict[int, Any] = field(default_factory=dict)

    def __enter__(self) -> RehearsalEnvironment:
        """Start the emulator and both servers; stop what started if one fails."""
        self._install_signal_handlers()
        stack = ExitStack()
        stack.callback(self._restore_signal_handlers)
        try:
            for name, server in (("moto", self.moto), ("source", self.source),
                                 ("target", self.target)):  # fmt: skip
                server.start()
                stack.callback(server.stop)
                pid = server.pid
                if pid is not None:
                    self.processes.append(StartedProcess(name, pid))
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def add_cleanup(self, callback: Any, *args: Any) -> None:
        """Run `callback(*args)` on exit, before the servers stop."""
        if self._stack is None:
            raise RuntimeError("the environment is not started")
        self._stack.callback(callback, *args)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop everything, in reverse order of starting."""
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()

    def still_running(self, timeout: float = 10.0) -> list[StartedProcess]:
        """The recorded processes still alive (after up to `timeout` s to finish exiting)."""
        alive = set(still_alive([p.pid for p in self.processes], timeout))
        return [p for p in self.processes if p.pid in alive]

    def _install_signal_handlers(self) -> None:
        """Route stop signals to KeyboardInterrupt (main thread only; no-op elsewhere)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, _interrupt)

    def _restore_signal_handlers(self) -> None:
        """Put the previous handlers back."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
