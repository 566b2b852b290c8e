"""Compulsory traffic counted from the ONNX model alone, without the planner: a lower bound to test plans against.

- **Reads**: every initializer and graph input that some live node reads whole (an elementwise op, a normalisation,
  a matrix product, a concat, a transpose; a Conv's weights and bias) for outputs that are needed whole themselves
  (graph outputs, and what such readers read, back through views). Inputs only a window or a slice reads are left
  out: a window with stride may skip elements, and a tensor a Slice reads in part is not needed whole.
- **Writes**: every graph output computed by a live node that is not a view.

Element sizes follow the planning dtype for floats (as `--dtype` does), else the tensor's own. Both sums are lower
bounds on what any legal program moves, whoever planned it.

    >>> import onnx.parser
    >>> m = onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 17]>
    ... g (float[2,4] x) => (float[2,4] y) <float[4] k = {1,2,3,4}> { y = Add(x, k) }''')
    >>> onnx_compulsory(m)
    (48, 32)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import shape_inference

FLOATS = frozenset({onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
                    onnx.TensorProto.DOUBLE})
PLANNING_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}
WHOLE_READERS = frozenset({
    "Relu", "Sigmoid", "Tanh", "Add", "Sub", "Mul", "Div", "BatchNormalization", "Softmax", "Gemm", "MatMul",
    "Concat", "Split", "Transpose", "GlobalAveragePool", "GlobalMaxPool", "LayerNormalization",
})
WEIGHT_INPUTS = {"Conv": (1, 2), "ConvTranspose": (1, 2)}  # input positions read whole
VIEWS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
SHAPE_INPUTS = {"Split": (1,)}  # inputs that are attributes in disguise


def onnx_compulsory(model: onnx.ModelProto, dtype: str | None = None) -> tuple[int, int]:
    """(bytes any program must read, bytes it must write) for the model, planned with floats as `dtype`."""
    inferred = shape_inference.infer_shapes(model)
    graph = inferred.graph
    types: dict[str, tuple[int, tuple[int, ...]]] = {}
    for value in [*graph.input, *graph.output, *graph.value_info]:
        tensor_type = value.type.tensor_type
        types[value.name] = (tensor_type.elem_type, tuple(d.dim_value for d in tensor_type.shape.dim))
    for init in graph.initializer:
        types[init.name] = (init.data_type, tuple(init.dims))

    def nbytes(name: str) -> int:
        elem_type, shape = types[name]
        size = (PLANNING_BYTES[dtype] if dtype and elem_type in FLOATS
                else np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize)
        return int(np.prod(shape, dtype=np.int64)) * size

    live = _live_nodes(graph)
    sources = {init.name for init in graph.initializer} | {value.name for value in graph.input}
    # Needed whole: a graph output, or what a whole reader reads for outputs that are all needed whole. An op whose
    # output is needed only in part (a Slice reads it, a pool drops its last row) needs only part of its inputs.
    whole = {value.name for value in graph.output}
    read: set[str] = set()
    for node in reversed(live):  # consumers before producers
        if not all(out in whole for out in node.output if out):
            continue
        positions: Sequence[int] = (
            (0,) if node.op_type in VIEWS
            else WEIGHT_INPUTS.get(node.op_type, ()) if node.op_type not in WHOLE_READERS
            else [p for p in range(len(node.input)) if p not in SHAPE_INPUTS.get(node.op_type, ())])
        inputs = {node.input[p] for p in positions if p < len(node.input) and node.input[p]}
        whole |= inputs
        if node.op_type not in VIEWS:  # a view moves nothing: an output that is a view of an input is in DRAM
            read |= inputs & sources
    producers = {out: node for node in live for out in node.output}
    written = {value.name for value in graph.output
               if value.name in producers and producers[value.name].op_type not in VIEWS}
    return sum(map(nbytes, read)), sum(map(nbytes, written))


def _live_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Nodes some graph output depends on."""
    producers = {out: node for node in graph.node for out in node.output}
    needed = [value.name for value in graph.output]
    live: dict[int, onnx.NodeProto] = {}
    while needed:
        node = producers.get(needed.pop())
        if node is not None and id(node) not in live:
            live[id(node)] = node
            needed.extend(node.input)
    return [node for node in graph.node if id(node) in live]
