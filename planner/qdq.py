"""QDQ to integer ops: the rewrite that makes a quantized model plan as integers.

onnxruntime's `quantize_static` (QDQ format) writes every quantized op as `DequantizeLinear -> op -> QuantizeLinear`
around an fp32 op, with int8 weights behind their own DequantizeLinear. Planned as written, the weights would be
dequantized to fp32 and the op would run on floats. This pass rewrites each chain into the one ONNX op that means the
same thing on integers, so the int8 tensors are what DRAM and the scratchpad hold and the tensor engine runs at its
int8 rate:

- `DQ(x), DQ(w)[, DQ(b: int32)] -> Conv -> Q` becomes `QLinearConv(x, w, b)`;
- `DQ(a), DQ(b) -> MatMul -> Q` becomes `QLinearMatMul`;
- `DQ(a), DQ(w)[, DQ(b)] -> Gemm -> Q` (transB=1, alpha=beta=1) becomes a 1-D `QLinearConv` between two Reshapes:
  standard ONNX has no quantized Gemm (QGemm is com.microsoft), and a Gemm with a (K, N) weight is a 1x1 conv;
- `DQ(x) -> MaxPool | Reshape | Flatten | Transpose | ... -> Q` with one scale and zero point on both sides becomes
  the op on the integers: these ops only pick or move values, and dequantizing then requantizing a value with the
  same scale gives back the same integer, so this is exact.

- `DQ(table) -> Gather(indices)` with one scale (an embedding table, as the quantizer writes it with no Q after)
  becomes `Gather(table, indices) -> DQ`: dequantizing is elementwise, so picking rows first is exact, and only the
  int8 rows the indices name move.

Ops with no standard integer form (Add, GlobalAveragePool, Softmax...) keep their DQ and Q nodes, which plan as
vector ops. The rewrite is on the ModelProto before folding, so weight DequantizeLinear nodes are never folded into
fp32 constants; the functional check compares against onnxruntime running the file as written (see
`planner/ops/quant.py` for the tolerance that needs).

>>> import onnx.parser
>>> m = onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 17]>
... g (int8[1,4] a) => (int8[1,4] y) <float s = {0.1}, int8 z = {0}, int8[4,4] w = {1,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1}> {
...   da = DequantizeLinear(a, s, z)
...   dw = DequantizeLinear(w, s, z)
...   f = MatMul(da, dw)
...   y = QuantizeLinear(f, s, z)
... }''')
>>> [n.op_type for n in fuse_qdq(m).graph.node]
['QLinearMatMul']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

INT8_TYPES = frozenset({onnx.TensorProto.INT8, onnx.TensorProto.UINT8})
# Ops that only select or move values: on integers they need the same scale and zero point in and out.
VALUE_PRESERVING = frozenset({"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity",
                              "Slice", "Concat", "Split", "Pad", "Resize", "GlobalMaxPool", "DepthToSpace",
                              "SpaceToDepth", "Gather", "Expand", "Tile"})
ONE_INPUT_PRESERVING = frozenset({"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity",
                                  "GlobalMaxPool", "DepthToSpace", "SpaceToDepth"})


@dataclass(frozen=True, slots=True)
class _Quant:
    """The integer side of a DequantizeLinear or QuantizeLinear: data, scale, zero point ("" when omitted)."""

    data: str
    scale: str
    zero_point: str
    axis: int


class _Model:
    """Producer and consumer maps and small initializer values of a graph, for matching chains."""

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.graph = graph
        self.producer = {out: node for node in graph.node for out in node.output if out}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        self.outputs = {value.name for value in graph.output}
        self.initializers = {tensor.name: tensor for tensor in graph.initializer}
        self.elem_types = {tensor.name: tensor.data_type for tensor in graph.initializer}
        self.elem_types.update({v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.value_info)})

    def value(self, name: str) -> np.ndarray | None:
        tensor = self.initializers.get(name)
        if tensor is None or tensor.data_location == onnx.TensorProto.EXTERNAL:
            return None
        return numpy_helper.to_array(tensor)

    def dequantized(self, name: str) -> _Quant | None:
        """The DQ feeding `name`, when it dequantizes int8/uint8 by per-tensor or per-axis scales."""
        node = self.producer.get(name)
        while node is not None and node.op_type == "Identity":
            node = self.producer.get(node.input[0])
        if node is None or node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
            return None
        if any(attr.name == "block_size" and attr.i for attr in node.attribute):
            return None
        zero_point = node.input[2] if len(node.input) > 2 else ""
        data_type = self.elem_types.get(node.input[0]) or self._quantized_type(node.input[0])
        if data_type not in INT8_TYPES and not (zero_point and self.elem_types.get(zero_point) in INT8_TYPES):
            return None
        return _Quant(node.input[0], node.input[1], zero_point, _axis(node))

    def quantized_by(self, name: str) -> tuple[onnx.NodeProto, _Quant] | None:
        """The only reader of `name` when it is a QuantizeLinear to int8/uint8 and `name` is no graph output."""
        readers = self.consumers.get(name, [])
        if len(readers) != 1 or name in self.outputs:
            return None
        node = readers[0]
        if node.op_type != "QuantizeLinear" or node.domain not in ("", "ai.onnx") or node.input[0] != name:
            return None
        if any(attr.name in ("output_dtype", "block_size") and attr.i for attr in node.attribute):
            return None
        zero_point = node.input[2] if len(node.input) > 2 else ""
        if not zero_point or self.elem_types.get(zero_point) not in INT8_TYPES:
            return None  # no zero point means uint8, but the fused op needs one to name its type
        return node, _Quant(node.output[0], node.input[1], zero_point, _axis(node))

    def _quantized_type(self, name: str) -> int:
        node = self.producer.get(name)
        if node is not None and node.op_type == "QuantizeLinear" and len(node.input) > 2:
            return self.elem_types.get(node.input[2], 0)
        return 0


def fuse_qdq(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with every `DQ -> op -> Q` chain that has an integer form rewritten to it (see the module
    docstring); DQ nodes left without readers are dropped. A model without such chains comes back unchanged."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    if not _fuse_one(result):
        return result
    while _fuse_one(result):
        pass
    _drop_unread(result.graph)
    read = {name for node in result.graph.node for name in node.input} | {v.name for v in result.graph.input}
    kept = [tensor for tensor in result.graph.initializer if tensor.name in read]  # DQ'd weights now unread
    del result.graph.initializer[:]
    result.graph.initializer.extend(kept)
    return result


def _fuse_one(model: onnx.ModelProto) -> bool:
    view = _Model(model)
    for node in view.graph.node:
        if node.domain not in ("", "ai.onnx") or not node.output:
            continue
        if node.op_type == "Gather" and _gather_first(model, view, node):
            return True
        found = view.quantized_by(node.output[0]) if len(node.output) == 1 else None
        if found is None:
            continue
        quant, out = found
        replacement = _integer_form(view, node, out)
        if replacement is None:
            continue
        _replace(model, view, (node, quant), replacement)
        return True
    return False


def _integer_form(view: _Model, node: onnx.NodeProto, out: _Quant) -> list[onnx.NodeProto] | None:
    if node.op_type == "Conv":
        return _conv(view, node, out)
    if node.op_type == "MatMul":
        return _matmul(view, node, out)
    if node.op_type == "Gemm":
        return _gemm(view, node, out)
    if node.op_type in ONE_INPUT_PRESERVING:
        return _preserving(view, node, out)
    return None


def _conv(view: _Model, node: onnx.NodeProto, out: _Quant) -> list[onnx.NodeProto] | None:
    x, w = view.dequantized(node.input[0]), view.dequantized(node.input[1])
    if x is None or w is None or not _scalar_scale(view, x) or not _scalar_scale(view, out) or \
            not _per_channel(view, w):
        return None
    bias = _bias(view, node.input[2] if len(node.input) > 2 else "", x, w)
    if bias is None or not _same_type(view, x, out):
        return None
    inputs = [x.data, x.scale, _zero(view, x), w.data, w.scale, _zero(view, w), out.scale, out.zero_point]
    return [helper.make_node("QLinearConv", [*inputs, *([bias] if bias else [])], [out.data], name=node.name,
                             **{a.name: helper.get_attribute_value(a) for a in node.attribute})]


def _matmul(view: _Model, node: onnx.NodeProto, out: _Quant) -> list[onnx.NodeProto] | None:
    a, b = view.dequantized(node.input[0]), view.dequantized(node.input[1])
    if a is None or b is None or not _scalar_scale(view, a) or not _scalar_scale(view, out) or \
            not _same_type(view, a, out):
        return None
    b_rank = len(view.initializers[b.data].dims) if b.data in view.initializers else 0
    if not _scalar_scale(view, b) and (b_rank != 2 or b.axis not in (-1, 1)):
        return None  # QLinearMatMul takes per-column scales of a 2-D b only
    inputs = [a.data, a.scale, _zero(view, a), b.data, b.scale, _zero(view, b), out.scale, out.zero_point]
    return [helper.make_node("QLinearMatMul", inputs, [out.data], name=node.name)]


def _gemm(view: _Model, node: onnx.NodeProto, out: _Quant) -> list[onnx.NodeProto] | None:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("transA", 0) or not attrs.get("transB", 0) or attrs.get("alpha", 1.0) != 1.0 or \
            attrs.get("beta", 1.0) != 1.0:
        return None
    a, w = view.dequantized(node.input[0]), view.dequantized(node.input[1])
    if a is None or w is None or w.data not in view.initializers or not _scalar_scale(view, a) or \
            not _scalar_scale(view, out) or not _per_channel(view, w):
        return None
    bias = _bias(view, node.input[2] if len(node.input) > 2 else "", a, w)
    if bias is None or not _same_type(view, a, out):
        return None
    # (M, K) x (N, K)^T as a 1-D conv of kernel 1: input (M, K, 1), weight (N, K, 1), output (M, N, 1).
    weight = view.initializers[w.data]
    weight3 = f"{w.data}_as_conv"
    if weight3 not in view.initializers:
        reshaped = numpy_helper.from_array(numpy_helper.to_array(weight).reshape(*weight.dims, 1), weight3)
        view.graph.initializer.append(reshaped)
        view.initializers[weight3] = reshaped
    to3, to2 = f"{node.name}_as_conv_shape", f"{node.name}_as_gemm_shape"
    view.graph.initializer.extend([numpy_helper.from_array(np.array([0, -1, 1], np.int64), to3),
                                   numpy_helper.from_array(np.array([0, -1], np.int64), to2)])
    inputs = [f"{node.name}_as_conv_input", a.scale, _zero(view, a), weight3, w.scale, _zero(view, w), out.scale,
              out.zero_point]
    conv_out = f"{out.data}_as_conv"
    return [helper.make_node("Reshape", [a.data, to3], [inputs[0]], name=f"{node.name}_reshape_in"),
            helper.make_node("QLinearConv", [*inputs, *([bias] if bias else [])], [conv_out], name=node.name,
                             kernel_shape=[1]),
            helper.make_node("Reshape", [conv_out, to2], [out.data], name=f"{node.name}_reshape_out")]


def _gather_first(model: onnx.ModelProto, view: _Model, gather: onnx.NodeProto) -> bool:
    """Rewrite `DQ(table) -> Gather` to `Gather(table) -> DQ` (one scale only, so every row dequantizes alike)."""
    table = view.dequantized(gather.input[0])
    if table is None or not _scalar_scale(view, table) or \
            (table.zero_point and table.zero_point in view.initializers and
             int(np.prod(view.initializers[table.zero_point].dims)) != 1):
        return False
    rows = f"{gather.output[0]}_quantized"
    dequantize = view.producer[gather.input[0]]
    while dequantize.op_type == "Identity":
        dequantize = view.producer[dequantize.input[0]]
    picked = helper.make_node("Gather", [table.data, *gather.input[1:]], [rows], name=gather.name,
                              **{a.name: helper.get_attribute_value(a) for a in gather.attribute})
    after = helper.make_node("DequantizeLinear", [rows, *dequantize.input[1:]], [gather.output[0]],
                             name=f"{gather.name}_DequantizeLinear")
    nodes = list(model.graph.node)
    position = next(i for i, n in enumerate(nodes) if n is gather)
    del model.graph.node[:]
    model.graph.node.extend([*nodes[:position], picked, after, *nodes[position + 1:]])
    return True


def _preserving(view: _Model, node: onnx.NodeProto, out: _Quant) -> list[onnx.NodeProto] | None:
    x = view.dequantized(node.input[0])
    if x is None or not _same(view, (x.scale, x.zero_point), (out.scale, out.zero_point)):
        return None
    if x.zero_point and out.zero_point and view.elem_types.get(x.zero_point) != view.elem_types.get(out.zero_point):
        return None
    return [helper.make_node(node.op_type, [x.data, *node.input[1:]], [out.data], name=node.name,
                             **{a.name: helper.get_attribute_value(a) for a in node.attribute})]


def _bias(view: _Model, name: str, x: _Quant, w: _Quant) -> str | None:
    """The int32 bias to feed the integer op ("" for none), or None when the float bias is not a dequantized
    int32 constant with zero point 0. The quantizer writes it at x_scale * w_scale; a bias shared by several convs
    (the TorchScript exporter dedups equal biases) has the first one's scale and is requantized to this one's, which
    moves it by at most half an accumulator step."""
    if not name:
        return ""
    b = _int32_bias(view, name)
    if b is None:
        return None
    scales = [view.value(s) for s in (b.scale, x.scale, w.scale)]
    zero = view.value(b.zero_point) if b.zero_point else np.zeros(1, np.int32)
    if any(s is None for s in scales) or zero is None or np.any(zero != 0):
        return None
    b_scale, x_scale, w_scale = (np.asarray(s, np.float32) for s in scales)  # type: ignore[arg-type]
    if np.allclose(b_scale, x_scale * w_scale, rtol=1e-6, atol=0):
        return b.data
    values = view.value(b.data)
    if values is None:
        return None
    requantized = np.round(values.astype(np.float64) * b_scale / (x_scale * w_scale).astype(np.float64))
    if np.abs(requantized).max(initial=0) >= 2**31:
        return None
    name = f"{b.data}_at_{x.scale}_{w.scale}"
    if name not in view.initializers:
        tensor = numpy_helper.from_array(requantized.astype(np.int32), name)
        view.graph.initializer.append(tensor)
        view.initializers[name] = tensor
        view.elem_types[name] = onnx.TensorProto.INT32
    return name


def _int32_bias(view: _Model, name: str) -> _Quant | None:
    node = view.producer.get(name)
    while node is not None and node.op_type == "Identity":  # the TorchScript exporter passes shared biases on so
        node = view.producer.get(node.input[0])
    if node is None or node.op_type != "DequantizeLinear" or view.elem_types.get(node.input[0]) != \
            onnx.TensorProto.INT32:
        return None
    return _Quant(node.input[0], node.input[1], node.input[2] if len(node.input) > 2 else "", _axis(node))


def _same_type(view: _Model, first: _Quant, second: _Quant) -> bool:
    """onnxruntime's QLinearConv and QLinearMatMul take int8 in and out, or uint8 in and out, not a mix."""
    return _type(view, first) == _type(view, second)


def _type(view: _Model, quant: _Quant) -> int:
    if quant.zero_point:
        return view.elem_types.get(quant.zero_point, 0)
    return view.elem_types.get(quant.data) or view._quantized_type(quant.data) or onnx.TensorProto.UINT8


def _scalar_scale(view: _Model, quant: _Quant) -> bool:
    tensor = view.initializers.get(quant.scale)
    return tensor is not None and int(np.prod(tensor.dims)) == 1


def _per_channel(view: _Model, weight: _Quant) -> bool:
    """Per tensor, or per output channel (axis 0): the scales the integer ops take for weights."""
    return _scalar_scale(view, weight) or weight.axis == 0


def _same(view: _Model, first: Sequence[str], second: Sequence[str]) -> bool:
    for a, b in zip(first, second, strict=True):
        if a == b:
            continue
        va, vb = (view.value(a) if a else np.zeros(1)), (view.value(b) if b else np.zeros(1))
        if va is None or vb is None or va.size != 1 or vb.size != 1 or va.reshape(-1)[0] != vb.reshape(-1)[0]:
            return False
    return True


def _zero(view: _Model, quant: _Quant) -> str:
    """The zero point input, made explicit: the integer ops require one, DQ may omit it (uint8 zero)."""
    if quant.zero_point:
        return quant.zero_point
    name = f"{quant.data}_zero_point"
    if name not in view.initializers:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(view.elem_types.get(quant.data, onnx.TensorProto.UINT8))
        tensor = numpy_helper.from_array(np.zeros((), dtype), name)
        view.graph.initializer.append(tensor)
        view.initializers[name] = tensor
    return name


def _axis(node: onnx.NodeProto) -> int:
    return next((attr.i for attr in node.attribute if attr.name == "axis"), 1)


def _drop_unread(graph: onnx.GraphProto) -> None:
    """Drop DequantizeLinear and Identity nodes the rewrite left without readers (a shared bias's Identity)."""
    outputs = {value.name for value in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        dead = [node for node in graph.node if node.op_type in ("DequantizeLinear", "Identity") and
                not any(name in read for name in node.output)]
        if not dead:
            return
        kept = [node for node in graph.node if not any(node is d for d in dead)]
        del graph.node[:]
        graph.node.extend(kept)


def _replace(model: onnx.ModelProto, view: _Model, chain: tuple[onnx.NodeProto, onnx.NodeProto],
             replacement: list[onnx.NodeProto]) -> None:
    """Put `replacement` where the chain's op was, drop the op, its Q, and the DQs only it read."""
    graph = model.graph
    op, quant = chain
    dequants = [view.producer[name] for name in op.input if name in view.producer and
                view.producer[name].op_type == "DequantizeLinear"]
    nodes = list(graph.node)
    position = nodes.index(op)
    kept = [n for n in nodes[:position]] + replacement + [n for n in nodes[position + 1:] if n is not quant]
    readers = {name for n in kept for name in n.input} | view.outputs
    kept = [n for n in kept if not (any(n is d for d in dequants) and n.output[0] not in readers)]
    # A DQ that came before the op may now have no reader; the replacement's inputs come before it in order.
    del graph.node[:]
    graph.node.extend(kept)
    dropped = {op.output[0], *(d.output[0] for d in dequants)} - readers
    kept_info = [v for v in graph.value_info if v.name not in dropped]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
