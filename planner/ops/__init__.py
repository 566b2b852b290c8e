"""Lowering of every supported ONNX op to polyhedral statements, found through a registry keyed by op_type.

>>> import onnx.parser
>>> from planner.graph import load_graph
>>> g = load_graph(onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 17]>
... g (float[1,8] a, float[8,4] b) => (float[1,4] y) { y = MatMul(a, b) }'''))
>>> lower(g).macs
32
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from planner.graph import Graph
from planner.ops import (  # noqa: F401 (register)
    conv,
    elementwise,
    gather,
    layout,
    logic,
    matmul,
    movement,
    norm,
    pool,
    quant,
    rearrange,
    reduce,
    resize,
)
from planner.ops.registry import LOWERINGS, Context, isl_names, supported_ops
from planner.stmt import Access, Alias, LoweredGraph, Statement

__all__ = ["lower", "supported_ops"]


def lower(graph: Graph) -> LoweredGraph:
    """Lower every node; readers of a layout-only view read its base tensor through the composed relation."""
    spaces = isl_names(list(graph.tensors), "T")
    statement_names = isl_names([node.name for node in graph.nodes], "S")
    used = frozenset({name for node in graph.nodes for name in node.inputs} | set(graph.outputs))
    aliases: dict[str, Alias] = {}
    statements: list[Statement] = []
    for node in graph.nodes:
        lowering = LOWERINGS.get(node.op_type)
        context = Context(graph, node, spaces, statement_names, used)
        if lowering is None:
            raise context.error(f"op {node.op_type} is not supported; supported ops: {', '.join(supported_ops())}")
        for item in lowering(node, context):
            if isinstance(item, Alias):
                aliases[item.tensor] = _through(item, aliases)
            else:
                if item.indirect and item.indirect.table in aliases:
                    raise context.error("a data-dependent Gather whose table is a reshaped view is not supported")
                statements.append(_read_bases(item, aliases, graph))
    return LoweredGraph(graph, tuple(statements), MappingProxyType(aliases), MappingProxyType(spaces))


def _through(alias: Alias, aliases: dict[str, Alias]) -> Alias:
    inner = aliases.get(alias.base)
    if inner is None:
        return alias
    return Alias(alias.tensor, inner.base, alias.relation.apply_range(inner.relation))


def _read_bases(stmt: Statement, aliases: dict[str, Alias], graph: Graph) -> Statement:
    if not any(access.tensor in aliases for access in stmt.reads):
        return stmt
    reads = tuple(Access(aliases[a.tensor].base, a.relation.apply_range(aliases[a.tensor].relation))
                  if a.tensor in aliases else a for a in stmt.reads)
    indirect = stmt.indirect
    if indirect and indirect.indices in aliases:  # the DMA reads the base's bytes in row-major order, as the view
        view = graph.tensors[indirect.indices].shape
        indirect = dataclasses.replace(indirect, indices=aliases[indirect.indices].base, view=view)
    return Statement(stmt.name, stmt.node, stmt.op_type, stmt.dims, stmt.domain, reads, stmt.writes, stmt.macs,
                     stmt.elem_ops, stmt.engine, indirect)
