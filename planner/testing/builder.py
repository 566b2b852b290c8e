"""A model under construction for the strategies: a `_Graph` holds nodes, initializers and the shape of every
activation so far; each node's output shapes come from ONNX shape inference, so every model it builds passes the
checker.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper, shape_inference

OPSET = 17
IR_VERSION = 8
MAX_ELEMENTS = 2048  # per tensor: small enough that a whole model checks against onnxruntime in well under a second

Draw = st.DrawFn


@dataclass
class _Graph:
    """A model under construction: nodes, initializers and the shape of every activation so far."""

    rng: np.random.Generator
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[TensorProto] = field(default_factory=list)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    count: int = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def constant(self, prefix: str, value: np.ndarray) -> str:
        name = self.name(prefix)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def weight(self, prefix: str, shape: Sequence[int], fan_in: int = 1) -> str:
        """Seeded normal values, scaled so that activations stay near unit size through a chain of layers."""
        value = self.rng.standard_normal(tuple(shape)).astype(np.float32) / np.float32(math.sqrt(max(1, fan_in)))
        return self.constant(prefix, value)

    def ints(self, prefix: str, values: Sequence[int]) -> str:
        return self.constant(prefix, np.array(list(values), dtype=np.int64))

    def add(self, op_type: str, inputs: Sequence[str], outputs: int = 1, **attrs: Any) -> list[str] | None:
        """Append a node; its output shapes come from ONNX shape inference. Returns None (and adds nothing, not even
        the constants made for this layer, which the caller rolls back) when an output would be empty or too big."""
        names = [self.name(op_type.lower()) for _ in range(outputs)]
        node = helper.make_node(op_type, list(inputs), names, name=f"{op_type.lower()}_{self.count}", **attrs)
        known = {init.name: init for init in self.initializers}
        types = {}
        for name in inputs:
            if name in self.shapes:
                types[name] = helper.make_tensor_type_proto(TensorProto.FLOAT, self.shapes[name])
            elif name:
                init = known[name]
                types[name] = helper.make_tensor_type_proto(init.data_type, list(init.dims))
        inferred = shape_inference.infer_node_outputs(
            onnx.defs.get_schema(op_type, OPSET), node, types, {n: known[n] for n in inputs if n in known},
            opset_imports=[helper.make_opsetid("", OPSET)])
        shapes = []
        for name in names:
            dims = inferred[name].tensor_type.shape.dim
            shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
            if any(d < 1 for d in shape) or math.prod(shape) > MAX_ELEMENTS:
                return None
            shapes.append(shape)
        self.nodes.append(node)
        self.shapes.update(zip(names, shapes, strict=True))
        return names
