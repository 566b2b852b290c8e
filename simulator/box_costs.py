"""What moving a box of a row-major DRAM tensor costs: its contiguous runs, its DMA descriptors, its bytes.

The per-box formulas (`contiguous_runs`, `descriptors`, `transfer_bytes`, `gather_bytes`), and `boxes_by_rank`,
which turns many boxes into integer arrays at once so that `simulator.costs` prices a whole program with numpy and
works each distinct box shape out only once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from itertools import chain

import numpy as np

from simulator.isa import Box, DmaGather


def contiguous_runs(shape: Sequence[int], box: Box) -> int:
    """How many contiguous row-major DRAM runs `box` of a tensor of `shape` makes: the product of the box's extents
    over the axes before the outermost axis from which on the box is contiguous.

    >>> contiguous_runs((4, 5, 6), Box((0, 0, 0), (2, 3, 6)))  # two rows of 3 x 6 elements
    2
    >>> contiguous_runs((4, 5, 6), Box((1, 2, 0), (3, 3, 4)))  # 2 x 1 runs of 4 elements
    2
    >>> contiguous_runs((4, 5, 6), Box((1, 0, 0), (3, 5, 6)))  # rows 1 and 2 entirely: one run
    1
    """
    return _runs(tuple(shape), box.shape)


def _runs(shape: tuple[int, ...], extents: tuple[int, ...]) -> int:
    axis = len(shape) - 1
    while axis > 0 and extents[axis] == shape[axis]:
        axis -= 1
    return math.prod(extents[:max(axis, 0)])


def descriptors(shape: Sequence[int], box: Box, descriptor_dims: int) -> int:
    """How many DMA descriptors move `box` of a tensor of `shape` when one descriptor moves a strided box of up to
    `descriptor_dims` dimensions: the contiguous run is the innermost dimension, then each outer axis the box spans
    more than once is a strided dimension (two neighbours merge into one when the box covers the inner one whole, as
    their addresses then step by one stride). The outermost dimensions beyond what one descriptor holds repeat it.
    With `descriptor_dims` 1 this is `contiguous_runs`.

    >>> descriptors((4, 5, 6), Box((0, 0, 0), (2, 3, 6)), 1)  # 2 rows of 3 x 6 contiguous elements: 2 runs
    2
    >>> descriptors((4, 5, 6), Box((0, 0, 0), (2, 3, 6)), 2)  # a run and one strided dim (2 rows)
    1
    >>> descriptors((4, 5, 6), Box((0, 0, 0), (2, 3, 4)), 2)  # a run of 4, then 2 x 3 strided: 2 descriptors
    2
    >>> descriptors((4, 5, 6), Box((0, 0, 0), (2, 5, 4)), 2)  # axes 0 and 1 merge (axis 1 whole): 10 rows, 1 dim
    1
    """
    return _descriptors(tuple(shape), box.shape, descriptor_dims)


def _descriptors(shape: tuple[int, ...], extents: tuple[int, ...], descriptor_dims: int) -> int:
    axis = len(shape) - 1
    while axis > 0 and extents[axis] == shape[axis]:
        axis -= 1
    strides = [math.prod(shape[a + 1:]) for a in range(axis)]
    strided: list[list[int]] = []  # [extent, stride] of the outer dims the box spans, outermost first, merged
    for outer in range(axis):
        if extents[outer] == 1:
            continue
        if strided and strided[-1][1] == extents[outer] * strides[outer]:
            strided[-1] = [strided[-1][0] * extents[outer], strides[outer]]
        else:
            strided.append([extents[outer], strides[outer]])
    return math.prod(extent for extent, _ in strided[:max(0, len(strided) - (descriptor_dims - 1))])


@functools.lru_cache(maxsize=1 << 14)
def box_costs(shape: tuple[int, ...], extents: tuple[int, ...], elem_bytes: int, burst_size: int,
              descriptor_dims: int) -> tuple[int, int, int, int]:
    """(runs, descriptors, payload bytes, burst-rounded bytes) of one box of extents `extents` of a row-major tensor
    of `shape`.

    >>> box_costs((4, 6), (4, 3), 2, 64, 2)  # 4 runs of 6 bytes, one descriptor, each run one 64-byte burst
    (4, 1, 24, 256)
    """
    runs = _runs(shape, extents)
    payload = math.prod(extents) * elem_bytes
    count = runs if descriptor_dims == 1 else _descriptors(shape, extents, descriptor_dims)
    return runs, count, payload, runs * -(-(payload // runs) // burst_size) * burst_size


def transfer_bytes(tensor_shape: Sequence[int], elem_bytes: int, box: Box, burst_bytes: int) -> tuple[int, int, int]:
    """(runs, payload bytes, burst-rounded bytes) of a transfer of `box`.

    >>> transfer_bytes((4, 6), 2, Box((0, 0), (4, 3)), 64)  # 4 runs of 6 bytes, each one 64-byte burst
    (4, 24, 256)
    """
    runs, _, payload, burst = box_costs(tuple(tensor_shape), box.shape, elem_bytes, burst_bytes, 1)
    return runs, payload, burst


def gather_bytes(table_shape: Sequence[int], elem_bytes: int, gather: DmaGather, burst_bytes: int,
                 ) -> tuple[int, int, int]:
    """(runs, payload bytes, burst-rounded bytes) of an indirect DMA: its rows, each moved like a box of its own.

    >>> from simulator.isa import Operand
    >>> g = DmaGather(0, (), 0, "emb", 0, Box((0, 0), (100, 6)), Operand("ids", Box((0,), (3,)), "b", (0,)),
    ...               Operand("y", Box((0, 0), (3, 6)), "o", (0, 0)))
    >>> gather_bytes((100, 6), 4, g, 64)  # 3 rows of 24 bytes, each one 64-byte burst
    (3, 72, 192)
    """
    runs, payload, burst = transfer_bytes(table_shape, elem_bytes, gather.row_box, burst_bytes)
    return runs * gather.rows, payload * gather.rows, burst * gather.rows


def boxes_by_rank(starts: Sequence[tuple[int, ...]], stops: Sequence[tuple[int, ...]],
                  ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each rank among the boxes `starts[i]..stops[i]`: (positions i, starts, stops), the corners as int64 arrays
    of shape (boxes of that rank, rank).

    >>> [(p.tolist(), a.tolist(), b.tolist()) for p, a, b in boxes_by_rank([(1,), (0, 0)], [(3,), (2, 2)])]
    [([0], [[1]], [[3]]), ([1], [[0, 0]], [[2, 2]])]
    """
    ranks = np.fromiter(map(len, starts), dtype=np.int64, count=len(starts))
    for rank in np.unique(ranks).tolist():
        positions = np.flatnonzero(ranks == rank)
        these: Sequence[tuple[int, ...]]
        those: Sequence[tuple[int, ...]]
        if positions.size < len(starts):
            picked = positions.tolist()
            these, those = [starts[p] for p in picked], [stops[p] for p in picked]
        else:
            these, those = starts, stops
        count, shape = positions.size * rank, (positions.size, rank)
        yield (positions, np.fromiter(chain.from_iterable(these), dtype=np.int64, count=count).reshape(shape),
               np.fromiter(chain.from_iterable(those), dtype=np.int64, count=count).reshape(shape))


def box_elements(starts: Sequence[tuple[int, ...]], stops: Sequence[tuple[int, ...]]) -> np.ndarray:
    """The element count of each box `starts[i]..stops[i]`, as int64.

    >>> box_elements([(1,), (0, 0)], [(3,), (2, 3)]).tolist()
    [2, 6]
    """
    counts = np.zeros(len(starts), dtype=np.int64)
    for positions, low, high in boxes_by_rank(starts, stops):
        counts[positions] = np.prod(high - low, axis=1)
    return counts
