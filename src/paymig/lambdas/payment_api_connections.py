"""The payment API's shell: SSM, Secrets Manager and the PostgreSQL connection it keeps.

What one execution environment keeps between invocations (the write target read, the
database in use, its cached login and connection) lives here, per thread; the CA bundle
files, per process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import boto3
import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from paymig.lambdas.payment_api_names import ENV_WRITE_TARGET, ENV_WRITE_TARGET_CACHE
from paymig.lambdas.payment_api_write_target import (
    ConfigurationError,
    WriteTargetCache,
    WriteTargetError,
    cache_seconds,
)
from paymig.runtime import database_env
from paymig.runtime.database_env import CaBundles, DatabaseTarget

LOGGER = logging.getLogger("paymig.payment_api")


#: Seconds to wait for a TCP/TLS connection, and milliseconds a statement may run.
CONNECT_TIMEOUT_SECONDS = 5
STATEMENT_TIMEOUT_MS = 5000
APPLICATION_NAME = "paymig-payment-api"

T = TypeVar("T")


def aws_client(service: str) -> Any:
    """A boto3 client for ``service`` (made in one place, so tests can count its calls)."""
    return boto3.client(service)


def variable_of(target: DatabaseTarget) -> str:
    """The environment variable that declares ``target`` (``PAYMIG_DB_SOURCE``...)."""
    return f"{database_env.ENV_PREFIX}{target.name}"


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "error"))


def one_line(error: BaseException) -> str:
    """The error's message on one line (libpq reports each address it tried on its own)."""
    return " ".join(part.strip() for part in str(error).splitlines() if part.strip())


def read_write_target(ssm: Any, parameter: str) -> str:
    """The raw value of the write-target parameter; a failed read is a WriteTargetError."""
    try:
        answer = ssm.get_parameter(Name=parameter)
    except ClientError as error:
        reason = _error_code(error)
    except BotoCoreError as error:
        reason = type(error).__name__
    else:
        return str(answer["Parameter"]["Value"])
    raise WriteTargetError(f"{ENV_WRITE_TARGET}: cannot read SSM parameter {parameter}: {reason}")


def read_secret(client: Any, target: DatabaseTarget) -> dict[str, Any]:
    """Fetch and decode ``target``'s login secret; ConfigurationError if it is not JSON."""
    variable = variable_of(target)
    try:
        # AWSCURRENT is the default; named, because during a rotation moto answers a
        # stage-less read with the new, still empty version.
        answer = client.get_secret_value(SecretId=target.secret_arn, VersionStage="AWSCURRENT")
    except ClientError as error:
        raise ConfigurationError(
            f"{variable}: cannot read the secret: {_error_code(error)}"
        ) from None
    try:
        value = json.loads(answer["SecretString"])
    except (KeyError, json.JSONDecodeError):
        raise ConfigurationError(f"{variable}: the secret is not a JSON string") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{variable}: the secret is not a JSON object")
    return value


def connect(login: Mapping[str, Any]) -> psycopg.Connection[Any]:
    """Open an autocommit connection with ``database_env.connect_kwargs``'s ``login``.

    Those arguments carry ``sslmode=verify-full`` and the CA file: TLS, with the server's
    chain and its name checked.
    """
    return psycopg.connect(
        **login,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        application_name=APPLICATION_NAME,
        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        autocommit=True,
    )


class SecretCredentials:
    """A database's login from its secret, read once and again when a login fails.

    psycopg 3.3 reports a failed login without a SQLSTATE (libpq gives startup errors as
    text only, in the server's language), so any failed connection makes it read the
    secret again; it retries once, and only if the secret now holds another login.
    """

    def __init__(self, client: Any, target: DatabaseTarget, ca_file: Path) -> None:
        """Read nothing yet; connect to ``target``, verifying it with ``ca_file``."""
        self._client = client
        self._target = target
        self._ca_file = ca_file
        self._secret: dict[str, Any] | None = None

    def _login(self, secret: Mapping[str, Any]) -> dict[str, Any]:
        return database_env.connect_kwargs(self._target, secret, self._ca_file)

    def _read(self) -> dict[str, Any]:
        """Read the secret; keep it only if it gives a login (a bad one is read again)."""
        secret = read_secret(self._client, self._target)
        login = self._login(secret)
        self._secret = secret
        return login

    def connect(self) -> psycopg.Connection[Any]:
        """Connect with the cached login; on failure, re-read the secret and retry once."""
        login = self._read() if self._secret is None else self._login(self._secret)
        try:
            return connect(login)
        except psycopg.OperationalError as error:
            fresh = self._read()
            if fresh == login:
                raise
            LOGGER.warning(
                "%s: login as %s failed (%s); the secret now names %s: retrying once",
                variable_of(self._target), login["user"], one_line(error), fresh["user"],
            )  # fmt: skip
            return connect(fresh)


class _Process:
    """What every thread of the process shares: the CA bundle files and the clock.

    The clock is the wall clock, not ``time.monotonic``: Lambda freezes an execution
    environment between invocations, and whether the monotonic clock runs while frozen
    is not documented; a write target read before a freeze must not look fresh after it.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.clock: Callable[[], float] = time.time
        self.ca_directory: Path | None = None
        self.ca_bundles: CaBundles | None = None

    def ca_file(self, target: DatabaseTarget) -> Path:
        """The file holding ``target``'s CA bundle, fetched from SSM on first use."""
        with self.lock:
            if self.ca_bundles is None:
                self.ca_directory = Path(tempfile.mkdtemp(prefix="paymig-ca-"))
                self.ca_bundles = CaBundles(aws_client("ssm"), self.ca_directory)
            try:
                return self.ca_bundles.path_for(target.ca_parameter)
            except ClientError as error:
                raise ConfigurationError(
                    f"{variable_of(target)}: cannot read the CA bundle from SSM parameter "
                    f"{target.ca_parameter}: {_error_code(error)}"
                ) from None

    def reset(self, clock: Callable[[], float]) -> None:
        """Forget the CA bundles (and delete their files); use ``clock`` from now on."""
        with self.lock:
            if self.ca_directory is not None:
                shutil.rmtree(self.ca_directory, ignore_errors=True)
            self.ca_directory, self.ca_bundles, self.clock = None, None, clock


_PROCESS = _Process()


class _Runtime(threading.local):
    """What the function keeps between invocations of one execution environment.

    Lambda runs one invocation at a time per environment; keeping the state per thread
    also keeps it right if the handler is ever called from several threads (the tests
    do this to play two execution environments racing each other).
    """

    def __init__(self) -> None:
        self.connection: psycopg.Connection[Any] | None = None
        self.forget()

    def forget(self) -> None:
        """Close the connection and forget everything, as a new environment starts."""
        self.drop_connection()
        self.write_target: WriteTargetCache | None = None
        self.reported: str | None = None  # the write-target error logged last
        self.target: DatabaseTarget | None = None
        self.credentials: SecretCredentials | None = None

    def _write_target(self) -> str:
        """The server to use now; an error is logged once, however many requests it fails."""
        try:
            if self.write_target is None:
                parameter = os.environ.get(ENV_WRITE_TARGET)
                if not parameter:
                    raise WriteTargetError(f"{ENV_WRITE_TARGET}: not set")
                seconds = cache_seconds(os.environ.get(ENV_WRITE_TARGET_CACHE))
                ssm = aws_client("ssm")
                self.write_target = WriteTargetCache(
                    parameter, lambda: read_write_target(ssm, parameter), _PROCESS.clock, seconds
                )
            server = self.write_target.current()
        except WriteTargetError as error:
            if str(error) != self.reported:
                LOGGER.error("no write target, answering 503: %s", error)
                self.reported = str(error)
            raise
        if self.reported is not None:
            LOGGER.warning("write target is %s again", server)
            self.reported = None
        return server

    def resolve(self) -> DatabaseTarget:
        """The database this request uses: the write target, switched to if it changed."""
        server = self._write_target()
        if self.target is not None and self.target.server == server:
            return self.target
        if self.target is not None:
            LOGGER.warning(
                "write target changed from %s to %s: closing the connection to %s",
                self.target.server, server, self.target.server,
            )  # fmt: skip
        self.drop_connection()
        self.target, self.credentials = None, None
        declared = database_env.target(server.upper())
        if declared.server != server:
            raise ConfigurationError(
                f"{variable_of(declared)}: declares the {declared.server} server, "
                f"but it is the declaration of the {server} write target"
            )
        self.target = declared
        return declared

    def new_connection(self, target: DatabaseTarget) -> psycopg.Connection[Any]:
        """Connect to ``target`` with the cached credentials (made on first use)."""
        if self.credentials is None:
            self.credentials = SecretCredentials(
                aws_client("secretsmanager"), target, _PROCESS.ca_file(target)
            )
        self.connection = self.credentials.connect()
        return self.connection

    def drop_connection(self) -> None:
        """Close and forget the cached connection."""
        if self.connection is not None:
            self.connection.close()
        self.connection = None

    def describe(self) -> str:
        """The database in use, for log lines."""
        if self.target is None:
            return "no database selected"
        t = self.target
        return f"{variable_of(t)} ({t.server} at {t.host}:{t.port})"


_RUNTIME = _Runtime()


def cached_connection() -> psycopg.Connection[Any] | None:
    """Return the connection this thread's environment keeps, if any (tests, probes)."""
    return _RUNTIME.connection


def close_connection() -> None:
    """Close this thread's cached connection; the next request connects again."""
    _RUNTIME.drop_connection()


def reset_runtime(clock: Callable[[], float] = time.time) -> None:
    """Start afresh as a new execution environment would, reading time from ``clock``.

    Closes this thread's connection, forgets its credentials and write target, and the
    process's CA bundle files.
    """
    _RUNTIME.forget()
    _PROCESS.reset(clock)


def with_connection(operation: Callable[[psycopg.Connection[Any]], T]) -> T:
    """Run ``operation`` on the write target's connection; on a broken one, reconnect once."""
    target = _RUNTIME.resolve()
    conn = _RUNTIME.connection
    if conn is None or conn.closed:
        conn = _RUNTIME.new_connection(target)
    try:
        return operation(conn)
    except psycopg.OperationalError:
        if not conn.broken:
            raise
        LOGGER.warning("%s: database connection lost; reconnecting once", _RUNTIME.describe())
        _RUNTIME.drop_connection()
        return operation(_RUNTIME.new_connection(target))


def describe_database() -> str:
    """The database this thread's environment uses, for log lines."""
    return _RUNTIME.describe()
