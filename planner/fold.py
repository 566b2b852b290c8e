"""Constant folding and shape inference, to a fixed point.

Exporters compute weights and reshape targets with small constant subgraphs (Constant, ConstantOfShape, Cast,
Identity, and PyTorch's Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains). Each node whose inputs are all
known is evaluated by `onnx.reference` (no op is re-implemented here), its output becomes a constant, and shape
inference runs again, until nothing changes. A constant too large to evaluate cheaply keeps its node in
`constant_nodes`: its shape is known, and its value can be computed when the functional check needs it.

Large initializers never enter this loop: shape inference sees them as typed inputs, so weights are not copied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

from planner import onnx_io
from planner.errors import PlanError

FOLD_LIMIT_ELEMENTS = 1 << 16  # values kept for planning are small: shapes, axes, pads, scales, scalars


@dataclass(frozen=True, slots=True)
class TensorType:
    elem_type: int
    shape: tuple[int | None, ...] | None  # None: rank unknown; a None dim: unknown extent


@dataclass(frozen=True, slots=True)
class Folded:
    """What folding leaves: the nodes still to run, constant values, and every tensor's inferred type."""

    nodes: tuple[onnx.NodeProto, ...]
    constant_nodes: tuple[onnx.NodeProto, ...]
    constants: frozenset[str]
    values: dict[str, np.ndarray]
    types: dict[str, TensorType]


def fold_constants(model: onnx.ModelProto, where: str) -> Folded:
    """Fold constant subgraphs and infer every tensor's static type.

    >>> import onnx.parser
    >>> m = onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 17]>
    ... g (float[2,6] x) => (float[3,4] y) {
    ...   s = Shape(x)
    ...   t = Constant<value = int64[2] {3, 4}>()
    ...   y = Reshape(x, t)
    ... }''')
    >>> [n.op_type for n in fold_constants(m, "m").nodes]
    ['Reshape']
    """
    opset = _default_opset(model)
    graph = model.graph
    types: dict[str, TensorType] = {}
    values: dict[str, np.ndarray] = {}
    for tensor in graph.initializer:
        types[tensor.name] = TensorType(tensor.data_type, tuple(tensor.dims))
        if tensor.data_location != onnx.TensorProto.EXTERNAL and math.prod(tensor.dims) <= FOLD_LIMIT_ELEMENTS:
            values[tensor.name] = numpy_helper.to_array(tensor)
    constants = set(types)
    pending = list(graph.node)
    lazy: list[onnx.NodeProto] = []
    while True:
        types.update(_infer(model, pending, values, constants, types, where))
        remaining: list[onnx.NodeProto] = []
        for node in pending:
            if _fold_node(node, opset, values, constants, types, lazy, where):
                continue
            remaining.append(node)
        if len(remaining) == len(pending):
            break
        pending = remaining
    return Folded(tuple(pending), tuple(lazy), frozenset(constants), values, types)


def _fold_node(node: onnx.NodeProto, opset: int, values: dict[str, np.ndarray], constants: set[str],
               types: dict[str, TensorType], lazy: list[onnx.NodeProto], where: str) -> bool:
    inputs = [name for name in node.input if name]
    if any(attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for attr in node.attribute):
        return False  # If, Loop, Scan: a subgraph may read outer-scope activations that `inputs` does not list
    if node.op_type in ("Shape", "Size") and not node.domain:
        shape = types.get(inputs[0], TensorType(0, None)).shape
        if shape is None or None in shape:
            return False
        values[node.output[0]] = _evaluate_on_shape(node, opset, shape)  # type: ignore[arg-type]
        constants.add(node.output[0])
        return True
    if not all(name in constants for name in inputs):
        return False
    if node.op_type == "DequantizeLinear" and not node.domain:
        return False  # int8 weights stay int8 in DRAM and are dequantized on chip (planner/qdq.py)
    outputs = [name for name in node.output if name]
    out_shapes = [types.get(name, TensorType(0, None)).shape for name in outputs]
    if any(shape is None or None in shape for shape in out_shapes):
        if not all(name in values for name in inputs):
            return False
    elif any(math.prod(shape) > FOLD_LIMIT_ELEMENTS for shape in out_shapes) or not all(  # type: ignore[arg-type]
            name in values for name in inputs):
        lazy.append(node)  # a weight computed by a subgraph: shape now, value only when the check needs it
        constants.update(outputs)
        return True
    for name, value in zip(outputs, evaluate_node(node, opset, values, where), strict=False):
        values[name] = value
        constants.add(name)
    return True


def evaluate_node(node: onnx.NodeProto, opset: int, values: dict[str, np.ndarray], where: str) -> list[np.ndarray]:
    """Run one node with the ONNX reference evaluator on known input values."""
    feeds = {name: values[name] for name in node.input if name}
    try:
        return _run(node, opset, feeds)
    except Exception as exc:  # the evaluator raises whatever its op raises; report it on one line
        raise PlanError(f"{where}: node {node.name!r} ({node.op_type}): constant folding failed: "
                        f"{' '.join(str(exc).split())[:200]}") from None


def _evaluate_on_shape(node: onnx.NodeProto, opset: int, shape: tuple[int, ...]) -> np.ndarray:
    # Shape and Size need only the input's shape; feed a zero-strided view so no data of that size is allocated.
    probe = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=shape, strides=(0,) * len(shape))
    return _run(node, opset, {node.input[0]: probe})[0]


def _run(node: onnx.NodeProto, opset: int, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    # A node alone runs at the evaluator's newest opset (Unsqueeze-13 for an opset-11 model): wrap it in a function
    # that imports the model's opset.
    outputs = [name for name in node.output if name]
    function = onnx.helper.make_function("planner.fold", "fold", list(feeds), outputs, [node],
                                         [onnx.helper.make_opsetid("", opset)])
    return [np.asarray(result) for result in ReferenceEvaluator(function).run(None, feeds, attributes={})]


def _infer(model: onnx.ModelProto, nodes: list[onnx.NodeProto], values: dict[str, np.ndarray], constants: set[str],
           types: dict[str, TensorType], where: str) -> dict[str, TensorType]:
    # A skeleton of the model: known values as initializers, other constants as typed inputs, pending nodes.
    used = {name for node in nodes for name in node.input} | {value.name for value in model.graph.output}
    graph = onnx.helper.make_graph(
        list(nodes), model.graph.name or "g",
        list(model.graph.input) + [_value_info(name, types[name]) for name in sorted(constants - set(values))],
        list(model.graph.output),
        [numpy_helper.from_array(value, name) for name, value in values.items() if name in used])
    skeleton = onnx.helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    try:
        inferred = shape_inference.infer_shapes(skeleton, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
        raise onnx_io.onnx_error(where, "shape inference", exc) from None
    found: dict[str, TensorType] = {}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        if value.type.HasField("tensor_type"):
            found[value.name] = _tensor_type(value.type.tensor_type)
    return {name: ttype for name, ttype in found.items() if ttype.shape is not None or name not in types}


def _tensor_type(tensor_type: onnx.TypeProto.Tensor) -> TensorType:
    if not tensor_type.HasField("shape"):
        return TensorType(tensor_type.elem_type, None)
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
    return TensorType(tensor_type.elem_type, dims)


def _value_info(name: str, ttype: TensorType) -> onnx.ValueInfoProto:
    return onnx.helper.make_tensor_value_info(name, ttype.elem_type, list(ttype.shape or ()))


def _default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    raise PlanError(f"model {model.graph.name!r} imports no standard ONNX opset")
