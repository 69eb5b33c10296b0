"""`paymig` command lines for the runbook, each checked before it is printed.

The runbook does not know the CLI (the CLI imports the runbook, never the reverse): its
caller passes a :class:`CommandChecker`, and :func:`paymig_line` renders a line only after
the checker has accepted it. The CLI's checker
(:class:`paymig.cli.command_check.CliCommandChecker`) parses the line with the typer
app's own parser, so the runbook can never show a command that fails with a usage error.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from typing import Protocol

#: A shell variable reference, rendered inside double quotes so that it still expands.
_SHELL_VARIABLE = re.compile(r"^\$[A-Z_][A-Z0-9_]*$")
#: Tokens that need no quoting at all.
_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


class CommandChecker(Protocol):
    """Decides whether `paymig <name> <args...>` is a command line the CLI accepts."""

    def check(self, name: str, args: Sequence[str]) -> None:
        """Return if the line parses; raise :class:`~paymig.runbook.facts.RunbookError` if not."""
        ...  # pragma: no cover - a protocol has no body


def quote(token: str) -> str:
    """Shell-quote a token; `$VAR` stays expandable as `"$VAR"`."""
    if _SAFE_TOKEN.match(token):
        return token
    if _SHELL_VARIABLE.match(token):
        return f'"{token}"'
    return shlex.quote(token)


def paymig_line(checker: CommandChecker, name: str, *args: str) -> str:
    """Render `paymig <name> <args...>` after the checker has accepted it."""
    checker.check(name, args)
    return " ".join(["paymig", name, *(quote(a) for a in args)])
