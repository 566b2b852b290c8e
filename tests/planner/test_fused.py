"""The fused strategy on every zoo model's small variant, on roomy, tight and barely large enough machines: legal,
numerically right, never more traffic than the baseline, never less than compulsory."""

from __future__ import annotations

import dataclasses
import functools

import pytest

import models
from planner.baseline import plan_baseline
from planner.bounds import bounds
from planner.check import reference_values
from planner.errors import PlanError
from planner.fused import plan_fused
from planner.graph import load_graph
from planner.ops import lower
from planner.stmt import LoweredGraph
from simulator.functional import run_functional
from simulator.machine import MachineConfig
from simulator.machine_file import load_machine
from simulator.plan_file import program_to_json
from simulator.timing import simulate
from simulator.verify import verify


@functools.cache
def lowered_small(name: str) -> tuple[LoweredGraph, object]:
    model = models.build(name, small=True)
    return lower(load_graph(model)), model


def barely_large_enough(lowered: LoweredGraph, machine: MachineConfig) -> MachineConfig:
    """The smallest scratchpad (to 1/16 of a partition's worth, and at least a quarter of `machine`'s) on which the
    baseline still plans. The floor: with reduction splits the baseline plans on any scratchpad that holds one
    minimal tile, and a plan of one-element tiles tests nothing more but takes minutes."""
    partitions = machine.scratchpad.partitions

    def with_capacity(capacity: int) -> MachineConfig:
        return dataclasses.replace(machine, scratchpad=dataclasses.replace(machine.scratchpad,
                                                                           capacity_bytes=capacity))

    low, high = max(partitions * 64, machine.scratchpad.capacity_bytes // 4), machine.scratchpad.capacity_bytes
    while high - low > partitions * 64:
        middle = (low + high) // 2 // partitions * partitions
        try:
            plan_baseline(lowered, with_capacity(middle))
            high = middle
        except PlanError:
            low = middle
    return with_capacity(high)


def machines(name: str) -> dict[str, MachineConfig]:
    lowered, _ = lowered_small(name)
    tight = load_machine("edge-npu", scratchpad="64KiB")
    return {"roomy": load_machine("inferentia2-core"), "tight": tight, "barely": barely_large_enough(lowered, tight)}


@pytest.mark.parametrize("kind", ["roomy", "tight", "barely"])
@pytest.mark.parametrize("name", sorted(models.ZOO))
def test_fused_is_legal_right_and_between_compulsory_and_baseline(name: str, kind: str) -> None:
    lowered, model = lowered_small(name)
    machine = machines(name)[kind]
    program = plan_fused(lowered, machine)
    assert program.strategy == "fused"
    assert verify(program, machine) == []
    dram, reference = reference_values(lowered.graph, model)
    run_functional(program, machine, dram, reference=reference)

    fused = simulate(program, machine).stats
    baseline = simulate(plan_baseline(lowered, machine), machine).stats
    limits = bounds(lowered, machine)
    traffic = fused.dram_bytes_read + fused.dram_bytes_written
    assert limits.compulsory_bytes <= traffic <= baseline.dram_bytes_read + baseline.dram_bytes_written
    assert limits.roofline_cycles <= fused.total_cycles
    assert fused.peak_scratchpad_bytes <= machine.scratchpad.capacity_bytes
    assert program_to_json(plan_fused(lowered, machine)) == program_to_json(program)  # deterministic


def test_fused_reaches_compulsory_traffic_when_everything_fits() -> None:
    lowered, _ = lowered_small("resnet18")
    machine = load_machine("inferentia2-core")
    stats = simulate(plan_fused(lowered, machine), machine).stats
    assert stats.dram_bytes_read + stats.dram_bytes_written == bounds(lowered, machine).compulsory_bytes


def test_compare_prints_both_strategies(capsys) -> None:
    import json

    from planner.cli import main

    assert main(["compare", "resnet18-small", "--machine", "edge-npu", "--scratchpad", "64KiB", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"baseline", "fused"}
    traffic = {name: r["dram_bytes_read"] + r["dram_bytes_written"] for name, r in report.items()}
    assert report["fused"]["compulsory_bytes"] <= traffic["fused"] < traffic["baseline"]
    assert main(["compare", "resnet18-small", "--machine", "edge-npu", "--scratchpad", "64KiB"]) == 0
    table = capsys.readouterr().out
    assert "x compulsory" in table and "reduction: DRAM traffic" in table
