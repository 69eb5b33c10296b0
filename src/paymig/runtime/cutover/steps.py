"""The steps of a cutover and a fallback, each idempotent, and the run they share.

A step reads what earlier steps left in :attr:`Run.progress` (``data``), does its one
thing, and returns its figures; :mod:`.operations` records them in the audit table
before the next step begins, so a re-run after a crash skips what was done and redoes,
harmlessly, the step that was interrupted. Steps that are the same in both directions
take the direction: ``old`` is the database that wrote until now, ``new`` the one that
writes next.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg

from paymig.config import CutoverConfig
from paymig.lambdas.payment_api_write_target import WRITE_TARGET_CACHE_SECONDS
from paymig.logins import login_for
from paymig.payments_schema import TABLES
from paymig.runtime.controller.aws import ControllerAws
from paymig.runtime.controller.core import ControllerSettings
from paymig.runtime.controller.stage import Operation, StageRecord, StoredStage
from paymig.runtime.cutover import database as db
from paymig.runtime.cutover.progress import Progress, ProgressStore
from paymig.runtime.cutover.replication import Replication
from paymig.runtime.cutover.write_target import Target, WriteTarget

Side = Literal["source", "aurora"]

#: Seconds added to the API's cache time before the switch counts as seen everywhere
#: (the API's clock and ours tick apart; a request already past its read may finish).
CACHE_MARGIN_SECONDS = 0.5

#: Longest wait for a stopped replication's slot to be released so it can be dropped.
SLOT_RELEASE_SECONDS = 30.0


@dataclass
class Databases:
    """Administrators' connections to the two databases (libpq DSNs, no passwords)."""

    source_dsn: str
    target_dsn: str

    def connect(self, side: Side) -> psycopg.Connection[Any]:
        """A new autocommit connection to ``side``."""
        dsn = self.source_dsn if side == "source" else self.target_dsn
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10)


@dataclass
class CutoverEnv:
    """Everything a cutover or fallback acts on; the injectable parts are Protocols."""

    aws: ControllerAws
    settings: ControllerSettings
    cutover: CutoverConfig
    reverse_slot: str
    databases: Databases
    replication: Replication
    write_target: WriteTarget
    progress: ProgressStore
    cache_seconds: float = WRITE_TARGET_CACHE_SECONDS
    wall: Callable[[], float] = time.time
    mono: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    #: Called after each step is recorded (the tests inject a crash here).
    after_step: Callable[[str], None] = lambda _step: None


@dataclass
class Run:
    """One invocation of an operation: its environment, progress and actor."""

    env: CutoverEnv
    progress: Progress
    actor: str
    reason: str
    notes: list[str] = field(default_factory=list)

    @property
    def data(self) -> dict[str, Any]:
        """What earlier steps left for later ones (stored with the progress)."""
        return self.progress.data

    def save(self) -> None:
        """Store the progress now (before an action whose effect a re-run must know)."""
        self.env.progress.save(self.progress)


def fence_roles(side: Side, cutover: CutoverConfig) -> list[str]:
    """The roles whose writes a fence of ``side`` revokes."""
    api = login_for(side, "api").group
    roles = [api] if api else []
    return roles + (list(cutover.legacy_write_roles) if side == "source" else [])


def exempt_logins(side: Side, conn: psycopg.Connection[Any]) -> list[str]:
    """Who may still write after a fence: the administrator and the apply login there."""
    row = conn.execute("SELECT current_user").fetchone()
    apply = login_for(side, "dms_apply" if side == "source" else "dms_target")
    return [str(row[0]) if row else "", *apply.users]


def api_write_grants(side: Side) -> list[db.Grant]:
    """The write privileges paymig.logins gives the API's group on ``side``."""
    api = login_for(side, "api")
    if api.group is None:  # pragma: no cover - the API login is always a pair
        return []
    privileges = [p for p in api.table_privileges if p in db.WRITE_PRIVILEGES]
    return [db.Grant(api.group, table, p) for table in TABLES for p in privileges]


# --------------------------------------------------------------------------- stage


def move_stage(
    run: Run, want: StoredStage, operation: Operation | None, accept: Sequence[StageRecord]
) -> dict[str, Any]:
    """Move the stored stage to (want, operation) unless it is there already."""
    stage = run.env.aws.stage
    current = stage.read()
    if current.stored == want and current.operation == operation:
        return {"result": "unchanged", "stage": want, "operation": operation}
    if not any(current.stored == a.stored and current.operation == a.operation for a in accept):
        raise db.CutoverDatabaseError(
            f"stage: is {current.stored} (operation {current.operation}), cannot move to "
            f"{want} (operation {operation})"
        )
    stage.move(
        current,
        want,
        operation=operation,
        now=run.env.aws.clock.now(),
        actor=run.actor,
        reason=run.reason,
    )
    return {"result": "changed", "stage": want, "operation": operation}


# --------------------------------------------------------------------------- fence


def fence(run: Run, side: Side) -> dict[str, Any]:
    """Revoke the writers' grants on ``side`` (recorded first), end their sessions, prove it."""
    roles = fence_roles(side, run.env.cutover)
    with run.env.databases.connect(side) as conn:
        run.env.progress.add_fenced(side, db.write_grants(conn, roles))
        run.data.setdefault("fenced_at", run.env.wall())
        run.save()
        revoked = db.fence(conn, roles)
        held = run.env.progress.add_fenced(side, revoked)
        exempt = exempt_logins(side, conn)
        db.prove_fenced(conn, exempt)
    return {
        "roles": roles,
        "revoked": len(revoked),
        "fenced_grants": len(held),
        "exempt": exempt,
    }


def unfence(run: Run, side: Side) -> dict[str, Any]:
    """Give back what the fence of ``side`` revoked, and the API group's write grants."""
    grants = sorted(
        set(run.env.progress.fenced(side)) | set(api_write_grants(side)),
        key=lambda g: (g.role, g.table, g.privilege),
    )
    with run.env.databases.connect(side) as conn:
        db.unfence(conn, grants)
    run.env.progress.clear_fenced(side)
    return {"granted": len(grants), "roles": sorted({g.role for g in grants})}


# --------------------------------------------------------------------------- drain


def drain(run: Run, old: Side, new: Side) -> dict[str, Any]:
    """Write a marker on ``old`` (once) and wait until ``new`` has it: exactly drained."""
    marker = run.data.get("marker")
    if marker is None:
        with run.env.databases.connect(old) as conn:
            marker = db.write_marker(conn, run.progress.operation)
        run.data["marker"] = marker
        run.save()
    with run.env.databases.connect(new) as conn:
        waited = db.wait_for_marker(conn, marker, run.env.cutover.drain_timeout_seconds)
    return {"marker": marker, "waited_seconds": round(waited, 3)}


# --------------------------------------------------------------------------- sequences


def sync_sequences(run: Run, old: Side, new: Side) -> dict[str, Any]:
    """Move every sequence on ``new`` past ``old``'s value plus the configured margin."""
    margin = run.env.cutover.sequence_margin
    with run.env.databases.connect(old) as source, run.env.databases.connect(new) as target:
        synced = db.sync_sequences(source, target, margin)
    return {
        "margin": margin,
        "sequences": [
            {"name": s.name, "old_writer": s.source_value, "new_writer": s.target_value}
            for s in synced
        ],
    }


# --------------------------------------------------------------------------- replication


def _drop_slot_when_free(run: Run, side: Side, slot: str) -> bool:
    """Drop ``slot`` on ``side`` once nothing reads it; False when it was absent."""
    deadline = run.env.mono() + SLOT_RELEASE_SECONDS
    with run.env.databases.connect(side) as conn:
        while True:
            exists = conn.execute(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            if exists is None:
                return False
            if db.drop_slot(conn, slot):
                return True
            if run.env.mono() > deadline:
                raise db.CutoverDatabaseError(
                    f"slot {slot} on {side}: still in use {SLOT_RELEASE_SECONDS:g} s after "
                    "its replication stopped"
                )
            run.env.sleep(0.2)


def stop_forward(run: Run) -> dict[str, Any]:
    """Stop source -> Aurora; drop the slot a fallback restarted it from, if any."""
    detail = run.env.replication.stop_forward()
    dropped = _drop_slot_when_free(run, "source", run.env.cutover.forward_slot_name)
    return {"detail": detail, "forward_slot_dropped": dropped}


def stop_reverse(run: Run) -> dict[str, Any]:
    """Stop Aurora -> source and drop its slot: the next cutover makes a new one."""
    detail = run.env.replication.stop_reverse()
    dropped = _drop_slot_when_free(run, "aurora", run.env.reverse_slot)
    return {"detail": detail, "reverse_slot_dropped": dropped}


def start_from_here(run: Run, side: Side) -> dict[str, Any]:
    """Create the slot on ``side`` at this point and start replication away from it."""
    replication = run.env.replication
    slot = run.env.reverse_slot if side == "aurora" else run.env.cutover.forward_slot_name
    with run.env.databases.connect(side) as conn:
        lsn = db.ensure_slot(conn, slot, replication.plugin)
    if side == "aurora":
        detail = replication.start_reverse(slot, lsn)
    else:
        detail = replication.start_forward(slot, lsn)
    return {"slot": slot, "lsn": lsn, "detail": detail}


# --------------------------------------------------------------------------- write target


def switch(run: Run, to: Target) -> dict[str, Any]:
    """Point the API's writes at ``to``; remember when, for the cache wait."""
    changed = run.env.write_target.set(to)
    if changed or "switched_at" not in run.data:
        run.data["switched_at"] = run.env.wall()
    return {"write_target": to, "result": "changed" if changed else "unchanged"}


def wait_cache(run: Run) -> dict[str, Any]:
    """Wait until every API environment has re-read the target; measure the window."""
    seen_at = float(run.data["switched_at"]) + run.env.cache_seconds + CACHE_MARGIN_SECONDS
    waited = max(0.0, seen_at - run.env.wall())
    if waited:
        run.env.sleep(waited)
    window = run.env.wall() - float(run.data["fenced_at"])
    run.data["window_seconds"] = round(window, 3)
    return {
        "cache_seconds": run.env.cache_seconds,
        "waited_seconds": round(waited, 3),
        "window_seconds": round(window, 3),
    }
