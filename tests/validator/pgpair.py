"""Helpers of the validator tests: a pair of servers and short ways to use them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import psycopg

from paymig.local.postgres import LocalPostgres
from paymig.runtime.validator import Report, Settings, Validator

_names = itertools.count()


@dataclass
class Pair:
    """A source and a target server."""

    source: LocalPostgres
    target: LocalPostgres

    def execute(self, side: str, statement: str, params: Any = None) -> None:
        server = self.source if side == "source" else self.target
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(statement, params)

    def both(self, statement: str, params: Any = None) -> None:
        self.execute("source", statement, params)
        self.execute("target", statement, params)

    def query(self, side: str, statement: str, params: Any = None) -> list[Any]:
        server = self.source if side == "source" else self.target
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            return conn.execute(statement, params).fetchall()


#: Small ranges so that tables of a few hundred rows exercise splitting and fetching.
SMALL = {"range_rows": 40, "leaf_rows": 6, "fanout": 4, "workers": 3}


def validate(pair: Pair, *tables: str, **settings: Any) -> Report:
    """Run the validator with small ranges (overridable) on the given tables."""
    merged = {**SMALL, **settings}
    return Validator(pair.source.dsn(), pair.target.dsn(), Settings(**merged)).run(list(tables))


def found(report: Report, table: int = 0) -> dict[str, set[tuple[str, ...]]]:
    """The reported keys by kind, as sets of tuples."""
    entry = report.tables[table]
    return {
        "missing": set(entry.missing_in_target.keys),
        "extra": set(entry.extra_in_target.keys),
        "different": set(entry.different.keys),
    }


def fresh_name(prefix: str = "t") -> str:
    """A table name not used before in this session."""
    return f"{prefix}_{next(_names)}"
