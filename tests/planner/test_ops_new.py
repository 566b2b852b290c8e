"""Footprints of the ops added for real exports (gathers, logic, rearrangements, more reductions and norms): isl's
footprints of random iteration blocks equal a brute-force enumeration, element by element.

Copies are checked against onnxruntime itself: it runs the op on a tensor whose every element holds its own flat
position plus one, so each output element says which input element it copied (0: none).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import onnx.parser
import onnxruntime as ort
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from planner.graph import load_graph
from planner.ops import lower
from planner.stmt import LoweredGraph, Statement
from tests.planner.test_ops_footprints import broadcast, check

small = st.integers(1, 4)


def model(op_type: str, inputs: Sequence[tuple[str, int, Sequence[int]]], attrs: Mapping | None = None,
          consts: Mapping[str, np.ndarray] | None = None, opset: int = 17,
          out_shape: Sequence[int] | None = None) -> onnx.ModelProto:
    """A one-node model; inputs are (name, elem type, shape), constants initializers (given in input order after
    the inputs), and the output typed by shape inference (or `out_shape` for ops it cannot infer)."""
    consts = dict(consts or {})
    node = helper.make_node(op_type, [n for n, _, _ in inputs] + list(consts), ["y"], name="op", **dict(attrs or {}))

    def build(outputs: list) -> onnx.ModelProto:
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, t, list(s)) for n, t, s in inputs],
                                  outputs, [numpy_helper.from_array(v, n) for n, v in consts.items()])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)

    inferred = onnx.shape_inference.infer_shapes(build([helper.make_tensor_value_info("y", 0, None)]))
    (output,) = inferred.graph.output
    if out_shape is not None:
        output = helper.make_tensor_value_info("y", output.type.tensor_type.elem_type or TensorProto.FLOAT,
                                               list(out_shape))
    return build([output])


def lowered_of(m: onnx.ModelProto) -> LoweredGraph:
    return lower(load_graph(m))


def copied_from(m: onnx.ModelProto, shape: Sequence[int]) -> np.ndarray:
    """Per output element, the flat position + 1 of the input element onnxruntime copied into it (0: none)."""
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    positions = np.arange(1, math.prod(shape) + 1, dtype=np.float32).reshape(shape)
    return session.run(None, {"x": positions})[0].astype(np.int64)


def check_copy(data, m: onnx.ModelProto, shape: Sequence[int]) -> Statement:
    (stmt,) = lowered_of(m).statements
    source = copied_from(m, shape)

    def body(p):
        out = tuple(p[f"i{a}"] for a in range(source.ndim))
        flat = int(source[out])
        reads = [("x", tuple(int(i) for i in np.unravel_index(flat - 1, shape)))] if flat else []
        return reads, [("y", out)]

    check(data, stmt, body)
    return stmt


F = TensorProto.FLOAT


# -- gathers with constant indices ----------------------------------------------------------------------------------

@given(st.data())
def test_gather_constant_indices(data) -> None:
    shape = data.draw(st.lists(small, min_size=1, max_size=3))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    extent = shape[axis]
    kind = data.draw(st.sampled_from(["scalar", "list", "matrix"]))
    index = st.integers(-extent, extent - 1)
    if kind == "scalar":
        indices = np.array(data.draw(index), np.int64)
    elif kind == "list":
        indices = np.array(data.draw(st.lists(index, min_size=1, max_size=5)), np.int64)
    else:
        indices = np.array(data.draw(st.lists(st.lists(index, min_size=2, max_size=2), min_size=1, max_size=3)),
                           np.int64)
    check_copy(data, model("Gather", [("x", F, shape)], {"axis": axis}, {"i": indices}), shape)


@given(st.data())
def test_gather_elements_constant_indices(data) -> None:
    shape = data.draw(st.lists(small, min_size=1, max_size=3))
    axis = data.draw(st.integers(0, len(shape) - 1))
    index_shape = [data.draw(st.integers(1, n)) for n in shape]
    index_shape[axis] = data.draw(small)
    indices = np.array(data.draw(st.lists(st.integers(-shape[axis], shape[axis] - 1), min_size=math.prod(index_shape),
                                          max_size=math.prod(index_shape))), np.int64).reshape(index_shape)
    check_copy(data, model("GatherElements", [("x", F, shape)], {"axis": axis}, {"i": indices}), shape)


@given(st.data())
def test_gather_nd_constant_indices(data) -> None:
    shape = data.draw(st.lists(small, min_size=1, max_size=4))
    batch = data.draw(st.integers(0, len(shape) - 1))
    depth = data.draw(st.integers(1, len(shape) - batch))
    lead = data.draw(st.lists(small, max_size=2))
    index_shape = [*shape[:batch], *lead, depth]
    points = math.prod(index_shape[:-1])
    columns = [data.draw(st.lists(st.integers(0, shape[batch + k] - 1), min_size=points, max_size=points))
               for k in range(depth)]
    indices = np.stack([np.array(c, np.int64) for c in columns], axis=-1).reshape(index_shape)
    out_shape = [*index_shape[:-1], *shape[batch + depth:]]
    check_copy(data, model("GatherND", [("x", F, shape)], {"batch_dims": batch}, {"i": indices}, out_shape=out_shape),
               shape)


# -- rearrangements -------------------------------------------------------------------------------------------------

@given(st.data())
def test_depth_to_space_and_back(data) -> None:
    block = data.draw(st.integers(1, 3))
    n, c, h, w = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)), data.draw(small), data.draw(small)
    if data.draw(st.booleans()):
        shape = [n, c * block * block, h, w]
        mode = data.draw(st.sampled_from(["DCR", "CRD"]))
        m = model("DepthToSpace", [("x", F, shape)], {"blocksize": block, "mode": mode})
    else:
        shape = [n, c, h * block, w * block]
        m = model("SpaceToDepth", [("x", F, shape)], {"blocksize": block})
    check_copy(data, m, shape)


@given(st.data())
def test_tile_expand_trilu(data) -> None:
    shape = data.draw(st.lists(small, min_size=1, max_size=3))
    op_type = data.draw(st.sampled_from(["Tile", "Expand", "Trilu"]))
    if op_type == "Tile":
        repeats = np.array([data.draw(st.integers(1, 3)) for _ in shape], np.int64)
        m = model("Tile", [("x", F, shape)], consts={"r": repeats})
    elif op_type == "Expand":
        lead = data.draw(st.lists(small, max_size=2))
        target = [*lead, *[data.draw(st.sampled_from([1, n])) if n > 1 else data.draw(small) for n in shape]]
        m = model("Expand", [("x", F, shape)], consts={"s": np.array(target, np.int64)})
    else:
        shape = [*shape, data.draw(small)] if len(shape) < 2 else shape
        k = np.array(data.draw(st.integers(-4, 4)), np.int64)
        m = model("Trilu", [("x", F, shape)], {"upper": data.draw(st.integers(0, 1))}, {"k": k}, opset=17)
    check_copy(data, m, shape)


# -- elementwise logic, Where ---------------------------------------------------------------------------------------

@given(st.data(), st.sampled_from(["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor",
                                   "Not", "Where", "Softplus", "Mish"]))
def test_logic_and_where(data, op_type: str) -> None:
    count = {"Not": 1, "Softplus": 1, "Mish": 1, "Where": 3}.get(op_type, 2)
    out = data.draw(st.lists(small, max_size=3))
    shapes = [[n if data.draw(st.booleans()) else 1 for n in out[data.draw(st.integers(0, len(out))):]]
              for _ in range(count)]
    shapes[0] = list(out)
    types = [TensorProto.BOOL if op_type in ("And", "Or", "Xor", "Not") or (op_type == "Where" and i == 0) else F
             for i in range(count)]
    names = [f"x{i}" for i in range(count)]
    m = model(op_type, list(zip(names, types, shapes, strict=True)), opset=18)
    (stmt,) = lowered_of(m).statements
    assert lowered_of(m).graph.tensors["y"].dtype == ("bool" if op_type not in ("Where", "Softplus", "Mish")
                                                      else "float")

    def body(p):
        index = tuple(p[f"i{a}"] for a in range(len(out)))
        return [(n, broadcast(index, s)) for n, s in zip(names, shapes, strict=True)], [("y", index)]

    check(data, stmt, body)


# -- reductions and norms -------------------------------------------------------------------------------------------

@given(st.data(), st.sampled_from(["ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ArgMax", "ArgMin"]))
def test_more_reductions(data, op_type: str) -> None:
    shape = data.draw(st.lists(small, min_size=1, max_size=3))
    rank = len(shape)
    keepdims = data.draw(st.integers(0, 1))
    opset = data.draw(st.sampled_from([17, 18]))
    consts: dict[str, np.ndarray] = {}
    attrs: dict[str, object] = {"keepdims": keepdims}
    if op_type.startswith("Arg"):
        axis = data.draw(st.integers(-rank, rank - 1))
        attrs["axis"], reduced = axis, {axis % rank}
    else:
        axes = sorted(set(data.draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank))))
        reduced = {a % rank for a in axes}
        if opset >= 18:
            consts["axes"] = np.array(axes, np.int64)
        else:
            attrs["axes"] = axes
    (stmt,) = lowered_of(model(op_type, [("x", F, shape)], attrs, consts, opset=opset)).statements

    def body(p):
        index = tuple(p[f"i{axis}"] for axis in range(rank))
        out = [0 if a in reduced else i for a, i in enumerate(index) if keepdims or a not in reduced]
        return [("x", index)], [("y", tuple(out))]

    check(data, stmt, body)


@given(st.data())
def test_instance_and_group_norm(data) -> None:
    n, spatial = data.draw(st.integers(1, 2)), data.draw(st.lists(small, min_size=1, max_size=2))
    groups, per_group = data.draw(small), data.draw(small)
    channels = groups * per_group
    shape = [n, channels, *spatial]
    params = [("s", F, [channels]), ("b", F, [channels])]
    if data.draw(st.booleans()):
        m = model("InstanceNormalization", [("x", F, shape), *params])
        same = lambda c, d: c == d  # noqa: E731
    else:
        m = model("GroupNormalization", [("x", F, shape), *params], {"num_groups": groups}, opset=21, out_shape=shape)
        same = lambda c, d: c // per_group == d // per_group  # noqa: E731
    (stmt,) = lowered_of(m).statements

    def body(p):
        index = tuple(p[f"i{a}"] for a in range(len(shape)))
        row = [("x", (index[0], c, *rest)) for c in range(channels) if same(c, index[1])
               for rest in np.ndindex(*spatial)]
        return [*row, ("s", (index[1],)), ("b", (index[1],))], [("y", index)]

    check(data, stmt, body)


# -- what is refused, with the node and the reason ------------------------------------------------------------------

def test_refusals_name_the_node_and_the_reason() -> None:
    import pytest

    from planner.errors import PlanError

    cases = [
        (onnx.parser.parse_model('<ir_version: 8, opset_import: ["" : 17]> g (float[4,3] x, int64[2] i) => '
                                 '(float[2,3] y) { r = Relu(x) y = Gather<axis = 0>(r, i) }'),
         "both computed at run time"),
        (model("GatherElements", [("x", F, [4, 3]), ("i", TensorProto.INT64, [4, 3])]), "constant indices only"),
        (model("Resize", [("x", F, [1, 1, 4, 4])], {"mode": "linear", "antialias": 1},
               {"roi": np.array([], np.float32), "scales": np.array([1, 1, 0.5, 0.5], np.float32)}, opset=18),
         "antialias"),
    ]
    for m, reason in cases:
        with pytest.raises(PlanError, match=rf"node '\w+' \(\w+\): .*{reason}"):
            lowered_of(m)
