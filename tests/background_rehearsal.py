"""The end-to-end rehearsal, run once per test run in a process of its own.

Most of a rehearsal's seven minutes are waits (DNS TTLs, alarm periods, phase holds),
so it starts in the background as soon as the first worker starts and the workers run
the rest of the suite meanwhile; its tests (tests/test_rehearse.py, scheduled last) wait
for it and read what it wrote. It runs `python -m paymig rehearse`, the command a user
runs, and coverage's subprocess patch measures it like any other paymig child.

The exit code is written by the shell around it, atomically, because the worker that
started it may have finished and left before it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

#: The rehearsal the tests read: a small dataset, the default load and clients.
ARGS = ("rehearse", "--rows", "2000")
#: The fixture of tests/test_rehearse.py that waits for it: selected tests using it start it.
FIXTURE = "rehearsal"
#: Longer than any rehearsal seen here (seven to nine minutes on a loaded machine).
TIMEOUT_SECONDS = 1800.0
#: Workers give way to the rehearsal, whose phases are timed by the clock.
WORKER_NICENESS = 5

_WRAPPER = (
    '"$@"; code=$?; echo "$code" > "$PAYMIG_REHEARSAL_RC.tmp" '
    '&& mv "$PAYMIG_REHEARSAL_RC.tmp" "$PAYMIG_REHEARSAL_RC"'
)


class BackgroundRehearsal:
    """One rehearsal under ``root``, the folder every worker of the run shares."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "background-rehearsal"
        self.workdir = self.folder / "out"
        self.log = self.folder / "output.log"
        self._rc = self.folder / "rc"
        self._pid = self.folder / "pid"
        self._lock = root / "background-rehearsal.lock"

    def start_once(self) -> None:
        """Start it unless a worker of this run already did."""
        with open(self._lock, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            if self._pid.exists():
                return
            self.folder.mkdir(parents=True, exist_ok=True)
            command = [sys.executable, "-m", "paymig", *ARGS, "--workdir", str(self.workdir)]
            with open(self.log, "wb") as log:
                process = subprocess.Popen(
                    ["/bin/sh", "-c", _WRAPPER, "sh", *command],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "PAYMIG_REHEARSAL_RC": str(self._rc)},
                    start_new_session=True,  # its own group: stopped as one at the end
                )
            self._pid.write_text(str(process.pid), encoding="utf-8")

    def result(self) -> tuple[int, Path]:
        """Wait for it to end: its exit code and its work folder."""
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while not self._rc.exists():
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the rehearsal ran over {TIMEOUT_SECONDS:.0f} s: {self.log}")
            time.sleep(1.0)
        return int(self._rc.read_text(encoding="utf-8")), self.workdir

    def stop(self) -> None:
        """Stop it if it still runs (an interrupted or failed test run)."""
        if not self._pid.exists() or self._rc.exists():
            return
        # SIGTERM: the CLI turns it into an interruption that stops every server.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(self._pid.read_text(encoding="utf-8")), signal.SIGTERM)
