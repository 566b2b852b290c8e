"""Happens-before between the instructions of a Program.

Instruction a happens-before b iff b waits for a through `deps` (transitively), or both are Computes on the same
engine with a first in program order (each compute engine is serial); the two kinds of edge compose. DMA queues issue
in order but keep several transfers in flight, so queue order gives no happens-before, and a Release is an ordinary
node that completes when its deps complete.

The algorithm. Each compute engine's Computes form a chain, totally ordered by happens-before, so every instruction
gets a vector clock over the engines, plus its mirror image:

    latest[e][i]    the largest id of an engine-e Compute that is i or happens-before i (-1 if none)
    earliest[e][i]  the smallest id of an engine-e Compute that is i or happens after i (n if none)

`latest` is one forward pass (the max over an instruction's predecessors: its deps and its engine predecessor);
`earliest` one backward pass that pushes each instruction's value into its predecessors. Both take
O(engines * (instructions + deps)). A query a -> b, a < b, then asks in turn:

1. is a in b's deps? (the common case: a load and the compute that waits for it)
2. is there an engine e with earliest[e][a] <= latest[e][b]? Then a -> c, c -> c' along e's chain (or c = c') and
   c' -> b. Conversely every path from a to b through some Compute c on e gives earliest[e][a] <= c <= latest[e][b],
   so this step is exact whenever a path could pass through a Compute, and in particular when a is a Compute.
3. otherwise the only paths left run through DMA transfers and Releases alone: search backwards from b over deps,
   visiting only non-Compute instructions with id > a (deps point to smaller ids, so nothing below a leads to a).
   This part of the graph is sparse and local (load -> release -> load...), so the search is short in practice; its
   worst case is the number of non-Compute instructions between a and b.
"""

from __future__ import annotations

from collections.abc import Sequence

from simulator.isa import ENGINES, Compute, Instruction


class HappensBefore:
    """`hb.before(a, b)`: does instruction a happen-before instruction b? Ids are positions in the program.

    >>> from simulator.isa import Release
    >>> hb = HappensBefore([Release(0, (), "x"), Release(1, (0,), "x"), Release(2, (), "x")])
    >>> hb.before(0, 1), hb.before(0, 2), hb.before(1, 0)
    (True, False, False)
    """

    def __init__(self, instructions: Sequence[Instruction]) -> None:
        count = len(instructions)
        self._deps = [instruction.deps for instruction in instructions]
        # The engine index of each Compute, -1 for DMA transfers and Releases.
        self._engine = [ENGINES.index(i.engine) if isinstance(i, Compute) else -1 for i in instructions]
        predecessors: list[tuple[int, ...]] = []
        previous_on_engine = [-1] * len(ENGINES)
        for position, instruction in enumerate(instructions):
            engine = self._engine[position]
            if engine >= 0 and previous_on_engine[engine] >= 0:
                predecessors.append((*instruction.deps, previous_on_engine[engine]))
            else:
                predecessors.append(instruction.deps)
            if engine >= 0:
                previous_on_engine[engine] = position

        # Both passes run once per engine; `max(map(...))` keeps the work per dep in C, which matters when a
        # program waits for hundreds of Releases per load.
        self._latest: list[list[int]] = []
        self._earliest: list[list[int]] = []
        for engine in range(len(ENGINES)):
            latest = [-1] * count
            for position, before in enumerate(predecessors):
                best = max(map(latest.__getitem__, before)) if before else -1
                latest[position] = position if self._engine[position] == engine else best
            earliest = [position if self._engine[position] == engine else count for position in range(count)]
            for position in range(count - 1, -1, -1):
                mine = earliest[position]
                if mine < count:
                    for predecessor in predecessors[position]:
                        if mine < earliest[predecessor]:
                            earliest[predecessor] = mine
            self._latest.append(latest)
            self._earliest.append(earliest)

    def before(self, a: int, b: int) -> bool:
        if a >= b:
            return False
        deps = self._deps[b]
        if a in deps:
            return True
        for latest, earliest in zip(self._latest, self._earliest, strict=True):
            if earliest[a] <= latest[b]:
                return True
        if self._engine[a] >= 0:
            return False  # step 2 is exact for a Compute
        return self._search_transfers(a, deps)

    def _search_transfers(self, a: int, deps: tuple[int, ...]) -> bool:
        stack = [dep for dep in deps if dep > a and self._engine[dep] < 0]
        seen = set(stack)
        while stack:
            for dep in self._deps[stack.pop()]:
                if dep == a:
                    return True
                if dep > a and dep not in seen and self._engine[dep] < 0:
                    seen.add(dep)
                    stack.append(dep)
        return False
