"""The generated PCI DSS control map: fresh, every claim backed, every test and command real."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from paymig.cli import app, main
from paymig.cli.command_check import CliCommandChecker
from paymig.config import PaymigConfig
from paymig.controls.catalogue import ORGANISATION, REQUIREMENTS
from paymig.controls.evidence import ControlMapError
from paymig.controls.render import ControlMapInputs, map_requirements, render_controls
from paymig.controls.tests_index import collect_node_ids, find_tests_dir, missing_tests

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "docs" / "pci-controls.md"
TESTS = REPO / "tests"
CLI = CliCommandChecker.from_typer(app)


def _render(config: PaymigConfig, document: dict[str, Any]) -> str:
    return render_controls(ControlMapInputs(config, document, ("--env", "prod"), TESTS), CLI)


@pytest.fixture(scope="module")
def controls(prod_config: PaymigConfig, prod_tf: dict[str, Any]) -> str:
    return _render(prod_config, prod_tf)


@pytest.mark.slow
def test_committed_control_map_is_the_generated_prod_map(controls: str) -> None:
    assert COMMITTED.read_text(encoding="utf-8") == controls, (
        "docs/pci-controls.md is stale: run `paymig controls --env prod --output docs/pci-controls.md`"
    )


@pytest.mark.slow
def test_every_requirement_has_claims_with_resources_and_tests(
    prod_config: PaymigConfig, prod_tf: dict[str, Any]
) -> None:
    mapped = map_requirements(prod_config, prod_tf, TESTS)
    numbers = [m.requirement.number for m in mapped]
    for number in ("1.3", "3.5", "3.6 / 3.7", "4.2", "7.2", "8.2", "8.3", "8.6", "10.2", "10.5",
                   "11.5"):  # fmt: skip
        assert number in numbers
    for item in mapped:
        assert item.claims and item.requirement.tests, item.requirement.number
        assert all(claim.resources for claim in item.claims), item.requirement.number


@pytest.mark.slow
def test_map_names_the_organisation_controls_and_its_commands_parse(controls: str) -> None:
    section = controls.split("## Provided by the organisation", 1)[1]
    for service in ("AWS CloudTrail", "Amazon GuardDuty", "AWS Security Hub", "AWS Config"):
        assert f"| {service} |" in section
    assert len(ORGANISATION) == 4
    lines = [line for line in controls.splitlines() if line.startswith("paymig ")]
    assert lines == [
        "paymig controls --env prod --output docs/pci-controls.md",
        "paymig controls --env prod --output docs/pci-controls.md --check",
    ]
    for line in lines + re.findall(r"`(paymig [^`]+)`", controls):
        CLI.check_line(line)


def _broken(document: dict[str, Any], kind: str, change: dict[str, Any]) -> dict[str, Any]:
    broken = copy.deepcopy(document)
    name = sorted(broken["resource"][kind])[0]
    broken["resource"][kind][name].update(change)
    return broken


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        ("aws_rds_cluster", {"storage_encrypted": False},
         r"Aurora storage is encrypted .*: does not hold for aws_rds_cluster data/cluster"),
        ("aws_kms_key", {"enable_key_rotation": False},
         r"rotates its key material every year .*: does not hold for aws_kms_key app/key"),
        ("aws_dms_endpoint", {"ssl_mode": "require"},
         r"verify-full.*does not hold for aws_dms_endpoint replication/reverse-source-endpoint"),
        ("aws_lb_listener", {"protocol": "HTTP", "default_action": [{"type": "forward"}]},
         r"only redirects to HTTPS\.: does not hold for aws_lb_listener app/http-redirect"),
        ("aws_cloudwatch_log_group", {"retention_in_days": 90},
         r"at least 365 days\.: does not hold for aws_cloudwatch_log_group app/api/log-group"),
        ("aws_vpn_connection", {"tunnel2_phase2_dh_group_numbers": [2, 19]},
         r"groups 19 and up\.: does not hold for aws_vpn_connection network/vpn"),
        ("aws_secretsmanager_secret_rotation", {"rotation_rules": {"automatically_after_days": 90}},
         r"not rotated every 30 days: \['aws_secretsmanager_secret credentials/aurora-api'\]"),
    ],
)  # fmt: skip
def test_a_claim_that_does_not_hold_stops_the_generation(
    prod_config: PaymigConfig, prod_tf: dict[str, Any], kind: str, change: dict[str, Any],
    message: str,
) -> None:  # fmt: skip
    with pytest.raises(ControlMapError, match=message):
        map_requirements(prod_config, _broken(prod_tf, kind, change), TESTS)


@pytest.mark.slow
def test_a_data_tier_route_to_the_internet_stops_the_generation(
    prod_config: PaymigConfig, prod_tf: dict[str, Any]
) -> None:
    broken = copy.deepcopy(prod_tf)
    (data_table,) = [n for n in broken["resource"]["aws_route_table"] if "data" in n]
    broken["resource"]["aws_route"]["x"] = {
        "destination_cidr_block": "0.0.0.0/0",
        "route_table_id": f"${{aws_route_table.{data_table}.id}}",
        "gateway_id": "${aws_internet_gateway.igw.id}",
    }
    with pytest.raises(ControlMapError, match="the data tier routes to the internet"):
        map_requirements(prod_config, broken, TESTS)


def test_every_cited_test_exists_and_a_missing_one_is_named(tmp_path: Path) -> None:
    cited = [test for requirement in REQUIREMENTS for test in requirement.tests]
    assert missing_tests(cited, TESTS) == []
    assert "tests/test_controls.py::test_every_cited_test_exists_and_a_missing_one_is_named" in (
        collect_node_ids(TESTS)
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text(
        "def test_here():\n    pass\n\nclass TestGroup:\n    def test_inner(self):\n        pass\n"
        "\ndef helper():\n    pass\n"
    )
    assert collect_node_ids(tmp_path / "tests") == {
        "tests/test_a.py::test_here",
        "tests/test_a.py::TestGroup::test_inner",
    }
    assert missing_tests(["tests/test_a.py::test_gone", "tests/test_a.py::test_here"],
                         tmp_path / "tests") == ["tests/test_a.py::test_gone"]  # fmt: skip
    assert find_tests_dir(tmp_path) == tmp_path / "tests"


def test_generation_refuses_a_map_citing_a_missing_test(
    tmp_path: Path, prod_config: PaymigConfig
) -> None:
    (tmp_path / "tests").mkdir()
    with pytest.raises(ControlMapError, match=r"cites tests that do not exist: tests/"):
        map_requirements(prod_config, {"resource": {}}, tmp_path / "tests")


@pytest.mark.slow
def test_cli_writes_and_checks_the_map(
    tmp_path: Path, prod_synth: Any, controls: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pci.md"
    stack = str(prod_synth.json_path)
    assert main(["controls", "--from-json", stack, "--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == controls
    assert main(["controls", "--from-json", stack, "--output", str(out), "--check"]) == 0
    out.write_text("old\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["controls", "--from-json", stack, "--output", str(out), "--check"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"paymig: {out} is stale: regenerate it with `paymig controls --env prod --output {out}`\n"
    )
    broken = tmp_path / "broken.json"
    document = json.loads(Path(stack).read_text())
    for body in document["resource"]["aws_kms_key"].values():
        body["enable_key_rotation"] = False
    broken.write_text(json.dumps(document))
    assert main(["controls", "--from-json", str(broken), "--output", str(out)]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def _first(document: dict[str, Any], kind: str) -> dict[str, Any]:
    body: dict[str, Any] = document["resource"][kind][sorted(document["resource"][kind])[0]]
    return body


def _named(document: dict[str, Any], kind: str, part: str) -> dict[str, Any]:
    (body,) = [b for n, b in document["resource"][kind].items() if part in n]
    return body  # type: ignore[no-any-return]


def _open_key_use(doc: dict[str, Any]) -> None:
    body = _first(doc, "aws_kms_key")
    policy = json.loads(body["policy"])
    policy["Statement"].append({"Sid": "Open", "Effect": "Allow", "Action": "kms:Decrypt",
                                "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                                "Resource": "*"})  # fmt: skip
    body["policy"] = json.dumps(policy)


def _api_reads_validation_secret(doc: dict[str, Any]) -> None:
    body = _named(doc, "aws_iam_role_policy", "app_api")
    validation = [
        n for n in doc["resource"]["aws_secretsmanager_secret"] if "aurora-validation" in n
    ]
    policy = json.loads(body["policy"])
    policy["Statement"].append({"Sid": "Extra", "Effect": "Allow",
                                "Action": ["secretsmanager:GetSecretValue"],
                                "Resource": [f"${{aws_secretsmanager_secret.{validation[0]}.arn}}"]})  # fmt: skip
    body["policy"] = json.dumps(policy)


def _over_broad_role(doc: dict[str, Any]) -> None:
    body = _named(doc, "aws_iam_role_policy", "app_api")
    policy = json.loads(body["policy"])
    policy["Statement"].append({"Sid": "AllOfS3", "Effect": "Allow", "Action": "s3:*",
                                "Resource": "*"})  # fmt: skip
    body["policy"] = json.dumps(policy)


def _weak_database_client(doc: dict[str, Any]) -> None:
    body = _named(doc, "aws_lambda_function", "app_api")
    variables = body["environment"]["variables"]
    declared = json.loads(variables["PAYMIG_DB_AURORA"])
    variables["PAYMIG_DB_AURORA"] = json.dumps({**declared, "sslmode": "require"})


def _vpn(change: dict[str, Any]) -> Any:
    return lambda doc: _first(doc, "aws_vpn_connection").update(change)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_open_key_use, r"conditioned on the calling service.*does not hold for aws_kms_key app/key"),
        (lambda d: d["resource"]["aws_lb_listener"].pop(
            next(n for n in d["resource"]["aws_lb_listener"] if "https" in n)),
         "the load balancer has no HTTPS listener"),
        (_weak_database_client, r"database clients without verify-full: \['aws_lambda_function app/api/function'\]"),
        (_vpn({"tunnel1_ike_versions": ["ikev1", "ikev2"]}), "groups 19 and up"),
        (_vpn({"tunnel1_phase1_encryption_algorithms": ["AES128"]}), "groups 19 and up"),
        (_vpn({"tunnel2_phase2_integrity_algorithms": ["SHA1"]}), "groups 19 and up"),
        (lambda d: d["resource"].pop("aws_wafv2_web_acl_association"), "has no WAF web ACL"),
        (lambda d: d["terraform"]["backend"]["s3"].update(bucket="another"),
         "the state backend is not the configured one"),
        (_over_broad_role, r"the IAM linter has \d+ unjustified finding"),
        (lambda d: d["resource"]["aws_secretsmanager_secret"].pop(
            next(n for n in d["resource"]["aws_secretsmanager_secret"] if "source-api" in n)),
         "login secrets missing: paymig-prod/source/api"),
        (_api_reads_validation_secret,
         r"app/api/role-policy reads the login secrets of \['api', 'validation'\], not \['api'\]"),
        (lambda d: d["resource"].update(aws_secretsmanager_secret_version={"v": {}}),
         r"writes a secret value"),
        (lambda d: d["resource"].pop("aws_cloudwatch_event_target"), "no deletion watch"),
    ],
)  # fmt: skip
def test_each_claim_is_refused_when_the_stack_breaks_it(
    prod_config: PaymigConfig, prod_tf: dict[str, Any], mutate: Any, message: str
) -> None:
    broken = copy.deepcopy(prod_tf)
    mutate(broken)
    with pytest.raises(ControlMapError, match=message):
        map_requirements(prod_config, broken, TESTS)
