"""The dynamic program over cut points finds the cheapest cover, checked against brute force over every cut set."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.graph import load_graph
from planner.ops import lower
from planner.schedule.boundaries import group_tiles
from planner.schedule.cuts import MAX_SPAN, cheapest_cover
from planner.testing import fusion_cases


def brute_force(intervals: int, run, max_span: int = MAX_SPAN, earliest=None):  # type: ignore[no-untyped-def]
    """Every set of cuts between the intervals: the cheapest cover whose runs all fit `max_span` (or, given
    `earliest`, start no earlier than `earliest(end)`)."""
    def first(end: int) -> int:
        return earliest(end) if earliest is not None else end - max_span
    best = None
    for kept in itertools.product((False, True), repeat=max(0, intervals - 1)):
        bounds = [0, *(i + 1 for i, cut in enumerate(kept) if cut), intervals]
        if any(a < first(b) for a, b in itertools.pairwise(bounds)):
            continue
        priced = [run(a, b)[0] for a, b in itertools.pairwise(bounds)]
        total = (sum(p[0] for p in priced), sum(p[1] for p in priced))
        best = total if best is None or total < best else best
    return best


@given(st.integers(1, 7), st.data())
def test_cover_is_the_brute_force_minimum_on_random_costs(intervals: int, data: st.DataObject) -> None:
    table = {(i, j): (data.draw(st.integers(0, 50)), data.draw(st.integers(0, 50)))
             for i in range(intervals) for j in range(i + 1, intervals + 1)}

    def run(i: int, j: int):  # type: ignore[no-untyped-def]
        return table[(i, j)], ()

    assert cheapest_cover(intervals, run)[0] == brute_force(intervals, run)


@pytest.mark.slow  # about 10 s per example: every run of a real graph priced over its tiles
@settings(max_examples=3)
@given(fusion_cases())
def test_cover_is_the_brute_force_minimum_on_generated_graphs(case) -> None:  # type: ignore[no-untyped-def]
    # The run prices of a real graph and machine (planner.schedule.cuts.best_groups' own): the cover the dynamic
    # program returns costs what the best of every cut set costs.
    import functools

    from planner.group_choice import cut_points
    from planner.schedule import cuts
    from planner.schedule.op_tiles import partition_bytes_of

    model, machine = case
    lowered = lower(load_graph(model))
    boundaries = sorted({0, *cut_points(lowered), len(lowered.statements)})
    seen: dict[tuple[int, int], object] = {}
    original = cuts.cheapest_cover

    def spy(intervals, run, max_span=MAX_SPAN, earliest=None):  # type: ignore[no-untyped-def]
        memo = functools.cache(run)
        seen["result"] = original(intervals, memo, max_span, earliest)
        seen["brute"] = brute_force(intervals, memo, max_span, earliest)
        return seen["result"]

    cuts.cheapest_cover = spy  # type: ignore[assignment]
    try:
        cuts.best_groups(lowered, machine, machine.scratchpad.partition_bytes * 3 // 4,
                         partition_bytes_of(lowered, machine))
    finally:
        cuts.cheapest_cover = original  # type: ignore[assignment]
    assert len(boundaries) >= 2
    assert seen["result"][0] == seen["brute"]  # type: ignore[index]


def test_group_tiles_include_near_divisors() -> None:
    rows = [tile[2] for tile, _ in group_tiles((1, 4, 20, 20))]
    assert {20, 10, 7, 5, 4, 3, 2, 1} <= set(rows)
