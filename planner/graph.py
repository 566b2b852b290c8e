"""ONNX to Graph: the planner's view of a model.

A Graph has its compute nodes in topological order, every tensor with a static shape and a dtype, and constants kept
apart from activations. Layout-only ops stay as nodes here; `planner.ops` turns them into aliases.

    model.onnx -> read_model -> check_external_data -> check_domains -> sort_and_check_structure
               -> drop_dead_nodes -> apply_shape_overrides -> run_checker -> fuse_qdq -> fold_constants
               [-> split_dynamic_quantize -> fold_constants, with a DynamicQuantizeLinear to split] -> Graph
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import onnx

from planner import onnx_io
from planner.dynamic_quant import split_dynamic_quantize
from planner.errors import PlanError
from planner.fold import Folded, fold_constants
from planner.liveness import drop_dead_nodes
from planner.plannable import check_plannable
from planner.qdq import fuse_qdq

# Element size for planning, by the `--dtype` flag: accelerators rarely run an exported fp32 model as fp32.
PLANNING_DTYPES: Mapping[str, int] = MappingProxyType({"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1})
FLOAT_ELEM_TYPES = frozenset({onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
                              onnx.TensorProto.DOUBLE})
TENSOR_KINDS = ("input", "constant", "activation")


@dataclass(frozen=True, slots=True)
class Tensor:
    """A named tensor with a static shape; `elem_type` is the ONNX TensorProto data type."""

    name: str
    shape: tuple[int, ...]
    elem_type: int
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in TENSOR_KINDS:
            raise ValueError(f"tensor {self.name!r}: kind {self.kind!r} is not one of {TENSOR_KINDS}")
        if any(not isinstance(d, int) or d < 0 for d in self.shape):
            raise ValueError(f"tensor {self.name!r}: shape {self.shape} is not static")

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def dtype(self) -> str:
        return onnx.helper.tensor_dtype_to_string(self.elem_type).removeprefix("TensorProto.").lower()


@dataclass(frozen=True, slots=True)
class Node:
    """One ONNX node with its attributes decoded to Python values (tuples, str, numpy arrays)."""

    name: str
    op_type: str
    inputs: tuple[str, ...]  # "" marks an omitted optional input
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)


@dataclass(frozen=True, slots=True)
class Graph:
    """A model ready to lower.

    `values` holds the folded values of small constants (reshape targets, pads, scales); large weights keep only
    their shape here. `constant_nodes` compute the constants that were too large to fold.
    """

    name: str
    source: str
    opset: int
    nodes: tuple[Node, ...]
    tensors: Mapping[str, Tensor]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    values: Mapping[str, np.ndarray]
    constant_nodes: tuple[Node, ...]
    planning_dtype: str | None = None

    def __post_init__(self) -> None:
        for node in self.nodes:
            for name in (*node.inputs, *node.outputs):
                if name and name not in self.tensors:
                    raise ValueError(f"node {node.name!r}: tensor {name!r} has no type")

    def elem_bytes(self, name: str) -> int:
        """Bytes per element of a tensor as planned: floats take the planning dtype's size."""
        tensor = self.tensors[name]
        if self.planning_dtype is not None and tensor.elem_type in FLOAT_ELEM_TYPES:
            return PLANNING_DTYPES[self.planning_dtype]
        return int(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)).itemsize)

    def tensor_bytes(self, name: str) -> int:
        return self.tensors[name].numel * self.elem_bytes(name)

    def value(self, name: str, node: Node) -> np.ndarray:
        """The folded value of a constant input, or an error naming the node that needs it."""
        if name not in self.values:
            raise PlanError(f"{self.source}: node {node.name!r} ({node.op_type}): input {name!r} must be a constant "
                            "known at planning time")
        return self.values[name]


def load_graph(source: str | os.PathLike[str] | onnx.ModelProto, *, batch: int | None = None,
               input_shapes: Mapping[str, tuple[int, ...]] | None = None, dtype: str | None = None) -> Graph:
    """Load, check, fix shapes, fold constants, and return the Graph.

    >>> import onnx.parser
    >>> m = onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 17]>
    ... g (float[N,4] x) => (float[N,4] y) { y = Relu(x) }''')
    >>> load_graph(m, batch=2, dtype="bf16").tensors["y"].shape
    (2, 4)
    """
    if dtype is not None and dtype not in PLANNING_DTYPES:
        raise PlanError(f"--dtype {dtype}: unknown; choose one of {', '.join(PLANNING_DTYPES)}")
    model, where, _ = prepare_model(source, batch=batch, input_shapes=input_shapes)
    model = fuse_qdq(model)  # DQ -> op -> Q chains become integer ops before folding could make int8 weights fp32
    folded = fold_constants(model, where)
    # DynamicQuantizeLinear as a range in stages that tile, then y elementwise; it needs the shapes folding found
    split = split_dynamic_quantize(model, static_shapes(folded))
    if split is not model:
        model, folded = split, fold_constants(split, where)
    return _to_graph(model, where, folded, dtype)


def prepare_model(source: str | os.PathLike[str] | onnx.ModelProto, *, batch: int | None = None,
                  input_shapes: Mapping[str, tuple[int, ...]] | None = None,
                  ) -> tuple[onnx.ModelProto, str, Path | None]:
    """The checked model before folding: sorted, uniquely named, with static input shapes; plus its name for
    messages and its folder (None for a model given in memory). External data stays unread."""
    model, where, folder = onnx_io.read_model(source)
    onnx_io.check_external_data(model, where, folder)      # before anything might touch the data
    onnx_io.check_domains(model, where)                    # custom ops have no semantics to lower
    onnx_io.sort_and_check_structure(model, where)         # the checker and folding need a DAG in order
    drop_dead_nodes(model)                                 # plan, bounds and check see the same live graph
    onnx_io.apply_shape_overrides(model, where, batch, input_shapes or {})  # planning needs static shapes
    onnx_io.run_checker(model, where)
    return model, where, folder


def static_shapes(folded: Folded) -> dict[str, tuple[int, ...]]:
    """The tensors computed at run time whose every extent folding knows, and those extents."""
    return {name: tuple(d for d in t.shape if d is not None) for name, t in folded.types.items()
            if t.shape is not None and None not in t.shape and name not in folded.constants}


def _to_graph(model: onnx.ModelProto, where: str, folded: Folded, dtype: str | None) -> Graph:
    inputs = tuple(value.name for value in model.graph.input)
    outputs = tuple(value.name for value in model.graph.output)
    check_plannable(folded, inputs, where)  # control flow, strings, shapes set by data: one line naming the node
    nodes = tuple(_to_node(node) for node in folded.nodes)  # onnx_io gave every node a unique name
    constant_nodes = tuple(_to_node(node) for node in folded.constant_nodes)
    used = {name for node in nodes for name in (*node.inputs, *node.outputs) if name} | set(inputs) | set(outputs)
    tensors: dict[str, Tensor] = {}
    for name in sorted(used, key=lambda n: (n not in inputs, n)):
        ttype = folded.types.get(name)
        dims = [] if ttype is None or ttype.shape is None else [d for d in ttype.shape if d is not None]
        if ttype is None or ttype.shape is None or len(dims) < len(ttype.shape) or min(dims, default=0) < 0:
            producer = next((node for node in nodes if name in node.outputs), None)
            at = f"node {producer.name!r} ({producer.op_type}) output" if producer else "tensor"
            if ttype is not None and ttype.shape is not None and len(dims) == len(ttype.shape):
                raise PlanError(f"{where}: {at} {name!r} has shape {dims}: its attributes make no shape "
                                "(a window larger than its padded input?)")
            raise PlanError(f"{where}: {at} {name!r} has no static shape after shape inference (it depends on data, "
                            "or on values not known when planning)")
        kind = "input" if name in inputs else "constant" if name in folded.constants else "activation"
        tensors[name] = Tensor(name, tuple(dims), ttype.elem_type, kind)
    values = {name: _frozen(value) for name, value in folded.values.items() if name in used}
    opset = next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))
    return Graph(model.graph.name or "model", where, opset, nodes, MappingProxyType(tensors), inputs, outputs,
                 MappingProxyType(values), constant_nodes, dtype)


def _to_node(node: onnx.NodeProto) -> Node:
    attrs = {attr.name: _attr_value(onnx.helper.get_attribute_value(attr)) for attr in node.attribute}
    return Node(node.name, node.op_type, tuple(node.input), tuple(node.output), MappingProxyType(attrs))


def _attr_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, onnx.TensorProto):
        return _frozen(onnx.numpy_helper.to_array(value))
    if isinstance(value, list):
        return tuple(_attr_value(item) for item in value)
    return value


def _frozen(value: np.ndarray) -> np.ndarray:
    value = np.array(value)
    value.flags.writeable = False
    return value

