"""The run-time migration stage in the audit table (moto's DynamoDB, in process).

moto's DynamoDB evaluates condition expressions as DynamoDB documents them, which is
the property under test: a transition succeeds only from the version it read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from audit_table import create_audit_table
from paymig.errors import PaymigError
from paymig.runtime.controller.stage import (
    StageConflictError,
    StageRecord,
    StageStore,
    parse_stage_item,
)

TABLE = "paymig-test-audit"
NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-2")
        create_audit_table(client, TABLE)
        yield client


def test_nothing_stored_is_replicating_and_the_phase_makes_it_shifting(dynamodb: Any) -> None:
    record = StageStore(dynamodb, TABLE).read()
    assert record == StageRecord("replicating")
    assert record.writes_on == "source"
    assert record.stage(0) == "replicating"
    assert record.stage(None) == "replicating"
    assert record.stage(10) == "shifting"


def test_a_move_is_stored_and_read_back_with_its_version(dynamodb: Any) -> None:
    store = StageStore(dynamodb, TABLE)
    moved = store.move(store.read(), "cut-over", now=NOW, actor="arn:me", reason="cutover")
    read = store.read()
    assert read == moved
    assert (read.stored, read.version, read.actor, read.since) == (
        "cut-over",
        1,
        "arn:me",
        NOW.isoformat(),
    )
    assert read.writes_on == "aurora"
    assert read.stage(100) == "cut-over"  # the phase no longer matters once cut over
    again = store.move(read, "replicating", now=NOW, actor="arn:me", reason="fallback")
    assert (store.read().stored, store.read().version) == ("replicating", 2)
    assert again.stage(0) == "replicating"


@pytest.mark.parametrize("first_version", [0, 1])
def test_a_stale_read_cannot_move_the_stage(dynamodb: Any, first_version: int) -> None:
    store = StageStore(dynamodb, TABLE)
    if first_version:
        store.move(store.read(), "cut-over", now=NOW, actor="a", reason="r")
    stale = store.read()
    store.move(stale, "complete", now=NOW, actor="first", reason="won")
    with pytest.raises(StageConflictError, match="set by first"):
        store.move(stale, "replicating", now=NOW, actor="second", reason="lost")
    assert store.read().stored == "complete"
    assert store.read().actor == "first"


def test_complete_writes_nowhere_but_aurora_is_left() -> None:
    assert StageRecord("complete").writes_on is None
    assert StageRecord("complete").stage(100) == "complete"


def test_an_unknown_stored_stage_is_an_error_naming_it() -> None:
    with pytest.raises(PaymigError, match="'halfway'"):
        parse_stage_item({"stage": {"S": "halfway"}})


def test_an_operation_under_way_keeps_traffic_off_legacy(dynamodb: Any) -> None:
    store = StageStore(dynamodb, TABLE)
    assert store.read().traffic_may_return_to_legacy
    began = store.move(
        store.read(), "replicating", operation="cutover", now=NOW, actor="a", reason="fence"
    )
    read = store.read()
    assert read == began
    assert (read.stored, read.operation, read.writes_on) == ("replicating", "cutover", "source")
    assert not read.traffic_may_return_to_legacy
    done = store.move(read, "cut-over", now=NOW, actor="a", reason="switched")
    assert store.read().operation is None
    assert not done.traffic_may_return_to_legacy
    back = store.move(done, "replicating", now=NOW, actor="a", reason="fallback done")
    assert back.traffic_may_return_to_legacy


def test_an_unknown_operation_is_an_error_naming_it() -> None:
    with pytest.raises(PaymigError, match="'sideways'"):
        parse_stage_item({"stage": {"S": "cut-over"}, "operation": {"S": "sideways"}})
