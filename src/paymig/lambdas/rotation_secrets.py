"""The rotation's Secrets Manager side: the event, the versions' stages, the secrets' JSON.

Pure checks of what Secrets Manager hands the function (the event, a version's staging
labels, the rotated and admin secrets, the pending version and the user it may name)
and the two reads it makes; also the CA bundle files the secrets' ``ca`` field names.
The steps themselves are in :mod:`paymig.lambdas.rotation`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paymig.errors import ConfigError, PaymigError
from paymig.runtime.database_env import CaBundles, declared_targets

LOG = logging.getLogger("paymig.rotation")
LOG.setLevel(logging.INFO)

#: Where a secret's ``ca`` field is looked up, for messages.
CA_SOURCE = "the PAYMIG_DB_* declarations"
CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
CLONE_SUFFIX = "_clone"
MAX_ROLE_NAME_LENGTH = 63  # PostgreSQL's NAMEDATALEN - 1


class RotationError(PaymigError):
    """A step refuses to go on; the message is one line and holds no secret."""


@dataclass(frozen=True)
class RotationEvent:
    """What Secrets Manager asks of one invocation."""

    secret_id: str
    token: str
    step: str


def parse_event(event: Mapping[str, Any]) -> RotationEvent:
    """Validate an invocation event; raise :class:`RotationError` naming the bad key."""
    values = {}
    for key in ("SecretId", "ClientRequestToken", "Step"):
        value = event.get(key)
        if not isinstance(value, str) or not value:
            raise RotationError(f"event: {key} missing or not a string")
        values[key] = value
    if values["Step"] not in STEPS:
        raise RotationError(f"event: Step {values['Step']!r} is not one of {', '.join(STEPS)}")
    return RotationEvent(values["SecretId"], values["ClientRequestToken"], values["Step"])


def must_run(metadata: Mapping[str, Any], token: str) -> bool:
    """Check the version's staging (as AWS's templates do); False if already current.

    As in AWS's PostgreSQL multi-user template (aws-samples/aws-secrets-manager-rotation-
    lambdas), an explicit ``RotationEnabled: false`` refuses, an absent field does not.
    """
    if metadata.get("RotationEnabled", True) is not True:
        raise RotationError("rotation is not enabled for the secret")
    stages = (metadata.get("VersionIdsToStages") or {}).get(token)
    if stages is None:
        raise RotationError(f"version {token} has no staging label for rotation")
    if CURRENT in stages:
        return False
    if PENDING not in stages:
        raise RotationError(f"version {token} is not staged {PENDING}")
    return True


def current_version(metadata: Mapping[str, Any]) -> str:
    """The version id that carries AWSCURRENT."""
    for version, stages in (metadata.get("VersionIdsToStages") or {}).items():
        if CURRENT in stages:
            return str(version)
    raise RotationError(f"no version of the secret is staged {CURRENT}")


@dataclass(frozen=True)
class DbSecret:
    """A rotated secret's value, checked; the password never appears in ``repr``."""

    host: str
    port: int
    dbname: str
    username: str
    password: str = field(repr=False)
    ca: str
    masterarn: str | None

    @property
    def alternating(self) -> bool:
        """Whether the secret uses the alternating users strategy."""
        return self.masterarn is not None


def _text(value: Mapping[str, Any], name: str, where: str) -> str:
    found = value.get(name)
    if not isinstance(found, str) or not found:
        raise RotationError(f"{where}: field {name!r} missing or not a non-empty string")
    return found


def parse_db_secret(value: Mapping[str, Any], where: str) -> DbSecret:
    """Check a rotated secret's JSON; errors name the field, never its value."""
    if value.get("engine") != "postgres":
        raise RotationError(f"{where}: field 'engine' must be 'postgres'")
    port = value.get("port")
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise RotationError(f"{where}: field 'port' must be a port number")
    masterarn = value.get("masterarn")
    if masterarn is not None and (not isinstance(masterarn, str) or not masterarn):
        raise RotationError(f"{where}: field 'masterarn' must be a secret ARN when present")
    return DbSecret(
        host=_text(value, "host", where),
        port=port,
        dbname=_text(value, "dbname", where),
        username=_text(value, "username", where),
        password=_text(value, "password", where),
        ca=_text(value, "ca", where),
        masterarn=masterarn,
    )


@dataclass(frozen=True)
class Login:
    """A user name and password (the admin secret's)."""

    username: str
    password: str = field(repr=False)


def parse_admin_secret(value: Mapping[str, Any], where: str, rotated: DbSecret) -> Login:
    """Check the admin secret: a login; its host, when it names one, is the rotated one's."""
    login = Login(_text(value, "username", where), _text(value, "password", where))
    host = value.get("host")
    if host is not None and host != rotated.host:
        raise RotationError(
            f"{where}: names host {host!r}, but the rotated secret's host is {rotated.host!r}"
        )
    return login


def partner_username(username: str) -> str:
    """The other user of the pair: ``x`` <-> ``x_clone``."""
    if username.endswith(CLONE_SUFFIX) and len(username) > len(CLONE_SUFFIX):
        return username[: -len(CLONE_SUFFIX)]
    partner = username + CLONE_SUFFIX
    if len(partner.encode()) > MAX_ROLE_NAME_LENGTH:
        raise RotationError(
            f"user {username!r}: with {CLONE_SUFFIX!r} appended the name exceeds "
            f"PostgreSQL's {MAX_ROLE_NAME_LENGTH} bytes"
        )
    return partner


def pending_username(current: DbSecret) -> str:
    """The user the next version names: the partner, or the same user in single-user mode."""
    return partner_username(current.username) if current.alternating else current.username


def pending_value(current_value: Mapping[str, Any], username: str, password: str) -> dict[str, Any]:
    """The pending version's JSON: the current one with another user and password."""
    return {**current_value, "username": username, "password": password}


def check_pending(current: DbSecret, pending: DbSecret, where: str) -> None:
    """Refuse a pending version that points anywhere but at the current one's partner."""
    for name in ("host", "port", "dbname", "ca", "masterarn"):
        if getattr(current, name) != getattr(pending, name):
            raise RotationError(f"{where}: field {name!r} differs from the {CURRENT} version's")
    expected = pending_username(current)
    if pending.username != expected:
        raise RotationError(
            f"{where}: names user {pending.username!r}; only {expected!r} may follow "
            f"{current.username!r}"
        )


def ca_files_from_declarations(
    env: Mapping[str, str], ssm: Any, directory: Path | None = None
) -> dict[str, str]:
    """Each declared server's CA bundle as a file: ``{"source": path, "aurora": path}``."""
    try:
        targets = declared_targets(env)
    except ConfigError as error:
        raise RotationError(str(error)) from None
    if not targets:
        raise RotationError("PAYMIG_DB_*: the function declares no database")
    bundles = CaBundles(ssm, directory)
    try:
        return {t.server: str(bundles.path_for(t.ca_parameter)) for t in targets.values()}
    except ConfigError as error:
        raise RotationError(str(error)) from None


def ca_file(ca_files: Mapping[str, str], name: str, where: str) -> str:
    """The CA bundle file a secret's ``ca`` names."""
    path = ca_files.get(name)
    if path is None:
        raise RotationError(f"{where}: field 'ca' names {name!r}, which {CA_SOURCE} lack")
    if not Path(path).is_file():
        raise RotationError(f"{CA_SOURCE}: {name!r} maps to {path}, which is not a file")
    return path


def one_line(error: BaseException) -> str:
    """An exception as one log line: its type and the first line of its message."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else '(no message)'}"


def read_secret(
    client: Any, secret_id: str, stage: str, version: str | None = None
) -> dict[str, Any]:
    """A version's JSON object (by stage, and version id when given)."""
    params = {"SecretId": secret_id, "VersionStage": stage}
    if version is not None:
        params["VersionId"] = version
    answer = client.get_secret_value(**params)
    try:
        value = json.loads(answer["SecretString"])
    except (KeyError, json.JSONDecodeError):
        value = None
    if not isinstance(value, dict):
        raise RotationError(f"secret {secret_id} ({stage}): not a JSON object")
    return value


def pending_exists(client: Any, secret_id: str, token: str) -> bool:
    """Whether the pending version already holds a value (createSecret ran)."""
    try:
        client.get_secret_value(SecretId=secret_id, VersionId=token, VersionStage=PENDING)
    except client.exceptions.ResourceNotFoundException:
        return False
    return True
