"""The validation Lambda: the pre- and post-migration checks run during `terraform apply`.

Terraform's counterpart of a CloudFormation custom resource is ``aws_lambda_invocation``:
the stack invokes this function with ``{"check": "pre"}`` and, from stage ``cdc``,
``{"check": "post"}``; a failing check raises, the invocation fails, and so does the
apply, with the reasons in the error. Each check finishes in minutes at any data size.

* **pre**: the preflight checks (:func:`paymig.runtime.preflight.run_preflight`) pass on
  the on-prem source, and Aurora answers.
* **post**: the latest full validation pass (the validation job's) finished consistent
  and is recent enough, the rows changed since it started are the same on both sides,
  small tables are the same in full (:mod:`paymig.runtime.validator.recent` says exactly
  what this covers and what it leaves to the full pass), and the DMS CDC latency is
  under its threshold. The verdict is recorded in the audit table, where the shift gate
  and the cutover read it.

  The check follows the run-time stage (the audit table's stage item, read through the
  same DynamoDB endpoint and key as the verdict): the database that takes the writes is
  compared as the primary (the source before cutover, Aurora after it), and the CDC
  latency is the replicating direction's (the larger of the forward and reverse tasks',
  as the cdc-latency alarm has it). While a cutover or fallback is moving the writes
  the check fails without comparing: the databases are between writers.

Environment (set by the stack): ``PAYMIG_STACK_NAME``, ``PAYMIG_ENVIRONMENT``,
``PAYMIG_DB_SOURCE`` and ``PAYMIG_DB_AURORA`` (database declarations, see
:mod:`paymig.runtime.database_env`: host, login secret, ``verify-full`` against the CA
in SSM), ``PAYMIG_TABLE_RULES`` (JSON list), ``PAYMIG_LOB_MODE``, ``PAYMIG_VALIDATION``
(the `validation` config section as JSON), ``PAYMIG_CDC_THRESHOLD_SECONDS``,
``PAYMIG_CDC_LOOKBACK_SECONDS``; optionally ``PAYMIG_AUDIT_TABLE``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import psycopg
from pydantic import ValidationError

from paymig.config import TableRule, ValidationConfig
from paymig.errors import ConfigError, PaymigError
from paymig.naming import audit_table_name
from paymig.runtime import database_env
from paymig.runtime.controller.aws import AuditTrail, Metrics
from paymig.runtime.controller.stage import StageRecord, StageStore
from paymig.runtime.preflight import run_preflight
from paymig.runtime.validator.engine import Validator
from paymig.runtime.validator.pass_store import PassStore
from paymig.runtime.validator.plan import ScopeRule
from paymig.runtime.validator.recent import BoundedCheck, bounded_check, judge_full_pass
from paymig.runtime.validator.side import Settings

LOG = logging.getLogger("paymig.validation")
LOG.setLevel(logging.INFO)


class CheckFailedError(PaymigError):
    """A deployment check found the migration unsafe; the apply must stop."""


@dataclass(frozen=True)
class LambdaSettings:
    """What the validation functions need, read once from their environment."""

    stack_name: str
    environment: str
    audit_table: str
    table_rules: tuple[TableRule, ...]
    lob_mode: str
    validation: ValidationConfig
    cdc_threshold_seconds: float
    cdc_lookback_seconds: int

    @property
    def rules(self) -> tuple[ScopeRule, ...]:
        """The replication scope as validator scope rules."""
        return tuple((r.schema_name, r.table_name, r.action) for r in self.table_rules)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LambdaSettings:
        """Read and check the environment; a missing or bad variable is one clear error."""

        def need(name: str) -> str:
            value = env.get(name)
            if not value:
                raise ConfigError(f"{name}: required environment variable is not set")
            return value

        def parse(name: str, reader: Callable[[str], Any]) -> Any:
            try:
                return reader(need(name))
            except (ValueError, TypeError, ValidationError) as exc:
                reason = str(exc).strip().splitlines()[0]
                raise ConfigError(f"{name}: {reason}") from None

        stack = need("PAYMIG_STACK_NAME")
        return cls(
            stack_name=stack,
            environment=need("PAYMIG_ENVIRONMENT"),
            audit_table=env.get("PAYMIG_AUDIT_TABLE") or audit_table_name(stack),
            table_rules=parse(
                "PAYMIG_TABLE_RULES",
                lambda text: tuple(TableRule.model_validate(r) for r in json.loads(text)),
            ),
            lob_mode=need("PAYMIG_LOB_MODE"),
            validation=parse("PAYMIG_VALIDATION", ValidationConfig.model_validate_json),
            cdc_threshold_seconds=parse("PAYMIG_CDC_THRESHOLD_SECONDS", float),
            cdc_lookback_seconds=parse("PAYMIG_CDC_LOOKBACK_SECONDS", int),
        )


class Databases:
    """Connection strings of the declared databases: login secret, verify-full, CA file."""

    def __init__(self, env: Mapping[str, str], session: Any) -> None:
        """Read declarations from ``env``; fetch secrets and CA bundles through ``session``."""
        self._env = env
        self._secrets = session.client("secretsmanager")
        self._bundles = database_env.CaBundles(session.client("ssm"))

    def declared(self, name: str) -> bool:
        """Whether ``PAYMIG_DB_<name>`` is set."""
        return name in database_env.declared_targets(self._env)

    def dsn(self, name: str) -> str:
        """The libpq connection string of ``PAYMIG_DB_<name>`` (one-line error if unusable)."""
        target = database_env.target(name, self._env)
        try:
            value = self._secrets.get_secret_value(SecretId=target.secret_arn)["SecretString"]
            secret = json.loads(value)
        except (ValueError, KeyError):
            raise ConfigError(f"{target.secret_arn}: the secret holds no JSON login") from None
        kwargs = database_env.connect_kwargs(
            target, secret, self._bundles.path_for(target.ca_parameter)
        )
        return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in kwargs.items()})


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


def _bounded(
    settings: LambdaSettings, source_dsn: str, target_dsn: str, started: datetime
) -> BoundedCheck:
    """The comparison of what changed since the full pass (primaries: the freshest data)."""
    cfg = settings.validation
    with Validator(source_dsn, target_dsn, Settings.from_config(cfg)) as validator:
        tables = validator.source.scope(settings.rules)
        return bounded_check(validator, tables, cfg, started)


def writer_first(stage: StageRecord, source_dsn: str, target_dsn: str) -> tuple[str, str, str]:
    """(primary DSN, replica DSN, writer) for the stage: the writer is compared as primary.

    Raises :class:`CheckFailedError` while a cutover or fallback is under way.
    """
    if stage.operation is not None:
        raise CheckFailedError(
            f"post-migration check failed: stage: a {stage.operation} is under way "
            f"(since {stage.since}); apply again once it has ended"
        )
    if stage.writes_on == "source":
        return source_dsn, target_dsn, "source"
    # cut-over, or complete (only Aurora is left to write).
    return target_dsn, source_dsn, "aurora"


def post_migration(  # noqa: PLR0917 - settings, databases, then the AWS shell
    settings: LambdaSettings,
    source_dsn: str,
    target_dsn: str,
    audit: AuditTrail,
    store: PassStore,
    metrics: Metrics,
    *,
    stage: StageRecord | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """The latest full pass, the rows changed since, CDC latency; record; raise if unsafe.

    ``stage`` (default: nothing cut over) says which database writes; it is compared as
    the primary.
    """
    primary, replica, writer = writer_first(
        stage or StageRecord("replicating"), source_dsn, target_dsn
    )
    verdict = judge_full_pass(store.latest(), now(), settings.validation)
    tables: list[dict[str, Any]] = []
    if verdict.ok and verdict.started_at is not None:
        check = _bounded(settings, primary, replica, verdict.started_at)
        tables = [t.to_json() for t in check.tables]
        failures = check.failures
        status = "inconsistent" if check.differing else ("error" if failures else "consistent")
    else:
        failures = [verdict.reason]
        status = "inconsistent" if verdict.inconsistent else "error"
    audit.record_validation(
        {
            "status": status,
            "summary": "deployment check: " + "; ".join(dict.fromkeys([verdict.reason, *failures])),
            "source": "deploy-check",
            "writer": writer,
            **({"pass_id": verdict.pass_id} if verdict.pass_id else {}),
        },
        now(),
    )
    latency = metrics.cdc_latency(now(), settings.cdc_lookback_seconds)
    if latency is None:
        failures.append(
            "CDC latency: no datapoint from the forward or the reverse task (neither is "
            "replicating)"
        )
    elif latency[0] > settings.cdc_threshold_seconds:
        failures.append(
            f"CDC latency {latency[0]:.0f}s above {settings.cdc_threshold_seconds:.0f}s"
        )
    if failures:
        raise CheckFailedError("post-migration check failed: " + "; ".join(failures))
    return {
        "check": "post",
        "passed": True,
        "writer": writer,
        "full_pass": verdict.reason,
        "tables": tables,
    }


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Run the check named by ``event["check"]`` (``pre`` or ``post``)."""
    del context
    check = event.get("check")
    if check not in ("pre", "post"):
        raise PaymigError(f"event.check must be 'pre' or 'post', got {check!r}")
    settings = LambdaSettings.from_env(os.environ)
    session = boto3.Session()
    databases = Databases(os.environ, session)
    source_dsn, target_dsn = databases.dsn("SOURCE"), databases.dsn("AURORA")
    if check == "pre":
        result = pre_migration(settings, source_dsn, target_dsn)
    else:
        dynamodb = session.client("dynamodb")
        audit = AuditTrail(dynamodb, settings.audit_table)
        store = PassStore(dynamodb, settings.audit_table, settings.validation.max_keys_reported)
        metrics = Metrics(
            session.client("cloudwatch"),
            settings.stack_name,
            settings.environment,
            dms=session.client("dms"),
        )
        stage = StageStore(dynamodb, settings.audit_table).read()
        result = post_migration(
            settings, source_dsn, target_dsn, audit, store, metrics, stage=stage
        )
    LOG.info(json.dumps(result, default=str))
    return result
