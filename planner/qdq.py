"""QDQ to integer ops: the rewrite that makes a quantized model plan as integers.

onnxruntime's `quantize_static` (QDQ format) writes every quantized op as `DequantizeLinear -> op -> QuantizeLinear`
around an fp32 op, with int8 weights behind their own DequantizeLinear. Planned as written, the weights would be
dequantized to fp32 and the op would run on floats. This pass rewrites each chain into the one ONNX op that means the
same thing on integers, so the int8 tensors are what DRAM and the scratchpad hold and the tensor engine runs at its
int8 rate:

- `DQ(x), DQ(w)[, DQ(b: int32)] -> Conv -> Q` becomes `QLinearConv(x, w, b)`;
- `DQ(a), DQ(b) -> MatMul -> Q` becomes `QLinearMatMul`;
- `DQ(a), DQ(w)[, DQ(b)] -> Gemm -> Q` (transB=1, alpha=beta=1) becomes a 1-D `QLinearConv` between two Reshapes:
  standard ONNX has no quantized Gemm (QGemm is com.microsoft), and a Gemm with a (K, N) weight is a 1x1 conv;
- `DQ(x) -> MaxPool | Reshape | Flatten | Transpose | ... -> Q` with one scale and zero point on both sides becomes
  the op on the integers: these ops only pick or move values, and dequantizing then requantizing a value with the
  same scale gives back the same integer, so this is exact.

- `DQ(table) -> Gather(indices)` with one scale (an embedding table, as the quantizer writes it with no Q after)
  becomes `Gather(table, indices) -> DQ`: dequantizing is elementwise, so picking rows first is exact, and only the
  int8 rows the indices name move.

Ops with no standard integer form (Add, GlobalAveragePool, Softmax...) keep their DQ and Q nodes, which plan as
vector ops. The rewrite is on the ModelProto before folding, so weight DequantizeLinear nodes are never folded into
fp32 constants; the functional check compares against onnxruntime running the file as written (see
`planner/ops/quant.py` for the tolerance that needs).

This module is the pass: it finds chains and puts their replacements in the graph. `planner/qdq_match.py` reads
what a DQ or Q node quantizes; `planner/qdq_forms.py` builds the integer op of each chain.

>>> import onnx.parser
>>> m = onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 17]>
... g (int8[1,4] a) => (int8[1,4] y) <float s = {0.1}, int8 z = {0}, int8[4,4] w = {1,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1}> {
...   da = DequantizeLinear(a, s, z)
...   dw = DequantizeLinear(w, s, z)
...   f = MatMul(da, dw)
...   y = QuantizeLinear(f, s, z)
... }''')
>>> [n.op_type for n in fuse_qdq(m).graph.node]
['QLinearMatMul']
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from planner.qdq_forms import integer_form
from planner.qdq_match import QdqView, scalar_scale


def fuse_qdq(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with every `DQ -> op -> Q` chain that has an integer form rewritten to it (see the module
    docstring); DQ nodes left without readers are dropped. A model without such chains comes back unchanged."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    if not _fuse_one(result):
        return result
    while _fuse_one(result):
        pass
    _drop_unread(result.graph)
    read = {name for node in result.graph.node for name in node.input} | {v.name for v in result.graph.input}
    kept = [tensor for tensor in result.graph.initializer if tensor.name in read]  # DQ'd weights now unread
    del result.graph.initializer[:]
    result.graph.initializer.extend(kept)
    return result


def _fuse_one(model: onnx.ModelProto) -> bool:
    view = QdqView(model)
    for node in view.graph.node:
        if node.domain not in ("", "ai.onnx") or not node.output:
            continue
        if node.op_type == "Gather" and _gather_first(model, view, node):
            return True
        found = view.quantized_by(node.output[0]) if len(node.output) == 1 else None
        if found is None:
            continue
        quant, out = found
        replacement = integer_form(view, node, out)
        if replacement is None:
            continue
        _replace(model, view, (node, quant), replacement)
        return True
    return False


def _gather_first(model: onnx.ModelProto, view: QdqView, gather: onnx.NodeProto) -> bool:
    """Rewrite `DQ(table) -> Gather` to `Gather(table) -> DQ` (one scale only, so every row dequantizes alike)."""
    table = view.dequantized(gather.input[0])
    if table is None or not scalar_scale(view, table) or \
            (table.zero_point and table.zero_point in view.initializers and
             int(np.prod(view.initializers[table.zero_point].dims)) != 1):
        return False
    rows = f"{gather.output[0]}_quantized"
    dequantize = view.producer[gather.input[0]]
    while dequantize.op_type == "Identity":
        dequantize = view.producer[dequantize.input[0]]
    picked = helper.make_node("Gather", [table.data, *gather.input[1:]], [rows], name=gather.name,
                              **{a.name: helper.get_attribute_value(a) for a in gather.attribute})
    after = helper.make_node("DequantizeLinear", [rows, *dequantize.input[1:]], [gather.output[0]],
                             name=f"{gather.name}_DequantizeLinear")
    nodes = list(model.graph.node)
    position = next(i for i, n in enumerate(nodes) if n is gather)
    del model.graph.node[:]
    model.graph.node.extend([*nodes[:position], picked, after, *nodes[position + 1:]])
    return True


def _drop_unread(graph: onnx.GraphProto) -> None:
    """Drop DequantizeLinear and Identity nodes the rewrite left without readers (a shared bias's Identity)."""
    outputs = {value.name for value in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        dead = [node for node in graph.node if node.op_type in ("DequantizeLinear", "Identity") and
                not any(name in read for name in node.output)]
        if not dead:
            return
        kept = [node for node in graph.node if not any(node is d for d in dead)]
        del graph.node[:]
        graph.node.extend(kept)


def _replace(model: onnx.ModelProto, view: QdqView, chain: tuple[onnx.NodeProto, onnx.NodeProto],
             replacement: list[onnx.NodeProto]) -> None:
    """Put `replacement` where the chain's op was, drop the op, its Q, and the DQs only it read."""
    graph = model.graph
    op, quant = chain
    dequants = [view.producer[name] for name in op.input if name in view.producer and
                view.producer[name].op_type == "DequantizeLinear"]
    nodes = list(graph.node)
    position = nodes.index(op)
    kept = [n for n in nodes[:position]] + replacement + [n for n in nodes[position + 1:] if n is not quant]
    readers = {name for n in kept for name in n.input} | view.outputs
    kept = [n for n in kept if not (any(n is d for d in dequants) and n.output[0] not in readers)]
    # A DQ that came before the op may now have no reader; the replacement's inputs come before it in order.
    del graph.node[:]
    graph.node.extend(kept)
    dropped = {op.output[0], *(d.output[0] for d in dequants)} - readers
    kept_info = [v for v in graph.value_info if v.name not in dropped]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
