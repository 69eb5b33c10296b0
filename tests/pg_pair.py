"""Two real PostgreSQL servers with the payments schema and logical replication from the
source to the target: the stand-in for DMS's forward task in the cutover tests (it moves
rows the same way, in commit order, without DDL or sequence state)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from paymig.local.postgres import LocalPostgres
from paymig.payments_schema import REPLICATED_TABLES, apply_schema


@dataclass
class Pair:
    source: LocalPostgres
    target: LocalPostgres

    def dsn(self, side: str, user: str = "postgres", **kw: Any) -> str:
        server = self.source if side == "source" else self.target
        return server.dsn("postgres", user, **kw)

    def connect(self, side: str, user: str = "postgres", **kw: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn(side, user, **kw), autocommit=True)


@contextmanager
def replicated_pair(
    name: str, publication: str, prepare: Callable[[psycopg.Connection[Any], str], None]
) -> Iterator[Pair]:
    """Start both servers, ``prepare`` each side after the schema, replicate, wait ready."""
    source = LocalPostgres(f"{name}-source").start()
    target = LocalPostgres(f"{name}-target").start()
    try:
        pair = Pair(source, target)
        for side in ("source", "target"):
            with pair.connect(side) as conn:
                apply_schema(conn)
                prepare(conn, side)
        with pair.connect("source") as conn:
            conn.execute(
                sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
                    sql.Identifier(publication),
                    sql.SQL(", ").join(sql.Identifier(t) for t in REPLICATED_TABLES),
                )
            )
        with pair.connect("target") as conn:
            conn.execute(
                sql.SQL("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {}").format(
                    sql.Identifier(publication),
                    sql.Literal(pair.dsn("source")),
                    sql.Identifier(publication),
                )
            )
            # Until every table is "ready", each one is synced on its own and commit
            # order across tables does not hold yet; a cutover starts only after that.
            deadline = time.monotonic() + 60
            while conn.execute(
                "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'"
            ).fetchone() != (0,):
                assert time.monotonic() < deadline, "initial table sync did not finish"
                time.sleep(0.1)
        yield pair
    finally:
        target.stop()
        source.stop()
