"""Throwaway PostgreSQL servers on loopback, for tests, benchmarks and rehearsals.

The server refuses to run as root, and CI runs as root, so when the current user is
root the cluster is created and started as an unprivileged user (``postgres`` by
default). Each server lives in its own temporary folder, listens only on 127.0.0.1 on a
free port, and is stopped and removed by :meth:`LocalPostgres.stop` (or on leaving the
``with`` block).

TLS comes in two forms: ``ssl=True`` alone gives the server a self-signed certificate
(CN=127.0.0.1, which clients can name as their root for ``verify-full`` on 127.0.0.1);
``certificate_authority=`` gives it a certificate signed by a
:class:`~paymig.local.tls.LocalCertificateAuthority` for ``server_names``, so clients
verify it as they verify production servers: the CA's certificate as ``sslrootcert``,
and any of the names as the host.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from paymig.errors import CommandFailedError, ToolMissingError
from paymig.local.tls import DEFAULT_SERVER_NAMES, LocalCertificateAuthority

#: Settings every local server gets: logical replication on, and speed over durability
#: (these clusters hold only throwaway data).
BASE_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "wal_level": "logical",
    "max_replication_slots": "10",
    "max_wal_senders": "10",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "128MB",
    "max_connections": "100",
    # A subscription's apply worker that exits (slot still busy, publisher restarting) is
    # restarted after this; the 5 s default dominated every switch of replication.
    "wal_retrieve_retry_interval": "'200ms'",
}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tool(name: str) -> str:
    """Locate a PostgreSQL server binary or fail with a clear message."""
    found = shutil.which(name) or shutil.which(name, path="/usr/lib/postgresql/15/bin")
    if found is None:
        raise ToolMissingError(f"{name}: PostgreSQL server binary not found on PATH")
    return found


class LocalPostgres:
    """One PostgreSQL cluster in a temporary folder, started as an unprivileged user."""

    def __init__(
        self,
        name: str = "pg",
        *,
        settings: dict[str, str] | None = None,
        ssl: bool = False,
        run_as: str = "postgres",
        certificate_authority: LocalCertificateAuthority | None = None,
        server_names: tuple[str, ...] = DEFAULT_SERVER_NAMES,
    ) -> None:
        """Describe the server; nothing starts until :meth:`start`.

        A ``certificate_authority`` turns TLS on with a certificate it signs for
        ``server_names``; ``ssl=True`` without one keeps the self-signed certificate.
        """
        self.name = name
        self.settings = {**BASE_SETTINGS, **(settings or {})}
        self.ssl = ssl or certificate_authority is not None
        self.certificate_authority = certificate_authority
        self.server_names = server_names
        self.port = 0
        self.directory: Path | None = None
        self._user: str | None = run_as if os.geteuid() == 0 else None

    # ------------------------------------------------------------------ lifecycle

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        """Run a server tool as the unprivileged user, raising on failure."""
        result = subprocess.run(
            args, user=self._user, capture_output=True, text=True, check=False, timeout=120
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise CommandFailedError(
                f"{Path(args[0]).name} failed for server {self.name!r}: "
                f"{detail[-1] if detail else 'exit ' + str(result.returncode)}"
            )
        return result

    def start(self) -> LocalPostgres:
        """Create the cluster and start the server; return self."""
        initdb, pg_ctl = _tool("initdb"), _tool("pg_ctl")
        self.directory = Path(tempfile.mkdtemp(prefix=f"paymig-{self.name}-"))
        data = self.directory / "data"
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self._run(
            [initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
             "--locale=C", "--no-sync"]
        )  # fmt: skip
        self.port = free_port()
        lines = [f"{k} = {v}" for k, v in self.settings.items()]
        lines += [f"port = {self.port}", f"unix_socket_directories = '{self.directory}'"]
        if self.certificate_authority is not None:
            self._install_signed_certificate(self.certificate_authority, data)
        elif self.ssl:
            self._make_certificate(data)
        if self.ssl:
            lines += ["ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'"]
        with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n".join(lines) + "\n")
        with (data / "pg_hba.conf").open("a", encoding="utf-8") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        self._run([pg_ctl, "-D", str(data), "-l", str(self.directory / "server.log"),
                   "-w", "-t", "60", "start"])  # fmt: skip
        return self

    def _make_certificate(self, data: Path) -> None:
        """Write a self-signed server certificate for TLS tests."""
        openssl = shutil.which("openssl")
        if openssl is None:
            raise ToolMissingError("openssl: needed to create a test server certificate")
        self._run(
            [openssl, "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=127.0.0.1",
             "-newkey", "rsa:2048", "-keyout", str(data / "server.key"),
             "-out", str(data / "server.crt")]
        )  # fmt: skip
        (data / "server.key").chmod(0o600)

    def _install_signed_certificate(self, authority: LocalCertificateAuthority, data: Path) -> None:
        """Put a certificate signed by ``authority`` in the data folder, owned by the server."""
        issued = authority.issue_server_certificate(data, self.server_names)
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            for path in (issued.certificate, issued.key):
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def restart(self) -> None:
        """Restart the running server on the same port and data (clients are cut off)."""
        if self.directory is None:
            raise CommandFailedError(f"server {self.name!r} is not running: cannot restart")
        self._run([_tool("pg_ctl"), "-D", str(self.directory / "data"), "-l",
                   str(self.directory / "server.log"), "-m", "fast", "-w", "-t", "60",
                   "restart"])  # fmt: skip

    def stop(self) -> None:
        """Stop the server and delete its folder. Safe to call twice."""
        if self.directory is None:
            return
        data = self.directory / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [_tool("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                user=self._user, capture_output=True, check=False, timeout=60,
            )  # fmt: skip
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def require_tls_password(self, user: str) -> None:
        """Admit `user` only over TLS with its password (SCRAM); reload the server.

        The cluster trusts loopback connections by default; these rules go first, so
        they decide for `user` (pg_hba.conf: the first matching line wins).
        """
        if self.directory is None:
            raise CommandFailedError(f"server {self.name!r} is not running: no pg_hba.conf")
        hba = self.directory / "data" / "pg_hba.conf"
        rules = (
            f"hostssl all {user} 127.0.0.1/32 scram-sha-256\nhost all {user} 127.0.0.1/32 reject\n"
        )
        hba.write_text(rules + hba.read_text(encoding="utf-8"), encoding="utf-8")
        self._run([_tool("pg_ctl"), "-D", str(self.directory / "data"), "reload"])

    def __enter__(self) -> LocalPostgres:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on leaving a ``with`` block, whatever happened."""
        self.stop()

    # ------------------------------------------------------------------ access

    @property
    def log_file(self) -> Path:
        """The server's log (``pg_ctl -l``); only while the server's folder exists."""
        if self.directory is None:
            raise CommandFailedError(f"server {self.name!r} is not running: no log")
        return self.directory / "server.log"

    def dsn(self, dbname: str = "postgres", user: str = "postgres", **params: str) -> str:
        """A libpq connection string for this server."""
        extra = "".join(f" {k}={v}" for k, v in params.items())
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user}{extra}"

    @property
    def tls_root_file(self) -> Path:
        """What a ``verify-full`` client names as ``sslrootcert``: the self-signed certificate."""
        if self.directory is None or not self.ssl:
            raise CommandFailedError(f"server {self.name!r} serves no TLS certificate")
        return self.directory / "data" / "server.crt"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while running."""
        if self.directory is None:
            return None
        pidfile = self.directory / "data" / "postmaster.pid"
        if not pidfile.exists():
            return None
        return int(pidfile.read_text().split()[0])
