"""How far the integer ops of `planner.qdq` are from the float QDQ chains they replace, in LSBs of their output.

Each fused op is run by onnxruntime on the values its chain's inputs have when onnxruntime runs the QDQ file as
written, and compared with the chain's own output there; so an op's error is measured alone, not accumulated.
An integer op accumulates exactly and requantizes once; the chain sums dequantized floats, so a value that lands
within float rounding of a .5 boundary can round the other way: at most 1 LSB, on a few elements.

>>> from models import build
>>> from models.quantized import quantize
>>> errors = fused_op_errors(quantize(build("cnn", small=True), "qdq"))
>>> max(e.max_lsb for e in errors) <= 1
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort

from planner.qdq import fuse_qdq

SEED = 0


@dataclass(frozen=True, slots=True)
class OpError:
    node: str
    op_type: str
    max_lsb: int
    differing: int
    elements: int


def fused_op_errors(model: onnx.ModelProto) -> list[OpError]:
    """One OpError per op that `fuse_qdq` made (QLinearConv, QLinearMatMul, integer MaxPool...)."""
    fused = fuse_qdq(model)
    original = {name for node in model.graph.node for name in node.output}
    made = [node for node in fused.graph.node if node.output[0] in original and node.name not in
            {n.name for n in model.graph.node if n.op_type == node.op_type}]
    values = _run_all(model)
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in fused.graph.initializer}
    errors = []
    producer = {name: node for node in fused.graph.node for name in node.output}
    for node in made:
        nodes = _chain(node, producer, values)  # a Gemm's QLinearConv comes with its two Reshapes
        inputs = {name for n in nodes for name in n.input if name} - {name for n in nodes for name in n.output}
        feeds = {name: values[name] for name in sorted(inputs) if name not in initializers}
        constants = [onnx.numpy_helper.from_array(initializers[name], name) for name in sorted(inputs)
                     if name in initializers]
        got = _run_nodes(fused, nodes, feeds, constants)
        expected = values[node.output[0]]
        diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
        errors.append(OpError(node.name, node.op_type, int(diff.max(initial=0)), int((diff > 0).sum()), diff.size))
    return errors


def _run_all(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    feeds = {}
    for value in model.graph.input:
        tensor = value.type.tensor_type
        shape = [d.dim_value or 1 for d in tensor.shape.dim]
        feeds[value.name] = rng.standard_normal(shape).astype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    names = [name for node in model.graph.node for name in node.output if name]
    del exposed.graph.output[:]
    exposed.graph.output.extend(onnx.ValueInfoProto(name=name) for name in names)
    return {**feeds, **dict(zip(names, _session(exposed).run(names, feeds), strict=True))}


def _chain(node: onnx.NodeProto, producer: dict[str, onnx.NodeProto],
           values: dict[str, np.ndarray]) -> list[onnx.NodeProto]:
    before = [producer[name] for name in node.input if name and name not in values and name in producer]
    return [n for first in before for n in _chain(first, producer, values)] + [node]


def _run_nodes(model: onnx.ModelProto, nodes: list[onnx.NodeProto], feeds: dict[str, np.ndarray],
               constants: list[onnx.TensorProto]) -> np.ndarray:
    node = nodes[-1]
    inputs = [onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)
              for name, value in feeds.items()]
    graph = onnx.helper.make_graph(nodes, "op", inputs, [onnx.ValueInfoProto(name=node.output[0])], constants)
    one = onnx.helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    return np.asarray(_session(one).run([node.output[0]], feeds)[0])


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
