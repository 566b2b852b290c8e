"""A tiny graph builder shared by every model in the zoo.

Why: the zoo is written with ``onnx.helper`` only (no torch, no downloads), and
every builder needs the same four chores done the same way -- seeded weights,
unique readable node names, shared constants, and a model stamped with a fixed
opset and IR version. Doing them here keeps each family module about its
architecture, and keeps the output byte-identical for identical arguments
(one RNG per model, consumed in construction order).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
import onnx
from onnx import TensorProto, helper

DEFAULT_OPSET = 17
DEFAULT_IR_VERSION = 8  # the IR version that introduced opset 17 support; loads in every onnxruntime since 1.12

ConfigT = TypeVar("ConfigT")


def with_overrides(preset: ConfigT, **overrides: Any) -> ConfigT:
    """Return ``preset`` with every override that is not None applied.

    Why: builders take ``small=`` to pick a preset plus optional explicit
    arguments; an explicit argument always wins over the preset.

    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class C:
    ...     width: int = 8
    >>> with_overrides(C(), width=None), with_overrides(C(), width=4)
    (C(width=8), C(width=4))
    """
    return dataclasses.replace(preset, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[type-var]


class GraphBuilder:
    """Accumulates inputs, initializers and nodes, then emits an ONNX model.

    Each node has exactly one output tensor, named like the node, so a graph
    reads as ``layer1.0.conv1 -> layer1.0.bn1 -> ...``. Weights are float32
    initializers named ``<node>.<role>`` (``layer1.0.conv1.weight``).

    >>> b = GraphBuilder("tiny", seed=0)
    >>> x = b.input("input", (1, 4))
    >>> w = b.he_normal("fc.weight", (2, 4), fan_in=4)
    >>> y = b.node("Gemm", [x, w], name="fc", transB=1)
    >>> b.output(y, (1, 2))
    >>> b.build().graph.node[0].name
    'fc'
    """

    def __init__(self, graph_name: str, *, seed: int) -> None:
        self.graph_name = graph_name
        self._rng = np.random.default_rng(seed)
        # Initializers are written straight into the model being built: copying
        # ~550 MB of VGG weights through make_graph/make_model doubles build time.
        self._model = onnx.ModelProto()
        self._built = False
        self._inputs: list[onnx.ValueInfoProto] = []
        self._outputs: list[onnx.ValueInfoProto] = []
        self._nodes: list[onnx.NodeProto] = []
        self._tensor_names: set[str] = set()
        self._constants: dict[str, np.ndarray] = {}
        self._auto_name_counts: dict[str, int] = {}
        self._metadata: dict[str, str] = {}

    # -- names -------------------------------------------------------------

    def _claim(self, name: str) -> str:
        if name in self._tensor_names:
            raise ValueError(f"tensor/node name {name!r} is already used in graph {self.graph_name!r}")
        self._tensor_names.add(name)
        return name

    def _auto_name(self, op_type: str) -> str:
        while True:
            count = self._auto_name_counts.get(op_type, 0)
            self._auto_name_counts[op_type] = count + 1
            candidate = f"{op_type.lower()}_{count}"
            if candidate not in self._tensor_names:
                return candidate

    # -- graph inputs and outputs ------------------------------------------

    def input(self, name: str, shape: Sequence[int], elem_type: int = TensorProto.FLOAT) -> str:
        """Declare a graph input with a fully static shape."""
        self._inputs.append(helper.make_tensor_value_info(self._claim(name), elem_type, list(shape)))
        return name

    def output(self, name: str, shape: Sequence[int], elem_type: int = TensorProto.FLOAT) -> None:
        """Declare an existing tensor as a graph output with a fully static shape."""
        if name not in self._tensor_names:
            raise ValueError(f"output {name!r} is not a tensor of graph {self.graph_name!r}")
        self._outputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))

    # -- initializers ------------------------------------------------------

    def _add_initializer(self, name: str, array: np.ndarray) -> str:
        tensor = self._model.graph.initializer.add()
        tensor.name = self._claim(name)
        tensor.data_type = helper.np_dtype_to_tensor_dtype(array.dtype)
        tensor.dims.extend(array.shape)
        tensor.raw_data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()  # ONNX raw data is LE
        return name

    def draw_normal(self, shape: Sequence[int], *, mean: float = 0.0, std: float) -> np.ndarray:
        """Draw float32 values from N(mean, std**2) with the model's RNG, for initializers built by hand."""
        values = self._rng.standard_normal(tuple(shape), dtype=np.float32)
        values *= np.float32(std)  # in place: VGG's 400 MB fc6 weight should not be copied twice
        if mean:
            values += np.float32(mean)
        return values

    def normal(self, name: str, shape: Sequence[int], *, mean: float = 0.0, std: float) -> str:
        """Add a float32 initializer drawn from N(mean, std**2) with the model's RNG."""
        return self._add_initializer(name, self.draw_normal(shape, mean=mean, std=std))

    def tensor(self, name: str, array: np.ndarray) -> str:
        """Add an initializer with the given contents (e.g. a drawn row replicated per batch)."""
        return self._add_initializer(name, array)

    def he_normal(self, name: str, shape: Sequence[int], *, fan_in: int) -> str:
        """Add a Kaiming-normal weight (std = sqrt(2 / fan_in)).

        Why: it keeps the activation variance roughly constant through a
        ReLU network, so deep random nets neither vanish nor overflow.
        """
        return self.normal(name, shape, std=math.sqrt(2.0 / fan_in))

    def uniform(self, name: str, shape: Sequence[int], *, low: float, high: float) -> str:
        """Add a float32 initializer drawn uniformly from [low, high)."""
        values = self._rng.uniform(low, high, tuple(shape)).astype(np.float32)
        return self._add_initializer(name, values)

    def const(self, name: str, array: np.ndarray) -> str:
        """Add a fixed (non-random) initializer, shared by name.

        Why: reshape shapes, axes and scalars such as relu6's bounds repeat in
        every layer; one shared initializer keeps the graph small. Asking for
        an existing name with different contents is a bug and raises.
        """
        existing = self._constants.get(name)
        if existing is not None:
            if existing.dtype != array.dtype or not np.array_equal(existing, array):
                raise ValueError(f"constant {name!r} redefined with different contents")
            return name
        self._constants[name] = array
        return self._add_initializer(name, array)

    def scalar(self, name: str, value: float) -> str:
        """A shared rank-0 float32 constant (e.g. the attention scale)."""
        return self.const(name, np.array(value, dtype=np.float32))

    def int64s(self, name: str, values: Sequence[int]) -> str:
        """A shared rank-1 int64 constant (reshape shapes, axes, slice bounds)."""
        return self.const(name, np.array(list(values), dtype=np.int64))

    # -- nodes -------------------------------------------------------------

    def node(self, op_type: str, inputs: Sequence[str], *, name: str | None = None, **attrs: Any) -> str:
        """Append a single-output node; returns its output tensor (named like the node)."""
        node_name = self._claim(name if name is not None else self._auto_name(op_type))
        for tensor in inputs:
            if tensor and tensor not in self._tensor_names:
                raise ValueError(f"node {node_name!r} reads unknown tensor {tensor!r}")
        self._nodes.append(helper.make_node(op_type, list(inputs), [node_name], name=node_name, **attrs))
        return node_name

    # -- model -------------------------------------------------------------

    def set_metadata(self, key: str, value: str) -> None:
        """Record a model-level metadata property (e.g. the resolved config)."""
        self._metadata[key] = value

    def build(
        self, *, opset: int = DEFAULT_OPSET, ir_version: int = DEFAULT_IR_VERSION, doc: str = ""
    ) -> onnx.ModelProto:
        """Emit the model with a fixed opset and IR version."""
        if not self._outputs:
            raise ValueError(f"graph {self.graph_name!r} has no outputs")
        if self._built:
            raise RuntimeError("GraphBuilder.build() may be called only once")
        self._built = True
        model = self._model
        model.ir_version = ir_version
        model.producer_name = "scratchplan.models"
        model.doc_string = doc
        model.opset_import.append(helper.make_opsetid("", opset))
        graph = model.graph
        graph.name = self.graph_name
        graph.doc_string = doc
        graph.input.extend(self._inputs)
        graph.output.extend(self._outputs)
        graph.node.extend(self._nodes)
        helper.set_model_props(model, self._metadata)
        return model
