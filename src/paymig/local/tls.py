"""A throwaway certificate authority for tests and rehearsals (the openssl CLI).

Clients here verify servers the way production does (``sslmode=verify-full``): the
chain up to a trusted CA *and* the host name against the certificate's subject
alternative names. A self-signed server certificate can stand in for the CA, but it
cannot show a client trusting one CA for several servers, nor a name that the
certificate does not carry. :class:`LocalCertificateAuthority` signs server
certificates with the names a test asks for (by default ``IP:127.0.0.1`` and
``DNS:localhost``); its certificate is what a client passes as ``sslrootcert``.

Keys are RSA 2048 and certificates valid for two days: these exist for one test run.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from paymig.errors import CommandFailedError, ToolMissingError

#: The names a local server is reached by: its loopback address and ``localhost``.
DEFAULT_SERVER_NAMES: tuple[str, ...] = ("127.0.0.1", "localhost")
VALID_DAYS = 2

_DNS_NAME_RE = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def subject_alt_names(names: Sequence[str]) -> str:
    """The ``subjectAltName`` value for ``names``: ``IP:`` for addresses, ``DNS:`` otherwise.

    Raises ``ValueError`` naming the first name that is neither (an empty list included).
    """
    if not names:
        raise ValueError("server names: at least one is needed")
    entries = []
    for name in names:
        try:
            entries.append(f"IP:{ipaddress.ip_address(name)}")
        except ValueError:
            if not _DNS_NAME_RE.fullmatch(name):
                raise ValueError(
                    f"server name {name!r}: neither an IP address nor a DNS name"
                ) from None
            entries.append(f"DNS:{name}")
    return ", ".join(entries)


def _openssl(args: list[str]) -> None:
    """Run openssl, raising one clear line on failure."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ToolMissingError("openssl: needed to create test certificates")
    result = subprocess.run(
        [openssl, *args], capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise CommandFailedError(
            f"openssl {args[0]} failed: {detail[-1] if detail else f'exit {result.returncode}'}"
        )


@dataclass(frozen=True)
class ServerCertificate:
    """A server certificate signed by a :class:`LocalCertificateAuthority`, and its key."""

    certificate: Path
    key: Path
    names: tuple[str, ...]


class LocalCertificateAuthority:
    """A CA key and self-signed CA certificate in a folder; signs server certificates."""

    def __init__(self, directory: Path, common_name: str = "paymig local test CA") -> None:
        """Create the CA's key and certificate in ``directory`` (made if missing)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.common_name = common_name
        self.certificate = directory / "ca.pem"
        self._key = directory / "ca.key"
        config = directory / "ca.cnf"
        config.write_text(
            "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3_ca\n"
            f"[dn]\nCN = {common_name}\n"
            "[v3_ca]\nbasicConstraints = critical, CA:TRUE, pathlen:0\n"
            "keyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n",
            encoding="utf-8",
        )
        _openssl(
            ["req", "-x509", "-new", "-nodes", "-newkey", "rsa:2048", "-days", str(VALID_DAYS),
             "-config", str(config), "-keyout", str(self._key), "-out", str(self.certificate)]
        )  # fmt: skip
        self._key.chmod(0o600)

    def issue_server_certificate(
        self, directory: Path, names: Sequence[str] = DEFAULT_SERVER_NAMES, *, stem: str = "server"
    ) -> ServerCertificate:
        """Sign a server certificate for ``names``; write ``<stem>.crt`` and ``<stem>.key``.

        The first name is also the subject's common name. The key is mode 0600, as
        PostgreSQL requires of ``ssl_key_file``.
        """
        alt_names = subject_alt_names(names)
        directory.mkdir(parents=True, exist_ok=True)
        key, csr, cert = (directory / f"{stem}.{ext}" for ext in ("key", "csr", "crt"))
        config = directory / f"{stem}.cnf"
        config.write_text(
            "[req]\ndistinguished_name = dn\nprompt = no\n"
            f"[dn]\nCN = {names[0]}\n"
            "[v3_server]\nbasicConstraints = critical, CA:FALSE\n"
            "keyUsage = critical, digitalSignature, keyEncipherment\n"
            "extendedKeyUsage = serverAuth\nauthorityKeyIdentifier = keyid\n"
            f"subjectAltName = {alt_names}\n",
            encoding="utf-8",
        )
        _openssl(
            ["req", "-new", "-nodes", "-newkey", "rsa:2048", "-config", str(config),
             "-keyout", str(key), "-out", str(csr)]
        )  # fmt: skip
        key.chmod(0o600)
        _openssl(
            ["x509", "-req", "-in", str(csr), "-CA", str(self.certificate),
             "-CAkey", str(self._key), "-set_serial", f"0x{secrets.randbits(63):x}",
             "-days", str(VALID_DAYS), "-extfile", str(config), "-extensions", "v3_server",
             "-out", str(cert)]
        )  # fmt: skip
        csr.unlink()
        config.unlink()
        return ServerCertificate(certificate=cert, key=key, names=tuple(names))
