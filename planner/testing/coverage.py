"""What a plan exercises, read off the program: fusion groups of several tiles, recompute, cache, residency, line
buffers and split reductions.

The property tests count these over their examples and print the shares (`pytest -s`), so that a strategy which
stops reaching fusion is seen, not assumed.
"""

from __future__ import annotations

import collections
import math
import re
from dataclasses import dataclass

from simulator.isa import Box, Compute, Operand, Program

FEATURES = ("group", "multi_tile_group", "recompute", "cache", "residency", "line_buffer", "split")
_TILE = re.compile(r"^(group\d+)\.tile(\d+)\.")


@dataclass(frozen=True, slots=True)
class Features:
    """What one program does; `recomputed_elements` counts output elements computed more than once,
    `handed_windows` the rows of a tensor one tile of a line-buffered group hands the next on chip, `split_ops` the
    ops whose reduction runs in slices."""

    groups: int
    multi_tile_groups: int
    recomputed_elements: int
    cached_intermediates: int
    resident_tensors: int
    handed_windows: int = 0
    split_ops: int = 0

    def has(self, feature: str) -> bool:
        return {"group": self.groups, "multi_tile_group": self.multi_tile_groups,
                "recompute": self.recomputed_elements, "cache": self.cached_intermediates,
                "residency": self.resident_tensors, "line_buffer": self.handed_windows,
                "split": self.split_ops}[feature] > 0


def features(program: Program) -> Features:
    """The features of a program, from its buffer names (staging names a group's buffers `group<N>.`, a tile's
    `group<N>.tile<K>.`, a resident tensor's `resident.`, the rows a line-buffered tile hands on
    `group<N>.tile<K>.<tensor>.handed`) and its computes (output boxes; a slice of a split reduction adds the running
    sum, `accumulate`).

    >>> features(Program("m", "fused", "x", (), (), ())).groups
    0
    """
    constants = {t.name for t in program.tensors if t.role == "constant"}
    tiles: dict[str, set[str]] = collections.defaultdict(set)
    cached = resident = handed = 0
    for buffer in program.buffers:
        name = buffer.name
        match = _TILE.match(name)
        if match:
            tiles[match.group(1)].add(match.group(2))
            handed += name.endswith(".handed")
        elif name.startswith("group") and "." in name:
            group, tensor = name.split(".", 1)
            tiles.setdefault(group, set())  # a group whose every buffer is whole still counts
            cached += tensor not in constants
        elif name.startswith("resident."):
            resident += 1
    split = {i.node for i in program.instructions if isinstance(i, Compute) and i.accumulate is not None}
    return Features(len(tiles), sum(len(ts) > 1 for ts in tiles.values()), recomputed_elements(program), cached,
                    resident, handed, len(split))


def recomputed_elements(program: Program) -> int:
    """Elements computed more than once: per tensor, the elements of all its computes' output boxes beyond the
    hull those boxes span. Tiles of a group cover rows side by side, so the excess is exactly their overlap (the
    recomputed halo); a plan that computes each element once has none, and the slices of a split reduction, which
    add partial sums into one box, count it once; on-chip copies (`is_copy`) compute nothing.

    >>> recomputed_elements(Program("m", "fused", "x", (), (), ()))
    0
    """
    boxes: dict[str, list[Box]] = collections.defaultdict(list)
    for instruction in program.instructions:
        # a split reduction computes its output box once per slice: only the first slice counts
        if isinstance(instruction, Compute) and instruction.accumulate is None and not is_copy(instruction):
            boxes[instruction.output.tensor].append(instruction.output.box)
    total = 0
    for pieces in boxes.values():
        rank = len(pieces[0].start)
        hull = math.prod(max(b.stop[i] for b in pieces) - min(b.start[i] for b in pieces) for i in range(rank))
        total += max(0, sum(b.numel for b in pieces) - hull)
    return total


def is_copy(compute: Compute) -> bool:
    """An on-chip copy (planner.staging.builder's `copy`: a line buffer's rows moved between buffers), not model work:
    an Identity that writes the tensor it reads, which no op of an ONNX graph does.

    >>> row = Operand("t", Box((0,), (2,)), "b", (0,))
    >>> is_copy(Compute(0, (), "vector", "conv", "Identity", (), (row,), row, 0, 0, 2))
    True
    """
    return compute.op_type == "Identity" and any(isinstance(o, Operand) and o.tensor == compute.output.tensor
                                                 for o in compute.inputs)


class Coverage:
    """Counts of features over examples; `report()` is the line the property test prints."""

    def __init__(self) -> None:
        self.examples = 0
        self.planned = 0
        self.counts: collections.Counter[str] = collections.Counter()

    def add(self, program: Program | None) -> None:
        self.examples += 1
        if program is None:
            return
        self.planned += 1
        found = features(program)
        self.counts.update(feature for feature in FEATURES if found.has(feature))

    def share(self, feature: str) -> float:
        return self.counts[feature] / max(1, self.planned)

    def report(self) -> str:
        shares = ", ".join(f"{feature} {self.share(feature):.0%}" for feature in FEATURES)
        return f"coverage over {self.planned} planned of {self.examples} examples: {shares}"
