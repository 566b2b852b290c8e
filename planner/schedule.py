"""Whole-graph residency: which intermediate tensors stay whole in the scratchpad from producer to last consumer.

A per-operator plan stores every intermediate and loads it back for each consumer. Keeping a tensor resident saves
those bytes but takes its whole size for its whole lifetime, out of the room every op in between has for its tiles.
The choice is made for the whole graph at once: candidates go by bytes saved per byte-op of room they hold, and one
is kept only if every op it spans still has its working set (up to half the scratchpad, or what its whole op needs
if less) next to all the tensors already kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from planner.stmt import LoweredGraph, Statement
from planner.tiling import extents, middle_block, output_dims


@dataclass(frozen=True, slots=True)
class Residency:
    """Tensors kept whole, with the statement range each one lives over, and the room left per statement."""

    lifetimes: dict[str, tuple[int, int]]   # tensor -> (first statement, last statement), inclusive
    sizes: dict[str, int]                   # tensor -> bytes per partition of its whole-tensor buffer
    room: tuple[int, ...]                   # per statement: bytes per partition left for its tiles

    def live_at(self, index: int) -> list[str]:
        return [t for t, (first, last) in self.lifetimes.items() if first <= index <= last]


def choose_residency(lowered: LoweredGraph, capacity: int, size_of: Callable[[str], int],
                     tile_cost: Callable[[Statement, dict[str, tuple[int, int]]], int],
                     exclude: frozenset[str] = frozenset()) -> Residency:
    """Greedy whole-graph choice of resident intermediates under `capacity` bytes per partition.

    `size_of(tensor)` is the whole tensor's bytes per partition; `tile_cost(stmt, block)` the bytes per partition a
    tile of that block needs when nothing is resident.
    """
    statements = lowered.statements
    graph = lowered.graph
    first_write: dict[str, int] = {}
    last_use: dict[str, int] = {}
    consumers: dict[str, int] = {}
    for index, stmt in enumerate(statements):
        for access in stmt.writes:
            first_write.setdefault(access.tensor, index)
            last_use[access.tensor] = max(last_use.get(access.tensor, index), index)
        for tensor in stmt.tensors_read:
            if tensor in first_write:
                last_use[tensor] = index
                consumers[tensor] = consumers.get(tensor, 0) + 1
    reserve = [_working_set(stmt, capacity, tile_cost) for stmt in statements]
    used = [0] * len(statements)
    kept: dict[str, tuple[int, int]] = {}
    sizes: dict[str, int] = {}
    candidates = [t for t in first_write if consumers.get(t) and t not in exclude]

    def value(tensor: str) -> float:
        saved = graph.tensor_bytes(tensor) * (consumers[tensor] + (tensor not in lowered.graph.outputs))
        return saved / (size_of(tensor) * (last_use[tensor] - first_write[tensor] + 1))

    for tensor in sorted(candidates, key=lambda t: (-value(t), t)):
        size, span = size_of(tensor), range(first_write[tensor], last_use[tensor] + 1)
        if all(used[i] + size + reserve[i] <= capacity for i in span):
            for i in span:
                used[i] += size
            kept[tensor] = (span.start, span.stop - 1)
            sizes[tensor] = size
    return Residency(kept, sizes, tuple(capacity - u for u in used))


def _working_set(stmt: Statement, capacity: int,
                 tile_cost: Callable[[Statement, dict[str, tuple[int, int]]], int]) -> int:
    whole = {dim: hi - lo for dim, (lo, hi) in extents(stmt).items() if dim in output_dims(stmt)}
    single = {dim: 1 for dim in whole}
    need_all = tile_cost(stmt, middle_block(stmt, whole))
    need_least = tile_cost(stmt, middle_block(stmt, single))
    return max(need_least, min(capacity // 2, need_all))
