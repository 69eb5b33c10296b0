"""Construct-level stacks: one tier under test on the real network, Aurora and trust store.

A full synthesis builds every tier and four Lambda packages; a test about one tier's
wiring only needs that tier and what it connects to. :func:`world` builds the shared
neighbours as the stack does (``NetworkTier``, the on-prem source, ``DataTier``,
``TrustStore`` and the login secrets), and the test adds the tier it is about. Only the
rotation function is left out of the credentials (``SecretsOnly``): its own wiring is
asserted on the full stack.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paymig.config import PaymigConfig

ACCOUNT = "111122223333"


@dataclass
class World:
    """A small stack and the real neighbours every tier connects to."""

    app: Any
    outdir: Path
    stack: Any
    config: PaymigConfig
    network: Any
    source: Any
    aurora: Any
    trust: Any
    credentials: Any

    def synth(self) -> dict[str, Any]:
        """The stack's Terraform JSON, with construct paths (``Testing.synth`` drops them)."""
        try:
            self.app.synth()
            path = self.outdir / "stacks" / self.config.stack_name / "cdk.tf.json"
            document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        finally:
            shutil.rmtree(self.outdir, ignore_errors=True)
        return document


def world(config: PaymigConfig) -> World:
    """A stack with the network, the source, Aurora, the CA bundles and the login secrets."""
    from cdktf import App, TerraformStack
    from cdktf_cdktf_provider_aws.provider import AwsProvider

    from paymig.infra.credentials import Credentials, CredentialsProps
    from paymig.infra.data import DataProps, DataTier
    from paymig.infra.functions import LoginSecret
    from paymig.infra.network import NetworkProps, NetworkTier
    from paymig.infra.onprem import OnPremDatabase
    from paymig.infra.trust import TrustStore, read_pem

    class SecretsOnly(Credentials):
        """The real key and login secrets, without the rotation function."""

        def _build_rotation(self) -> None:
            self.rotations = []

    name = config.stack_name
    outdir = Path(tempfile.mkdtemp(prefix="paymig-small-stack-"))
    app = App(outdir=str(outdir))
    stack = TerraformStack(app, name)
    AwsProvider(stack, "aws", region=config.region)
    network = NetworkTier(
        stack,
        "network",
        NetworkProps(name, config.region, ACCOUNT, config.network, config.onprem),
    )
    rep = config.replication
    source = OnPremDatabase(rep.source.host, rep.source.port, rep.source.database_name, network)
    aurora = DataTier(
        stack,
        "data",
        DataProps(
            name=name,
            region=config.region,
            account_id=ACCOUNT,
            database=config.database,
            vpc_id=network.vpc_id,
            data_subnet_ids=network.data_subnet_ids,
            availability_zones=config.network.availability_zones,
            log_retention_days=config.database.log_retention_days,
        ),
    )
    trust = TrustStore(
        stack,
        "trust",
        name,
        {
            "source": read_pem("source", rep.source.ca_certificate_path),
            "aurora": read_pem("aurora", config.database.ca_bundle_path),
        },
    )
    credentials = SecretsOnly(
        stack,
        "credentials",
        CredentialsProps(
            name=name,
            region=config.region,
            account_id=ACCOUNT,
            rotation_days=config.database.secret_rotation_days,
            log_retention_days=config.app.log_retention_days,
            vpc_id=network.vpc_id,
            app_subnet_ids=network.app_subnet_ids,
            endpoints=network.endpoints,
            source=source,
            aurora=aurora,
            trust=trust,
            aurora_admin=LoginSecret(arn=aurora.master_secret_arn, key_arn=aurora.key.arn),
        ),
    )
    return World(app, outdir, stack, config, network, source, aurora, trust, credentials)


def add_app(w: World) -> Any:
    """The application tier, as the stack composes it."""
    from paymig.infra.app import AppProps, AppTier

    config = w.config
    return AppTier(
        w.stack,
        "app",
        AppProps(
            name=config.stack_name,
            environment=config.environment,
            region=config.region,
            account_id=ACCOUNT,
            app=config.app,
            vpc_id=w.network.vpc_id,
            public_subnet_ids=w.network.public_subnet_ids,
            app_subnet_ids=w.network.app_subnet_ids,
            hosted_zone_id=config.dns.hosted_zone_id,
            api_record_name=config.dns.api_record_name,
            web_acl_arn=f"arn:aws:wafv2:{config.region}:{ACCOUNT}:regional/webacl/x/1",
            endpoints=w.network.endpoints,
            source=w.source,
            aurora=w.aurora,
            credentials=w.credentials,
            trust=w.trust,
            live_alias=config.controller.stable_alias,
        ),
    )


def add_replication(w: World) -> Any:
    """The replication tier, as the stack composes it."""
    from paymig.infra.replication import ReplicationProps, ReplicationTier

    config = w.config
    return ReplicationTier(
        w.stack,
        "replication",
        ReplicationProps(
            name=config.stack_name,
            region=config.region,
            account_id=ACCOUNT,
            replication=config.replication,
            vpc_id=w.network.vpc_id,
            app_subnet_ids=w.network.app_subnet_ids,
            endpoints=w.network.endpoints,
            source=w.source,
            aurora=w.aurora,
            credentials=w.credentials,
            trust=w.trust,
            notification_emails=tuple(config.observability.notification_emails),
            notification_https_endpoints=tuple(config.observability.notification_https_endpoints),
        ),
    )


def add_checks(w: World) -> Any:
    """The automation tier and the deployment checks, as the stack composes them."""
    from paymig import naming
    from paymig.infra.automation import AutomationProps, AutomationTier
    from paymig.infra.checks import ChecksProps, DeploymentChecks
    from paymig.infra.functions import LoginSecret

    config = w.config
    topic = f"arn:aws:sns:{config.region}:{ACCOUNT}"
    automation = AutomationTier(
        w.stack,
        "automation",
        AutomationProps(
            name=config.stack_name,
            environment=config.environment,
            region=config.region,
            account_id=ACCOUNT,
            dns=config.dns,
            controller=config.controller,
            vpc_id=w.network.vpc_id,
            app_subnet_ids=w.network.app_subnet_ids,
            endpoints=w.network.endpoints,
            alarm_topic_arn=f"{topic}:alarms",
            alert_topic_arn=f"{topic}:alerts",
            topic_key_arn=f"arn:aws:kms:{config.region}:{ACCOUNT}:key/topics",
            composite_alarm_name=naming.composite_alarm_name(config.stack_name),
            https_listener_arn=f"arn:aws:elasticloadbalancing:{config.region}:{ACCOUNT}:listener/x",
            log_retention_days=config.app.log_retention_days,
            automatic_fallback_seconds=config.automation.automatic_fallback_seconds,
        ),
    )
    return DeploymentChecks(
        w.stack,
        "checks",
        ChecksProps(
            config=config,
            account_id=ACCOUNT,
            vpc_id=w.network.vpc_id,
            app_subnet_ids=w.network.app_subnet_ids,
            endpoints=w.network.endpoints,
            automation=automation,
            source=w.source,
            aurora=w.aurora,
            credentials=w.credentials,
            trust=w.trust,
            aurora_admin=LoginSecret(arn=w.aurora.master_secret_arn, key_arn=w.aurora.key.arn),
        ),
    )


def with_changes(config: PaymigConfig, **sections: dict[str, Any]) -> PaymigConfig:
    """A copy of ``config`` with fields of some sections replaced (validated again)."""
    data = config.model_dump(mode="json")
    for section, fields in sections.items():
        data[section] = {**data[section], **fields}
    return PaymigConfig.model_validate(data)
