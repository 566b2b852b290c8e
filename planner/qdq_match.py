"""What a QDQ chain is made of: the quantized side of DequantizeLinear and QuantizeLinear nodes, found in a graph.

`QdqView` maps producers, readers, initializers and element types of one ModelProto, and answers the questions every
rewrite of `planner/qdq.py` asks: which int8/uint8 tensor a float value dequantizes, and which QuantizeLinear is the
only reader of an op's output. The helpers below compare scales and zero points as constants.

>>> import onnx.parser
>>> m = onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 17]>
... g (int8[1,4] a) => (float[1,4] y) <float s = {0.1}, int8 z = {0}> {
...   y = DequantizeLinear(a, s, z)
... }''')
>>> QdqView(m).dequantized("y")
Quant(data='a', scale='s', zero_point='z', axis=1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

INT8_TYPES = frozenset({onnx.TensorProto.INT8, onnx.TensorProto.UINT8})


@dataclass(frozen=True, slots=True)
class Quant:
    """The integer side of a DequantizeLinear or QuantizeLinear: data, scale, zero point ("" when omitted)."""

    data: str
    scale: str
    zero_point: str
    axis: int


class QdqView:
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

    def dequantized(self, name: str) -> Quant | None:
        """The DQ feeding `name`, when it dequantizes int8/uint8 by per-tensor or per-axis scales."""
        node = self.producer.get(name)
        while node is not None and node.op_type == "Identity":
            node = self.producer.get(node.input[0])
        if node is None or node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
            return None
        if any(attr.name == "block_size" and attr.i for attr in node.attribute):
            return None
        zero_point = node.input[2] if len(node.input) > 2 else ""
        data_type = self.elem_types.get(node.input[0]) or self.quantized_type(node.input[0])
        if data_type not in INT8_TYPES and not (zero_point and self.elem_types.get(zero_point) in INT8_TYPES):
            return None
        return Quant(node.input[0], node.input[1], zero_point, quant_axis(node))

    def quantized_by(self, name: str) -> tuple[onnx.NodeProto, Quant] | None:
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
        return node, Quant(node.output[0], node.input[1], zero_point, quant_axis(node))

    def quantized_type(self, name: str) -> int:
        node = self.producer.get(name)
        if node is not None and node.op_type == "QuantizeLinear" and len(node.input) > 2:
            return self.elem_types.get(node.input[2], 0)
        return 0


def same_type(view: QdqView, first: Quant, second: Quant) -> bool:
    """onnxruntime's QLinearConv and QLinearMatMul take int8 in and out, or uint8 in and out, not a mix."""
    return integer_type(view, first) == integer_type(view, second)


def integer_type(view: QdqView, quant: Quant) -> int:
    if quant.zero_point:
        return view.elem_types.get(quant.zero_point, 0)
    return view.elem_types.get(quant.data) or view.quantized_type(quant.data) or onnx.TensorProto.UINT8


def scalar_scale(view: QdqView, quant: Quant) -> bool:
    tensor = view.initializers.get(quant.scale)
    return tensor is not None and int(np.prod(tensor.dims)) == 1


def per_channel(view: QdqView, weight: Quant) -> bool:
    """Per tensor, or per output channel (axis 0): the scales the integer ops take for weights."""
    return scalar_scale(view, weight) or weight.axis == 0


def same_constants(view: QdqView, first: Sequence[str], second: Sequence[str]) -> bool:
    for a, b in zip(first, second, strict=True):
        if a == b:
            continue
        va, vb = (view.value(a) if a else np.zeros(1)), (view.value(b) if b else np.zeros(1))
        if va is None or vb is None or va.size != 1 or vb.size != 1 or va.reshape(-1)[0] != vb.reshape(-1)[0]:
            return False
    return True


def explicit_zero(view: QdqView, quant: Quant) -> str:
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


def quant_axis(node: onnx.NodeProto) -> int:
    return next((attr.i for attr in node.attribute if attr.name == "axis"), 1)
