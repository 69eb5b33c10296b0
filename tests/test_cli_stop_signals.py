"""A stop signal ends a paymig command the way Ctrl-C does: its `finally` blocks run.

A cutover, fallback or watch holds the controller's lock in a `try`/`finally`; killed by
SIGTERM's default action it would leave the lock until `controller.lock_ttl_seconds`.
The command here is the test's own (it writes where it stands), run by the real console
entry point in a child process, so that a real signal reaches it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The child first takes Ctrl-C's usual handler, as a terminal's foreground job has it:
# a suite started in the background by a non-interactive shell (as CI may start it)
# passes SIGINT on ignored, and the SIGINT case would then wait out the sleep.
CHILD = """
import signal, sys, time
from pathlib import Path

signal.signal(signal.SIGINT, signal.default_int_handler)
from paymig import cli

marker = Path(sys.argv[1])

@cli.app.command("hold-for-test")
def hold() -> None:
    try:
        marker.write_text("holding")
        time.sleep(120)
    finally:
        marker.write_text("released")

sys.argv = ["paymig", "hold-for-test"]
cli.entrypoint()
"""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_runs_finally_and_exits_130_in_one_line(
    tmp_path: Path, stop: signal.Signals
) -> None:
    marker = tmp_path / "state"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(marker)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (marker.exists() and marker.read_text() == "holding"):
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.05)
    child.send_signal(stop)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 130
    assert marker.read_text() == "released"
    by = "" if stop == signal.SIGINT else f" by signal {stop.name}"
    assert err.strip() == (
        f"paymig: aborted{by}; a cutover or fallback continues from its last step when the "
        "same command runs again"
    )
