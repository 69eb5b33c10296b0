"""The ``paymig`` command line.

Each command is a thin function over the runtime or infra API and lives in its own
module under :mod:`paymig.cli`. :func:`main` turns every user error into one line on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import sys

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
    return int(result) if isinstance(result, int) else 0


def entrypoint() -> None:
    """Console-script entry point."""
    sys.exit(main())
