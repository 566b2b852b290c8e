"""`scratchplan plan --explain`: the chosen schedule as a table, every op in exactly one row, and the same plan file as
without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner import api
from planner.cli import main
from planner.explain import explain_rows


def test_explain_prints_the_staged_schedule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain, explained = tmp_path / "plain.json", tmp_path / "explained.json"
    argv = ["plan", "cnn-small", "--machine", "edge-npu", "--scratchpad", "16KiB"]
    assert main([*argv, "-o", str(plain)]) == 0
    capsys.readouterr()
    assert main([*argv, "-o", str(explained), "--explain"]) == 0
    out = capsys.readouterr().out
    assert explained.read_text() == plain.read_text()  # explaining plans nothing else

    model = api.load("cnn-small")
    program, schedule = api.fused_schedule(model, api.machine("edge-npu", scratchpad="16KiB"))
    assert schedule is not None and program.strategy == "fused"
    rows = explain_rows(model.lowered, schedule)
    assert sum(int(row[1]) for row in rows) == len(model.lowered.statements)  # every op once
    assert [row[4] for row in rows].count("group") == len(schedule.groups) > 0
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["#", "ops", "first"] and len(lines) >= 2 + len(rows) + 1
    for row, line in zip(rows, lines[2:], strict=False):
        assert line.split()[:4] == list(row[:4])
    assert f"{len(schedule.groups)} groups, {len(schedule.ops)} ops alone" in out


def test_explain_of_the_baseline_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "plan.json"
    assert main(["plan", "mlp-small", "--machine", "edge-npu", "--strategy", "baseline", "--explain",
                 "-o", str(target)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "--explain" in err and "Traceback" not in err
    assert not target.exists()
