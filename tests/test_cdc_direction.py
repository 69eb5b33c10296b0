"""The CDC latency of the replicating direction, read by the controller (issue 17, gap 1).

Before cutover only the forward task (on-prem to Aurora) runs and reports
CDCLatencyTarget; after it only the reverse task (Aurora to on-prem) does. The
``cdc-latency`` shift gate, `paymig status` and the deployment check read the same rule
as the alarm (``CDC_DIRECTION_EXPRESSION``): per minute the larger of the two tasks'
values, the one that reports otherwise, nothing when neither reports. Moto stores and
aggregates the datapoints per period as CloudWatch does for GetMetricStatistics; it runs
no DMS task, so the tests put the datapoints a running task would.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controller_env import MigrationEnv, build_env
from paymig.cli import main
from paymig.config import PaymigConfig
from paymig.local.emulator import MotoServer

pytestmark = pytest.mark.slow

LOOKBACK = 300


@pytest.fixture
def env(
    moto_server: MotoServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    prod_config: PaymigConfig,
) -> MigrationEnv:
    return build_env(moto_server, monkeypatch, tmp_path, prod_config, cdc_latency=None)


def minute(offset: int) -> datetime:
    """The start of the minute ``offset`` minutes from now (datapoints a period apart)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now + timedelta(minutes=offset)


def latency(env: MigrationEnv) -> tuple[float, datetime] | None:
    return env.controller().metrics.cdc_latency(datetime.now(UTC), LOOKBACK)


def test_neither_task_or_neither_reporting_is_no_reading(env: MigrationEnv) -> None:
    assert latency(env) is None  # no task at all
    env.dms_task_resource_id()
    env.dms_task_resource_id(reverse=True)
    assert latency(env) is None  # both exist, neither replicates: the gate fails


def test_after_cutover_the_reverse_task_is_read(env: MigrationEnv) -> None:
    """Pins gap 1: the forward task is stopped and silent after cutover; reading only it
    failed every gate and every post-migration check."""
    env.dms_task_resource_id()  # the forward task exists, stopped
    env.put_cdc_latency(7.0, reverse=True, at=minute(-1))
    found = latency(env)
    assert found is not None and found[0] == 7.0


def test_both_reporting_in_a_minute_gives_the_larger(env: MigrationEnv) -> None:
    env.put_cdc_latency(3.0, at=minute(-2))
    env.put_cdc_latency(40.0, reverse=True, at=minute(-2))
    found = latency(env)
    assert found is not None and found[0] == 40.0
    # A later minute in which only the forward task reports is the latest reading.
    env.put_cdc_latency(5.0, at=minute(-1))
    found = latency(env)
    assert found is not None and found[0] == 5.0


def test_status_gate_after_cutover_reads_the_reverse_task(
    env: MigrationEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    env.move_stage("cut-over")
    env.dms_task_resource_id()
    env.put_cdc_latency(95.0, reverse=True, at=minute(-1))

    def gate() -> dict[str, Any]:
        capsys.readouterr()
        main(["status", "--format", "json", "--config", str(env.config_path)])
        gates: dict[str, Any] = json.loads(capsys.readouterr().out)["gates"]
        return dict(gates["cdc-latency"])

    found = gate()
    assert found["ok"] is False and "CDC latency 95 s > threshold 30 s" in found["detail"]
    env.put_cdc_latency(4.0, reverse=True, at=minute(0))
    found = gate()
    assert found["ok"] is True and "CDC latency 4 s" in found["detail"]
