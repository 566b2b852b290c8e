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
  before the producer and reads poison, or the old reader reads the new data. One exception: a Release racing only
  with a write before it stays after that write, so that it lands between the write and the reads it races with,
  where it does harm (before the write it would be overwritten, and hide).
- `keeping` runs each race in program order, as a naive simulator would: an early Release poisons before the read.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.hb import HappensBefore
from simulator.isa import Box, Compute, DmaGather, DmaLoad, DmaStore, DramTensor, Instruction, Program, Release
from simulator.scratchpad import Scratchpad

MAX_REVERSED = 256  # races reversed per order; each reversal costs a search of the graph for a cycle

Region = tuple[str, tuple[int, ...], tuple[int, ...]]  # (buffer, at, shape)


@dataclass(frozen=True, slots=True, order=True)
class Race:
    """Instructions `first` < `second` (ids) touch one byte unordered: `kinds` of "raw", "war", "waw"."""

    first: int
    second: int
    kinds: frozenset[str]


@dataclass(frozen=True, slots=True)
class Orders:
    """The races of a program and its two execution orders (instruction ids)."""

    races: tuple[Race, ...]
    exposing: tuple[int, ...]
    keeping: tuple[int, ...]
    early_readers: dict[int, tuple[int, ...]]  # in `exposing`: reader -> the writers it now runs before (RAW)


def reads(instruction: Instruction) -> Iterator[Region]:
    """The scratchpad regions an instruction reads."""
    if isinstance(instruction, Compute):
        for operand in instruction.operands:
            yield operand.buffer, operand.at, operand.box.shape
    elif isinstance(instruction, DmaStore):
        yield instruction.buffer, instruction.at, instruction.box.shape
    elif isinstance(instruction, DmaGather):  # the index values that name the rows
        yield instruction.indices.buffer, instruction.indices.at, instruction.indices.box.shape


def writes(instruction: Instruction, pad: Scratchpad) -> Iterator[Region]:
    """The scratchpad regions an instruction writes (a Release: its whole buffer)."""
    if isinstance(instruction, Compute):
        yield instruction.output.buffer, instruction.output.at, instruction.output.box.shape
    elif isinstance(instruction, DmaLoad):
        yield instruction.buffer, instruction.at, instruction.box.shape
    elif isinstance(instruction, DmaGather):
        yield instruction.output.buffer, instruction.output.at, instruction.output.box.shape
    elif isinstance(instruction, Release):
        buffer = pad.buffer(instruction.buffer)
        yield buffer.name, (0,) * len(buffer.shape), buffer.shape


def find_races(program: Program, pad: Scratchpad, tensors: dict[str, DramTensor]) -> list[Race]:
    """Every neighbouring pair of accesses to one byte that happens-before leaves unordered, sorted."""
    return analyse(program, pad, tensors)[0]


def analyse(program: Program, pad: Scratchpad,
            tensors: dict[str, DramTensor]) -> tuple[list[Race], dict[int, set[int]]]:
    """The races, and every write's readers (ordered or not): the instructions whose reads it last wrote."""
    stored = {i.tensor for i in program.instructions if isinstance(i, DmaStore)}
    pairs: dict[tuple[int, int], set[str]] = {}
    for forward in (True, False):
        # the last (walking forward) or next (backward) writer of every byte, -1 for none
        writer = np.full(pad.data.shape, -1, dtype=np.int64)
        dram = {name: np.full(tensors[name].shape, -1, dtype=np.int64) for name in stored if name in tensors}
        order = program.instructions if forward else program.instructions[::-1]
        for instruction in order:
            me = instruction.id
            met: dict[str, set[int]] = {"raw" if forward else "war": set(), "waw": set()}
            read_kind = "raw" if forward else "war"
            for name, at, shape in reads(instruction):
                met[read_kind].update(_ids(pad.cells(pad.buffer(name), at, shape, writer)))
            if isinstance(instruction, DmaLoad) and instruction.tensor in dram:
                met[read_kind].update(_ids(dram[instruction.tensor][_slices(instruction.box)]))
            if isinstance(instruction, DmaGather) and instruction.table in dram:  # any row of its window
                met[read_kind].update(_ids(dram[instruction.table][_slices(instruction.window)]))
            for name, at, shape in writes(instruction, pad):
                cells = pad.cells(pad.buffer(name), at, shape, writer)
                if forward:
                    met["waw"].update(_ids(cells))
                pad.byte_view(pad.buffer(name), writer)[pad.region_index(pad.buffer(name), at, shape)] = me
            if isinstance(instruction, DmaStore) and instruction.tensor in dram:
                target = dram[instruction.tensor]
                if forward:
                    met["waw"].update(_ids(target[_slices(instruction.box)]))
                target[_slices(instruction.box)] = me
            for kind, others in met.items():
                for other in others - {-1, me}:
                    pairs.setdefault((other, me) if forward else (me, other), set()).add(kind)
    hb = HappensBefore(program.instructions)
    readers: dict[int, set[int]] = {}
    for (a, b), kinds in pairs.items():
        if "raw" in kinds:
            readers.setdefault(a, set()).add(b)
    return sorted(Race(a, b, frozenset(kinds)) for (a, b), kinds in pairs.items() if not hb.before(a, b)), readers


def _ids(cells: np.ndarray) -> list[int]:
    """The distinct ids in `cells`. Each write stamps one id on a whole region, so runs are long: dropping repeats
    of the previous value first leaves np.unique a few values to sort instead of every byte."""
    flat = cells.reshape(-1)
    if flat.size > 1:
        flat = flat[np.concatenate(([True], flat[1:] != flat[:-1]))]
    return np.unique(flat).tolist()  # type: ignore[no-any-return]


def orders(program: Program, races: Sequence[Race], seed: int,
           readers: dict[int, set[int]] | None = None) -> Orders:
    """The two execution orders of `program` given its races and each write's readers (see the module docstring)."""
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
    keeping = _topological(successors, [(race.first, race.second) for race in races], rng)
    # a Release racing only with an earlier write stays after it (forward edges close no cycle on their own)
    kept = [race for race in races if race.kinds == {"waw"} and isinstance(program.instructions[race.second], Release)]
    edges = [(race.first, race.second) for race in kept]
    extra: list[list[int]] = [[] for _ in range(count)]
    for a, b in edges:
        extra[a].append(b)
    others = [race for race in races if race not in kept]
    chosen = others if len(others) <= MAX_REVERSED else rng.sample(others, MAX_REVERSED)
    early: dict[int, list[int]] = {}
    for race in chosen:
        if not _reaches(race.first, race.second, successors, extra):  # second -> first closes no cycle
            extra[race.second].append(race.first)
            edges.append((race.second, race.first))
            if "raw" in race.kinds:
                early.setdefault(race.second, []).append(race.first)
            if "waw" in race.kinds:
                # the overwritten write lands late, but before what reads the later one: that is where it harms
                for reader in sorted((readers or {}).get(race.second, ())):
                    if reader != race.first and not _reaches(reader, race.first, successors, extra):
                        extra[race.first].append(reader)
                        edges.append((race.first, reader))
    exposing = _topological(successors, edges, rng)
    return Orders(tuple(races), tuple(exposing), tuple(keeping), {r: tuple(w) for r, w in early.items()})


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
