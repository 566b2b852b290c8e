"""Races, and the orders the functional simulator runs a program in (`simulator.functional`).

The hardware may run a program in any order that happens-before allows (`simulator.hb`: dependencies, and each compute
engine running its own instructions one at a time). A race is a pair of instructions that touch the same byte, of the
scratchpad or of a DRAM tensor, at least one of them writing it (a Release writes poison over its whole buffer), with
neither happening-before the other: their order is up to the hardware, and a legal program has none.

The races are found per byte: walking forward, each access meets the last writer of every byte it touches (a read
after write, a write after write); walking backward, each read meets the next writer (a write after read). Only these
neighbouring pairs are asked about: when they are all ordered, every pair is.

Two orders, each a random topological order of happens-before (seeded) with one extra edge per race:

- `exposing` runs each race against program order: the later instruction first (unless that closes a cycle with the
  reversals already made). A dropped dependency, a load into a buffer that a reader still needs: the consumer runs
  before the producer and reads poison, or the old reader reads the new data.
- `keeping` runs each race in program order, as a naive simulator would: an early Release poisons before the read.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.hb import HappensBefore
from simulator.isa import Box, Compute, DmaLoad, DmaStore, DramTensor, Instruction, Program, Release
from simulator.scratchpad import Scratchpad

MAX_REVERSED = 256  # races reversed per order; each reversal costs a search of the graph for a cycle

Region = tuple[str, tuple[int, ...], tuple[int, ...]]  # (buffer, at, shape)


@dataclass(frozen=True, slots=True)
class Orders:
    """`races`: (a, b) with a < b, neither happening-before the other; two execution orders of every instruction."""

    races: tuple[tuple[int, int], ...]
    exposing: tuple[int, ...]
    keeping: tuple[int, ...]


def reads(instruction: Instruction) -> Iterator[Region]:
    """The scratchpad regions an instruction reads."""
    if isinstance(instruction, Compute):
        for operand in instruction.operands:
            yield operand.buffer, operand.at, operand.box.shape
    elif isinstance(instruction, DmaStore):
        yield instruction.buffer, instruction.at, instruction.box.shape


def writes(instruction: Instruction, pad: Scratchpad) -> Iterator[Region]:
    """The scratchpad regions an instruction writes (a Release: its whole buffer)."""
    if isinstance(instruction, Compute):
        yield instruction.output.buffer, instruction.output.at, instruction.output.box.shape
    elif isinstance(instruction, DmaLoad):
        yield instruction.buffer, instruction.at, instruction.box.shape
    elif isinstance(instruction, Release):
        buffer = pad.buffer(instruction.buffer)
        yield buffer.name, (0,) * len(buffer.shape), buffer.shape


def find_races(program: Program, pad: Scratchpad, tensors: dict[str, DramTensor]) -> list[tuple[int, int]]:
    """Every neighbouring pair of accesses to one byte that happens-before leaves unordered, sorted."""
    stored = {i.tensor for i in program.instructions if isinstance(i, DmaStore)}
    pairs: set[tuple[int, int]] = set()
    for forward in (True, False):
        # the last (walking forward) or next (backward) writer of every byte, -1 for none
        writer = np.full(pad.data.shape, -1, dtype=np.int64)
        dram = {name: np.full(tensors[name].shape, -1, dtype=np.int64) for name in stored if name in tensors}
        order = program.instructions if forward else program.instructions[::-1]
        for instruction in order:
            me = instruction.id
            met: set[int] = set()
            for name, at, shape in reads(instruction):
                met.update(np.unique(pad.cells(pad.buffer(name), at, shape, writer)).tolist())
            if isinstance(instruction, DmaLoad) and instruction.tensor in dram:
                met.update(np.unique(dram[instruction.tensor][_slices(instruction.box)]).tolist())
            for name, at, shape in writes(instruction, pad):
                cells = pad.cells(pad.buffer(name), at, shape, writer)
                if forward:
                    met.update(np.unique(cells).tolist())
                pad.byte_view(pad.buffer(name), writer)[pad.region_index(pad.buffer(name), at, shape)] = me
            if isinstance(instruction, DmaStore) and instruction.tensor in dram:
                target = dram[instruction.tensor]
                if forward:
                    met.update(np.unique(target[_slices(instruction.box)]).tolist())
                target[_slices(instruction.box)] = me
            met.discard(-1)
            met.discard(me)
            pairs.update((other, me) if forward else (me, other) for other in met)
    hb = HappensBefore(program.instructions)
    return sorted((a, b) for a, b in pairs if not hb.before(a, b))


def orders(program: Program, races: Sequence[tuple[int, int]], seed: int) -> Orders:
    """The two execution orders of `program` given its races (see the module docstring)."""
    count = len(program.instructions)
    successors: list[list[int]] = [[] for _ in range(count)]
    previous_on_engine: dict[str, int] = {}
    for instruction in program.instructions:
        for dep in instruction.deps:
            successors[dep].append(instruction.id)
        if isinstance(instruction, Compute):
            if instruction.engine in previous_on_engine:
                successors[previous_on_engine[instruction.engine]].append(instruction.id)
            previous_on_engine[instruction.engine] = instruction.id
    rng = random.Random(seed)
    keeping = _topological(successors, [(a, b) for a, b in races], rng)
    reversals: list[tuple[int, int]] = []
    chosen = list(races) if len(races) <= MAX_REVERSED else rng.sample(list(races), MAX_REVERSED)
    extra: list[list[int]] = [[] for _ in range(count)]
    for a, b in chosen:
        if not _reaches(a, b, successors, extra):  # b -> a closes no cycle
            extra[b].append(a)
            reversals.append((b, a))
    exposing = _topological(successors, reversals, rng)
    return Orders(tuple(races), tuple(exposing), tuple(keeping))


def _reaches(start: int, goal: int, successors: list[list[int]], extra: list[list[int]]) -> bool:
    if not any(extra):
        return False  # happens-before alone does not order a race
    seen, stack = {start}, [start]
    while stack:
        node = stack.pop()
        for nxt in (*successors[node], *extra[node]):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


def _topological(successors: list[list[int]], edges: Sequence[tuple[int, int]], rng: random.Random) -> list[int]:
    """A random topological order (Kahn's algorithm, ties broken by a seeded random priority)."""
    count = len(successors)
    extra: list[list[int]] = [[] for _ in range(count)]
    for a, b in edges:
        extra[a].append(b)
    waiting = [0] * count
    for node in range(count):
        for nxt in (*successors[node], *extra[node]):
            waiting[nxt] += 1
    ready = [(rng.random(), node) for node in range(count) if waiting[node] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for nxt in (*successors[node], *extra[node]):
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, (rng.random(), nxt))
    if len(order) != count:
        raise AssertionError("the execution order has a cycle")  # reversals are checked; this cannot happen
    return order


def _slices(box: Box) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in zip(box.start, box.stop, strict=True))
