"""`paymig validate` end to end: exit codes, JSON shape, one-line errors, fast import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from pgpair import Pair, fresh_name

from paymig.cli import main

pytestmark = pytest.mark.slow

SRC = Path(__file__).resolve().parents[2] / "src"


def _table(pair: Pair, rows: int = 120) -> str:
    name = fresh_name("cli")
    pair.both(f"CREATE TABLE {name} (id int PRIMARY KEY, at date, v text)")
    pair.both(
        f"INSERT INTO {name} SELECT g, date '2024-02-01' + g, 'v' || g"
        f" FROM generate_series(1, {rows}) g"
    )
    return name


def _run(pair: Pair, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(
        ["validate", "--source-dsn", pair.source.dsn(), "--target-dsn", pair.target.dsn(), *args]
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_consistent_tables_exit_0_with_json(pair: Pair, capsys: pytest.CaptureFixture[str]) -> None:
    name = _table(pair)
    code, out, err = _run(pair, capsys, "--table", f"public.{name}", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["consistent"] is True
    (entry,) = data["tables"]
    assert set(entry) == {
        "table", "source_rows", "target_rows", "missing_in_target", "missing_in_target_count",
        "extra_in_target", "extra_in_target_count", "different", "different_count", "seconds",
    }  # fmt: skip
    assert entry["table"] == f"public.{name}"
    assert (entry["source_rows"], entry["target_rows"]) == (120, 120)
    assert entry["missing_in_target"] == entry["extra_in_target"] == entry["different"] == []
    assert isinstance(entry["seconds"], float)


def test_differences_exit_1_with_keys(pair: Pair, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = _table(pair), _table(pair)
    pair.execute("target", f"DELETE FROM {first} WHERE id = 3")
    pair.execute("target", f"INSERT INTO {first} VALUES (500, '2030-01-01', 'new')")
    pair.execute("target", f"UPDATE {second} SET at = at + 1 WHERE id = 9")
    code, out, _ = _run(
        pair, capsys, "--table", f"public.{first}", "--table", f"public.{second}",
        "--format", "json", "--workers", "2",
    )  # fmt: skip
    assert code == 1
    data = json.loads(out)
    assert data["consistent"] is False
    one, two = data["tables"]
    assert (one["missing_in_target"], one["extra_in_target"], one["different"]) == (
        [["3"]],
        [["500"]],
        [],
    )
    assert (one["missing_in_target_count"], one["extra_in_target_count"]) == (1, 1)
    assert two["different"] == [["9"]] and two["different_count"] == 1


def test_text_output_is_a_table(pair: Pair, capsys: pytest.CaptureFixture[str]) -> None:
    name = _table(pair)
    pair.execute("target", f"UPDATE {name} SET v = NULL WHERE id = 100")
    code, out, _ = _run(pair, capsys, "--table", f"public.{name}")
    assert code == 1
    assert f"public.{name} different (1): (100)" in out
    row = next(line for line in out.splitlines() if line.startswith(f"│ public.{name} "))
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[:6] == [f"public.{name}", "120", "120", "0", "0", "1"]
    assert "1 table(s) compared: NOT consistent" in out


def test_scope_without_table_option(pair: Pair, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --table every base table of the scope (schema public for now) is compared."""
    db = fresh_name("scopedb")
    pair.both(f"CREATE DATABASE {db}")
    for server in (pair.source, pair.target):
        with psycopg.connect(server.dsn(dbname=db), autocommit=True) as conn:
            conn.execute("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)")
            conn.execute("CREATE SCHEMA other; CREATE TABLE other.c (id int PRIMARY KEY)")
    code = main(
        ["validate", "--source-dsn", pair.source.dsn(dbname=db),
         "--target-dsn", pair.target.dsn(dbname=db), "--format", "json"]
    )  # fmt: skip
    out, _ = capsys.readouterr()
    assert code == 0
    assert [t["table"] for t in json.loads(out)["tables"]] == ["public.a", "public.b"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--table", "nodot"], "paymig: --table: 'nodot' is not of the form SCHEMA.NAME"),
        (["--table", "public.absent"], "paymig: table public.absent: not found on source"),
    ],
)
def test_argument_errors_exit_2_on_one_line(
    pair: Pair, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    code, out, err = _run(pair, capsys, *args)
    assert code == 2
    assert out == ""
    assert err == expected + "\n"


def test_column_mismatch_exits_2_naming_columns(
    pair: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    name = fresh_name("mismatch")
    pair.execute("source", f"CREATE TABLE {name} (id int PRIMARY KEY, amount numeric)")
    pair.execute("target", f"CREATE TABLE {name} (id int PRIMARY KEY, amount_cents bigint)")
    code, _, err = _run(pair, capsys, "--table", f"public.{name}")
    assert code == 2
    assert err == (
        f"paymig: table public.{name}: columns differ between source and target "
        "(only on source: amount; only on target: amount_cents)\n"
    )


@pytest.mark.parametrize(
    ("dsn", "start"),
    [
        ("host=127.0.0.1 port=1 user=x password=hunter2", "paymig: source: cannot connect: "),
        ("this is no dsn password=hunter2", "paymig: source: cannot connect: "),
    ],
)
def test_bad_dsn_exits_2_on_one_line(
    pair: Pair, capsys: pytest.CaptureFixture[str], dsn: str, start: str
) -> None:
    code = main(["validate", "--source-dsn", dsn, "--target-dsn", pair.target.dsn(),
                 "--table", "public.x"])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith(start), err
    assert err.count("\n") == 1
    assert "hunter2" not in err


def test_usage_error_for_workers(pair: Pair, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(pair, capsys, "--workers", "0", "--table", "public.x")
    assert code == 2
    assert err.startswith("paymig: ") and "--workers" in err and err.count("\n") == 1


def test_real_process_exit_code_and_dsn_from_environment(pair: Pair) -> None:
    name = _table(pair, 30)
    pair.execute("target", f"DELETE FROM {name} WHERE id = 30")
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "PAYMIG_SOURCE_DSN": pair.source.dsn(),
        "PAYMIG_TARGET_DSN": pair.target.dsn(),
    }
    result = subprocess.run(
        [sys.executable, "-m", "paymig", "validate", "--table", f"public.{name}",
         "--format", "json"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["tables"][0]["missing_in_target"] == [["30"]]


def test_validator_does_not_import_the_cdktf_stack() -> None:
    code = (
        "import sys, paymig.cli.validate_commands, paymig.runtime.validator;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'cdktf', 'jsii', 'constructs',"
        " 'cdktf_cdktf_provider_aws'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, check=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )  # fmt: skip
    assert result.stdout.strip() == "[]"
