"""The live graph: drop nodes whose outputs reach no graph output, and optional outputs nobody reads.

Planning, bounds and the functional check all start from this one live graph, so a dead branch can neither add work
to a plan nor weights to the compulsory traffic a plan is measured against. An optional output that no node reads
(Dropout's mask in opset-9 zoo files, MaxPool's indices, BatchNormalization's running statistics) is cut from its node,
so it needs no shape.

    >>> import onnx.parser
    >>> m = onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 17]>
    ... g (float[2] x) => (float[2] y) { y, mask = Dropout(x)  dead = Neg(x) }''')
    >>> drop_dead_nodes(m)
    >>> [(n.op_type, list(n.output)) for n in m.graph.node]
    [('Dropout', ['y'])]
"""

from __future__ import annotations

from collections.abc import Iterator

import onnx

STANDARD_DOMAINS = ("", "ai.onnx")


def drop_dead_nodes(model: onnx.ModelProto) -> None:
    """Keep, in place, only the nodes some graph output depends on, the initializers they read, and the outputs of
    theirs that are read or not optional. Nodes must be in topological order."""
    graph = model.graph
    opset = next((entry.version for entry in model.opset_import if entry.domain in STANDARD_DOMAINS), None)
    live = {value.name for value in graph.output}
    kept: list[onnx.NodeProto] = []
    for node in reversed(graph.node):
        if any(name in live for name in node.output if name):
            kept.append(node)
            live.update(_reads(node))
    kept.reverse()
    for node in kept:
        _cut_unread_optional_outputs(node, live, opset)
    if len(kept) < len(graph.node):
        del graph.node[:]
        graph.node.extend(kept)
    weights = [tensor for tensor in graph.initializer if tensor.name in live]
    if len(weights) < len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(weights)


def _reads(node: onnx.NodeProto) -> Iterator[str]:
    yield from (name for name in node.input if name)
    # A subgraph (If, Loop, Scan) may read outer-scope tensors by name; every name it reads keeps its producer.
    for attr in node.attribute:
        for body in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
            for inner in body.node:
                yield from _reads(inner)


def _cut_unread_optional_outputs(node: onnx.NodeProto, live: set[str], opset: int | None) -> None:
    if opset is None or node.domain not in STANDARD_DOMAINS:
        return
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, node.domain)
    except onnx.defs.SchemaError:
        return  # an op onnx does not know: the checker names it later
    formal = schema.outputs
    outputs = list(node.output)
    for index, name in enumerate(outputs):
        optional = index < len(formal) and formal[index].option == onnx.defs.OpSchema.FormalParameterOption.Optional
        if name and name not in live and optional:
            outputs[index] = ""  # an omitted optional output, as the ONNX spec writes it
    while outputs and not outputs[-1]:
        outputs.pop()
    if outputs != list(node.output):
        del node.output[:]
        node.output.extend(outputs)
