"""A QDQ export plans at int8 traffic: its weights stay int8 in DRAM, its embedding rows are gathered as int8.

The file is onnxruntime's `quantize_static` (QDQ, int8) of the checked-in TorchScript BERT-tiny export
(`benchmarks/corpus.py build --small` makes both). The quantizer leaves some weights behind a DequantizeLinear that no
integer op takes in (embedding tables before their Gather, LayerNorm scales, an Add's bias): those must not become
float constants, or DRAM would hold, and compulsory traffic count, four bytes per weight.
"""

from __future__ import annotations

import functools
from pathlib import Path

from planner.baseline import plan_baseline
from planner.bounds import bounds
from planner.fused import dram_bytes, plan_fused
from planner.graph import load_graph
from planner.ops import lower
from planner.stmt import LoweredGraph
from simulator.machine_file import load_machine

EXPORTS = Path(__file__).resolve().parent.parent / "data" / "exports"
SHAPES = {"input_ids": (1, 32), "attention_mask": (1, 32)}


@functools.cache
def lowered(name: str) -> LoweredGraph:
    return lower(load_graph(str(EXPORTS / name), input_shapes=SHAPES))


def test_weights_behind_an_unfused_dequantize_stay_int8() -> None:
    graph = lowered("bert_tiny.ts17.qdq.onnx").graph
    read = {access.tensor for stmt in lowered("bert_tiny.ts17.qdq.onnx").statements for access in stmt.reads}
    weights = [name for name, tensor in graph.tensors.items() if tensor.kind == "constant" and name in read]
    wide = {name: graph.elem_bytes(name) for name in weights
            if graph.elem_bytes(name) > 1 and graph.tensor_bytes(name) > 256 * graph.elem_bytes(name)}
    assert not wide, f"weights read as wider than int8: {wide}"


def test_compulsory_traffic_is_about_a_third_of_fp32() -> None:
    """int8 weights, fp32 model input ids and output: 16,576 of 51,392 bytes today (0.32)."""
    machine = load_machine("edge-npu", scratchpad="512KiB")
    quantized = bounds(lowered("bert_tiny.ts17.qdq.onnx"), machine).compulsory_bytes
    fp32 = bounds(lowered("bert_tiny.ts17.onnx"), machine).compulsory_bytes
    assert quantized < 0.35 * fp32, (quantized, fp32)


def test_embedding_rows_are_gathered_from_the_int8_table() -> None:
    graph = lowered("bert_tiny.ts17.qdq.onnx").graph
    gathers = [stmt for stmt in lowered("bert_tiny.ts17.qdq.onnx").statements if stmt.indirect is not None]
    assert gathers, "the word embedding lookup is an indirect DMA"
    assert all(graph.elem_bytes(stmt.indirect.table) == 1 for stmt in gathers if stmt.indirect)


def test_fused_plan_keeps_the_quantized_encoder_on_chip() -> None:
    """Regression: resident tensors were placed over one another (a first fit from the top that stopped at the
    first neighbour below it), so every fused staging failed and the plan fell back to the baseline's, 30x worse."""
    machine = load_machine("edge-npu", scratchpad="512KiB")
    model = lowered("bert_tiny.ts17.qdq.onnx")
    assert dram_bytes(plan_fused(model, machine)) * 10 < dram_bytes(plan_baseline(model, machine))
