"""The validation job's function against real PostgreSQL and the moto server.

The actions run in-process (moto runs no Lambda code) exactly as the state machine
sequences them: plan, then each slice invocation after invocation until it says done,
then the verdict. Tiny batches and no time left in an invocation force one batch per
invocation, so one pass takes many invocations; a killed invocation (a real process,
SIGKILL) resumes from its last committed batch. The state machine's own control flow
runs in moto in tests/test_validation_job_definition.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from paymig.config import PaymigConfig, ValidationConfig
from paymig.errors import ConfigError, PaymigError
from paymig.lambdas.validation_job import handler, runtime_from_env
from paymig.local.emulator import MotoServer
from paymig.local.postgres import LocalPostgres
from paymig.naming import audit_table_name
from paymig.runtime.controller.aws import AuditTrail
from paymig.runtime.validator.job import METRIC_NAMESPACE, JobRuntime, plan_action, slice_action
from paymig.runtime.validator.pass_store import PassStore
from tests.validation_env import (
    LambdaContext,
    declare,
    execute,
    payment_id,
    reset_aws,
    set_environment,
    start_databases,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PAYMENTS = 2_000

#: Small ranges, tiny batches, a slice of about 600 rows: many slices, many invocations.
JOB = ValidationConfig(
    grace_seconds=0,
    workers=2,
    range_rows=100,
    leaf_rows=10,
    batch_seconds=0.001,
    estimated_rows_per_second_per_worker=1,
)


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[LocalPostgres, LocalPostgres]]:
    servers = start_databases(PAYMENTS)
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def job_env(
    databases: tuple[LocalPostgres, LocalPostgres],
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    prod_config: PaymigConfig,
) -> PaymigConfig:
    session = reset_aws(moto_server, monkeypatch, prod_config.stack_name)
    source, target = databases
    declare(session, monkeypatch, prod_config.stack_name, "SOURCE", source)
    declare(session, monkeypatch, prod_config.stack_name, "AURORA", target)
    set_environment(monkeypatch, prod_config, JOB)
    return prod_config


def runtime(**validation: Any) -> JobRuntime:
    job = runtime_from_env(os.environ, boto3.Session())
    if validation:
        job.cfg = job.cfg.model_copy(update=validation)
    return job


def run_pass(job: JobRuntime) -> tuple[dict[str, Any], dict[str, int], dict[str, Any]]:
    """Plan, every slice until done (no time left: one batch per invocation), verdict."""
    planned = handler({"action": "plan", "state": {}}, LambdaContext(900))
    invocations: dict[str, int] = {}
    for number in planned["slices"]:
        while True:
            invocations[str(number)] = invocations.get(str(number), 0) + 1
            state = {"pass_id": planned["pass_id"], "slice": number}
            if slice_action(job, state, lambda: 0.0)["done"]:
                break
    verdict = handler({"action": "verdict", "pass_id": planned["pass_id"]}, LambdaContext(900))
    return planned, invocations, verdict


def store() -> PassStore:
    return PassStore(boto3.client("dynamodb"), audit_table_name("paymig-prod"), 100)


def test_a_pass_takes_many_slices_and_invocations_and_records_its_verdict(
    job_env: PaymigConfig,
) -> None:
    planned, invocations, verdict = run_pass(runtime())
    assert verdict["status"] == "consistent" and planned["resumed"] is False
    passes = store()
    item = passes.get(planned["pass_id"])
    slices = passes.slices(planned["pass_id"])
    assert len(slices) >= 5 and {s.spec.table for s in slices} == {
        "public.accounts",
        "public.payments",
        "public.paymig_markers",  # the cutover's fence markers replicate too
        "public.refunds",
    }
    assert sum(invocations.values()) > len(slices)  # slices needed several invocations
    assert (item["status"], item["verdict"]) == ("finished", "consistent")
    assert item["ranges_done"] == item["ranges_total"] == sum(s.spec.count for s in slices)
    assert item["source_rows"] == item["target_rows"] == PAYMENTS + 20
    latest = AuditTrail(
        boto3.client("dynamodb"), audit_table_name("paymig-prod")
    ).latest_validation()
    assert latest is not None
    assert (latest["status"], latest["source"], latest["pass_id"]) == (
        "consistent",
        "job",
        planned["pass_id"],
    )
    metrics = boto3.client("cloudwatch").list_metrics(Namespace=METRIC_NAMESPACE)["Metrics"]
    assert {m["MetricName"] for m in metrics} == {
        "RangesTotal",
        "RangesDone",
        "RowsCompared",
        "DifferingKeys",
    }
    assert all(m["Dimensions"] == [{"Name": "Environment", "Value": "prod"}] for m in metrics)


def copy_payment(source: LocalPostgres, target: LocalPostgres, number: int) -> None:
    """Put a payment the test deleted on the target back, as the source has it."""
    with psycopg.connect(source.dsn("payments")) as conn:
        row = conn.execute("SELECT * FROM payments WHERE id = %s", [payment_id(number)]).fetchone()
    assert row is not None
    execute(target, f"INSERT INTO payments VALUES ({', '.join(['%s'] * len(row))})", list(row))


def test_the_verdict_reports_exactly_the_injected_differences(
    job_env: PaymigConfig, databases: tuple[LocalPostgres, LocalPostgres]
) -> None:
    source, target = databases
    execute(target, "DELETE FROM payments WHERE id = %s", [payment_id(11)])
    execute(target, "UPDATE payments SET status = 'failed' WHERE id = %s", [payment_id(1999)])
    execute(target, "UPDATE accounts SET display_name = 'x' WHERE display_name = 'acct 3'")
    try:
        planned, _, verdict = run_pass(runtime())
    finally:
        execute(target, "UPDATE accounts SET display_name = 'acct 3' WHERE display_name = 'x'")
        execute(
            target, "UPDATE payments SET status = 'succeeded' WHERE id = %s", [payment_id(1999)]
        )
        copy_payment(source, target, 11)
    assert verdict["status"] == "inconsistent"
    assert "differences in public.accounts, public.payments" in verdict["summary"]
    item = store().get(planned["pass_id"])
    assert (item["missing"], item["extra"], item["different"]) == (1, 0, 2)
    latest = AuditTrail(
        boto3.client("dynamodb"), audit_table_name("paymig-prod")
    ).latest_validation()
    assert latest is not None and latest["status"] == "inconsistent"
    tables = {t["table"]: t for t in latest["tables"]}
    assert tables["public.payments"]["missing_in_target"] == [[payment_id(11)]]
    assert tables["public.payments"]["different"] == [[payment_id(1999)]]
    assert tables["public.accounts"]["different_count"] == 1


SLICE_SCRIPT = """
import sys
import boto3, os
from paymig.lambdas.validation_job import runtime_from_env
from paymig.runtime.validator.job import slice_action
job = runtime_from_env(os.environ, boto3.Session())
job.cfg = job.cfg.model_copy(update={"batch_seconds": 0.2, "rate_limit_rows_per_second": 400})
slice_action(job, {"pass_id": sys.argv[1], "slice": int(sys.argv[2])}, lambda: 10_000.0)
"""


def test_a_killed_invocation_resumes_from_its_last_committed_batch(
    job_env: PaymigConfig, databases: tuple[LocalPostgres, LocalPostgres]
) -> None:
    _, target = databases
    execute(target, "UPDATE payments SET amount = amount + 1 WHERE id = %s", [payment_id(1500)])
    try:
        _killed_and_resumed(runtime())
    finally:
        execute(target, "UPDATE payments SET amount = amount - 1 WHERE id = %s", [payment_id(1500)])


def _killed_and_resumed(job: JobRuntime) -> None:
    # one big slice: the whole payments table in one Map item
    job.cfg = job.cfg.model_copy(update={"estimated_rows_per_second_per_worker": 10_000})
    planned = plan_action(job, {})
    passes = store()
    (number,) = [s.spec.number for s in passes.slices(planned["pass_id"])
                 if s.spec.table == "public.payments"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen(
        [sys.executable, "-c", SLICE_SCRIPT, planned["pass_id"], str(number)], env=env
    )
    try:
        deadline = time.monotonic() + 120
        while len(passes.load_slice(planned["pass_id"], number).results) < 2:
            assert process.poll() is None, "the invocation ended before it could be killed"
            assert time.monotonic() < deadline, "no two batches committed in 120 s"
            time.sleep(0.05)
        process.kill()
    finally:
        process.wait(timeout=60)
    stored = passes.load_slice(planned["pass_id"], number)
    before = set(stored.results)
    assert 0 < len(before) < stored.spec.count  # killed in the middle of the slice

    compared: list[int] = []
    commit = job.store.commit

    def spy(pass_id: str, slice_number: int, results: Any) -> int:
        compared.extend(r.index for r in results)
        return commit(pass_id, slice_number, results)

    job.store.commit = spy  # type: ignore[method-assign]
    assert slice_action(job, {"pass_id": planned["pass_id"], "slice": number}, lambda: 900.0)[
        "done"
    ]
    assert compared and not before & set(compared)  # no committed range compared again
    assert sorted(before | set(compared)) == list(stored.spec.indexes)
    for other in planned["slices"]:
        while not slice_action(job, {"pass_id": planned["pass_id"], "slice": other}, lambda: 0.0)[
            "done"
        ]:
            pass
    verdict = handler({"action": "verdict", "pass_id": planned["pass_id"]}, LambdaContext(900))
    item = passes.get(planned["pass_id"])
    assert item["ranges_done"] == item["ranges_total"]  # every range counted exactly once
    assert (item["missing"], item["extra"], item["different"]) == (0, 0, 1)
    assert item["source_rows"] == item["target_rows"] == PAYMENTS + 20
    assert verdict["status"] == "inconsistent"


def test_plan_resumes_the_unfinished_pass_unless_a_new_one_is_asked_for(
    job_env: PaymigConfig,
) -> None:
    first = handler({"action": "plan", "state": {}}, LambdaContext(900))
    again = handler({"action": "plan", "state": {"error": {"Error": "x"}}}, LambdaContext(900))
    assert (again["pass_id"], again["slices"], again["resumed"]) == (
        first["pass_id"],
        first["slices"],
        True,
    )
    fresh = handler({"action": "plan", "state": {"new_pass": True}}, LambdaContext(900))
    assert fresh["pass_id"] != first["pass_id"] and fresh["resumed"] is False


def test_an_error_keeps_the_pass_resumable_and_blocks_the_gate(job_env: PaymigConfig) -> None:
    planned = handler({"action": "plan", "state": {}}, LambdaContext(900))
    error = {"Error": "ValidatorError", "Cause": "source: connection refused"}
    result = handler(
        {"action": "error", "state": {"pass_id": planned["pass_id"], "error": error}},
        LambdaContext(900),
    )
    assert result["message"] == "ValidatorError: source: connection refused"
    item = store().get(planned["pass_id"])
    assert (item["status"], item["last_error"]) == ("running", result["message"])
    latest = AuditTrail(
        boto3.client("dynamodb"), audit_table_name("paymig-prod")
    ).latest_validation()
    assert latest is not None and latest["status"] == "error"
    assert latest["summary"] == (
        "validation job stopped: ValidatorError: source: connection refused "
        f"(pass {planned['pass_id']} resumes on the next execution)"
    )
    assert handler({"action": "plan", "state": {}}, LambdaContext(900))["resumed"] is True


def test_the_job_reads_the_standby_and_the_reader_where_declared(
    job_env: PaymigConfig,
    databases: tuple[LocalPostgres, LocalPostgres],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = boto3.Session()
    source, target = databases
    stack = job_env.stack_name
    # the primaries' declarations now point at closed ports: only the replicas answer
    declare(session, monkeypatch, stack, "SOURCE", source, port=1)
    declare(session, monkeypatch, stack, "AURORA", target, port=1)
    declare(session, monkeypatch, stack, "SOURCE_STANDBY", source)
    declare(session, monkeypatch, stack, "AURORA_READER", target)
    assert handler({"action": "plan", "state": {}}, LambdaContext(900))["resumed"] is False
    monkeypatch.delenv("PAYMIG_DB_AURORA_READER")
    with pytest.raises(PaymigError, match="target: cannot connect"):
        handler({"action": "plan", "state": {"new_pass": True}}, LambdaContext(900))


def test_bad_events_and_environments_are_one_line_errors(
    job_env: PaymigConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(
        PaymigError, match=r"event\.action must be one of plan, slice, verdict, error"
    ):
        handler({"action": "all"}, LambdaContext(900))
    monkeypatch.setenv("PAYMIG_VALIDATION", json.dumps({"workers": 0}))
    with pytest.raises(ConfigError, match=r"^PAYMIG_VALIDATION: 1 validation error"):
        handler({"action": "plan"}, LambdaContext(900))
    monkeypatch.delenv("PAYMIG_DB_SOURCE")
    monkeypatch.setenv("PAYMIG_VALIDATION", JOB.model_dump_json())
    with pytest.raises(ConfigError, match=r"^PAYMIG_DB_SOURCE: not set$"):
        handler({"action": "plan"}, LambdaContext(900))
