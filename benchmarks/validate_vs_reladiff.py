"""Benchmark `paymig validate` against reladiff 0.6.0 and the in-database floor.

Starts two local PostgreSQL servers, loads the same payments table into both (5,000,000
rows by default; ``--rows 50000000`` for the 10x run), and measures, side by side:

* the floor: ``sum(hashtextextended(t::text, 0))`` over both tables at once (one query
  per server, in parallel): the least any tool that reads every row's text must spend;
* ``paymig validate`` (a subprocess, JSON output, the repository's config/prod.yaml);
* ``python -m reladiff`` 0.6.0 with all columns (a subprocess, JSONL output);

first on identical tables, then after 100 scattered differences on the target (updates,
deletes and inserts of new keys between existing ones). For each tool: wall time, rows
per second (rows of one table / wall time), peak memory (max RSS of the process, from
``wait4``), client CPU seconds, and whether exactly the injected keys were reported.

``--growth-from 5000000`` also copies the first 5,000,000 rows into a second table on
both servers and measures it the same way in the same run, under the same load, then
prints how time per row and peak memory grew from the small size to the large one. The
time extrapolated to 1.5 billion rows (linear in rows, same hardware) follows. The
machine and its load average, at the start and the end, are printed too: the machine may
be shared, and the figures depend on it.

reladiff reaches PostgreSQL through psycopg2 (pinned in the dev extra). When it is not
importable, put it on a path and pass ``--reladiff-path``, e.g.::

    pip install --target /tmp/bench-deps psycopg2-binary
    python benchmarks/validate_vs_reladiff.py --reladiff-path /tmp/bench-deps

Run from the repository root: ``python benchmarks/validate_vs_reladiff.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from paymig.local.postgres import LocalPostgres  # noqa: E402

#: Both servers: 1 GB of shared buffers (the OS page cache holds the rest); one core per
#: query, like the floor; WAL room so that the load is not a series of checkpoints.
SERVER_SETTINGS = {
    "shared_buffers": "1GB",
    "max_parallel_workers_per_gather": "0",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
}

#: Rows the 500 GB migration holds: what the figures are extrapolated to.
EXTRAPOLATE_ROWS = 1_500_000_000

# The primary key is added after the load: building the index once is faster.
DDL = """CREATE TABLE {table} (
    id bigint NOT NULL,
    account bigint NOT NULL,
    amount numeric(12,2) NOT NULL,
    currency text NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
)"""

# Even ids, so that inserted rows (odd ids) land between existing keys.
LOAD = """INSERT INTO {table}
SELECT 2 * g,
       (g::bigint * 7919) % 100000,
       ((g::bigint * 2654435761) % 10000000) / 100.0,
       (ARRAY['USD', 'EUR', 'GBP'])[1 + g % 3],
       (ARRAY['authorized', 'settled', 'refunded', 'failed'])[1 + g % 4],
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'
           + (g % 3600) * interval '1 second'
FROM generate_series(1, {rows}) AS g"""

COPY_FIRST = "CREATE TABLE {table} AS SELECT * FROM payments WHERE id <= {last}"
PRIMARY_KEY = "ALTER TABLE {table} ADD PRIMARY KEY (id)"
FLOOR = "SELECT sum(hashtextextended(t::text, 0)) FROM {table} AS t"


@dataclass
class Result:
    """One measured run."""

    scenario: str
    tool: str
    seconds: float
    rows: int
    peak_mb: float | None = None
    cpu_seconds: float | None = None
    exact: bool | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def key(self) -> tuple[str, str]:
        return self.scenario, self.tool

    def to_json(self) -> dict[str, object]:
        return {"scenario": self.scenario, "tool": self.tool, "seconds": self.seconds,
                "rows": self.rows, "peak_mb": self.peak_mb, "cpu_seconds": self.cpu_seconds,
                "exact": self.exact}  # fmt: skip


@dataclass
class Expected:
    """The injected differences, as key text."""

    missing: set[str] = field(default_factory=set)
    extra: set[str] = field(default_factory=set)
    different: set[str] = field(default_factory=set)


def on_both(servers: tuple[LocalPostgres, LocalPostgres], statement: str, params=None) -> float:
    """Run one statement on both servers at the same time; return the wall time."""
    errors: list[BaseException] = []

    def run(server: LocalPostgres) -> None:
        try:
            with psycopg.connect(server.dsn(), autocommit=True) as conn:
                conn.execute(statement, params)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in servers]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def inject(target: LocalPostgres, table: str, rows: int, count: int, seed: int) -> Expected:
    """Change ``count`` scattered rows on the target: a third each updated, deleted, new."""
    rng = random.Random(seed)
    picked = rng.sample(range(1, rows + 1), count)
    expected = Expected()
    with psycopg.connect(target.dsn(), autocommit=True) as conn:
        for index, g in enumerate(picked):
            key = 2 * g
            if index % 3 == 0:
                conn.execute(
                    f"UPDATE {table} SET status = 'disputed',"
                    " updated_at = updated_at + interval '1 second' WHERE id = %s",
                    [key],
                )
                expected.different.add(str(key))
            elif index % 3 == 1:
                conn.execute(f"DELETE FROM {table} WHERE id = %s", [key])
                expected.missing.add(str(key))
            else:
                conn.execute(
                    f"INSERT INTO {table} SELECT id + 1, account, amount + 1, currency, status,"
                    f" created_at, updated_at FROM {table} WHERE id = %s",
                    [key],
                )
                expected.extra.add(str(key + 1))
    return expected


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, float, float, int, str]:
    """Run a command; return wall seconds, peak RSS MB, CPU seconds, exit code, stdout."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read()
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{args[2]} failed ({proc.returncode}): {err.read().strip()}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, proc.returncode, stdout


@dataclass
class Case:
    """One table to measure: its name and rows, the scenario, what must be found."""

    table: str
    rows: int
    scenario: str
    expected: Expected


def run_paymig(src: LocalPostgres, tgt: LocalPostgres, workers: int, case: Case) -> Result:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    args = [sys.executable, "-m", "paymig", "validate", "--source-dsn", src.dsn(),
            "--target-dsn", tgt.dsn(), "--table", f"public.{case.table}",
            "--workers", str(workers), "--format", "json"]  # fmt: skip
    seconds, peak, cpu, _, stdout = run_measured(args, env)
    (table,) = json.loads(stdout)["tables"]
    found = Expected(
        missing={key[0] for key in table["missing_in_target"]},
        extra={key[0] for key in table["extra_in_target"]},
        different={key[0] for key in table["different"]},
    )
    exact = found == case.expected
    return Result(case.scenario, "paymig validate", seconds, case.rows, peak, cpu, exact)


def run_reladiff(src: LocalPostgres, tgt: LocalPostgres, threads: int, case: Case,
                 extra_path: str | None) -> Result:  # fmt: skip
    path = [p for p in (extra_path, os.environ.get("PYTHONPATH")) if p]
    # reladiff prints through rich, which wraps lines at the terminal width
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "COLUMNS": "100000"}
    uri = "postgresql://postgres@127.0.0.1:{}/postgres"
    args = [sys.executable, "-m", "reladiff", uri.format(src.port), case.table,
            uri.format(tgt.port), case.table, "-k", "id", "-c", "%",
            "-j", str(threads), "--json"]  # fmt: skip
    seconds, peak, cpu, _, stdout = run_measured(args, env)
    if "No module named 'psycopg2'" in stdout:
        raise SystemExit("reladiff needs psycopg2: see --reladiff-path in this script's help")
    minus: set[str] = set()
    plus: set[str] = set()
    for line in stdout.splitlines():
        try:
            sign, row = json.loads(line)
        except ValueError:
            raise SystemExit(f"unexpected reladiff output: {line!r}") from None
        (minus if sign == "-" else plus).add(str(row[0]))
    found = Expected(missing=minus - plus, extra=plus - minus, different=minus & plus)
    exact = found == case.expected
    return Result(case.scenario, f"reladiff -j {threads}", seconds, case.rows, peak, cpu, exact)


def run_floor(servers: tuple[LocalPostgres, LocalPostgres], case: Case) -> Result:
    seconds = on_both(servers, FLOOR.format(table=case.table))
    return Result(case.scenario, "floor (in-db hash)", seconds, case.rows)


def print_table(results: list[Result]) -> None:
    header = (f"{'rows':>11}  {'scenario':<16}{'tool':<22}{'wall s':>8}{'rows/s':>12}"
              f"{'peak MB':>9}{'CPU s':>7}  exact")  # fmt: skip
    print(header)
    print("-" * len(header))
    for r in results:
        peak = f"{r.peak_mb:.0f}" if r.peak_mb is not None else "-"
        cpu = f"{r.cpu_seconds:.1f}" if r.cpu_seconds is not None else "-"
        exact = {True: "yes", False: "NO", None: "-"}[r.exact]
        print(f"{r.rows:>11,}  {r.scenario:<16}{r.tool:<22}{r.seconds:>8.2f}"
              f"{r.rows_per_second:>12,.0f}{peak:>9}{cpu:>7}  {exact}")  # fmt: skip
    print()
    for rows, scenario in dict.fromkeys((r.rows, r.scenario) for r in results):
        found = {r.tool.split()[0]: r for r in results if (r.rows, r.scenario) == (rows, scenario)}
        paymig, base, flo = found.get("paymig"), found.get("reladiff"), found.get("floor")
        parts = []
        if paymig and base:
            parts.append(f"paymig is {base.seconds / paymig.seconds:.1f}x reladiff's throughput")
        if paymig and flo:
            parts.append(f"{paymig.seconds / flo.seconds:.2f}x the floor's time")
        print(f"{rows:,} rows, {scenario}: " + "; ".join(parts))


def duration(seconds: float) -> str:
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def print_extrapolation(results: list[Result]) -> None:
    """Each tool's time at 1.5 billion rows from the largest size, if linear in rows."""
    largest = max(r.rows for r in results)
    print()
    print(f"extrapolated from {largest:,} to {EXTRAPOLATE_ROWS:,} rows on this machine:")
    for r in (r for r in results if r.rows == largest):
        projected = r.seconds * EXTRAPOLATE_ROWS / r.rows
        print(f"  {r.scenario:<16}{r.tool:<22}{duration(projected):>10}")


def print_growth(results: list[Result]) -> None:
    """How time per row and peak memory grew from the smallest size to the largest."""
    sizes = sorted({r.rows for r in results})
    if len(sizes) < 2:
        return
    small = {r.key: r for r in results if r.rows == sizes[0]}
    print()
    print(f"growth from {sizes[0]:,} to {sizes[-1]:,} rows "
          "(time per row: 1.00 = linear; peak memory: 1.00 = flat):")  # fmt: skip
    for r in (r for r in results if r.rows == sizes[-1]):
        s = small[r.key]
        per_row = (r.seconds / r.rows) / (s.seconds / s.rows)
        memory = f"x{r.peak_mb / s.peak_mb:.2f}" if r.peak_mb and s.peak_mb else "-"
        print(f"  {r.scenario:<16}{r.tool:<22}time/row x{per_row:.2f}  peak memory {memory}")


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GB RAM"


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def load(servers: tuple[LocalPostgres, LocalPostgres], rows: int, smaller: list[int]) -> float:
    """The payments table of ``rows`` rows, and a copy of its first rows per smaller size."""
    seconds = on_both(servers, DDL.format(table="payments"))
    seconds += on_both(servers, LOAD.format(table="payments", rows=int(rows)))
    seconds += on_both(servers, PRIMARY_KEY.format(table="payments"))
    for size in smaller:
        table = f"payments_{size}"
        seconds += on_both(servers, COPY_FIRST.format(table=table, last=2 * size))
        seconds += on_both(servers, PRIMARY_KEY.format(table=table))
    on_both(servers, "VACUUM ANALYZE")
    on_both(servers, "CHECKPOINT")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows per table")
    parser.add_argument("--growth-from", type=int, help="also measure this smaller size")
    parser.add_argument("--diffs", type=int, default=100, help="differences to inject")
    parser.add_argument("--workers", type=int, default=4, help="paymig --workers")
    parser.add_argument("--reladiff-threads", type=int, default=4, help="reladiff -j")
    parser.add_argument("--reladiff-path", help="extra PYTHONPATH for reladiff (psycopg2)")
    parser.add_argument("--skip-reladiff", action="store_true", help="measure paymig only")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--seed", type=int, default=20261129)
    args = parser.parse_args()
    smaller = [args.growth_from] if args.growth_from else []

    started_load = load_average()
    print(f"machine: {machine()}; load average (1, 5, 15 min) at start: {started_load}")
    with (
        LocalPostgres("bench-source", settings=SERVER_SETTINGS) as source,
        LocalPostgres("bench-target", settings=SERVER_SETTINGS) as target,
    ):
        servers = (source, target)
        print(f"loading {args.rows:,} rows into each server ...", flush=True)
        print(f"loaded in {load(servers, args.rows, smaller):.1f} s", flush=True)
        results: list[Result] = []
        for rows in [*smaller, args.rows]:
            table = "payments" if rows == args.rows else f"payments_{rows}"
            on_both(servers, FLOOR.format(table=table))  # warm the caches
            for scenario in ("identical", f"{args.diffs} differences"):
                expected = Expected()
                if scenario != "identical":
                    expected = inject(target, table, rows, args.diffs, args.seed)
                    on_both(servers, FLOOR.format(table=table))
                case = Case(table, rows, scenario, expected)
                results.append(run_floor(servers, case))
                results.append(run_paymig(source, target, args.workers, case))
                if not args.skip_reladiff:
                    threads, extra = args.reladiff_threads, args.reladiff_path
                    results.append(run_reladiff(source, target, threads, case, extra))
                print(f"{rows:,} rows, {scenario}: measured", flush=True)
        print()
        print(f"payments table, up to {args.rows:,} rows per side, {machine()}")
        print(f"load average at start: {started_load}; at end: {load_average()}")
        print_table(results)
        print_growth(results)
        print_extrapolation(results)
        if args.json is not None:
            document = {"machine": machine(), "load_average": [started_load, load_average()],
                        "results": [r.to_json() for r in results]}  # fmt: skip
            args.json.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
