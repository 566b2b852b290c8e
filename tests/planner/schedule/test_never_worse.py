"""Issue 10 item 7: under the default objective the fused plan moves at most the baseline's bytes and runs at most 1%
slower, every figure simulated; on the roomy inferentia2-core it stays at compulsory traffic."""

from __future__ import annotations

import functools

import pytest

import models
from planner.baseline import plan_baseline
from planner.bounds import bounds
from planner.fused import plan_fused
from planner.graph import load_graph
from planner.ops import lower
from planner.stmt import LoweredGraph
from simulator.machine_file import load_machine
from simulator.timing import simulate

SLOW = pytest.mark.slow


@functools.cache
def lowered_small(name: str) -> LoweredGraph:
    return lower(load_graph(models.build(name, small=True)))


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet18", "vit", pytest.param("mobilenet_v2", marks=SLOW),
                                  pytest.param("bert_base", marks=SLOW)])
@pytest.mark.parametrize("preset", ["edge-npu", "inferentia2-core"])
def test_fused_is_never_worse_than_the_baseline(name: str, preset: str) -> None:
    lowered, machine = lowered_small(name), load_machine(preset)
    fused = simulate(plan_fused(lowered, machine), machine).stats
    baseline = simulate(plan_baseline(lowered, machine), machine).stats
    assert fused.dram_bytes_read + fused.dram_bytes_written <= baseline.dram_bytes_read + baseline.dram_bytes_written
    assert fused.total_cycles <= 1.01 * baseline.total_cycles
    if preset == "inferentia2-core":
        assert fused.dram_bytes_read + fused.dram_bytes_written == bounds(lowered, machine).compulsory_bytes


@pytest.mark.parametrize("objective", ["latency", "edp"])
def test_other_objectives_plan_no_slower_than_the_baseline(objective: str) -> None:
    lowered, machine = lowered_small("cnn"), load_machine("edge-npu", scratchpad="64KiB")
    fused = simulate(plan_fused(lowered, machine, objective), machine).stats
    baseline = simulate(plan_baseline(lowered, machine), machine).stats
    assert fused.total_cycles <= 1.01 * baseline.total_cycles


def test_unknown_objective_is_refused() -> None:
    with pytest.raises(ValueError, match="objective 'speed'"):
        plan_fused(lowered_small("mlp"), load_machine("edge-npu"), "speed")


def test_the_cli_passes_the_objective_through(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from planner import api
    from planner.cli import main

    assert main(["compare", "cnn-small", "--machine", "edge-npu", "--scratchpad", "64KiB", "--objective", "latency",
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["fused"] == api.evaluate("cnn-small", "edge-npu", scratchpad="64KiB", objective="latency").to_dict()
    with pytest.raises(SystemExit) as exited:
        main(["compare", "cnn-small", "--machine", "edge-npu", "--objective", "speed"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--objective" in err and "speed" in err
