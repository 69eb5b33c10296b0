"""Deployment checks (`aws_lambda_invocation`) by stage: what each runs after, what it
reads, and what re-runs it (issue 12, defect 2)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from paymig.config import PaymigConfig
from paymig.lambdas.rollback import settings_from_env
from paymig.relations.rules import deployment_checks
from paymig.relations.stack import Address, StackGraph
from tests.small_stacks import add_checks, with_changes, world
from tests.tf_helpers import by_path, path_of, policy, ref, resources

STAGES = ("bootstrap", "full-load", "cdc", "finished")
#: The checks each stage runs, by construct path below the stack.
CHECKS = {
    "bootstrap": ["checks/db-setup/setup-check"],
    "full-load": ["checks/db-setup/setup-check", "checks/validation/pre-check"],
    "cdc": [
        "checks/db-setup/setup-check",
        "checks/validation/post-check",
        "checks/validation/pre-check",
    ],
    "finished": ["checks/db-setup/setup-check"],
}


def invocations(doc: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """The stack's invocations by construct path below the stack."""
    return {
        path_of(body).split("/", 1)[1]: (key, body)
        for key, body in resources(doc, "aws_lambda_invocation").items()
    }


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_runs_exactly_its_checks(
    stage: str, prod_at_stage: Callable[[str], dict[str, Any]]
) -> None:
    """Pins defect 2: the pre-migration check ran on the first apply, before the DBA had
    stored the source logins and before Aurora and the VPN existed."""
    doc = prod_at_stage(stage)
    found = invocations(doc)
    assert sorted(found) == CHECKS[stage]
    setup_fn, _ = by_path(doc, "aws_lambda_function", "/checks/db-setup/function")
    _, setup = found["checks/db-setup/setup-check"]
    assert setup["function_name"] == ref("aws_lambda_function", setup_fn, "function_name")
    assert json.loads(setup["input"]) == {"check": "setup"}


def secret_reads(doc: dict[str, Any], function_suffix: str) -> set[str]:
    """Every secret the function's role may read."""
    _, fn = by_path(doc, "aws_lambda_function", function_suffix)
    role = fn["role"].removesuffix(".arn}") + ".id}"
    reads: set[str] = set()
    for body in resources(doc, "aws_iam_role_policy").values():
        if body["role"] != role:
            continue
        for statement in policy(body["policy"])["Statement"]:
            if "secretsmanager:GetSecretValue" in statement["Action"]:
                reads.update(statement["Resource"])
    return reads


def test_bootstrap_reads_no_operator_stored_secret(prod_tf: dict[str, Any]) -> None:
    """Pins defect 2: on the first apply no invocation may read a secret the operator (the
    DBA) stores afterwards: the only check is the setup check, which reads the RDS master
    secret and the Aurora login secrets it writes itself."""
    cluster_id, _ = by_path(prod_tf, "aws_rds_cluster", "/data/cluster")
    master = f"${{aws_rds_cluster.{cluster_id}.master_user_secret[0].secret_arn}}"
    aurora_logins = {
        ref("aws_secretsmanager_secret", key, "arn")
        for key, body in resources(prod_tf, "aws_secretsmanager_secret").items()
        if "/credentials/aurora-" in path_of(body)
    }
    assert len(aurora_logins) == 4
    assert secret_reads(prod_tf, "/checks/db-setup/function") == {master, *aurora_logins}
    (only_check,) = invocations(prod_tf).values()
    assert path_of(only_check[1]).endswith("/checks/db-setup/setup-check")
    _, fn = by_path(prod_tf, "aws_lambda_function", "/checks/db-setup/function")
    variables = fn["environment"]["variables"]
    assert sorted(variables) == ["PAYMIG_DB_AURORA", "PAYMIG_LOGIN_SECRETS"]
    assert json.loads(variables["PAYMIG_DB_AURORA"])["secret_arn"] == master
    assert set(json.loads(variables["PAYMIG_LOGIN_SECRETS"]).values()) == aurora_logins


def _address(doc: dict[str, Any], kind: str, suffix: str) -> Address:
    return Address(kind, by_path(doc, kind, suffix)[0])


def test_pre_check_runs_after_everything_it_reads(
    prod_at_stage: Callable[[str], dict[str, Any]],
) -> None:
    """Pins defect 2: the check depended on nothing it reads, so it could run before its
    network path, Aurora, the VPN or the CA bundles existed."""
    doc = prod_at_stage("full-load")
    graph = StackGraph(doc)
    key, _ = invocations(doc)["checks/validation/pre-check"]
    check = Address("aws_lambda_invocation", key)
    needed = [
        # the function's security-group rules, and the other side of each
        ("aws_vpc_security_group_egress_rule", "/checks/validation/egress-endpoints"),
        ("aws_vpc_security_group_ingress_rule", "/network/endpoints/ingress-paymig-prod-validation"),
        ("aws_vpc_security_group_egress_rule", "/checks/validation/egress-aurora-5432"),
        ("aws_vpc_security_group_ingress_rule", "/data/ingress-paymig-prod-validation-5432"),
        ("aws_vpc_security_group_egress_rule", "/checks/validation/egress-source-5432"),
        ("aws_vpc_security_group_egress_rule", "/checks/validation/egress-dynamodb"),
        # the endpoints of the APIs it calls
        *(("aws_vpc_endpoint", f"/network/endpoints/{s}")
          for s in ("secretsmanager", "ssm", "monitoring", "dms", "xray", "dynamodb")),
        # the VPN and the routes to on premises
        ("aws_vpn_connection", "/network/vpn"),
        *(("aws_route", f"/network/onprem-{t}")
          for t in ("app-us-east-2a", "app-us-east-2b", "app-us-east-2c")),
        # Aurora and its instances
        ("aws_rds_cluster", "/data/cluster"),
        ("aws_rds_cluster_instance", "/data/instance-0"),
        ("aws_rds_cluster_instance", "/data/instance-1"),
        # the CA bundles and its logins
        ("aws_ssm_parameter", "/trust/source-ca"),
        ("aws_ssm_parameter", "/trust/aurora-ca"),
        ("aws_secretsmanager_secret", "/credentials/source-validation"),
        ("aws_secretsmanager_secret", "/credentials/aurora-validation"),
        # the setup check, which creates its Aurora login
        ("aws_lambda_invocation", "/checks/db-setup/setup-check"),
    ]  # fmt: skip
    for kind, suffix in needed:
        assert graph.depends_on(check, _address(doc, kind, suffix)), suffix
    # And the relational rule, which derives the same list from the function, agrees.
    assert deployment_checks.check(graph, "us-east-2") == []


def test_post_check_runs_after_the_pre_check(
    prod_at_stage: Callable[[str], dict[str, Any]],
) -> None:
    doc = prod_at_stage("cdc")
    found = invocations(doc)
    pre_key, _ = found["checks/validation/pre-check"]
    _, post = found["checks/validation/post-check"]
    assert f"aws_lambda_invocation.{pre_key}" in post["depends_on"]
    assert json.loads(post["input"]) == {"check": "post"}


def test_the_rule_names_the_check_and_what_it_no_longer_waits_for(
    prod_at_stage: Callable[[str], dict[str, Any]],
) -> None:
    """Break one dependency in a copy of the synthesized stack: the rule names both."""
    doc = copy.deepcopy(prod_at_stage("full-load"))
    _, pre = invocations(doc)["checks/validation/pre-check"]
    vpn = f"aws_vpn_connection.{by_path(doc, 'aws_vpn_connection', '/network/vpn')[0]}"
    pre["depends_on"] = [d for d in pre["depends_on"] if d != vpn]
    findings = [f.line() for f in deployment_checks.check(StackGraph(doc), "us-east-2")]
    assert findings == [
        "[deployment-check] paymig-prod/checks/validation/pre-check -> paymig-prod/network/vpn: "
        "the check reads this but does not depend on it, so it can run before it exists"
    ]


# --------------------------------------------------------------------------- triggers


@pytest.fixture(scope="module")
def two_packages(
    prod_config: PaymigConfig,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The checks synthesized twice: the second time every function package differs."""
    import paymig.infra.checks as checks_module

    config = with_changes(prod_config, migration={"stage": "cdc"})
    original = checks_module.build_package
    documents = []
    for marker in (None, b"# another commit\n"):

        def build(name: str, *args: Any, marker: bytes | None = marker, **kwargs: Any) -> Any:
            extra = {"paymig/_commit.py": marker} if marker else None
            return original(name, *args, extra_files=extra, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(checks_module, "build_package", build)
            w = world(config)
            add_checks(w)
            documents.append(w.synth())
    return documents[0], documents[1]


def test_triggers_are_what_is_checked_never_the_code(
    two_packages: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """Pins defect 2: the triggers held the package hash, so re-applying an older commit
    re-ran the check and an unhealthy on-prem blocked an infrastructure rollback."""
    before, after = two_packages
    for suffix in ("/checks/db-setup/function", "/checks/validation/function"):
        assert (
            by_path(before, "aws_lambda_function", suffix)[1]["source_code_hash"]
            != by_path(after, "aws_lambda_function", suffix)[1]["source_code_hash"]
        )
    checks_before, checks_after = invocations(before), invocations(after)
    assert sorted(checks_before) == CHECKS["cdc"]
    for name, (_, body) in checks_before.items():
        assert checks_after[name][1]["triggers"] == body["triggers"], name
        hashes = {
            by_path(doc, "aws_lambda_function", suffix)[1]["source_code_hash"]
            for doc in (before, after)
            for suffix in ("/checks/db-setup/function", "/checks/validation/function")
        }
        assert not hashes & set(body["triggers"].values()), name


def test_triggers_change_when_what_is_checked_changes(
    prod_config: PaymigConfig, two_packages: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    """The other half: a changed setting the checks check re-runs them (and only them).

    The same synthesis (one small stack, not two) also turns the automatic fallback on:
    the rollback function then names its hold in its environment (prod's has none)."""
    config = with_changes(
        prod_config,
        migration={"stage": "cdc"},
        validation={"grace_seconds": 45},
        automation={"after_cutover": "fallback", "fallback_alarm_seconds": 90},
    )
    w = world(config)
    add_checks(w)
    document = w.synth()
    moved = invocations(document)
    _, rollback = by_path(document, "aws_lambda_function", "/automation/rollback/function")
    variables = rollback["environment"]["variables"]
    assert variables["PAYMIG_AUTOMATIC_FALLBACK_SECONDS"] == "90"
    assert settings_from_env(variables).automatic_fallback_seconds == 90.0
    before = invocations(two_packages[0])
    for name in ("checks/validation/pre-check", "checks/validation/post-check"):
        assert moved[name][1]["triggers"] != before[name][1]["triggers"], name
    setup = "checks/db-setup/setup-check"
    assert moved[setup][1]["triggers"] == before[setup][1]["triggers"]
