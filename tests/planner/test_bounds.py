"""The bounds against the plans: compulsory <= best unfused <= the baseline's simulated bytes, op by op."""

from __future__ import annotations

import json
import random

import pytest

import models
from planner import poly
from planner.baseline import plan_baseline
from planner.best_unfused import best_unfused, op_bound, tileable_dims
from planner.bounds import bounds
from planner.cli import main
from planner.graph import load_graph
from planner.ops import lower
from planner.tiling import extents, tile_boxes
from simulator.machine_file import load_machine
from simulator.timing import simulate

FAST = ["mlp", "cnn", "bert_base"]
SLOW = ["resnet18", "vgg16", "mobilenet_v2", "vit", "resnet50"]


def _check_between(name: str, scratchpad: str | None) -> None:
    lowered = lower(load_graph(models.build(name, small=True), dtype="bf16"))
    machine = load_machine("edge-npu", scratchpad=scratchpad)
    best = best_unfused(lowered, machine)
    stats = simulate(plan_baseline(lowered, machine), machine).stats
    assert bounds(lowered, machine).compulsory_bytes <= best.dram_bytes
    assert best.dram_bytes <= stats.dram_bytes_read + stats.dram_bytes_written
    per_op: dict[str, int] = {}
    for op in best.ops:
        per_op[op.node] = per_op.get(op.node, 0) + op.dram_bytes
    for node, op in stats.ops.items():  # the baseline is one of the plans searched, op by op
        assert per_op.get(node, 0) <= op.dram_bytes_read + op.dram_bytes_written, node


@pytest.mark.parametrize("scratchpad", [None, "16KiB"])
@pytest.mark.parametrize("name", FAST)
def test_best_unfused_is_between_compulsory_and_the_baseline(name: str, scratchpad: str | None) -> None:
    _check_between(name, scratchpad)


@pytest.mark.slow
@pytest.mark.parametrize("scratchpad", [None, "16KiB"])
@pytest.mark.parametrize("name", SLOW)
def test_best_unfused_is_between_compulsory_and_the_baseline_slow(name: str, scratchpad: str | None) -> None:
    _check_between(name, scratchpad)


def test_box_functions_agree_with_isl_on_random_blocks() -> None:
    chooser = random.Random(0)
    for name in ("cnn", "bert_base", "vit"):
        for stmt in lower(load_graph(models.build(name, small=True))).statements:
            dims = tileable_dims(stmt)
            reads, writes = poly.tile_box_functions(stmt, dims)
            for _ in range(3):
                block = {}
                for dim in dims:
                    lo, hi = extents(stmt)[dim]
                    start = chooser.randrange(lo, hi)
                    block[dim] = (start, chooser.randrange(start + 1, hi + 1))
                expected_reads, expected_writes = tile_boxes(stmt, block)
                for table, expected in ((reads, expected_reads), (writes, expected_writes)):
                    for tensor, box in expected.items():
                        got = [(a.start(*[v for d in a.dims for v in block[d]]),
                                a.stop(*[v for d in a.dims for v in block[d]])) for a in table[tensor]]
                        assert got == list(zip(box.start, box.stop, strict=True)), (stmt.name, tensor, block)


def test_an_elementwise_op_reads_and_writes_each_element_once() -> None:
    lowered = lower(load_graph(models.build("mlp", small=True)))
    relu = next(stmt for stmt in lowered.statements if stmt.op_type == "Relu")
    graph = lowered.graph
    expected = graph.tensor_bytes(relu.reads[0].tensor) + graph.tensor_bytes(relu.writes[0].tensor)
    assert op_bound(lowered, relu, load_machine("edge-npu", scratchpad="1KiB")).dram_bytes == expected


def test_a_tight_scratchpad_still_reads_a_small_layer_once() -> None:
    # fc1 of the mlp at 8 KiB (256 bytes per partition): its whole weights do not fit, but column blocks of them
    # (or slices of the reduction, partial sums on chip) read everything once.
    lowered = lower(load_graph(models.build("mlp", small=True), dtype="bf16"))
    fc1 = next(stmt for stmt in lowered.statements if stmt.node == "fc1")
    graph = lowered.graph
    once = sum(graph.tensor_bytes(t) for t in fc1.tensors_read) + graph.tensor_bytes(fc1.writes[0].tensor)
    bound = op_bound(lowered, fc1, load_machine("edge-npu", scratchpad="8KiB"))
    assert bound.dram_bytes == once


def test_simulate_and_compare_report_best_unfused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "cnn-small", "--machine", "edge-npu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["compulsory_bytes"] <= report["best_unfused_bytes"]
    assert main(["compare", "cnn-small", "--machine", "edge-npu", "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    base = both["baseline"]
    assert base["best_unfused_bytes"] <= base["dram_bytes_read"] + base["dram_bytes_written"]
    assert main(["compare", "cnn-small", "--machine", "edge-npu"]) == 0
    assert "x best unfused" in capsys.readouterr().out
