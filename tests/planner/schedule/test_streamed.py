"""Groups whose weights stream in output-channel blocks: a Linear whose weight does not fit the scratchpad whole still
fuses with its bias Add and GELU, each tile of the sink's features loading its block of the weight, the input held
once for all of them."""

from __future__ import annotations

import functools

import onnx
import pytest

import models
from models.builder import GraphBuilder
from models.layers import conv, relu
from models.transformer import gelu, linear
from planner.errors import PlanError
from planner.fused import stage
from planner.graph import load_graph
from planner.groups import Group, carried_inputs, constant_boxes
from planner.ops import lower
from planner.schedule.boundaries import channel_tiles
from planner.schedule.cost import price
from planner.schedule.ir import Residency, Schedule, group_schedule
from planner.schedule.search import candidates, search
from planner.stmt import LoweredGraph
from planner.testing import check_plan, check_program
from planner.testing.invariants import traffic_bytes
from simulator.machine_file import load_machine
from simulator.timing import simulate
from tests.planner.schedule.test_cost import CYCLE_TOLERANCE

SEQ, HIDDEN, OUT = 32, 256, 512  # the weight is 256 KiB in bf16


def linear_gelu() -> onnx.ModelProto:
    b = GraphBuilder("linear_gelu", seed=0)
    x = b.input("input", (1, SEQ, HIDDEN))
    y = gelu(b, linear(b, x, "fc", in_features=HIDDEN, out_features=OUT), "gelu")
    b.output(y, (1, SEQ, OUT))
    return b.build()


@functools.cache
def lowered_block() -> LoweredGraph:
    return lower(load_graph(linear_gelu(), dtype="bf16"))


def test_channel_tiles_cut_channels_or_features() -> None:
    assert channel_tiles((1, 8, 4, 4))[0] == (1, 4, 4, 4)
    assert channel_tiles((1, 16, 6))[0] == (1, 16, 3)
    assert channel_tiles((2, 8, 4)) == [] and channel_tiles((1, 1, 3, 3)) == []


def test_a_streamed_group_holds_what_every_tile_reads_alike() -> None:
    lowered = lowered_block()
    last = len(lowered.statements) - 1
    held = constant_boxes(lowered, Group(0, last, (1, SEQ, OUT // 4), False, streamed=True))
    assert set(held) == {"input", "gelu.sqrt2", "gelu.one", "gelu.half"}  # not the weight, nor the bias
    resident = constant_boxes(lowered, Group(0, last, (1, SEQ // 4, OUT), False))
    assert "fc.weight" in resident and "input" not in resident


@pytest.mark.parametrize("kib", [64, 128])
def test_a_linear_too_large_to_hold_fuses_with_streamed_weights(kib: int) -> None:
    model, lowered = linear_gelu(), lowered_block()
    machine = load_machine("edge-npu", scratchpad=f"{kib}KiB")
    fused = check_plan(model, machine, "fused", "bf16")  # legal, and the numbers are onnxruntime's
    baseline = check_plan(model, machine, "baseline", "bf16")
    assert fused is not None and baseline is not None
    compulsory = sum(lowered.graph.tensors[t].numel * lowered.graph.elem_bytes(t)
                     for t in ("input", "fc.weight", "fc.bias", lowered.graph.outputs[0]))
    fused_bytes = traffic_bytes(simulate(fused, machine).stats)
    assert fused_bytes <= compulsory * 1.01 < traffic_bytes(simulate(baseline, machine).stats)
    # at 128 KiB keeping each intermediate resident between the ops alone ties on bytes and wins on cycles
    ranked = [schedule for schedule, _ in search(lowered, machine)]
    streamed = [schedule for schedule in ranked if any(unit.weights == "streamed" for unit in schedule.groups)]
    assert streamed and (kib > 64 or streamed[0] is ranked[0])
    stats = simulate(stage(lowered, machine, streamed[0]), machine).stats
    assert price(lowered, machine, streamed[0]).dram_bytes == stats.dram_bytes_read + stats.dram_bytes_written
    assert stats.dram_bytes_read + stats.dram_bytes_written <= compulsory * 1.01


@pytest.mark.parametrize("name", ["resnet18", pytest.param("mobilenet_v2", marks=pytest.mark.slow)])
def test_streamed_candidates_of_the_small_zoo_are_priced_as_staged(name: str) -> None:
    """At 16 KiB the small zoo's convs do not hold their weights: every candidate with a streamed group that stages is
    priced at its simulated bytes, and its cycles within the groups' tolerance (planner.schedule.cost)."""
    lowered = lower(load_graph(models.build(name, small=True)))
    machine = load_machine("edge-npu", scratchpad="16KiB")
    staged = 0
    for schedule in candidates(lowered, machine):
        if not any(unit.weights == "streamed" for unit in schedule.groups):
            continue
        try:
            program = stage(lowered, machine, schedule)
        except PlanError:  # the allocator cannot place it (plan_fused stages the next)
            continue
        staged += 1
        stats = simulate(program, machine).stats
        cost = price(lowered, machine, schedule)
        assert cost.dram_bytes == stats.dram_bytes_read + stats.dram_bytes_written
        assert abs(cost.cycles - stats.total_cycles) <= CYCLE_TOLERANCE["groups"] * stats.total_cycles
    assert staged


def conv_relu() -> onnx.ModelProto:
    """A 3x3 conv whose input (128 KiB) and weights (144 KiB) both outgrow a 128 KiB edge-npu, then its ReLU."""
    b = GraphBuilder("conv_relu", seed=0)
    x = b.input("input", (1, 64, 32, 32))
    y = relu(b, conv(b, x, "conv", in_channels=64, out_channels=128, kernel=3, padding=1), "relu")
    b.output(y, (1, 128, 32, 32))
    return b.build()


def test_grid_tiles_carry_the_weight_block_down_their_channel_block() -> None:
    """A streamed group cut in channels and rows at once: each tile reads its rows of the input and its channel block
    of the weights; the block is kept for the next row tile of the same channels and loaded again at the next block.
    The cost model prices it at the simulated bytes, and the program is legal and right."""
    model = conv_relu()
    lowered = lower(load_graph(model, dtype="bf16"))
    machine = load_machine("edge-npu", scratchpad="128KiB")
    group = Group(0, 1, (1, 32, 6, 32), False, slots=1, streamed=True)
    rows, blocks = -(-32 // 6), 128 // 32
    carried = carried_inputs(lowered, group)
    assert len(carried) == rows * blocks
    assert [("conv.weight" in each) for each in carried] == ([True] * (rows - 1) + [False]) * blocks
    assert not any("input" in each for each in carried)  # other rows, or the same rows of the next block, much later
    schedule = Schedule((group_schedule(lowered, group),), (),
                        Residency((), (machine.scratchpad.partition_bytes,) * len(lowered.statements)))
    program = stage(lowered, machine, schedule)
    stats = check_program(program, machine, model, "bf16")  # legal, and the numbers are onnxruntime's
    weights = lowered.graph.tensors["conv.weight"].numel * 2
    assert price(lowered, machine, schedule).dram_bytes == traffic_bytes(stats)
    halo_rows = sum(min(start + 7, 32) - max(start - 1, 0) for start in range(0, 32, 6))  # 3x3 window, pad 1
    assert stats.dram_bytes_read == weights + blocks * 64 * halo_rows * 32 * 2  # the weights once, the input per block
