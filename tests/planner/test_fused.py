"""The fused strategy on every zoo model's small variant, on roomy, tight and barely large enough machines: legal,
numerically right, never more traffic than the baseline, never less than compulsory.

Every model runs on the tight machine (every structure under tiling), the small and middle ones on all three. The
rest (`SLOW_CASES`) repeat paths the default run covers at a cost of tens of seconds each on 2 cores, so they are
marked `slow` (`pytest -m slow tests/planner/test_fused.py` runs them): roomy resnet50 and mobilenet_v2 (everything
fits, as for roomy resnet18 and vgg16, but the group search takes 20 s), barely resnet50, mobilenet_v2 and vgg16
(thousands of tiles, 20 s to a minute and a half in the functional simulation).
"""

from __future__ import annotations

import dataclasses
import functools

import pytest

import models
from planner.baseline import plan_baseline
from planner.bounds import bounds
from planner.check import reference_values
from planner.check_bounds import split_error_bounds
from planner.errors import PlanError
from planner.fused import plan_fused
from planner.graph import load_graph
from planner.ops import lower
from planner.stmt import LoweredGraph
from simulator.functional import run_functional
from simulator.isa import Program
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


KINDS = ("roomy", "tight", "barely")
SLOW_CASES = {("resnet50", "roomy"), ("mobilenet_v2", "roomy"),
              ("resnet50", "barely"), ("mobilenet_v2", "barely"), ("vgg16", "barely")}


@functools.cache
def machine_of(name: str, kind: str) -> MachineConfig:
    """Cached: the barely machine takes a bisection of baseline plans to find."""
    tight = load_machine("edge-npu", scratchpad="64KiB")
    if kind == "roomy":
        return load_machine("inferentia2-core")
    return tight if kind == "tight" else barely_large_enough(lowered_small(name)[0], tight)


@functools.cache
def fused_program(name: str, kind: str) -> Program:
    """Cached: the legality test and the determinism test check the same plan."""
    return plan_fused(lowered_small(name)[0], machine_of(name, kind))


def cases(slow: set[tuple[str, str]]) -> list[object]:
    return [pytest.param(name, kind, marks=[pytest.mark.slow] if (name, kind) in slow else [])
            for name in sorted(models.ZOO) for kind in KINDS]


@pytest.mark.parametrize(("name", "kind"), cases(SLOW_CASES))
def test_fused_is_legal_right_and_between_compulsory_and_baseline(name: str, kind: str) -> None:
    lowered, model = lowered_small(name)
    machine = machine_of(name, kind)
    program = fused_program(name, kind)
    assert program.strategy == "fused"
    assert verify(program, machine) == []
    dram, reference = reference_values(lowered.graph, model)
    # a split reduction sums in another order than onnxruntime: `scratchplan simulate --check`'s own allowance
    run_functional(program, machine, dram, reference=reference,
                   error_bounds=split_error_bounds(program, lowered.graph, reference))

    fused = simulate(program, machine).stats
    baseline = simulate(plan_baseline(lowered, machine), machine).stats
    limits = bounds(lowered, machine)
    traffic = fused.dram_bytes_read + fused.dram_bytes_written
    assert limits.compulsory_bytes <= traffic <= baseline.dram_bytes_read + baseline.dram_bytes_written
    assert limits.roofline_cycles <= fused.total_cycles
    assert fused.peak_scratchpad_bytes <= machine.scratchpad.capacity_bytes


# Planning again costs as much as the first plan (20 s for roomy resnet50): the default run checks determinism on
# the tight machine, where the search has the most choices; the others with `-m slow` (and every hypothesis case
# of tests/test_properties.py plans twice from scratch).
@pytest.mark.parametrize(("name", "kind"), cases({(n, k) for n in models.ZOO for k in KINDS if k != "tight"}))
def test_fused_is_deterministic(name: str, kind: str) -> None:
    again = plan_fused(lowered_small(name)[0], machine_of(name, kind))
    assert program_to_json(again) == program_to_json(fused_program(name, kind))


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
