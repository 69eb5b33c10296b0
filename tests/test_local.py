"""The local stand-ins that tests and rehearsals start: PostgreSQL and moto."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from paymig.errors import CommandFailedError, ToolMissingError
from paymig.local.emulator import MotoServer
from paymig.local.postgres import LocalPostgres
from paymig.security_scan import run_checkov
from paymig.tool_env import COVERAGE_HOOK, tool_environment


def test_postgres_runs_unprivileged_on_loopback_and_cleans_up() -> None:
    server = LocalPostgres("unit", ssl=True, settings={"max_wal_senders": "7"})
    with server:
        assert server.directory is not None
        directory = server.directory
        with psycopg.connect(server.dsn(sslmode="require")) as conn:
            settings = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN "
                    "('listen_addresses', 'wal_level', 'ssl', 'max_wal_senders')"
                ).fetchall()
            )
            assert settings == {
                "listen_addresses": "127.0.0.1",
                "wal_level": "logical",
                "ssl": "on",
                "max_wal_senders": "7",
            }
            assert conn.info.port == server.port
        pid = server.pid
        assert isinstance(pid, int) and Path(f"/proc/{pid}").exists()
        if os.geteuid() == 0:
            assert Path(f"/proc/{pid}").stat().st_uid != 0
    assert server.pid is None
    assert not directory.exists()
    server.stop()  # idempotent


def test_postgres_reports_a_failing_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fake runs as the unprivileged user, so it lives in a world-readable folder.
    tmp_path = Path(tempfile.mkdtemp(prefix="paymig-fake-initdb-"))
    tmp_path.chmod(0o755)
    fake = tmp_path / "initdb"
    fake.write_text("#!/bin/sh\necho 'initdb: error: disk on fire' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    server = LocalPostgres("broken")
    with pytest.raises(
        CommandFailedError, match="initdb failed for server 'broken': initdb: error: disk on fire"
    ):
        server.start()
    server.stop()
    shutil.rmtree(tmp_path)


def test_postgres_missing_binaries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("paymig.local.postgres.shutil.which", lambda *a, **k: None)
    with pytest.raises(ToolMissingError, match="initdb: PostgreSQL server binary not found"):
        LocalPostgres("none").start()


def test_moto_server_serves_aws_apis_and_resets() -> None:
    with MotoServer() as moto:
        env = moto.client_environment()
        assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{moto.port}"
        sqs = boto3.client(
            "sqs", endpoint_url=moto.endpoint_url, region_name=env["AWS_REGION"],
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        sqs.create_queue(QueueName="q")
        assert len(sqs.list_queues()["QueueUrls"]) == 1
        moto.reset()
        assert "QueueUrls" not in sqs.list_queues()
        pid = moto.pid
        assert isinstance(pid, int) and Path(f"/proc/{pid}").exists()
    assert moto.pid is None
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    moto.stop()


def test_tool_environment_drops_only_the_coverage_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(COVERAGE_HOOK, "{}")
    monkeypatch.setenv("PAYMIG_TEST_KEPT", "yes")
    env = tool_environment(EXTRA="1")
    assert COVERAGE_HOOK not in env
    assert (env["PAYMIG_TEST_KEPT"], env["EXTRA"]) == ("yes", "1")
    assert os.environ[COVERAGE_HOOK] == "{}"  # this process's own environment is untouched


def test_the_emulator_and_checkov_start_without_the_coverage_hook(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Third-party tools are not traced when the suite runs under coverage (2x slower)."""
    monkeypatch.setenv(COVERAGE_HOOK, "{}")
    with MotoServer() as moto:
        assert moto.pid is not None
        names = [
            e.split(b"=", 1)[0] for e in Path(f"/proc/{moto.pid}/environ").read_bytes().split(b"\0")
        ]
        assert b"MOTO_ACM_VALIDATION_WAIT" in names and COVERAGE_HOOK.encode() not in names
    seen: dict[str, Any] = {}

    def run(command: list[str], **kwargs: Any) -> Any:
        seen.update(kwargs["env"])
        return subprocess.CompletedProcess(command, 0, stdout='{"summary": {"passed": 1}}')

    monkeypatch.setattr("paymig.security_scan.subprocess.run", run)  # only the env is checked
    stack = tmp_path / "cdk.tf.json"
    stack.write_text("{}")
    assert run_checkov(stack, config_file=None).passed == 1
    assert seen["BC_SKIP_MAPPING"] == "TRUE" and COVERAGE_HOOK not in seen


def test_the_composite_alarm_handler_stores_the_rule_in_motos_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In this process (the server that runs it is not measured by coverage)."""
    from moto import mock_aws
    from moto.cloudwatch.responses import CloudWatchResponse

    from paymig.local.moto_extensions import _put_composite_alarm

    monkeypatch.setattr(
        CloudWatchResponse, "put_composite_alarm", _put_composite_alarm, raising=False
    )
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-2")
        cloudwatch.put_composite_alarm(
            AlarmName="c", AlarmRule='ALARM("a") OR ALARM("b")', AlarmDescription="d",
            AlarmActions=["arn:aws:sns:us-east-2:123456789012:t"], ActionsEnabled=True,
        )  # fmt: skip
        [alarm] = cloudwatch.describe_alarms(AlarmTypes=["CompositeAlarm"])["CompositeAlarms"]
    assert (alarm["AlarmName"], alarm["AlarmRule"], alarm["AlarmDescription"]) == (
        "c", 'ALARM("a") OR ALARM("b")', "d")  # fmt: skip
    assert (alarm["AlarmActions"], alarm["ActionsEnabled"]) == (
        ["arn:aws:sns:us-east-2:123456789012:t"], True)  # fmt: skip


def test_the_extended_emulator_answers_one_request_at_a_time() -> None:
    """moto's backends have no locks: the server must never run two requests at once."""
    import threading
    import time

    from paymig.local.moto_extensions import serialized

    inside, most = [0], [0]
    guard = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.02)
        with guard:
            inside[0] -= 1
        start_response("200 OK", [])
        return [b"ok"]

    wrapped = serialized(app)
    threads = [
        threading.Thread(target=lambda: list(wrapped({}, lambda *a: None))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
