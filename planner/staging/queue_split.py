"""How one DMA transfer is spread over the machine's DMA queues: the slabs a large box goes out as.

One queue moves at most its engine's bandwidth, so a box of more than `SPLIT_BYTES` is cut into one slab per queue
along its outermost axis that has room, and big transfers use the DRAM bandwidth the machine has. Staging
(`planner.staging.builder`) emits one load or store per slab; the cost model's timeline (`planner.schedule.timeline`)
prices the same slabs. The rule lives here, apart from both, so that the two cannot drift.
"""

from __future__ import annotations

import itertools

from simulator.isa import Box

SPLIT_BYTES = 32 * 1024  # transfers larger than this are spread over the DMA queues


def queue_parts(box: Box, elem_bytes: int, engines: int) -> list[Box]:
    """The slabs `box` (of `elem_bytes`-byte elements) moves in over `engines` DMA queues, in order.

    >>> [part.start for part in queue_parts(Box((0, 0), (4, 8192)), 4, 2)]
    [(0, 0), (2, 0)]
    """
    axis = next((a for a, extent in enumerate(box.shape) if extent > 1), None)
    count = 1 if axis is None else min(engines, box.shape[axis], max(1, box.numel * elem_bytes // SPLIT_BYTES))
    if count == 1 or axis is None:
        return [box]
    cuts = [box.start[axis] + box.shape[axis] * i // count for i in range(count + 1)]
    return [Box((*box.start[:axis], lo, *box.start[axis + 1:]), (*box.stop[:axis], hi, *box.stop[axis + 1:]))
            for lo, hi in itertools.pairwise(cuts)]
