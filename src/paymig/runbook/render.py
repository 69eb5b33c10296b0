"""Render the migration runbook (Markdown) from the configuration and the synthesized stack.

The prose is in the Jinja2 templates under ``templates/``: ``runbook.md.j2`` lays out the
front matter and one template per section of :data:`SECTIONS`. Every value they print
comes from :func:`~paymig.runbook.context.runbook_context`, i.e. from the environment's
configuration, the :class:`~paymig.runbook.facts.StackFacts` read from the synthesized
Terraform, or the code that owns a computation (the controller's gates and rollback
budget, the cost model); every ``paymig`` command line goes through the caller's
:class:`~paymig.runbook.commands.CommandChecker`. The output is deterministic: no
timestamps, stable ordering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from paymig.config import PaymigConfig
from paymig.runbook.commands import CommandChecker
from paymig.runbook.context import runbook_context

#: Default output path of the committed runbook (relative to the repository root).
DEFAULT_OUTPUT = Path("docs/migration_runbook.md")

#: Each numbered section's heading and the template of its body, in order.
_SECTION_TEMPLATES = (
    ("1. Prerequisites and access", "prerequisites.md.j2"),
    ("2. Architecture", "architecture.md.j2"),
    ("3. Pre-migration checklist", "checklist.md.j2"),
    ("4. Deployment", "deployment.md.j2"),
    ("5. Start DMS: full load, then CDC", "dms.md.j2"),
    ("6. Validation checkpoints (go / no-go)", "validation.md.j2"),
    ("7. Traffic phases", "traffic.md.j2"),
    ("8. Rollback", "rollback.md.j2"),
    ("9. Certificate (CA) rotation and secret rotation", "rotation.md.j2"),
    ("10. Write cutover, fallback and finish", "cleanup.md.j2"),
    ("11. Cost summary", "cost.md.j2"),
    ("12. Contacts (roles)", "contacts.md.j2"),
)

#: Section headings, in order; tests check each is present.
SECTIONS = tuple(heading for heading, _ in _SECTION_TEMPLATES)


@dataclass(frozen=True)
class RunbookInputs:
    """What the runbook is rendered from."""

    config: PaymigConfig
    document: Mapping[str, Any]
    #: `--env`/`--config` arguments every rendered `paymig` command carries.
    selector: tuple[str, ...]


def _minutes(seconds: float) -> str:
    """`265` -> `4 min 25 s`."""
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    if minutes and rest:
        return f"{minutes} min {rest} s"
    return f"{minutes} min" if minutes else f"{rest} s"


def _code(text: object) -> str:
    """Inline code."""
    return f"`{text}`"


def _fmt(value: Any, spec: str) -> str:
    """`format(value, spec)`, e.g. `1234.5|fmt(",.2f")` -> `1,234.50`."""
    return format(value, spec)


def _cell(text: object) -> str:
    """A value made safe for a Markdown table cell (a `|` would end the cell)."""
    return str(text).replace("|", "\\|")


@cache
def _environment() -> jinja2.Environment:
    """The Jinja environment of the runbook templates (built once)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("paymig.runbook", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - the output is Markdown for a terminal, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(code=_code, fmt=_fmt, cell=_cell, minutes=_minutes)
    return env


def render_runbook(inputs: RunbookInputs, checker: CommandChecker) -> str:
    """The whole runbook as Markdown text; `checker` vets every `paymig` command line."""
    context = runbook_context(
        inputs.config, inputs.document, inputs.selector, checker, str(DEFAULT_OUTPUT)
    )
    template = _environment().get_template("runbook.md.j2")
    text = template.render(context.as_mapping(), sections=_SECTION_TEMPLATES)
    return text.rstrip("\n") + "\n"
