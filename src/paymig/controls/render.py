"""Render the PCI DSS control map (Markdown) from the configuration and the synthesized stack.

Every claim is built from the stack and must hold (see :mod:`paymig.controls.evidence`),
every cited test must exist in `tests/`, and every `paymig` command line goes through the
caller's :class:`~paymig.runbook.commands.CommandChecker`. The output is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from paymig.config import PaymigConfig
from paymig.controls.catalogue import ORGANISATION, REQUIREMENTS, Requirement
from paymig.controls.evidence import Claim, ControlMapError
from paymig.controls.tests_index import missing_tests
from paymig.relations.stack import StackGraph
from paymig.runbook.commands import CommandChecker, paymig_line

#: Default output path of the committed control map (relative to the repository root).
DEFAULT_OUTPUT = Path("docs/pci-controls.md")


@dataclass(frozen=True)
class ControlMapInputs:
    """What the control map is rendered from."""

    config: PaymigConfig
    document: Mapping[str, Any]
    #: `--env`/`--config` arguments every rendered `paymig` command carries.
    selector: tuple[str, ...]
    tests_dir: Path


@dataclass(frozen=True)
class MappedRequirement:
    """A requirement with its claims built from the stack."""

    requirement: Requirement
    claims: list[Claim]


def _code(text: object) -> str:
    """Inline code."""
    return f"`{text}`"


@cache
def _environment() -> jinja2.Environment:
    """The Jinja environment of the control-map template (built once)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("paymig.controls", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - the output is Markdown, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["code"] = _code
    return env


def map_requirements(
    config: PaymigConfig, document: Mapping[str, Any], tests_dir: Path
) -> list[MappedRequirement]:
    """Every requirement with its claims; raise if a claim fails or a cited test is missing."""
    missing = missing_tests((t for r in REQUIREMENTS for t in r.tests), tests_dir)
    if missing:
        raise ControlMapError(f"control map cites tests that do not exist: {', '.join(missing)}")
    graph = StackGraph(document)
    return [MappedRequirement(r, r.claims(graph, config)) for r in REQUIREMENTS]


def render_controls(inputs: ControlMapInputs, checker: CommandChecker) -> str:
    """The whole control map as Markdown text; `checker` vets every `paymig` command line."""
    mapped = map_requirements(inputs.config, inputs.document, inputs.tests_dir)
    output = ("--output", str(DEFAULT_OUTPUT))
    commands = {
        "regenerate": paymig_line(checker, "controls", *inputs.selector, *output),
        "verify": paymig_line(checker, "controls", *inputs.selector, *output, "--check"),
        "check": paymig_line(checker, "check", *inputs.selector),
    }
    template = _environment().get_template("pci-controls.md.j2")
    text = template.render(
        stack=inputs.config.stack_name,
        region=inputs.config.region,
        requirements=mapped,
        organisation=ORGANISATION,
        commands=commands,
    )
    return text.rstrip("\n") + "\n"
