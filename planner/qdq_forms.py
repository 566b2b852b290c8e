"""The integer op for each QDQ chain: `DQ -> Conv | MatMul | Gemm | value-moving op -> Q` as one ONNX op on int8.

Each form takes the matched op and the QuantizeLinear after it (`planner/qdq.py` finds them) and returns the nodes
that replace the chain, or None when the chain has no exact integer form (a per-axis activation scale, mixed int8 and
uint8, a float bias): then the chain stays as written and plans as float ops between vector DQ and Q.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from planner.qdq_match import (
    QdqView,
    Quant,
    explicit_zero,
    per_channel,
    quant_axis,
    same_constants,
    same_type,
    scalar_scale,
)

ONE_INPUT_PRESERVING = frozenset({"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity",
                                  "GlobalMaxPool", "DepthToSpace", "SpaceToDepth"})


def integer_form(view: QdqView, node: onnx.NodeProto, out: Quant) -> list[onnx.NodeProto] | None:
    """The nodes that compute `node` followed by the QuantizeLinear `out` on integers, or None."""
    if node.op_type == "Conv":
        return _conv(view, node, out)
    if node.op_type == "MatMul":
        return _matmul(view, node, out)
    if node.op_type == "Gemm":
        return _gemm(view, node, out)
    if node.op_type in ONE_INPUT_PRESERVING:
        return _preserving(view, node, out)
    return None


def _conv(view: QdqView, node: onnx.NodeProto, out: Quant) -> list[onnx.NodeProto] | None:
    x, w = view.dequantized(node.input[0]), view.dequantized(node.input[1])
    if x is None or w is None or not scalar_scale(view, x) or not scalar_scale(view, out) or \
            not per_channel(view, w):
        return None
    bias = _bias(view, node.input[2] if len(node.input) > 2 else "", x, w)
    if bias is None or not same_type(view, x, out):
        return None
    inputs = [x.data, x.scale, explicit_zero(view, x), w.data, w.scale, explicit_zero(view, w), out.scale,
              out.zero_point]
    return [helper.make_node("QLinearConv", [*inputs, *([bias] if bias else [])], [out.data], name=node.name,
                             **{a.name: helper.get_attribute_value(a) for a in node.attribute})]


def _matmul(view: QdqView, node: onnx.NodeProto, out: Quant) -> list[onnx.NodeProto] | None:
    a, b = view.dequantized(node.input[0]), view.dequantized(node.input[1])
    if a is None or b is None or not scalar_scale(view, a) or not scalar_scale(view, out) or \
            not same_type(view, a, out):
        return None
    b_rank = len(view.initializers[b.data].dims) if b.data in view.initializers else 0
    if not scalar_scale(view, b) and (b_rank != 2 or b.axis not in (-1, 1)):
        return None  # QLinearMatMul takes per-column scales of a 2-D b only
    inputs = [a.data, a.scale, explicit_zero(view, a), b.data, b.scale, explicit_zero(view, b), out.scale,
              out.zero_point]
    return [helper.make_node("QLinearMatMul", inputs, [out.data], name=node.name)]


def _gemm(view: QdqView, node: onnx.NodeProto, out: Quant) -> list[onnx.NodeProto] | None:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("transA", 0) or not attrs.get("transB", 0) or attrs.get("alpha", 1.0) != 1.0 or \
            attrs.get("beta", 1.0) != 1.0:
        return None
    a, w = view.dequantized(node.input[0]), view.dequantized(node.input[1])
    if a is None or w is None or w.data not in view.initializers or not scalar_scale(view, a) or \
            not scalar_scale(view, out) or not per_channel(view, w):
        return None
    bias = _bias(view, node.input[2] if len(node.input) > 2 else "", a, w)
    if bias is None or not same_type(view, a, out):
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
    inputs = [f"{node.name}_as_conv_input", a.scale, explicit_zero(view, a), weight3, w.scale,
              explicit_zero(view, w), out.scale, out.zero_point]
    conv_out = f"{out.data}_as_conv"
    return [helper.make_node("Reshape", [a.data, to3], [inputs[0]], name=f"{node.name}_reshape_in"),
            helper.make_node("QLinearConv", [*inputs, *([bias] if bias else [])], [conv_out], name=node.name,
                             kernel_shape=[1]),
            helper.make_node("Reshape", [conv_out, to2], [out.data], name=f"{node.name}_reshape_out")]


def _preserving(view: QdqView, node: onnx.NodeProto, out: Quant) -> list[onnx.NodeProto] | None:
    x = view.dequantized(node.input[0])
    if x is None or not same_constants(view, (x.scale, x.zero_point), (out.scale, out.zero_point)):
        return None
    if x.zero_point and out.zero_point and view.elem_types.get(x.zero_point) != view.elem_types.get(out.zero_point):
        return None
    return [helper.make_node(node.op_type, [x.data, *node.input[1:]], [out.data], name=node.name,
                             **{a.name: helper.get_attribute_value(a) for a in node.attribute})]


def _bias(view: QdqView, name: str, x: Quant, w: Quant) -> str | None:
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


def _int32_bias(view: QdqView, name: str) -> Quant | None:
    node = view.producer.get(name)
    while node is not None and node.op_type == "Identity":  # the TorchScript exporter passes shared biases on so
        node = view.producer.get(node.input[0])
    if node is None or node.op_type != "DequantizeLinear" or view.elem_types.get(node.input[0]) != \
            onnx.TensorProto.INT32:
        return None
    return Quant(node.input[0], node.input[1], node.input[2] if len(node.input) > 2 else "", quant_axis(node))
