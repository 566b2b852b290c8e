"""`--check`: the functional simulation of a program against onnxruntime on the whole model.

DRAM starts with seeded random inputs, drawn inside the domain of every op (see `draw_inputs`), and the model's real
constants (initializers, read only from inside the
model's folder, and the values of constant subgraphs as onnxruntime computes them). The reference is onnxruntime on
the same model (QDQ chains rewritten as planned, `planner.qdq`) with every intermediate tensor exposed, so a mismatch
is found at the first tile that differs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnx.external_data_helper import load_external_data_for_model

from planner.dynamic_quant import internal_tensors, split_dynamic_quantize
from planner.errors import PlanError
from planner.graph import Graph, prepare_model
from planner.qdq import fuse_qdq

SEED = 0
# Ops that want a positive argument (Sqrt, Log, Pow of a real exponent, Reciprocal...): a model input they read is
# drawn from [0.5, 2), every other float input from a standard normal.
POSITIVE_ARGUMENT = {"Sqrt": (0,), "Log": (0,), "Pow": (0,), "Reciprocal": (0,), "Div": (1,)}
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"})  # the same values, reshaped
INDEX_INPUT = {"Gather": 1, "GatherElements": 1, "GatherND": 1}  # data is input 0; indices must fall inside it
INTEGER_RANGE = 1 << 15  # other integer inputs: uniform in [-2**15, 2**15), clipped to the dtype


def draw_inputs(graph: Graph) -> dict[str, np.ndarray]:
    """Seeded model inputs inside every op's domain: floats standard normal, or in [0.5, 2) where an op wants a
    positive argument; integers wide, or inside the data's extent where they are Gather indices; bools at random.
    """
    rng = np.random.default_rng(SEED)
    positive = _positive_inputs(graph)
    extents = _index_extents(graph)
    feeds = {}
    for name in graph.inputs:
        tensor = graph.tensors[name]
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        values: np.ndarray
        if dtype.kind == "f":
            values = rng.uniform(0.5, 2.0, tensor.shape) if name in positive else rng.standard_normal(tensor.shape)
        elif dtype.kind == "b":
            values = rng.integers(0, 2, tensor.shape) == 1
        elif name in extents:
            values = rng.integers(0, extents[name], tensor.shape)
        else:
            info = np.iinfo(dtype)
            values = rng.integers(max(info.min, -INTEGER_RANGE), min(info.max, INTEGER_RANGE) + 1, tensor.shape)
        feeds[name] = np.asarray(values).astype(dtype)
    return feeds


def _positive_inputs(graph: Graph) -> set[str]:
    return {node.inputs[k] for node in graph.nodes for k in POSITIVE_ARGUMENT.get(node.op_type, ())
            if k < len(node.inputs) and node.inputs[k] in graph.inputs}


def _index_extents(graph: Graph) -> dict[str, int]:
    """Integer model inputs used as Gather-like indices: the smallest extent of the data along the gathered axis."""
    producer = {output: node for node in graph.nodes for output in node.outputs}
    extents: dict[str, int] = {}
    for node in graph.nodes:
        slot = INDEX_INPUT.get(node.op_type)
        if slot is None or len(node.inputs) <= slot:
            continue
        ids = node.inputs[slot]
        while ids in producer and producer[ids].op_type in VIEW_OPS:  # GPT-2 gathers input_ids.view(...)
            ids = producer[ids].inputs[0]
        if ids not in graph.inputs:
            continue
        data = graph.tensors[node.inputs[0]].shape
        extent = data[int(node.attrs.get("axis", 0)) % len(data)] if data else 1
        extents[ids] = min(extent, extents.get(ids, extent))
    return extents


def reference_values(graph: Graph, source: str | os.PathLike[str] | onnx.ModelProto, *, batch: int | None = None,
                     input_shapes: Mapping[str, tuple[int, ...]] | None = None,
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(initial DRAM contents, every tensor's value per onnxruntime) for the graph's model."""
    model, _, folder = prepare_model(source, batch=batch, input_shapes=input_shapes)
    if folder is not None:
        load_external_data_for_model(model, str(folder))  # prepare_model checked it lies inside the folder
    # The model as planned: QDQ chains as the integer ops onnxruntime runs (QLinearConv...), so every tile is checked
    # exactly; how far those ops are from the float QDQ chains (at most 1 LSB) is tested in tests/planner/test_quant.
    model = fuse_qdq(model)
    # DynamicQuantizeLinear as written for its outputs; the partial ranges the planner's rewrite adds, from that rewrite
    split = split_dynamic_quantize(model, {name: t.shape for name, t in graph.tensors.items() if t.kind != "constant"})
    internal = set(internal_tensors(model, split))
    feeds = draw_inputs(graph)
    initializers = {tensor.name: numpy_helper.to_array(tensor) for tensor in split.graph.initializer}
    wanted = [name for name in graph.tensors if name not in feeds and name not in initializers]
    computed = _run(model, [name for name in wanted if name not in internal], feeds)
    if internal:
        computed |= _run(split, [name for name in wanted if name in internal], feeds)
    nan = next((name for name, value in computed.items() if np.asarray(value).dtype.kind == "f"
                and np.isnan(value).any()), None)
    if nan is not None:  # then NaN would pass for a right answer: the comparison never lets a NaN match
        raise PlanError(f"the reference value of {nan} has NaN even with inputs drawn inside each op's domain")
    values = {**feeds, **initializers, **computed}
    dram = {name: values[name] for name in graph.tensors if graph.tensors[name].kind != "activation"}
    return dram, values


def _run(model: onnx.ModelProto, wanted: list[str], feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The values of `wanted` when onnxruntime runs `model` on `feeds`, every intermediate exposed."""
    exposed = onnx.ModelProto()
    exposed.CopyFrom(model)
    del exposed.graph.value_info[:]
    del exposed.graph.output[:]
    exposed.graph.output.extend(onnx.ValueInfoProto(name=name) for name in wanted)
    options = ort.SessionOptions()
    # Unfused, like the tiles: fused Conv+BatchNorm rounds differently, beyond fp32 tolerance near zero.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return dict(zip(wanted, session.run(wanted, dict(feeds)), strict=True))

