"""The deployment check's bounded mode: the latest full pass, then what changed since.

Real PostgreSQL with the payments schema (``payments_updated_at_idx`` included). The
changes made "since the pass" are compared exactly; a change that did not move
``updated_at`` is, as documented, left to the next full pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from paymig.config import ValidationConfig
from paymig.local.postgres import LocalPostgres
from paymig.payments_schema import apply_schema
from paymig.runtime.validator import Settings, Validator
from paymig.runtime.validator.plan import Kind
from paymig.runtime.validator.recent import (
    MODE_CHANGED,
    MODE_FULL,
    MODE_FULL_PASS_ONLY,
    bounded_check,
    judge_full_pass,
)

pytestmark = pytest.mark.slow

TABLES = ["public.accounts", "public.payments", "public.refunds"]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PASS_START = NOW - timedelta(hours=6)


def uid(prefix: str, number: int) -> str:
    return f"{prefix}-0000-0000-0000-{number:012d}"


ROWS = f"""
INSERT INTO accounts (id, display_name, created_at)
SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'acct ' || i,
       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute'
FROM generate_series(1, 50) AS i;
INSERT INTO payments (id, account_id, merchant_id, idempotency_key, amount, currency, status,
                      request_fingerprint, created_at, updated_at)
SELECT ('10000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid,
       ('00000000-0000-0000-0000-' || lpad((1 + i % 50)::text, 12, '0'))::uuid,
       'm' || (i % 3), 'key-' || i, (i * 1.25)::numeric(18, 2), 'USD', 'succeeded',
       repeat('a', 64), timestamptz '{PASS_START.isoformat()}' - interval '30 days'
           + i * interval '1 minute',
       timestamptz '{PASS_START.isoformat()}' - interval '30 days' + i * interval '1 minute'
FROM generate_series(1, 2000) AS i;
"""

NEW_PAYMENT = """
INSERT INTO payments (id, account_id, merchant_id, idempotency_key, amount, currency, status,
                      request_fingerprint, created_at, updated_at)
VALUES (%s, '00000000-0000-0000-0000-000000000001', 'm1', %s, 10.00, 'EUR', 'pending',
        repeat('b', 64), %s, %s)
"""


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[LocalPostgres, LocalPostgres]]:
    with LocalPostgres("dc-src") as source, LocalPostgres("dc-tgt") as target:
        for server in (source, target):
            with psycopg.connect(server.dsn(), autocommit=True) as conn:
                apply_schema(conn)
                conn.execute(ROWS)
                conn.execute("ANALYZE")
        yield source, target


def _on(server: LocalPostgres, statement: str, params: Any = None) -> None:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(statement, params)


def _check(servers: tuple[LocalPostgres, LocalPostgres], cfg: ValidationConfig) -> dict[str, Any]:
    source, target = servers
    with Validator(source.dsn(), target.dsn(), Settings.from_config(cfg)) as validator:
        check = bounded_check(validator, TABLES, cfg, PASS_START)
    return {c.table: c for c in check.tables} | {"_check": check}


def test_changes_since_the_pass_are_compared_and_older_ones_left_to_the_full_pass(
    servers: tuple[LocalPostgres, LocalPostgres],
) -> None:
    source, target = servers
    recent = NOW - timedelta(minutes=5)
    # since the pass: an update not replicated, an insert not replicated, a target-only row
    _on(source, "UPDATE payments SET status = 'refunded', updated_at = %s "
        "WHERE idempotency_key = 'key-10'", [recent])  # fmt: skip
    _on(source, NEW_PAYMENT, [uid("20000000", 1), "new-src", recent, recent])
    _on(target, NEW_PAYMENT, [uid("20000000", 2), "new-tgt", recent, recent])
    # before the pass's start: a target-only change that did not move updated_at
    _on(target, "UPDATE payments SET amount = amount + 1 WHERE idempotency_key = 'key-20'")
    # a small table is compared in full
    _on(target, "UPDATE accounts SET display_name = 'renamed' "
        "WHERE id = '00000000-0000-0000-0000-000000000007'")  # fmt: skip
    cfg = ValidationConfig(deploy_check_max_rows=1_000, grace_seconds=0)
    found = _check(servers, cfg)

    payments = found["public.payments"]
    assert payments.mode == MODE_CHANGED and payments.failure is None
    assert (
        payments.detail
        == f"rows with updated_at >= {(PASS_START - timedelta(hours=1)).isoformat()}"
    )
    keys = {kind.value: list(k.keys) for kind, k in payments.result.keys.items()}
    assert keys == {
        "missing_in_target": [(uid("20000000", 1),)],
        "extra_in_target": [(uid("20000000", 2),)],
        "different": [("10000000-0000-0000-0000-000000000010",)],
    }
    # key-20 (updated_at untouched, before the pass) is not among them: the full pass's job
    assert (payments.result.source_rows, payments.result.target_rows) == (2, 2)

    accounts = found["public.accounts"]
    assert accounts.mode == MODE_FULL and accounts.detail == "all ~50 rows"
    assert accounts.result.keys[Kind.DIFFERENT].keys == [("00000000-0000-0000-0000-000000000007",)]
    assert accounts.result.differing == 1
    assert (
        found["public.refunds"].mode == MODE_FULL and not found["public.refunds"].result.differing
    )
    assert found["_check"].failures == [
        "public.accounts: 0 missing, 0 extra, 1 different",
        "public.payments: 1 missing, 1 extra, 1 different",
    ]
    assert found["_check"].differing


def test_bounds_and_missing_indexes_fail_the_check_instead_of_scanning(
    servers: tuple[LocalPostgres, LocalPostgres],
) -> None:
    few = _check(servers, ValidationConfig(deploy_check_max_rows=1, grace_seconds=0))
    assert few["public.payments"].failure == (
        f"2 rows changed on source since {(PASS_START - timedelta(hours=1)).isoformat()}, "
        "over validation.deploy_check_max_rows (1): run a full pass"
    )
    assert few["public.accounts"].mode == MODE_FULL_PASS_ONLY  # 50 rows > 1: not in full
    assert few["public.accounts"].detail.startswith("~50 rows and no change column")
    unindexed = _check(
        servers,
        ValidationConfig(changed_columns={"public.accounts": "created_at"}, grace_seconds=0),
    )
    assert unindexed["public.accounts"].failure == (
        "column created_at leads no index on source: the check would scan the table"
    )
    assert unindexed["public.payments"].mode == MODE_FULL  # 2,001 rows, not listed: in full


def _item(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "pass_id": "20261201T060000Z-abcd",
        "status": "finished",
        "verdict": "consistent",
        "started_at": PASS_START.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "source_rows": 1_500_000_000,
    }
    return {**base, **fields}


def test_the_latest_full_pass_must_be_finished_consistent_and_recent() -> None:
    cfg = ValidationConfig(full_pass_max_age_hours=24)
    ok = judge_full_pass(_item(), NOW, cfg)
    assert ok.ok and ok.started_at == PASS_START and not ok.inconsistent
    assert ok.reason == (
        "full pass 20261201T060000Z-abcd consistent (1,500,000,000 rows, started 6.0 h ago)"
    )
    cases = {
        "no full validation pass recorded: run the validation job": None,
        "full pass 20261201T060000Z-abcd has not finished (3 of 9 ranges compared)": _item(
            status="running", ranges_done=3, ranges_total=9
        ),
        "full pass 20261201T060000Z-abcd found differences (1 missing, 0 extra, 2 different)": (
            _item(verdict="inconsistent", missing=1, different=2)
        ),
        "full pass 20261201T060000Z-abcd started 30.0 h ago, over "
        "validation.full_pass_max_age_hours (24)": _item(
            started_at=(NOW - timedelta(hours=30)).isoformat()
        ),
        "full pass 20261201T060000Z-abcd: no valid started_at": _item(started_at="soon"),
    }
    for reason, item in cases.items():
        verdict = judge_full_pass(item, NOW, cfg)
        assert (verdict.ok, verdict.reason) == (False, reason)
        assert verdict.inconsistent == ("found differences" in reason)
