"""Epilogues: the pointwise ops after an op staged alone, run in place on each of its output tiles before the store.

vgg16 on edge-npu stages its 3x3 convs of 256 and 512 channels alone (most with split reductions: no group of conv
and ReLU fits), and each ReLU alone after them: the conv's output went to DRAM, came back for the ReLU, and went out
again, 2x that tensor's bytes more than the ReLU applied to the conv's finished tile where it lies. An epilogue
statement reads one tensor and writes another of the same shape and element size, each point reading the element
at the place it writes (its read relation is its write relation, renamed), so it computes in place in the tile's
buffer; the op's output must be read by that statement alone, written by the op alone, and be neither a model
output nor kept whole in the scratchpad. A chain of such statements (Relu, then Sigmoid) all run in place.

The baseline stages every op alone and keeps no epilogue: fusing an activation into its producer is the fused
strategy's choice.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import islpy as isl

from planner.groups import tensor_uses
from planner.stmt import LoweredGraph, Statement
from planner.tiling import Block, block_writing
from simulator.isa import Box


def epilogue_length(lowered: LoweredGraph, index: int, resident: frozenset[str]) -> int:
    """How many statements after statements[index] run as its epilogue (0: none)."""
    statements = lowered.statements
    readers, writers, outputs = tensor_uses(lowered)
    if len(statements[index].writes) != 1 or statements[index].indirect is not None:
        return 0
    tensor = statements[index].writes[0].tensor
    count = 0
    while index + count + 1 < len(statements):
        after = index + count + 1
        stmt = statements[after]
        if tensor in outputs or tensor in resident or readers.get(tensor) != (after,) \
                or writers.get(tensor) != (index + count,) or not pointwise(stmt, tensor, lowered) \
                or stmt.writes[0].tensor in resident:
            break
        count += 1
        tensor = stmt.writes[0].tensor
    return count


@functools.lru_cache(maxsize=4096)
def pointwise(stmt: Statement, tensor: str, lowered: LoweredGraph) -> bool:
    """Whether `stmt` reads only `tensor`, once, and each of its points reads the element at the place it writes."""
    graph = lowered.graph
    if stmt.engine != "vector" or stmt.indirect is not None or len(stmt.reads) != 1 or len(stmt.writes) != 1:
        return False
    (read,), (write,) = stmt.reads, stmt.writes
    if read.tensor != tensor or graph.tensors[tensor].shape != graph.tensors[write.tensor].shape \
            or graph.elem_bytes(tensor) != graph.elem_bytes(write.tensor):
        return False
    renamed = read.relation.set_tuple_name(isl.dim_type.out, write.relation.get_tuple_name(isl.dim_type.out))
    return bool(renamed.is_equal(write.relation))


def epilogue_steps(epilogue: Sequence[Statement], box: Box) -> list[tuple[Statement, Block, str]]:
    """For one output tile `box` of the op, each epilogue statement with the block it computes there and the tensor
    it writes (the last one's is what the tile stores)."""
    found = []
    for stmt in epilogue:
        tensor = stmt.writes[0].tensor
        block = block_writing(stmt, tensor, box)
        assert block is not None, f"{stmt.name}: an epilogue that writes nothing of {box}"
        found.append((stmt, block, tensor))
    return found
