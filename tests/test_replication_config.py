"""The `replication` config section: defaults, validation and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from paymig.config import (
    ReplicationConfig,
    TableRule,
    parse_config,
    sample_values_in_use,
)
from paymig.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _prod_data() -> dict:
    return yaml.safe_load((REPO / "config" / "prod.yaml").read_text())


def _parse(data: dict) -> object:
    return parse_config(yaml.safe_dump(data), Path("test.yaml"))


def _with(**changes: object) -> dict:
    data = _prod_data()
    data["replication"].update(changes)
    return data


def test_shipped_files_load_with_the_documented_defaults() -> None:
    for env in ("prod", "staging", "rehearsal"):
        cfg = parse_config((REPO / "config" / f"{env}.yaml").read_text(), Path(env))
        rep = cfg.replication
        assert rep.source.port == 5432
        assert rep.source.engine_major_version == 14
        assert rep.table_rules == [
            TableRule(schema_name="public", table_name="%", action="include")
        ]
        assert (rep.lob_mode, rep.lob_max_size_kb) == ("limited", 32)
        assert (rep.instance_class, rep.allocated_storage_gb) == ("dms.r5.large", 100)
        assert (rep.engine_version, rep.multi_az) == ("3.5.4", True)
        # The forward task names no slot (DMS creates its own); the way back reads this one.
        assert rep.reverse_slot_name == "paymig_reverse"
        assert rep.iam_propagation_seconds == 30
        assert (REPO / rep.source.ca_certificate_path).is_file()


def test_code_defaults_match_the_issue() -> None:
    rep = ReplicationConfig.model_validate(
        {"source": {"host": "192.0.2.20", "ca_certificate_path": "ca.pem"}}
    )
    assert [r.model_dump() for r in rep.table_rules] == [
        {"schema_name": "public", "table_name": "%", "action": "include"}
    ]
    assert rep.lob_mode == "limited"
    assert rep.create_service_roles is True
    assert rep.event_subscription.task_categories == [
        "failure", "state change", "configuration change",
    ]  # fmt: skip
    assert rep.max_full_load_subtasks == 8
    assert rep.parallel_load == []


def test_sample_source_values_are_reported() -> None:
    cfg = _parse(_prod_data())
    samples = sample_values_in_use(cfg)  # type: ignore[arg-type]
    assert "replication.source.host = 192.0.2.20" in samples
    assert "replication.source.ca_certificate_path = config/certs/example-onprem-ca.pem" in samples


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"table_rules": [{"schema_name": "public", "table_name": "%", "action": "exclude"}]},
            "test.yaml: replication.table_rules: at least one rule must have action `include`",
        ),
        (
            {"table_rules": [{"schema_name": "public", "table_name": "a;b", "action": "include"}]},
            "replication.table_rules[0].table_name: String should match pattern",
        ),
        (
            {"table_rules": [{"schema_name": "public", "table_name": "t", "action": "skip"}]},
            "replication.table_rules[0].action: Input should be 'include' or 'exclude'",
        ),
        (
            {"table_rules": [{"schema": "public", "table_name": "t", "action": "include"}]},
            "replication.table_rules[0].schema: unknown key (check the spelling)",
        ),
        (
            {"table_rules": [{"schema_name": "s", "table_name": "t", "action": "include"}] * 2},
            "replication.table_rules: duplicate table rule",
        ),
        ({"lob_mode": "huge"}, "replication.lob_mode: Input should be 'none', 'limited' or 'full'"),
        ({"engine_version": "3.4.7"}, "replication.engine_version: String should match pattern"),
        ({"instance_class": "r5.large"}, "replication.instance_class: String should match"),
        (
            {"reverse_slot_name": "Bad-Slot"},
            "replication.reverse_slot_name: String should match pattern",
        ),
        ({"slot_name": "paymig_dms"}, "replication.slot_name: unknown key (check the spelling)"),
        ({"iam_propagation_seconds": 301}, "replication.iam_propagation_seconds: Input should be"),
        ({"max_full_load_subtasks": 50}, "replication.max_full_load_subtasks: Input should be"),
        (
            {"event_subscription": {"task_categories": ["state change"]}},
            "`failure` must be subscribed",
        ),
        (
            {"event_subscription": {"instance_categories": ["failure", "state change"]}},
            "unknown event categories ['state change']",
        ),
        (
            {"event_subscription": {"task_categories": ["failure", "failure"]}},
            "event categories must be distinct",
        ),
        (
            {"parallel_load": [{"schema_name": "public", "table_name": "t", "column": "id"}]},
            "column and boundaries go together",
        ),
        (
            {"parallel_load": [{"schema_name": "public", "table_name": "t%"}]},
            "replication.parallel_load[0].table_name: String should match pattern",
        ),
        (
            {"parallel_load": [{"schema_name": "public", "table_name": "t"}] * 2},
            "parallel_load: a table appears more than once",
        ),
    ],
)
def test_bad_values_are_one_clear_line(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _parse(_with(**changes))
    text = str(info.value)
    assert "\n" not in text
    assert message in text


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"ca_certificate_path": "/etc/ca.pem"}, "must be relative to the repository root"),
        ({"ca_certificate_path": "certs/ca.key"}, "must be a PEM file"),
        ({"engine_major_version": 9}, "replication.source.engine_major_version"),
        ({"host": "198.51.100.7"}, "198.51.100.7 is outside the on-prem CIDR 192.0.2.0/24"),
        ({"host": None}, "replication.source.host"),
    ],
)
def test_bad_source_values(source: dict, message: str) -> None:
    data = _prod_data()
    data["replication"]["source"].update(source)
    with pytest.raises(ConfigError, match=None) as info:
        _parse(data)
    assert message in str(info.value)


def test_a_dns_source_host_is_accepted() -> None:
    data = _prod_data()
    data["replication"]["source"]["host"] = "pg01.dc1.internal"
    cfg = _parse(data)
    assert cfg.replication.source.host == "pg01.dc1.internal"  # type: ignore[attr-defined]


def test_ranges_rule_is_accepted() -> None:
    cfg = _parse(
        _with(
            parallel_load=[
                {"schema_name": "public", "table_name": "payments", "column": "id",
                 "boundaries": ["1000000", "2000000"]}
            ]
        )
    )  # fmt: skip
    rule = cfg.replication.parallel_load[0]  # type: ignore[attr-defined]
    assert (rule.column, rule.boundaries) == ("id", ["1000000", "2000000"])
