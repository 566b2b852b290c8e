"""What `scratchplan inspect` reports: one row per ONNX node, then model totals.

Totals follow the lower-bound convention the rest of the project uses: compulsory traffic reads once every element of
a constant or model input that some element of a model output depends on (pulled back through the graph by isl), and
writes every model output once.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

from planner import poly
from planner.stmt import LoweredGraph


@dataclass(frozen=True, slots=True)
class OpRow:
    name: str
    op_type: str
    inputs: tuple[tuple[int, ...], ...]
    outputs: tuple[tuple[int, ...], ...]
    macs: int
    elem_ops: int
    bytes_in: int
    bytes_out: int


@dataclass(frozen=True, slots=True)
class Totals:
    param_bytes: int
    activation_bytes: int
    compulsory_bytes: int
    macs: int


def op_rows(lowered: LoweredGraph) -> list[OpRow]:
    """One row per node; a layout-only node shows its shapes with no work and no bytes of its own."""
    graph = lowered.graph
    work: dict[str, tuple[int, int]] = {}
    reads: dict[str, dict[str, None]] = {}
    for stmt in lowered.statements:
        macs, elem_ops = work.get(stmt.node, (0, 0))
        work[stmt.node] = (macs + stmt.macs, elem_ops + stmt.elem_ops)
        reads.setdefault(stmt.node, {}).update(dict.fromkeys(access.tensor for access in stmt.reads))
    rows = []
    for node in graph.nodes:
        inputs = [name for name in node.inputs if name]
        outputs = [name for name in node.outputs if name]
        macs, elem_ops = work.get(node.name, (0, 0))
        is_view = node.name not in work
        rows.append(OpRow(node.name, node.op_type, tuple(graph.tensors[n].shape for n in inputs),
                          tuple(graph.tensors[n].shape for n in outputs), macs, elem_ops,
                          0 if is_view else _bytes(lowered, reads[node.name]),
                          0 if is_view else _bytes(lowered, outputs)))
    return rows


@functools.lru_cache(maxsize=8)  # every program a strategy builds records the same bound
def totals(lowered: LoweredGraph) -> Totals:
    graph = lowered.graph
    read = {access.tensor for stmt in lowered.statements for access in stmt.reads} | {
        stmt.indirect.table for stmt in lowered.statements if stmt.indirect}
    params = sorted(name for name in read if graph.tensors[name].kind == "constant")
    inputs = sorted(name for name in read if graph.tensors[name].kind == "input")
    activations = sorted({access.tensor for stmt in lowered.statements for access in stmt.writes})
    # a model output that is a view of an input or a constant is already in DRAM: nothing to write
    outputs = sorted({base for base in map(lowered.base, graph.outputs) if graph.tensors[base].kind == "activation"})
    # Compulsory reads are the elements some output element depends on (a strided window may skip rows, a Slice or
    # an odd extent under a pool leaves some dead), counted by isl.
    needed = _read_elements(lowered, set(params) | set(inputs), outputs)
    compulsory = sum(count * graph.elem_bytes(name) for name, count in needed.items()) + _bytes(lowered, outputs) + \
        _gathered_bytes(lowered)
    return Totals(_bytes(lowered, params), _bytes(lowered, activations), compulsory, lowered.macs)


def _gathered_bytes(lowered: LoweredGraph) -> int:
    """Rows a data-dependent Gather must read, per table: one per index, but never more than the table has (the
    distinct ids are at most both), times the bytes of a row."""
    graph = lowered.graph
    per_table: dict[str, int] = {}
    for stmt in lowered.statements:
        if stmt.indirect:
            per_table[stmt.indirect.table] = per_table.get(stmt.indirect.table, 0) + \
                graph.tensors[stmt.indirect.indices].numel
    total = 0
    for table, rows in per_table.items():
        shape = graph.tensors[table].shape
        axis = next(stmt.indirect.axis for stmt in lowered.statements
                    if stmt.indirect and stmt.indirect.table == table)
        total += min(rows, shape[axis]) * (graph.tensors[table].numel // max(1, shape[axis])) * graph.elem_bytes(table)
    return total


def _read_elements(lowered: LoweredGraph, names: set[str], outputs: Iterable[str]) -> dict[str, int]:
    graph = lowered.graph
    wanted = {name: poly.tensor_set(lowered.spaces[name], graph.tensors[name].shape) for name in outputs}
    needed = poly.needed_elements(lowered.statements, wanted)
    return {tensor: poly.count(elements) for tensor, elements in needed.items() if tensor in names}


def _bytes(lowered: LoweredGraph, names: Iterable[str]) -> int:
    return sum(lowered.graph.tensor_bytes(name) for name in names)
