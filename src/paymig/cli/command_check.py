"""Check `paymig` command lines against the real CLI, for the generated runbook.

:class:`CliCommandChecker` refuses a command or a flag the typer app does not have, then
parses the whole line with the command's own parser (types, choices, required options).
The runbook renders every command line through it, and the tests re-check every
``paymig ...`` line of the generated Markdown with :meth:`CliCommandChecker.check_line`.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
import typer.main

from paymig.runbook.facts import RunbookError


def _flags(command: Any) -> set[str]:
    """Every option string the command accepts."""
    flags: set[str] = set()
    for param in command.params:
        flags.update(getattr(param, "opts", ()))
        flags.update(getattr(param, "secondary_opts", ()))
    return flags


@contextmanager
def _without_envvars(command: Any) -> Iterator[None]:
    """Hide the options' environment variables, so a line must carry every required flag.

    Otherwise a check run in a shell that happens to export, say, `PAYMIG_SOURCE_DSN`
    would pass a line the operator's shell might not.
    """
    names: set[str] = set()
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        if isinstance(envvar, str):
            names.add(envvar)
        elif isinstance(envvar, (list, tuple)):
            names.update(envvar)
    saved = {n: os.environ.pop(n) for n in sorted(names) if n in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


class CliCommandChecker:
    """A :class:`~paymig.runbook.commands.CommandChecker` backed by the click group of the CLI."""

    def __init__(self, group: Any) -> None:
        """Check against `group`, the click group behind the `paymig` typer app."""
        self._group = group

    @classmethod
    def from_typer(cls, app: typer.Typer) -> CliCommandChecker:
        """The checker of a typer app (built into its click group once, here)."""
        return cls(typer.main.get_command(app))

    def _commands(self) -> dict[str, Any]:
        """The group's commands by name."""
        commands: dict[str, Any] = getattr(self._group, "commands", {})
        return commands

    def _command(self, name: str) -> Any:
        """The click command `paymig <name>`, or an error naming it."""
        command = self._commands().get(name)
        if command is None:
            known = ", ".join(sorted(self._commands()))
            raise RunbookError(f"runbook: command `paymig {name}` does not exist (known: {known})")
        return command

    def check(self, name: str, args: Sequence[str]) -> None:
        """Check every flag exists, then let the command's parser validate the whole line."""
        command = self._command(name)
        known = _flags(command)
        for token in args:
            flag = token.split("=", 1)[0]
            if flag.startswith("-") and flag not in known:
                raise RunbookError(
                    f"runbook: `paymig {name}` has no option {flag} "
                    f"(it has {', '.join(sorted(known))})"
                )
        try:
            with _without_envvars(command):
                command.make_context(f"paymig {name}", list(args))
        except typer.Exit:  # pragma: no cover - `--help` style eager options exit early
            return
        except typer.TyperException as exc:  # UsageError, BadParameter, MissingParameter
            format_message = getattr(exc, "format_message", None)
            message = format_message() if callable(format_message) else str(exc)
            raise RunbookError(f"runbook: `paymig {name} {' '.join(args)}`: {message}") from None

    def check_line(self, line: str) -> None:
        """Check an already rendered `paymig ...` line parses against the CLI."""
        tokens = shlex.split(line)
        if len(tokens) < 2 or tokens[0] != "paymig":
            raise RunbookError(f"runbook: not a paymig command line: {line!r}")
        self.check(tokens[1], tokens[2:])

    def has_command(self, name: str) -> bool:
        """Whether the CLI has `paymig <name>`."""
        return name in self._commands()
