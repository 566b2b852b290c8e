"""Fusion groups (planner.groups, planner.staging.group): halos pulled through a group's tiles, recomputed or cached;
staged groups legal, numerically right, and keeping their intermediates off DRAM; choose_groups within its budget.

Hand-picked groups are staged with no resident tensors through planner.fused.stage; the models are tiny chains
built with onnx.helper (8 channels, 16x16) so each check runs against onnxruntime in well under a second.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import models
from planner import fused
from planner.check import reference_values
from planner.fused import plan_fused
from planner.graph import load_graph
from planner.group_choice import choose_groups, cut_points
from planner.groups import (
    Group,
    Step,
    internal_tensors,
    recompute_ratio,
    sink_tensor,
    tiles,
)
from planner.ops import lower
from planner.schedule.ir import Residency
from planner.schedule.search import candidates, schedule_of
from planner.staging.alloc import buffer_bytes
from planner.stmt import LoweredGraph
from planner.working_set import working_set
from simulator.functional import run_functional
from simulator.isa import Compute, DmaLoad, DmaStore, Program
from simulator.machine import MachineConfig
from simulator.machine_file import load_machine
from simulator.timing import simulate
from simulator.verify import verify

FLOAT = TensorProto.FLOAT
C, H, W = 8, 16, 16
ROWS = 4  # output rows per tile of the row-tiled groups


# -- models ------------------------------------------------------------------------------------------------------------

def make_model(nodes: list[onnx.NodeProto], inputs: dict[str, list[int]], outputs: dict[str, list[int]],
               weights: Sequence[str] = (), channels: int = C) -> onnx.ModelProto:
    """A model of `nodes`; each name in `weights` is a seeded 3x3 conv kernel of `channels` -> `channels`."""
    rng = np.random.default_rng(0)
    initializers = [numpy_helper.from_array(
        (rng.standard_normal((channels, channels, 3, 3)) / math.sqrt(9 * channels)).astype(np.float32), name)
        for name in weights]
    graph = helper.make_graph(nodes, "groups", [helper.make_tensor_value_info(n, FLOAT, s) for n, s in inputs.items()],
                              [helper.make_tensor_value_info(n, FLOAT, s) for n, s in outputs.items()], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def conv(source: str, weight: str, target: str) -> onnx.NodeProto:
    return helper.make_node("Conv", [source, weight], [target], name=target, pads=[1, 1, 1, 1])


def unary(op_type: str, source: str, target: str) -> onnx.NodeProto:
    return helper.make_node(op_type, [source], [target], name=target)


@functools.cache
def chain(batch: int = 1) -> tuple[LoweredGraph, onnx.ModelProto]:
    """x -> conv3x3 (pad 1) -> relu -> conv3x3 (pad 1) -> y, all NCHW of C channels and HxW."""
    shape = [batch, C, H, W]
    model = make_model([conv("x", "w1", "a"), unary("Relu", "a", "b"), conv("b", "w2", "y")],
                       {"x": shape}, {"y": shape}, weights=("w1", "w2"))
    return lower(load_graph(model)), model


@functools.cache
def residual() -> tuple[LoweredGraph, onnx.ModelProto]:
    """A stem (relu), then a residual block: conv -> relu -> conv -> add with the block input -> relu; then a tail
    (sigmoid), so that the block's input and output are both activations produced and read inside the graph."""
    shape = [1, C, H, W]
    model = make_model([unary("Relu", "x", "s"), conv("s", "w1", "c1"), unary("Relu", "c1", "r1"),
                        conv("r1", "w2", "c2"), helper.make_node("Add", ["c2", "s"], ["sum"], name="sum"),
                        unary("Relu", "sum", "out"), unary("Sigmoid", "out", "y")],
                       {"x": shape}, {"y": shape}, weights=("w1", "w2"))
    return lower(load_graph(model)), model


@functools.cache
def resnet18_small() -> tuple[LoweredGraph, onnx.ModelProto]:
    model = models.build("resnet18", small=True)
    return lower(load_graph(model)), model


# -- helpers -----------------------------------------------------------------------------------------------------------

def tight() -> MachineConfig:
    return load_machine("edge-npu", scratchpad="64KiB")


MACHINES: dict[str, Callable[[], MachineConfig]] = {"tight": tight, "roomy": lambda: load_machine("inferentia2-core")}


def no_residency(lowered: LoweredGraph, machine: MachineConfig) -> Residency:
    capacity = machine.scratchpad.partition_bytes
    return Residency((), tuple([capacity] * len(lowered.statements)))


def stage(lowered: LoweredGraph, machine: MachineConfig, *groups: Group) -> Program:
    schedule = schedule_of(lowered, machine, groups, no_residency(lowered, machine))
    assert schedule is not None
    return fused.stage(lowered, machine, schedule)


def partition_bytes_of(lowered: LoweredGraph, machine: MachineConfig) -> Callable[[str, tuple[int, ...]], int]:
    def partition_bytes(tensor: str, shape: tuple[int, ...]) -> int:
        return buffer_bytes(shape, lowered.graph.elem_bytes(tensor), machine.scratchpad)

    return partition_bytes


def check_legal_and_right(program: Program, machine: MachineConfig, model: onnx.ModelProto,
                          lowered: LoweredGraph) -> None:
    assert verify(program, machine) == []
    dram, reference = reference_values(lowered.graph, model)
    run_functional(program, machine, dram, reference=reference)


def dram_tensors(program: Program) -> set[str]:
    """Tensors some DMA moves between DRAM and the scratchpad."""
    return {i.tensor for i in program.instructions if isinstance(i, (DmaLoad, DmaStore))}


def intermediates_in_dram(program: Program) -> set[str]:
    roles = {tensor.name: tensor.role for tensor in program.tensors}
    return {t for t in dram_tensors(program) if roles[t] == "intermediate"}


def total_macs(program: Program) -> int:
    return sum(i.macs for i in program.instructions if isinstance(i, Compute))


def rows_of(step: Step) -> tuple[int, int]:
    return step.box.start[2], step.box.stop[2]


def row_group(cache: bool) -> Group:
    lowered, _ = chain()
    return Group(0, len(lowered.statements) - 1, (1, C, ROWS, W), cache)


# -- 1. rows: recompute vs cache ---------------------------------------------------------------------------------------

def test_chain_lowers_to_three_statements_cut_everywhere() -> None:
    lowered, _ = chain()
    assert [stmt.op_type for stmt in lowered.statements] == ["Conv", "Relu", "Conv"]
    assert cut_points(lowered) == [1, 2, 3]
    assert internal_tensors(lowered, row_group(False)) == {"a", "b"}


def test_recompute_tile_pulls_a_one_row_halo_per_conv() -> None:
    lowered, _ = chain()
    group = row_group(cache=False)
    steps_of = tiles(lowered, group)
    assert len(steps_of) == H // ROWS
    middle = steps_of[1]
    assert [step.index for step in middle] == [0, 1, 2]
    conv1, relu, conv2 = middle
    # The tile's 4 output rows 4..8 need rows 3..9 of relu (and so of the first conv): a halo of one row each side.
    assert rows_of(conv2) == (ROWS, 2 * ROWS)
    assert conv2.block["y"] == (ROWS, 2 * ROWS)
    assert rows_of(conv1) == rows_of(relu) == (ROWS - 1, 2 * ROWS + 1)
    assert conv1.block["y"] == (ROWS - 1, 2 * ROWS + 1)
    assert conv1.box.shape == (1, C, ROWS + 2, W)
    # ... which reads rows 2..10 of the group's input, and reads the first conv's rows from the tile's own box.
    assert conv1.reads["x"].start[2] == ROWS - 2 and conv1.reads["x"].stop[2] == 2 * ROWS + 2
    assert conv2.reads["b"] == relu.box
    # The border tiles have a halo on one side only: the padding is the other.
    assert rows_of(steps_of[0][0]) == (0, ROWS + 1)
    assert rows_of(steps_of[-1][0]) == (H - ROWS - 1, H)


def test_recompute_ratio_counts_the_halo_rows() -> None:
    lowered, _ = chain()
    group = row_group(cache=False)
    rows_computed = sum(rows_of(steps[0])[1] - rows_of(steps[0])[0] for steps in tiles(lowered, group))
    assert rows_computed == H + 2 * (H // ROWS - 1)  # every inner tile border is computed twice
    work = [stmt.macs + stmt.elem_ops + 1 for stmt in lowered.statements]  # as recompute_ratio weighs them
    expected = (work[0] * rows_computed / H + work[1] * rows_computed / H + work[2]) / sum(work)
    assert recompute_ratio(lowered, group) == pytest.approx(expected)
    assert recompute_ratio(lowered, group) > 1.0
    assert recompute_ratio(lowered, Group(0, 2, (1, C, H, W), False)) == pytest.approx(1.0)  # one tile: no halo


def test_cache_tiles_partition_every_output_into_new_rows() -> None:
    lowered, _ = chain()
    steps_of = tiles(lowered, row_group(cache=True))
    assert len(steps_of) == H // ROWS
    for index in range(len(lowered.statements)):
        spans = sorted(rows_of(step) for steps in steps_of for step in steps if step.index == index)
        assert sum(stop - start for start, stop in spans) == H
        assert spans[0][0] == 0 and spans[-1][1] == H
        assert all(previous[1] == current[0] for previous, current in itertools.pairwise(spans))
        for steps in steps_of:  # every step computes whole images, channels and columns; only rows are split
            for step in steps:
                assert step.box.shape[:2] == (1, C) and step.box.shape[3] == W
    # The first conv runs ahead of the sink by the halo: tile 0 computes rows 0..5, the last tile only rows 13..16.
    first_conv = [rows_of(steps[0]) for steps in steps_of]
    assert first_conv == [(0, ROWS + 1), (ROWS + 1, 2 * ROWS + 1), (2 * ROWS + 1, 3 * ROWS + 1), (3 * ROWS + 1, H)]
    assert [rows_of(steps[-1]) for steps in steps_of] == [(r, r + ROWS) for r in range(0, H, ROWS)]


@pytest.mark.parametrize("kind", sorted(MACHINES))
def test_row_groups_stage_legally_and_recompute_costs_macs(kind: str) -> None:
    lowered, model = chain()
    machine = MACHINES[kind]()
    programs = {cache: stage(lowered, machine, row_group(cache)) for cache in (False, True)}
    for program in programs.values():
        check_legal_and_right(program, machine, model, lowered)
        assert intermediates_in_dram(program) == set()
        assert {i.tensor for i in program.instructions if isinstance(i, DmaStore)} == {"y"}
        assert {b.name.split(".")[0] for b in program.buffers} == {"group0"}
        stats = simulate(program, machine).stats
        assert stats.dram_bytes_written == math.prod(lowered.graph.tensors["y"].shape) * 4
        assert stats.peak_scratchpad_bytes <= machine.scratchpad.capacity_bytes
    # Caching computes every MAC once; recomputing does the first conv's halo rows again (22 rows for 16).
    assert total_macs(programs[True]) == lowered.macs
    conv1, _, conv2 = lowered.statements
    rows_computed = H + 2 * (H // ROWS - 1)
    assert total_macs(programs[False]) == conv1.macs * rows_computed // H + conv2.macs
    assert total_macs(programs[False]) > total_macs(programs[True])
    # Caching keeps the intermediates whole: one buffer each for the group's life, not one per tile.
    names = {b.name for b in programs[True].buffers}
    assert {"group0.a", "group0.b"} <= names
    assert not any(name.endswith((".a", ".b")) and ".tile" in name for name in names)


# -- 2. batch ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("images", [1, 2])
def test_batch_group_recomputes_nothing(images: int) -> None:
    batch = 4
    lowered, model = chain(batch)
    machine = load_machine("inferentia2-core")
    group = Group(0, 2, (images, C, H, W), False)
    steps_of = tiles(lowered, group)
    assert len(steps_of) == batch // images
    for tile, steps in enumerate(steps_of):
        for step in steps:  # every step computes its own images, whole: no halo across the batch axis
            assert step.box.start == (tile * images, 0, 0, 0)
            assert step.box.stop == (tile * images + images, C, H, W)
    assert recompute_ratio(lowered, group) == pytest.approx(1.0)

    program = stage(lowered, machine, group)
    check_legal_and_right(program, machine, model, lowered)
    assert total_macs(program) == lowered.macs
    assert intermediates_in_dram(program) == set()
    stores = [i for i in program.instructions if isinstance(i, DmaStore)]
    assert {i.tensor for i in stores} == {"y"} and len(stores) == batch // images


# -- 3. a residual block -----------------------------------------------------------------------------------------------

def test_residual_block_is_cut_at_its_boundary_only() -> None:
    lowered, _ = residual()
    ops = [stmt.op_type for stmt in lowered.statements]
    assert ops == ["Relu", "Conv", "Relu", "Conv", "Add", "Relu", "Sigmoid"]
    cuts = cut_points(lowered)
    # The block runs from statement 1 (its first conv) to 5 (its last relu): cuts before and after it...
    assert {1, 6, 7} <= set(cuts)
    # ...and none where the skip connection is live, from the first conv to the add.
    assert not {2, 3, 4} & set(cuts)
    assert cuts == sorted(cuts)


@pytest.mark.parametrize(("rows", "cache"), [(ROWS, False), (ROWS, True), (H, False), (1, True)])
def test_residual_block_grouped_whole_stages_legally(rows: int, cache: bool) -> None:
    lowered, model = residual()
    machine = load_machine("inferentia2-core")
    group = Group(1, 5, (1, C, rows, W), cache)
    assert internal_tensors(lowered, group) == {"c1", "r1", "c2", "sum"}
    steps_of = tiles(lowered, group)
    assert len(steps_of) == -(-H // rows)
    # The add reads the block input `s` (loaded from DRAM) over the tile's rows, the first conv over the halo.
    for steps in steps_of:
        add = next(step for step in steps if step.index == 4)
        assert "s" in add.reads

    program = stage(lowered, machine, group)
    check_legal_and_right(program, machine, model, lowered)
    assert dram_tensors(program) & internal_tensors(lowered, group) == set()
    if cache:
        assert total_macs(program) == lowered.macs
    elif rows < H:
        assert total_macs(program) > lowered.macs


# -- 4. choose_groups and plan_fused on a zoo model --------------------------------------------------------------------

def check_groups(lowered: LoweredGraph, groups: Sequence[Group], budget: int,
                 partition_bytes: Callable[[str, tuple[int, ...]], int]) -> None:
    """Disjoint, in order, of two statements or more, between cut points, and within the budget."""
    boundaries = {0, *cut_points(lowered), len(lowered.statements)}
    previous = -1
    for group in groups:
        assert previous < group.first < group.last < len(lowered.statements)
        assert group.first in boundaries and group.last + 1 in boundaries
        assert working_set(lowered, group, partition_bytes) <= budget
        tiles(lowered, group)  # a cached group's tiles must be monotone (NotCacheable otherwise)
        previous = group.last


@pytest.mark.parametrize("scratchpad", ["64KiB", "256KiB"])
def test_chosen_groups_fit_their_budget_and_keep_intermediates_on_chip(scratchpad: str) -> None:
    lowered, model = resnet18_small()
    machine = load_machine("edge-npu", scratchpad=scratchpad)
    partition_bytes = partition_bytes_of(lowered, machine)
    budget = machine.scratchpad.partition_bytes // 2
    groups = choose_groups(lowered, budget, partition_bytes)
    assert groups
    check_groups(lowered, groups, budget, partition_bytes)

    program = stage(lowered, machine, *groups)
    check_legal_and_right(program, machine, model, lowered)
    internal = {t for group in groups for t in internal_tensors(lowered, group)}
    assert internal and dram_tensors(program) & internal == set()


def test_plan_fused_with_groups_moves_no_group_intermediate() -> None:
    lowered, model = resnet18_small()
    used = 0
    for scratchpad in ("64KiB", "128KiB", "256KiB"):
        machine = load_machine("edge-npu", scratchpad=scratchpad)
        program = plan_fused(lowered, machine)
        tags = {int(b.name.split(".")[0].removeprefix("group")) for b in program.buffers if b.name.startswith("group")}
        if not tags:
            continue
        used += 1
        check_legal_and_right(program, machine, model, lowered)
        # The groups the plan staged: those of one of the searched schedules whose first statements match.
        choices = [[g.group for g in schedule.groups] for schedule in candidates(lowered, machine)]
        matching = [groups for groups in choices if {group.first for group in groups} == tags]
        assert matching
        moved = dram_tensors(program)
        assert any(not moved & {t for group in groups for t in internal_tensors(lowered, group)}
                   for groups in matching)
    assert used  # at least one of these machines plans with groups, so the check above ran


# -- bugs --------------------------------------------------------------------------------------------------------------

def test_model_output_read_by_a_later_op_is_stored() -> None:
    shape = [1, C, H, W]
    model = make_model([unary("Relu", "x", "a"), unary("Sigmoid", "a", "y")], {"x": shape}, {"a": shape, "y": shape})
    lowered = lower(load_graph(model))
    assert 1 not in cut_points(lowered)  # `a`, a model output, never ends a group: it must be stored whole
    for machine in (tight(), load_machine("inferentia2-core")):
        groups = choose_groups(lowered, machine.scratchpad.partition_bytes // 2, partition_bytes_of(lowered, machine))
        assert verify(stage(lowered, machine, *groups), machine) == []
        assert verify(plan_fused(lowered, machine), machine) == []


def test_groups_never_start_inside_a_concat() -> None:
    shape = [1, C, H, W]
    model = make_model([unary("Relu", "x", "a"), helper.make_node("Concat", ["a", "x"], ["cat"], name="cat", axis=1),
                        unary("Sigmoid", "cat", "y")], {"x": shape}, {"y": [1, 2 * C, H, W]})
    lowered = lower(load_graph(model))
    assert [sink_tensor(stmt) for stmt in lowered.statements] == ["a", "cat", "cat", "y"]  # the Concat is 2 pieces
    machine = load_machine("inferentia2-core")
    partition_bytes = partition_bytes_of(lowered, machine)
    chosen = {tuple(choose_groups(lowered, budget, partition_bytes)) for budget in range(64, 2049, 32)}
    assert len(chosen) > 1  # the budgets span several choices
    for groups in chosen:
        assert verify(stage(lowered, machine, *groups), machine) == [], groups


# -- 5. line buffers ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("graph", "rows"), [("chain", ROWS), ("chain", 1), ("residual", ROWS), ("residual", 1),
                                             ("residual", 3)])
def test_line_buffered_groups_load_each_input_row_once_and_compute_each_row_once(graph: str, rows: int) -> None:
    """A line-buffered group (planner.staging.lines) is legal and right, loads every input element once, computes
    every MAC once, and holds each tensor in windows of the tile's rows, never whole."""
    lowered, model = chain() if graph == "chain" else residual()
    first, last = (0, 2) if graph == "chain" else (1, 5)
    machine = load_machine("inferentia2-core")
    group = Group(first, last, (1, C, rows, W), True, lines=True)
    program = stage(lowered, machine, group)
    check_legal_and_right(program, machine, model, lowered)
    assert total_macs(program) == lowered.macs
    source = lowered.statements[first].reads[0].tensor
    loaded = sum(i.box.numel for i in program.instructions if isinstance(i, DmaLoad) and i.tensor == source)
    assert loaded == math.prod(lowered.graph.tensors[source].shape)
    assert dram_tensors(program) & internal_tensors(lowered, group) == set()
    windows = [b for b in program.buffers if ".tile" in b.name and not b.name.endswith(".handed")]
    assert windows and all(b.shape[2] < H for b in windows)
    copies = [i for i in program.instructions if isinstance(i, Compute) and i.op_type == "Identity"]
    assert copies  # the shared rows move on chip
