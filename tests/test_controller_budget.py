"""The rollback budget is a bound: every path's worst case, each term from its source.

Requirement 8 (rollback within 5 minutes) is asserted on the worst case over every path
of the shipped configurations, recomputed from them, never on a constant.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from paymig.config import AlarmSettings, PaymigConfig, load_config
from paymig.rollback_timing import (
    BEST_EFFORT_CALL_SECONDS,
    LAMBDA_INIT_SECONDS,
    LAMBDA_RETRY_WAITS_SECONDS,
    SHIFT_LANDING_SECONDS,
    SNS_FIRST_RETRIES_SECONDS,
    STAGE_READ_SECONDS,
)
from paymig.runtime.controller.budget import (
    ALB_ALIAS_TTL_SECONDS,
    AWS_METRIC_PUBLISH_SECONDS,
    HIGH_RESOLUTION_EVALUATION_SECONDS,
    ROUTE53_PROPAGATION_SECONDS,
    STANDARD_EVALUATION_SECONDS,
    UNBOUNDED,
    BudgetInputs,
    budget_from_config,
    detection_steps,
    periods_to_alarm,
    rollback_budget,
)
from paymig.runtime.controller.core import (
    ROLLBACK_LIMIT_SECONDS,
    ControllerSettings,
    handler_timeout_seconds,
    max_event_age_seconds,
)

REPO = Path(__file__).resolve().parents[1]
INPUTS = BudgetInputs(
    composite_evaluation_seconds=10,
    metric_ingestion_seconds=15,
    lambda_queue_seconds=5,
    route53_submit_seconds=30,
)


def alarm(period: int, m: int, n: int, *, high_resolution: bool) -> AlarmSettings:
    return AlarmSettings(
        threshold=1,
        period_seconds=period,
        evaluation_periods=n,
        datapoints_to_alarm=m,
        high_resolution=high_resolution,
        treat_missing_data="notBreaching",
        missing_data_reason="no requests, no errors",
    )


def test_sustained_fault_alarms_after_m_periods_by_cloudwatchs_rules():
    assert periods_to_alarm(alarm(60, 2, 3, high_resolution=False)) == 2
    assert periods_to_alarm(alarm(10, 3, 3, high_resolution=True)) == 3
    assert periods_to_alarm(alarm(60, 1, 1, high_resolution=False)) == 1


def test_detection_counts_alignment_ingestion_and_evaluation_cadence():
    standard = detection_steps("5xx-rate", alarm(60, 2, 3, high_resolution=False), 15)
    assert [(s.name, s.seconds) for s in standard] == [
        ("alignment", 60),
        ("breaching periods", 120),
        ("ingestion", AWS_METRIC_PUBLISH_SECONDS),
        ("evaluation", STANDARD_EVALUATION_SECONDS),
    ]
    high = detection_steps("5xx-rate", alarm(10, 3, 3, high_resolution=True), 15)
    assert [(s.name, s.seconds) for s in high] == [
        ("alignment", 10),
        ("breaching periods", 30),
        ("ingestion", 15),
        ("evaluation", HIGH_RESOLUTION_EVALUATION_SECONDS),
    ]
    assert high[2].source.startswith("assumption: controller.metric_ingestion_seconds")


def test_every_path_and_its_terms():
    members = {
        "5xx-rate": alarm(10, 3, 3, high_resolution=True),
        "p99-latency": alarm(10, 2, 3, high_resolution=True),
        "aurora-cpu": alarm(300, 5, 5, high_resolution=False),  # not a member: ignored
    }
    budget = rollback_budget(members, INPUTS)
    first, reapply = budget.paths
    delivery = (
        10
        + SNS_FIRST_RETRIES_SECONDS
        + 5
        + LAMBDA_INIT_SECONDS
        + 2 * BEST_EFFORT_CALL_SECONDS  # event check, intent record
        + STAGE_READ_SECONDS  # two short attempts at the stage
    )
    dns = ROUTE53_PROPAGATION_SECONDS + ALB_ALIAS_TTL_SECONDS
    detection = 10 + 30 + 15 + 10  # 5xx-rate, the slower member
    assert first.name == "first-invocation"
    assert first.total_seconds == detection + delivery + 30 + dns
    assert reapply.name == "re-apply"
    assert reapply.total_seconds == detection + delivery + 30 + SHIFT_LANDING_SECONDS + 30 + dns
    assert [s.name for s in reapply.steps] == [
        "alignment", "breaching periods", "ingestion", "evaluation", "composite",
        "sns delivery", "lambda queue", "cold start", "event check", "stage read",
        "intent record",
        "route53 first", "landing guard", "route53 second", "propagation", "dns ttl",
    ]  # fmt: skip
    assert (
        budget.total_seconds == reapply.total_seconds == max(p.total_seconds for p in budget.paths)
    )
    assert budget.worst_path is reapply
    assert (budget.fastest_alarm, budget.fastest_signal_seconds) == ("p99-latency",
                                                                     first.total_seconds - 10)  # fmt: skip
    assert all(step.source for path in budget.paths for step in path.steps)
    document = budget.as_dict()
    assert document["worst_path"] == "re-apply"
    assert [u["what"] for u in document["unbounded"]] == [u.what for u in UNBOUNDED]
    with pytest.raises(ValueError, match="no composite member alarms"):
        rollback_budget({"aurora-cpu": members["aurora-cpu"]}, INPUTS)


@pytest.mark.parametrize("env", ["prod", "staging", "rehearsal"])
def test_shipped_config_rolls_back_within_five_minutes_on_every_path(env: str):
    """Recomputed from the YAML: a config change that breaks requirement 8 fails here."""
    budget = budget_from_config(load_config(REPO / "config" / f"{env}.yaml"))
    for path in budget.paths:
        assert path.total_seconds <= ROLLBACK_LIMIT_SECONDS, path.as_dict()
    assert budget.within_limit
    assert budget.total_seconds == max(p.total_seconds for p in budget.paths)


def test_one_minute_metrics_cannot_meet_the_limit(prod_config: PaymigConfig):
    """The ALB's own metrics: 60 s alignment + 60 s x M + 60 s publishing + 60 s cadence."""
    alarms = dict(prod_config.observability.alarms)
    alarms["5xx-rate"] = alarm(60, 1, 1, high_resolution=False)
    slow = prod_config.model_copy(
        update={"observability": prod_config.observability.model_copy(update={"alarms": alarms})}
    )
    budget = budget_from_config(slow)
    assert [s.seconds for s in budget.steps[:4]] == [60, 60, 60, 60]
    assert not budget.within_limit
    assert budget.paths[0].total_seconds > ROLLBACK_LIMIT_SECONDS


def test_a_slower_route53_window_pushes_the_reapply_path_over(prod_config: PaymigConfig):
    ctl = prod_config.controller.model_copy(update={"route53_submit_seconds": 60})
    budget = budget_from_config(prod_config.model_copy(update={"controller": ctl}))
    first, reapply = budget.paths
    assert first.total_seconds <= ROLLBACK_LIMIT_SECONDS < reapply.total_seconds
    assert not budget.within_limit


def test_function_timeout_and_event_age_follow_the_settings(prod_config: PaymigConfig):
    settings = ControllerSettings.from_config(prod_config).rollback
    timeout = handler_timeout_seconds(settings)
    # Init 10, 3 short calls 6, the stage read 4, identity 7, Route 53 2 x 30, guard 12,
    # listener 20, INSYNC 60, the health read 10 and the reserve 20: 209 s, up to 210.
    assert timeout == 210
    docs = (REPO / "docs" / "controller.md").read_text(encoding="utf-8")
    assert f"({timeout} s for prod)" in docs
    age = max_event_age_seconds(settings)
    assert age == 660  # 2 x 210 + 60 + 120 + 2 = 602, rounded up to a minute
    assert age >= 2 * timeout + sum(LAMBDA_RETRY_WAITS_SECONDS)
    assert settings.event_age_limit_seconds == age
    assert f"({age} s for prod)" in docs


def test_the_budget_in_the_docs_is_prods(prod_config: PaymigConfig):
    from paymig.runtime.controller.budget import BUDGET_BEGIN, refresh_budget

    text = (REPO / "docs" / "controller.md").read_text(encoding="utf-8")
    assert BUDGET_BEGIN in text
    assert refresh_budget(text, budget_from_config(prod_config)) == text, (
        "run: python -m paymig.runtime.controller.budget docs/controller.md config/prod.yaml"
    )
