"""The local stand-ins that tests and rehearsals start: PostgreSQL and moto."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from paymig.errors import CommandFailedError, ToolMissingError
from paymig.local.emulator import MotoServer
from paymig.local.postgres import LocalPostgres


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
