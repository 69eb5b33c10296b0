"""The ``paymig`` command line.

Each command is a thin function over the runtime or infra API and lives in its own
module under :mod:`paymig.cli`. :func:`main` turns every user error into one line on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

import typer
from typer._click.exceptions import NoArgsIsHelpError

from paymig.cli import (
    controller_commands,
    controls_commands,
    cost_commands,
    cutover_commands,
    finish_commands,
    infra_commands,
    preflight_commands,
    rehearse_commands,
    runbook_commands,
    validate_commands,
)
from paymig.errors import PaymigError

app = typer.Typer(
    name="paymig",
    help="Migrate the payment system to AWS with zero downtime.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
infra_commands.register(app)
preflight_commands.register(app)
controller_commands.register(app)
cutover_commands.register(app)
finish_commands.register(app)
validate_commands.register(app)
cost_commands.register(app)
runbook_commands.register(app)
controls_commands.register(app)
rehearse_commands.register(app)


#: The exit code of a command stopped by Ctrl-C or a stop signal (128 + SIGINT).
INTERRUPTED = 130
#: The stop signals received (the entry point's handler appends).
_stopped_by: list[str] = []


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; user errors become one line on stderr."""
    try:
        result = app(args=argv, prog_name="paymig", standalone_mode=False)
    except PaymigError as exc:
        print(f"paymig: {exc}", file=sys.stderr)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("paymig: aborted", file=sys.stderr)
        return 130
    except NoArgsIsHelpError:
        return 0  # typer has already printed the help
    except typer.TyperException as exc:
        # Usage errors (unknown option, bad value): one line, exit 2 as click does.
        format_message = getattr(exc, "format_message", None)
        message = format_message() if callable(format_message) else str(exc)
        print(f"paymig: {message}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    if result == INTERRUPTED:  # typer's answer to KeyboardInterrupt; no command returns it
        by = f" by signal {_stopped_by[-1]}" if _stopped_by else ""
        print(
            f"paymig: aborted{by}; a cutover or fallback continues from its last step when "
            "the same command runs again",
            file=sys.stderr,
        )
    return int(result) if isinstance(result, int) else 0


def _stop(signum: int, _frame: FrameType | None) -> None:
    """A stop signal unwinds like Ctrl-C, so `finally` blocks run (the lock is released)."""
    _stopped_by.append(signal.Signals(signum).name)
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def entrypoint() -> None:
    """Console-script entry point.

    SIGTERM (systemd, Kubernetes, `kill`) and SIGHUP (a closed terminal) would end the
    process where it stands, leaving the controller's lock held until its TTL; as
    KeyboardInterrupt they stop it between two calls and release it.
    """
    for stop_signal in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, _stop)
    sys.exit(main())
