"""The DMS table mappings and task settings, parsed back from the rendered JSON."""

from __future__ import annotations

import json

import pytest

from paymig.config import ReplicationConfig
from paymig.infra.dms_settings import table_mappings_json, task_settings_json


def _config(**overrides: object) -> ReplicationConfig:
    return ReplicationConfig.model_validate(
        {"source": {"host": "192.0.2.20", "ca_certificate_path": "ca.pem"}, **overrides}
    )


def test_default_mappings_include_every_public_table() -> None:
    assert json.loads(table_mappings_json(_config())) == {
        "rules": [
            {
                "rule-type": "selection",
                "rule-id": "1",
                "rule-name": "include-1",
                "object-locator": {"schema-name": "public", "table-name": "%"},
                "rule-action": "include",
                "filters": [],
            }
        ]
    }


def test_mappings_keep_rule_order_and_add_parallel_load_settings() -> None:
    config = _config(
        table_rules=[
            {"schema_name": "public", "table_name": "%", "action": "include"},
            {"schema_name": "billing", "table_name": "ledger%", "action": "include"},
            {"schema_name": "public", "table_name": "tmp_%", "action": "exclude"},
        ],
        parallel_load=[
            {"schema_name": "public", "table_name": "payments", "column": "id",
             "boundaries": ["1000000", "2000000"]},
            {"schema_name": "billing", "table_name": "ledger_2026"},
        ],
    )  # fmt: skip
    rules = json.loads(table_mappings_json(config))["rules"]
    assert [(r["rule-type"], r["rule-id"], r["rule-name"]) for r in rules] == [
        ("selection", "1", "include-1"),
        ("selection", "2", "include-2"),
        ("selection", "3", "exclude-3"),
        ("table-settings", "4", "parallel-load-4"),
        ("table-settings", "5", "parallel-load-5"),
    ]
    assert rules[1]["object-locator"] == {"schema-name": "billing", "table-name": "ledger%"}
    assert rules[2]["rule-action"] == "exclude"
    assert rules[3] == {
        "rule-type": "table-settings",
        "rule-id": "4",
        "rule-name": "parallel-load-4",
        "object-locator": {"schema-name": "public", "table-name": "payments"},
        "parallel-load": {
            "type": "ranges",
            "columns": ["id"],
            "boundaries": [["1000000"], ["2000000"]],
        },
    }
    assert rules[4]["parallel-load"] == {"type": "partitions-auto"}


EXPECTED_DEFAULT_SETTINGS = {
    "TargetMetadata": {
        "TargetSchema": "",
        "SupportLobs": True,
        "FullLobMode": False,
        "LobChunkSize": 0,
        "LimitedSizeLobMode": True,
        "LobMaxSize": 32,
        "InlineLobMaxSize": 0,
        "LoadMaxFileSize": 0,
        "ParallelLoadThreads": 0,
        "ParallelLoadBufferSize": 0,
        "BatchApplyEnabled": True,
        "TaskRecoveryTableEnabled": False,
    },
    "FullLoadSettings": {
        "TargetTablePrepMode": "DO_NOTHING",
        "CreatePkAfterFullLoad": False,
        "StopTaskCachedChangesApplied": False,
        "StopTaskCachedChangesNotApplied": False,
        "MaxFullLoadSubTasks": 8,
        "TransactionConsistencyTimeout": 600,
        "CommitRate": 10000,
    },
    "Logging": {
        "EnableLogging": True,
        "LogComponents": [
            {"Id": c, "Severity": "LOGGER_SEVERITY_DEFAULT"}
            for c in (
                "SOURCE_UNLOAD",
                "SOURCE_CAPTURE",
                "TARGET_LOAD",
                "TARGET_APPLY",
                "TASK_MANAGER",
                "VALIDATOR_EXT",
            )
        ],
    },
    "ControlTablesSettings": {
        "ControlSchema": "awsdms_control",
        "HistoryTimeslotInMinutes": 5,
        "HistoryTableEnabled": True,
        "SuspendedTablesTableEnabled": True,
        "StatusTableEnabled": True,
    },
    "ChangeProcessingTuning": {
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
        "HandleSourceTableDropped": False,
        "HandleSourceTableTruncated": False,
        "HandleSourceTableAltered": False,
    },
    "ValidationSettings": {
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
    },
    "ErrorBehavior": {
        "DataErrorPolicy": "STOP_TASK",
        "DataTruncationErrorPolicy": "STOP_TASK",
        "DataErrorEscalationPolicy": "STOP_TASK",
        "DataErrorEscalationCount": 0,
        "TableErrorPolicy": "STOP_TASK",
        "TableErrorEscalationPolicy": "STOP_TASK",
        "TableErrorEscalationCount": 0,
        "RecoverableErrorCount": -1,
        "RecoverableErrorInterval": 5,
        "RecoverableErrorThrottling": True,
        "RecoverableErrorThrottlingMax": 1800,
        "RecoverableErrorStopRetryAfterThrottlingMax": True,
        "ApplyErrorDeletePolicy": "STOP_TASK",
        "ApplyErrorInsertPolicy": "STOP_TASK",
        "ApplyErrorUpdatePolicy": "STOP_TASK",
        "ApplyErrorEscalationPolicy": "STOP_TASK",
        "ApplyErrorEscalationCount": 0,
        "ApplyErrorFailOnTruncationDdl": True,
        "FullLoadIgnoreConflicts": False,
        "FailOnTransactionConsistencyBreached": True,
        "FailOnNoTablesCaptured": True,
    },
}


def test_default_task_settings_exactly() -> None:
    assert json.loads(task_settings_json(_config())) == EXPECTED_DEFAULT_SETTINGS


def test_no_error_policy_skips_or_logs_and_continues() -> None:
    behavior = json.loads(task_settings_json(_config()))["ErrorBehavior"]
    policies = {k: v for k, v in behavior.items() if k.endswith("Policy")}
    assert len(policies) == 9
    assert set(policies.values()) == {"STOP_TASK"}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("none", {"SupportLobs": False, "FullLobMode": False, "LobChunkSize": 0,
                  "LimitedSizeLobMode": False, "LobMaxSize": 0}),
        ("limited", {"SupportLobs": True, "FullLobMode": False, "LobChunkSize": 0,
                     "LimitedSizeLobMode": True, "LobMaxSize": 256}),
        ("full", {"SupportLobs": True, "FullLobMode": True, "LobChunkSize": 64,
                  "LimitedSizeLobMode": False, "LobMaxSize": 0}),
    ],
)  # fmt: skip
def test_lob_mode_drives_target_metadata(mode: str, expected: dict) -> None:
    meta = json.loads(task_settings_json(_config(lob_mode=mode, lob_max_size_kb=256)))[
        "TargetMetadata"
    ]
    assert {k: meta[k] for k in expected} == expected


def test_full_load_parallelism_comes_from_config() -> None:
    settings = json.loads(task_settings_json(_config(max_full_load_subtasks=16)))
    assert settings["FullLoadSettings"]["MaxFullLoadSubTasks"] == 16


def test_rendering_is_stable_json_text() -> None:
    text = task_settings_json(_config())
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert "CloudWatchLogGroup" not in json.loads(text)["Logging"]
