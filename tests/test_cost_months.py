"""Month by month: the plan's phases, RDS Extended Support from AWS's calendar date, the month
table, `paymig cost --month/--plot` and the `paymig check` warning.

Aurora PostgreSQL 14 leaves standard support on 28 February 2027 (the price table's
`engine_support`); Extended Support is charged from 1 March 2027.
"""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from paymig.cli import main
from paymig.config import PaymigConfig, UsageConfig
from paymig.cost.context import ConfigFacts
from paymig.cost.estimate import Estimate, estimate
from paymig.cost.extended_support import DISABLED, notices
from paymig.cost.months import MigrationPlan, Month, Phase, current_month
from paymig.cost.prices import PricingError, load_price_table
from paymig.cost.report import extended_support_notices, plan_of, table_environment
from paymig.cost.timeline import month_table

PRICES = load_price_table()
PLAN = MigrationPlan(Month(2026, 12), 3)


def cluster(lifecycle: str | None = None, instances: int = 2, klass: str = "db.r6g.large"):
    """An Aurora PostgreSQL 14 cluster and its instances, as synthesized."""
    attrs: dict[str, Any] = {"cluster_identifier": "db", "engine": "aurora-postgresql",
                             "engine_version": "14.17"}  # fmt: skip
    if lifecycle is not None:
        attrs["engine_lifecycle_support"] = lifecycle
    return {"resource": {
        "aws_rds_cluster": {"db": attrs},
        "aws_rds_cluster_instance": {f"i{n}": {
            "identifier": f"db-{n}", "instance_class": klass, "engine": "aurora-postgresql",
            "engine_version": "14.17", "cluster_identifier": "${aws_rds_cluster.db.id}"}
            for n in range(instances)},
    }}  # fmt: skip


def price(document: dict[str, Any], month: Month, facts: ConfigFacts | None = None) -> Estimate:
    return estimate(document, UsageConfig(), PRICES, plan=PLAN, month=month, facts=facts)


def extended(est: Estimate) -> dict[str, float]:
    return {i.resource: i.monthly_usd for i in est.items if "Extended Support" in i.resource}


# --------------------------------------------------------------------------- months and phases


def test_months_parse_step_and_share_days() -> None:
    assert Month.parse("2027-03") == Month(2027, 3)
    assert str(Month(2026, 12).plus(1)) == "2027-01"
    assert Month(2027, 1).plus(-2) == Month(2026, 11)
    assert Month(2027, 3).minus(Month(2026, 12)) == 3
    assert Month(2027, 2).days == 28 and Month(2028, 2).days == 29
    # a charge that starts on 15 March covers 17 of its 31 days
    assert Month(2027, 3).share_from(datetime.date(2027, 3, 15)) == pytest.approx(17 / 31)
    assert Month(2027, 3).share_from(datetime.date(2027, 1, 1), datetime.date(2027, 3, 11)) == (
        pytest.approx(10 / 31)
    )
    assert current_month(datetime.date(2026, 12, 1)) == Month(2026, 12)
    for bad in ("2026-13", "2026-00", "26-01", "2026-1", "next"):
        with pytest.raises(PricingError, match=rf"--month {bad}: not a month \(YYYY-MM\)"):
            Month.parse(bad, what="--month")
    with pytest.raises(PricingError, match="month must be 01-12"):
        Month(2026, 13)


def test_the_plan_phases() -> None:
    assert [PLAN.phase(m) for m in PLAN.horizon(5)] == [
        Phase.load, Phase.migration, Phase.migration, Phase.steady, Phase.steady]  # fmt: skip
    assert PLAN.phase(Month(2026, 11)) is Phase.before
    assert len(PLAN.horizon()) == 12 and PLAN.horizon()[-1] == Month(2027, 11)


# --------------------------------------------------------------------------- Extended Support


def test_extended_support_is_charged_per_vcpu_hour_from_the_calendar_date() -> None:
    calendar = PRICES.support_calendar("aurora-postgresql", "14")
    assert calendar.standard_support_ends == datetime.date(2027, 2, 28)
    assert calendar.extended_support_starts == datetime.date(2027, 3, 1)
    assert calendar.year3_starts == datetime.date(2029, 3, 1)
    assert calendar.extended_support_ends == datetime.date(2030, 3, 1)
    stack = cluster()
    assert extended(price(stack, Month(2027, 2))) == {}
    # 2 vCPU (db.r6g.large) x 730 h x $0.100, per instance: $146.00, $292.00 for two
    assert extended(price(stack, Month(2027, 3))) == {
        "db-0 RDS Extended Support (year 1-2)": pytest.approx(2 * 730 * 0.100),
        "db-1 RDS Extended Support (year 1-2)": pytest.approx(2 * 730 * 0.100),
    }
    assert sum(extended(price(stack, Month(2029, 2))).values()) == pytest.approx(292.00)
    # year 3 at $0.200: $584.00 for two
    assert sum(extended(price(stack, Month(2029, 3))).values()) == pytest.approx(584.00)
    # after the end of Extended Support AWS upgrades the engine: nothing left to charge
    assert extended(price(stack, Month(2030, 3))) == {}
    bigger = cluster(instances=1, klass="db.r6g.xlarge")  # 4 vCPU
    assert sum(extended(price(bigger, Month(2027, 3))).values()) == pytest.approx(4 * 730 * 0.1)


def test_extended_support_follows_the_stack_then_the_config() -> None:
    march = Month(2027, 3)
    disabled = ConfigFacts(engine_lifecycle_support=DISABLED)
    # the cluster says nothing: the config decides
    assert extended(price(cluster(), march, disabled)) == {}
    assert sum(extended(price(cluster(), march)).values()) == pytest.approx(292.00)
    # the synthesized cluster wins over the config
    enrolled = cluster("open-source-rds-extended-support")
    assert sum(extended(price(enrolled, march, disabled)).values()) == pytest.approx(292.00)
    assert extended(price(cluster(DISABLED), march)) == {}


def test_an_engine_without_a_calendar_or_a_class_without_vcpus_fails_loudly() -> None:
    stack = cluster()
    for res in stack["resource"]["aws_rds_cluster_instance"].values():
        res["engine_version"] = "16.4"
    with pytest.raises(PricingError, match=r"no support calendar for aurora-postgresql 16"):
        price(stack, Month(2027, 3))
    unknown = cluster(klass="db.t4g.medium")
    unknown["resource"]["aws_rds_cluster_instance"]["i0"]["instance_class"] = "db.r7g.large"
    assert price(unknown, Month(2027, 3))  # both classes have vCPU counts
    with pytest.raises(PricingError, match=r"no vCPU count for instance class 'db.x9.big'"):
        PRICES.vcpus_of("db.x9.big")


def test_the_month_table_shows_the_extended_support_step_at_2027_03() -> None:
    document = cluster()
    document["resource"]["aws_dms_replication_instance"] = {
        "dms": {"replication_instance_id": "dms", "replication_instance_class": "dms.r5.large"}
    }
    table = month_table(document, UsageConfig(), PRICES, plan=PLAN)
    rows = {str(r.month): r for r in table.rows}
    assert list(rows) == [str(m) for m in PLAN.horizon()]
    assert [rows[m].phase for m in ("2026-12", "2027-02", "2027-03")] == [
        Phase.load, Phase.migration, Phase.steady]  # fmt: skip
    assert rows["2027-02"].extended_support_usd == 0.0
    assert rows["2027-03"].extended_support_usd == pytest.approx(292.00)
    tx = 50_000 * 730 / 24
    # instances, storage, I/O (40 a payment), backups (2 GB/day x 1 day retention)
    aurora = 2 * 730 * 0.26 + 620 * 0.10 + tx * 40 / 1e6 * 0.20 + 2 * 1 * 0.021
    assert rows["2027-02"].by_service["Aurora"] == pytest.approx(aurora)
    assert rows["2027-03"].by_service["Aurora"] == pytest.approx(aurora + 292.00)
    # DMS runs three months (12, 1, 2), then leaves the bill
    assert rows["2027-02"].by_service["DMS"] == pytest.approx(730 * 0.21)
    assert "DMS" not in rows["2027-03"].by_service
    assert table.over(1000) == [] and table.over(100) == list(table.rows)


def test_notices_name_the_date_and_the_monthly_amount() -> None:
    (notice,) = notices(cluster(), ConfigFacts(), PRICES, until=Month(2027, 11))
    assert notice.message() == (
        "db (aurora-postgresql 14) leaves standard support on 2027-02-28: RDS Extended Support "
        "adds $292.00/month from 2027-03-01 (4 vCPU) and $584.00/month from 2029-03-01 until "
        "the major version is upgraded; upgrade it first with a blue/green deployment "
        "(runbook, post-migration clean-up, step 7)"
    )
    assert notices(cluster(), ConfigFacts(), PRICES, until=Month(2027, 2)) == []
    (off,) = notices(cluster(DISABLED), ConfigFacts(), PRICES, until=Month(2027, 3))
    assert off.summary() == (
        f"db (aurora-postgresql 14) leaves standard support on 2027-02-28; "
        f"engine_lifecycle_support is {DISABLED}, so AWS upgrades the major version by itself "
        "after that date"
    )


def test_the_prod_plan_and_its_notice(prod_config: PaymigConfig, prod_tf: dict[str, Any]) -> None:
    assert plan_of(prod_config) == MigrationPlan(Month(2026, 12), 3)
    table = table_environment(prod_config, prod_tf)
    (step,) = [r for r in table.rows if r.extended_support_usd > 0][:1]
    assert step.month == Month(2027, 3)
    (notice,) = extended_support_notices(prod_config, prod_tf)
    assert notice.year12_usd == pytest.approx(292.00)
    unset = prod_config.model_copy(
        update={"usage": prod_config.usage.model_copy(update={"migration_start": None})}
    )
    assert plan_of(unset, datetime.date(2027, 5, 9)).start == Month(2027, 5)


def test_migration_start_must_be_a_month() -> None:
    assert UsageConfig(migration_start="2027-01").migration_start == "2027-01"
    with pytest.raises(ValueError, match=r"'2027-13' is not a month \(YYYY-MM\)"):
        UsageConfig(migration_start="2027-13")


# --------------------------------------------------------------------------- CLI and check


def test_check_warns_with_the_date_and_the_monthly_amount(
    prod_config: PaymigConfig, prod_synth: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from paymig.cli.infra_commands import _budget_gate

    _budget_gate(Console(file=io.StringIO()), prod_config, prod_synth.json_path)
    err = capsys.readouterr().err
    assert err.startswith(
        "warning: paymig-prod-aurora (aurora-postgresql 14) leaves standard support on "
        "2027-02-28: RDS Extended Support adds $292.00/month from 2027-03-01"
    )
    later = prod_config.model_copy(
        update={"usage": prod_config.usage.model_copy(update={"migration_start": "2025-01"})}
    )
    _budget_gate(Console(file=io.StringIO()), later, prod_synth.json_path)
    assert capsys.readouterr().err == ""  # outside the twelve months from 2025-01


def _stack(tmp_path: Path) -> Path:
    path = tmp_path / "cdk.tf.json"
    path.write_text(json.dumps(cluster()))
    return path


@pytest.mark.parametrize("bad", ["2027-13", "March", "2027-3"])
def test_cli_bad_month_is_one_line_exit_2(
    bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cost", "--from-json", str(_stack(tmp_path)), "--month", bad]) == 2
    assert capsys.readouterr().err == f"paymig: --month {bad}: not a month (YYYY-MM)\n"


def test_cli_month_prices_that_month_and_writes_the_chart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chart = tmp_path / "cost.png"
    code = main(["cost", "--from-json", str(_stack(tmp_path)), "--month", "2027-03",
                 "--format", "json", "--plot", str(chart)])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["month"] == "2027-03" and data["phase"] == "steady state"
    es = [i for i in data["items"] if "Extended Support" in i["resource"]]
    assert sum(i["monthly_usd"] for i in es) == pytest.approx(292.00)
    assert data["months"][3]["month"] == "2027-03"
    assert data["months"][3]["extended_support_usd"] == 292.00
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert chart.stat().st_size > 10_000


def test_cli_plot_to_an_unwritable_path_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing-dir" / "cost.png"
    code = main(["cost", "--from-json", str(_stack(tmp_path)), "--month", "2027-03",
                 "--format", "json", "--plot", str(target)])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"paymig: --plot {target}: cannot write:")
    assert err.count("\n") == 1
