"""`--check`: the functional simulation of a program against onnxruntime on the whole model.

DRAM starts with seeded random inputs and the model's real constants (initializers, read only from inside the
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

from planner.graph import Graph, prepare_model
from planner.qdq import fuse_qdq

SEED = 0


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
    rng = np.random.default_rng(SEED)
    feeds = {}
    for name in graph.inputs:
        tensor = graph.tensors[name]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[name] = rng.standard_normal(tensor.shape).astype(dtype)
        else:
            feeds[name] = rng.integers(0, 2, tensor.shape).astype(dtype)
    initializers = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    wanted = [name for name in graph.tensors if name not in feeds and name not in initializers]
    del model.graph.value_info[:]
    del model.graph.output[:]
    model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in wanted)
    options = ort.SessionOptions()
    # Unfused, like the tiles: fused Conv+BatchNorm rounds differently, beyond fp32 tolerance near zero.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    computed = dict(zip(wanted, session.run(wanted, feeds), strict=True))
    values = {**feeds, **initializers, **computed}
    dram = {name: values[name] for name in graph.tensors if graph.tensors[name].kind != "activation"}
    return dram, values
