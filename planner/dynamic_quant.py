"""DynamicQuantizeLinear in tileable pieces: the range of x by stages, then y elementwise.

ONNX's DynamicQuantizeLinear computes `y_scale = (max(0, max x) - min(0, min x)) / 255`, a zero point from them,
and `y = saturate(round(x / y_scale) + y_zero_point)` (round half to even). Lowered as one op, every element of y
depends on all of x, so its smallest tile holds the whole input: a 64x16x16 activation (64 KiB in fp32) cannot plan
in a 64 KiB scratchpad. A compiler computes the range first, in pieces, and quantizes after. This pass rewrites the
node into standard ONNX ops that do the same, before planning:

- `ReduceMin` and `ReduceMax` of x over its trailing axes (as many as fit in `ROW` elements, keepdims), repeated on
  the partial results until they hold at most `ROW` elements; every stage keeps its leading axes, so it tiles;
- `Concat` of the last partial minima and maxima, and a `DynamicQuantizeLinear` of that: its min and max are those
  of x, so its `y_scale` and `y_zero_point` are x's bit for bit (its own y is unread, and not planned);
- `QuantizeLinear(x, y_scale, y_zero_point)`: elementwise, reading the two scalars whole. onnxruntime computes both
  ops' y with the same kernel (MlasQuantizeLinear), so it is DQL's y bit for bit (tests/planner/test_dynamic_quant).

The partial tensors are ordinary activations of the graph the planner sees (float32, their shape from shape
inference, spilled to DRAM like any intermediate if a plan must); they are not model inputs, constants or outputs,
so compulsory traffic does not count them. `--check` compares y, y_scale and y_zero_point with onnxruntime running
DynamicQuantizeLinear as written, and the partial tensors with onnxruntime running this rewrite
(`planner.check.reference_values`). A DynamicQuantizeLinear of at most `ROW` elements is left as it is. The pass
needs x's static shape: `planner.graph.load_graph` folds first and gives it the shapes folding found (exporters'
shape subgraphs hide them from plain shape inference: every DynamicQuantizeLinear of a quantized BERT export).

>>> import onnx.parser
>>> m = onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 17]>
... g (float[1,64,16,16] x) => (uint8[1,64,16,16] y, float s, uint8 z) { y, s, z = DynamicQuantizeLinear(x) }''')
>>> [n.op_type for n in split_dynamic_quantize(m).graph.node]
['ReduceMin', 'ReduceMax', 'Concat', 'DynamicQuantizeLinear', 'QuantizeLinear']
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

ROW = 1024  # elements one stage reduces per output element, and the most the final DynamicQuantizeLinear reads
AXES_INPUT_SINCE = 18  # ReduceMin / ReduceMax take `axes` as an input from opset 18


def split_dynamic_quantize(model: onnx.ModelProto,
                           shapes: Mapping[str, tuple[int, ...]] | None = None) -> onnx.ModelProto:
    """`model` with every DynamicQuantizeLinear of more than `ROW` elements rewritten (module docstring): a copy, or
    `model` itself when there is none. `shapes` gives static shapes (the folded graph's, which exporters' shape
    subgraphs hide from plain shape inference); without it, onnx shape inference on `model` finds what it can."""
    graph = model.graph
    if not any(node.op_type == "DynamicQuantizeLinear" and node.domain in ("", "ai.onnx") for node in graph.node):
        return model
    known = _shapes(model) if shapes is None else shapes
    result = onnx.ModelProto()
    result.CopyFrom(model)
    opset = next(entry.version for entry in result.opset_import if entry.domain in ("", "ai.onnx"))
    names = _Names(result)
    nodes: list[onnx.NodeProto] = []
    for node in result.graph.node:
        shape = known.get(node.input[0]) if node.op_type == "DynamicQuantizeLinear" and node.input else None
        if node.domain not in ("", "ai.onnx") or shape is None or math.prod(shape) <= ROW:
            nodes.append(node)
            continue
        nodes += _pieces(node, tuple(shape), opset, names, result.graph)
    if len(nodes) == len(result.graph.node):
        return model
    del result.graph.node[:]
    result.graph.node.extend(nodes)
    return result


def internal_tensors(original: onnx.ModelProto, split: onnx.ModelProto) -> list[str]:
    """The tensors the rewrite made (partial minima and maxima, their concatenation, the unread y)."""
    before = {name for node in original.graph.node for name in node.output}
    return [name for node in split.graph.node for name in node.output if name and name not in before]


def stages(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The axes each reduction stage reduces (trailing ones, at most `ROW` elements, at least one axis that is not 1),
    until what is left has at most `ROW` elements.

    >>> stages((1, 64, 16, 16))
    [(2, 3)]
    >>> stages((1, 512, 56, 56))
    [(3,), (2,)]
    """
    result: list[tuple[int, ...]] = []
    shape = tuple(shape)
    while math.prod(shape) > ROW:
        axes: list[int] = []
        size = 1
        for axis in reversed(range(len(shape))):
            if axes and shape[axis] > 1 and size * shape[axis] > ROW:
                break
            if shape[axis] > 1 or axes:
                axes.insert(0, axis)
            size *= shape[axis]
        result.append(tuple(axes))
        shape = tuple(1 if axis in axes else extent for axis, extent in enumerate(shape))
    return result


def _pieces(node: onnx.NodeProto, shape: tuple[int, ...], opset: int, names: _Names,
            graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    x = node.input[0]
    y, scale, zero_point = [*node.output, "", "", ""][:3]
    base = node.name or names.fresh("DynamicQuantizeLinear")
    nodes: list[onnx.NodeProto] = []
    low, high = x, x
    for number, axes in enumerate(stages(shape)):
        low = _reduce(nodes, "ReduceMin", low, axes, opset, names, graph, f"{base}/min{number}")
        high = _reduce(nodes, "ReduceMax", high, axes, opset, names, graph, f"{base}/max{number}")
    both = names.fresh(f"{base}/range")
    nodes.append(helper.make_node("Concat", [low, high], [both], name=names.fresh(f"{base}/Concat"), axis=0))
    scale = scale or names.fresh(f"{base}/scale")
    zero_point = zero_point or names.fresh(f"{base}/zero_point")
    unread = names.fresh(f"{base}/range_quantized")
    nodes.append(helper.make_node("DynamicQuantizeLinear", [both], [unread, scale, zero_point],
                                  name=names.fresh(f"{base}/range_DynamicQuantizeLinear")))
    if y:
        nodes.append(helper.make_node("QuantizeLinear", [x, scale, zero_point], [y],
                                      name=names.fresh(f"{base}/QuantizeLinear")))
    return nodes


def _reduce(nodes: list[onnx.NodeProto], op_type: str, data: str, axes: tuple[int, ...], opset: int, names: _Names,
            graph: onnx.GraphProto, base: str) -> str:
    out = names.fresh(base)
    if opset >= AXES_INPUT_SINCE:
        axes_name = names.fresh(f"{base}_axes")
        graph.initializer.append(numpy_helper.from_array(np.array(axes, np.int64), axes_name))
        nodes.append(helper.make_node(op_type, [data, axes_name], [out], name=names.fresh(f"{base}/{op_type}"),
                                      keepdims=1))
    else:
        nodes.append(helper.make_node(op_type, [data], [out], name=names.fresh(f"{base}/{op_type}"),
                                      axes=list(axes), keepdims=1))
    return out


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Static shapes of the tensors DynamicQuantizeLinear nodes read, from onnx shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model)
    found: dict[str, tuple[int, ...]] = {}
    for value in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        kind = value.type.tensor_type
        if kind.HasField("shape") and all(dim.HasField("dim_value") for dim in kind.shape.dim):
            found[value.name] = tuple(dim.dim_value for dim in kind.shape.dim)
    for tensor in model.graph.initializer:
        found[tensor.name] = tuple(tensor.dims)
    return found


class _Names:
    """Fresh tensor and node names, unused anywhere in the model."""

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.taken = {name for node in graph.node for name in (*node.input, *node.output, node.name)}
        self.taken |= {v.name for v in (*graph.input, *graph.output, *graph.value_info)}
        self.taken |= {t.name for t in graph.initializer}

    def fresh(self, base: str) -> str:
        name, number = base, 1
        while name in self.taken:
            name, number = f"{base}_{number}", number + 1
        self.taken.add(name)
        return name
