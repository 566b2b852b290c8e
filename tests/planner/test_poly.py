"""The isl queries beyond footprints: reuse between consecutive tiles, and flow dependences between statements."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from planner import poly
from tests.planner.footprint_oracle import brute_force, isl_points
from tests.planner.test_ops_footprints import one_node, typed_model


@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 4), st.integers(0, 2), st.integers(1, 2))
def test_reuse_between_row_tiles_is_the_halo_overlap(channels: int, width: int, rows: int, pad: int,
                                                    stride: int) -> None:
    height, width = 3 * rows * stride + 2, max(width, 3 - 2 * pad)
    stmt = one_node("Conv", [("x", [1, channels, height, width]), ("w", [2, channels, 3, 3])],
                    {"pads": [pad] * 4, "strides": [stride, 1]}).statements[0]
    first, second = {"y": (0, rows)}, {"y": (rows, 2 * rows)}

    def body(p):
        iy, ix = p["y"] * stride + p["ky"] - pad, p["x"] + p["kx"] - pad
        inside = 0 <= iy < height and 0 <= ix < width
        return ([("x", (0, p["c"], iy, ix))] if inside else []) + [("w", (p["k"], p["c"], p["ky"], p["kx"]))], []

    expected = {t: len(brute_force(stmt, first, body)[1][t] & brute_force(stmt, second, body)[1][t])
                for t in ("x", "w")}
    assert poly.reuse_elements(stmt, first, second) == expected
    overlap = poly.overlap(poly.footprint(stmt, first)["x"], poly.footprint(stmt, second)["x"])
    assert poly.count(overlap) == expected["x"]
    assert expected["w"] == 2 * channels * 9  # every tile reads all the weights


def test_flow_dependences_of_a_conv_relu_chain() -> None:
    from onnx import helper

    from planner.graph import load_graph
    from planner.ops import lower

    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    lowered = lower(load_graph(typed_model(nodes, [("x", [1, 2, 4, 4]), ("w", [3, 2, 3, 3])], {}, 17)))
    conv, relu = lowered.statements
    (dependence,) = poly.flow_dependences(lowered.statements)
    assert (dependence.source, dependence.sink, dependence.tensor) == (conv, relu, "c")
    # every conv point writing c[0, k, y, x] flows into the relu point that reads it: C*R*S conv points per element
    sinks_of_one_conv_point = dependence.relation.intersect_domain(
        poly.block_points(conv, {d: (0, 1) for d in conv.dims})).range()
    assert isl_points(sinks_of_one_conv_point) == {(0, 0, 0, 0)}
    sources = dependence.relation.reverse().intersect_domain(poly.block_points(relu, {"i1": (1, 2), "i2": (2, 3),
                                                                                     "i3": (3, 4)})).range()
    assert poly.count(sources) == 2 * 3 * 3
    assert {p[2:5] for p in isl_points(sources)} == {(1, 2, 3)}
    assert np.all([p[0] == 0 for p in isl_points(sources)])
