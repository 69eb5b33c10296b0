"""AWS DMS table mappings and task settings, built as data from the configuration.

Pure Python (no jsii), so tests and the runtime can import it cheaply. Both documents are
assembled from small frozen dataclasses and rendered with :func:`json.dumps`; nothing is
a string template.

The guiding rule is that **a payment is never silently dropped**: every error policy that
DMS would otherwise resolve by logging, ignoring or suspending a table is set to
``STOP_TASK``, so the task stops, the event subscription alerts, and an operator decides.
Only *recoverable* errors (lost connections across the VPN) are retried.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from paymig.config import ParallelLoadRule, ReplicationConfig, TableRule

# The schema on the target where DMS keeps its control tables (status, suspended
# tables, history, validation failures), away from the application's schemas; the DMS
# logins may create only there (paymig.logins).
from paymig.logins import CONTROL_SCHEMA

#: DMS recommends LOB chunks of 64 KB in full LOB mode; larger chunks can fail tasks.
FULL_LOB_CHUNK_KB = 64


#: Log components written to CloudWatch and why they matter here.
LOG_COMPONENTS: tuple[str, ...] = (
    "SOURCE_UNLOAD",  # full-load reads from the on-prem tables
    "SOURCE_CAPTURE",  # logical decoding from the replication slot (CDC)
    "TARGET_LOAD",  # full-load writes into Aurora
    "TARGET_APPLY",  # CDC apply into Aurora: where conflicts and data errors surface
    "TASK_MANAGER",  # task state changes, stops and restarts
    "VALIDATOR_EXT",  # row-level validation results
)
#: Errors, warnings and informational messages; DEBUG levels would log row data.
LOG_SEVERITY = "LOGGER_SEVERITY_DEFAULT"

#: Every error class that could lose or alter data stops the task.
STOP = "STOP_TASK"


@dataclass(frozen=True)
class ObjectLocator:
    """Which schema and table a rule applies to (`%` is the DMS wildcard)."""

    schema_name: str
    table_name: str

    def as_dict(self) -> dict[str, str]:
        """Render as the DMS `object-locator` object."""
        return {"schema-name": self.schema_name, "table-name": self.table_name}


@dataclass(frozen=True)
class SelectionRule:
    """A DMS `selection` rule that includes or excludes tables."""

    rule_id: int
    locator: ObjectLocator
    action: str

    @classmethod
    def from_config(cls, rule_id: int, rule: TableRule) -> SelectionRule:
        """Build from one configured table rule."""
        return cls(rule_id, ObjectLocator(rule.schema_name, rule.table_name), rule.action)

    def as_dict(self) -> dict[str, Any]:
        """Render as a DMS table-mapping rule."""
        return {
            "rule-type": "selection",
            "rule-id": str(self.rule_id),
            "rule-name": f"{self.action}-{self.rule_id}",
            "object-locator": self.locator.as_dict(),
            "rule-action": self.action,
            "filters": [],
        }


@dataclass(frozen=True)
class ParallelLoadSettingsRule:
    """A DMS `table-settings` rule that loads one table in parallel segments."""

    rule_id: int
    locator: ObjectLocator
    column: str | None = None
    boundaries: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_config(cls, rule_id: int, rule: ParallelLoadRule) -> ParallelLoadSettingsRule:
        """Build from one configured parallel-load rule."""
        return cls(
            rule_id,
            ObjectLocator(rule.schema_name, rule.table_name),
            rule.column,
            tuple(rule.boundaries),
        )

    def parallel_load(self) -> dict[str, Any]:
        """Return the `parallel-load` object: column ranges, or every partition."""
        if self.column is None:
            return {"type": "partitions-auto"}
        return {
            "type": "ranges",
            "columns": [self.column],
            "boundaries": [[bound] for bound in self.boundaries],
        }

    def as_dict(self) -> dict[str, Any]:
        """Render as a DMS table-mapping rule."""
        return {
            "rule-type": "table-settings",
            "rule-id": str(self.rule_id),
            "rule-name": f"parallel-load-{self.rule_id}",
            "object-locator": self.locator.as_dict(),
            "parallel-load": self.parallel_load(),
        }


def table_mappings(config: ReplicationConfig) -> dict[str, Any]:
    """Build the table-mappings document: selection rules, then parallel-load settings.

    Rule ids are numbered in configuration order, selection rules first, so a reviewer
    can map every rule in the plan back to its line in the YAML file.
    """
    selections = [
        SelectionRule.from_config(number, rule)
        for number, rule in enumerate(config.table_rules, start=1)
    ]
    offset = len(selections)
    settings = [
        ParallelLoadSettingsRule.from_config(offset + number, rule)
        for number, rule in enumerate(config.parallel_load, start=1)
    ]
    rules = [rule.as_dict() for rule in selections] + [rule.as_dict() for rule in settings]
    return {"rules": rules}


@dataclass(frozen=True)
class LobSettings:
    """The LOB part of `TargetMetadata`, derived from the configured mode."""

    mode: str
    max_size_kb: int

    def as_dict(self) -> dict[str, Any]:
        """Render the LOB keys of `TargetMetadata`."""
        return {
            "SupportLobs": self.mode != "none",
            "FullLobMode": self.mode == "full",
            "LobChunkSize": FULL_LOB_CHUNK_KB if self.mode == "full" else 0,
            "LimitedSizeLobMode": self.mode == "limited",
            "LobMaxSize": self.max_size_kb if self.mode == "limited" else 0,
            "InlineLobMaxSize": 0,
        }


def _target_metadata(config: ReplicationConfig) -> dict[str, Any]:
    """Target metadata: LOB handling and batch apply."""
    return {
        "TargetSchema": "",
        **LobSettings(config.lob_mode, config.lob_max_size_kb).as_dict(),
        "LoadMaxFileSize": 0,
        # ParallelLoadThreads applies only to non-relational targets (DynamoDB, Kinesis,
        # Kafka, OpenSearch, Redshift); for Aurora PostgreSQL the parallelism is
        # MaxFullLoadSubTasks plus the table-settings `parallel-load` rules.
        "ParallelLoadThreads": 0,
        "ParallelLoadBufferSize": 0,
        # Batch apply groups CDC changes per table: 50,000 tx/day never backs up. It
        # needs a primary key on every table, which `paymig preflight` proves.
        "BatchApplyEnabled": True,
        "TaskRecoveryTableEnabled": False,
    }


def _full_load_settings(config: ReplicationConfig) -> dict[str, Any]:
    """Full-load behaviour: never touch an existing target table's data or metadata."""
    return {
        # The schema (with constraints and indexes) is created on Aurora beforehand;
        # DROP_AND_CREATE would lose it and TRUNCATE would wipe a reloaded target.
        "TargetTablePrepMode": "DO_NOTHING",
        "CreatePkAfterFullLoad": False,
        "StopTaskCachedChangesApplied": False,
        "StopTaskCachedChangesNotApplied": False,
        "MaxFullLoadSubTasks": config.max_full_load_subtasks,
        "TransactionConsistencyTimeout": 600,
        "CommitRate": 10000,
    }


def _logging_settings() -> dict[str, Any]:
    """CloudWatch logging of the components that matter (group and stream set by DMS)."""
    return {
        "EnableLogging": True,
        "LogComponents": [{"Id": name, "Severity": LOG_SEVERITY} for name in LOG_COMPONENTS],
    }


def _validation_settings() -> dict[str, Any]:
    """Row-level validation of every migrated row, LOB columns included."""
    return {
        "EnableValidation": True,
        "ValidationMode": "ROW_LEVEL",
        "ValidationOnly": False,
        "ThreadCount": 5,
        "PartitionSize": 10000,
        "FailureMaxCount": 10000,
        "TableFailureMaxCount": 1000,
        "RecordFailureDelayInMinutes": 5,
        "RecordSuspendDelayInMinutes": 30,
        "HandleCollationDiff": False,
        "SkipLobColumns": False,
    }


def _error_behavior() -> dict[str, Any]:
    """Stop on every data, table and apply error; retry only lost connections."""
    return {
        "DataErrorPolicy": STOP,
        "DataTruncationErrorPolicy": STOP,
        "DataErrorEscalationPolicy": STOP,
        "DataErrorEscalationCount": 0,
        "TableErrorPolicy": STOP,
        "TableErrorEscalationPolicy": STOP,
        "TableErrorEscalationCount": 0,
        # Recoverable errors are connection losses (VPN blips, a Multi-AZ failover):
        # retry with throttling up to 30 minutes between attempts, then stop.
        "RecoverableErrorCount": -1,
        "RecoverableErrorInterval": 5,
        "RecoverableErrorThrottling": True,
        "RecoverableErrorThrottlingMax": 1800,
        "RecoverableErrorStopRetryAfterThrottlingMax": True,
        # A CDC change that does not match the target (duplicate insert, missing row on
        # update or delete) means source and target diverged: stop, never guess.
        "ApplyErrorDeletePolicy": STOP,
        "ApplyErrorInsertPolicy": STOP,
        "ApplyErrorUpdatePolicy": STOP,
        "ApplyErrorEscalationPolicy": STOP,
        "ApplyErrorEscalationCount": 0,
        "ApplyErrorFailOnTruncationDdl": True,
        # During the full load a duplicate key is an error, not something to skip.
        "FullLoadIgnoreConflicts": False,
        "FailOnTransactionConsistencyBreached": True,
        # Rules that select nothing are a configuration error, not an empty success.
        "FailOnNoTablesCaptured": True,
    }


def task_settings(config: ReplicationConfig) -> dict[str, Any]:
    """Build the replication task settings document."""
    return {
        "TargetMetadata": _target_metadata(config),
        "FullLoadSettings": _full_load_settings(config),
        "Logging": _logging_settings(),
        "ControlTablesSettings": {
            "ControlSchema": CONTROL_SCHEMA,
            "HistoryTimeslotInMinutes": 5,
            "HistoryTableEnabled": True,
            "SuspendedTablesTableEnabled": True,
            "StatusTableEnabled": True,
        },
        "ChangeProcessingTuning": {
            # Keep each source transaction whole on the target (a payment and its
            # ledger rows commit together or not at all).
            "BatchApplyPreserveTransaction": True,
            "BatchApplyTimeoutMin": 1,
            "BatchApplyTimeoutMax": 30,
            "BatchApplyMemoryLimit": 500,
            "BatchSplitSize": 0,
            "MinTransactionSize": 1000,
            "CommitTimeout": 1,
            "MemoryLimitTotal": 1024,
            "MemoryKeepTime": 60,
            "StatementCacheSize": 50,
        },
        "ChangeProcessingDdlHandlingPolicy": {
            # A dropped or truncated source table must never empty the target, and
            # schema changes go through change control on both sides (the source
            # endpoint does not capture DDL).
            "HandleSourceTableDropped": False,
            "HandleSourceTableTruncated": False,
            "HandleSourceTableAltered": False,
        },
        "ValidationSettings": _validation_settings(),
        "ErrorBehavior": _error_behavior(),
    }


def _render(document: dict[str, Any]) -> str:
    """Render a document as stable JSON text."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def table_mappings_json(config: ReplicationConfig) -> str:
    """Render the table mappings as the JSON text `aws_dms_replication_task` expects."""
    return _render(table_mappings(config))


def task_settings_json(config: ReplicationConfig) -> str:
    """Render the task settings as the JSON text `aws_dms_replication_task` expects."""
    return _render(task_settings(config))


def reverse_task_settings_json(config: ReplicationConfig) -> str:
    """Settings of the reverse (Aurora to on-prem) CDC-only task.

    The same error, logging, validation and transaction rules as the forward task;
    a CDC-only task has no full load, so its full-load settings are left out.
    """
    settings = task_settings(config)
    del settings["FullLoadSettings"]
    return _render(settings)
