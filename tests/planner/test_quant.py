"""Quantized models, as onnxruntime's quantizer writes them, plan as integers and pass the functional check.

The quantized files are made here from the zoo's fp32 models with `onnxruntime.quantization` (a second or two each);
tests/data/quant/ holds two such files, written by benchmarks/make_quantized.py, so that a change in the installed
quantizer's output style is still covered by what it used to write, and one quantized TorchScript export from the
corpus (benchmarks/corpus.py on the corpus branch: a small conv net with a residual Add, quantize_static QDQ).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import onnx
import onnx.parser
import pytest

import models
from models.quantized import quantize
from planner.bounds import bounds
from planner.check import reference_values
from planner.errors import PlanError
from planner.fused import plan_fused
from planner.graph import load_graph
from planner.ops import lower
from planner.qdq import fuse_qdq
from planner.qdq_fidelity import fused_op_errors
from planner.testing import check_plan as check_invariants
from simulator.functional import run_functional
from simulator.isa import Compute
from simulator.machine import INT8_MAC_OPS
from simulator.machine_file import load_machine
from simulator.timing import compute_cycles, simulate
from simulator.verify import verify

DATA = Path(__file__).parent.parent / "data" / "quant"


@functools.cache
def quantized(name: str, mode: str) -> onnx.ModelProto:
    return quantize(models.build(name, small=True), mode)


def compulsory_bytes(model: onnx.ModelProto) -> int:
    lowered = lower(load_graph(model))
    return bounds(lowered, load_machine("edge-npu")).compulsory_bytes


FAST_IMPORTS = [("cnn", "qdq"), ("cnn", "qdq-per-channel"), ("cnn", "dynamic"), ("mlp", "qdq"), ("mlp", "dynamic"),
                ("resnet18", "qdq"), ("vit", "qdq")]
SLOW_IMPORTS = [("resnet18", "qdq-per-channel"), ("resnet18", "dynamic"), ("vit", "qdq-per-channel"),
                ("vit", "dynamic"), ("mlp", "qdq-per-channel")]


@pytest.mark.parametrize(("name", "mode"), FAST_IMPORTS + [pytest.param(*case, marks=pytest.mark.slow)
                                                           for case in SLOW_IMPORTS])
def test_quantized_imports_with_the_fp32_macs(name: str, mode: str) -> None:
    fp32 = lower(load_graph(models.build(name, small=True)))
    graph = load_graph(quantized(name, mode))
    lowered = lower(graph)
    assert lowered.macs == fp32.macs
    integer = [stmt for stmt in lowered.statements if stmt.op_type in INT8_MAC_OPS]
    assert integer, "no integer op was planned"
    float_macs = [stmt for stmt in lowered.statements if stmt.engine == "tensor" and stmt not in integer]
    if mode == "dynamic":  # quantize_dynamic leaves activation x activation products (attention) on floats
        float_macs = [s for s in float_macs if any(graph.tensors[a.tensor].kind == "constant" for a in s.reads)]
    assert float_macs == [], f"MACs left on floats: {[stmt.node for stmt in float_macs]}"
    for stmt in integer:  # the integer op reads int8 (or uint8) data and weights
        for access in stmt.reads[:2]:
            assert graph.tensors[access.tensor].dtype in ("int8", "uint8"), (stmt.node, access.tensor)


@pytest.mark.parametrize("capacity", ["512KiB", "64KiB"])
@pytest.mark.parametrize(("name", "mode"), [("cnn", "qdq"), ("cnn", "dynamic"), ("mlp", "qdq"),
                                            pytest.param("resnet18", "qdq", marks=pytest.mark.slow),
                                            pytest.param("resnet18", "qdq-per-channel", marks=pytest.mark.slow),
                                            pytest.param("resnet18", "dynamic", marks=pytest.mark.slow)])
def test_quantized_plans_and_matches_onnxruntime(name: str, mode: str, capacity: str) -> None:
    machine = load_machine("edge-npu", scratchpad=capacity)
    program = check_invariants(quantized(name, mode), machine, "fused")
    assert program is not None
    assert any(isinstance(i, Compute) and i.op_type in INT8_MAC_OPS for i in program.instructions)


@pytest.mark.slow
def test_quantized_vit_matches_onnxruntime() -> None:
    # Not check_invariants: the fused plan computes only the class token's share of the last block, which the
    # bounds (over the whole lowered graph) do not know yet, so its compute bound is above the plan's.
    model, machine = quantized("vit", "qdq"), load_machine("edge-npu", scratchpad="64KiB")
    graph = load_graph(model)
    program = plan_fused(lower(graph), machine)
    assert verify(program, machine) == []
    dram, reference = reference_values(graph, model)
    run_functional(program, machine, dram, reference=reference)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.onnx")), ids=lambda p: p.name)
def test_checked_in_quantized_files_plan_and_match(path: Path) -> None:
    check_invariants(onnx.load(path), load_machine("edge-npu", scratchpad="64KiB"), "fused")


@pytest.mark.parametrize("name", ["cnn", "resnet18", "mlp", "vit"])
def test_integer_ops_are_within_one_lsb_of_the_qdq_chains(name: str) -> None:
    # The check compares tiles with onnxruntime on the graph as planned, exactly; this is how far that graph is from
    # the file as written: each integer op alone, on the inputs the float chain sees.
    errors = fused_op_errors(quantized(name, "qdq"))
    assert errors
    assert max(error.max_lsb for error in errors) <= 1
    assert sum(error.differing for error in errors) <= 0.01 * sum(error.elements for error in errors)


def test_qdq_resnet_compulsory_traffic_is_about_a_quarter_of_fp32() -> None:
    # Weights go from 4 bytes to 1. Not quite a quarter: the fp32 model input and logits stay fp32 (the first
    # QuantizeLinear and the last DequantizeLinear run on chip), biases are int32 (4 bytes, as before), and each
    # tensor adds a scale and a zero point. The small ResNet's input is a larger share than a full one's.
    fp32 = compulsory_bytes(models.build("resnet18", small=True))
    qdq = compulsory_bytes(quantized("resnet18", "qdq"))
    assert 0.24 <= qdq / fp32 <= 0.30, f"{qdq:,} / {fp32:,} bytes = {qdq / fp32:.3f}"


def test_integer_ops_run_at_the_int8_rate() -> None:
    machine = load_machine("edge-npu")
    lowered = lower(load_graph(quantized("cnn", "qdq")))
    program = plan_fused(lowered, machine)
    convs = [i for i in program.instructions if isinstance(i, Compute) and i.op_type == "QLinearConv"]
    engine = machine.tensor_engine
    slower_int8 = dataclasses.replace(machine, tensor_engine=dataclasses.replace(
        engine, macs_per_cycle={**engine.macs_per_cycle, "int8": engine.macs_per_cycle["int8"] // 4}))
    faster_fp32 = dataclasses.replace(machine, tensor_engine=dataclasses.replace(
        engine, macs_per_cycle={**engine.macs_per_cycle, "fp32": engine.macs_per_cycle["fp32"] * 4}))
    for conv in convs:
        assert compute_cycles(conv, faster_fp32, "fp32") == compute_cycles(conv, machine, "fp32")
        assert compute_cycles(conv, slower_int8, "fp32") > compute_cycles(conv, machine, "fp32")
    busy = simulate(program, machine).stats.busy_cycles["tensor"]
    assert simulate(program, slower_int8).stats.busy_cycles["tensor"] > busy
    macs = sum(stmt.macs for stmt in lowered.statements if stmt.engine == "tensor")
    assert bounds(lowered, machine).compute_cycles >= -(-macs // engine.macs_per_cycle["int8"])
    fp32 = lower(load_graph(models.build("cnn", small=True)))
    assert bounds(lowered, machine).compute_cycles < bounds(fp32, machine).compute_cycles


QDQ_CONV = '''<ir_version: 8, opset_import: ["" : 17]>
g (float[1,4,6,6] x) => (float[1,8,6,6] y)
  <float sx = {0.05}, int8 zx = {3}, int8[8,4,3,3] w = {WEIGHTS}, float[8] sw = {SCALES},
   int8[8] zw = {0,0,0,0,0,0,0,0}, int32[8] b = {1,-2,3,-4,5,-6,7,-8}, float[8] sb = {BIAS_SCALES},
   int32[8] zb = {0,0,0,0,0,0,0,0},
   float sy = {0.1}, uint8 zy = {128}> {
  qx = QuantizeLinear(x, sx, zx)
  dx = DequantizeLinear(qx, sx, zx)
  dw = DequantizeLinear<axis = 0>(w, sw, zw)
  db = DequantizeLinear<axis = 0>(b, sb, zb)
  c = Conv<pads = [1, 1, 1, 1]>(dx, dw, db)
  qy = QuantizeLinear(c, sy, zy)
  y = DequantizeLinear(qy, sy, zy)
}'''


def qdq_conv_model(x_zero_point: str = "uint8 zx = {3}") -> onnx.ModelProto:
    scales = [0.01 * (i + 1) for i in range(8)]
    text = (QDQ_CONV.replace("WEIGHTS", ",".join(str((i * 7) % 255 - 127) for i in range(8 * 4 * 9)))
            .replace("BIAS_SCALES", ",".join(str(0.05 * s) for s in scales))
            .replace("SCALES", ",".join(map(str, scales))).replace("int8 zx = {3}", x_zero_point))
    return onnx.parser.parse_model(text)


def test_per_axis_qdq_conv_fuses_and_checks() -> None:
    model = qdq_conv_model("uint8 zx = {3}")
    assert [n.op_type for n in fuse_qdq(model).graph.node] == ["QuantizeLinear", "QLinearConv", "DequantizeLinear"]
    check_invariants(model, load_machine("edge-npu", scratchpad="64KiB"), "fused")


def test_int8_in_and_uint8_out_stays_a_qdq_chain() -> None:
    # onnxruntime has no QLinearConv from int8 to uint8, so the chain plans as DQ, Conv and Q on the vector engine
    model = qdq_conv_model("int8 zx = {3}")
    assert "Conv" in [n.op_type for n in fuse_qdq(model).graph.node]
    check_invariants(model, load_machine("edge-npu", scratchpad="64KiB"), "fused")


def test_a_chain_whose_float_result_is_read_elsewhere_is_not_fused() -> None:
    model = qdq_conv_model()
    assert "QLinearConv" in [n.op_type for n in fuse_qdq(model).graph.node]
    model.graph.output.append(onnx.ValueInfoProto(name="c"))  # the float Conv output is wanted too
    assert "Conv" in [n.op_type for n in fuse_qdq(model).graph.node]


PER_AXIS = '''<ir_version: 8, opset_import: ["" : OPSET]>
g (float[2,3,4] x) => (float[2,3,4] y) <float[3] s = {0.1, 0.2, 0.3}, uint8[3] z = {0, 128, 255}> {
  q = QuantizeLinear<axis = 1>(x, s, z)
  y = DequantizeLinear<axis = 1>(q, s, z)
}'''
BLOCKED = '''<ir_version: 10, opset_import: ["" : 21]>
g (float[2,8] x) => (float[2,8] y) <float[2,2] s = {0.1, 0.2, 0.3, 0.4}, int8[2,2] z = {0, 1, -1, 2}> {
  q = QuantizeLinear<axis = 1, block_size = 4>(x, s, z)
  y = DequantizeLinear<axis = 1, block_size = 4>(q, s, z)
}'''


@pytest.mark.parametrize("text", [PER_AXIS.replace("OPSET", "13"), PER_AXIS.replace("OPSET", "17"), BLOCKED],
                         ids=["per-axis-13", "per-axis-17", "blocked-21"])
def test_quantize_and_dequantize_per_axis_and_blocked(text: str) -> None:
    model = onnx.parser.parse_model(text)
    lowered = lower(load_graph(model))
    assert {stmt.op_type for stmt in lowered.statements} == {"QuantizeLinear", "DequantizeLinear"}
    check_invariants(model, load_machine("edge-npu", scratchpad="64KiB"), "fused")


def test_a_scale_of_the_wrong_length_is_refused_naming_the_node() -> None:
    model = onnx.parser.parse_model(PER_AXIS.replace("OPSET", "17").replace("axis = 1>(x", "axis = 2>(x"))
    with pytest.raises(PlanError, match=r"node 'QuantizeLinear_0' \(QuantizeLinear\): per-axis scale has shape \(3,\)"):
        lower(load_graph(model))


def test_quantized_torchscript_export_keeps_torchs_mac_count() -> None:
    # 6,340,928: torch's FlopCounterMode on the fp32 module, halved (the corpus manifest of tinyconv.ts17.qdq)
    graph = load_graph(onnx.load(DATA / "tinyconv.ts17.qdq.onnx"))
    lowered = lower(graph)
    assert lowered.macs == 6_340_928
    assert {stmt.op_type for stmt in lowered.statements if stmt.engine == "tensor"} == {"QLinearConv"}
