"""The polyhedral form of a model: statements with iteration domains and access relations onto named tensors.

A Statement is one op (or one piece of it, like one input of a Concat): every point of its domain is one unit of
work, and each access relation maps a point to the tensor elements it reads or writes. Layout-only ops (Reshape,
Flatten, Squeeze, ...) become Aliases: their output is a view of the base tensor's bytes, and readers of the view
read the base through the composed relation.

Objects are immutable once built; `eq=False` makes them hash by identity, which keeps isl query caches cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import islpy as isl

from planner.graph import Graph

ENGINES = ("tensor", "vector", "move")  # systolic MACs; elementwise/pool/norm; pure data movement


@dataclass(frozen=True, slots=True, eq=False)
class Access:
    """`relation` maps statement points to the elements of `tensor` they touch: `{ S[n,k] -> T[n,k] }`."""

    tensor: str
    relation: isl.Map


@dataclass(frozen=True, slots=True, eq=False)
class IndirectRead:
    """Rows of `table` along `axis`, named at run time by the values of `indices`: a data-dependent Gather.

    The statement reads `indices` through an ordinary affine access; which rows of the table a point reads is known
    only when the program runs, so the table has no access relation. Staging loads the rows with an indirect DMA.
    """

    table: str
    axis: int
    indices: str
    index_dims: tuple[str, ...] = ()  # the statement's dims that pick an index element
    view: tuple[int, ...] = ()  # the indices' shape when they are a reshaped view of `indices` (tiles keep them whole)


@dataclass(frozen=True, slots=True, eq=False)
class Statement:
    """One lowered op (or one part of it) in polyhedral form.

    `dims` names the domain's dimensions in order; `macs` counts tensor-engine multiply-accumulates and `elem_ops`
    vector-engine element operations.
    """

    name: str
    node: str
    op_type: str
    dims: tuple[str, ...]
    domain: isl.Set
    reads: tuple[Access, ...]
    writes: tuple[Access, ...]
    macs: int
    elem_ops: int
    engine: str
    indirect: IndirectRead | None = None  # set for a Gather whose indices are data

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"statement {self.name}: engine {self.engine!r} is not one of {ENGINES}")
        if self.domain.get_tuple_name() != self.name:
            raise ValueError(f"statement {self.name}: domain is named {self.domain.get_tuple_name()!r}")
        if not self.writes:
            raise ValueError(f"statement {self.name}: writes nothing")

    @property
    def tensors_read(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(access.tensor for access in self.reads))


@dataclass(frozen=True, slots=True, eq=False)
class Alias:
    """`tensor` is a view of `base`: `relation` maps each element of the view to the base element it is."""

    tensor: str
    base: str
    relation: isl.Map


@dataclass(frozen=True, slots=True, eq=False)
class LoweredGraph:
    """Every compute node of a Graph in polyhedral form, in topological order."""

    graph: Graph
    statements: tuple[Statement, ...]
    aliases: Mapping[str, Alias]
    spaces: Mapping[str, str]  # ONNX tensor name -> isl tuple name

    def base(self, tensor: str) -> str:
        """The tensor whose bytes hold `tensor` (itself unless it is a layout-only view)."""
        alias = self.aliases.get(tensor)
        return alias.base if alias else tensor

    @property
    def macs(self) -> int:
        return sum(stmt.macs for stmt in self.statements)
