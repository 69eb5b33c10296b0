"""The full validation pass on AWS: the job's function and its Step Functions state machine.

The function is a :class:`~paymig.infra.functions.VpcFunction` made from
:func:`~paymig.infra.validation_job.job_function_spec`; connecting its databases writes
the network path, the login, the CA and the ``PAYMIG_DB_*`` declaration in one call:

* ``SOURCE`` and ``AURORA``: the validator's read-only login on each server;
* ``SOURCE_STANDBY``: a hot standby of the source (``validation.source_replica_dsn``),
  reached over the same VPN as the source and verified with the source's CA;
* ``AURORA_READER``: the cluster's reader endpoint (``validation.use_aurora_reader``).
  Aurora's server certificate names the reader endpoint too ("Using SSL/TLS to encrypt a
  connection to a DB cluster", Aurora User Guide), so verify-full holds.

A pass reads the standby and the reader when they are declared, so it loads neither
primary. The job exists in every stage but ``finished``: a full pass is what the
post-migration check and the shift gates read.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import AssetType, ITerraformDependable, TerraformAsset
from constructs import Construct
from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict

from paymig.config import PaymigConfig
from paymig.errors import ConfigError
from paymig.infra.automation import PYTHON_RUNTIME
from paymig.infra.checks import ChecksProps
from paymig.infra.connections import VpcClient
from paymig.infra.data import DataTier
from paymig.infra.functions import FunctionProps, VpcFunction
from paymig.infra.lambda_package import build_package
from paymig.infra.onprem import OnPremDatabase, OnPremStandby
from paymig.infra.validation_job import (
    ValidationJob,
    ValidationJobProps,
    job_function_spec,
    state_machine_log_group_name,
)


@dataclass(frozen=True)
class AuroraReader:
    """The cluster's reader endpoint as a server: Aurora's path, CA and database."""

    aurora: DataTier
    server = "aurora"

    @property
    def host(self) -> str:
        """The reader endpoint."""
        return str(self.aurora.cluster.reader_endpoint)

    @property
    def port(self) -> int:
        """Aurora's port."""
        return self.aurora.port

    @property
    def dbname(self) -> str:
        """The payments database."""
        return self.aurora.dbname

    def open_path(self, client: VpcClient) -> list[ITerraformDependable]:
        """The cluster and its instances, without rules of its own.

        Connected after the writer, whose security-group rules (client egress, cluster
        ingress) admit the reader endpoint too.
        """
        del client
        return [self.aurora.cluster, *self.aurora.instances]


def source_standby(cfg: PaymigConfig, source: OnPremDatabase) -> OnPremStandby | None:
    """The source's standby from ``validation.source_replica_dsn``, or None."""
    dsn = cfg.validation.source_replica_dsn
    if not dsn:
        return None
    try:
        keywords = conninfo_to_dict(dsn)
    except ProgrammingError as error:
        raise ConfigError(f"validation.source_replica_dsn: not libpq keywords ({error})") from None
    host = keywords.get("host")
    if not host:
        raise ConfigError("validation.source_replica_dsn: names no host")
    if "password" in keywords:
        raise ConfigError("validation.source_replica_dsn: must not hold a password")
    port = int(str(keywords.get("port") or source.port))
    return OnPremStandby(host=str(host), port=port, primary=source)


class ValidationTier(Construct):
    """The job's function and the state machine that drives it over slices.

    Attributes: :attr:`function` (:class:`VpcFunction`), :attr:`job` (:class:`ValidationJob`).
    """

    def __init__(self, scope: Construct, construct_id: str, props: ChecksProps) -> None:
        """Create the function, connect its databases, then the state machine."""
        super().__init__(scope, construct_id)
        self.props = props
        self._build_function()
        self._connect_databases()
        self._build_job()

    def _build_function(self) -> None:
        props = self.props
        cfg = props.config
        automation = props.automation
        spec = job_function_spec(cfg, str(automation.audit_table.arn), automation.key.arn)
        package = build_package("validation-job", spec.modules, spec.distributions)
        asset = TerraformAsset(self, "package", path=str(package.path), type=AssetType.FILE)
        self.function = VpcFunction(
            self,
            "function",
            FunctionProps(
                function_name=spec.function_name,
                description="paymig: one slice of a full validation pass (Step Functions)",
                region=cfg.region,
                account_id=props.account_id,
                key=automation.key,
                log_retention_days=cfg.app.log_retention_days,
                vpc_id=props.vpc_id,
                subnet_ids=props.app_subnet_ids,
                endpoints=props.endpoints,
                apis=spec.apis,
                statements=spec.statements,
                code={
                    "runtime": PYTHON_RUNTIME,
                    "handler": spec.handler,
                    "filename": asset.path,
                    "source_code_hash": package.sha256_base64,
                },
                environment=spec.environment,
                memory_mb=spec.memory_mb,
                timeout_seconds=spec.timeout_seconds,
                reserved_concurrency=spec.reserved_concurrency,
            ),
        )

    def _connect_databases(self) -> None:
        props = self.props
        cfg = props.config
        source_login = props.credentials.login("source", "validation")
        aurora_login = props.credentials.login("aurora", "validation")
        source_ca, aurora_ca = props.trust.anchor("source"), props.trust.anchor("aurora")
        self.function.connect_database("source", props.source, source_login, source_ca)
        self.function.connect_database("aurora", props.aurora, aurora_login, aurora_ca)
        standby = source_standby(cfg, props.source)
        if standby is not None:
            self.function.connect_database("source_standby", standby, source_login, source_ca)
        if cfg.validation.use_aurora_reader:
            reader = AuroraReader(props.aurora)
            self.function.connect_database("aurora_reader", reader, aurora_login, aurora_ca)

    def _build_job(self) -> None:
        props = self.props
        cfg = props.config
        log_group = props.automation.key.encrypted_log_group(
            self,
            "log-group",
            name=state_machine_log_group_name(cfg.stack_name),
            retention_days=cfg.app.log_retention_days,
        )
        self.job = ValidationJob(
            self,
            "job",
            ValidationJobProps(
                stack_name=cfg.stack_name,
                region=cfg.region,
                account_id=props.account_id,
                function_arn=str(self.function.function.arn),
                log_group_arn=str(log_group.arn),
                concurrency=cfg.validation.job_concurrency,
            ),
        )
