"""A split Gemm whose input is read through a view of part of a flattened tensor (AlexNet's first fully connected
layer, as the opset-9 zoo file has it) runs on the crop of its weight, and the check still passes: the slice of the
flattened input stays whole, the weight is cut by the tile's columns."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from planner import api
from simulator.functional_crop import crop
from simulator.isa import Compute


def flatten_gemm(opset: int) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((24, 2304)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(24).astype(np.float32), "b")
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w", "b"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "fc", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64, 6, 6])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 24])],
                              initializer=[weight, bias])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_split_gemm_through_a_partial_view_is_cropped_and_checks() -> None:
    for opset in (9, 17):
        model = flatten_gemm(opset)
        machine = api.machine("edge-npu", scratchpad="8KiB")
        program = api.plan(model, machine)
        tensors = {t.name: t for t in program.tensors}
        sliced = [i for i in program.instructions if isinstance(i, Compute) and i.op_type == "Gemm" and i.slices]
        assert sliced, "the scratchpad no longer splits the Gemm: pick a smaller one"
        partial = [i for i in sliced if any(getattr(s, "view", ()) and s.box.shape != tensors[s.tensor].shape
                                            for s in i.inputs if hasattr(s, "box"))]
        assert partial and all(crop(i, tensors) is not None for i in partial)
        api.check(model, program, machine)  # raises on a wrong number or on poison read
