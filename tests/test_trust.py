"""The CA bundles database clients verify their servers with (`paymig.infra.trust`)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from paymig.cli import main
from paymig.errors import ConfigError
from paymig.infra.trust import is_sample_pem, read_pem

REPO = Path(__file__).resolve().parents[1]
FIELD = "database.ca_bundle_path"


def ca_pem(common_name: str) -> str:
    """A self-signed CA certificate (its key is thrown away)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_missing_file_is_one_line_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        read_pem(FIELD, Path("certs/rds.pem"), tmp_path)
    assert str(info.value) == f"{FIELD}: {tmp_path / 'certs/rds.pem'} does not exist"


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "rds.pem").write_bytes(b"\xff\xfe not ascii")
    with pytest.raises(ConfigError, match=rf"^{FIELD}: cannot read .*rds\.pem"):
        read_pem(FIELD, Path("rds.pem"), tmp_path)


@pytest.mark.parametrize(
    "content",
    ["not a certificate\n", "-----BEGIN CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\n"],
)
def test_a_file_that_is_not_a_ca_certificate_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "rds.pem").write_text(content)
    with pytest.raises(ConfigError) as info:
        read_pem(FIELD, Path("rds.pem"), tmp_path)
    assert str(info.value) == f"{FIELD}: {tmp_path / 'rds.pem'} is not a PEM CA certificate"


def test_a_bundle_over_ssms_limit_is_refused(tmp_path: Path) -> None:
    bundle = "".join(ca_pem(f"CA {i}") for i in range(30))
    assert len(bundle) > 8192
    (tmp_path / "rds.pem").write_text(bundle)
    with pytest.raises(ConfigError, match=rf"^{FIELD}: .* is over 8192 bytes \(SSM's limit\)$"):
        read_pem(FIELD, Path("rds.pem"), tmp_path)


def test_the_shipped_bundles_are_marked_samples_and_a_real_one_is_not() -> None:
    for name in ("example-rds-ca-bundle.pem", "example-onprem-ca.pem"):
        assert is_sample_pem(read_pem(FIELD, Path("config/certs") / name))
    assert not is_sample_pem(ca_pem("Amazon RDS us-east-2 Root CA RSA2048 G1"))
    assert not is_sample_pem("not a certificate")


def test_each_bundle_becomes_a_parameter_and_a_dms_certificate() -> None:
    """Samples are tagged as such; a bundle over 4 KB needs SSM's Advanced tier."""
    from cdktf import TerraformStack, Testing

    from paymig.infra.trust import TrustStore

    real = "".join(ca_pem(f"Amazon RDS us-east-2 Root CA {i}") for i in range(8))
    assert 4096 < len(real) <= 8192
    sample = read_pem(FIELD, Path("config/certs/example-onprem-ca.pem"))
    stack = TerraformStack(Testing.app(), "trust-test")
    store = TrustStore(stack, "trust", "paymig-test", {"source": sample, "aurora": real})
    doc: dict[str, Any] = json.loads(Testing.synth(stack))
    parameters = {p["name"]: p for p in doc["resource"]["aws_ssm_parameter"].values()}
    assert parameters == {
        "/paymig/paymig-test/ca/source": {
            "name": "/paymig/paymig-test/ca/source",
            "description": "CA bundle that clients of the source database verify it with",
            "type": "String",
            "tier": "Standard",
            "value": sample,
            "tags": {"Sample": "true"},
        },
        "/paymig/paymig-test/ca/aurora": {
            "name": "/paymig/paymig-test/ca/aurora",
            "description": "CA bundle that clients of the aurora database verify it with",
            "type": "String",
            "tier": "Advanced",
            "value": real,
            "tags": {},
        },
    }
    certificates = sorted(
        doc["resource"]["aws_dms_certificate"].values(), key=lambda c: c["certificate_id"]
    )
    assert certificates == [
        {"certificate_id": "paymig-test-aurora-ca", "certificate_pem": real, "tags": {}},
        {"certificate_id": "paymig-test-source-ca", "certificate_pem": sample,
         "tags": {"Sample": "true"}},
    ]  # fmt: skip
    assert store.anchor("aurora").parameter_name == "/paymig/paymig-test/ca/aurora"
    with pytest.raises(ValueError, match=r"unknown servers \['legacy'\]"):
        TrustStore(stack, "more", "paymig-test", {"legacy": sample})


def test_synth_with_a_missing_rds_bundle_is_one_line_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pins defect 12's config half: a missing `database.ca_bundle_path` file is one clear
    error naming the field (the synth imports the stack, so jsii is already loaded)."""
    data = yaml.safe_load((REPO / "config" / "prod.yaml").read_text())
    data["database"]["ca_bundle_path"] = "config/certs/missing-rds-bundle.pem"
    config = tmp_path / "prod.yaml"
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    assert main(["synth", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"paymig: {FIELD}: {REPO / 'config/certs/missing-rds-bundle.pem'} does not exist\n"
    )
    assert not out.exists()
