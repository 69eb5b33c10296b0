"""The local servers standing in for the databases the stack declares, and their logins.

The stack declares the on-prem source (``replication.source``, reached over the VPN) and
the Aurora cluster (its endpoint, from the apply). In the rehearsal the source is the
local "source" server reached through the VPN stand-in (a TCP proxy), and Aurora is the
local "target" server. Both serve TLS, and a function's login is admitted only over TLS
with its password, so ``verify-full``, the secret and the network path are all
exercised.

The logins themselves and their secrets are made by :mod:`paymig.rehearsal.db_logins`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from paymig.config import PaymigConfig
from paymig.local.postgres import LocalPostgres
from paymig.local.tcp_proxy import TcpProxy
from paymig.rehearsal.function_env import LocalDatabase


@dataclass(frozen=True)
class StandIn:
    """A declared database, its local server, and how clients reach it."""

    declared: tuple[str, int]
    server: LocalPostgres
    reach: LocalDatabase
    dbname: str


def stand_ins(
    config: PaymigConfig,
    source: LocalPostgres,
    target: LocalPostgres,
    vpn: TcpProxy,
    aurora_endpoint: str | None,
    *,
    aurora_path: TcpProxy | None = None,
) -> dict[tuple[str, int], StandIn]:
    """Each declared (host, port) and the local server that stands in for it.

    ``aurora_path``, when given, stands for the VPC path from the function to Aurora (a
    TCP proxy, so that a fault after the cutover can hit it as ``vpn`` is hit before).
    """
    rep = config.replication.source
    found = {
        (str(rep.host), rep.port): StandIn(
            (str(rep.host), rep.port), source,
            LocalDatabase("127.0.0.1", vpn.port, source.tls_root_file,
                          f"the source server through the VPN stand-in (127.0.0.1:{vpn.port})"),
            rep.database_name,
        )
    }  # fmt: skip
    if aurora_endpoint:
        port = aurora_path.port if aurora_path else target.port
        how = " through the Aurora path stand-in" if aurora_path else ""
        found[(aurora_endpoint, 5432)] = StandIn(
            (aurora_endpoint, 5432), target,
            LocalDatabase("127.0.0.1", port, target.tls_root_file,
                          f"the target server{how} (127.0.0.1:{port})"),
            config.database.database_name,
        )  # fmt: skip
    return found


def reach_map(found: Mapping[tuple[str, int], StandIn]) -> dict[tuple[str, int], LocalDatabase]:
    """How a client reaches each declared database (the translation's input)."""
    return {declared: item.reach for declared, item in found.items()}


def store_ca_parameter(ssm: Any, name: str, pem: str) -> None:
    """The local server's CA certificate as the value of the declared CA parameter.

    A parameter Terraform created keeps its type and key; only the value changes.
    """
    found = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])
    existing = found.get("Parameters", [])
    kind = existing[0].get("Type", "String") if existing else "String"
    extra = {"KeyId": existing[0]["KeyId"]} if existing and existing[0].get("KeyId") else {}
    ssm.put_parameter(Name=name, Value=pem, Type=kind, Overwrite=True, **extra)
