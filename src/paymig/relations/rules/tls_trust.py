"""Every database client verifies its server: ``verify-full`` against the server's CA.

A client that uses ``require`` encrypts but would talk to any server; a client whose
CA bundle is not the one that signed its server fails every connection on real AWS
(moto checks no TLS). Rules: every connection uses ``verify-full`` and names a CA
resource; every client of one server trusts the same bundle; and the Aurora bundle
holds the CA the cluster's instances present (``ca_cert_identifier``; AWS RDS User
Guide, "Certificate authorities": rds-ca-rsa2048-g1 is issued by "Amazon RDS <region>
Root CA RSA2048 G1", and so on).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict

from cryptography import x509
from cryptography.x509.oid import NameOID

from paymig.relations.databases import Connection, ca_pem, connections, is_sample
from paymig.relations.findings import Finding
from paymig.relations.network import Network
from paymig.relations.stack import StackGraph

RULE = "tls-trust"
_RDS_CA = re.compile(r"^rds-ca-(?P<kind>rsa2048|rsa4096|ecc384)-g(?P<generation>\d+)$")


def rds_ca_common_name(identifier: str, region: str) -> str | None:
    """The subject CN of the root CA behind an RDS ``ca_cert_identifier``."""
    match = _RDS_CA.match(identifier)
    if match is None:
        return None
    return f"Amazon RDS {region} Root CA {match['kind'].upper()} G{match['generation']}"


def common_names(pem: str) -> list[str]:
    """Subject common names of every certificate in a PEM bundle (empty if unreadable)."""
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return []
    names: list[str] = []
    for certificate in certificates:
        for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
            names.append(str(attribute.value))
    return names


def check(graph: StackGraph, region: str) -> list[Finding]:
    """verify-full everywhere, one bundle per server, and the right Aurora CA."""
    findings: list[Finding] = []
    by_server: dict[str, list[Connection]] = defaultdict(list)
    for connection in connections(Network(graph)):
        client = graph.path(connection.client.address)
        target = f"{connection.server.kind} database ({connection.name})"
        if connection.sslmode != "verify-full":
            findings.append(
                Finding(RULE, client, target, f"sslmode {connection.sslmode!r}, not verify-full")
            )
        if connection.ca is None:
            findings.append(Finding(RULE, client, target, "names no CA bundle to verify with"))
            continue
        by_server[connection.server.kind].append(connection)
    for kind, group in sorted(by_server.items()):
        findings.extend(_one_bundle_per_server(graph, kind, group))
    findings.extend(_aurora_ca_in_bundle(graph, region, by_server.get("aurora", [])))
    return findings


def _one_bundle_per_server(graph: StackGraph, kind: str, group: list[Connection]) -> list[Finding]:
    digests = {
        c.name: hashlib.sha256(ca_pem(graph, c.ca).encode()).hexdigest()
        for c in group
        if c.ca is not None
    }
    first = group[0]
    return [
        Finding(
            RULE,
            graph.path(first.ca) if first.ca else first.name,
            graph.path(other.ca) if other.ca else other.name,
            f"clients of the {kind} database trust different CA bundles",
        )
        for other in group[1:]
        if digests.get(other.name) != digests.get(first.name)
    ]


def _aurora_ca_in_bundle(graph: StackGraph, region: str, group: list[Connection]) -> list[Finding]:
    findings: list[Finding] = []
    instances = graph.of_type("aws_rds_cluster_instance")
    for connection in group[:1]:
        if connection.ca is None:  # pragma: no cover - filtered by the caller
            continue
        names = common_names(ca_pem(graph, connection.ca))
        for address, body in sorted(instances.items()):
            identifier = str(body.get("ca_cert_identifier", ""))
            expected = rds_ca_common_name(identifier, region)
            if expected in names:
                continue
            sample = is_sample(graph, connection.ca)
            findings.append(
                Finding(
                    RULE,
                    graph.path(connection.ca),
                    graph.path(address),
                    f"the bundle lacks {expected or identifier!r}, the CA this instance "
                    f"presents ({identifier})"
                    + ("; a SAMPLE bundle is in place: configure AWS's bundle" if sample else ""),
                    severity="warning" if sample else "error",
                )
            )
    return findings
