"""The write figures of the whole migration: windows, accounting, duplicates, sequences.

Windows are taken from the clients' acknowledgements (monotonic times of the 2xx
answers, as the clients saw them): a database commit time would need
``track_commit_timestamp`` and, on the side that received the row by replication, gives
the origin's time without saying which side was the origin. The accounting and the
duplicates are read from the rows of both databases at the end.
"""

from __future__ import annotations

from typing import Any

import psycopg

from paymig.rehearsal.clients import RequestRecord
from paymig.rehearsal.switches import Switches, receipt_numbers
from paymig.rehearsal.timeline import Timeline
from paymig.rehearsal.writes import account, duplicated_keys, write_window


def _rows(dsn: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [
            (str(m), str(k), str(i))
            for m, k, i in conn.execute(
                "SELECT merchant_id, idempotency_key, id::text FROM payments"
            ).fetchall()
        ]


def write_figures(
    switches: Switches, records: list[RequestRecord], timeline: Timeline, final_dsn: str
) -> dict[str, Any]:
    """The measured figures of every cutover and fallback, and of the payments."""
    acks = [r.done for r in records if r.acknowledged]
    windows: list[dict[str, Any]] = []
    for done in switches.done:
        gap = write_window(acks, done.started, done.ended)
        windows.append(
            {
                **done.as_dict(),
                "at": round(timeline.at(done.started), 3),
                "window_seconds": None if gap is None else round(gap.seconds, 3),
                "last_ack_before": None if gap is None else round(timeline.at(gap.last_before), 3),
                "first_ack_after": None if gap is None else round(timeline.at(gap.first_after), 3),
            }
        )
    rep = switches.replication
    source, target = _rows(rep.source_dsn), _rows(rep.target_dsn)
    final = target if final_dsn == rep.target_dsn else source
    held: dict[str, int] = {}
    for _, _, pid in final:
        held[pid] = held.get(pid, 0) + 1
    ids = [r.payment_id for r in records if r.acknowledged and r.payment_id]
    counted = account(ids, held)
    numbers = {"source": receipt_numbers(rep.source_dsn), "aurora": receipt_numbers(rep.target_dsn)}
    collisions = len(set(numbers["source"]) & set(numbers["aurora"]))
    return {
        "windows": windows,
        "measured_from": "the clients' acknowledgements (2xx received)",
        "acknowledged": counted.acknowledged,
        "exactly_once": counted.exactly_once,
        "lost": counted.lost,
        "duplicated_on_final_writer": counted.duplicated + duplicated_keys(final),
        "duplicated_across_databases": duplicated_keys(source + target),
        "rows": {"source": len(source), "aurora": len(target)},
        "receipts": {
            side: {"count": len(v), "max": max(v) if v else None} for side, v in numbers.items()
        },
        "receipt_collisions": collisions,
    }


#: Figures that must be 0 for the rehearsal to pass.
MUST_BE_ZERO = ("lost", "duplicated_on_final_writer", "duplicated_across_databases",
                "receipt_collisions")  # fmt: skip


def write_problems(figures: dict[str, Any], *, completed: bool) -> list[str]:
    """What makes the whole migration fail: an unmeasured window, a payment lost or doubled."""
    problems = [f"{x['operation']}: window not measured" for x in figures["windows"]
                if x["window_seconds"] is None]  # fmt: skip
    problems += [f"{figures[key]} {key.replace('_', ' ')}" for key in MUST_BE_ZERO if figures[key]]
    if not completed:
        problems.append("the whole migration did not reach its last stage")
    return problems
