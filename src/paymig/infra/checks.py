"""Deployment checks (requirement 8): functions Terraform invokes during apply.

Terraform's counterpart of a CloudFormation custom resource is ``aws_lambda_invocation``.
Each check here is made by :meth:`paymig.infra.functions.VpcFunction.check`, so it
depends on everything its function reads (network paths on both sides, the databases,
the VPN, secrets, CA bundles) and re-runs only when what it checks changes, never on a
code change alone: re-applying an older commit is never blocked by a check that has
nothing to do with it.

The database setup check (:mod:`paymig.lambdas.db_setup`) runs in every stage from the
first apply: it needs only what the same apply creates (Aurora, its master secret) and
creates the Aurora logins, grants, pgaudit and the schema (foreign keys come at cutover).

Which other checks run follows ``migration.stage``:

* ``bootstrap``: none reads an operator-stored secret (the source logins are empty).
* ``full-load``: the pre-migration check (preflight of the source, logins' privileges,
  Aurora reachable) before the operator starts DMS.
* ``cdc``: the pre-migration check, and the post-migration check (the latest full
  validation pass's verdict and a bounded comparison of recent changes).
* ``finished``: none (DMS is gone).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from cdktf import AssetType, TerraformAsset
from cdktf_cdktf_provider_aws.lambda_invocation import LambdaInvocation
from constructs import Construct

from paymig import naming
from paymig.config import PaymigConfig
from paymig.infra.automation import PYTHON_RUNTIME, AutomationTier
from paymig.infra.credentials import Credentials
from paymig.infra.data import DataTier
from paymig.infra.endpoints import ServiceEndpoints
from paymig.infra.functions import FunctionProps, LoginSecret, VpcFunction
from paymig.infra.iam import statement
from paymig.infra.lambda_package import build_package
from paymig.infra.onprem import OnPremDatabase
from paymig.infra.trust import TrustStore
from paymig.infra.validation_job import (
    VALIDATION_DISTRIBUTIONS,
    VALIDATION_MODULES,
    validation_environment,
)
from paymig.logins import PGAUDIT_PARAMETERS, logins_for
from paymig.payments_schema import TABLES_DDL

#: The APIs the validation code calls: its CA bundles, logins, the audit table (verdicts
#: and the run-time stage), the CDC latency metric and the DMS task lookup.
VALIDATION_APIS = ("ssm", "secretsmanager", "dynamodb", "monitoring", "dms")

#: Modules and distributions of the database setup function.
DB_SETUP_MODULES = ("errors.py", "logins.py", "payments_schema.py", "runtime/__init__.py",
                    "runtime/checks.py", "runtime/database_env.py", "runtime/db_setup.py",
                    "runtime/login_checks.py", "runtime/role_sql.py", "lambdas/__init__.py",
                    "lambdas/db_setup.py")  # fmt: skip
DB_SETUP_DISTRIBUTIONS = ("psycopg", "psycopg-binary", "typing-extensions")

#: Stages in which each check runs.
PRE_CHECK_STAGES = ("full-load", "cdc")
POST_CHECK_STAGES = ("cdc",)


@dataclass(frozen=True)
class ChecksProps:
    """Inputs of the deployment checks."""

    config: PaymigConfig
    account_id: str
    vpc_id: str
    app_subnet_ids: list[str]
    endpoints: ServiceEndpoints
    automation: AutomationTier
    source: OnPremDatabase
    aurora: DataTier
    credentials: Credentials
    trust: TrustStore
    #: The Aurora admin login (the RDS-managed master secret).
    aurora_admin: LoginSecret


def settings_digest(settings: object) -> str:
    """A stable digest of what a check checks (its trigger)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class DeploymentChecks(Construct):
    """The setup and validation functions and the checks that invoke them during apply.

    Attributes: :attr:`db_setup` and :attr:`validation` (:class:`VpcFunction`),
    :attr:`function` (validation's), :attr:`setup_check`, :attr:`pre_check` and
    :attr:`post_check` (None in stages that do not run them).
    """

    def __init__(self, scope: Construct, construct_id: str, props: ChecksProps) -> None:
        """Create the function, then the checks the configured stage runs."""
        super().__init__(scope, construct_id)
        self.props = props
        self._build_db_setup()
        self._build_validation_function()
        self._build_checks()

    def _build_db_setup(self) -> None:
        """The setup function, connected to Aurora as master, and its check."""
        props = self.props
        cfg = props.config
        logins = {login.client: props.credentials.login("aurora", login.client)
                  for login in logins_for("aurora")}  # fmt: skip
        package = build_package("db-setup", DB_SETUP_MODULES, DB_SETUP_DISTRIBUTIONS)
        asset = TerraformAsset(
            self, "db-setup-package", path=str(package.path), type=AssetType.FILE
        )
        self.db_setup = VpcFunction(
            self,
            "db-setup",
            FunctionProps(
                function_name=naming.db_setup_function(cfg.stack_name),
                description="paymig: Aurora logins, grants, pgaudit and schema, during apply",
                region=cfg.region,
                account_id=props.account_id,
                key=props.automation.key,
                log_retention_days=cfg.app.log_retention_days,
                vpc_id=props.vpc_id,
                subnet_ids=props.app_subnet_ids,
                endpoints=props.endpoints,
                apis=("secretsmanager", "ssm"),
                statements=[
                    statement(
                        "FirstValueOfAuroraLogins",
                        ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"],
                        [login.arn for login in logins.values()],
                    ),
                    # GetRandomPassword has no resource (Secrets Manager API reference).
                    statement("NewPasswords", ["secretsmanager:GetRandomPassword"], "*"),
                    statement(
                        "LoginSecretsKeyThroughSecretsManager",
                        ["kms:Decrypt", "kms:GenerateDataKey"],
                        [props.credentials.key.arn],
                        condition={
                            "StringEquals": {
                                "kms:ViaService": f"secretsmanager.{cfg.region}.amazonaws.com"
                            }
                        },
                    ),
                ],
                code={
                    "runtime": PYTHON_RUNTIME,
                    "handler": "paymig.lambdas.db_setup.handler",
                    "filename": asset.path,
                    "source_code_hash": package.sha256_base64,
                },
                environment={
                    "PAYMIG_LOGIN_SECRETS": json.dumps(
                        {client: login.arn for client, login in logins.items()}
                    ),
                },
                memory_mb=256,
                timeout_seconds=300,
                reserved_concurrency=1,
            ),
        )
        self.db_setup.connect_database(
            "aurora", props.aurora, props.aurora_admin, props.trust.anchor("aurora")
        )
        for login in logins.values():
            if login.resource is not None:
                self.db_setup.reads.append(login.resource)
        what = {
            "logins": [repr(login) for login in logins_for("aurora")],
            "schema": TABLES_DDL,
            "pgaudit": PGAUDIT_PARAMETERS,
        }
        self.setup_check = self.db_setup.check(
            "setup-check", {"check": "setup"}, {"setup": settings_digest(what)}
        )

    def _build_validation_function(self) -> None:
        props = self.props
        cfg = props.config
        stack = cfg.stack_name
        automation = props.automation
        self.package = build_package("validation", VALIDATION_MODULES, VALIDATION_DISTRIBUTIONS)
        asset = TerraformAsset(self, "package", path=str(self.package.path), type=AssetType.FILE)
        self.validation = VpcFunction(
            self,
            "validation",
            FunctionProps(
                function_name=f"{stack}-validation",
                description="paymig: pre- and post-migration checks, invoked during apply",
                region=cfg.region,
                account_id=props.account_id,
                key=automation.key,
                log_retention_days=cfg.app.log_retention_days,
                vpc_id=props.vpc_id,
                subnet_ids=props.app_subnet_ids,
                endpoints=props.endpoints,
                apis=VALIDATION_APIS,
                statements=[
                    statement(
                        # GetItem: the run-time stage (which database writes).
                        "RecordValidation",
                        ["dynamodb:PutItem", "dynamodb:Query", "dynamodb:GetItem"],
                        [str(automation.audit_table.arn)],
                    ),
                    statement(
                        "AuditTableKeyThroughDynamodb",
                        ["kms:Decrypt", "kms:GenerateDataKey"],
                        [automation.key.arn],
                        condition={
                            "StringEquals": {
                                "kms:ViaService": f"dynamodb.{cfg.region}.amazonaws.com"
                            }
                        },
                    ),
                    statement(
                        # Reads without resource-level permission: metric statistics and
                        # the DMS task lookup (the CDC latency check).
                        "ReadCdcLatency",
                        ["cloudwatch:GetMetricStatistics", "dms:DescribeReplicationTasks"],
                        "*",
                    ),
                ],
                code={
                    "runtime": PYTHON_RUNTIME,
                    "handler": "paymig.lambdas.validation.handler",
                    "filename": asset.path,
                    "source_code_hash": self.package.sha256_base64,
                },
                # The same settings as the validation job's, from one function.
                environment=validation_environment(cfg),
                memory_mb=1024,
                timeout_seconds=900,
                reserved_concurrency=2,
            ),
        )
        for name, server in (("source", props.source), ("aurora", props.aurora)):
            self.validation.connect_database(
                name, server, props.credentials.login(server.server, "validation"),
                props.trust.anchor(server.server),
            )  # fmt: skip
        self.function = self.validation.function

    def _checked_settings(self) -> dict[str, object]:
        """What the checks check: the source, the selection, the thresholds."""
        cfg = self.props.config
        rep = cfg.replication
        return {
            "source": rep.source.model_dump(mode="json"),
            "tables": [r.model_dump() for r in rep.table_rules],
            "lob_mode": rep.lob_mode,
            "database": cfg.database.database_name,
            "cdc_threshold_seconds": cfg.controller.cdc_latency_threshold_seconds,
            "grace_seconds": cfg.validation.grace_seconds,
        }

    def _build_checks(self) -> None:
        stage = self.props.config.migration.stage
        triggers = {"settings": settings_digest(self._checked_settings())}
        self.pre_check: LambdaInvocation | None = None
        self.post_check: LambdaInvocation | None = None
        if stage in PRE_CHECK_STAGES:
            # The validation login on Aurora exists once the setup check has run.
            self.pre_check = self.validation.check(
                "pre-check", {"check": "pre"}, triggers, after=[self.setup_check]
            )
        if stage in POST_CHECK_STAGES:
            after = [self.pre_check] if self.pre_check is not None else []
            self.post_check = self.validation.check(
                "post-check", {"check": "post"}, triggers, after=after
            )
