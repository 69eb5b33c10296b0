"""How a Lambda function learns which database to use and how to verify it.

The stack declares each database a function uses in one environment variable,
``PAYMIG_DB_<NAME>`` (``PAYMIG_DB_SOURCE``, ``PAYMIG_DB_AURORA``), holding JSON::

    {"server": "source" | "aurora", "host": "...", "port": 5432, "dbname": "...",
     "secret_arn": "arn:aws:secretsmanager:...", "sslmode": "verify-full",
     "ca_parameter": "/paymig/<stack>/ca/<server>"}

``paymig.infra`` writes the variable in the same call that opens the network path and
grants the secret, and ``paymig check``'s relational rules read the same JSON, so the
client, its path and the CA it verifies with cannot disagree. The CA bundle lives in
an SSM parameter (PEM text); it is fetched once per execution environment and written
to a file, because libpq takes ``sslrootcert`` as a path. The secret carries the login
(``username``, ``password``); its ``host``/``port``/``dbname``, if any, are ignored in
favour of the declaration.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paymig.errors import ConfigError

ENV_PREFIX = "PAYMIG_DB_"
SERVERS = ("source", "aurora")
_FIELDS = ("server", "host", "port", "dbname", "secret_arn", "sslmode", "ca_parameter")


@dataclass(frozen=True)
class DatabaseTarget:
    """One declared database: where it is, which login secret, how to verify it."""

    name: str
    server: str
    host: str
    port: int
    dbname: str
    secret_arn: str
    sslmode: str
    ca_parameter: str

    def as_json(self) -> str:
        """The declaration as the environment variable holds it."""
        return json.dumps({f: getattr(self, f) for f in _FIELDS}, sort_keys=False)


def parse_target(name: str, text: str) -> DatabaseTarget:
    """Read one ``PAYMIG_DB_<NAME>`` value; a bad one is a one-line error naming it."""
    variable = f"{ENV_PREFIX}{name}"
    try:
        spec = json.loads(text)
    except json.JSONDecodeError:
        raise ConfigError(f"{variable}: not JSON") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{variable}: not a JSON object")
    missing = [f for f in _FIELDS if f not in spec]
    if missing:
        raise ConfigError(f"{variable}: missing {', '.join(missing)}")
    if spec["server"] not in SERVERS:
        raise ConfigError(f"{variable}: server must be one of {', '.join(SERVERS)}")
    if spec["sslmode"] != "verify-full":
        raise ConfigError(f"{variable}: sslmode must be verify-full, not {spec['sslmode']!r}")
    try:
        port = int(spec["port"])
    except (TypeError, ValueError):
        raise ConfigError(f"{variable}: port is not a number") from None
    return DatabaseTarget(
        name=name,
        server=str(spec["server"]),
        host=str(spec["host"]),
        port=port,
        dbname=str(spec["dbname"]),
        secret_arn=str(spec["secret_arn"]),
        sslmode="verify-full",
        ca_parameter=str(spec["ca_parameter"]),
    )


def declared_targets(environ: Mapping[str, str] | None = None) -> dict[str, DatabaseTarget]:
    """Every database the environment declares, by name (``SOURCE``, ``AURORA``...)."""
    env = os.environ if environ is None else environ
    return {
        key[len(ENV_PREFIX) :]: parse_target(key[len(ENV_PREFIX) :], value)
        for key, value in sorted(env.items())
        if key.startswith(ENV_PREFIX)
    }


def target(name: str, environ: Mapping[str, str] | None = None) -> DatabaseTarget:
    """The declared database ``name``, or a one-line error when it is not declared."""
    targets = declared_targets(environ)
    if name not in targets:
        raise ConfigError(f"{ENV_PREFIX}{name}: not set")
    return targets[name]


class CaBundles:
    """CA bundles fetched from SSM once per process and kept as files for libpq."""

    def __init__(self, ssm_client: Any, directory: Path | None = None) -> None:
        """Fetch lazily through ``ssm_client`` into ``directory`` (a temp folder)."""
        self._ssm = ssm_client
        self._directory = directory or Path(tempfile.gettempdir())
        self._files: dict[str, Path] = {}

    def path_for(self, parameter: str) -> Path:
        """A file holding the PEM of SSM parameter ``parameter``."""
        if parameter not in self._files:
            answer = self._ssm.get_parameter(Name=parameter)
            pem = str(answer["Parameter"]["Value"])
            if "BEGIN CERTIFICATE" not in pem:
                raise ConfigError(f"{parameter}: the SSM parameter holds no PEM certificate")
            safe = parameter.strip("/").replace("/", "-")
            path = self._directory / f"paymig-ca-{safe}.pem"
            path.write_text(pem, encoding="ascii")
            self._files[parameter] = path
        return self._files[parameter]


def connect_kwargs(
    target: DatabaseTarget, secret: Mapping[str, Any], ca_file: Path
) -> dict[str, Any]:
    """Arguments of ``psycopg.connect``: the declared server, the login, verify-full."""
    for field in ("username", "password"):
        if not isinstance(secret.get(field), str) or not secret[field]:
            raise ConfigError(f"{target.secret_arn}: secret field {field!r} missing")
    return {
        "host": target.host,
        "port": target.port,
        "dbname": target.dbname,
        "user": secret["username"],
        "password": secret["password"],
        "sslmode": "verify-full",
        "sslrootcert": str(ca_file),
    }


def read_json_secret(client: Any, secret_arn: str) -> dict[str, Any] | None:
    """The current JSON value of a secret, or None while it has no value yet.

    AWSCURRENT is named: during a rotation a stage-less read may return the new,
    still-empty version (moto does). A value that is not a JSON object is an error
    naming the secret, never showing the value.
    """
    try:
        answer = client.get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")
    except client.exceptions.ResourceNotFoundException:
        return None
    try:
        value = json.loads(answer["SecretString"])
    except (KeyError, json.JSONDecodeError):
        raise ConfigError(f"{secret_arn}: the secret is not JSON") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{secret_arn}: the secret is not a JSON object")
    return value
