"""The CA bundles that database clients verify their servers with, one per server.

Two servers, two bundles, both read from files named in config at synth time:

* ``source``: the CA that signed the on-prem PostgreSQL's certificate
  (``replication.source.ca_certificate_path``);
* ``aurora``: AWS's RDS CA bundle for the region (``database.ca_bundle_path``). It is
  public, but nothing may download it at synth or run time, so the operator commits
  a reviewed copy; the shipped sample is marked as one (tag ``Sample``) and
  ``paymig check`` warns while it is in place.

Each bundle becomes an SSM parameter (Lambda clients fetch it once per execution
environment; libpq needs a file) and a DMS certificate (DMS endpoints). Every client
of one server gets the same bundle because it can only be asked for by server name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cdktf_cdktf_provider_aws.dms_certificate import DmsCertificate
from cdktf_cdktf_provider_aws.ssm_parameter import SsmParameter
from constructs import Construct

from paymig import naming
from paymig.errors import ConfigError

#: The repository root: config paths are relative to it.
REPO_ROOT = Path(__file__).resolve().parents[3]
PEM_HEADER = "-----BEGIN CERTIFICATE-----"
#: SSM Standard parameters hold 4 KB; Advanced ones 8 KB (SSM User Guide, tiers).
STANDARD_LIMIT = 4096
ADVANCED_LIMIT = 8192
SERVERS = ("source", "aurora")


def read_pem(field: str, path: Path, base_dir: Path = REPO_ROOT) -> str:
    """Read a PEM CA file at synth time, or fail naming the config field."""
    full = base_dir / path
    try:
        text = full.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ConfigError(f"{field}: {full} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{field}: cannot read {full}: {exc}") from None
    if PEM_HEADER not in text or "PRIVATE KEY" in text:
        raise ConfigError(f"{field}: {full} is not a PEM CA certificate")
    if len(text.encode()) > ADVANCED_LIMIT:
        raise ConfigError(f"{field}: {full} is over {ADVANCED_LIMIT} bytes (SSM's limit)")
    return text


def is_sample_pem(text: str) -> bool:
    """Whether a bundle is one of the shipped samples (they say so in their subject)."""
    from cryptography import x509

    try:
        certificates = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        return False
    return any("SAMPLE" in c.subject.rfc4514_string() for c in certificates)


@dataclass(frozen=True)
class TrustAnchor:
    """One server's CA bundle, as the two kinds of client consume it."""

    server: str
    pem: str
    parameter: SsmParameter
    #: None once the migration is finished (no DMS).
    dms_certificate: DmsCertificate | None
    #: Name of the SSM parameter holding the PEM (a literal: clients are told it).
    parameter_name: str

    @property
    def sha256(self) -> str:
        """Digest of the PEM, for reports."""
        return hashlib.sha256(self.pem.encode()).hexdigest()


class TrustStore(Construct):
    """The CA bundle of each database server, as an SSM parameter and a DMS certificate.

    Use :meth:`anchor` to get the one trust anchor of a server.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        name: str,
        pems: dict[str, str],
        *,
        dms: bool = True,
    ) -> None:
        """Create the parameter (and, while DMS exists, the certificate) of each bundle."""
        super().__init__(scope, construct_id)
        self._dms = dms
        unknown = sorted(set(pems) - set(SERVERS))
        if unknown:
            raise ValueError(f"unknown servers {unknown}")
        self.anchors = {server: self._anchor(name, server, pem) for server, pem in pems.items()}

    def _anchor(self, name: str, server: str, pem: str) -> TrustAnchor:
        sample = is_sample_pem(pem)
        tags = {"Sample": "true"} if sample else {}
        size = len(pem.encode())
        parameter_name = naming.ca_parameter_name(name, server)
        parameter = SsmParameter(
            self,
            f"{server}-ca",
            name=parameter_name,
            description=f"CA bundle that clients of the {server} database verify it with",
            type="String",
            tier="Standard" if size <= STANDARD_LIMIT else "Advanced",
            value=pem,
            tags=tags,
        )
        certificate = (
            DmsCertificate(
                self,
                f"{server}-dms-ca",
                certificate_id=f"{name}-{server}-ca",
                certificate_pem=pem,
                tags=tags,
            )
            if self._dms
            else None
        )
        return TrustAnchor(server, pem, parameter, certificate, parameter_name)

    def anchor(self, server: str) -> TrustAnchor:
        """The trust anchor of ``server`` (``source`` or ``aurora``)."""
        return self.anchors[server]
