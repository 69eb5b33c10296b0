"""The IAM linter gate: cloudsplaining over every policy, findings justified in one table only."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from paymig.errors import CommandFailedError, ConfigError, ToolMissingError
from paymig.iam_lint import (
    CHECKS,
    IamFinding,
    iam_gate,
    lint_policies,
    lint_stack,
    load_accepted,
    parse_accepted,
    policies_in,
    split_findings,
)

REPO = Path(__file__).resolve().parents[1]
ACCEPTED = REPO / "src" / "paymig" / "iam_accepted.yaml"


def _meta(path: str) -> dict[str, Any]:
    return {"//": {"metadata": {"path": f"paymig-test/{path}"}}}


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _stack(resources: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    return {"resource": resources}


OVER_BROAD = _stack(
    {
        "aws_iam_role_policy": {
            "p": {
                **_meta("app/fn/role-policy"),
                "role": "${aws_iam_role.r.id}",
                "policy": _policy(
                    {"Sid": "EverythingInS3", "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                    {"Sid": "PassAnyRole", "Effect": "Allow", "Action": "iam:PassRole",
                     "Resource": "*"},
                    {"Sid": "MakeFunctions", "Effect": "Allow",
                     "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*"},
                    {"Sid": "Scoped", "Effect": "Allow", "Action": "sqs:SendMessage",
                     "Resource": "${aws_sqs_queue.q.arn}"},
                ),
            }
        },
        "aws_kms_key": {
            "k": {
                **_meta("data/key"),
                "policy": _policy(
                    {"Sid": "AnyoneDecrypts", "Effect": "Allow", "Principal": "*",
                     "Action": "kms:Decrypt", "Resource": "*"},
                    {"Sid": "ThroughRds", "Effect": "Allow", "Principal": {"AWS": "*"},
                     "Action": "kms:Decrypt", "Resource": "*",
                     "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333"}}},
                ),
            }
        },
        "aws_iam_role": {
            "r": {
                **_meta("app/fn/role"),
                "inline_policy": [
                    {"name": "inline", "policy": _policy(
                        {"Sid": "InlineReadsAll", "Effect": "Allow", "Action": "ssm:GetParameter",
                         "Resource": "*"})},
                    {"name": "ref", "policy": "${data.aws_iam_policy_document.x.json}"},
                ],
                "assume_role_policy": _policy(
                    {"Sid": "AnyAccount", "Effect": "Allow", "Principal": {"AWS": "*"},
                     "Action": "sts:AssumeRole"}
                ),
            }
        },
        "aws_lambda_permission": {
            "open": {**_meta("app/open-invoke"), "action": "lambda:InvokeFunction",
                     "function_name": "f", "principal": "*", "statement_id": "Anyone"},
            "sns": {**_meta("app/sns-invoke"), "action": "lambda:InvokeFunction",
                    "function_name": "f", "principal": "sns.amazonaws.com",
                    "source_arn": "${aws_sns_topic.t.arn}", "statement_id": "FromTopic"},
            "account": {**_meta("app/account-invoke"), "action": "lambda:InvokeFunction",
                        "function_name": "f", "principal": "s3.amazonaws.com",
                        "source_account": "111122223333", "statement_id": "FromAccount"},
        },
        "aws_sqs_queue_policy": {
            "qp": {**_meta("app/queue-policy"), "policy": "${data.aws_iam_policy_document.d.json}"}
        },
        "aws_iam_role_policy_attachment": {
            "a": {**_meta("app/fn/admin"), "role": "r",
                  "policy_arn": "arn:aws:iam::aws:policy/AdministratorAccess"},
        },
        "aws_ecr_lifecycle_policy": {
            "l": {**_meta("app/lifecycle"), "policy": json.dumps({"rules": []})}
        },
    }
)  # fmt: skip


def test_an_over_broad_statement_is_caught() -> None:
    refs, findings = lint_policies(OVER_BROAD)
    kinds = {(r.resource_type, r.attribute, r.kind) for r in refs}
    assert kinds == {
        ("aws_iam_role", "assume_role_policy", "trust"),
        ("aws_iam_role", "inline_policy", "identity"),
        ("aws_iam_role", "inline_policy", "unreadable"),
        ("aws_iam_role_policy", "policy", "identity"),
        ("aws_kms_key", "policy", "resource"),
        ("aws_lambda_permission", "permission", "resource"),
        ("aws_sqs_queue_policy", "policy", "unreadable"),
    }  # the ECR lifecycle policy is JSON but no IAM policy
    by_key = {(f.path, f.sid, f.check): f.actions for f in findings}
    s3 = ("app/fn/role-policy", "EverythingInS3")
    assert by_key[(*s3, "service-wildcard")] == ("s3:*",)
    assert by_key[(*s3, "data-exfiltration")] == ("s3:GetObject",)
    assert "s3:PutBucketPolicy" in by_key[(*s3, "resource-exposure")]
    assert "s3:DeleteBucket" in by_key[(*s3, "infrastructure-modification")]
    # iam:PassRole in one statement and CreateFunction+InvokeFunction in another escalate.
    assert by_key[("app/fn/role-policy", "PassAnyRole+MakeFunctions", "privilege-escalation")] == (
        "iam:passrole",
        "lambda:createfunction",
        "lambda:invokefunction",
    )
    assert not [k for k in by_key if k[1] == "Scoped"]
    assert by_key[("data/key", "AnyoneDecrypts", "public-access")] == ("kms:Decrypt",)
    assert ("data/key", "ThroughRds", "public-access") not in by_key  # the account condition
    assert by_key[("app/fn/role", "AnyAccount", "public-access")] == ("sts:AssumeRole",)
    assert by_key[("app/open-invoke", "Anyone", "public-access")] == ("lambda:InvokeFunction",)
    assert ("app/sns-invoke", "FromTopic", "public-access") not in by_key
    assert ("app/account-invoke", "FromAccount", "public-access") not in by_key
    assert by_key[("app/fn/role", "InlineReadsAll", "data-exfiltration")] == ("ssm:GetParameter",)
    assert by_key[("app/fn/role", "-", "unreadable-policy")] == ("inline_policy",)
    assert by_key[("app/queue-policy", "-", "unreadable-policy")] == ("policy",)
    assert by_key[("app/fn/admin", "-", "aws-managed-policy")] == ("AdministratorAccess",)
    assert {f.check for f in findings} <= set(CHECKS)


def test_a_finding_is_one_line_naming_resource_and_sid() -> None:
    finding = IamFinding("aws_iam_role_policy", "app/fn/role-policy", "Sid1", "data-exfiltration",
                         ("s3:GetObject",))  # fmt: skip
    assert finding.line() == (
        "aws_iam_role_policy app/fn/role-policy, statement Sid1: data-exfiltration: s3:GetObject"
    )
    doc = _stack({"aws_iam_policy": {"p": {**_meta("x/p"), "policy": _policy(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})}}})  # fmt: skip
    found = {(f.sid, f.check): f.actions for f in lint_policies(doc)[1]}
    assert found[("#1 (no Sid)", "not-action")] == ("iam:*",)
    assert "s3:GetObject" in found[("#1 (no Sid)", "data-exfiltration")]


def test_gate_fails_in_one_line_and_names_the_findings() -> None:
    with pytest.raises(CommandFailedError) as raised:
        iam_gate(OVER_BROAD)
    message = str(raised.value)
    assert "\n" not in message
    count = len(lint_policies(OVER_BROAD)[1])
    assert message.startswith(f"IAM linter (cloudsplaining): {count} unjustified finding(s); ")
    assert (
        "aws_iam_role app/fn/role, statement AnyAccount: public-access: sts:AssumeRole" in message
    )


@pytest.mark.slow
def test_shipped_stacks_have_no_unjustified_finding(
    prod_tf: dict[str, Any], staging_synth: Any
) -> None:
    prod = iam_gate(prod_tf)
    staging = iam_gate(staging_synth.document)
    assert prod.unjustified == [] and staging.unjustified == []
    assert prod.policies > 30 and prod.statements > 100
    justified = {f.line() for f, _ in prod.justified}
    eni = ("ec2:AssignPrivateIpAddresses, ec2:CreateNetworkInterface, "
           "ec2:DeleteNetworkInterface, ec2:UnassignPrivateIpAddresses")  # fmt: skip
    functions = ["app/api", "automation/rollback", "checks/db-setup", "checks/validation",
                 "credentials/rotation"]  # fmt: skip
    assert justified == {
        *(f"aws_iam_role_policy {fn}/role-policy, statement ManageVpcNetworkInterfaces: "
          f"infrastructure-modification: {eni}" for fn in functions),
        "aws_iam_role_policy_attachment data/monitoring-policy, statement -: aws-managed-policy: "
        "service-role/AmazonRDSEnhancedMonitoringRole",
        "aws_iam_role_policy_attachment replication/dms-cloudwatch-logs-role-policy, statement -: "
        "aws-managed-policy: service-role/AmazonDMSCloudWatchLogsRole",
        "aws_iam_role_policy_attachment replication/dms-vpc-role-policy, statement -: "
        "aws-managed-policy: service-role/AmazonDMSVPCManagementRole",
    }  # fmt: skip
    # Every kind of policy in the stack is read: trust, inline, key, topic, bucket, permissions.
    kinds = {(r.resource_type, r.kind) for r in policies_in(prod_tf)}
    assert {("aws_iam_role", "trust"), ("aws_iam_role_policy", "identity"),
            ("aws_kms_key", "resource"), ("aws_sns_topic_policy", "resource"),
            ("aws_s3_bucket_policy", "resource"), ("aws_lambda_permission", "resource")} <= kinds  # fmt: skip
    assert not [r for r in policies_in(prod_tf) if r.kind == "unreadable"]


@pytest.mark.slow
def test_no_accepted_entry_is_stale(prod_tf: dict[str, Any], staging_synth: Any) -> None:
    """Every entry justifies a finding of a shipped stack; otherwise remove it."""
    findings = lint_policies(prod_tf)[1] + lint_policies(staging_synth.document)[1]
    accepted = load_accepted()
    stale = [e for e in accepted if not any(e.covers(f) for f in findings)]
    assert stale == []
    # And no entry accepts an action no stack has any more.
    for entry in accepted:
        covered = {a.lower() for f in findings if entry.covers(f) for a in f.actions}
        assert covered == {a.lower() for a in entry.actions}, entry.resource


def test_an_entry_covers_only_the_actions_it_lists() -> None:
    (entry,) = parse_accepted(
        "accepted:\n  - resource: 'aws_iam_role_policy app/*'\n    sid: S\n"
        "    check: data-exfiltration\n    actions: [s3:GetObject]\n"
        f"    reason: {'because the function must read every object of the export bucket ' * 2}\n",
        "t.yaml",
    )
    known = IamFinding("aws_iam_role_policy", "app/x", "S", "data-exfiltration", ("s3:GetObject",))
    wider = IamFinding(
        "aws_iam_role_policy",
        "app/x",
        "S",
        "data-exfiltration",
        ("s3:GetObject", "ssm:GetParameter"),
    )
    other = IamFinding("aws_kms_key", "app/x", "S", "data-exfiltration", ("s3:GetObject",))
    justified, unjustified = split_findings([known, wider, other], [entry])
    assert justified == [(known, entry)]
    assert unjustified == [wider, other]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accepted: 3\n", "expected `accepted:` with a list of findings"),
        ("accepted: [7]\n", r"accepted\[0\]: expected a mapping"),
        ("accepted: [{sid: S}]\n", r"accepted\[0\]: missing resource, check, actions, reason"),
        ("accepted: [{resource: r, sid: S, check: nope, actions: [a], reason: r}]\n",
         r"accepted\[0\]\.check: 'nope' is not one of privilege-escalation"),
        ("accepted: [{resource: r, sid: S, check: not-action, actions: [a], reason: short}]\n",
         r"accepted\[0\]\.reason: too short"),
        ("accepted: [{resource: r, sid: S, check: not-action, actions: a, reason: " + "x" * 70 + "}]\n",
         r"accepted\[0\]\.actions: expected a list"),
    ],
)  # fmt: skip
def test_the_table_is_checked(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_accepted(text, "t.yaml")


def test_the_shipped_table_loads_and_every_reason_cites_aws(tmp_path: Path) -> None:
    accepted = load_accepted()
    assert accepted == load_accepted(ACCEPTED)
    assert 0 < len(accepted) <= 10
    assert all("AWS" in e.reason for e in accepted)


def test_missing_cloudsplaining_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cloudsplaining.scan", None)
    with pytest.raises(ToolMissingError, match=r"^cloudsplaining: not installed"):
        lint_stack(OVER_BROAD, accepted=[])
