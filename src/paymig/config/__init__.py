"""The typed configuration of one paymig environment.

One YAML file per environment (``config/<env>.yaml``) is loaded and validated once, at
the edge, into :class:`PaymigConfig`. Everything downstream takes the model and trusts it.

Fields marked ``operator_supplied`` have no default in code: only the operator knows them
(on-prem addresses, the hosted zone, the state bucket). The shipped YAML files carry
sample values for them taken from ranges reserved for documentation (RFC 5737 addresses,
RFC 2606 names, RFC 5398 AS numbers); :func:`sample_values_in_use` finds those so that
``paymig check`` can warn while one is still in place.

The model is split by section, one module each (``network``, ``dns``, ``replication``,
...); :mod:`paymig.config.root` assembles them into :class:`PaymigConfig`,
:mod:`paymig.config.loading` reads files and :mod:`paymig.config.samples` finds samples.
Import from this package: every public name is re-exported here.
"""

from __future__ import annotations

from paymig.config.app import AppConfig
from paymig.config.automation import AutomationConfig
from paymig.config.base import LOG_RETENTION_DAYS, RetentionDays
from paymig.config.controller import ControllerConfig
from paymig.config.cutover import CutoverConfig
from paymig.config.database import DatabaseConfig
from paymig.config.dns import DnsConfig, HostName
from paymig.config.loading import (
    default_config_dir,
    load_config,
    parse_config,
    resolve_config_path,
)
from paymig.config.migration import MigrationConfig
from paymig.config.network import SUBNET_TIERS, NetworkConfig, OnPremConfig, VpnConfig
from paymig.config.observability import (
    HIGH_RESOLUTION_PERIODS,
    AlarmMetric,
    AlarmSettings,
    EmailAddress,
    HttpsUrl,
    ObservabilityConfig,
)
from paymig.config.replication import (
    DMS_INSTANCE_EVENT_CATEGORIES,
    DMS_TASK_EVENT_CATEGORIES,
    DmsObjectName,
    EventSubscriptionConfig,
    ParallelLoadRule,
    PlainObjectName,
    ReplicationConfig,
    SourceDatabaseConfig,
    TableRule,
)
from paymig.config.root import PaymigConfig
from paymig.config.samples import SAMPLE_CHECKED_OPTIONAL, operator_fields, sample_values_in_use
from paymig.config.state import StateConfig
from paymig.config.tags import TagsConfig
from paymig.config.usage import UsageConfig
from paymig.config.validation import ValidationConfig
from paymig.config.waf import WafConfig

__all__ = [
    "DMS_INSTANCE_EVENT_CATEGORIES",
    "DMS_TASK_EVENT_CATEGORIES",
    "HIGH_RESOLUTION_PERIODS",
    "LOG_RETENTION_DAYS",
    "SAMPLE_CHECKED_OPTIONAL",
    "SUBNET_TIERS",
    "AlarmMetric",
    "AlarmSettings",
    "AppConfig",
    "AutomationConfig",
    "ControllerConfig",
    "CutoverConfig",
    "DatabaseConfig",
    "DmsObjectName",
    "DnsConfig",
    "EmailAddress",
    "EventSubscriptionConfig",
    "HostName",
    "HttpsUrl",
    "MigrationConfig",
    "NetworkConfig",
    "ObservabilityConfig",
    "OnPremConfig",
    "ParallelLoadRule",
    "PaymigConfig",
    "PlainObjectName",
    "ReplicationConfig",
    "RetentionDays",
    "SourceDatabaseConfig",
    "StateConfig",
    "TableRule",
    "TagsConfig",
    "UsageConfig",
    "ValidationConfig",
    "VpnConfig",
    "WafConfig",
    "default_config_dir",
    "load_config",
    "operator_fields",
    "parse_config",
    "resolve_config_path",
    "sample_values_in_use",
]
