"""The compiled pieces `simulator.events_jit` builds its loop from: numba's decorators (or none, without the `fast`
extra) and the event heap, a binary min-heap of int64 keys in an array.
"""

from __future__ import annotations

from typing import Any

try:
    import numba
except ImportError:  # the `fast` extra is optional: simulator.events runs the same loop in Python
    numba = None  # type: ignore[assignment]

_NO_REFCOUNTS: dict[str, Any] = {"_nrt": False}  # numba's flag (numba.core.options), not in its typed stubs


def jit(function: Any) -> Any:
    return numba.njit(cache=True, nogil=True)(function) if numba is not None else function


def plain(function: Any) -> Any:
    # without numba's reference counting (`_nrt=False`): these run a few times per event, and the atomic increments
    # and decrements of the arrays they are handed cost more than all their work (70% of the loop's time, by perf)
    return numba.njit(cache=True, nogil=True, **_NO_REFCOUNTS)(function) if numba is not None else function


@plain
def push(events, key):  # type: ignore[no-untyped-def]
    # a binary min-heap of int64 keys in an array (numba's heapq works on lists, which need reference counting):
    # events[0] holds the heap's size, the heap itself is events[1:events[0] + 1], children of k at 2k and 2k + 1
    n = events[0] + 1
    if n >= len(events):  # never, by the bound in simulator.events_jit._run; a guard against writing past the array
        raise IndexError("timing: the event heap is full")
    events[0] = n
    position = n
    while position > 1:
        parent = position >> 1
        above = events[parent]
        if key >= above:
            break
        events[position] = above
        position = parent
    events[position] = key


@plain
def pop(events):  # type: ignore[no-untyped-def]
    top = events[1]
    n = events[0]
    key = events[n]
    n -= 1
    events[0] = n
    position = 1
    while True:
        child = 2 * position
        if child > n:
            break
        below = events[child]
        if child < n and events[child + 1] < below:
            child += 1
            below = events[child]
        if below >= key:
            break
        events[position] = below
        position = child
    events[position] = key
    return top
