"""Group boundaries where two activations cross: a transformer FFN block fuses between its LayerNorm and its residual
Add, where no single-tensor cut point exists."""

from __future__ import annotations

import functools

import onnx
import pytest

import models
from models.builder import GraphBuilder
from models.transformer import feed_forward, layer_norm
from planner.graph import load_graph
from planner.group_choice import cut_points
from planner.ops import lower
from planner.schedule.boundaries import group_boundaries, group_tiles
from planner.stmt import LoweredGraph
from planner.testing import check_plan
from planner.testing.compulsory import onnx_compulsory
from planner.testing.invariants import traffic_bytes
from simulator.machine_file import load_machine
from simulator.timing import simulate

SEQ, HIDDEN, INNER = 64, 32, 128


def ffn_block() -> onnx.ModelProto:
    """LayerNorm -> Linear -> GELU -> Linear -> Add(the norm's output), as a BERT layer's second half."""
    b = GraphBuilder("ffn_block", seed=0)
    x = b.input("input", (1, SEQ, HIDDEN))
    norm = layer_norm(b, x, "norm", hidden=HIDDEN, epsilon=1e-12)
    inner = feed_forward(b, norm, "ffn", hidden=HIDDEN, ffn=INNER)
    out = b.node("Add", [inner, norm], name="residual")
    b.output(out, (1, SEQ, HIDDEN))
    return b.build()


@functools.cache
def lowered_ffn() -> LoweredGraph:
    return lower(load_graph(ffn_block(), dtype="bf16"))


def statement_of(lowered: LoweredGraph, node: str) -> int:
    return next(i for i, s in enumerate(lowered.statements) if s.node == node)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "bert_base"])
def test_boundaries_include_every_cut_point(name: str) -> None:
    lowered = lower(load_graph(models.build(name, small=True)))
    assert set(cut_points(lowered)) <= set(group_boundaries(lowered))
    assert set(cut_points(lowered)) <= set(group_boundaries(lowered, max_live=1))


def test_boundaries_fall_inside_the_ffn() -> None:
    lowered = lowered_ffn()
    fc1, fc2 = statement_of(lowered, "ffn.fc1.matmul"), statement_of(lowered, "ffn.fc2.add")
    inside = [p for p in group_boundaries(lowered) if fc1 < p <= fc2]
    assert inside  # the norm's output and one FFN tensor cross
    assert not [p for p in cut_points(lowered) if fc1 < p <= fc2]  # no single tensor is ever live alone there
    assert group_boundaries(lowered, max_live=1) == cut_points(lowered)


def test_more_live_tensors_give_more_boundaries() -> None:
    lowered = lowered_ffn()
    counts = [len(group_boundaries(lowered, max_live=n)) for n in (1, 2, 3)]
    assert counts == sorted(counts)
    assert len(group_boundaries(lowered, max_live=len(lowered.statements))) == len(lowered.statements)


def test_sequence_tiles_cut_rows_of_one_sequence() -> None:
    tiles = group_tiles((2, 10, 4))
    assert tiles[:2] == [((2, 10, 4), False), ((1, 10, 4), False)]
    assert ((1, 5, 4), False) in tiles and ((1, 1, 4), False) in tiles
    assert all(not cacheable for _, cacheable in tiles)


@pytest.mark.parametrize(("kib", "most"), [(32, 1.01), (16, 3.0)])
def test_ffn_block_fuses_on_a_tight_scratchpad(kib: int, most: float) -> None:
    model = ffn_block()
    machine = load_machine("edge-npu", scratchpad=f"{kib}KiB")
    fused = check_plan(model, machine, "fused", "bf16")
    baseline = check_plan(model, machine, "baseline", "bf16")
    assert fused is not None and baseline is not None
    fused_bytes = traffic_bytes(simulate(fused, machine).stats)
    baseline_bytes = traffic_bytes(simulate(baseline, machine).stats)
    compulsory = sum(onnx_compulsory(model, "bf16"))
    assert fused_bytes <= compulsory * most
    assert fused_bytes * 4 < baseline_bytes
