"""The stores a load waits for, found in arrays (planner.staging.stores), are the ones a scan box by box finds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from planner.staging.builder import boxes_meet
from planner.staging.stores import StoreIndex
from simulator.isa import Box


@st.composite
def _boxes(draw: st.DrawFn, rank: int) -> Box:
    start = [draw(st.integers(0, 6)) for _ in range(rank)]
    return Box(tuple(start), tuple(s + draw(st.integers(1, 4)) for s in start))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_meeting_is_the_scan(data: st.DataObject) -> None:
    rank = data.draw(st.integers(0, 3))
    stored = data.draw(st.lists(_boxes(rank), max_size=40))  # past the first arrays' size, so they grow
    index = StoreIndex()
    for i, box in enumerate(stored):
        index.add("t", box, 3 * i)
    probe = data.draw(_boxes(rank))
    assert index.meeting("t", probe) == [3 * i for i, box in enumerate(stored) if boxes_meet(box, probe)]
    assert index.meeting("other", probe) == []
