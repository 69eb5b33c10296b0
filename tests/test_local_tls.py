"""The local certificate authority: a real PostgreSQL verified with ``verify-full``.

Each case connects with libpq's own checks (chain to ``sslrootcert``, host name against
the subject alternative names); ``hostaddr`` reaches the loopback server while ``host``
is the name libpq verifies, so a name the certificate lacks can be tried without DNS.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from paymig.errors import CommandFailedError, ToolMissingError
from paymig.local.postgres import LocalPostgres
from paymig.local.tls import LocalCertificateAuthority, subject_alt_names


def _connect(server: LocalPostgres, ca: Path, host: str) -> psycopg.Connection[object]:
    return psycopg.connect(
        host=host, hostaddr="127.0.0.1", port=server.port, dbname="postgres",
        user="postgres", sslmode="verify-full", sslrootcert=str(ca), connect_timeout=5,
    )  # fmt: skip


def test_subject_alt_names_tell_addresses_from_dns_names() -> None:
    assert subject_alt_names(["127.0.0.1", "localhost", "::1", "db.paymig.test"]) == (
        "IP:127.0.0.1, DNS:localhost, IP:::1, DNS:db.paymig.test"
    )
    with pytest.raises(ValueError, match=r"^server names: at least one is needed$"):
        subject_alt_names([])
    with pytest.raises(ValueError, match=r"^server name 'bad name': neither an IP address"):
        subject_alt_names(["localhost", "bad name"])


def test_signed_certificate_carries_the_names_and_the_ca(tmp_path: Path) -> None:
    ca = LocalCertificateAuthority(tmp_path / "ca")
    issued = ca.issue_server_certificate(tmp_path / "srv")
    text = subprocess.run(
        ["openssl", "x509", "-in", str(issued.certificate), "-noout", "-text"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "IP Address:127.0.0.1, DNS:localhost" in text
    assert "CA:FALSE" in text
    assert "TLS Web Server Authentication" in text
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca.certificate), str(issued.certificate)],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert issued.key.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in (tmp_path / "srv").iterdir()) == ["server.crt", "server.key"]


def test_verify_full_succeeds_with_the_right_ca_and_either_default_name(
    postgres_factory: Callable[..., LocalPostgres], tmp_path: Path
) -> None:
    ca = LocalCertificateAuthority(tmp_path / "ca")
    server = postgres_factory("tls-ok", certificate_authority=ca)
    for host in ("127.0.0.1", "localhost"):
        with _connect(server, ca.certificate, host) as conn:
            row = conn.execute(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            ).fetchone()
            assert row == (True,)
            assert conn.info.get_parameters()["sslmode"] == "verify-full"


def test_verify_full_fails_with_another_ca_and_with_a_wrong_name(
    postgres_factory: Callable[..., LocalPostgres], tmp_path: Path
) -> None:
    ca = LocalCertificateAuthority(tmp_path / "ca")
    other = LocalCertificateAuthority(tmp_path / "other", common_name="another CA")
    server = postgres_factory("tls-bad", certificate_authority=ca)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        _connect(server, other.certificate, "127.0.0.1")
    with pytest.raises(
        psycopg.OperationalError,
        match=r'server certificate for "127\.0\.0\.1" \(and 1 other name\) does not match '
        r'host name "db\.elsewhere\.test"',
    ):
        _connect(server, ca.certificate, "db.elsewhere.test")


def test_a_given_name_is_the_only_name_verified(
    postgres_factory: Callable[..., LocalPostgres], tmp_path: Path
) -> None:
    ca = LocalCertificateAuthority(tmp_path / "ca")
    server = postgres_factory("tls-named", certificate_authority=ca,
                              server_names=("db.paymig.test",))  # fmt: skip
    with _connect(server, ca.certificate, "db.paymig.test") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match=r'does not match host name "127\.0\.0\.1"'):
        _connect(server, ca.certificate, "127.0.0.1")
    assert "database system is ready to accept connections" in server.log_file.read_text()
    server.stop()
    with pytest.raises(CommandFailedError, match=r"^server 'tls-named' is not running: no log$"):
        _ = server.log_file


def test_openssl_failures_are_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(CommandFailedError, match=r"^openssl req failed: .*string too short"):
        LocalCertificateAuthority(tmp_path / "empty-name", common_name="")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError, match=r"^openssl: needed to create test certificates$"):
        LocalCertificateAuthority(tmp_path / "no-openssl")
