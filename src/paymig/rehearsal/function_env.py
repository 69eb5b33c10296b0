"""A function's environment, as the stack declares it, pointed at the local stand-ins.

The rehearsal runs each function with the environment Terraform gave it (read back from
the emulator with GetFunctionConfiguration). Only the database addresses change: the
stack declares the real servers (the on-prem source over the VPN, the Aurora cluster),
and the rehearsal has local PostgreSQL servers in their place. This module is that one
translation, so that a change of the declaration format changes one function.

Two declaration formats are understood:

- ``PAYMIG_DB_<NAME>``: JSON ``{server, host, port, dbname, secret_arn, sslmode,
  ca_parameter}`` (:mod:`paymig.runtime.database_env`): host and port are replaced, and
  the CA parameter's value becomes the local server's CA certificate (returned for the
  caller to store in the emulator's SSM).
- ``DB_HOST``/``DB_PORT``/``DB_CA_BUNDLE`` (the payment API before that format): host and
  port are replaced and ``DB_CA_BUNDLE`` names the local server's CA file.

Everything else (secret ARNs, database names, the write-target parameter, the
environment name) is passed through unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from paymig.errors import CommandFailedError

DB_PREFIX = "PAYMIG_DB_"


@dataclass(frozen=True)
class LocalDatabase:
    """A local server standing in for a declared one: where to reach it, its CA file."""

    host: str
    port: int
    ca_file: Path
    description: str


@dataclass(frozen=True)
class StandInEnvironment:
    """The translated variables, and the CA parameters to store first."""

    variables: dict[str, str]
    ca_parameters: dict[str, str] = field(default_factory=dict)
    mapped: list[str] = field(default_factory=list)  # one line per translated declaration


def _stand_in(
    databases: Mapping[tuple[str, int], LocalDatabase], host: str, port: int, where: str
) -> LocalDatabase:
    local = databases.get((host, port))
    if local is None:
        known = ", ".join(f"{h}:{p}" for h, p in databases) or "none"
        raise CommandFailedError(
            f"{where}: declares {host}:{port}, which no local server stands in for ({known})"
        )
    return local


def stand_in_environment(
    variables: Mapping[str, str], databases: Mapping[tuple[str, int], LocalDatabase]
) -> StandInEnvironment:
    """Translate a function's declared databases to the local stand-ins."""
    out = dict(variables)
    ca_parameters: dict[str, str] = {}
    mapped: list[str] = []
    for name, text in sorted(variables.items()):
        if not name.startswith(DB_PREFIX):
            continue
        try:
            spec = json.loads(text)
            host, port = str(spec["host"]), int(spec["port"])
        except (ValueError, KeyError, TypeError):
            raise CommandFailedError(
                f"{name}: not a database declaration (JSON with host and port)"
            ) from None
        local = _stand_in(databases, host, port, name)
        spec["host"], spec["port"] = local.host, local.port
        out[name] = json.dumps(spec)
        if spec.get("ca_parameter"):
            ca_parameters[str(spec["ca_parameter"])] = local.ca_file.read_text(encoding="ascii")
        mapped.append(f"{name}: {host}:{port} -> {local.description}")
    if "DB_HOST" in variables:
        host, port = variables["DB_HOST"], int(variables.get("DB_PORT", "5432"))
        local = _stand_in(databases, host, port, "DB_HOST")
        out.update(DB_HOST=local.host, DB_PORT=str(local.port), DB_CA_BUNDLE=str(local.ca_file))
        mapped.append(f"DB_HOST/DB_PORT: {host}:{port} -> {local.description}")
    return StandInEnvironment(out, ca_parameters, mapped)
