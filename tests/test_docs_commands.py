"""Command lines shown in the README and the hand-written docs parse against the CLI.

The generated documents (runbook, control map) have their own checks in test_runbook.py
and test_controls.py; these tests cover what people write by hand: the README's commands
table, which must list every command and every option, and each concrete `paymig ...`
line in code blocks or inline code of README.md and docs/*.md.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from paymig.cli import app
from paymig.cli.command_check import CliCommandChecker
from paymig.runbook.facts import RunbookError

REPO = Path(__file__).resolve().parents[1]
CLI = CliCommandChecker.from_typer(app)
GROUP: Any = typer.main.get_command(app)
#: Generated from code, and checked line by line by their own tests.
GENERATED = {"migration_runbook.md", "pci-controls.md", "configuration.md"}
#: A table row of the README's Commands section: its synopsis and the command's name.
_TABLE_ROW = re.compile(r"^\| `(paymig ([\w-]+)[^`]*)` \|", flags=re.MULTILINE)
#: A value the reader fills in, e.g. `<live>` in `paymig shift --to <live> --force`.
_PLACEHOLDER = re.compile(r"<[^<>\s][^<>]*>")
#: What each placeholder of a synopsis stands for, in a line that must parse.
SAMPLES = {
    "ENV": "prod", "PATH": "config/prod.yaml", "DIR": "cdktf.out", "DSN": "host=db.example",
    "T": "public.payments", "S.T": "public.payments", "N": "4", "S": "30", "PCT": "10",
    "TEXT": "change-1234", "NAME": "vpn-cut", "YYYY-MM": "2027-01", "X": "1.5", "PNG": "cost.png", "TPS": "5",
}  # fmt: skip


def _hand_written() -> list[Path]:
    """README.md and every docs/*.md that no generator writes."""
    docs = sorted(p for p in (REPO / "docs").glob("*.md") if p.name not in GENERATED)
    return [REPO / "README.md", *docs]


def _options(name: str) -> set[str]:
    """Every long option of `paymig <name>`, except --help."""
    params = GROUP.commands[name].params
    return {opt for p in params for opt in p.opts if opt.startswith("--")} - {"--help"}


def _concrete(synopsis: str) -> list[list[str]]:
    """The synopsis as parseable argument lists, one per value of each `a|b` choice."""
    tokens = synopsis.replace("\\|", "|").replace("[", " ").replace("]", " ").split()[2:]
    tokens = [t for t in tokens if t != "..."]
    lines: list[list[str]] = [[]]
    for token in tokens:
        if token.startswith("--") or "|" not in token:
            value = token if token.startswith("--") else SAMPLES[token]
            lines = [[*line, value] for line in lines]
        else:
            lines = [[*line, choice] for line in lines[:1] for choice in token.split("|")]
    return lines


def _command_lines(text: str) -> list[str]:
    """Concrete `paymig ...` lines: in code blocks, and inline spans with an option."""
    found: list[str] = []
    in_code = False
    for raw in text.splitlines():
        line = raw.strip().removeprefix(".venv/bin/")
        if line.startswith("```"):
            in_code = not in_code
        elif in_code and line.startswith("paymig "):
            found.append(line)
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    for raw_span in re.findall(r"`([^`\n]+)`", prose):
        span = raw_span.removeprefix(".venv/bin/")
        if span.startswith("paymig ") and " --" in span and "[" not in span:
            found.append(span)
    return found


def _check(line: str) -> None:
    """Parse a concrete line; one with a `<placeholder>` only needs a real command and flags."""
    tokens = shlex.split(line, comments=True)
    if not _PLACEHOLDER.search(line):
        CLI.check(tokens[1], tokens[2:])  # raises RunbookError on any unknown flag or bad value
        return
    assert tokens[1] in GROUP.commands, line
    flags = {t.split("=", 1)[0] for t in tokens[2:] if t.startswith("--")}
    assert flags <= _options(tokens[1]), line


def test_commands_table_lists_every_command_with_every_option() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = _TABLE_ROW.findall(readme)
    assert sorted(name for _, name in rows) == sorted(GROUP.commands)
    for synopsis, name in rows:
        shown = set(re.findall(r"--[a-z][a-z-]*", synopsis))
        assert shown == _options(name), f"{name}: table shows {sorted(shown)}"
        for args in _concrete(synopsis):
            CLI.check(name, args)  # raises RunbookError on a bad flag, value or missing option


def test_a_placeholder_line_needs_a_real_command_and_real_flags() -> None:
    _check("paymig shift --to <live> --force")
    with pytest.raises(AssertionError):
        _check("paymig shift --to <live> --skip-gates")
    with pytest.raises(AssertionError):
        _check("paymig promote --to <live>")
    with pytest.raises(RunbookError):
        _check("paymig shift --to 10 --skip-gates")


def test_choice_synopsis_expands_to_one_line_per_value() -> None:
    assert _concrete("paymig status [--env ENV] [--format text\\|json]") == [
        ["--env", "prod", "--format", "text"],
        ["--env", "prod", "--format", "json"],
    ]


def test_every_command_line_in_the_docs_parses_against_the_cli() -> None:
    checked: dict[str, list[str]] = {}
    for path in _hand_written():
        lines = _command_lines(path.read_text(encoding="utf-8"))
        for line in lines:
            _check(line)
        checked[path.name] = lines
    assert "paymig check --env prod" in checked["README.md"]
    assert (
        "paymig check --env prod              # synth + terraform validate"
        in (checked["deployment.md"])
    )
    assert checked["generated-docs.md"] == [
        "paymig runbook --env prod --output docs/migration_runbook.md   # synthesizes the stack",
        "paymig runbook --env prod --from-json cdktf.out/stacks/paymig-prod/cdk.tf.json --check",
        "paymig controls --env prod --output docs/pci-controls.md",
        "paymig controls --env prod --output docs/pci-controls.md --check",
        "paymig runbook --env prod --output docs/migration_runbook.md",
        "paymig controls --env prod --output docs/pci-controls.md",
    ]
