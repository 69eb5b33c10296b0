"""The controller's pure core: phase plan, gates, rollback plan, audit replay, budget.

No AWS, no mocks: facts go in, decisions come out.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from paymig.config import AlarmSettings, PaymigConfig, load_config, parse_config
from paymig.errors import ConfigError
from paymig.naming import alarm_names
from paymig.runtime.controller.aws import TokenBucket
from paymig.runtime.controller.core import (
    ROLLBACK_LIMIT_SECONDS,
    ControllerRefusedError,
    ControllerSettings,
    GateFacts,
    RollbackSettings,
    Weights,
    backoff_delay,
    budget_from_config,
    evaluate_gates,
    parse_alarm_message,
    phase_from_events,
    plan_rollback,
    plan_shift,
    refusal_for,
    rollback_budget,
)

REPO = Path(__file__).resolve().parents[1]
PHASES = (0, 10, 50, 100)
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
STACK = "paymig-prod"


def settings(**overrides: object) -> ControllerSettings:
    values: dict[str, object] = {
        "rollback": RollbackSettings(STACK, "prod", "Z123", "api.payments.example.com"),
        "phases": PHASES,
        "initial_phase": 0,
        "cdc_latency_threshold_seconds": 30.0,
        "cdc_latency_lookback_seconds": 300,
        "validation_max_age": timedelta(minutes=120),
        "dwell_minutes": {10: 60},
    }
    values.update(overrides)
    return ControllerSettings(**values)  # type: ignore[arg-type]


def healthy(**overrides: object) -> GateFacts:
    values: dict[str, object] = {
        "now": NOW,
        "alarm_states": dict.fromkeys(alarm_names(STACK), "OK"),
        "cdc_latency_seconds": 4.0,
        "validation": {"status": "consistent", "checked_at": "2026-11-29T11:30:00.000000Z"},
        "phase_entered_at": NOW - timedelta(hours=2),
    }
    values.update(overrides)
    return GateFacts(**values)  # type: ignore[arg-type]


def failed(facts: GateFacts, current: int = 0) -> dict[str, str]:
    return {g.name: g.detail for g in evaluate_gates(settings(), facts, current) if not g.ok}


# --------------------------------------------------------------------------- weights


def test_weights_of_phases_and_percent():
    assert Weights.for_phase(10) == Weights(legacy=90, aws=10)
    assert Weights(legacy=90, aws=10).aws_percent == 10
    assert Weights(legacy=1, aws=1).aws_percent == 50
    assert Weights(legacy=0, aws=0).aws_percent is None
    with pytest.raises(ValueError, match="percentage"):
        Weights.for_phase(101)


# --------------------------------------------------------------------------- phase plan


def test_next_phase_is_allowed():
    plan = plan_shift(PHASES, Weights(100, 0), 0, 10, force=False, reason="go")
    assert (plan.from_phase, plan.to_phase, plan.weights, plan.forced) == (
        0,
        10,
        Weights(90, 10),
        False,
    )
    assert plan.changes_anything


def test_skipping_phases_is_refused_naming_them():
    with pytest.raises(ControllerRefusedError) as refused:
        plan_shift(PHASES, Weights(100, 0), 0, 100, force=False, reason="go")
    assert refused.value.reasons == (
        "--to 100 skips phase(s) 10%, 50% from 0%",
        "use --force with a --reason to override",
    )
    assert refused.value.exit_code == 1


def test_force_allows_a_skip_and_says_so():
    plan = plan_shift(PHASES, Weights(100, 0), 0, 100, force=True, reason="CAB-42")
    assert plan.forced
    assert plan.notes == ("--to 100 skips phase(s) 10%, 50% from 0%",)
    assert plan.weights == Weights(0, 100)


def test_force_on_a_next_phase_is_not_recorded_as_forced():
    plan = plan_shift(PHASES, Weights(90, 10), 10, 50, force=True, reason="go")
    assert not plan.forced


def test_going_back_is_refused_unless_forced():
    with pytest.raises(ControllerRefusedError, match="goes back from 50%"):
        plan_shift(PHASES, Weights(50, 50), 50, 10, force=False, reason="go")
    assert plan_shift(PHASES, Weights(50, 50), 50, 10, force=True, reason="x").to_phase == 10


def test_target_must_be_a_phase_even_with_force():
    with pytest.raises(ControllerRefusedError, match=r"--to 30: not a phase of 0, 10, 50, 100"):
        plan_shift(PHASES, Weights(100, 0), 0, 30, force=True, reason="go")


def test_blank_reason_is_refused():
    with pytest.raises(ControllerRefusedError, match="--reason: a reason is required"):
        plan_shift(PHASES, Weights(100, 0), 0, 10, force=False, reason=" ")


def test_live_weights_that_disagree_with_the_trail_are_refused():
    with pytest.raises(ControllerRefusedError, match="disagree with the recorded phase 0%"):
        plan_shift(PHASES, Weights(90, 10), 0, 50, force=False, reason="go")
    with pytest.raises(
        ControllerRefusedError, match=r"live weights \(legacy 70 / aws 30\) are not"
    ):
        plan_shift(PHASES, Weights(70, 30), 10, 50, force=False, reason="go")
    with pytest.raises(ControllerRefusedError, match="both 0"):
        plan_shift(PHASES, Weights(0, 0), 10, 50, force=False, reason="go")
    forced = plan_shift(PHASES, Weights(0, 0), 10, 50, force=True, reason="repair")
    assert (forced.from_phase, forced.forced) == (10, True)


def test_shift_to_the_current_phase_changes_nothing():
    plan = plan_shift(PHASES, Weights(90, 10), 10, 10, force=False, reason="go")
    assert not plan.changes_anything


# --------------------------------------------------------------------------- gates


def test_all_gates_pass_on_healthy_facts():
    gates = evaluate_gates(settings(), healthy(), 10)
    assert [g.name for g in gates] == [
        "alarm:5xx-rate", "alarm:p99-latency", "alarm:cdc-latency", "alarm:dms-task-failure",
        "alarm:aurora-cpu", "alarm:replica-lag", "alarm:migration-health",
        "cdc-latency", "validation", "dwell",
    ]  # fmt: skip
    assert all(g.ok for g in gates)
    assert refusal_for(gates) is None


def test_alarm_not_ok_or_absent_fails_its_gate():
    states = dict.fromkeys(alarm_names(STACK), "OK")
    states["paymig-prod-5xx-rate"] = "ALARM"
    states["paymig-prod-aurora-cpu"] = "INSUFFICIENT_DATA"
    del states["paymig-prod-migration-health"]
    assert failed(healthy(alarm_states=states)) == {
        "alarm:5xx-rate": "paymig-prod-5xx-rate is ALARM",
        "alarm:aurora-cpu": "paymig-prod-aurora-cpu is INSUFFICIENT_DATA",
        "alarm:migration-health": "alarm paymig-prod-migration-health not found",
    }


def test_unreadable_alarms_fail_every_alarm_gate():
    result = failed(healthy(alarm_states={}, alarms_error="AccessDenied: no"))
    assert len(result) == 7
    assert (
        result["alarm:replica-lag"] == "cannot read alarm paymig-prod-replica-lag: AccessDenied: no"
    )


def test_cdc_latency_gate():
    assert failed(healthy(cdc_latency_seconds=30.0)) == {}
    assert failed(healthy(cdc_latency_seconds=30.5)) == {
        "cdc-latency": "CDC latency 30.5 s > threshold 30 s"
    }
    assert failed(healthy(cdc_latency_seconds=None)) == {
        "cdc-latency": "no CDC latency datapoint in the last 300 s"
    }
    assert failed(healthy(cdc_error="Throttling: slow down")) == {
        "cdc-latency": "cannot read CDC latency: Throttling: slow down"
    }


@pytest.mark.parametrize(
    ("validation", "error", "detail"),
    [
        (None, None, "no validation result recorded"),
        (None, "ResourceNotFoundException: table", "cannot read validation: ResourceNotFoundException: table"),
        ({"status": "consistent"}, None, "latest validation has no valid checked_at"),
        ({"status": "consistent", "checked_at": "yesterday"}, None, "latest validation has no valid checked_at"),
        (
            {"status": "inconsistent", "checked_at": "2026-11-29T11:00:00Z", "summary": "2 rows"},
            None,
            "latest validation is inconsistent at 2026-11-29T11:00:00+00:00: 2 rows",
        ),
        (
            {"status": "consistent", "checked_at": "2026-11-29T09:00:00"},
            None,
            "latest validation (consistent at 2026-11-29T09:00:00+00:00) is older than 120 min",
        ),
    ],
)  # fmt: skip
def test_validation_gate_fails(validation, error, detail):
    assert failed(healthy(validation=validation, validation_error=error)) == {"validation": detail}


def test_dwell_gate():
    just_now = healthy(phase_entered_at=NOW - timedelta(minutes=20))
    assert failed(just_now, current=10) == {"dwell": "at 10% for 20 min of 60 (40 min left)"}
    assert failed(just_now, current=50) == {}  # no dwell configured at 50%
    assert failed(healthy(phase_entered_at=None), current=10) == {
        "dwell": "no record of when 10% was entered"
    }


def test_refusal_names_each_failed_gate():
    facts = healthy(cdc_latency_seconds=99.0, validation=None)
    refusal = refusal_for(evaluate_gates(settings(), facts, 0))
    assert str(refusal) == (
        "gate cdc-latency failed: CDC latency 99 s > threshold 30 s; "
        "gate validation failed: no validation result recorded"
    )


# --------------------------------------------------------------------------- rollback plan


def test_rollback_plan_changes_both_when_needed():
    plan = plan_rollback(Weights(50, 50), {"blue": 20, "green": 80}, "blue")
    assert plan.route53 == Weights(100, 0)
    assert plan.listener == {"blue": 100, "green": 0}
    assert plan.describe() == (
        "Route 53 legacy 50 / aws 50 -> legacy 100 / aws 0; "
        "listener blue 20 / green 80 -> blue 100 / green 0"
    )


def test_rollback_plan_to_a_green_stable_alias():
    plan = plan_rollback(Weights(100, 0), {"blue": 100, "green": 0}, "green")
    assert plan.route53 is None
    assert plan.listener == {"blue": 0, "green": 100}


def test_rollback_when_already_rolled_back_changes_nothing_and_says_so():
    plan = plan_rollback(Weights(100, 0), {"blue": 100, "green": 0}, "blue")
    assert plan.already_rolled_back
    assert plan.describe().startswith("already rolled back: Route 53 at legacy 100 / aws 0")
    assert plan.describe().endswith("nothing changed")


def test_rollback_settings_reject_unknown_alias():
    with pytest.raises(Exception, match="stable_alias must be one of blue, green"):
        RollbackSettings(STACK, "prod", "Z1", "api.x.com", stable_alias="red")


# --------------------------------------------------------------------------- audit replay


def test_phase_rebuilt_from_events():
    assert phase_from_events([], 0).phase == 0
    events = [
        {"result": "succeeded", "to_phase": 10, "at": "2026-11-29T10:00:00.000000Z"},
        {"result": "refused", "to_phase": 100, "at": "2026-11-29T10:30:00.000000Z"},
        {"result": "no-change", "to_phase": 10, "at": "2026-11-29T10:40:00.000000Z"},
        {"result": "succeeded", "to_phase": 50, "at": "2026-11-29T11:00:00.000000Z"},
        {"result": "failed", "to_phase": 100, "at": "2026-11-29T11:10:00.000000Z"},
    ]
    state = phase_from_events(events, 0)
    assert (state.phase, state.entered_at, state.unconfirmed) == (
        50,
        datetime(2026, 11, 29, 11, 0, tzinfo=UTC),
        False,
    )
    rolled = [*events, {"result": "unconfirmed", "to_phase": 0, "at": "2026-11-29T11:20:00Z"}]
    state = phase_from_events(rolled, 0)
    assert (state.phase, state.unconfirmed) == (0, True)


def test_entered_at_survives_a_repeat_of_the_same_phase():
    events = [
        {"result": "succeeded", "to_phase": 10, "at": "2026-11-29T10:00:00Z"},
        {"result": "succeeded", "to_phase": 10, "at": "2026-11-29T11:00:00Z"},
    ]
    assert phase_from_events(events, 0).entered_at == datetime(2026, 11, 29, 10, tzinfo=UTC)


# --------------------------------------------------------------------------- budget


def test_budget_adds_up_the_path():
    alarms = {
        "fast": AlarmSettings(threshold=1, period_seconds=10, evaluation_periods=3,
                              datapoints_to_alarm=3, high_resolution=True,
                              missing_data_reason="no requests, no errors"),
        "slow": AlarmSettings(threshold=1, period_seconds=60, evaluation_periods=3,
                              datapoints_to_alarm=2, missing_data_reason="lost = breaching"),
    }  # fmt: skip
    budget = rollback_budget(
        alarms,
        composite_evaluation_seconds=10,
        lambda_start_seconds=15,
        insync_timeout_seconds=60,
        record_ttl_seconds=60,
    )
    assert [(s.name, s.seconds) for s in budget.steps] == [
        ("detection", 120), ("composite", 10), ("lambda-start", 15),
        ("route53-insync", 60), ("dns-ttl", 60),
    ]  # fmt: skip
    assert budget.total_seconds == 265
    assert (budget.fastest_alarm, budget.fastest_signal_seconds) == ("fast", 175)
    assert budget.within_limit
    assert budget.as_dict()["steps"][0]["detail"] == "slowest alarm slow: 60 s x 2 datapoints"
    with pytest.raises(ValueError, match="no alarms"):
        rollback_budget({}, composite_evaluation_seconds=0, lambda_start_seconds=1,
                        insync_timeout_seconds=1, record_ttl_seconds=10)  # fmt: skip


@pytest.mark.parametrize("env", ["prod", "staging"])
def test_shipped_config_rolls_back_within_five_minutes(env):
    """Recomputed from the YAML: a config change that breaks requirement 8 fails here."""
    budget = budget_from_config(load_config(REPO / "config" / f"{env}.yaml"))
    assert budget.total_seconds <= ROLLBACK_LIMIT_SECONDS, budget.as_dict()
    assert budget.total_seconds == 265
    assert budget.fastest_signal_seconds == 205


def test_a_slower_alarm_pushes_the_budget_over_the_limit(prod_config: PaymigConfig):
    alarms = dict(prod_config.observability.alarms)
    alarms["aurora-cpu"] = alarms["aurora-cpu"].model_copy(
        update={"period_seconds": 120, "datapoints_to_alarm": 2}
    )
    slow = prod_config.model_copy(
        update={"observability": prod_config.observability.model_copy(update={"alarms": alarms})}
    )
    budget = budget_from_config(slow)
    assert budget.total_seconds == 385
    assert not budget.within_limit


# --------------------------------------------------------------------------- config


def _with(text: str, section: str) -> str:
    return text + "\n" + section


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "controller:\n  dwell_minutes: {20: 5}\n",
            "controller.dwell_minutes: [20] not among migration.phases [0, 10, 50, 100]",
        ),
        (
            "controller:\n  route53_insync_timeout_seconds: 60\n  lock_ttl_seconds: 100\n",
            "lock_ttl_seconds 100 must be at least twice route53_insync_timeout_seconds (60)",
        ),
        ("controller:\n  stable_alias: red\n", "controller.stable_alias"),
    ],
)
def test_controller_config_errors_name_the_field(section, message):
    base = (REPO / "config" / "prod.yaml").read_text().split("\ncontroller:")[0]
    with pytest.raises(ConfigError, match=r"prod\.yaml") as error:
        parse_config(_with(base, section), Path("prod.yaml"))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"period_seconds": 10}, "period_seconds 10 needs a high-resolution metric"),
        ({"period_seconds": 90}, "period_seconds must be 10, 30 or a multiple of 60, got 90"),
        ({"datapoints_to_alarm": 4}, "datapoints_to_alarm 4 exceeds evaluation_periods 3"),
    ],
)
def test_alarm_settings_follow_cloudwatch_rules(change, message):
    values = {"threshold": 1, "evaluation_periods": 3, "missing_data_reason": "explained here"}
    with pytest.raises(ValueError, match=message):
        AlarmSettings(**{**values, **change})
    assert AlarmSettings(**values, period_seconds=30, high_resolution=True).detection_seconds == 60


def test_every_alarm_needs_settings(prod_config: PaymigConfig):
    data = prod_config.model_dump(mode="json")
    del data["observability"]["alarms"]["replica-lag"]
    with pytest.raises(ConfigError, match="settings missing for alarm\\(s\\): replica-lag"):
        parse_config(json.dumps(data), Path("x.yaml"))


# --------------------------------------------------------------------------- small parts


def test_backoff_is_bounded_full_jitter():
    rng = random.Random(7)
    delays = [backoff_delay(n, base=0.2, cap=5.0, rng=rng) for n in range(10)]
    for n, delay in enumerate(delays):
        assert 0 <= delay <= min(5.0, 0.2 * 2**n)
    assert len(set(delays)) == 10  # jittered, not a fixed ladder
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(-1, base=0.2, cap=5.0, rng=rng)


def test_token_bucket_keeps_five_per_second():
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    bucket = TokenBucket(5, 5, clock=lambda: clock[0], sleep=sleep)
    waits = [bucket.acquire() for _ in range(7)]
    assert waits[:5] == [0.0] * 5
    assert waits[5:] == pytest.approx([0.2, 0.2])
    assert clock[0] == pytest.approx(0.4)  # 7 calls took 0.4 s: at most 5 per second
    clock[0] += 10  # idle: refills to capacity, not beyond
    assert [bucket.acquire() for _ in range(6)][-1] == pytest.approx(0.2)
    with pytest.raises(ValueError):
        TokenBucket(0, 5)


def test_alarm_message_parsing():
    parsed = parse_alarm_message(
        json.dumps({"AlarmName": "a", "NewStateValue": "ALARM", "OldStateValue": "OK"})
    )
    assert parsed is not None and (parsed.alarm_name, parsed.new_state) == ("a", "ALARM")
    assert parse_alarm_message("not json") is None
    assert parse_alarm_message("[1, 2]") is None
    assert parse_alarm_message({"AlarmName": "a"}) is None


def test_lambda_code_imports_without_pydantic_or_yaml():
    """The rollback function's package needs boto3 and this repository's light modules only."""
    code = (
        "import sys, paymig.lambdas.rollback as r; "
        "print(sorted(m for m in ('pydantic', 'yaml', 'typer', 'rich') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == "[]"


def test_names_reject_unknown_alias_and_metric():
    from paymig.naming import alarm_name, target_group_name

    assert target_group_name(STACK, "green") == "paymig-prod-green"
    assert alarm_name(STACK, "cdc-latency") == "paymig-prod-cdc-latency"
    with pytest.raises(ValueError, match="alias must be one of"):
        target_group_name(STACK, "red")
    with pytest.raises(ValueError, match="metric must be one of"):
        alarm_name(STACK, "cpu")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS: 'soon' is not a number"),
        ("-5", "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS: must be positive, got -5"),
    ],
)
def test_lambda_settings_from_env_reject_bad_numbers(value, message):
    from paymig.lambdas.rollback import settings_from_env

    env = {
        "PAYMIG_STACK_NAME": STACK,
        "PAYMIG_ENVIRONMENT": "prod",
        "PAYMIG_HOSTED_ZONE_ID": "Z1",
        "PAYMIG_RECORD_NAME": "api.payments.example.com",
    }
    assert settings_from_env(env).insync_timeout_seconds == 60.0
    with pytest.raises(Exception, match=message):
        settings_from_env({**env, "PAYMIG_ROUTE53_INSYNC_TIMEOUT_SECONDS": value})


def test_notification_endpoints_are_validated(prod_config: PaymigConfig):
    data = prod_config.model_dump(mode="json")
    data["observability"]["notification_https_endpoints"] = ["http://hooks.example.com/x"]
    with pytest.raises(ConfigError, match=r"observability\.notification_https_endpoints\[0\]"):
        parse_config(json.dumps(data), Path("x.yaml"))
    data["observability"]["notification_https_endpoints"] = []
    data["observability"]["notification_emails"] = ["oncall"]
    with pytest.raises(ConfigError, match=r"observability\.notification_emails\[0\]"):
        parse_config(json.dumps(data), Path("x.yaml"))
