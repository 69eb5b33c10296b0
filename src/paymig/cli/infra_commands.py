"""`paymig synth` and `paymig check`: build the stack and prove it valid."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from paymig.cli.options import ConfigOption, EnvOption, load
from paymig.config import PaymigConfig, load_config, resolve_config_path, sample_values_in_use
from paymig.config.isolation import isolation_problems
from paymig.errors import CommandFailedError
from paymig.security_scan import find_checkov_config, security_gate
from paymig.terraform import DEFAULT_MIRROR, Terraform, pinned_provider_schema

OutOption = Annotated[Path, typer.Option("--out", help="Output folder of the synthesized stacks.")]


class OutputFormat(StrEnum):
    """Output formats: text for people, json for machines."""

    text = "text"
    json = "json"


FormatOption = Annotated[OutputFormat, typer.Option("--format", help="Output format.")]


def _synth(config: PaymigConfig, out: Path) -> tuple[Path, dict[str, int]]:
    """Synthesize (importing the jsii stack only when needed) and summarise."""
    from paymig.infra.synth import synthesize

    result = synthesize(config, out)
    return result.json_path, result.resources_by_type()


def _print_summary(console: Console, json_path: Path, counts: dict[str, int]) -> None:
    """Print where the stack went and its resources by type."""
    console.print(f"Synthesized {sum(counts.values())} resources to {json_path}", soft_wrap=True)
    table = Table()
    table.add_column("resource type")
    table.add_column("count", justify="right")
    for kind, count in counts.items():
        table.add_row(kind, str(count))
    console.print(table)


def synth(
    env: EnvOption = "prod",
    config: ConfigOption = None,
    out: OutOption = Path("cdktf.out"),
    fmt: FormatOption = OutputFormat.text,
) -> None:
    """Synthesize the environment's stack to OUT/stacks/<stack>/cdk.tf.json."""
    cfg = load(env, config)
    json_path, counts = _synth(cfg, out)
    if fmt is OutputFormat.json:
        print(json.dumps({"stack": cfg.stack_name, "path": str(json_path), "resources": counts}))
    else:
        _print_summary(Console(), json_path, counts)


def check(
    env: EnvOption = "prod",
    config: ConfigOption = None,
    out: OutOption = Path("cdktf.out"),
    mirror: Annotated[
        Path,
        typer.Option("--provider-mirror", help="Local Terraform provider mirror, used if present."),
    ] = DEFAULT_MIRROR,
) -> None:
    """Synthesize; terraform validate; checkov; relations; IAM linter; budget; what state holds."""
    config_path = resolve_config_path(env, config)
    cfg = load_config(config_path)
    err = Console(stderr=True)
    for sample in sample_values_in_use(cfg):
        err.print(f"[yellow]warning:[/] sample value still in place: {sample}", soft_wrap=True)
    console = Console()
    _isolation_gate(console, err, config_path, cfg)
    json_path, counts = _synth(cfg, out)
    _print_summary(console, json_path, counts)
    terraform = Terraform(json_path.parent, mirror=mirror)
    terraform.init()
    terraform.validate()
    console.print(f"[green]terraform validate: {cfg.stack_name} is valid[/]")
    scan = security_gate(json_path, find_checkov_config())
    console.print(
        f"[green]checkov: {scan.passed} passed, 0 failed, {scan.skipped} skipped (justified in "
        ".checkov.yaml)[/]"
    )
    document = json.loads(json_path.read_text(encoding="utf-8"))
    _relations_gate(console, err, cfg, json_path)
    _iam_gate(console, err, document)
    _state_notes(console, document, out, mirror)
    _organisation_notes(console)
    _budget_gate(console, cfg, json_path)


def _isolation_gate(console: Console, err: Console, path: Path, cfg: PaymigConfig) -> None:
    """PCI DSS 6.5.3: no other environment of the folder shares this one's state bucket."""
    problems, unreadable = isolation_problems(path, cfg)
    for line in unreadable:
        err.print(f"[yellow]warning:[/] not compared (invalid): {escape(line)}", soft_wrap=True)
    if problems:
        raise CommandFailedError(problems[0])
    console.print(
        f"[green]environments: state bucket {cfg.state.bucket} belongs to {cfg.environment} "
        f"alone among {path.parent}/*.yaml[/]",
        soft_wrap=True,
    )


def _iam_gate(console: Console, err: Console, document: dict[str, Any]) -> None:
    """Least privilege: the IAM linter flags nothing that the accepted table does not justify."""
    from paymig.iam_lint import ACCEPTED_FILE, lint_stack

    result = lint_stack(document)
    for finding in result.unjustified:
        err.print(f"[red]IAM:[/] {escape(finding.line())}", soft_wrap=True)
    if result.unjustified:
        raise CommandFailedError(
            f"IAM linter (cloudsplaining): {len(result.unjustified)} unjustified finding(s) "
            f"(listed above): narrow the policy or justify it in src/paymig/{ACCEPTED_FILE}"
        )
    console.print(
        f"[green]IAM linter (cloudsplaining): {result.policies} policies, {result.statements} "
        f"statements, 0 unjustified findings, {len(result.justified)} accepted (reasons in "
        f"src/paymig/{ACCEPTED_FILE})[/]",
        soft_wrap=True,
    )


def _state_notes(console: Console, document: dict[str, Any], out: Path, mirror: Path) -> None:
    """What of the VPN's secrets reaches Terraform state, as verified in the provider schema."""
    from paymig.state_secrets import vpn_state_notes

    schema = pinned_provider_schema(document, out / "provider-schema", mirror)
    for note in vpn_state_notes(document, schema):
        console.print(f"state: {note}", soft_wrap=True)


def _organisation_notes(console: Console) -> None:
    """Say plainly which PCI controls this stack leaves to the organisation."""
    from paymig.controls.catalogue import ORGANISATION

    names = ", ".join(c.service for c in ORGANISATION)
    console.print(
        f"organisation: {names} are not created by this stack; they must be provided by the "
        'organisation (docs/pci-controls.md, "Provided by the organisation")',
        soft_wrap=True,
    )


def _relations_gate(console: Console, err: Console, cfg: PaymigConfig, json_path: Path) -> None:
    """Relations AWS enforces between pairs of resources (paymig.relations) all hold."""
    from paymig.relations import RULES, check_stack

    document = json.loads(json_path.read_text(encoding="utf-8"))
    findings = check_stack(document, cfg.region)
    for finding in findings:
        colour = "red" if finding.severity == "error" else "yellow"
        err.print(f"[{colour}]{finding.severity}:[/] {escape(finding.line())}", soft_wrap=True)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise CommandFailedError(
            f"relational check: {len(errors)} broken relation(s) in {cfg.stack_name} (listed above)"
        )
    console.print(
        f"[green]relational check: {len(RULES)} rules, 0 broken relations"
        + (f", {len(findings)} warning(s)" if findings else "")
        + "[/]"
    )


def _budget_gate(console: Console, cfg: PaymigConfig, json_path: Path) -> None:
    """Cost gate (issue 8): the month's totals and every month of the table fit the budget.

    Warns first, on stderr, when the engine enters RDS Extended Support within the table's
    twelve months: the date and what it adds a month.
    """
    from paymig.cost.report import (
        estimate_environment,
        extended_support_notices,
        failures,
        table_environment,
    )

    document = json.loads(json_path.read_text(encoding="utf-8"))
    err = Console(stderr=True)
    for notice in extended_support_notices(cfg, document):
        err.print(f"[yellow]warning:[/] {notice.message()}", soft_wrap=True, highlight=False)
    estimate = estimate_environment(cfg, document)
    table = table_environment(cfg, document)
    found = failures(estimate, table, cfg.budget_usd)
    if found:
        raise CommandFailedError(f"{cfg.stack_name}: " + "; ".join(found))
    peak = max(table.rows, key=lambda r: r.total_usd)
    console.print(
        f"[green]budget: load month ${estimate.load_month_usd:,.2f}, migration "
        f"${estimate.total_monthly_usd:,.2f}/month, steady state "
        f"${estimate.steady_state_monthly_usd:,.2f}/month, highest month {peak.month} "
        f"${peak.total_usd:,.2f}, within ${cfg.budget_usd:,.2f}[/]",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("synth")(synth)
    app.command("check")(check)
