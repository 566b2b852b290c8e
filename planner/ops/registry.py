"""The op registry and the context a lowering sees.

Each op family lives in its own module and registers its lowering under the ONNX op_type. A lowering takes the node
and a Context and returns the statements (or the alias) that stand for it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import islpy as isl
import numpy as np

from planner.errors import PlanError
from planner.graph import Graph, Node
from planner.poly import tensor_set
from planner.stmt import Access, Alias, Statement

Lowering = Callable[[Node, "Context"], Sequence[Statement | Alias]]
LOWERINGS: dict[str, Lowering] = {}


def register(*op_types: str) -> Callable[[Lowering], Lowering]:
    """Register a lowering for one or more ONNX op types."""

    def wrap(fn: Lowering) -> Lowering:
        for op_type in op_types:
            if op_type in LOWERINGS:
                raise ValueError(f"op {op_type} registered twice")
            LOWERINGS[op_type] = fn
        return fn

    return wrap


def supported_ops() -> list[str]:
    return sorted(LOWERINGS)


@dataclass(frozen=True, slots=True)
class Context:
    """What a lowering may ask about the graph, for the node it lowers."""

    graph: Graph
    node: Node
    spaces: Mapping[str, str]
    statement_names: Mapping[str, str]
    used: frozenset[str]

    def shape(self, name: str) -> tuple[int, ...]:
        return self.graph.tensors[name].shape

    def space(self, name: str) -> str:
        return self.spaces[name]

    def value(self, name: str) -> np.ndarray:
        return self.graph.value(name, self.node)

    def error(self, message: str) -> PlanError:
        return PlanError(f"{self.graph.source}: node {self.node.name!r} ({self.node.op_type}): {message}")

    def stmt_name(self, part: int | None = None) -> str:
        base = self.statement_names[self.node.name]
        return base if part is None else f"{base}_{part}"

    def input(self, index: int) -> str:
        """The name of input `index`, or "" when omitted."""
        inputs = self.node.inputs
        return inputs[index] if index < len(inputs) else ""

    def only_first_output(self) -> str:
        """The first output; refuses nodes whose other outputs (indices, masks, statistics) are used."""
        for extra in self.node.outputs[1:]:
            if extra and extra in self.used:
                raise self.error(f"output {extra!r} is used, but only the first output of {self.node.op_type} is "
                                 "supported (inference semantics)")
        return self.node.outputs[0]

    def domain(self, dims: Sequence[str], extents: Sequence[int], extra: str = "", part: int | None = None) -> isl.Set:
        """`{ S[dims] : 0 <= dim < extent and extra }`."""
        # The box through the API (isl's parser takes some 0.5 ms a domain, paid again by every variant of a model)
        space = isl.Space.set_alloc(isl.DEFAULT_CONTEXT, 0, len(dims)).set_tuple_name(isl.dim_type.set,
                                                                                     self.stmt_name(part))
        for axis, dim in enumerate(dims):
            space = space.set_dim_name(isl.dim_type.set, axis, dim)
        box = isl.BasicSet.universe(space)
        for axis, extent in enumerate(extents):
            box = box.lower_bound_val(isl.dim_type.set, axis, 0).upper_bound_val(isl.dim_type.set, axis, extent - 1)
        domain = isl.Set.from_basic_set(box)
        if extra:
            domain = domain.intersect(isl.Set(f"{{ {self.stmt_name(part)}[{', '.join(dims)}] : {extra} }}"))
        return domain

    def access(self, domain: isl.Set, dims: Sequence[str], tensor: str, index: Sequence[str],
               extra: str = "") -> Access:
        """`{ S[dims] -> T[index] : extra }` restricted to the domain and to the tensor's bounds (pads read nothing)."""
        text = f"{{ {domain.get_tuple_name()}[{', '.join(dims)}] -> {self.space(tensor)}[{', '.join(index)}]"
        relation = _parsed_map(text + (f" : {extra} }}" if extra else " }"))
        relation = relation.intersect_domain(domain).intersect_range(tensor_set(self.space(tensor), self.shape(tensor)))
        return Access(tensor, relation)


@functools.lru_cache(maxsize=1 << 12)
def _parsed_map(text: str) -> isl.Map:
    # The unbounded access without sizes mostly (they come in with the domain and the tensor's box), so the variants
    # of a model that differ only in sizes parse it once; isl objects are values, safe to share.
    return isl.Map(text)


def isl_names(names: Sequence[str], prefix: str) -> dict[str, str]:
    """Unique isl identifiers for ONNX names (which may hold '/', ':' or '.').

    >>> isl_names(["/conv1/Conv_output_0", "onnx::Add_3"], "T")
    {'/conv1/Conv_output_0': 'T_conv1_Conv_output_0', 'onnx::Add_3': 'T_onnx_Add_3'}
    """
    result: dict[str, str] = {}
    seen: set[str] = set()
    for name in names:
        base = f"{prefix}_" + (re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "anon")
        ident, suffix = base, 1
        while ident in seen:
            ident, suffix = f"{base}_{suffix}", suffix + 1
        seen.add(ident)
        result[name] = ident
    return result
