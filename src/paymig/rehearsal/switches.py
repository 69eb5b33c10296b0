"""The write cutover and fallback in the rehearsal: `paymig cutover`'s own code, locally.

:func:`paymig.runtime.cutover.operations.run_operation` runs against the emulator (the
controller's audit table, the write-target SSM parameter Terraform created) and the two
local servers as their administrator, with PostgreSQL logical replication as both DMS
tasks (:class:`~paymig.runtime.cutover.replication.LogicalReplicationPaths`: the forward
subscription the rehearsal started, and a reverse one, target -> source, from the slot
the cutover creates).

A sequence the payment writes use is needed to see the sequence step work: the payment
tables key by uuid, so the rehearsal adds ``public.rehearsal_receipt_seq`` and a trigger
numbering every payment written *on that server* into ``rehearsal.receipts`` (never
replicated: replication applies rows with triggers off). Without the sequence sync the
new writer would hand out numbers the old one already gave.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from paymig import naming
from paymig.config import PaymigConfig
from paymig.rehearsal.data import REPLICATION_NAME, REVERSE_REPLICATION_NAME, LogicalReplication
from paymig.runtime.controller.stage import Operation

RECEIPTS_SQL = """
CREATE SCHEMA IF NOT EXISTS rehearsal;
CREATE SEQUENCE IF NOT EXISTS public.rehearsal_receipt_seq;
CREATE TABLE IF NOT EXISTS rehearsal.receipts (
    number bigint PRIMARY KEY, payment_id uuid NOT NULL UNIQUE,
    at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE OR REPLACE FUNCTION rehearsal.number_payment() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    INSERT INTO rehearsal.receipts (number, payment_id)
    VALUES (nextval('public.rehearsal_receipt_seq'), NEW.id);
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS rehearsal_receipt ON public.payments;
CREATE TRIGGER rehearsal_receipt AFTER INSERT ON public.payments
    FOR EACH ROW EXECUTE FUNCTION rehearsal.number_payment();
"""


def install_receipts(dsn: str) -> None:
    """The receipt sequence, table and trigger on one server (idempotent)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(RECEIPTS_SQL)


def receipt_numbers(dsn: str) -> list[int]:
    """Every receipt number this server handed out."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [int(r[0]) for r in conn.execute("SELECT number FROM rehearsal.receipts")]


@dataclass
class Switch:
    """One cutover or fallback as the rehearsal ran it (monotonic times)."""

    operation: Operation
    started: float
    ended: float
    fenced_at: float | None
    result: str
    detail: str
    window_seconds: float | None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def sequences(self) -> list[dict[str, Any]]:
        """The sequence step's figures: each sequence's old and new writer's value."""
        for step in self.steps:
            if step.get("step") == "sequences":
                return list(step.get("sequences", []))
        return []

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the report (times relative to nothing: the report offsets them)."""
        return {
            "operation": self.operation,
            "result": self.result,
            "detail": self.detail,
            "operation_window_seconds": self.window_seconds,
            "seconds": round(self.ended - self.started, 3),
            "steps": [{"step": s["step"], "seconds": s["seconds"]} for s in self.steps],
            "sequences": self.sequences(),
        }


class Switches:
    """Runs `paymig cutover` / `paymig fallback` on the rehearsal's emulator and servers."""

    def __init__(self, config: PaymigConfig, session: Any, replication: LogicalReplication) -> None:
        """The config, a boto3 session on the emulator, and the forward replication."""
        self.config, self.session, self.replication = config, session, replication
        self.done: list[Switch] = []

    def _env(self) -> Any:
        from paymig.runtime.controller.aws import ControllerAws
        from paymig.runtime.controller.core import ControllerSettings
        from paymig.runtime.cutover.progress import ProgressStore
        from paymig.runtime.cutover.replication import LogicalReplicationPaths
        from paymig.runtime.cutover.steps import CutoverEnv, Databases
        from paymig.runtime.cutover.write_target import SsmWriteTarget

        config, rep = self.config, self.replication
        settings = ControllerSettings.from_config(config)
        aws = ControllerAws.connect(settings.rollback, self.session)
        stack = config.stack_name
        return CutoverEnv(
            aws=aws,
            settings=settings,
            cutover=config.cutover,
            reverse_slot=config.replication.reverse_slot_name,
            databases=Databases(rep.source_dsn, rep.target_dsn),
            replication=LogicalReplicationPaths(
                f"{rep.source_dsn} sslmode=prefer",
                f"{rep.target_dsn} sslmode=prefer",
                forward=REPLICATION_NAME,
                reverse=REVERSE_REPLICATION_NAME,
            ),
            write_target=SsmWriteTarget(
                self.session.client("ssm"), naming.write_target_parameter_name(stack)
            ),
            progress=ProgressStore(aws.stage.client, naming.audit_table_name(stack)),
            cache_seconds=config.app.write_target_cache_seconds,
        )

    def run(self, operation: Operation, reason: str) -> Switch:
        """Run the operation to its end; the replication direction follows it."""
        from paymig.runtime.cutover.operations import run_operation

        env = self._env()
        offset = time.monotonic() - time.time()
        started = time.monotonic()
        outcome = run_operation(env, operation, reason=reason, source="rehearsal")
        ended = time.monotonic()
        self.replication.reverse = operation == "cutover"
        fence = next((s for s in outcome.steps if s["step"].startswith("fence-")), None)
        fenced_at = None
        if fence is not None:
            # The fence step's end minus its duration: when it began (monotonic).
            fenced_at = _step_began(fence, offset)
        switch = Switch(
            operation, started, ended, fenced_at, outcome.result, outcome.detail,
            outcome.window_seconds, outcome.steps,
        )  # fmt: skip
        self.done.append(switch)
        return switch


def _step_began(step: dict[str, Any], offset: float) -> float:
    """A recorded step's start on the monotonic clock (its `at` is when it ended)."""
    from paymig.runtime.controller.core import parse_time

    at = parse_time(step.get("at"))
    assert at is not None
    return at.timestamp() + offset - float(step["seconds"])
