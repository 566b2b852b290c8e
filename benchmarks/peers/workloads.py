"""The three models of the side-by-side run, as ONNX files, and their MAC layers as SCALE-Sim topology rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import numpy_helper, shape_inference

import models
from models.builder import GraphBuilder
from models.layers import conv, linear, max_pool, relu


def small_cnn() -> onnx.ModelProto:
    """Conv3x3 -> Relu -> Conv3x3 -> Relu -> MaxPool -> Gemm at 32x32 (3 -> 32 -> 32 channels, 10 classes)."""
    b = GraphBuilder("small_cnn", seed=0)
    x = b.input("input", (1, 3, 32, 32))
    x = relu(b, conv(b, x, "conv1", in_channels=3, out_channels=32, kernel=3, padding=1, bias=True), "relu1")
    x = relu(b, conv(b, x, "conv2", in_channels=32, out_channels=32, kernel=3, padding=1, bias=True), "relu2")
    x = b.node("Flatten", [max_pool(b, x, "pool", kernel=2, stride=2)], name="flatten", axis=1)
    b.output(linear(b, x, "fc", in_features=32 * 16 * 16, out_features=10), (1, 10))
    return b.build(doc="benchmarks/peers small CNN")


def basic_block() -> onnx.ModelProto:
    """ResNet's basic block at 56x56x64: Conv3x3 -> Relu -> Conv3x3 -> Add (identity) -> Relu."""
    b = GraphBuilder("basic_block", seed=0)
    x = b.input("input", (1, 64, 56, 56))
    y = relu(b, conv(b, x, "conv1", in_channels=64, out_channels=64, kernel=3, padding=1), "relu1")
    y = conv(b, y, "conv2", in_channels=64, out_channels=64, kernel=3, padding=1)
    out = relu(b, b.node("Add", [y, x], name="add"), "relu2")
    b.output(out, (1, 64, 56, 56))
    return b.build(doc="benchmarks/peers ResNet basic block")


MODELS = {"small_cnn": small_cnn, "basic_block": basic_block, "resnet18": lambda: models.build("resnet18")}


@dataclass(frozen=True, slots=True)
class Layer:
    """A MAC layer as SCALE-Sim sees it: the padded input its windows read, filter, channels, filters, stride;
    `mnk` its GEMM shape."""

    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    filters: int
    stride: int
    mnk: tuple[int, int, int]

    @property
    def shape_key(self) -> tuple[int, ...]:
        """Layers with the same key are the same work for SCALE-Sim (it sees no values)."""
        return (self.ifmap_h, self.ifmap_w, self.filter_h, self.filter_w, self.channels, self.filters, self.stride)


def mac_layers(model: onnx.ModelProto) -> list[Layer]:
    """Every Conv and Gemm of `model` (groups of 1, square strides), in graph order."""
    model = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in (*model.graph.value_info, *model.graph.input, *model.graph.output)}
    weights = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    layers = []
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            _, channels, height, width = shapes[node.input[0]]
            filters, _, kh, kw = weights[node.input[1]]
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            stride = int(attrs.get("strides", [1, 1])[0])
            out_h, out_w = shapes[node.output[0]][2:]
            # the padded rows and columns the windows read: a strided conv may leave the last padded row unread,
            # and SCALE-Sim, given it, would round its ofmap up by one row (29x29 for a 28x28 output)
            rows, columns = (out_h - 1) * stride + kh, (out_w - 1) * stride + kw
            assert rows <= height + pads[0] + pads[2] and columns <= width + pads[1] + pads[3]
            layers.append(Layer(node.name, rows, columns, kh, kw, channels, filters, stride,
                                (out_h * out_w, filters, channels * kh * kw)))
        elif node.op_type == "Gemm":
            rows, inner = shapes[node.input[0]]
            out_features = weights[node.input[1]][0 if attrs.get("transB", 0) else 1]
            layers.append(Layer(node.name, rows, 1, rows, 1, inner, out_features, 1, (rows, out_features, inner)))
    return layers


def write_topology(layers: list[Layer], path: Path) -> None:
    """SCALE-Sim's conv topology CSV (a Gemm is a 1x1 conv of one pixel: M = 1)."""
    lines = ["Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"]
    for layer in layers:
        if layer.filter_w == 1 and layer.ifmap_w == 1 and layer.filter_h == layer.ifmap_h:  # a Gemm row of M = 1
            cells = (1, 1, 1, 1, layer.channels, layer.filters, 1)
        else:
            cells = (layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w, layer.channels, layer.filters,
                     layer.stride)
        lines.append(", ".join([layer.name, *map(str, cells)]) + ",")
    path.write_text("\n".join(lines) + "\n")
