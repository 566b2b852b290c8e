"""Independent MAC counter for the zoo tests (Conv, Gemm, MatMul only).

Why here and not in ``models``: the planner owns the real cost model; this is
a cross-check that the full-size graphs have the published compute.
"""

from __future__ import annotations

import math

import onnx
from onnx import helper, shape_inference


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    # Shape inference serializes the model; turn float weights into shaped
    # graph inputs first so VGG's 550 MB of weights are not copied around.
    inferred = shape_inference.infer_shapes(_without_float_weights(model), strict_mode=True)
    shapes: dict[str, tuple[int, ...]] = {}
    for info in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        shapes[info.name] = tuple(d.dim_value for d in info.type.tensor_type.shape.dim)
    for tensor in inferred.graph.initializer:
        shapes[tensor.name] = tuple(tensor.dims)
    return shapes


def _without_float_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    graph = light.graph
    graph.node.extend(model.graph.node)
    graph.input.extend(model.graph.input)
    graph.output.extend(model.graph.output)
    for tensor in model.graph.initializer:
        if tensor.data_type == onnx.TensorProto.INT64:
            graph.initializer.append(tensor)
        else:
            graph.input.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    return light


def count_macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of Conv, Gemm and MatMul nodes (batch included)."""
    shapes = _shapes(model)
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv":
            weight = shapes[node.input[1]]
            total += math.prod(shapes[node.output[0]]) * math.prod(weight[1:])
        elif node.op_type == "Gemm":
            trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
            a_shape = shapes[node.input[0]]
            total += math.prod(shapes[node.output[0]]) * a_shape[0 if trans_a else 1]
        elif node.op_type == "MatMul":
            total += math.prod(shapes[node.output[0]]) * shapes[node.input[0]][-1]
    return total
