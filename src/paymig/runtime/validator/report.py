"""The validator's result: per-table findings, their JSON form and their text rendering.

Keys are lists of the primary-key values in key order, in canonical text form. Each list
of keys holds at most ``cap`` keys; the full count always stands beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from paymig.runtime.validator.plan import Key, Kind

if TYPE_CHECKING:  # rich is the CLI's; the Lambda packages do not carry it
    from rich.console import Console


@dataclass
class KeyList:
    """The first ``cap`` keys of one kind of difference, and how many there are in all."""

    cap: int
    keys: list[Key] = field(default_factory=list)
    count: int = 0

    def add(self, key: Key) -> None:
        """Count a key, keeping it only while under the cap."""
        self.count += 1
        if len(self.keys) < self.cap:
            self.keys.append(key)

    @property
    def truncated(self) -> bool:
        """Whether keys were left out of :attr:`keys`."""
        return self.count > len(self.keys)


@dataclass
class TableReport:
    """The comparison of one table."""

    table: str
    cap: int
    source_rows: int = 0
    target_rows: int = 0
    seconds: float = 0.0
    #: Keys that differed in the first pass and were re-checked (not in the JSON).
    candidates: int = 0
    missing_in_target: KeyList = field(init=False)
    extra_in_target: KeyList = field(init=False)
    different: KeyList = field(init=False)

    def __post_init__(self) -> None:
        """Create the three key lists with the table's cap."""
        self.missing_in_target = KeyList(self.cap)
        self.extra_in_target = KeyList(self.cap)
        self.different = KeyList(self.cap)

    def add(self, kind: Kind, key: Key) -> None:
        """Record one confirmed difference."""
        self.lists()[kind].add(key)

    def lists(self) -> dict[Kind, KeyList]:
        """Return the three key lists by kind."""
        return {
            Kind.MISSING: self.missing_in_target,
            Kind.EXTRA: self.extra_in_target,
            Kind.DIFFERENT: self.different,
        }

    @property
    def consistent(self) -> bool:
        """Whether no difference was confirmed."""
        return all(item.count == 0 for item in self.lists().values())

    def to_json(self) -> dict[str, Any]:
        """Return the table's entry of the JSON report."""
        out: dict[str, Any] = {
            "table": self.table,
            "source_rows": self.source_rows,
            "target_rows": self.target_rows,
        }
        for kind, keys in self.lists().items():
            out[kind.value] = [list(key) for key in keys.keys]
            out[f"{kind.value}_count"] = keys.count
        out["seconds"] = round(self.seconds, 3)
        return out


@dataclass
class Report:
    """The comparison of every table in scope."""

    tables: list[TableReport] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        """Whether every table is consistent."""
        return all(table.consistent for table in self.tables)

    def to_json(self) -> dict[str, Any]:
        """Return the machine-readable report."""
        return {"consistent": self.consistent, "tables": [t.to_json() for t in self.tables]}

    def render(self, console: Console) -> None:
        """Print a summary table, then the differing keys of each table."""
        from rich.table import Table

        summary = Table(title="paymig validate")
        summary.add_column("table", overflow="fold")
        for name in ("source", "target", "missing", "extra", "different", "seconds"):
            summary.add_column(name, justify="right", no_wrap=True)
        for t in self.tables:
            summary.add_row(
                t.table,
                f"{t.source_rows:,}",
                f"{t.target_rows:,}",
                f"{t.missing_in_target.count:,}",
                f"{t.extra_in_target.count:,}",
                f"{t.different.count:,}",
                f"{t.seconds:.2f}",
                style="green" if t.consistent else "red",
            )
        console.print(summary)
        for t in self.tables:
            for kind, keys in t.lists().items():
                if not keys.count:
                    continue
                shown = ", ".join("(" + ", ".join(key) + ")" for key in keys.keys)
                more = f" … and {keys.count - len(keys.keys):,} more" if keys.truncated else ""
                console.print(
                    f"{t.table} {kind.value.replace('_', ' ')} ({keys.count:,}): {shown}{more}",
                    markup=False,
                    highlight=False,
                )
        verdict = "consistent" if self.consistent else "NOT consistent"
        console.print(f"[bold]{len(self.tables)} table(s) compared: {verdict}[/]")
