"""`paymig` command lines for the runbook, each checked against the real CLI.

:func:`paymig_line` refuses a command or a flag the typer app does not have, and then
parses the whole line with the command's own parser (types, choices, required options),
so the runbook can never show a command that would fail with a usage error.
:func:`check_line` does the same for a line already rendered, which is how the tests
re-check every ``paymig ...`` line of the generated Markdown.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import typer
import typer.main

from paymig.runbook.facts import RunbookError

#: A shell variable reference, rendered inside double quotes so that it still expands.
_SHELL_VARIABLE = re.compile(r"^\$[A-Z_][A-Z0-9_]*$")
#: Tokens that need no quoting at all.
_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


@cache
def _cli() -> Any:
    """The click group behind the `paymig` typer app (imported lazily, built once)."""
    from paymig.cli import app

    return typer.main.get_command(app)


def _command(name: str) -> Any:
    """The click command `paymig <name>`, or an error naming it."""
    group = _cli()
    command = group.commands.get(name) if hasattr(group, "commands") else None
    if command is None:
        known = ", ".join(sorted(getattr(group, "commands", {})))
        raise RunbookError(f"runbook: command `paymig {name}` does not exist (known: {known})")
    return command


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


def _parse(name: str, args: list[str]) -> None:
    """Check every flag exists, then let the command's parser validate the whole line."""
    command = _command(name)
    known = _flags(command)
    for token in args:
        flag = token.split("=", 1)[0]
        if flag.startswith("-") and flag not in known:
            raise RunbookError(
                f"runbook: `paymig {name}` has no option {flag} (it has {', '.join(sorted(known))})"
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


def _quote(token: str) -> str:
    """Shell-quote a token; `$VAR` stays expandable as `"$VAR"`."""
    if _SAFE_TOKEN.match(token):
        return token
    if _SHELL_VARIABLE.match(token):
        return f'"{token}"'
    return shlex.quote(token)


def paymig_line(name: str, *args: str) -> str:
    """Render `paymig <name> <args...>` after checking it against the CLI."""
    _parse(name, list(args))
    return " ".join(["paymig", name, *(_quote(a) for a in args)])


def check_line(line: str) -> None:
    """Check an already rendered `paymig ...` line parses against the CLI."""
    tokens = shlex.split(line)
    if len(tokens) < 2 or tokens[0] != "paymig":
        raise RunbookError(f"runbook: not a paymig command line: {line!r}")
    _parse(tokens[1], tokens[2:])


def has_command(name: str) -> bool:
    """Whether the CLI has `paymig <name>` (sections of later commands adapt to it)."""
    return name in getattr(_cli(), "commands", {})
