"""`paymig finish` against the moto server: each refusal names its precondition, success
stores `complete` with an audit event and prints the next step, a second run changes
nothing, and the stage write is conditional on the version read.

The environment is `controller_env`'s (what it leaves untested is said there). The
stage item is written as `paymig cutover` leaves it, with `since` chosen by the test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller_env import MigrationEnv, build_env
from paymig.cli import main
from paymig.config import PaymigConfig
from paymig.local.emulator import MotoServer
from paymig.naming import audit_table_name
from paymig.runtime.controller.core import ControllerRefusedError
from paymig.runtime.controller.stage import StageRecord, StageStore
from paymig.runtime.cutover.finish import FinishSettings, finish

pytestmark = pytest.mark.slow

HOLD_HOURS = 840


def make(
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    prod_config: PaymigConfig,
    hold: float = HOLD_HOURS,
    **kwargs: Any,
) -> MigrationEnv:
    migration = prod_config.migration.model_copy(update={"finish_after_hours": hold})
    base = prod_config.model_copy(update={"migration": migration})
    return build_env(moto_server, monkeypatch, tmp_path, base, **{"aws_weight": 100, **kwargs})


@pytest.fixture
def env_factory(
    moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, prod_config: Any
) -> Any:
    return lambda **kwargs: make(moto_server, monkeypatch, tmp_path, prod_config, **kwargs)


def store(env: MigrationEnv) -> StageStore:
    return StageStore(env.client("dynamodb"), audit_table_name(env.stack))


def cut_over(env: MigrationEnv, hours_ago: float, operation: Any = None) -> StageRecord:
    """The stage as a cutover `hours_ago` left it (through a move, as cutover does)."""
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    s = store(env)
    return s.move(s.read(), "cut-over", operation=operation, now=at, actor="arn:op", reason="c")


def cli(env: MigrationEnv, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["finish", *args, "--config", str(env.config_path)])
    out, err = capsys.readouterr()
    return code, out + err


def refused_checks(out: str) -> list[str]:
    """The names of the failed preconditions, one line each."""
    lines = [line for line in out.splitlines() if line.startswith("finish refused: ")]
    names = []
    for line in lines:
        rest = line.removeprefix("finish refused: ")
        names.append(rest.split(" ")[1] if rest.startswith("gate ") else rest.split(":")[0])
    return names


def finish_events(env: MigrationEnv) -> list[dict[str, Any]]:
    return [e for e in env.audit().events() if e["action"] == "finish"]


def test_nothing_cut_over_is_refused_naming_the_stage_and_the_traffic(
    env_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    env = env_factory(aws_weight=0)
    code, out = cli(env, capsys, "--reason", "done")
    assert code == 1
    assert refused_checks(out) == ["stage", "traffic"]
    assert "the stored stage is replicating, not cut-over" in out
    assert "Route 53 weights are legacy 100 / aws 0, not legacy 0 / aws 100" in out
    assert store(env).read() == StageRecord("replicating")
    (event,) = finish_events(env)
    assert (event["result"], event["reason"]) == ("refused", "done")


def test_a_hold_not_yet_over_is_refused_with_the_time_left(
    env_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    env = env_factory()
    # The validation of the set-up was checked before this cutover: it no longer counts.
    before = cut_over(env, hours_ago=HOLD_HOURS - 10)
    code, out = cli(env, capsys, "--reason", "done")
    assert (code, refused_checks(out)) == (1, ["cut-over-hold"])
    assert f"held {HOLD_HOURS - 10:.1f} h of {HOLD_HOURS} h" in out
    assert "(migration.finish_after_hours; 10.0 h left)" in out
    assert store(env).read() == before


def test_the_hold_is_measured_on_aws_clock_not_the_local_one(env_factory: Any) -> None:
    env = env_factory()
    cut_over(env, hours_ago=HOLD_HOURS - 1)
    aws = env.controller()
    real = aws.clock.local
    aws.clock.local = lambda: real() + timedelta(days=3)  # this machine runs 3 days ahead
    with pytest.raises(ControllerRefusedError) as refused:
        finish(aws, FinishSettings.from_config(env.config), reason="r")
    assert [r.split(":")[0] for r in refused.value.reasons] == ["cut-over-hold"]
    assert aws.clock.offset < -timedelta(days=2)


def test_an_operation_under_way_is_refused(
    env_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    env = env_factory()
    cut_over(env, hours_ago=HOLD_HOURS + 1, operation="fallback")
    code, out = cli(env, capsys, "--reason", "done")
    assert (code, refused_checks(out)) == (1, ["stage"])
    assert "a fallback is under way since" in out


@pytest.mark.parametrize(
    ("fault", "names"),
    [
        ("user-alarm", ["alarm:5xx-rate", "alarm:migration-health"]),
        ("replication-alarm", []),
        ("inconsistent", ["validation"]),
        ("validation-before-cutover", ["validation-after-cutover"]),
        ("rollback-unacknowledged", ["rollback-hold"]),
        ("traffic", ["traffic"]),
    ],
)
def test_each_gate_that_still_applies_names_itself(
    env_factory: Any, capsys: pytest.CaptureFixture[str], fault: str, names: list[str]
) -> None:
    if fault == "validation-before-cutover":
        env = env_factory(hold=0.25, validation=None)
        env.audit().record_validation(
            {"status": "consistent", "summary": "t"}, datetime.now(UTC) - timedelta(minutes=40)
        )
        cut_over(env, hours_ago=0.5)
    else:
        env = env_factory(aws_weight=50 if fault == "traffic" else 100)
        cut_over(env, hours_ago=HOLD_HOURS + 1)
    if fault == "user-alarm":
        env.set_alarm("5xx-rate", "ALARM")
        env.set_alarm("migration-health", "ALARM")
    if fault == "replication-alarm":  # the forward task stopped at cutover: not a reason
        env.set_alarm("cdc-latency", "ALARM")
        env.set_alarm("dms-task-failure", "ALARM")
    if fault == "inconsistent":
        env.audit().record_validation({"status": "inconsistent", "summary": "3 rows differ"})
    if fault == "rollback-unacknowledged":
        env.record_event(datetime.now(UTC), actor="lambda", action="rollback", result="succeeded")
        env.audit().record_validation({"status": "consistent", "summary": "after"})
    code, out = cli(env, capsys, "--reason", "done")
    if not names:
        assert code == 0, out
        assert store(env).read().stored == "complete"
        return
    assert code == 1
    assert refused_checks(out) == names
    assert store(env).read().stored == "cut-over"


def test_success_stores_complete_records_it_and_prints_the_next_step(
    env_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    env = env_factory()
    before = cut_over(env, hours_ago=HOLD_HOURS + 1)
    env.audit().record_validation({"status": "consistent", "summary": "after the cutover"})
    code, out = cli(env, capsys, "--reason", "35 days on Aurora, month-end passed")
    assert code == 0, out
    after = store(env).read()
    caller = env.client("sts").get_caller_identity()["Arn"]
    assert (after.stored, after.operation, after.version, after.actor, after.reason) == (
        "complete",
        None,
        before.version + 1,
        caller,
        "35 days on Aurora, month-end passed",
    )
    (event,) = finish_events(env)
    assert (event["result"], event["actor"]) == ("succeeded", caller)
    assert event["stage_before"]["version"] == before.version
    assert event["stage_after"]["stage"] == "complete"
    assert f"1. set `migration.stage: finished` in {env.config_path}" in out
    assert "2. .venv/bin/paymig check --env prod" in out
    assert (
        "cd cdktf.out/stacks/paymig-prod && terraform init && terraform plan -out plan.tfplan"
        in out
    )
    assert "4. terraform apply plan.tfplan" in out
    assert "pg_drop_replication_slot('paymig_reverse')" in out
    assert "6. paymig cost --env prod then shows the steady state (no DMS)" in out

    code, again = cli(env, capsys, "--reason", "again", "--format", "json")
    assert code == 0
    assert '"result": "no-change"' in again
    assert "already complete since" in again
    assert store(env).read() == after
    assert len(finish_events(env)) == 1


def test_a_stage_moved_after_the_read_is_not_overwritten(env_factory: Any) -> None:
    env = env_factory()
    cut_over(env, hours_ago=HOLD_HOURS + 1)
    env.audit().record_validation({"status": "consistent", "summary": "after the cutover"})
    aws = env.controller()
    other = store(env)

    def fallback_begins(**_: Any) -> None:
        """Another operator starts a fallback between finish's read and its write."""
        other.move(other.read(), "cut-over", operation="fallback", now=datetime.now(UTC),
                   actor="arn:other", reason="fallback")  # fmt: skip

    aws.stage.client.meta.events.register("before-call.dynamodb.PutItem", fallback_begins)
    with pytest.raises(ControllerRefusedError, match="set by arn:other"):
        finish(aws, FinishSettings.from_config(env.config), reason="r")
    now = store(env).read()
    assert (now.stored, now.operation, now.actor) == ("cut-over", "fallback", "arn:other")
    assert [e["result"] for e in finish_events(env)] == ["refused"]
