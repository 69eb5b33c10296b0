"""The validation Lambda: pre- and post-migration checks run during `terraform apply`.

Terraform's counterpart of a CloudFormation custom resource is ``aws_lambda_invocation``:
the stack invokes this function with ``{"check": "pre"}`` (and, once config enables it,
``{"check": "post"}``); a failing check raises, the invocation fails, and so does the
apply, with the reasons in the error.

* **pre**: the preflight checks (:func:`paymig.runtime.preflight.run_preflight`) pass on
  the on-prem source, and the Aurora target answers.
* **post**: the validator finds source and target consistent (with the configured grace
  for replication in flight) and the DMS CDC latency is under its threshold. The result
  is recorded in the audit table, where the controller's validation gate reads it.

Environment variables (set by the stack): ``PAYMIG_STACK_NAME``, ``PAYMIG_ENVIRONMENT``,
``PAYMIG_SOURCE_SECRET_ARN`` and ``PAYMIG_TARGET_SECRET_ARN`` (JSON secrets with
``username``, ``password``, ``host``, ``port``), ``PAYMIG_SOURCE_DATABASE``,
``PAYMIG_TARGET_DATABASE``, ``PAYMIG_SOURCE_CA_FILE`` (the on-prem CA, packaged),
``PAYMIG_TABLE_RULES`` (JSON list), ``PAYMIG_LOB_MODE``, ``PAYMIG_GRACE_SECONDS``,
``PAYMIG_CDC_THRESHOLD_SECONDS``, ``PAYMIG_CDC_LOOKBACK_SECONDS``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import psycopg

from paymig.config import TableRule
from paymig.errors import PaymigError
from paymig.naming import audit_table_name
from paymig.runtime.controller.aws import AuditTrail, Metrics
from paymig.runtime.preflight import run_preflight
from paymig.runtime.validator.engine import Settings, Validator

LOG = logging.getLogger("paymig.validation")
LOG.setLevel(logging.INFO)


class CheckFailedError(PaymigError):
    """A deployment check found the migration unsafe; the apply must stop."""


@dataclass(frozen=True)
class LambdaSettings:
    """What the function needs, read once from its environment."""

    stack_name: str
    environment: str
    source_secret_arn: str
    target_secret_arn: str
    source_database: str
    target_database: str
    source_ca_file: str
    table_rules: tuple[TableRule, ...]
    lob_mode: str
    grace_seconds: float
    cdc_threshold_seconds: float
    cdc_lookback_seconds: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LambdaSettings:
        """Read and check the environment; a missing or bad variable is one clear error."""

        def need(name: str) -> str:
            value = env.get(name)
            if not value:
                raise PaymigError(f"{name}: required environment variable is not set")
            return value

        try:
            rules = tuple(
                TableRule.model_validate(r) for r in json.loads(need("PAYMIG_TABLE_RULES"))
            )
            return cls(
                stack_name=need("PAYMIG_STACK_NAME"),
                environment=need("PAYMIG_ENVIRONMENT"),
                source_secret_arn=need("PAYMIG_SOURCE_SECRET_ARN"),
                target_secret_arn=need("PAYMIG_TARGET_SECRET_ARN"),
                source_database=need("PAYMIG_SOURCE_DATABASE"),
                target_database=need("PAYMIG_TARGET_DATABASE"),
                source_ca_file=need("PAYMIG_SOURCE_CA_FILE"),
                table_rules=rules,
                lob_mode=need("PAYMIG_LOB_MODE"),
                grace_seconds=float(need("PAYMIG_GRACE_SECONDS")),
                cdc_threshold_seconds=float(need("PAYMIG_CDC_THRESHOLD_SECONDS")),
                cdc_lookback_seconds=int(need("PAYMIG_CDC_LOOKBACK_SECONDS")),
            )
        except (ValueError, TypeError) as exc:
            raise PaymigError(f"validation Lambda environment: {exc}") from None


def dsn_from_secret(secret: Mapping[str, Any], database: str, tls: Mapping[str, str]) -> str:
    """A libpq connection string from a DMS-style secret (username, password, host, port)."""
    missing = [k for k in ("username", "password", "host", "port") if not secret.get(k)]
    if missing:
        raise PaymigError(f"database secret lacks {', '.join(missing)}")
    params = {
        "host": str(secret["host"]),
        "port": str(secret["port"]),
        "dbname": database,
        "user": str(secret["username"]),
        "password": str(secret["password"]),
        **tls,
    }
    return psycopg.conninfo.make_conninfo(**params)


def read_secret(client: Any, arn: str) -> dict[str, Any]:
    """The JSON value of a Secrets Manager secret."""
    value = client.get_secret_value(SecretId=arn)["SecretString"]
    parsed: dict[str, Any] = json.loads(value)
    return parsed


def pre_migration(settings: LambdaSettings, source_dsn: str, target_dsn: str) -> dict[str, Any]:
    """Preflight on the source; the target answers. Raises with every failed check."""
    report = run_preflight(
        source_dsn, None, settings.lob_mode, table_rules=list(settings.table_rules)
    )
    failures = [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
    try:
        with psycopg.connect(target_dsn, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        failures.append(f"target reachable: {str(exc).strip().splitlines()[0]}")
    if failures:
        raise CheckFailedError("pre-migration check failed: " + "; ".join(failures))
    return {"check": "pre", "passed": True, "checks": [c.name for c in report.checks]}


def post_migration(
    settings: LambdaSettings,
    source_dsn: str,
    target_dsn: str,
    audit: AuditTrail,
    metrics: Metrics,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """Consistency (recorded in the audit trail) and CDC latency; raises if unsafe."""
    rules = [(r.schema_name, r.table_name, r.action) for r in settings.table_rules]
    validator = Validator(
        source_dsn, target_dsn, Settings(grace_seconds=settings.grace_seconds, workers=2)
    )
    report = validator.run(rules=rules)
    document = report.to_json()
    differing = [t.table for t in report.tables if not t.consistent]
    audit.record_validation(
        {
            "status": "consistent" if report.consistent else "inconsistent",
            "summary": (
                f"{len(document['tables'])} table(s) compared by the post-migration check"
                + (f"; differences in {', '.join(differing)}" if differing else "")
            ),
            "source": "lambda",
        },
        now(),
    )
    failures = [f"tables differ: {', '.join(differing)}"] if differing else []
    latency = metrics.cdc_latency(now(), settings.cdc_lookback_seconds)
    if latency is None:
        failures.append("CDC latency: no datapoint (the task is not replicating)")
    elif latency[0] > settings.cdc_threshold_seconds:
        failures.append(
            f"CDC latency {latency[0]:.0f}s above {settings.cdc_threshold_seconds:.0f}s"
        )
    if failures:
        raise CheckFailedError("post-migration check failed: " + "; ".join(failures))
    return {"check": "post", "passed": True, "consistent": True, "tables": document["tables"]}


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Run the check named by ``event["check"]`` (``pre`` or ``post``)."""
    del context
    check = event.get("check")
    if check not in ("pre", "post"):
        raise PaymigError(f"event.check must be 'pre' or 'post', got {check!r}")
    settings = LambdaSettings.from_env(os.environ)
    secrets = boto3.client("secretsmanager")
    source_tls = {"sslmode": "verify-full", "sslrootcert": settings.source_ca_file}
    if not Path(settings.source_ca_file).is_file():
        raise PaymigError(f"PAYMIG_SOURCE_CA_FILE: {settings.source_ca_file} is not in the package")
    # The RDS CA bundle cannot be fetched at build time here; Aurora forces TLS, so the
    # connection is encrypted (`require`), as the DMS target endpoint's is.
    target_tls = {"sslmode": "require"}
    source_dsn = dsn_from_secret(
        read_secret(secrets, settings.source_secret_arn), settings.source_database, source_tls
    )
    target_dsn = dsn_from_secret(
        read_secret(secrets, settings.target_secret_arn), settings.target_database, target_tls
    )
    if check == "pre":
        result = pre_migration(settings, source_dsn, target_dsn)
    else:
        session = boto3.Session()
        audit = AuditTrail(session.client("dynamodb"), audit_table_name(settings.stack_name))
        metrics = Metrics(
            session.client("cloudwatch"),
            settings.stack_name,
            settings.environment,
            dms=session.client("dms"),
        )
        result = post_migration(settings, source_dsn, target_dsn, audit, metrics)
    LOG.info(json.dumps(result, default=str))
    return result
