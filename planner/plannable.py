"""What a static plan cannot hold, refused with one line that names the node and says why.

A plan fixes every tensor's size and every op's work before the model runs. So after shape subgraphs are folded, the
planner refuses control flow (the subgraph an If or Loop runs is chosen at run time), values that are not numeric
tensors (strings, sequences, maps), and every tensor whose shape still depends on data: the number of nonzero elements,
boxes kept or unique values, or a Reshape target, a TopK `k` or a Range limit computed from the model's inputs.

    >>> import onnx.parser
    >>> from planner.graph import load_graph
    >>> load_graph(onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 17]>
    ... nz (float[4] x) => (int64[1,N] y) { y = NonZero(x) }'''))
    Traceback (most recent call last):
    planner.errors.PlanError: nz: node 'NonZero_0' (NonZero): output 'y' has no static shape: its length is the \
number of nonzero elements of 'x', known only when the model runs
"""

from __future__ import annotations

from collections.abc import Mapping

import onnx

from planner.errors import PlanError
from planner.fold import Folded, TensorType

CONTROL_FLOW = frozenset({"If", "Loop", "Scan", "SequenceMap"})
# Ops whose output size is a count found in the data itself.
DATA_SIZED: Mapping[str, str] = {
    "NonZero": "the number of nonzero elements of {input}",
    "NonMaxSuppression": "the number of boxes of {input} that survive suppression",
    "Unique": "the number of distinct values in {input}",
    "Compress": "the number of true values in the condition {condition}",
    "StringSplit": "the number of substrings in {input}",
}
NON_NUMERIC = frozenset({onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED})


def check_plannable(folded: Folded, inputs: tuple[str, ...], where: str) -> None:
    """Raise a PlanError naming the first node, in topological order, that a static plan cannot hold."""
    for name in inputs:
        _check_numeric(folded.types.get(name), f"{where}: input {name!r}")
    for node in folded.nodes:
        label = f"{where}: node {node.name!r} ({node.op_type})"
        if node.op_type in CONTROL_FLOW:
            raise PlanError(f"{label}: control flow is not supported: which subgraph runs, or how often, is decided "
                            "by data when the model runs, and a static plan fixes every op before it runs")
        for name in node.input:
            if name:
                _check_numeric(folded.types.get(name), f"{label}: input {name!r}")
        for name in node.output:
            if not name:
                continue
            ttype = folded.types.get(name)
            _check_numeric(ttype, f"{label}: output {name!r}")
            if ttype is None or ttype.shape is None or None in ttype.shape:
                raise PlanError(f"{label}: output {name!r} has no static shape: {_why_dynamic(node, folded)}")


def _check_numeric(ttype: TensorType | None, label: str) -> None:
    if ttype is None:
        return  # no type at all: the shape check names it
    if ttype.value_kind != "tensor":
        raise PlanError(f"{label} is a {ttype.value_kind}, not a tensor; only numeric tensors can be planned")
    if ttype.elem_type in NON_NUMERIC:
        kind = onnx.helper.tensor_dtype_to_string(ttype.elem_type).removeprefix("TensorProto.").lower()
        raise PlanError(f"{label} is a {kind} tensor; only numeric tensors can be planned")


def _why_dynamic(node: onnx.NodeProto, folded: Folded) -> str:
    present = [name for name in node.input if name]
    if node.op_type in DATA_SIZED:
        named = {"input": repr(present[0]) if present else "its input",
                 "condition": repr(node.input[1]) if len(node.input) > 1 else "its condition"}
        return f"its length is {DATA_SIZED[node.op_type].format(**named)}, known only when the model runs"
    # Every input has a static shape by now (nodes are checked in order), so what is missing is the value of an
    # input that sets the output's shape: a Reshape target, a TopK k, a Range limit, Slice bounds, Resize sizes.
    shaping = node.input if node.op_type in ("ConstantOfShape", "Range") else node.input[1:]
    computed = [name for name in shaping if name and name not in folded.values]
    if computed:
        names = ", ".join(repr(name) for name in computed)
        return (f"it depends on the value of {names}, known only when the model runs (a model input, or computed "
                "from one), not a constant known when planning")
    return "shape inference found none (it depends on data, or on values not known when planning)"
