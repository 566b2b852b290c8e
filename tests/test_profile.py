"""scratchplan profile: layers' cycles add up to the total, bounds are what the figures say, two models compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner import api
from planner.cli import main
from planner.profile import layer_ops, profile

MACHINES = ["edge-npu", "inferentia2-core"]


@pytest.mark.parametrize("model", ["cnn-small", "resnet18-small"])
def test_layer_cycles_and_bytes_add_up(model: str) -> None:
    document = profile(model, MACHINES)
    assert [m["name"] for m in document["machines"]] == MACHINES
    for entry in document["machines"]:
        report = api.evaluate(model, entry["name"])
        assert entry["total_cycles"] == report.cycles
        assert entry["dram_bytes"] == report.dram_bytes
        assert sum(layer["cycles"] for layer in entry["layers"]) == entry["total_cycles"]
        assert sum(layer["dram_bytes"] for layer in entry["layers"]) == entry["dram_bytes"]
        for layer in entry["layers"]:
            assert layer["cycles"] >= 0 and layer["span_cycles"] >= 0
            expected = "compute" if layer["compute_cycles"] >= layer["memory_cycles"] else "memory"
            assert layer["bound"] == expected


def test_bounds_follow_the_machine() -> None:
    """A memory-starved machine makes the big layers memory-bound; a fast one leaves them compute-bound."""
    slow = api.machine("edge-npu")
    import dataclasses

    starved = dataclasses.replace(slow, dram=dataclasses.replace(slow.dram, bandwidth_bytes_per_cycle=0.25))
    fast = dataclasses.replace(slow, dram=dataclasses.replace(slow.dram, bandwidth_bytes_per_cycle=4096.0))
    starved_bounds = {layer["bound"] for layer in profile("cnn-small", [starved])["machines"][0]["layers"]
                      if layer["dram_bytes"]}
    fast_bounds = {layer["bound"] for layer in profile("cnn-small", [fast])["machines"][0]["layers"]
                   if layer["macs"]}
    assert starved_bounds == {"memory"} and fast_bounds == {"compute"}


def test_fused_groups_are_one_layer() -> None:
    machine = api.machine("edge-npu", scratchpad="32KiB")
    program = api.plan("cnn-small", machine, strategy="fused")
    groups = {b.name.split(".")[0] for b in program.buffers if b.name.startswith("group")}
    grouped = [ops for ops in layer_ops(program) if len(ops) > 1]
    assert len(grouped) == len(groups) >= 1, "each fusion group of the plan is one layer"
    baseline = api.plan("cnn-small", machine, strategy="baseline")
    assert all(len(ops) == 1 for ops in layer_ops(baseline))


def test_two_models_on_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    picture = tmp_path / "profile.png"
    assert main(["profile", "cnn-small", "mlp-small", "--machines", *MACHINES, "--json", "--plot", str(picture)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [d["model"] for d in document["models"]] == ["cnn", "mlp"]
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["profile", "cnn-small", "mlp-small", "--machines", *MACHINES]) == 0
    text = capsys.readouterr().out
    assert "second/first" in text and "edge-npu" in text


def test_an_unknown_machine_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "cnn-small", "--machines", "edge-npu", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err
