"""Where a fusion group may begin and end, and the sink tiles a group is tried with.

planner.group_choice.cut_points allows a boundary only where a single complete tensor is live. A transformer's
feed-forward block never has one inside it: the LayerNorm's output is live until the residual Add at its end, beside
whatever the FFN is computing. `group_boundaries` relaxes that to at most `max_live` complete activations crossing,
so that the DP (planner.schedule.cuts) may group the FFN's inner Linear -> GELU -> Linear while the norm's output
waits in DRAM (or resident) for the Add, and the attention core while q, k and v wait. Whether a run between two
boundaries is a legal group is still planner.group_choice.is_closed's question.
"""

from __future__ import annotations

from planner.groups import sink_tensor
from planner.stmt import LoweredGraph
from planner.tiling_prices import candidate_sizes

# Activations that may cross a group boundary. Four lets a transformer's attention core (scores -> scale -> softmax
# -> context) be a group while the residual input and q, k and v wait: bert_base on edge-npu moves 1.63x compulsory
# at four against 1.90x at two; the CNNs of the zoo plan the same bytes at either.
MAX_LIVE = 4


def group_boundaries(lowered: LoweredGraph, max_live: int = MAX_LIVE) -> list[int]:
    """Positions p (a boundary between statement p-1 and p) where at most `max_live` activations written before p
    are read at or after p (or are model outputs), each of them complete (no statement from p on writes it).

    With `max_live=1` these include every planner.group_choice.cut_points position.
    """
    statements = lowered.statements
    outputs = {lowered.base(name) for name in lowered.graph.outputs}
    last_use: dict[str, int] = {}
    last_write: dict[str, int] = {}
    for index, stmt in enumerate(statements):
        for tensor in stmt.tensors_read:
            last_use[tensor] = index
        last_write[sink_tensor(stmt)] = index
    for tensor in outputs:
        last_use[tensor] = len(statements)
    found = []
    live: set[str] = set()
    for index, stmt in enumerate(statements):
        live.add(sink_tensor(stmt))
        live = {t for t in live if last_use.get(t, -1) > index or last_write[t] > index}
        if len(live) <= max_live and all(last_write[t] <= index for t in live):
            found.append(index + 1)
    return found


def group_tiles(shape: tuple[int, ...]) -> list[tuple[tuple[int, ...], bool]]:
    """Sink tiles to try, largest first, with whether caching can apply: batch sizes, then one image (NCHW) or one
    sequence (batch, sequence, features) per tile in row counts ceil(rows / n). Only image rows cache (a sequence
    tile's rows share no halo).

    >>> [tile for tile, _ in group_tiles((1, 8, 6, 6))][:4]
    [(1, 8, 6, 6), (1, 8, 3, 6), (1, 8, 2, 6), (1, 8, 1, 6)]
    >>> [tile for tile, _ in group_tiles((1, 10, 4))][:3]
    [(1, 10, 4), (1, 5, 4), (1, 4, 4)]
    """
    if not shape:
        return [((), False)]
    found = [((size, *shape[1:]), False) for size in sorted(candidate_sizes(shape[0]), reverse=True)]
    if len(shape) == 4 and shape[2] > 1:
        found += [((1, shape[1], rows, shape[3]), shape[0] == 1)
                  for rows in sorted(candidate_sizes(shape[2]), reverse=True) if rows < shape[2]]
    if len(shape) == 3 and shape[1] > 1:
        found += [((1, rows, shape[2]), False)
                  for rows in sorted(candidate_sizes(shape[1]), reverse=True) if rows < shape[1]]
    return found


def channel_tiles(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Sink tiles that cut the channels (axis 1 of NCHW) or the features (the last axis of a sequence or a row of
    features) of one batch element, largest first: tiles of a group whose weights stream in output-channel blocks
    (planner.groups.Group.streamed), for a matmul or conv whose weights do not fit the scratchpad whole.

    >>> channel_tiles((1, 4, 2, 2))
    [(1, 2, 2, 2), (1, 1, 2, 2)]
    >>> channel_tiles((1, 8, 6))[:3]
    [(1, 8, 3), (1, 8, 2), (1, 8, 1)]
    """
    axis = 1 if len(shape) == 4 else len(shape) - 1
    if len(shape) < 2 or shape[0] != 1 or shape[axis] < 2:
        return []
    return [(*shape[:axis], size, *shape[axis + 1:]) for size in sorted(candidate_sizes(shape[axis]), reverse=True)
            if size < shape[axis]]
