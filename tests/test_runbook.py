"""The generated migration runbook: fresh, complete, and every command real.

The runbook is rendered from the prod configuration and the prod stack synthesized once
per session (`prod_synth`); the command checks run against the real typer app.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from paymig import naming
from paymig.cli import app, main
from paymig.cli.command_check import CliCommandChecker
from paymig.config import AutomationConfig, PaymigConfig
from paymig.cost.report import estimate_environment
from paymig.runbook.commands import paymig_line, quote
from paymig.runbook.consistency import consistency_warnings
from paymig.runbook.context import ALARM_UNITS
from paymig.runbook.facts import RunbookError, stack_facts
from paymig.runbook.render import SECTIONS, RunbookInputs, render_runbook
from paymig.runtime.controller.budget import budget_from_config

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "docs" / "migration_runbook.md"
PROD = ("--env", "prod")
#: The checker `paymig runbook` uses, built from the real typer app.
CLI = CliCommandChecker.from_typer(app)


def _render(config: PaymigConfig, document: dict[str, Any]) -> str:
    return render_runbook(RunbookInputs(config=config, document=document, selector=PROD), CLI)


@pytest.fixture(scope="module")
def prod_doc(prod_synth: Any) -> dict[str, Any]:
    document: dict[str, Any] = prod_synth.document
    return document


@pytest.fixture(scope="module")
def runbook(prod_config: PaymigConfig, prod_doc: dict[str, Any]) -> str:
    return _render(prod_config, prod_doc)


def _sections(text: str) -> dict[str, str]:
    """Body of each `## ` section, keyed by its heading."""
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _paymig_lines(text: str) -> list[str]:
    """Every `paymig ...` command line in the code blocks."""
    lines = []
    in_code = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("```"):
            in_code = not in_code
        elif in_code and line.startswith("paymig "):
            lines.append(line.split("   #", 1)[0].strip())
    return lines


def _inline_mentions(text: str) -> list[str]:
    """Every inline code span of prose that starts with `paymig `."""
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return [span for span in re.findall(r"`([^`\n]+)`", prose) if span.startswith("paymig ")]


# --------------------------------------------------------------------------- freshness


def test_committed_runbook_is_the_generated_prod_runbook(runbook: str) -> None:
    committed = COMMITTED.read_text(encoding="utf-8")
    assert committed == runbook, (
        "docs/migration_runbook.md is stale: run `paymig runbook --env prod "
        "--output docs/migration_runbook.md`"
    )


def test_generation_is_deterministic(prod_config: PaymigConfig, prod_doc: dict[str, Any]) -> None:
    assert _render(prod_config, prod_doc) == _render(prod_config, copy.deepcopy(prod_doc))


# --------------------------------------------------------------------------- structure


def test_every_section_heading_is_present_in_order(runbook: str) -> None:
    headings = re.findall(r"^## (.+)$", runbook, flags=re.MULTILINE)
    assert headings == list(SECTIONS)


TEMPLATES = REPO / "src" / "paymig" / "runbook" / "templates"


def _typed_command_lines(template: str) -> list[str]:
    """`paymig ...` command lines written out in a template instead of rendered by `paymig()`."""
    found = [line.strip() for line in template.splitlines() if line.strip().startswith("paymig ")]
    spans = re.findall(r"`(paymig [^`\n]*)`", template)
    return found + [span for span in spans if " -" in span]


def test_templates_render_every_command_line_through_the_checker() -> None:
    """A command line typed into a template would skip the check: there is none."""
    templates = sorted(TEMPLATES.glob("*.md.j2"))
    assert len(templates) == len(SECTIONS) + 2  # the sections, the front matter, the layout
    for template in templates:
        assert _typed_command_lines(template.read_text(encoding="utf-8")) == [], template.name
    sample = "```bash\n   paymig status --env prod\n```\nThen `paymig shift --to 10`."
    assert _typed_command_lines(sample) == ["paymig status --env prod", "paymig shift --to 10"]


def test_every_paymig_command_line_parses_against_the_cli(runbook: str) -> None:
    lines = _paymig_lines(runbook)
    commands = {line.split()[1] for line in lines}
    assert {"preflight", "check", "validate", "shift", "rollback", "status", "cost"} <= commands
    assert {"synth", "runbook"} <= commands
    for line in lines:
        CLI.check_line(line)  # raises RunbookError on any unknown command/flag/bad value
    mentions = _inline_mentions(runbook)
    assert "paymig validate" in mentions
    for span in mentions:
        if " -" in span:  # a full command line in a table cell
            CLI.check_line(span)
        else:  # a mention such as `paymig shift`: the command must exist
            assert CLI.has_command(span.split()[1]), span


def test_architecture_diagram_has_every_construct_and_real_edges(
    runbook: str, prod_doc: dict[str, Any]
) -> None:
    body = _sections(runbook)[SECTIONS[1]]
    diagram = body.split("```mermaid\n", 1)[1].split("```", 1)[0]
    paths = {
        r["//"]["metadata"]["path"].split("/")[1]
        for items in prod_doc["resource"].values()
        for r in items.values()
    }
    for construct in paths:
        assert re.search(rf'^    {construct}\["{construct} \(\d+ resources\)', diagram, re.M)
    # The weighted records alias the ALB (traffic -> app); DMS egress rules reference the
    # Aurora security group (replication -> data).
    assert "  traffic --> app\n" in diagram
    assert "  replication --> data\n" in diagram
    assert "-.->|site-to-site VPN| onprem" in diagram


# --------------------------------------------------------------------------- values


def test_traffic_phases_dwell_and_gates(runbook: str, prod_config: PaymigConfig) -> None:
    body = _sections(runbook)[SECTIONS[6]]
    phases = prod_config.migration.phases
    assert phases == [0, 10, 50, 100]
    dwell = prod_config.controller.dwell_minutes
    for p in phases:
        stay = f"{dwell[p]} min" if dwell.get(p) else "-"
        assert f"| {p} % | legacy {100 - p} / aws {p} | {stay} |" in body
    shifts = [line for line in _paymig_lines(body) if line.startswith("paymig shift")]
    assert [line.split("--to ")[1].split()[0] for line in shifts] == ["10", "50", "100"]
    for alarm in naming.ALARM_METRICS:
        assert f"`alarm:{alarm}`" in body
    assert "`cdc-latency`, `validation`, `dwell`" in body


def test_cdc_threshold_from_config_in_validation_and_dms(
    runbook: str, prod_config: PaymigConfig
) -> None:
    sections = _sections(runbook)
    gate = prod_config.controller.cdc_latency_threshold_seconds
    assert f"gate `cdc-latency` ok (≤ {gate:g} s)" in sections[SECTIONS[5]]
    assert (
        f"latency ≤ {gate:g} s (`controller.cdc_latency_threshold_seconds`)"
        in (sections[SECTIONS[4]])
    )
    alarm = prod_config.observability.alarms["cdc-latency"].threshold
    assert (
        f"fires above {alarm:g} s (`observability.alarms.cdc-latency.threshold`)"
        in (sections[SECTIONS[4]])
    )


def test_alarm_table_names_each_alarm_with_its_threshold(
    runbook: str, prod_config: PaymigConfig
) -> None:
    body = _sections(runbook)[SECTIONS[5]]
    assert set(ALARM_UNITS) == set(naming.ALARM_METRICS)
    for metric in naming.ALARM_METRICS:
        alarm = prod_config.observability.alarms[metric]
        name = naming.alarm_name(prod_config.stack_name, metric)
        assert f"| `{name}` | {alarm.threshold:g} {ALARM_UNITS[metric]} |" in body
    assert f"| `{naming.composite_alarm_name(prod_config.stack_name)}` |" in body


def test_rollback_budget_comes_from_the_controller(runbook: str, prod_config: PaymigConfig) -> None:
    body = _sections(runbook)[SECTIONS[7]]
    budget = budget_from_config(prod_config)
    assert f"**{budget.total_seconds} s (" in body
    for step in budget.steps:
        assert f"| {step.name} | {step.seconds} | {step.detail} |" in body
    assert "paymig rollback --reason 'manual: <what you saw>' --env prod" in body
    assert "state push -force previous.tfstate" in body
    values = ",".join(f'{{"Value":"{a}"}}' for a in prod_config.dns.legacy_addresses)
    assert f'"SetIdentifier":"legacy","Weight":100,"TTL":60,"ResourceRecords":[{values}]' in body


def test_rotation_days_and_ca_identifier(runbook: str, prod_config: PaymigConfig) -> None:
    body = _sections(runbook)[SECTIONS[8]]
    days = prod_config.database.secret_rotation_days
    assert f"rotate automatically every **{days} days**" in body
    assert f"the stack's rotation rule says {days} days" in body
    assert f"`database.ca_cert_identifier` = `{prod_config.database.ca_cert_identifier}`" in body
    assert prod_config.database.maintenance_window in body


def test_dms_section_uses_the_synthesized_task_id(runbook: str, prod_doc: dict[str, Any]) -> None:
    (task,) = [
        t
        for t in prod_doc["resource"]["aws_dms_replication_task"].values()
        if t["//"]["metadata"]["path"].endswith("replication/task")
    ]
    body = _sections(runbook)[SECTIONS[4]]
    assert (
        "aws dms describe-replication-tasks --filters "
        f"Name=replication-task-id,Values={task['replication_task_id']} \\"
    ) in body
    assert "--start-replication-task-type start-replication" in body


def test_deployment_targets_the_real_ecr_address_first(
    runbook: str, prod_doc: dict[str, Any]
) -> None:
    body = _sections(runbook)[SECTIONS[3]]
    (logical_id,) = prod_doc["resource"]["aws_ecr_repository"]
    target = f"apply -target=aws_ecr_repository.{logical_id}"
    assert target in body
    assert body.index(target) < body.index("docker push") < body.index("plan -out plan.tfplan")
    bucket = prod_doc["terraform"]["backend"]["s3"]["bucket"]
    assert f"BUCKET={bucket}\n" in body


def test_cost_summary_comes_from_the_cost_model(
    runbook: str, prod_config: PaymigConfig, prod_doc: dict[str, Any]
) -> None:
    est = estimate_environment(prod_config, prod_doc)
    sections = _sections(runbook)
    assert f"| {est.total_monthly_usd:,.2f} |" in sections[SECTIONS[10]]
    assert f"| {est.steady_state_monthly_usd:,.2f} |" in sections[SECTIONS[10]]
    assert f"**${est.steady_state_monthly_usd:,.2f}/month**" in sections[SECTIONS[9]]


def test_contacts_are_roles(runbook: str) -> None:
    body = _sections(runbook)[SECTIONS[11]]
    rows = [
        line.split(" | ")[0].lstrip("| ") for line in body.splitlines() if line.startswith("| ")
    ]
    assert "On-call DBA" in rows
    assert "Payments lead" in rows


def test_a_config_change_moves_the_runbook(
    prod_config: PaymigConfig, prod_doc: dict[str, Any]
) -> None:
    controller = prod_config.controller.model_copy(update={"dwell_minutes": {10: 30, 50: 90}})
    database = prod_config.database.model_copy(update={"secret_rotation_days": 14})
    changed = prod_config.model_copy(update={"controller": controller, "database": database})
    text = _render(changed, prod_doc)
    sections = _sections(text)
    assert "| 10 % | legacy 90 / aws 10 | 30 min |" in sections[SECTIONS[6]]
    assert "| 50 % | legacy 50 / aws 50 | 90 min |" in sections[SECTIONS[6]]
    assert "every **14 days**" in sections[SECTIONS[8]]


def test_an_automatic_fallback_puts_paymig_watch_in_sections_8_and_10(
    prod_config: PaymigConfig, prod_doc: dict[str, Any], runbook: str
) -> None:
    automation = AutomationConfig(after_cutover="fallback", fallback_alarm_seconds=300)
    text = _render(prod_config.model_copy(update={"automation": automation}), prod_doc)
    sections = _sections(text)
    (watch,) = [line for line in _paymig_lines(text) if line.split()[1] == "watch"]
    CLI.check_line(watch)
    assert watch == (
        'paymig watch --source-dsn "$PAYMIG_SOURCE_ADMIN_DSN" --target-dsn '
        '"$PAYMIG_TARGET_ADMIN_DSN" --env prod'
    )
    assert (
        "Once the composite alarm has held ALARM for 300 s it runs step 4 itself"
        in (sections[SECTIONS[9]])
    )
    assert (
        "or by `paymig watch` once the composite has held ALARM for 300 s"
        in (sections[SECTIONS[7]])
    )
    # The default (notify) names no watch line, and says who acts.
    assert [line for line in _paymig_lines(runbook) if line.split()[1] == "watch"] == []
    assert "(`automation.after_cutover: notify`, the default)" in _sections(runbook)[SECTIONS[9]]


# --------------------------------------------------------------------------- facts


def test_facts_are_read_from_the_document(
    prod_doc: dict[str, Any], prod_config: PaymigConfig
) -> None:
    facts = stack_facts(prod_doc)
    legacy = facts.record(naming.LEGACY_SET_ID)
    assert legacy.values == tuple(str(a) for a in prod_config.dns.legacy_addresses)
    assert not legacy.is_alias and facts.record(naming.AWS_SET_ID).is_alias
    assert facts.stack_name == "paymig-prod"
    assert facts.state_key == "paymig/prod/terraform.tfstate"
    assert facts.dms_task_id == naming.dms_task_identifier("paymig-prod")
    assert facts.target_groups == ("paymig-prod-blue", "paymig-prod-green")
    assert [(r.set_identifier, r.weight) for r in facts.records] == [("aws", 0), ("legacy", 100)]
    assert facts.rotation_days == (30,)


def test_payment_api_and_its_repository_are_found_among_others(prod_doc: dict[str, Any]) -> None:
    """A second function and repository (e.g. the rollback Lambda) do not confuse the facts."""
    doc = copy.deepcopy(prod_doc)
    doc["resource"]["aws_lambda_function"]["other_fn"] = {
        "function_name": "paymig-prod-rollback",
        "//": {"metadata": {"path": "paymig-prod/observability/rollback"}},
    }
    doc["resource"]["aws_ecr_repository"]["other_repo"] = {
        "name": "paymig-prod/other",
        "//": {"metadata": {"path": "paymig-prod/automation/repository"}},
    }
    facts = stack_facts(doc)
    assert facts.function_name == naming.payment_api_function("paymig-prod")
    assert facts.ecr_repository == "paymig-prod/payment-api"
    assert facts.function_names == (
        "paymig-prod-db-setup",
        "paymig-prod-payment-api",
        "paymig-prod-rollback",
        "paymig-prod-rotation",
        "paymig-prod-validation",
        "paymig-prod-validation-job",
    )
    del doc["resource"]["aws_lambda_function"][facts.function_address.split(".")[1]]
    with pytest.raises(RunbookError, match="no aws_lambda_function named paymig-prod-payment-api"):
        stack_facts(doc)


def test_a_missing_resource_is_an_error_naming_it(prod_doc: dict[str, Any]) -> None:
    broken = copy.deepcopy(prod_doc)
    del broken["resource"]["aws_dms_replication_task"]
    with pytest.raises(
        RunbookError, match=r"expected one aws_dms_replication_task at \.\.\./replication/task"
    ):
        stack_facts(broken)
    with pytest.raises(RunbookError, match="stackName"):
        stack_facts({"resource": {}})


def test_a_target_group_missing_from_the_stack_stops_the_render(
    prod_config: PaymigConfig, prod_doc: dict[str, Any]
) -> None:
    """The manual rollback names both target groups; one the stack lacks is an error."""
    broken = copy.deepcopy(prod_doc)
    groups = broken["resource"]["aws_lb_target_group"]
    (green,) = [lid for lid, body in groups.items() if body["name"] == "paymig-prod-green"]
    del groups[green]
    with pytest.raises(RunbookError, match="target group paymig-prod-green"):
        _render(prod_config, broken)


def test_consistency_warnings_track_names_and_alarms(
    prod_config: PaymigConfig, prod_doc: dict[str, Any]
) -> None:
    facts = stack_facts(prod_doc)
    stack = prod_config.stack_name
    aligned = dataclasses.replace(
        facts,
        dms_task_id=naming.dms_task_identifier(stack),
        metric_alarms=tuple(naming.alarm_name(stack, m) for m in naming.ALARM_METRICS),
        composite_alarms=(naming.composite_alarm_name(stack),),
        function_names=(*facts.function_names, naming.rollback_function_name(stack)),
        sns_topics=(*facts.sns_topics, naming.alarm_topic_name(stack)),
        dynamodb_tables=(naming.audit_table_name(stack),),
    )
    assert consistency_warnings(prod_config, aligned) == []
    (warning,) = consistency_warnings(prod_config, dataclasses.replace(aligned, dynamodb_tables=()))
    assert warning == (
        f"the audit table `{naming.audit_table_name(stack)}` that the controller uses is not "
        "in the synthesized stack"
    )
    no_alarms = dataclasses.replace(aligned, metric_alarms=(), composite_alarms=())
    (warning,) = consistency_warnings(prod_config, no_alarms)
    assert f"`{naming.composite_alarm_name(stack)}`" in warning
    other_task = dataclasses.replace(aligned, dms_task_id="x-task")
    (warning,) = consistency_warnings(prod_config, other_task)
    assert "`x-task`" in warning


# --------------------------------------------------------------------------- commands


def test_paymig_line_quotes_and_keeps_variables_expandable() -> None:
    line = paymig_line(CLI, "shift", "--to", "10", "--reason", "phase 10: GO", "--env", "prod")
    assert line == "paymig shift --to 10 --reason 'phase 10: GO' --env prod"
    line = paymig_line(CLI, "preflight", "--source-dsn", "$PAYMIG_SOURCE_DSN")
    assert line == 'paymig preflight --source-dsn "$PAYMIG_SOURCE_DSN"'


def test_unknown_command_flag_or_value_is_refused() -> None:
    with pytest.raises(RunbookError, match="command `paymig deploy` does not exist"):
        paymig_line(CLI, "deploy")
    with pytest.raises(RunbookError, match="`paymig shift` has no option --percent"):
        paymig_line(CLI, "shift", "--percent", "10", "--reason", "x")
    with pytest.raises(RunbookError, match="--to"):
        paymig_line(CLI, "shift", "--to", "ten", "--reason", "x")
    with pytest.raises(RunbookError, match="not a paymig command line"):
        CLI.check_line("terraform apply")
    assert CLI.has_command("runbook")
    assert not CLI.has_command("deploy")


def test_required_options_cannot_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYMIG_TARGET_DSN", "host=x")
    with pytest.raises(RunbookError, match="--target-dsn"):
        paymig_line(CLI, "validate", "--source-dsn", "$PAYMIG_SOURCE_DSN")
    assert __import__("os").environ["PAYMIG_TARGET_DSN"] == "host=x"


class _RecordingChecker:
    """The CLI's checker, remembering each line it accepted (or refusing one command)."""

    def __init__(self, refuse: str | None = None) -> None:
        self.accepted: list[str] = []
        self.refuse = refuse

    def check(self, name: str, args: Sequence[str]) -> None:
        if name == self.refuse:
            raise RunbookError(f"refused paymig {name}")
        CLI.check(name, args)
        self.accepted.append(" ".join(["paymig", name, *(quote(a) for a in args)]))


def test_every_command_line_of_the_runbook_went_through_the_checker(
    prod_config: PaymigConfig, prod_doc: dict[str, Any]
) -> None:
    recorder = _RecordingChecker()
    text = render_runbook(
        RunbookInputs(config=prod_config, document=prod_doc, selector=PROD), recorder
    )
    full_spans = [span for span in _inline_mentions(text) if " -" in span]
    assert set(_paymig_lines(text)) | set(full_spans) == set(recorder.accepted)
    with pytest.raises(RunbookError, match="refused paymig rollback"):
        render_runbook(
            RunbookInputs(config=prod_config, document=prod_doc, selector=PROD),
            _RecordingChecker(refuse="rollback"),
        )


# --------------------------------------------------------------------------- CLI


def test_cli_writes_and_checks_the_runbook(
    tmp_path: Path, prod_doc: dict[str, Any], runbook: str, capsys: pytest.CaptureFixture[str]
) -> None:
    doc_path = tmp_path / "cdk.tf.json"
    doc_path.write_text(json.dumps(prod_doc))
    out = tmp_path / "docs" / "runbook.md"
    args = ["runbook", "--env", "prod", "--from-json", str(doc_path), "--output", str(out)]
    assert main(args) == 0
    assert out.read_text(encoding="utf-8") == runbook
    assert main([*args, "--check"]) == 0
    out.write_text(runbook + "edited by hand\n", encoding="utf-8")
    capsys.readouterr()
    assert main([*args, "--check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"paymig: {out} is stale") and err.count("\n") == 1


def test_cli_with_config_path_puts_it_on_every_command(
    tmp_path: Path, prod_doc: dict[str, Any]
) -> None:
    doc_path = tmp_path / "cdk.tf.json"
    doc_path.write_text(json.dumps(prod_doc))
    out = tmp_path / "runbook.md"
    config = str(REPO / "config" / "prod.yaml")
    args = ["runbook", "--config", config, "--from-json", str(doc_path), "--output", str(out)]
    assert main(args) == 0
    lines = _paymig_lines(out.read_text(encoding="utf-8"))
    assert lines
    assert all(line.endswith(f"--env prod --config {config}") for line in lines)


def test_cli_check_and_write_errors_are_one_line(
    tmp_path: Path, prod_doc: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    doc_path = tmp_path / "cdk.tf.json"
    doc_path.write_text(json.dumps(prod_doc))
    base = ["runbook", "--from-json", str(doc_path)]
    absent = tmp_path / "absent.md"
    assert main([*base, "--output", str(absent), "--check"]) == 2
    assert capsys.readouterr().err == (
        f"paymig: --output {absent}: cannot read: No such file or directory\n"
    )
    assert main([*base, "--output", str(tmp_path)]) == 2  # a directory
    err = capsys.readouterr().err
    assert err.startswith(f"paymig: --output {tmp_path}: cannot write: ")
    assert err.count("\n") == 1


def test_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.json"
    assert main(["runbook", "--from-json", str(missing), "--output", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err == f"paymig: --from-json {missing}: file not found\n"
    not_stack = tmp_path / "empty.json"
    not_stack.write_text("{}")
    assert main(["runbook", "--from-json", str(not_stack), "--output", str(tmp_path / "x")]) == 2
    assert "stackName" in capsys.readouterr().err
