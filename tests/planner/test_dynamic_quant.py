"""DynamicQuantizeLinear plans at tight scratchpads: its range in stages that tile, then y elementwise
(`planner.dynamic_quant`), bit for bit what onnxruntime computes for the op as written."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

import planner.graph
from planner.bounds import bounds
from planner.check import reference_values
from planner.dynamic_quant import ROW, split_dynamic_quantize, stages
from planner.errors import PlanError
from planner.fused import plan_fused
from planner.graph import load_graph
from planner.ops import lower
from planner.testing import check_plan
from simulator.machine_file import load_machine
from tests.planner.footprint_oracle import assert_matches


def dql_model(shape: tuple[int, ...], opset: int = 17, relu: bool = True) -> onnx.ModelProto:
    """x -> [Relu] -> DynamicQuantizeLinear, its three outputs the model's."""
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu")] if relu else []
    nodes.append(helper.make_node("DynamicQuantizeLinear", ["r" if relu else "x"], ["y", "s", "z"], name="dql"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, list(shape)),
                               helper.make_tensor_value_info("s", TensorProto.FLOAT, []),
                               helper.make_tensor_value_info("z", TensorProto.UINT8, [])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return [np.asarray(v) for v in session.run(["y", "s", "z"], {"x": x})]


@pytest.mark.parametrize("opset", [11, 17, 18, 21])
@pytest.mark.parametrize("shape", [(1, 64, 16, 16), (2, 3, 40, 40), (1, 5000)])
def test_the_rewrite_is_the_op_bit_for_bit(shape: tuple[int, ...], opset: int) -> None:
    model = dql_model(shape, opset, relu=False)
    split = split_dynamic_quantize(model)
    assert "DynamicQuantizeLinear" in {n.op_type for n in split.graph.node}
    assert "QuantizeLinear" in {n.op_type for n in split.graph.node}
    onnx.checker.check_model(split, full_check=True)
    rng = np.random.default_rng(opset)
    for trial in range(24):
        x = rng.standard_normal(shape) * [1e-3, 1.0, 7.3, 1e4][trial % 4]
        x = [x, np.abs(x), -np.abs(x), np.zeros(shape), np.round(x * 4) / 4, rng.integers(-300, 300, shape) / 2][
            trial % 6]  # both signs, one sign, all zero (scale 0), and values on .5 ties
        x = x.astype(np.float32)
        for expected, got in zip(run(model, x), run(split, x), strict=True):
            assert got.dtype == expected.dtype and np.array_equal(got, expected), (trial, expected, got)


@given(st.lists(st.integers(1, 70), min_size=1, max_size=5))
@settings(max_examples=200, deadline=None)
def test_every_stage_reduces_a_row_and_the_last_range_is_small(shape: list[int]) -> None:
    left = list(shape)
    for axes in stages(tuple(shape)):
        assert axes and any(left[a] > 1 for a in axes) and list(axes) == sorted(axes)
        row = math.prod(left[a] for a in axes)
        assert row <= ROW or len([a for a in axes if left[a] > 1]) == 1  # an axis longer than ROW goes alone
        left = [1 if a in axes else extent for a, extent in enumerate(left)]
    assert math.prod(left) <= max(ROW, 1)


def test_old_lowering_is_refused_at_64kib_and_the_new_one_plans_and_checks(monkeypatch) -> None:
    model, machine = dql_model((1, 64, 16, 16)), load_machine("edge-npu", scratchpad="64KiB")
    with monkeypatch.context() as patch:  # one DynamicQuantizeLinear statement reading all 64 KiB of x per tile
        patch.setattr(planner.graph, "split_dynamic_quantize", lambda model, shapes=None: model)
        with pytest.raises(PlanError, match=r"'dql' \(DynamicQuantizeLinear\): its smallest tile"):
            plan_fused(lower(load_graph(model)), machine)
    program = check_plan(model, machine, "fused")  # verify, functional check against onnxruntime, bounds
    assert program is not None
    ops = {i.op_type for i in program.instructions if hasattr(i, "op_type")}
    assert {"ReduceMin", "ReduceMax", "DynamicQuantizeLinear", "QuantizeLinear"} <= ops


def test_reference_is_the_op_as_written_and_partials_are_activations() -> None:
    model = dql_model((1, 64, 16, 16))
    graph = load_graph(model)
    dram, reference = reference_values(graph, model)
    x = dram["x"]
    for expected, name in zip(run(model, x), ("y", "s", "z"), strict=True):
        assert np.array_equal(reference[name], expected)
    internal = [n for n in graph.tensors if n.startswith("dql/")]
    assert {graph.tensors[n].kind for n in internal} == {"activation"}
    low = next(n for n in internal if n.startswith("dql/min"))
    assert graph.tensors[low].shape == (1, 64, 1, 1) and graph.tensors[low].elem_type == TensorProto.FLOAT
    assert np.array_equal(reference[low], np.maximum(x, 0).min(axis=(2, 3), keepdims=True))


def test_partials_add_nothing_to_compulsory_traffic(monkeypatch) -> None:
    # small enough that the op as written plans too: the same bound either way (x read once, y, s, z written once)
    model, machine = dql_model((1, 8, 16, 16)), load_machine("edge-npu")
    split = bounds(lower(load_graph(model)), machine).compulsory_bytes
    with monkeypatch.context() as patch:
        patch.setattr(planner.graph, "split_dynamic_quantize", lambda model, shapes=None: model)
        whole = bounds(lower(load_graph(model)), machine).compulsory_bytes
    assert split == whole == 2048 * 4 + 2048 + 4 + 1


def test_statements_footprints_match_enumeration() -> None:
    shape = (2, 3, 40, 40)
    lowered = lower(load_graph(dql_model(shape, relu=False)))
    by_op = {stmt.op_type: stmt for stmt in lowered.statements}
    low, high = (next(t for t in lowered.graph.tensors if t.startswith(f"dql/{kind}0")) for kind in ("min", "max"))

    def reduce_body(out: str):
        return lambda p: ([("x", tuple(p[f"i{a}"] for a in range(4)))],
                          [(out, (p["i0"], p["i1"], p["i2"], 0))])

    assert_matches(by_op["ReduceMin"], {"i1": (1, 3), "i2": (5, 9)}, reduce_body(low))
    assert_matches(by_op["ReduceMax"], {"i0": (0, 1), "i3": (0, 7)}, reduce_body(high))
    assert_matches(by_op["QuantizeLinear"], {"i2": (3, 11), "i3": (20, 40)},
                   lambda p: ([("x", tuple(p[f"i{a}"] for a in range(4))), ("s", ()), ("z", ())],
                              [("y", tuple(p[f"i{a}"] for a in range(4)))]))
    final = [s for s in lowered.statements if s.op_type == "DynamicQuantizeLinear"]
    assert len(final) == 2  # the scale and the zero point; its own y is read by nobody and not planned
    assert {a.tensor for s in final for a in s.writes} == {"s", "z"}


def test_an_input_shaped_by_a_shape_subgraph_is_split_too() -> None:
    # x = Reshape(a, Shape(b)): plain shape inference does not know x's shape, folding does (as in exporters' BERT)
    nodes = [helper.make_node("Shape", ["b"], ["shape"], name="shape"),
             helper.make_node("Reshape", ["a", "shape"], ["x"], name="reshape"),
             helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"], name="dql")]
    floats = [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 16384]),
              helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 64, 16, 16])]
    outputs = [helper.make_tensor_value_info(n, t, None) for n, t in (("y", 2), ("s", 1), ("z", 2))]
    model = helper.make_model(helper.make_graph(nodes, "g", floats, outputs),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    assert split_dynamic_quantize(model) is model  # not known here
    graph = load_graph(model)
    assert "QuantizeLinear" in {node.op_type for node in graph.nodes}
    assert check_plan(model, load_machine("edge-npu", scratchpad="64KiB"), "fused") is not None


CORPUS = Path(os.environ.get("SCRATCHPLAN_CORPUS", "/work/corpus")) / "resnet18.ts17.dynamic.onnx"


@pytest.mark.slow
@pytest.mark.skipif(not CORPUS.exists(), reason="the corpus is not here (SCRATCHPLAN_CORPUS)")
def test_quantize_dynamic_resnet18_export_checks_at_64kib() -> None:
    from planner import api

    loaded = api.load(str(CORPUS))
    machine = load_machine("edge-npu", scratchpad="64KiB")
    program = plan_fused(loaded.lowered, machine)
    api.check(loaded, program, machine)
