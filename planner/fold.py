"""Static shapes through exporter shape subgraphs: onnx shape inference and constant folding, to a fixed point.

Exporters compute weights, reshape targets and masks with small subgraphs: Constant, ConstantOfShape, Cast, and
PyTorch's `Shape -> Gather -> Unsqueeze -> Concat -> Reshape/Expand` chains (nn.MultiheadAttention, `expand(batch,
-1, -1)` of a class token, Swin's shifted-window mask, BERT's position ids). With the input shapes fixed first, each
round runs onnx's shape inference with data propagation, then evaluates every node whose inputs are all known (a
Shape from its input's static shape; any other op with `planner.evaluate`: onnx.reference, or onnxruntime for an op
version the reference lacks), and stores the value, whose shape fixes the tensor's type. Rounds repeat until nothing
changes. A constant too large to evaluate cheaply keeps its node in `constant_nodes`: its shape is known, and its
value can be computed when the functional check needs it. Large initializers never enter this loop: shape inference
sees them as typed inputs, so weights are not copied, and external weight data is never read.

Why this and not a simplifier users already run (`python benchmarks/shape_folding.py` measures all three on the
real exports in tests/data/import): `infer_shapes(data_prop=True)` alone leaves shapes unknown in 5 of the 9 (e.g.
252 of Swin's 1113 node outputs), because it propagates values only through a few ops. onnxsim and onnxslim make
every shape static too, but they need every weight loaded, rewrite and rename the graph (Swin's 1113 nodes become
97 or 87 fused ones, so messages could not name the user's nodes), onnxsim prints C++ warnings straight to stderr (35
lines on Swin) that no Python code can silence, and they add a dependency (onnxslim pulls in sympy; onnxsim is a
native extension). Folding with onnx's own shape inference and reference evaluator makes all 9 static, keeps the node
names, prints nothing, and needs nothing beyond onnx and onnxruntime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from planner import onnx_io
from planner.errors import PlanError
from planner.evaluate import run_node

FOLD_LIMIT_ELEMENTS = 1 << 16  # values kept for planning are small: shapes, axes, pads, scales, scalars
# Integer types narrower than float32: a weight stored in one of them and dequantized is not folded into a float
# constant, so DRAM holds (and compulsory traffic counts) the narrow integers, and the DequantizeLinear runs as an op.
NARROW_INTEGERS = frozenset({onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT16,
                             onnx.TensorProto.UINT16, onnx.TensorProto.INT4, onnx.TensorProto.UINT4})


@dataclass(frozen=True, slots=True)
class TensorType:
    elem_type: int
    shape: tuple[int | None, ...] | None  # None: rank unknown; a None dim: unknown extent
    value_kind: str = "tensor"  # or what else a value can be: "sequence", "map", "optional", "sparse tensor"


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
        _store(node.output[0], _shape_value(node, shape), values, constants, types)  # type: ignore[arg-type]
        return True
    if not all(name in constants for name in inputs):
        return False
    if node.op_type == "DequantizeLinear" and not node.domain and _narrow_weight(types.get(inputs[0])):
        return False
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
    results = evaluate_node(node, opset, values, where)
    if any(result.size > FOLD_LIMIT_ELEMENTS for result in results):
        lazy.append(node)  # its shape was known only from its inputs' values: keep the shape, not the value
        for name, result in zip(outputs, results, strict=False):
            constants.add(name)
            types[name] = TensorType(onnx.helper.np_dtype_to_tensor_dtype(result.dtype), result.shape)
        return True
    for name, result in zip(outputs, results, strict=False):
        _store(name, result, values, constants, types)
    return True


def _narrow_weight(ttype: TensorType | None) -> bool:
    """A tensor of more than one narrow integer: a quantized weight (a scalar is a parameter, folded freely)."""
    return ttype is not None and ttype.elem_type in NARROW_INTEGERS and ttype.shape is not None and \
        None not in ttype.shape and math.prod(ttype.shape) > 1  # type: ignore[arg-type]


def _store(name: str, value: np.ndarray, values: dict[str, np.ndarray], constants: set[str],
           types: dict[str, TensorType]) -> None:
    # The value fixes the type: shape inference may have left dims unknown that only the value's shape knows
    # (an Expand to a target that was itself folded this round).
    values[name] = value
    constants.add(name)
    types[name] = TensorType(onnx.helper.np_dtype_to_tensor_dtype(value.dtype), value.shape)


def evaluate_node(node: onnx.NodeProto, opset: int, values: dict[str, np.ndarray], where: str) -> list[np.ndarray]:
    """Run one node on known input values (onnx.reference, else onnxruntime), with no warning printed."""
    feeds = {name: values[name] for name in node.input if name}
    try:
        return run_node(node, opset, feeds)
    except Exception as exc:  # the evaluator raises whatever its op raises; report it on one line
        raise PlanError(f"{where}: node {node.name!r} ({node.op_type}): constant folding failed: "
                        f"{' '.join(str(exc).split())[:200]}") from None


def _shape_value(node: onnx.NodeProto, shape: tuple[int, ...]) -> np.ndarray:
    # Shape and Size need only the input's shape, so no data of that size is made. Shape-15's start and end
    # slice the shape as Python slices do (negative from the end, clamped).
    if node.op_type == "Size":
        return np.array(math.prod(shape), np.int64)
    attrs = {attr.name: attr.i for attr in node.attribute}
    return np.array(shape[attrs.get("start", 0):attrs.get("end", len(shape))], np.int64)


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
        kind = value.type.WhichOneof("value")
        if kind == "tensor_type":
            found[value.name] = _tensor_type(value.type.tensor_type)
        elif kind is not None:
            found[value.name] = TensorType(0, None, kind.removesuffix("_type").replace("_", " "))
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
