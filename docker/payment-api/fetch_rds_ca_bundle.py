"""Fetch the RDS CA bundle at image build time and refuse anything that is not one.

Run by the Dockerfile (``python fetch_rds_ca_bundle.py URL DEST [SHA256]``), never at
run time. The bundle is fetched over HTTPS from AWS's trust store with certificate
verification on. AWS publishes no checksum for the bundle and updates it when it adds
certificate authorities, so a pinned sha256 would break builds on every update without
a trustworthy source for the new value; the hash is therefore optional (pass it as the
third argument, the ``RDS_CA_BUNDLE_SHA256`` build argument, to pin a reviewed bundle).
What is always checked: the file holds only PEM certificates, at least one, and
Python's TLS stack loads them all as certificate authorities.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import sys
import urllib.request
from pathlib import Path

#: The only place the bundle may come from.
ALLOWED_PREFIX = "https://truststore.pki.rds.amazonaws.com/"

_PEM_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END \1-----", re.MULTILINE
)


class BundleError(Exception):
    """The downloaded file is not an acceptable CA bundle."""


def verify_bundle(data: bytes, expected_sha256: str = "") -> int:
    """Check a CA bundle; return how many CA certificates it holds.

    Raises :class:`BundleError` with one line saying what is wrong.
    """
    if expected_sha256 and hashlib.sha256(data).hexdigest() != expected_sha256.lower():
        raise BundleError("bundle: sha256 differs from the pinned RDS_CA_BUNDLE_SHA256")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise BundleError("bundle: not a PEM text file") from None
    blocks = list(_PEM_BLOCK.finditer(text))
    kinds = {block.group(1) for block in blocks}
    if not blocks or kinds != {"CERTIFICATE"}:
        raise BundleError(f"bundle: expected only PEM certificates, found {sorted(kinds)}")
    leftover = _PEM_BLOCK.sub("", text).strip()
    if leftover:
        raise BundleError("bundle: text outside the PEM certificate blocks")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cadata=text)
    except ssl.SSLError as error:
        raise BundleError(f"bundle: certificates do not load: {error.reason}") from None
    authorities: int = context.cert_store_stats()["x509_ca"]
    if authorities != len(blocks):
        raise BundleError(
            f"bundle: {len(blocks)} certificates but {authorities} certificate authorities"
        )
    return authorities


def fetch(url: str, destination: Path, expected_sha256: str = "") -> int:
    """Download the bundle from the RDS trust store, check it, write it; return its size."""
    if not url.startswith(ALLOWED_PREFIX):
        raise BundleError(f"url: must start with {ALLOWED_PREFIX}")
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - https only
        data: bytes = response.read()
    count = verify_bundle(data, expected_sha256)
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(data)
    destination.chmod(0o644)
    return count


def main(argv: list[str]) -> int:
    """Command line: URL DEST [SHA256]."""
    if len(argv) not in (2, 3):
        print("usage: fetch_rds_ca_bundle.py URL DEST [SHA256]", file=sys.stderr)
        return 2
    try:
        count = fetch(argv[0], Path(argv[1]), argv[2] if len(argv) == 3 else "")
    except BundleError as error:
        print(f"fetch_rds_ca_bundle: {error}", file=sys.stderr)
        return 1
    print(f"fetch_rds_ca_bundle: {count} certificate authorities written to {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
