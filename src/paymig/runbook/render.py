"""Render the migration runbook (Markdown) from the configuration and the synthesized stack.

Every value printed here comes from one of three places: the environment's
:class:`~paymig.config.PaymigConfig`, the :class:`~paymig.runbook.facts.StackFacts` read
from the synthesized Terraform, or the code that owns a computation (the controller's
gates and rollback budget, the cost model). Every ``paymig`` command line goes through
:func:`~paymig.runbook.commands.paymig_line` with the caller's checker, which refuses
commands and flags the CLI does not have. The output is deterministic: no timestamps,
stable ordering.
"""

# Shell commands are kept one command per source line, as the operator will read and
# paste them, so some string literals here are longer than the line limit.
# ruff: noqa: E501

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from paymig import naming
from paymig.config import PaymigConfig
from paymig.cost.model import budget_gate
from paymig.cost.report import estimate_environment, lambda_by_volume
from paymig.runbook.commands import CommandChecker, paymig_line
from paymig.runbook.facts import RunbookError, StackFacts, stack_facts
from paymig.runtime.controller.core import (
    ROLLBACK_LIMIT_SECONDS,
    ROLLBACK_TARGET_SECONDS,
    ControllerSettings,
    GateFacts,
    budget_from_config,
    evaluate_gates,
)

#: Default output path of the committed runbook (relative to the repository root).
DEFAULT_OUTPUT = Path("docs/migration_runbook.md")

#: Units of each alarm's threshold (the alarm names and order live in `paymig.naming`).
ALARM_UNITS: Mapping[str, str] = {
    "5xx-rate": "% of requests",
    "p99-latency": "s",
    "cdc-latency": "s",
    "dms-task-failure": "failure events",
    "aurora-cpu": "% CPU",
    "replica-lag": "ms",
}

#: Section headings, in order; tests check each is present.
SECTIONS = (
    "1. Prerequisites and access",
    "2. Architecture",
    "3. Pre-migration checklist",
    "4. Deployment",
    "5. Start DMS: full load, then CDC",
    "6. Validation checkpoints (go / no-go)",
    "7. Traffic phases",
    "8. Rollback",
    "9. Certificate (CA) rotation and secret rotation",
    "10. Post-migration clean-up",
    "11. Cost summary",
    "12. Contacts (roles)",
)

#: How every `paymig validate` line names the two databases (the DSNs stay in the shell).
_DSNS = ("--source-dsn", "$PAYMIG_SOURCE_DSN", "--target-dsn", "$PAYMIG_TARGET_DSN")

#: A fixed instant for evaluating gate *names* (never printed): keeps output stable.
_GATE_PROBE_TIME = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RunbookInputs:
    """What the runbook is rendered from."""

    config: PaymigConfig
    document: Mapping[str, Any]
    #: `--env`/`--config` arguments every rendered `paymig` command carries.
    selector: tuple[str, ...]


class _Doc:
    """A small Markdown builder; numbered steps restart at each :meth:`steps` call."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._step = 0
        self._indent = ""

    def add(self, *lines: str) -> None:
        """Append lines verbatim."""
        self.lines.extend(lines)

    def para(self, text: str) -> None:
        """A top-level paragraph (it ends a numbered list) followed by a blank line."""
        self._indent = ""
        self.lines.extend([text, ""])

    def heading(self, level: int, text: str) -> None:
        """A heading followed by a blank line; it ends a numbered list."""
        self._indent = ""
        self.lines.extend(["#" * level + " " + text, ""])

    def steps(self) -> None:
        """Restart step numbering."""
        self._step = 0

    def step(self, text: str) -> None:
        """A numbered step; code blocks after it are indented into its list item."""
        self._step += 1
        self._indent = "   "
        self.lines.extend([f"{self._step}. {text}", ""])

    def code(self, *commands: str, lang: str = "bash", indent: str | None = None) -> None:
        """A fenced code block, indented into the current list item if there is one."""
        pad = self._indent if indent is None else indent
        block = [f"```{lang}", *commands, "```"]
        self.lines.extend([pad + line for line in block] + [""])

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A Markdown table."""
        self.lines.append("| " + " | ".join(header) + " |")
        self.lines.append("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            self.lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
        self.lines.append("")

    def text(self) -> str:
        """The document, ending in exactly one newline."""
        return "\n".join(self.lines).rstrip("\n") + "\n"


def _cmd(inputs: RunbookInputs, checker: CommandChecker) -> Callable[..., str]:
    """A checked `paymig` line renderer that appends the environment selector."""

    def render(name: str, *args: str) -> str:
        return paymig_line(checker, name, *args, *inputs.selector)

    return render


def _code(text: str) -> str:
    """Inline code."""
    return f"`{text}`"


def _minutes(seconds: float) -> str:
    """`265` -> `4 min 25 s`."""
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    if minutes and rest:
        return f"{minutes} min {rest} s"
    return f"{minutes} min" if minutes else f"{rest} s"


def _gate_names(cfg: PaymigConfig, phase: int) -> list[str]:
    """The gate names `paymig shift` evaluates (and `paymig status` prints), in order."""
    settings = ControllerSettings.from_config(cfg)
    return [g.name for g in evaluate_gates(settings, GateFacts(now=_GATE_PROBE_TIME), phase)]


# --------------------------------------------------------------------------- checks


def consistency_warnings(cfg: PaymigConfig, facts: StackFacts) -> list[str]:
    """Where the runtime's names (`paymig.naming`) and the synthesized stack disagree.

    The controller finds resources by these names; each mismatch is a gate or rollback
    step that cannot work until the stack and the names agree, so the runbook shows it.
    """
    stack = cfg.stack_name
    warnings = []
    if facts.stack_name != stack:
        warnings.append(
            f"the synthesized stack is {_code(facts.stack_name)} but the configuration "
            f"selects {_code(stack)}"
        )
    expected_task = naming.dms_task_identifier(stack)
    if expected_task != facts.dms_task_id:
        warnings.append(
            f"the controller's CDC-latency gate reads task {_code(expected_task)} "
            f"(`paymig.naming.dms_task_identifier`) but the stack creates "
            f"{_code(facts.dms_task_id)}: the `cdc-latency` gate will find no datapoint and fail"
        )
    if naming.dms_instance_identifier(stack) != facts.dms_instance_id:
        warnings.append(
            f"the controller reads DMS instance {_code(naming.dms_instance_identifier(stack))} "
            f"but the stack creates {_code(facts.dms_instance_id)}"
        )
    if naming.alb_name(stack) != facts.alb_name:
        warnings.append(
            f"the controller looks for load balancer {_code(naming.alb_name(stack))} but the "
            f"stack creates {_code(facts.alb_name)}"
        )
    expected_alarms = set(naming.alarm_names(stack))
    present = set(facts.metric_alarms) | set(facts.composite_alarms)
    missing_alarms = sorted(expected_alarms - present)
    if missing_alarms:
        warnings.append(
            "alarms the gates and the automatic rollback rely on are not in the synthesized "
            "stack: " + ", ".join(_code(a) for a in missing_alarms) + " (every `alarm:` gate "
            "fails and no automatic rollback fires until they exist)"
        )
    expected = (
        ("rollback function", naming.rollback_function_name(stack), facts.function_names),
        ("alarm topic", naming.alarm_topic_name(stack), facts.sns_topics),
        ("audit table", naming.audit_table_name(stack), facts.dynamodb_tables),
        ("DMS event topic", naming.dms_event_topic_name(stack), facts.sns_topics),
    )
    for what, name, present_names in expected:
        if name not in present_names:
            warnings.append(
                f"the {what} {_code(name)} that the controller uses is not in the synthesized stack"
            )
    return warnings


# --------------------------------------------------------------------------- sections


def _front(doc: _Doc, inputs: RunbookInputs, facts: StackFacts, checker: CommandChecker) -> None:
    """Title, provenance and the stack at a glance."""
    cfg = inputs.config
    cmd = _cmd(inputs, checker)
    doc.heading(1, f"Migration runbook: {facts.stack_name} ({cfg.environment}, {cfg.region})")
    doc.para(
        "<!-- Generated by `paymig runbook`. Do not edit by hand: change the code or the "
        "configuration and regenerate. A test fails when this file is stale. -->"
    )
    doc.para(
        "This runbook moves the payment API and its PostgreSQL database from the on-premises "
        "system to AWS with zero downtime. Every name below is read from the synthesized "
        "Terraform of this environment, every threshold from its configuration, and every "
        "`paymig` command has been checked against the CLI. Regenerate it after any change:"
    )
    doc.code(cmd("runbook", "--output", str(DEFAULT_OUTPUT)))
    doc.heading(3, "The stack at a glance")
    legacy = facts.record(naming.LEGACY_SET_ID)
    aws = facts.record(naming.AWS_SET_ID)
    doc.table(
        ("What", "Name"),
        [
            ("Terraform state", f"`s3://{facts.state_bucket}/{facts.state_key}` ({facts.state_region})"),
            ("Public API record", f"`{facts.record_name}` in hosted zone `{facts.hosted_zone_id}`"),
            ("Weighted records", f"`{legacy.set_identifier}` → {legacy.target}; `{aws.set_identifier}` → {aws.target}"),
            ("Load balancer / target groups", f"`{facts.alb_name}` / " + ", ".join(f"`{t}`" for t in facts.target_groups)),
            ("Payment API function / aliases", f"`{facts.function_name}` / " + ", ".join(f"`{a}`" for a in facts.lambda_aliases)),
            ("Image repository (ECR)", f"`{facts.ecr_repository}`, tag `{cfg.app.image_tag}`"),
            ("Aurora cluster / instances", f"`{facts.cluster_identifier}` / " + ", ".join(f"`{i}`" for i in facts.instance_identifiers)),
            ("DMS instance / task", f"`{facts.dms_instance_id}` ({facts.dms_instance_class}, Multi-AZ {'on' if facts.dms_multi_az else 'off'}) / `{facts.dms_task_id}` ({facts.dms_migration_type})"),
            ("DMS endpoints", ", ".join(f"`{e}`" for e in facts.dms_endpoint_ids)),
            ("Secrets", ", ".join(f"`{s}`" for s in facts.secret_names) + "; the Aurora master secret is created and rotated by RDS"),
            ("KMS aliases", ", ".join(f"`{k}`" for k in facts.kms_aliases)),
            ("WAF web ACL", f"`{facts.web_acl_name}`"),
            ("Log groups", ", ".join(f"`{g}`" for g in facts.log_groups)),
            ("Alarm topic / rollback function / audit table", f"`{naming.alarm_topic_name(cfg.stack_name)}` / `{naming.rollback_function_name(cfg.stack_name)}` / `{naming.audit_table_name(cfg.stack_name)}`"),
        ],
    )  # fmt: skip
    warnings = consistency_warnings(cfg, facts)
    if warnings:
        doc.heading(3, "Open issues found while generating this runbook")
        doc.para(
            "The code that runs the migration and the synthesized stack disagree on the "
            "points below. Until they are fixed the named steps cannot pass; do not work "
            "around them by hand in production."
        )
        doc.add(*[f"- {w}" for w in warnings], "")


def _prerequisites(doc: _Doc, inputs: RunbookInputs, facts: StackFacts) -> None:
    """Section 1."""
    cfg = inputs.config
    doc.heading(2, SECTIONS[0])
    doc.add(
        f"- **AWS access** to the account that holds `{facts.stack_name}` in `{cfg.region}`, "
        "with rights to run Terraform for the whole stack (an administrator role for "
        "deployment) and, for the migration itself, Route 53 on the hosted zone "
        f"`{facts.hosted_zone_id}`, the listener of `{facts.alb_name}`, CloudWatch alarms, "
        "DMS and DynamoDB on the audit table. Check with `aws sts get-caller-identity`: the "
        "controller records that identity in the audit trail.",
        f"- **Network**: the site-to-site VPN to the on-prem network `{cfg.onprem.cidr}` is "
        f"up, and you can reach the source database `{cfg.replication.source.host}:"
        f"{cfg.replication.source.port}` (database `{cfg.replication.source.database_name}`) "
        "and, from inside the VPC (bastion or VPN), the Aurora writer on 5432 over TLS.",
        "- **Tools**: Python 3.11 with this repository installed (`bash scripts/setup.sh`, "
        "then `.venv/bin/paymig`), Terraform ≥ 1.10 (S3 native locking), the AWS CLI v2, "
        "Docker (image build) and `psql`.",
        "- **Credentials stay out of command lines**: put passwords in `~/.pgpass` or "
        "`PGPASSWORD`, never in a DSN that lands in shell history. `paymig validate` reads "
        "`PAYMIG_SOURCE_DSN` and `PAYMIG_TARGET_DSN`:",
        "",
    )
    doc.code(
        f"export PAYMIG_SOURCE_DSN='host={cfg.replication.source.host} "
        f"port={cfg.replication.source.port} dbname={cfg.replication.source.database_name} "
        "user=<read-only role> sslmode=verify-full sslrootcert=<on-prem CA bundle>'",
        "export PAYMIG_TARGET_DSN='host=<Aurora writer endpoint> port=5432 "
        f"dbname={cfg.database.database_name} user=<read-only role> sslmode=verify-full "
        "sslrootcert=<RDS CA bundle for " + cfg.region + ">'",
    )
    doc.add(
        "- **Configuration**: `config/" + cfg.environment + ".yaml` has no `# SAMPLE` value "
        "left (`paymig check` warns about each one).",
        "- **Change window**: agree the traffic windows with the payments lead (see "
        "contacts); "
        + ", ".join(
            f"phase {p} % holds for {m} min"
            for p, m in sorted(cfg.controller.dwell_minutes.items())
            if m
        )
        + " (`controller.dwell_minutes`) before the next step.",
        "",
    )


#: Resource types that wire others together; the diagram names the resources they wire.
_PLUMBING = re.compile(
    r"_(policy|policy_attachment|association|attachment|permission|alias|rule|route|"
    r"lifecycle_policy|versioning|public_access_block|notification|"
    r"server_side_encryption_configuration|lifecycle_configuration|logging_configuration|"
    r"validation)$"
)


#: Types a reader looks for first in a box of the diagram (presentation order only).
_HEADLINE = (
    "aws_lb",
    "aws_lambda_function",
    "aws_ecr_repository",
    "aws_rds_cluster",
    "aws_rds_cluster_instance",
    "aws_dms_replication_instance",
    "aws_dms_replication_task",
    "aws_dms_endpoint",
    "aws_vpc",
    "aws_subnet",
    "aws_nat_gateway",
    "aws_vpn_connection",
    "aws_wafv2_web_acl",
    "aws_route53_record",
    "aws_route53_health_check",
    "aws_cloudwatch_dashboard",
    "aws_cloudwatch_metric_alarm",
    "aws_cloudwatch_composite_alarm",
    "aws_dynamodb_table",
    "aws_secretsmanager_secret",
    "aws_kms_key",
)


def _is_plumbing(kind: str) -> bool:
    """Whether a resource type only connects or configures other resources."""
    return bool(_PLUMBING.search(kind))


def _mermaid_id(name: str) -> str:
    """A Mermaid-safe node id."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _architecture(doc: _Doc, inputs: RunbookInputs, facts: StackFacts) -> None:
    """Section 2: a Mermaid diagram of the stack's top-level constructs."""
    cfg = inputs.config
    doc.heading(2, SECTIONS[1])
    doc.para(
        "Rendered from the synthesized stack: one box per top-level construct (with its "
        'resource count and largest resource types); an arrow means "references a resource '
        'of". Clients reach the API name through the weighted records.'
    )
    lines = ["flowchart LR", '  clients(["Clients"])']
    lines.append(
        f'  onprem[("On-prem PostgreSQL<br/>{cfg.replication.source.host}:'
        f'{cfg.replication.source.port}")]'
    )
    legacy = facts.record(naming.LEGACY_SET_ID)
    lines.append(f'  legacy["Legacy API<br/>{legacy.target}"]')
    lines.append(f'  subgraph {_mermaid_id(facts.stack_name)}["{facts.stack_name} ({cfg.region})"]')
    for construct in facts.constructs:
        main = sorted(
            [(k, n) for k, n in construct.counts if not _is_plumbing(k)] or construct.counts,
            key=lambda kn: (
                _HEADLINE.index(kn[0]) if kn[0] in _HEADLINE else len(_HEADLINE),
                -kn[1],
                kn[0],
            ),
        )
        top = "<br/>".join(f"{kind.removeprefix('aws_')} x{n}" for kind, n in main[:4])
        lines.append(
            f'    {_mermaid_id(construct.name)}["{construct.name} '
            f'({construct.total} resources)<br/>{top}"]'
        )
    lines.append("  end")
    owners = {c.name: c for c in facts.constructs}
    for construct in facts.constructs:
        for used in construct.uses:
            lines.append(f"  {_mermaid_id(construct.name)} --> {_mermaid_id(used)}")
    for construct in facts.constructs:
        kinds = {kind for kind, _ in construct.counts}
        node = _mermaid_id(construct.name)
        if "aws_route53_health_check" in kinds or (
            "aws_route53_record" in kinds and construct.name == "traffic"
        ):
            lines.append(f"  clients -->|{facts.record_name}| {node}")
            lines.append(f"  {node} -->|weight {legacy.set_identifier}| legacy")
        if "aws_vpn_connection" in kinds:
            lines.append(f"  {node} -.->|site-to-site VPN| onprem")
        if "aws_dms_replication_task" in kinds:
            lines.append(f"  onprem ==>|DMS {facts.dms_migration_type}| {node}")
    if "traffic" not in owners:
        lines.append(f"  clients --> {_mermaid_id(facts.constructs[0].name)}")
    doc.code(*lines, lang="mermaid")


def _checklist(
    doc: _Doc, inputs: RunbookInputs, facts: StackFacts, checker: CommandChecker
) -> None:
    """Section 3."""
    cfg = inputs.config
    cmd = _cmd(inputs, checker)
    doc.heading(2, SECTIONS[2])
    doc.para("Tick every box before the deployment window. Any unticked box is a no-go.")
    doc.add(
        f"- [ ] The source is ready for DMS: `wal_level = logical`, free replication slots "
        f"and WAL senders, a primary key on every replicated table, no column type the "
        f"`{cfg.replication.lob_mode}` LOB mode cannot carry, TLS, the replication role's "
        f"privileges, a supported major version ({cfg.replication.source.engine_major_version}). "
        "Run, and expect exit 0 with every row `pass`:",
        "",
    )
    doc.code(cmd("preflight", "--source-dsn", "$PAYMIG_SOURCE_DSN"), indent="  ")
    doc.add(
        "  A `FAIL` names the table or setting; fix it on the source (the on-call DBA owns "
        "this) and run it again. Exit 2 means it could not connect: check the DSN, the VPN "
        "and the CA bundle.",
        f"- [ ] The logical replication slot name `{cfg.replication.slot_name}` is free on "
        "the source (`SELECT slot_name FROM pg_replication_slots;`).",
        f"- [ ] The on-prem CA certificate in `{cfg.replication.source.ca_certificate_path}` "
        "is the one that signed the source's server certificate (DMS uses `verify-full`).",
        "- [ ] The stack is valid, secure and within budget:",
        "",
    )
    doc.code(cmd("check"), indent="  ")
    doc.add(
        "  Good: `terraform validate` valid, `checkov: … 0 failed`, and the budget line "
        f"within ${cfg.budget_usd:,.0f}. Anything else stops the deployment.",
        f"- [ ] `{cfg.dns.api_record_name}` has TTL ≤ {cfg.dns.record_ttl_seconds} s on the "
        f"legacy side for at least one old TTL before phase 10 (resolvers must honour the "
        "weights quickly; the rollback budget assumes this TTL).",
        f"- [ ] The legacy endpoint `{cfg.dns.legacy_endpoint}` answers `GET /health` over "
        "HTTPS (the Route 53 health check of the legacy record probes it).",
        "- [ ] Everyone in the contacts table knows the window and the rollback command.",
        "",
    )


def _deployment(
    doc: _Doc, inputs: RunbookInputs, facts: StackFacts, checker: CommandChecker
) -> None:
    """Section 4."""
    cfg = inputs.config
    cmd = _cmd(inputs, checker)
    stack_dir = f"cdktf.out/stacks/{facts.stack_name}"
    doc.heading(2, SECTIONS[3])
    doc.steps()
    doc.step(
        f"**Bootstrap the state bucket** (once per account). Versioning is what makes an "
        f"infrastructure rollback possible (section 8). Skip if `s3://{facts.state_bucket}` "
        "already exists with versioning `Enabled`."
    )
    doc.code(
        f"BUCKET={facts.state_bucket}",
        f'aws s3api create-bucket --bucket "$BUCKET" --region {facts.state_region} \\',
        f"  --create-bucket-configuration LocationConstraint={facts.state_region}",
        'aws s3api put-bucket-versioning --bucket "$BUCKET" --versioning-configuration Status=Enabled',
        'aws s3api put-bucket-encryption --bucket "$BUCKET" --server-side-encryption-configuration \\',
        "  '{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":{\"SSEAlgorithm\":\"aws:kms\"},\"BucketKeyEnabled\":true}]}'",
        'aws s3api put-public-access-block --bucket "$BUCKET" --public-access-block-configuration \\',
        "  BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
        'aws s3api get-bucket-versioning --bucket "$BUCKET"   # expect "Status": "Enabled"',
    )  # fmt: skip
    doc.step("**Synthesize and check** the stack (validate, checkov, budget gate):")
    doc.code(cmd("check", "--out", "cdktf.out"))
    doc.step(
        "**Initialise Terraform** with the S3 backend and note the current commit and state "
        "version: they are what an infrastructure rollback returns to."
    )
    doc.code(
        f"terraform -chdir={stack_dir} init",
        "git rev-parse HEAD",
        f"aws s3api list-object-versions --bucket {facts.state_bucket} --prefix {facts.state_key} \\",
        "  --query 'Versions[?IsLatest].[VersionId,LastModified]' --output text",
    )
    doc.step(
        "**Targeted first apply: the image repository only.** The Lambda function is created "
        "from an image, so the repository must exist and the image be pushed before the "
        "function. `-target` also creates what the repository depends on (its KMS key)."
    )
    doc.code(f"terraform -chdir={stack_dir} apply -target={facts.ecr_address}")
    doc.step(
        f"**Build and push the payment API image** with the tag from config "
        f"(`app.image_tag` = `{cfg.app.image_tag}`; tags are immutable, so a rebuild needs a "
        "new tag):"
    )
    doc.code(
        f"REPO=$(aws ecr describe-repositories --repository-names {facts.ecr_repository} \\",
        "  --query 'repositories[0].repositoryUri' --output text)",
        f'aws ecr get-login-password --region {cfg.region} | docker login --username AWS --password-stdin "${{REPO%%/*}}"',
        f'docker build -f docker/payment-api/Dockerfile -t "$REPO:{cfg.app.image_tag}" .',
        f'docker push "$REPO:{cfg.app.image_tag}"',
    )  # fmt: skip
    doc.step(
        "**Plan and apply the whole stack.** Read the plan: nothing may be destroyed on a first apply."
    )
    doc.code(
        f"terraform -chdir={stack_dir} plan -out plan.tfplan",
        f"terraform -chdir={stack_dir} apply plan.tfplan",
    )
    doc.add(
        "   Good: `Apply complete!`; the DMS task exists but is **not** started "
        "(`start_replication_task = false`); the weighted records are "
        + ", ".join(f"`{r.set_identifier}` {r.weight}" for r in facts.records)
        + ". If the apply fails half-way, fix the cause and apply again: Terraform resumes; "
        "if it cannot, follow the infrastructure rollback in section 8.",
        "",
    )
    doc.step(
        "**Store the replication credentials.** Terraform creates the secrets but never "
        'their values. Write each as JSON `{"username", "password", "host", "port"}` '
        "from a file that you then shred:"
    )
    doc.code(
        *[
            f"aws secretsmanager put-secret-value --secret-id {name} --secret-string file://{name.rsplit('/', 1)[-1]}.json"
            for name in facts.secret_names
        ]
    )  # fmt: skip
    doc.step(
        "**Confirm the control plane** reads the environment (phase, weights, gates, rollback budget):"
    )
    doc.code(cmd("status"))


def _dms(doc: _Doc, inputs: RunbookInputs, facts: StackFacts, checker: CommandChecker) -> None:
    """Section 5."""
    cfg = inputs.config
    cmd = _cmd(inputs, checker)
    doc.heading(2, SECTIONS[4])
    doc.para(
        f"Starting the task is an operator step, never an apply side effect. The task "
        f"`{facts.dms_task_id}` runs `{facts.dms_migration_type}`: it copies every table, "
        "then applies changes from the source's WAL (CDC) until you stop it in clean-up. "
        "Data errors stop the task instead of skipping rows: a payment is never silently "
        "dropped."
    )
    doc.steps()
    doc.step("**Look up the ARNs** by the identifiers the stack gave them:")
    source_id = next(
        (e for e in facts.dms_endpoint_ids if "source" in e), facts.dms_endpoint_ids[0]
    )
    target_id = next(
        (e for e in facts.dms_endpoint_ids if "target" in e), facts.dms_endpoint_ids[-1]
    )
    doc.code(
        f"TASK_ARN=$(aws dms describe-replication-tasks --filters Name=replication-task-id,Values={facts.dms_task_id} \\",
        "  --query 'ReplicationTasks[0].ReplicationTaskArn' --output text)",
        f"INSTANCE_ARN=$(aws dms describe-replication-instances --filters Name=replication-instance-id,Values={facts.dms_instance_id} \\",
        "  --query 'ReplicationInstances[0].ReplicationInstanceArn' --output text)",
        f"SOURCE_ARN=$(aws dms describe-endpoints --filters Name=endpoint-id,Values={source_id} \\",
        "  --query 'Endpoints[0].EndpointArn' --output text)",
        f"TARGET_ARN=$(aws dms describe-endpoints --filters Name=endpoint-id,Values={target_id} \\",
        "  --query 'Endpoints[0].EndpointArn' --output text)",
    )  # fmt: skip
    doc.step(
        "**Test both endpoints** from the replication instance; wait for `successful` on each:"
    )
    doc.code(
        'aws dms test-connection --replication-instance-arn "$INSTANCE_ARN" --endpoint-arn "$SOURCE_ARN"',
        'aws dms test-connection --replication-instance-arn "$INSTANCE_ARN" --endpoint-arn "$TARGET_ARN"',
        "aws dms describe-connections --filters Name=endpoint-arn,Values=\"$SOURCE_ARN\",\"$TARGET_ARN\" \\",
        "  --query 'Connections[].[EndpointIdentifier,Status,LastFailureMessage]' --output table",
    )  # fmt: skip
    doc.add(
        "   `failed` with a TLS message: the CA certificate or `verify-full` host name; with "
        "an authentication message: the secret's value (section 4, step 7).",
        "",
    )
    doc.step("**Start the full load:**")
    doc.code(
        'aws dms start-replication-task --replication-task-arn "$TASK_ARN" '
        "--start-replication-task-type start-replication"
    )
    doc.step("**Watch the full load** (repeat every few minutes):")
    doc.code(
        'aws dms describe-replication-tasks --filters Name=replication-task-arn,Values="$TASK_ARN" \\',
        "  --query 'ReplicationTasks[0].{Status:Status,Progress:ReplicationTaskStats.FullLoadProgressPercent,Loaded:ReplicationTaskStats.TablesLoaded,Loading:ReplicationTaskStats.TablesLoading,Errored:ReplicationTaskStats.TablesErrored}'",
        'aws dms describe-table-statistics --replication-task-arn "$TASK_ARN" \\',
        "  --query 'TableStatistics[].[SchemaName,TableName,TableState,FullLoadRows,ValidationState]' --output table",
    )  # fmt: skip
    doc.add(
        "   Good: `Status` `running`, `Progress` rising, `Errored` 0. Task events ("
        + ", ".join(cfg.replication.event_subscription.task_categories)
        + ") also arrive on the SNS topic "
        + f"`{naming.dms_event_topic_name(cfg.stack_name)}`.",
        "",
        "   Not good: `Status` `stopped` or `failed`, or `Errored` > 0. Read "
        "`ReplicationTasks[0].LastFailureMessage` and the task log, fix the cause, then "
        "resume with `--start-replication-task-type resume-processing` (or "
        "`reload-target` to restart the full load from scratch, which truncates the "
        "target tables). Traffic is still 100 % legacy: nothing is at risk yet.",
        "",
    )
    doc.step(
        "**Full load complete, CDC running**: every table reaches `Table completed` and the "
        "task reports `Load complete, replication ongoing`. From here the task applies "
        "source changes continuously. Watch CDC latency through the controller's gate:"
    )
    doc.code(cmd("status"))
    doc.add(
        f"   Good: gate `cdc-latency` ok, i.e. latency ≤ "
        f"{cfg.controller.cdc_latency_threshold_seconds:g} s "
        f"(`controller.cdc_latency_threshold_seconds`) over the last "
        f"{cfg.controller.cdc_latency_lookback_seconds} s. The alarm "
        f"`{naming.alarm_name(cfg.stack_name, 'cdc-latency')}` fires above "
        f"{cfg.observability.alarms['cdc-latency'].threshold:g} s "
        "(`observability.alarms.cdc-latency.threshold`). Latency that keeps growing means "
        "the task cannot keep up: tell the on-call DBA before any traffic moves.",
        "",
    )


def _validation(
    doc: _Doc, inputs: RunbookInputs, facts: StackFacts, checker: CommandChecker
) -> None:
    """Section 6."""
    cfg = inputs.config
    cmd = _cmd(inputs, checker)
    stack = cfg.stack_name
    grace = f"{cfg.validation.grace_seconds:g}"
    doc.heading(2, SECTIONS[5])
    doc.para(
        "Run these at each checkpoint below. **GO** only when every row is GO; any NO-GO "
        "stops the plan and, once traffic is on AWS, means rollback (section 8)."
    )
    doc.heading(3, "Data consistency")
    doc.para(
        "Compares every replicated table by primary key over every column; with CDC "
        f"running, differing keys are re-checked after {grace} s "
        "(`validation.grace_seconds`) before they are reported:"
    )
    doc.code(cmd("validate", *_DSNS, "--grace", grace, "--format", "json", "--record"))
    doc.para(
        'Exit 0 and `"consistent": true`: GO. Exit 1: the JSON lists the keys missing, '
        "extra or different per table: NO-GO, hand the list to the on-call DBA. Exit 2: the "
        "check itself failed (connection, missing table): NO-GO until it runs."
    )
    doc.heading(3, "Alarms")
    alarm_names = naming.alarm_names(stack)
    doc.code(
        "aws cloudwatch describe-alarms --alarm-types MetricAlarm CompositeAlarm --alarm-names \\",
        "  " + " ".join(alarm_names) + " \\",
        "  --query '[MetricAlarms,CompositeAlarms][].[AlarmName,StateValue]' --output table",
    )
    rows: list[tuple[str, str, str, str]] = []
    order = {metric: i for i, metric in enumerate(naming.ALARM_METRICS)}
    for metric, alarm in sorted(cfg.observability.alarms.items(), key=lambda kv: order[kv[0]]):
        rows.append(
            (
                f"`{naming.alarm_name(stack, metric)}`",
                f"{alarm.threshold:g} {ALARM_UNITS.get(metric, '')}".strip(),
                f"{alarm.datapoints_to_alarm} of {alarm.evaluation_periods} x {alarm.period_seconds} s",
                str(alarm.treat_missing_data),
            )
        )
    rows.append(
        (f"`{naming.composite_alarm_name(stack)}`", "any alarm above", "follows its children", "-")
    )
    doc.table(("Alarm", "Fires above", "Datapoints", "Missing data"), rows)
    doc.heading(3, "Checkpoints")
    settings_rows = [
        (
            "CP1 before deployment",
            "`" + cmd("preflight", "--source-dsn", "$PAYMIG_SOURCE_DSN") + "`",
            "exit 0, every check `pass`",
            "fix the named table/setting on the source; do not deploy",
        ),
        (
            "CP2 after apply",
            "`" + cmd("status") + "`",
            f"phase {cfg.migration.initial_phase}, weights {naming.LEGACY_SET_ID} "
            f"{100 - cfg.migration.initial_phase} / {naming.AWS_SET_ID} "
            f"{cfg.migration.initial_phase}, listener on `{cfg.controller.stable_alias}`",
            "apply again / infrastructure rollback (section 8)",
        ),
        (
            "CP3 full load done",
            "`aws dms describe-table-statistics …` (section 5)",
            "every table `Table completed`, validation `Validated`, 0 errored",
            "resume or reload the task; traffic stays on legacy",
        ),
        (
            "CP4 CDC steady",
            "`" + cmd("status") + "`",
            f"gate `cdc-latency` ok (≤ {cfg.controller.cdc_latency_threshold_seconds:g} s)",
            "wait; if it grows, DBA investigates the source and the task",
        ),
        (
            "CP5 data consistent",
            "`" + cmd("validate", *_DSNS, "--grace", grace, "--format", "json", "--record") + "`",
            "exit 0, `consistent: true`",
            "no shift; DBA works through the reported keys",
        ),
        (
            "CP6 alarms quiet",
            "`aws cloudwatch describe-alarms …` (above)",
            "every alarm `OK` (not `INSUFFICIENT_DATA`)",
            "no shift; if traffic is on AWS, roll back",
        ),
    ]
    doc.table(("Checkpoint", "Command", "GO when", "NO-GO → do this"), settings_rows)
    doc.para(
        "`paymig shift` re-checks CP4-CP6 itself (its gates) and refuses while any fails: "
        "a gate that cannot be evaluated counts as failed. Its `validation` gate reads the "
        f"latest result recorded in the audit table `{naming.audit_table_name(stack)}` "
        f"(`pk = VALIDATION`) and wants it `consistent` and at most "
        f"{cfg.controller.validation_max_age_minutes} min old "
        "(`controller.validation_max_age_minutes`). The validate command's `--record` option "
        "writes its verdict there, and so does the post-migration check the apply runs."
    )


def _traffic(doc: _Doc, inputs: RunbookInputs, facts: StackFacts, checker: CommandChecker) -> None:
    """Section 7."""
    cfg = inputs.config
    cmd = _cmd(inputs, checker)
    phases = cfg.migration.phases
    dwell = cfg.controller.dwell_minutes
    doc.heading(2, SECTIONS[6])
    doc.para(
        "Phases " + " → ".join(f"{p} %" for p in phases) + " of traffic on AWS "
        f"(`migration.phases`), by the weights of the `{naming.LEGACY_SET_ID}` and "
        f"`{naming.AWS_SET_ID}` records of `{facts.record_name}` (TTL "
        f"{cfg.dns.record_ttl_seconds} s). `paymig shift` moves one phase at a time and "
        "refuses (exit 1, naming each failed gate) when a gate fails or a phase would be "
        "skipped. Never use `--force` in production without the payments lead's approval: "
        "it is recorded."
    )
    doc.table(
        ("Phase", "Route 53 weights", "Dwell before the next step"),
        [
            (
                f"{p} %",
                f"{naming.LEGACY_SET_ID} {100 - p} / {naming.AWS_SET_ID} {p}",
                f"{dwell[p]} min" if dwell.get(p) else "-",
            )
            for p in phases
        ],
    )
    gates = _gate_names(cfg, phases[0])
    doc.para(
        "Gates of every shift (as `paymig status` lists them): "
        + ", ".join(f"`{g}`" for g in gates)
        + "."
    )
    doc.para(
        "Writes: `app.write_target` is "
        f"`{cfg.app.write_target}`. "
        + (
            "Every payment the AWS side accepts is written to the on-prem database and "
            "reaches Aurora through CDC, so a rollback to legacy at any phase strands no "
            "payment."
            if cfg.app.write_target == "source"
            else "Payments accepted on AWS are written to Aurora only: a rollback to legacy "
            "would strand them. Do not roll back traffic without the DBA."
        )
    )
    doc.steps()
    for current, target in itertools.pairwise(phases):
        doc.step(f"**{current} % → {target} %**")
        doc.add(
            "   Check the gates (all `ok`; the `dwell` gate counts down the time left):",
            "",
        )
        doc.code(cmd("status"))
        doc.add("   Shift, saying why (recorded with your identity):", "")
        doc.code(
            cmd("shift", "--to", str(target), "--reason", f"phase {target}: checkpoints CP4-CP6 GO")
        )
        stay = dwell.get(target)
        doc.add(
            f"   Good: `shift {current}% -> {target}%: succeeded`, `paymig status` shows "
            f"weights {naming.LEGACY_SET_ID} {100 - target} / {naming.AWS_SET_ID} {target} and "
            "no drift. `unconfirmed` means Route 53 did not report INSYNC within "
            f"{cfg.controller.route53_insync_timeout_seconds} s: run `paymig status` again "
            "before anything else. Refused: read the named gates, fix, retry; nothing changed.",
            "",
            (
                f"   Then hold {target} % for **{stay} min** "
                f"(`controller.dwell_minutes`), watching the dashboard: 5xx rate, p99 latency, "
                "CDC latency, Aurora CPU, payments succeeded vs failed. Any alarm → the "
                "automatic rollback fires; if it does not within the budget, roll back by hand."
                if stay
                else f"   At {target} % there is no dwell time configured; keep watching the "
                "dashboard and alarms for the rest of the window."
            ),
            "",
        )


def _rollback(doc: _Doc, inputs: RunbookInputs, facts: StackFacts, checker: CommandChecker) -> None:
    """Section 8."""
    cfg = inputs.config
    cmd = _cmd(inputs, checker)
    stack = cfg.stack_name
    budget = budget_from_config(cfg)
    stack_dir = f"cdktf.out/stacks/{facts.stack_name}"
    doc.heading(2, SECTIONS[7])
    doc.heading(3, "Time budget (computed from the configuration)")
    verdict = "within" if budget.within_limit else "OVER"
    doc.para(
        f"Worst case from a sustained fault to clients resolving to legacy: "
        f"**{budget.total_seconds} s ({_minutes(budget.total_seconds)})**, {verdict} the "
        f"{ROLLBACK_LIMIT_SECONDS} s limit (target {ROLLBACK_TARGET_SECONDS} s); "
        f"{budget.fastest_signal_seconds} s when `{budget.fastest_alarm}` detects the fault."
    )
    doc.table(
        ("Step", "Seconds", "Why"),
        [(s.name, str(s.seconds), s.detail) for s in budget.steps],
    )
    doc.heading(3, "Automated rollback")
    doc.para(
        f"Any alarm turns the composite `{naming.composite_alarm_name(stack)}` to ALARM; it "
        f"notifies `{naming.alarm_topic_name(stack)}`, which invokes "
        f"`{naming.rollback_function_name(stack)}`. The function sets the records back to "
        f"{naming.LEGACY_SET_ID} 100 / {naming.AWS_SET_ID} 0, the listener of "
        f"`{facts.alb_name}` back to the stable alias `{cfg.controller.stable_alias}`, waits "
        "for INSYNC, records the event and notifies. It is idempotent: a second run changes "
        "nothing. Confirm it happened:"
    )
    doc.code(cmd("status", "--events", "5"))
    doc.para(
        f"Good: weights {naming.LEGACY_SET_ID} 100 / {naming.AWS_SET_ID} 0, the last event a "
        "`rollback` with result `succeeded` (or `no-change`). Then find the cause before any "
        "new shift: the event names the alarm."
    )
    doc.heading(3, "Manual rollback")
    doc.para(
        f"If the automatic rollback has not happened within {budget.total_seconds} s of the "
        "first alarm, or you see harm the alarms do not (payments failing, wrong amounts), "
        "roll back by hand. It takes the same path as the Lambda and is safe to repeat:"
    )
    doc.code(cmd("rollback", "--reason", "manual: <what you saw>"))
    doc.para(
        "Then `paymig status` as above. If `paymig` itself cannot run (no Python, API "
        "errors), do the same two changes with the AWS CLI:"
    )
    legacy = facts.record(naming.LEGACY_SET_ID)
    stable = cfg.controller.stable_alias
    groups = {alias: naming.target_group_name(stack, alias) for alias in naming.DEPLOYMENT_ALIASES}
    for name in groups.values():
        if name not in facts.target_groups:
            raise RunbookError(
                f"runbook: target group {name} (paymig.naming) is not in the synthesized stack"
            )
    fqdn = facts.record_name.rstrip(".") + "."
    legacy_values = ",".join(f'{{"Value":"{value}"}}' for value in legacy.values)
    doc.steps()
    doc.step(
        "**Route 53 back to legacy.** Read the live records first: an UPSERT replaces the "
        "whole record, so it must carry the health check and the alias target:"
    )
    doc.code(
        f"HC_LEGACY=$(aws route53 list-resource-record-sets --hosted-zone-id {facts.hosted_zone_id} \\",
        f"  --query \"ResourceRecordSets[?Name=='{fqdn}' && SetIdentifier=='{legacy.set_identifier}'].HealthCheckId\" --output text)",
        f"HC_AWS=$(aws route53 list-resource-record-sets --hosted-zone-id {facts.hosted_zone_id} \\",
        f"  --query \"ResourceRecordSets[?Name=='{fqdn}' && SetIdentifier=='{naming.AWS_SET_ID}'].HealthCheckId\" --output text)",
        f"read -r ALB_DNS ALB_ZONE <<<\"$(aws elbv2 describe-load-balancers --names {facts.alb_name} \\",
        "  --query 'LoadBalancers[0].[DNSName,CanonicalHostedZoneId]' --output text)\"",
        f"aws route53 change-resource-record-sets --hosted-zone-id {facts.hosted_zone_id} --change-batch '{{\"Changes\":[",
        f"  {{\"Action\":\"UPSERT\",\"ResourceRecordSet\":{{\"Name\":\"{facts.record_name}\",\"Type\":\"{legacy.record_type}\",\"SetIdentifier\":\"{legacy.set_identifier}\",\"Weight\":100,\"TTL\":{legacy.ttl},\"ResourceRecords\":[{legacy_values}],\"HealthCheckId\":\"'\"$HC_LEGACY\"'\"}}}},",
        f"  {{\"Action\":\"UPSERT\",\"ResourceRecordSet\":{{\"Name\":\"{facts.record_name}\",\"Type\":\"A\",\"SetIdentifier\":\"{naming.AWS_SET_ID}\",\"Weight\":0,\"HealthCheckId\":\"'\"$HC_AWS\"'\",\"AliasTarget\":{{\"HostedZoneId\":\"'\"$ALB_ZONE\"'\",\"DNSName\":\"'\"$ALB_DNS\"'\",\"EvaluateTargetHealth\":true}}}}}}]}}'",
        "aws route53 get-change --id <ChangeInfo.Id from the output>   # repeat until INSYNC",
    )  # fmt: skip
    doc.step(
        f"**Listener back to the stable alias `{stable}`** (all HTTPS traffic of "
        f"`{facts.alb_name}` to `{groups[stable]}`):"
    )
    others = [a for a in naming.DEPLOYMENT_ALIASES if a != stable]
    lookups = [
        f"TG_{alias.upper()}=$(aws elbv2 describe-target-groups --names {groups[alias]} --query 'TargetGroups[0].TargetGroupArn' --output text)"
        for alias in naming.DEPLOYMENT_ALIASES
    ]
    weights = ",".join(
        f'{{"TargetGroupArn":"\'"$TG_{alias.upper()}"\'","Weight":{100 if alias == stable else 0}}}'
        for alias in [stable, *others]
    )
    doc.code(
        f"LB_ARN=$(aws elbv2 describe-load-balancers --names {facts.alb_name} --query 'LoadBalancers[0].LoadBalancerArn' --output text)",
        "LISTENER_ARN=$(aws elbv2 describe-listeners --load-balancer-arn \"$LB_ARN\" --query 'Listeners[?Port==`443`].ListenerArn' --output text)",
        *lookups,
        f"aws elbv2 modify-listener --listener-arn \"$LISTENER_ARN\" --default-actions '[{{\"Type\":\"forward\",\"ForwardConfig\":{{\"TargetGroups\":[{weights}]}}}}]'",
    )  # fmt: skip
    doc.para(
        "Record what you did with `paymig rollback` as soon as it runs again (it finds "
        "nothing to change and records the event), so the audit trail stays whole."
    )
    doc.heading(3, "Infrastructure rollback (versioned state)")
    doc.para(
        "A bad `terraform apply` is undone by returning both the code and the state to the "
        "last good version, then applying. Environments are isolated: each has its own "
        f"stack and state key (`{facts.state_key}`), so this touches only {cfg.environment}."
    )
    doc.steps()
    doc.step("Move traffic to legacy first (`paymig rollback`, above) if the API is affected.")
    doc.step("Find the last good state version (the one noted at deployment, step 3):")
    doc.code(
        f"aws s3api list-object-versions --bucket {facts.state_bucket} --prefix {facts.state_key} \\",
        "  --query 'Versions[].[VersionId,LastModified,IsLatest]' --output table",
        f"aws s3api get-object --bucket {facts.state_bucket} --key {facts.state_key} --version-id <VERSION_ID> previous.tfstate",
    )  # fmt: skip
    doc.step("Check out the commit that produced it, regenerate, push the state, apply:")
    doc.code(
        "git checkout <last good commit>",
        cmd("synth", "--out", "cdktf.out"),
        f"terraform -chdir={stack_dir} init",
        f"terraform -chdir={stack_dir} state push -force previous.tfstate",
        f"terraform -chdir={stack_dir} plan -out rollback.tfplan",
        f"terraform -chdir={stack_dir} apply rollback.tfplan",
    )
    doc.para(
        "Read the plan: it must only undo the bad change. Stateful resources are protected "
        f"(`deletion_protection` on `{facts.cluster_identifier}`): a plan that replaces the "
        "cluster is a NO-GO; call the on-call DBA. The time is that of one plan and apply of "
        "the changed resources (minutes for DNS, listener and Lambda changes; longer if "
        "database instances change)."
    )


def _rotation(doc: _Doc, inputs: RunbookInputs, facts: StackFacts, checker: CommandChecker) -> None:
    """Section 9."""
    cfg = inputs.config
    cmd = _cmd(inputs, checker)
    stack_dir = f"cdktf.out/stacks/{facts.stack_name}"
    doc.heading(2, SECTIONS[8])
    doc.heading(3, "Certificate authority (CA) rotation")
    doc.para(
        f"The server CA of the Aurora instances is pinned in config "
        f"(`database.ca_cert_identifier` = `{cfg.database.ca_cert_identifier}`; the stack "
        "sets "
        + ", ".join(f"`{c}`" for c in facts.ca_cert_identifiers)
        + " on "
        + ", ".join(f"`{i}`" for i in facts.instance_identifiers)
        + "), so rotating it is a planned change, never a surprise. Every connection uses "
        "TLS, so clients must trust the new CA **before** the server presents it."
    )
    doc.steps()
    doc.step(
        "Make sure every client trusts the new CA: the payment API image ships the "
        f"{cfg.region} RDS CA bundle (rebuild the image with a new `app.image_tag` if the "
        "bundle lacks the new CA, and deploy it first); the validator's and the DBA's "
        "`sslrootcert` bundles too."
    )
    doc.step("Change `database.ca_cert_identifier` in the config, commit, and check:")
    doc.code(cmd("check", "--out", "cdktf.out"))
    doc.step(
        "Plan: expect an in-place update of `ca_cert_identifier` on each cluster instance "
        "and nothing else."
    )
    doc.code(f"terraform -chdir={stack_dir} plan -out ca.tfplan")
    doc.step(
        f"Apply **in the maintenance window** (`database.maintenance_window` = "
        f"`{cfg.database.maintenance_window}` UTC): the instances restart one at a time."
    )
    doc.code(f"terraform -chdir={stack_dir} apply ca.tfplan")
    doc.step(
        "Verify: `aws rds describe-db-instances --query 'DBInstances[].[DBInstanceIdentifier,"
        "CACertificateIdentifier]'` shows the new CA on every instance, and `paymig status` "
        "gates are ok (the payment API reconnected)."
    )
    doc.heading(3, "Secret rotation schedule")
    days = cfg.database.secret_rotation_days
    stack_days = ", ".join(str(d) for d in facts.rotation_days) or "none"
    doc.para(
        f"The Aurora master credentials rotate automatically every **{days} days** "
        f"(`database.secret_rotation_days`; the stack's rotation rule says {stack_days} "
        "days). RDS manages that secret, so rotation needs no Lambda of ours. Check it "
        "after each rotation date:"
    )
    doc.code(
        f"aws rds describe-db-clusters --db-cluster-identifier {facts.cluster_identifier} "
        "--query 'DBClusters[0].MasterUserSecret'",
        "aws secretsmanager describe-secret --secret-id <SecretArn from above> "
        "--query '{Rotation:RotationEnabled,Rules:RotationRules,Last:LastRotatedDate,Next:NextRotationDate}'",
    )
    doc.para(
        "The replication secrets "
        + ", ".join(f"`{s}`" for s in facts.secret_names)
        + " hold operator-managed logins: rotate them on the database first, then "
        "`put-secret-value`, then restart the DMS task with `resume-processing`."
    )


def _cleanup(
    doc: _Doc,
    inputs: RunbookInputs,
    facts: StackFacts,
    checker: CommandChecker,
    steady_usd: float,
) -> None:
    """Section 10."""
    cfg = inputs.config
    cmd = _cmd(inputs, checker)
    stack_dir = f"cdktf.out/stacks/{facts.stack_name}"
    final = cfg.migration.phases[-1]
    doc.heading(2, SECTIONS[9])
    doc.para(
        f"Only after {final} % has held through a full business cycle with every checkpoint "
        "GO, and the payments lead has signed off. Switching the writes is the point of no "
        "return for a data-safe rollback: afterwards the legacy database no longer receives "
        "payments."
    )
    doc.steps()
    doc.step("Final consistency check with CDC caught up (latency near 0):")
    doc.code(
        cmd("status"),
        cmd(
            "validate",
            *_DSNS,
            "--grace",
            f"{cfg.validation.grace_seconds:g}",
            "--format",
            "json",
            "--record",
        ),
    )
    doc.step(
        f"**Switch the writes to Aurora**: set `app.write_target: aurora` in "
        f"`config/{cfg.environment}.yaml` (it is `{cfg.app.write_target}` now), commit, then:"
    )
    doc.code(
        cmd("check", "--out", "cdktf.out"),
        f"terraform -chdir={stack_dir} plan -out cutover.tfplan   # expect: {facts.function_name} environment and aliases",
        f"terraform -chdir={stack_dir} apply cutover.tfplan",
    )
    doc.step(
        "**Stop DMS** once the last source change has reached Aurora (CDC latency 0, no new source writes):"
    )
    doc.code(
        f"TASK_ARN=$(aws dms describe-replication-tasks --filters Name=replication-task-id,Values={facts.dms_task_id} \\",
        "  --query 'ReplicationTasks[0].ReplicationTaskArn' --output text)",
        'aws dms stop-replication-task --replication-task-arn "$TASK_ARN"',
        f'psql "$PAYMIG_SOURCE_DSN user=<DMS source login>" -c "SELECT pg_drop_replication_slot(\'{cfg.replication.slot_name}\');"',
    )  # fmt: skip
    doc.add(
        "   Drop the slot as a role with the REPLICATION attribute (the last `user=` of a "
        "DSN wins): a slot nobody reads makes the source keep WAL until its disk fills.",
        "",
    )
    doc.step(
        "**Delete the DMS resources** by removing the replication tier from the stack in a "
        "reviewed commit (a `terraform destroy -target` would leave code and state apart), "
        "then plan and apply. The plan must destroy only the `replication` construct's "
        "resources (task, endpoints, instance, subnet group, certificate, event "
        "subscriptions, its key and secret). The stack has no configuration switch for "
        "this yet: it is a code change to `PaymentMigrationStack`, reviewed like any other."
    )
    doc.step(
        f"**Decommission the legacy record**: remove the `{naming.LEGACY_SET_ID}` weighted "
        f"record of `{facts.record_name}` and its health check from the stack (the "
        f"`{naming.AWS_SET_ID}` record then carries all traffic), apply, and after one TTL "
        f"({cfg.dns.record_ttl_seconds} s) confirm `dig +short {facts.record_name}` returns "
        f"only the load balancer. Keep the legacy system read-only for the agreed retention "
        "period before shutting it down."
    )
    doc.step(
        f"**Steady-state cost**: without DMS the estimate is **${steady_usd:,.2f}/month** "
        f"(budget ${cfg.budget_usd:,.0f}). Confirm with:"
    )
    doc.code(cmd("cost", "--format", "markdown"))


def _cost(doc: _Doc, inputs: RunbookInputs, checker: CommandChecker) -> float:
    """Section 11; returns the steady-state monthly total for the clean-up section."""
    cfg = inputs.config
    cmd = _cmd(inputs, checker)
    est = estimate_environment(cfg, inputs.document)
    volumes = lambda_by_volume(cfg, inputs.document)
    failures = budget_gate(est, cfg.budget_usd)
    doc.heading(2, SECTIONS[10])
    doc.para(
        "Computed by the cost model from the synthesized stack and the usage assumptions "
        "in config (`usage`), with the dated us-east-2 price table. Full detail:"
    )
    doc.code(cmd("cost", "--format", "markdown"), cmd("cost", "--scale", "10"))
    total = est.total_monthly_usd
    doc.table(
        ("", "USD / month"),
        [
            (f"Migration period (DMS running, {est.migration_months} month(s))", f"{total:,.2f}"),
            ("Steady state (after DMS is removed)", f"{est.steady_state_monthly_usd:,.2f}"),
            ("Budget", f"{cfg.budget_usd:,.2f}"),
            ("Verdict", "both totals fit" if not failures else "EXCEEDED"),
        ]
        + [
            (f"Lambda at {volume:g}x the configured volume", f"{usd:,.2f}")
            for volume, usd in volumes.items()
        ],
    )
    doc.table(
        ("Service", "USD / month", "Share"),
        [
            (
                service,
                f"{sum(i.monthly_usd for i in items):,.2f}",
                f"{100 * sum(i.monthly_usd for i in items) / total:.1f} %" if total else "-",
            )
            for service, items in est.by_service().items()
        ],
    )
    doc.para(
        "Largest items: "
        + "; ".join(f"{i.service} {i.resource} ${i.monthly_usd:,.2f}" for i in est.largest(3))
        + "."
    )
    return est.steady_state_monthly_usd


def _contacts(doc: _Doc, inputs: RunbookInputs) -> None:
    """Section 12."""
    cfg = inputs.config
    doc.heading(2, SECTIONS[11])
    doc.para(
        "Roles, not names: the on-call rota says who holds each role today. Alarm "
        "notifications reach "
        + (
            ", ".join(f"`{e}`" for e in cfg.observability.notification_emails)
            if cfg.observability.notification_emails
            else "the subscriptions of the alarm topic"
        )
        + f" through `{naming.alarm_topic_name(cfg.stack_name)}`."
    )
    doc.table(
        ("Role", "Owns", "Call when"),
        [
            ("Migration lead (runs this runbook)", "every command above, the audit trail", "start and end of each window"),
            ("On-call DBA", "source database, DMS task, Aurora, consistency findings", "preflight FAIL, DMS errors, CDC latency, validation NO-GO, CA rotation"),
            ("Payments lead", "go / no-go of each traffic phase, `--force`, cutover sign-off", "before each shift, any rollback, before clean-up"),
            ("Platform on-call", "AWS account, Terraform state, network and VPN", "apply failures, infrastructure rollback, VPN down"),
            ("Security / PCI officer", "WAF, KMS keys, secrets, certificate changes", "secret or CA rotation, WAF blocks real traffic"),
            ("Incident commander", "communication during an incident", "any rollback in production"),
        ],
    )  # fmt: skip


# --------------------------------------------------------------------------- entry points


def render_runbook(inputs: RunbookInputs, checker: CommandChecker) -> str:
    """The whole runbook as Markdown text; `checker` vets every `paymig` command line."""
    facts = stack_facts(inputs.document)
    doc = _Doc()
    _front(doc, inputs, facts, checker)
    _prerequisites(doc, inputs, facts)
    _architecture(doc, inputs, facts)
    _checklist(doc, inputs, facts, checker)
    _deployment(doc, inputs, facts, checker)
    _dms(doc, inputs, facts, checker)
    _validation(doc, inputs, facts, checker)
    _traffic(doc, inputs, facts, checker)
    _rollback(doc, inputs, facts, checker)
    _rotation(doc, inputs, facts, checker)
    cost_doc = _Doc()
    steady = _cost(cost_doc, inputs, checker)
    _cleanup(doc, inputs, facts, checker, steady)
    doc.add(*cost_doc.lines)
    _contacts(doc, inputs)
    return doc.text()
