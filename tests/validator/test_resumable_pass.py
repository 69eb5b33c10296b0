"""A pass in many batches, killed in the middle and resumed: real PostgreSQL, real processes.

Tiny batches (``batch_seconds``) and a low rate limit make one pass of a few thousand
rows take many batches and several seconds, so a process running `paymig validate
--checkpoint` can be killed (SIGKILL) half way through; `--resume` then finishes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pgpair import Pair, fresh_name

from paymig.cli import main
from paymig.runtime.validator import FileCheckpoint, Settings, Validator

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _table(pair: Pair, rows: int) -> str:
    name = fresh_name("resume")
    pair.both(f"CREATE TABLE {name} (id int PRIMARY KEY, v text, at timestamptz)")
    pair.both(
        f"INSERT INTO {name} SELECT g, 'v' || g, timestamptz '2026-01-01' + g * interval '1 min'"
        f" FROM generate_series(1, {rows}) g"
    )
    pair.both(f"ANALYZE {name}")
    return name


def _inject(pair: Pair, name: str, rows: int) -> dict[str, list[list[str]]]:
    """A difference of each kind, early, in the middle and in the last range."""
    pair.execute("target", f"DELETE FROM {name} WHERE id IN (3, {rows // 2})")
    pair.execute("target", f"UPDATE {name} SET v = 'changed' WHERE id IN (7, {rows - 2})")
    pair.execute("target", f"INSERT INTO {name} VALUES ({rows + 5}, 'new', now())")
    return {
        "missing_in_target": sorted([["3"], [str(rows // 2)]]),
        "different": sorted([["7"], [str(rows - 2)]]),
        "extra_in_target": [[str(rows + 5)]],
    }


def _batches(path: Path) -> list[tuple[str, list[int]]]:
    """Each committed batch: the session that wrote it and the range indexes in it."""
    return [
        (r["session"], [item["index"] for item in r["results"]])
        for r in FileCheckpoint(path, 100).records()
        if r["kind"] == "batch"
    ]


def _config(tmp_path: Path, **validation: Any) -> Path:
    data = yaml.safe_load((REPO / "config" / "prod.yaml").read_text(encoding="utf-8"))
    data["validation"] = {**data["validation"], **validation}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_pass_in_many_batches_reports_each_difference_once(pair: Pair, tmp_path: Path) -> None:
    name = _table(pair, 600)
    expected = _inject(pair, name, 600)
    checkpoint = FileCheckpoint(tmp_path / "pass.jsonl", 100)
    settings = Settings(range_rows=40, leaf_rows=5, fanout=4, workers=2, batch_seconds=0.001)
    report = Validator(pair.source.dsn(), pair.target.dsn(), settings).run(
        [f"public.{name}"], checkpoint=checkpoint
    )
    entry = report.to_json()["tables"][0]
    for kind, keys in expected.items():
        assert (sorted(entry[kind]), entry[f"{kind}_count"]) == (keys, len(keys))
    (plan,) = [r for r in checkpoint.records() if r["kind"] == "plan"]
    ranges = len(plan["plan"]["tables"][0]["ranges"])
    indexes = [i for _, batch in _batches(checkpoint.path) for i in batch]
    assert ranges >= 10
    assert len(_batches(checkpoint.path)) >= ranges // 4  # at most 2 x 2 workers per batch
    assert sorted(indexes) == list(range(ranges))  # every range recorded exactly once
    assert checkpoint.records()[-1]["kind"] == "finished"


def test_killed_pass_resumes_without_comparing_a_recorded_range_again(
    pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = 3_000
    name = _table(pair, rows)
    expected = _inject(pair, name, rows)
    config = _config(
        tmp_path, range_rows=100, leaf_rows=10, workers=2, batch_seconds=0.2,
        rate_limit_rows_per_second=600,
    )  # fmt: skip
    path = tmp_path / "pass.jsonl"
    args = ["validate", "--source-dsn", pair.source.dsn(), "--target-dsn", pair.target.dsn(),
            "--table", f"public.{name}", "--config", str(config), "--checkpoint", str(path),
            "--format", "json"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen([sys.executable, "-m", "paymig", *args], env=env)
    try:
        deadline = time.monotonic() + 120
        while len(_batches(path)) < 2:
            assert process.poll() is None, "the pass ended before it could be killed"
            assert time.monotonic() < deadline, "no two batches recorded in 120 s"
            time.sleep(0.02)
        process.kill()
    finally:
        process.wait(timeout=60)
    killed = {i for _, batch in _batches(path) for i in batch}
    assert not any(r["kind"] == "finished" for r in FileCheckpoint(path, 100).records())

    assert main([*args, "--resume"]) == 1
    report = json.loads(capsys.readouterr().out)
    (entry,) = report["tables"]
    for kind, keys in expected.items():
        assert (sorted(entry[kind]), entry[f"{kind}_count"]) == (keys, len(keys))
    assert (entry["source_rows"], entry["target_rows"]) == (rows, rows - 1)

    records = FileCheckpoint(path, 100).records()
    plan = records[0]["plan"]
    ranges = len(plan["tables"][0]["ranges"])
    (resumed,) = [r["session"] for r in records if r["kind"] == "resumed"]
    after = [i for session, batch in _batches(path) if session == resumed for i in batch]
    assert killed and after
    assert not killed & set(after)  # no recorded range compared again
    assert sorted(killed | set(after)) == list(range(ranges)) and len(after) == len(set(after))
    assert records[-1]["kind"] == "finished" and records[-1]["session"] == resumed


def test_resume_needs_a_checkpoint_with_an_unfinished_pass(
    pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["validate", "--source-dsn", pair.source.dsn(), "--target-dsn", pair.target.dsn()]
    assert main([*base, "--resume"]) == 2
    assert capsys.readouterr().err == (
        "paymig: --resume: needs --checkpoint PATH (the file of the pass to resume)\n"
    )
    path = tmp_path / "none.jsonl"
    assert main([*base, "--resume", "--checkpoint", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"paymig: checkpoint {path}: does not exist or is empty; nothing to resume\n"
    )


def test_help_states_the_duration_at_the_configured_limits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--checkpoint" in text and "--resume" in text and "--estimate" in text
    assert (
        "Estimated duration of a full pass with config/prod.yaml: ~1,500,000,000 rows "
        "(validation.estimated_rows) at 4 workers per side x ~150,000 rows/s, no rate limit, "
        "statement_timeout 120 s is ~600,000 rows/s, so about 42 min."
    ) in text


def test_estimate_reads_the_source_table_sizes(
    pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _table(pair, 2_000)
    config = _config(tmp_path, rate_limit_rows_per_second=100)
    code = main(["validate", "--source-dsn", pair.source.dsn(), "--target-dsn", "host=unused",
                 "--table", f"public.{name}", "--config", str(config), "--estimate"])  # fmt: skip
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith("estimated full pass at 4 workers per side") and "100 rows/s" in out[0]
    assert out[1].startswith(f"  public.{name}: ~2,000 rows, 0.0 GB: ~20 s")
    assert out[2] == "  total: ~2,000 rows: ~20 s"
