"""The cost model against the simulator: every schedule the search considers is priced at exactly the DRAM bytes its
staged program moves, and at cycles within a documented tolerance of the simulated ones."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import models
from planner.errors import PlanError
from planner.fused import stage
from planner.graph import load_graph
from planner.inspect import totals
from planner.ops import lower
from planner.schedule.cost import price
from planner.schedule.search import baseline_schedule, candidates
from planner.stmt import LoweredGraph
from planner.testing import fusion_cases, machines, onnx_models
from simulator.machine import MachineConfig
from simulator.machine_file import load_machine
from simulator.timing import simulate

# The cycle estimate (planner.schedule.timeline) leaves out DRAM sharing among transfers in flight and most of the
# allocator's address-reuse waits. Measured on the small zoo models on edge-npu (512 KiB and 64 KiB) and
# inferentia2-core: the baseline's schedule and the residency schedules within 10%, schedules with fusion groups
# within 40% (a whole-model group on edge-npu is estimated 1.37x: its input waits behind all weights in the estimate's
# first-come-first-served DRAM, where the simulator shares the bandwidth). The dynamic programming over the whole
# scratchpad adds cnn's two groups covering the model on edge-npu, estimated 1.51x (6,604 against 4,367 cycles) for
# the same reason: an over-estimate, which only makes the search's 1% cycle bound turn groups down.
CYCLE_TOLERANCE = {"groups": 0.55, "no groups": 0.10}


@functools.cache
def lowered_small(name: str) -> LoweredGraph:
    return lower(load_graph(models.build(name, small=True)))


def simulated(lowered: LoweredGraph, machine: MachineConfig, limit: int = 5,
              ) -> list[tuple[str, int, int, int, int]]:
    """(kind, priced bytes, simulated bytes, priced cycles, simulated cycles) of the first `limit` candidates that stage
    (a candidate the allocator cannot place is skipped, as plan_fused skips it)."""
    found = []
    for schedule in candidates(lowered, machine)[:limit]:
        try:
            program = stage(lowered, machine, schedule)
        except PlanError:
            continue
        stats = simulate(program, machine).stats
        cost = price(lowered, machine, schedule)
        kind = "groups" if schedule.groups else "no groups"
        found.append((kind, cost.dram_bytes, stats.dram_bytes_read + stats.dram_bytes_written, cost.cycles,
                      stats.total_cycles))
    return found


@pytest.mark.parametrize("name", ["mlp", "cnn", pytest.param("resnet18", marks=pytest.mark.slow)])
@pytest.mark.parametrize("machine", ["edge-npu", "edge-npu:64KiB", "inferentia2-core"])
def test_priced_bytes_are_the_simulated_bytes_on_the_zoo(name: str, machine: str) -> None:
    preset, _, scratchpad = machine.partition(":")
    config = load_machine(preset, scratchpad=scratchpad or None)
    found = simulated(lowered_small(name), config)
    assert found
    for kind, priced_bytes, simulated_bytes, priced_cycles, simulated_cycles in found:
        assert priced_bytes == simulated_bytes
        assert abs(priced_cycles - simulated_cycles) <= CYCLE_TOLERANCE[kind] * simulated_cycles


@settings(max_examples=8)
@given(st.one_of(st.tuples(onnx_models(max_layers=4), machines()), fusion_cases()))
def test_priced_bytes_are_the_simulated_bytes_on_generated_graphs(case: tuple[object, MachineConfig]) -> None:
    model, machine = case
    try:
        lowered = lower(load_graph(model))  # type: ignore[arg-type]
    except PlanError:
        return
    for _, priced_bytes, simulated_bytes, _, _ in simulated(lowered, machine, limit=3):
        assert priced_bytes == simulated_bytes


def test_priced_bytes_are_the_simulated_bytes_on_the_line_buffered_basic_block() -> None:
    """The ResNet basic block (benchmarks/basic_block.py) on its tight machine: the search's line-buffered group is
    priced at the simulated bytes exactly, at compulsory traffic, and its cycles near the simulated ones."""
    import sys
    from pathlib import Path

    from planner import api
    from planner.groups import Group
    from planner.schedule.ir import Residency, Schedule, group_schedule

    root = Path(__file__).resolve().parents[3] / "benchmarks"
    sys.path.insert(0, str(root / "peers"))
    try:
        from workloads import basic_block
    finally:
        sys.path.remove(str(root / "peers"))
    machine = load_machine(str(root / "basic_block.yaml"))
    loaded = api.load(basic_block(), dtype="int8")
    lowered = loaded.lowered
    found = [s for s in candidates(lowered, machine) if any(g.overlap == "line-buffer" for g in s.groups)]
    assert found
    schedule = Schedule((group_schedule(lowered, Group(0, 4, (1, 64, 14, 56), True, lines=True)),), (),
                        Residency((), (machine.scratchpad.partition_bytes,) * len(lowered.statements)))
    compulsory = totals(lowered).compulsory_bytes
    staged = 0
    for each in (schedule, *found):
        try:
            program = stage(lowered, machine, each)
        except PlanError:  # a candidate the allocator cannot place (plan_fused stages the next)
            assert each is not schedule
            continue
        staged += 1
        stats = simulate(program, machine).stats
        cost = price(lowered, machine, each)
        assert cost.dram_bytes == stats.dram_bytes_read + stats.dram_bytes_written == compulsory
        assert abs(cost.cycles - stats.total_cycles) <= CYCLE_TOLERANCE["groups"] * stats.total_cycles
    assert staged >= 2


def test_single_slot_tiles_are_priced_without_prefetch() -> None:
    """cnn-small on a 16 KiB edge-npu: per-op staging takes one slot for two ops (fewer bytes than double
    buffering); the baseline's schedule is priced at the simulated bytes and within 10% of the simulated cycles."""
    lowered = lowered_small("cnn")
    machine = load_machine("edge-npu", scratchpad="16KiB")
    schedule = baseline_schedule(lowered, machine)
    assert schedule is not None and any(t.slots == 1 and not t.split for _, t in schedule.ops)
    stats = simulate(stage(lowered, machine, schedule), machine).stats
    cost = price(lowered, machine, schedule)
    assert cost.dram_bytes == stats.dram_bytes_read + stats.dram_bytes_written
    assert abs(cost.cycles - stats.total_cycles) <= CYCLE_TOLERANCE["no groups"] * stats.total_cycles
