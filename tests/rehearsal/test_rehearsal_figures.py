"""The rehearsal's pure parts: the env translation, the measured path, the explanations.

No servers: each function is given what a run records and its output is checked exactly.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from paymig.config import load_config
from paymig.errors import CommandFailedError
from paymig.rehearsal.alarms import Transition
from paymig.rehearsal.clients import RequestRecord
from paymig.rehearsal.emulated import task_locals
from paymig.rehearsal.function_env import LocalDatabase, stand_in_environment
from paymig.rehearsal.outcome import modelled
from paymig.rehearsal.path import measure_fault_path, phase_shares
from paymig.rehearsal.report import RehearsalReport, StepResult, render_markdown, summary_rows
from paymig.rehearsal.stack_defs import (
    Resolver,
    dashboard_metrics,
    metric_alarm_request,
    state_attributes,
)
from paymig.rehearsal.validation import TableFigures, ValidationResult
from paymig.runtime.controller.budget import budget_from_config
from paymig.semantics.cloudwatch_alarm import AlarmState

REPO = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------- env


@pytest.fixture
def stand_in(tmp_path: Path) -> dict[tuple[str, int], LocalDatabase]:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nlocal\n-----END CERTIFICATE-----\n")
    return {("192.0.2.20", 5432): LocalDatabase("127.0.0.1", 15432, ca, "source via the VPN")}


def test_db_variables_point_at_the_stand_in(stand_in: Any) -> None:
    declared = {"DB_HOST": "192.0.2.20", "DB_PORT": "5432", "DB_NAME": "payments",
                "DB_SECRET_ARN": "arn:secret", "PAYMIG_ENVIRONMENT": "rehearsal"}  # fmt: skip
    result = stand_in_environment(declared, stand_in)
    ca = str(stand_in[("192.0.2.20", 5432)].ca_file)
    assert result.variables == {**declared, "DB_HOST": "127.0.0.1", "DB_PORT": "15432",
                                "DB_CA_BUNDLE": ca}  # fmt: skip
    assert result.mapped == ["DB_HOST/DB_PORT: 192.0.2.20:5432 -> source via the VPN"]
    assert result.ca_parameters == {}


def test_database_declarations_point_at_the_stand_in_and_carry_its_ca(stand_in: Any) -> None:
    spec = {"server": "source", "host": "192.0.2.20", "port": 5432, "dbname": "payments",
            "secret_arn": "arn:s", "sslmode": "verify-full",
            "ca_parameter": "/paymig/paymig-rehearsal/ca/source"}  # fmt: skip
    result = stand_in_environment({"PAYMIG_DB_SOURCE": json.dumps(spec), "X": "1"}, stand_in)
    assert json.loads(result.variables["PAYMIG_DB_SOURCE"]) == {**spec, "host": "127.0.0.1",
                                                                "port": 15432}  # fmt: skip
    assert result.variables["X"] == "1"
    assert list(result.ca_parameters) == ["/paymig/paymig-rehearsal/ca/source"]
    assert "BEGIN CERTIFICATE" in result.ca_parameters["/paymig/paymig-rehearsal/ca/source"]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"DB_HOST": "10.9.9.9"}, r"DB_HOST: declares 10\.9\.9\.9:5432, which no local server"),
        ({"PAYMIG_DB_AURORA": "not json"}, "PAYMIG_DB_AURORA: not a database declaration"),
        ({"PAYMIG_DB_AURORA": '{"host": "a"}'}, "PAYMIG_DB_AURORA: not a database declaration"),
    ],
)
def test_an_unknown_database_is_one_line(variables: dict[str, str], message: str,
                                         stand_in: Any) -> None:  # fmt: skip
    with pytest.raises(CommandFailedError, match=message):
        stand_in_environment(variables, stand_in)


# --------------------------------------------------------------------------- the path


def rec(
    sent: float, side: str, status: int, done: float | None = None, read_at: float | None = None
) -> RequestRecord:
    pid = f"id-{sent}" if 200 <= status < 300 else None
    return RequestRecord(sent, done or sent + 0.05, 0, side, status, pid, False,
                         sent if read_at is None else read_at)  # fmt: skip


def tr(at: float, alarm: str, new: AlarmState, composite: bool = False) -> Transition:
    return Transition(at, datetime(2026, 1, 1, tzinfo=UTC), alarm, AlarmState.OK, new, "r",
                      composite)  # fmt: skip


def test_the_fault_path_is_the_time_between_observed_events() -> None:
    records = [rec(99.0, "aws", 201), rec(100.2, "aws", 503, done=100.3), rec(100.5, "legacy", 201),
               rec(112.0, "aws", 503), rec(121.9, "aws", 503), rec(125.0, "legacy", 201)]  # fmt: skip
    transitions = [tr(90.0, "x-5xx-rate", AlarmState.OK), tr(118.3, "x-5xx-rate", AlarmState.ALARM),
                   tr(118.3, "x-health", AlarmState.ALARM, composite=True)]  # fmt: skip
    path = measure_fault_path(100.0, repaired_at=123.0, records=records, transitions=transitions,
                              handler_started=119.0, weights_restored=119.5)  # fmt: skip
    seconds = {s.name: s.seconds for s in path.steps}
    assert seconds == {
        "fault -> first 5xx": 0.3, "first 5xx -> alarm ALARM": 18.0,
        "alarm -> composite ALARM": 0.0, "composite -> handler start": 0.7,
        "handler start -> weights restored": 0.5, "weights restored -> last AWS request": 2.4,
        "fault -> weights restored": 19.5,
    }  # fmt: skip
    assert path.fired == "x-5xx-rate"
    # Sent between the fault and the repair: 4, of which 3 failed.
    assert (path.answered_during_fault, path.failed_to_clients) == (4, 3)


def test_the_last_aws_request_stops_where_traffic_is_sent_back_on_purpose() -> None:
    # The whole migration shifts to AWS again at 200 s: those requests are not the fault's.
    records = [rec(100.2, "aws", 503), rec(121.0, "aws", 201), rec(205.0, "aws", 201)]
    path = measure_fault_path(100.0, repaired_at=123.0, records=records, transitions=[],
                              handler_started=119.0, weights_restored=119.5,
                              reshifted_at=200.0)  # fmt: skip
    seconds = {s.name: s.seconds for s in path.steps}
    assert seconds["weights restored -> last AWS request"] == 1.5


def test_a_path_that_never_alarms_is_not_measured_past_the_first_error() -> None:
    path = measure_fault_path(10.0, repaired_at=None, records=[rec(11.0, "aws", 503)],
                              transitions=[], handler_started=None, weights_restored=None)  # fmt: skip
    assert [s.seconds for s in path.steps] == [1.05, None, None, None, None, None, None]
    assert path.fired is None


def test_the_shares_count_answers_read_after_the_change_except_at_the_start() -> None:
    # One request a second; each answer was read 12 s before it was sent (a held answer,
    # or a lagging view of the zone): the TTL alone would not tell the stale ones apart.
    records = [rec(t, "aws" if t % 2 else "legacy", 201, read_at=t - 12.0) for t in range(40)]
    shares = phase_shares([("0%", 0, 0.0, 10.0), ("50%", 50, 10.0, 40.0)], records)
    # 50%: sent from 10 to 39, answers read from 10 on for those sent from 22.
    assert [(s.phase, s.requests, s.transition_requests, s.aws_share) for s in shares] == [
        ("0%", 10, 0, 50.0), ("50%", 18, 12, 50.0)]  # fmt: skip
    # A weight-0 phase whose stale answers still say aws: none of them is counted.
    late = [rec(t, "aws", 201, read_at=9.0) for t in range(10, 20)]
    late += [rec(t, "legacy", 201, read_at=t - 0.5) for t in range(11, 20)]
    [_, back] = phase_shares([("50%", 50, 0.0, 10.0), ("rolled back", 0, 10.0, 20.0)], late)
    assert (back.requests, back.transition_requests, back.aws_share) == (9, 10, 0.0)


def test_the_modelled_path_takes_the_detection_of_the_alarm_that_fired() -> None:
    """Detection terms of the alarm that fired, then the first-invocation path's rest."""
    prod = load_config(REPO / "config" / "prod.yaml")
    budget = budget_from_config(prod)
    first = next(p for p in budget.paths if p.name == "first-invocation")
    steps = modelled(prod, "5xx-rate")
    # prod's 5xx-rate: 10 s high-resolution periods, 3 of 3, 15 s ingestion assumed.
    assert [(s["name"], s["seconds"]) for s in steps[:4]] == [
        ("alignment", 10), ("breaching periods", 30), ("ingestion", 15), ("evaluation", 10)]  # fmt: skip
    assert steps[1]["detail"].startswith("5xx-rate: 3 x 10 s breaching until ALARM")
    assert steps[4:] == [s.as_dict() for s in first.steps[4:]]
    assert [s["name"] for s in steps[4:]] == [
        "composite", "sns delivery", "lambda queue", "cold start", "event check", "stage read",
        "intent record", "route53 first", "propagation", "dns ttl"]  # fmt: skip
    assert modelled(prod, None) == budget.as_dict()["steps"]
    assert modelled(prod, "no-such-alarm") == budget.as_dict()["steps"]


# --------------------------------------------------------------------------- explanations


def test_each_count_difference_is_explained() -> None:
    live = TableFigures("public.payments", 50102, 50099, rechecked=3, confirmed=0)
    assert live.explain(3.0) == (
        "public.payments: source 50102 / target 50099 rows in the snapshots (3 row(s) in flight "
        "between the two moments they were taken); 3 key(s) differed in the snapshot and "
        "matched on re-check after 3 s (in flight); no difference"
    )
    still = TableFigures("public.refunds", 10, 9, rechecked=1, confirmed=1)
    assert still.explain(0.0) == (
        "public.refunds: source 10 / target 9 rows in the snapshots (1 row(s) in flight between "
        "the two moments they were taken); 1 difference(s) confirmed"
    )
    result = ValidationResult(False, (live, still), 1.0, 3.0, {})
    assert result.explanation()[-1] == "verdict: NOT consistent"
    assert result.summary() == (
        "NOT consistent: 50112 source / 50108 target rows over 2 tables in the snapshots; "
        "3 key(s) matched on re-check after 3 s (in flight), 1 confirmed difference(s)"
    )


def test_markdown_shows_figures_sides_and_not_rehearsed(tmp_path: Path) -> None:
    report = RehearsalReport(started_at="2026-11-29T00:00:00+00:00", rows=10, rate=2.0,
                             clients=5, scenario="vpn-cut: the VPN is cut")  # fmt: skip
    report.outcome, report.synth_cached, report.synth_seconds = "passed", True, 0.5
    report.apply_seconds, report.apply_rounds = 30.25, 1
    report.resources_total, report.resources_created = 10, 8
    report.not_rehearsed = {"aws_dms_certificate.ca": "not attempted: never | completes"}
    report.created_by_rehearsal = ["CloudWatch composite alarm x"]
    report.payments_acknowledged, report.payments_found, report.payments_lost = 40, 40, 0
    report.phases = [{"phase": "10%", "aws_weight": 10, "requests": 100, "aws_share": 9.0,
                      "transition_requests": 20}]  # fmt: skip
    report.fault_path = {"steps": [{"name": "fault -> first 5xx", "seconds": 0.2, "detail": "d"}],
                         "fired": "x-5xx-rate", "failed_to_clients": 7}  # fmt: skip
    report.final_weights = {"legacy": 100, "aws": 0}
    report.steps = [StepResult("deploy", True, 30.75, "8 of 10")]
    report.sides = {"AWS side": "the handler"}
    rows = dict(summary_rows(report))
    assert rows["payments acknowledged / found / lost"] == "40 / 40 / 0"
    assert rows["final weights (Route 53)"] == "aws 0, legacy 100"
    assert rows["fault -> first bad answer"] == "0.2 s"
    assert rows["-> alarm ALARM"] == "not measured (x-5xx-rate)"
    assert rows["share of requests on AWS (%), settled"] == ("10%: weight 10, measured 9 (100 req)")
    text = render_markdown(report, tmp_path / "timeline.png")
    assert "| `aws_dms_certificate.ca` | not attempted: never \\| completes |" in text
    assert "- **AWS side**: the handler" in text
    assert "- CloudWatch composite alarm x" in text
    assert "![timeline](timeline.png)" in text


# --------------------------------------------------------------------------- definitions


def test_references_resolve_from_the_state_and_the_task_locals(tmp_path: Path) -> None:
    state = tmp_path / "terraform.tfstate"
    state.write_text(json.dumps({"version": 4, "resources": [
        {"mode": "managed", "type": "aws_sns_topic", "name": "t",
         "instances": [{"attributes": {"arn": "arn:aws:sns:us-east-2:1:alerts"}}]},
        {"mode": "data", "type": "aws_caller_identity", "name": "c", "instances": []}]}))  # fmt: skip
    document = {"locals": {
        "task_id": '${element(split(":", aws_dms_replication_task.task_A1.replication_task_arn), 6)}',
        "other": "${aws_vpc.main.id}"}}  # fmt: skip
    resolver = Resolver(state_attributes(state), task_locals(document, "TASKRID"))
    body = {"//": "metadata", "alarm_actions": ["${aws_sns_topic.t.arn}"],
            "dims": {"Task": "${local.task_id}"}, "text": "x-${local.task_id}-y"}  # fmt: skip
    assert resolver.value(body) == {"alarm_actions": ["arn:aws:sns:us-east-2:1:alerts"],
                                    "dims": {"Task": "TASKRID"}, "text": "x-TASKRID-y"}  # fmt: skip
    with pytest.raises(CommandFailedError, match=r"cannot resolve \$\{local.other\}"):
        resolver.value("${local.other}")


def test_a_synthesized_alarm_becomes_its_put_metric_alarm_request() -> None:
    body = {"alarm_name": "a", "alarm_description": "d", "comparison_operator": "GreaterThanThreshold",
            "threshold": 30, "evaluation_periods": 3, "datapoints_to_alarm": 2,
            "treat_missing_data": "breaching", "actions_enabled": True, "alarm_actions": ["t"],
            "ok_actions": ["t"],
            "metric_query": [{"id": "m1", "return_data": True, "metric": {
                "namespace": "AWS/DMS", "metric_name": "CDCLatencyTarget", "period": 60,
                "stat": "Maximum", "dimensions": {"ReplicationTaskIdentifier": "R"}}}]}  # fmt: skip
    request = metric_alarm_request(body)
    assert request["Metrics"] == [{"Id": "m1", "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": "AWS/DMS", "MetricName": "CDCLatencyTarget",
                   "Dimensions": [{"Name": "ReplicationTaskIdentifier", "Value": "R"}]},
        "Period": 60, "Stat": "Maximum"}}]  # fmt: skip
    assert (request["Threshold"], request["DatapointsToAlarm"], request["TreatMissingData"]) == (
        30.0, 2, "breaching")  # fmt: skip


def test_dashboard_metrics_expand_the_repeat_shorthand() -> None:
    # Dashboard body syntax: "..." stands for the previous row's leading values the row
    # does not give, "." for the previous row's value at that position.
    body = {"widgets": [{"properties": {"metrics": [
        ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", "app/a/1", {"stat": "Sum"}],
        ["...", "TargetGroup", "tg/1"],
        [".", "HTTPCode_Target_5XX_Count", ".", "."],
        [{"expression": "m1 * 2"}]]}}, {"type": "text", "properties": {}}]}  # fmt: skip
    assert dashboard_metrics(body) == [
        ("AWS/ApplicationELB", "RequestCount", (("LoadBalancer", "app/a/1"),)),
        ("AWS/ApplicationELB", "RequestCount", (("TargetGroup", "tg/1"),)),
        ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", (("TargetGroup", "tg/1"),)),
    ]  # fmt: skip


def test_requests_sent_while_the_weights_move_belong_to_neither_phase() -> None:
    from paymig.rehearsal.migration import Migration, Phase, phase_windows

    migration = Migration(*[None] * 8)  # only its phases are used
    migration.phases.append(Phase("0%", 0, 0.0))
    migration.next_phase("10%", 10, at=5.0, since=3.0)  # the shift's call: 3 s to 5 s
    migration.next_phase("rolled back", 0, at=9.0, since=None)
    assert phase_windows(migration.phases) == [("0%", 0, 0.0, 3.0), ("10%", 10, 5.0, 9.0)]
    # At 4 s the new weights may already answer: that aws request is in neither phase.
    records = [rec(1.0, "legacy", 201), rec(4.0, "aws", 201), rec(6.0, "aws", 201)]
    shares = phase_shares(phase_windows(migration.phases), records)
    assert [(s.phase, s.requests, s.aws_share) for s in shares] == [
        ("0%", 1, 0.0), ("10%", 1, 100.0)]  # fmt: skip
