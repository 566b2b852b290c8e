"""Resize footprints against onnxruntime itself: an input element is read by an output element when a NaN placed in
it alone makes that output NaN. Nearest footprints are exact; linear and cubic ones are a sound over-approximation
(a superset, at most one index more per resized axis), as `planner/ops/resize.py` says."""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
from hypothesis import assume, given, note
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from planner import poly
from planner.graph import load_graph
from planner.ops import lower
from tests.planner.footprint_oracle import isl_points
from tests.planner.test_ops_footprints import blocks

TRANSFORMS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_crop_and_resize",
              "half_pixel_symmetric"]


def resize_model(shape, attrs, scales=None, sizes=None, roi=None, opset=19):
    consts = {"roi": np.array(roi if roi is not None else [], np.float32),
              "scales": np.array(scales if scales is not None else [], np.float32)}
    if sizes is not None:
        consts["sizes"] = np.array(sizes, np.int64)
    node = helper.make_node("Resize", ["x", *consts], ["y"], name="op", **attrs)
    out = sizes if sizes is not None else [math.floor(n * s) for n, s in zip(shape, scales, strict=True)]
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
                              [numpy_helper.from_array(v, n) for n, v in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=9)


def onnxruntime_reads(model, shape) -> dict[tuple[int, ...], set[tuple[int, ...]]]:
    """Per output element, the input elements whose NaN reaches it."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    reads: dict[tuple[int, ...], set[tuple[int, ...]]] = {}
    for source in np.ndindex(*shape):
        x = np.zeros(shape, np.float32)
        x[source] = np.nan
        y = session.run(None, {"x": x})[0]
        for out in map(tuple, np.argwhere(np.isnan(y))):
            reads.setdefault(tuple(int(i) for i in out), set()).add(source)
    return reads


@st.composite
def resizes(draw):
    shape = [1, draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 5))]
    mode = draw(st.sampled_from(["nearest", "linear", "cubic"]))
    transform = draw(st.sampled_from(TRANSFORMS))
    attrs = {"mode": mode, "coordinate_transformation_mode": transform}
    if mode == "cubic":
        attrs["cubic_coeff_a"] = draw(st.sampled_from([-0.75, -0.5]))
        attrs["exclude_outside"] = draw(st.integers(0, 1))
    roi = None
    if transform == "tf_crop_and_resize":
        starts = [draw(st.sampled_from([0.0, 0.1, 0.25])) for _ in range(2)]
        ends = [draw(st.sampled_from([0.75, 0.9, 1.0, 1.2])) for _ in range(2)]
        roi = [0.0, 0.0, *starts, 1.0, 1.0, *ends]
    if draw(st.booleans()):
        scales = [1.0, 1.0, draw(st.sampled_from([0.5, 0.6, 1.0, 1.5, 2.0, 3.0])),
                  draw(st.sampled_from([0.5, 1.0, 1.7, 2.0, 2.5]))]
        assume(all(math.floor(n * s) >= 1 for n, s in zip(shape, scales, strict=True)))
        return shape, resize_model(shape, attrs, scales=scales, roi=roi)
    sizes = [*shape[:2], draw(st.integers(1, 9)), draw(st.integers(1, 9))]
    return shape, resize_model(shape, attrs, sizes=sizes, roi=roi)


@given(st.data())
def test_resize_footprints_cover_what_onnxruntime_reads(data) -> None:
    shape, model = data.draw(resizes())
    note(helper.printable_node(model.graph.node[0]))
    note(str([numpy_helper.to_array(t).tolist() for t in model.graph.initializer]))
    (stmt,) = lower(load_graph(model)).statements
    exact = helper.get_node_attr_value(model.graph.node[0], "mode") == b"nearest"
    truth = onnxruntime_reads(model, shape)
    block = data.draw(blocks(stmt), label="block")
    out_shape = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    ranges = [range(*block.get(f"i{a}", (0, n))) for a, n in enumerate(out_shape)]
    expected = set().union(*(truth.get(point, set()) for point in np.ndindex(*[len(r) for r in ranges])
                             for point in [tuple(r[i] for r, i in zip(ranges, point, strict=True))]))
    found = poly.footprint(stmt, block)
    got = isl_points(found["x"]) if "x" in found else set()
    if exact:
        assert got == expected
    else:
        assert got >= expected, f"missing {sorted(expected - got)[:5]}"
    # tight: per axis, at most one index more than onnxruntime reads for any single output element, or than the taps
    taps = {"nearest": 1, "linear": 2, "cubic": 4}[helper.get_node_attr_value(model.graph.node[0], "mode").decode()]
    point = {f"i{a}": (r.start, r.start + 1) for a, r in enumerate(ranges)}
    single = isl_points(poly.footprint(stmt, point)["x"]) if "x" in poly.footprint(stmt, point) else set()
    wanted = truth.get(tuple(r.start for r in ranges), set())
    assert single >= wanted
    for axis in range(4):
        assert len({p[axis] for p in single}) <= max(len({p[axis] for p in wanted}), taps) + 1 or not wanted
