"""For every op in the set: isl footprints of random iteration blocks equal brute-force enumeration of the op's loop
nest, element counts agree, and MAC counts equal the textbook formula."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from planner.graph import load_graph
from planner.ops import lower
from planner.ops.elementwise import BINARY, UNARY, VARIADIC
from planner.stmt import LoweredGraph, Statement
from tests.planner.footprint_oracle import assert_matches, brute_force, extents

OPSETS = {"Gelu": 20, "HardSwish": 14, "Mish": 18}


def one_node(op_type: str, inputs: Sequence[tuple[str, Sequence[int]]], attrs: Mapping | None = None,
             consts: Mapping[str, np.ndarray] | None = None, opset: int = 17, outputs: Sequence[str] = ("y",),
             input_names: Sequence[str] | None = None) -> LoweredGraph:
    """Lower a model of one node; float inputs of the given shapes, constants as initializers."""
    consts = dict(consts or {})
    names = list(input_names) if input_names is not None else [name for name, _ in inputs] + list(consts)
    node = helper.make_node(op_type, names, list(outputs), name="op", **dict(attrs or {}))
    return lower(load_graph(typed_model([node], [(n, s) for n, s in inputs], consts, opset)))


def typed_model(nodes, inputs, consts, opset: int) -> onnx.ModelProto:
    """A model whose graph outputs (the last node's) carry the types shape inference gives them."""
    def build(outputs):
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s))
                                               for n, s in inputs], outputs,
                                  [numpy_helper.from_array(v, n) for n, v in consts.items()])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)

    inferred = onnx.shape_inference.infer_shapes(build([])).graph.value_info
    return build([value for value in inferred if value.name in nodes[-1].output])


@st.composite
def blocks(draw, stmt: Statement) -> dict[str, tuple[int, int]]:
    """A random sub-box of the statement's domain (some dims left whole)."""
    block = {}
    for dim, (lo, hi) in extents(stmt).items():
        if draw(st.booleans()):
            start = draw(st.integers(lo, hi - 1))
            block[dim] = (start, draw(st.integers(start + 1, hi)))
    return block


def check(data, stmt: Statement, body) -> None:
    assert_matches(stmt, {}, body)
    assert_matches(stmt, data.draw(blocks(stmt), label="block"), body)


def inside(index: Sequence[int], shape: Sequence[int]) -> bool:
    return all(0 <= i < n for i, n in zip(index, shape, strict=True))


def broadcast(index: Sequence[int], shape: Sequence[int]) -> tuple[int, ...]:
    offset = len(index) - len(shape)
    return tuple(0 if extent == 1 else index[axis + offset] for axis, extent in enumerate(shape))


small = st.integers(1, 4)


# -- convolutions ---------------------------------------------------------------------------------------------------

@given(st.data())
def test_conv(data) -> None:
    rank = data.draw(st.sampled_from([1, 2]))
    n, group, cg, kg = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3)), data.draw(small), data.draw(small)
    spatial = [data.draw(st.integers(1, 7)) for _ in range(rank)]
    kernel = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    strides = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    dilations = [data.draw(st.integers(1, 2)) for _ in range(rank)]
    auto_pad = data.draw(st.sampled_from(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    pads = [data.draw(st.integers(0, 2)) for _ in range(2 * rank)] if auto_pad == "NOTSET" else [0] * (2 * rank)
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    if auto_pad.startswith("SAME"):
        out = [-(-i // s) for i, s in zip(spatial, strides, strict=True)]
        total = [max(0, (o - 1) * s + w - i) for o, s, w, i in zip(out, strides, span, spatial, strict=True)]
        begin = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
    else:
        begin = pads[:rank]
        room = [i + b + e - w for i, b, e, w in zip(spatial, pads[:rank], pads[rank:], span, strict=True)]
        assume(min(room) >= 0)
        out = [r // s + 1 for r, s in zip(room, strides, strict=True)]
    bias = data.draw(st.booleans())
    k_total, c_total = kg * group, cg * group
    attrs = {"group": group, "strides": strides, "dilations": dilations, "auto_pad": auto_pad}
    if auto_pad == "NOTSET":
        attrs["pads"] = pads
    inputs = [("x", [n, c_total, *spatial]), ("w", [k_total, cg, *kernel])] + ([("b", [k_total])] if bias else [])
    stmt = one_node("Conv", inputs, attrs).statements[0]
    assert stmt.macs == n * k_total * math.prod(out) * cg * math.prod(kernel)
    names = ("x",) if rank == 1 else ("y", "x")

    def body(p):
        o, r = [p[s] for s in names], [p["k" + s] for s in names]
        k, c = p["g"] * kg + p["k"], p["g"] * cg + p["c"]
        source = tuple(oo * s + rr * d - b for oo, rr, s, d, b in zip(o, r, strides, dilations, begin, strict=True))
        reads = [("w", (k, p["c"], *r))] + ([("b", (k,))] if bias else [])
        if inside(source, spatial):
            reads.append(("x", (p["n"], c, *source)))
        return reads, [("y", (p["n"], k, *o))]

    check(data, stmt, body)


@given(st.data())
def test_conv_transpose(data) -> None:
    rank = data.draw(st.sampled_from([1, 2]))
    n, group, cg, kg = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)), data.draw(small), data.draw(small)
    spatial = [data.draw(st.integers(1, 4)) for _ in range(rank)]
    kernel = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    strides = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    dilations = [data.draw(st.integers(1, 2)) for _ in range(rank)]
    pads = [data.draw(st.integers(0, 2)) for _ in range(2 * rank)]
    output_padding = [data.draw(st.integers(0, s - 1)) for s in strides]
    out = [s * (i - 1) + op + (k - 1) * d + 1 - b - e for s, i, op, k, d, b, e in
           zip(strides, spatial, output_padding, kernel, dilations, pads[:rank], pads[rank:], strict=True)]
    assume(min(out) > 0)
    attrs = {"group": group, "strides": strides, "dilations": dilations, "pads": pads,
             "output_padding": output_padding}
    stmt = one_node("ConvTranspose", [("x", [n, cg * group, *spatial]), ("w", [cg * group, kg, *kernel])],
                    attrs).statements[0]
    if not any(pads) and not any(output_padding):
        assert stmt.macs == n * cg * group * math.prod(spatial) * kg * math.prod(kernel)  # every product lands
    names = ("x",) if rank == 1 else ("y", "x")

    def lands(p):
        source = []
        for o, r, s, d, b, i in zip([p[s] for s in names], [p["k" + s] for s in names], strides, dilations,
                                    pads[:rank], spatial, strict=True):
            shifted = o + b - r * d
            if shifted % s or not 0 <= shifted // s < i:
                return None
            source.append(shifted // s)
        return source

    def body(p):
        c, source = p["g"] * cg + p["c"], lands(p)
        reads = [("w", (c, p["k"], *[p["k" + s] for s in names]))]
        if source is not None:
            reads.append(("x", (p["n"], c, *source)))
        return reads, [("y", (p["n"], p["g"] * kg + p["k"], *[p[s] for s in names]))]

    check(data, stmt, body)
    # the MAC count is the number of (output, kernel) pairs that land on an input element
    assert stmt.macs == brute_force(stmt, {}, lambda p: body(p) if lands(p) is not None else None)[0]


# -- matrix products ------------------------------------------------------------------------------------------------

@given(st.data())
def test_gemm(data) -> None:
    m, n, k = data.draw(small), data.draw(small), data.draw(st.integers(1, 6))
    trans_a, trans_b = data.draw(st.booleans()), data.draw(st.booleans())
    c_shape = data.draw(st.sampled_from([None, (), (n,), (1, n), (m, 1), (m, n)]))
    inputs = [("a", [k, m] if trans_a else [m, k]), ("b", [n, k] if trans_b else [k, n])]
    if c_shape is not None:
        inputs.append(("c", list(c_shape)))
    stmt = one_node("Gemm", inputs, {"transA": int(trans_a), "transB": int(trans_b), "alpha": 0.5}).statements[0]
    assert stmt.macs == m * n * k

    def body(p):
        reads = [("a", (p["k"], p["m"]) if trans_a else (p["m"], p["k"])),
                 ("b", (p["n"], p["k"]) if trans_b else (p["k"], p["n"]))]
        if c_shape is not None:
            reads.append(("c", broadcast((p["m"], p["n"]), c_shape)))
        return reads, [("y", (p["m"], p["n"]))]

    check(data, stmt, body)


@given(st.data())
def test_matmul(data) -> None:
    m, n, k = data.draw(small), data.draw(small), data.draw(small)
    batch = data.draw(st.lists(st.integers(1, 3), max_size=2))
    a_batch = [data.draw(st.sampled_from([b, 1])) for b in batch][data.draw(st.integers(0, len(batch))):]
    b_batch = [data.draw(st.sampled_from([b, 1])) for b in batch][data.draw(st.integers(0, len(batch))):]
    a_vector, b_vector = data.draw(st.booleans()), data.draw(st.booleans())
    a_shape = [k] if a_vector else [*a_batch, m, k]
    b_shape = [k] if b_vector else [*b_batch, k, n]
    stmt = one_node("MatMul", [("a", a_shape), ("b", b_shape)]).statements[0]
    out_batch = list(np.broadcast_shapes(tuple(a_shape[:-2]), tuple(b_shape[:-2])))
    assert stmt.macs == math.prod(out_batch) * (1 if a_vector else m) * (1 if b_vector else n) * k

    def body(p):
        batch_index = tuple(p[f"b{axis}"] for axis in range(len(out_batch)))
        row = () if a_vector else (p["m"],)
        col = () if b_vector else (p["n"],)
        a_index = broadcast(batch_index, a_shape[:-2]) + row + (p["k"],) if not a_vector else (p["k"],)
        b_index = (*broadcast(batch_index, b_shape[:-2]), p["k"], *col) if not b_vector else (p["k"],)
        return [("a", a_index), ("b", b_index)], [("y", batch_index + row + col)]

    check(data, stmt, body)


# -- elementwise ----------------------------------------------------------------------------------------------------

@st.composite
def broadcast_shapes(draw, count: int) -> tuple[list[int], list[list[int]]]:
    out = draw(st.lists(st.integers(1, 4), min_size=0, max_size=4))
    shapes = []
    for _ in range(count):
        suffix = out[draw(st.integers(0, len(out))):]
        shapes.append([extent if draw(st.booleans()) else 1 for extent in suffix])
    shapes[0] = list(out) if count == 1 else shapes[0]
    return out, shapes


@given(st.data(), st.sampled_from(UNARY + BINARY + VARIADIC))
def test_elementwise(data, op_type: str) -> None:
    count = 1 if op_type in UNARY else 2 if op_type in BINARY else data.draw(st.integers(1, 3))
    out, shapes = data.draw(broadcast_shapes(count))
    assume(list(np.broadcast_shapes(*map(tuple, shapes))) == out)
    names = [f"x{i}" for i in range(count)]
    attrs = {"to": TensorProto.FLOAT16} if op_type == "Cast" else {}
    consts = {}
    if op_type == "Clip":
        consts = {"lo": np.array(0.0, np.float32), "hi": np.array(6.0, np.float32)}
    stmt = one_node(op_type, list(zip(names, shapes, strict=True)), attrs, consts,
                    opset=OPSETS.get(op_type, 17)).statements[0]
    assert stmt.macs == 0 and stmt.elem_ops >= math.prod(out)

    def body(p):
        index = tuple(p[f"i{axis}"] for axis in range(len(out)))
        reads = [(name, broadcast(index, shape)) for name, shape in zip(names, shapes, strict=True)]
        reads += [(name, ()) for name in consts]
        return reads, [("y", index)]

    check(data, stmt, body)


# -- normalisation --------------------------------------------------------------------------------------------------

def _row_body(shape, axes, extra=()):
    def body(p):
        index = tuple(p[f"i{axis}"] for axis in range(len(shape)))
        rows = [range(shape[a]) if a in axes else [index[a]] for a in range(len(shape))]
        reads = [("x", tuple(point)) for point in np.ndindex(*[len(r) for r in rows])]
        reads = [("x", tuple(rows[a][i] for a, i in enumerate(point[1]))) for point in reads]
        return reads + [(name, fn(index)) for name, fn in extra], [("y", index)]
    return body


@given(st.data())
def test_softmax_and_layer_norm(data) -> None:
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    rank = len(shape)
    axis = data.draw(st.integers(-rank, rank - 1))
    op_type, opset = data.draw(st.sampled_from([("Softmax", 11), ("Softmax", 13), ("LayerNormalization", 17)]))
    if op_type == "Softmax":
        stmt = one_node(op_type, [("x", shape)], {"axis": axis}, opset=opset).statements[0]
        axes = set(range(axis % rank, rank)) if opset < 13 else {axis % rank}
        check(data, stmt, _row_body(shape, axes))
        return
    norm_shape = shape[axis % rank:]
    stmt = one_node(op_type, [("x", shape), ("s", norm_shape), ("b", norm_shape)], {"axis": axis}).statements[0]
    extra = [("s", lambda i: i[axis % rank:]), ("b", lambda i: i[axis % rank:])]
    check(data, stmt, _row_body(shape, set(range(axis % rank, rank)), extra))


@given(st.data())
def test_batch_norm_and_lrn(data) -> None:
    shape = [data.draw(small), data.draw(st.integers(1, 6)), *data.draw(st.lists(small, max_size=2))]
    if data.draw(st.booleans()):
        params = [(name, [shape[1]]) for name in ("s", "b", "m", "v")]
        stmt = one_node("BatchNormalization", [("x", shape), *params]).statements[0]
        extra = [(name, lambda i: (i[1],)) for name, _ in params]
        check(data, stmt, _row_body(shape, set(), extra))
        return
    size = data.draw(st.integers(1, 5))
    stmt = one_node("LRN", [("x", shape)], {"size": size}).statements[0]

    def body(p):
        index = tuple(p[f"i{axis}"] for axis in range(len(shape)))
        low, high = max(0, index[1] - (size - 1) // 2), min(shape[1] - 1, index[1] + math.ceil((size - 1) / 2))
        return [("x", (index[0], c, *index[2:])) for c in range(low, high + 1)], [("y", index)]

    check(data, stmt, body)


# -- pooling and reductions -----------------------------------------------------------------------------------------

@given(st.data())
def test_pool(data) -> None:
    rank = data.draw(st.sampled_from([1, 2]))
    n, c = data.draw(st.integers(1, 2)), data.draw(small)
    spatial = [data.draw(st.integers(1, 7)) for _ in range(rank)]
    op_type = data.draw(st.sampled_from(["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"]))
    names = ("x",) if rank == 1 else ("y", "x")
    if op_type.startswith("Global"):
        stmt = one_node(op_type, [("x", [n, c, *spatial])]).statements[0]
        check(data, stmt, lambda p: ([("x", (p["n"], p["c"], *[p[s] for s in names]))],
                                     [("y", (p["n"], p["c"], *[0] * rank))]))
        return
    kernel = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    strides = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    dilations = [data.draw(st.integers(1, 2)) if op_type == "MaxPool" else 1 for _ in range(rank)]
    pads = [data.draw(st.integers(0, k - 1)) for k in kernel * 2]
    ceil_mode = data.draw(st.integers(0, 1))
    span = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    assume(all(i + b + e >= w for i, b, e, w in zip(spatial, pads[:rank], pads[rank:], span, strict=True)))
    attrs = {"kernel_shape": kernel, "strides": strides, "pads": pads, "ceil_mode": ceil_mode}
    if op_type == "MaxPool":
        attrs["dilations"] = dilations
    else:
        attrs["count_include_pad"] = data.draw(st.integers(0, 1))
    if ceil_mode:  # a last window starting in the trailing pad is ambiguous (ONNX and onnxruntime disagree)
        room = [i + b + e - w for i, b, e, w in zip(spatial, pads[:rank], pads[rank:], span, strict=True)]
        out = [-(-r // s) + 1 for r, s in zip(room, strides, strict=True)]
        assume(all((o - 1) * s < i + b for o, s, i, b in zip(out, strides, spatial, pads[:rank], strict=True)))
    stmt = one_node(op_type, [("x", [n, c, *spatial])], attrs, opset=19).statements[0]

    def body(p):
        o, r = [p[s] for s in names], [p["k" + s] for s in names]
        source = tuple(oo * s + rr * d - b for oo, rr, s, d, b in zip(o, r, strides, dilations, pads, strict=False))
        reads = [("x", (p["n"], p["c"], *source))] if inside(source, spatial) else []
        return reads, [("y", (p["n"], p["c"], *o))]

    check(data, stmt, body)


@given(st.data())
def test_reduce(data) -> None:
    shape = data.draw(st.lists(small, min_size=1, max_size=4))
    rank = len(shape)
    axes = sorted(set(data.draw(st.lists(st.integers(-rank, rank - 1), max_size=rank))))
    keepdims = data.draw(st.integers(0, 1))
    op_type, opset = data.draw(st.sampled_from([("ReduceSum", 13), ("ReduceMean", 17), ("ReduceMean", 18)]))
    axes_as_input = opset >= (13 if op_type == "ReduceSum" else 18)
    attrs = {"keepdims": keepdims}
    consts = {}
    if axes_as_input and axes:
        consts = {"axes": np.array(axes, np.int64)}
    elif axes:
        attrs["axes"] = axes
    stmt = one_node(op_type, [("x", shape)], attrs, consts, opset=opset).statements[0]
    reduced = {a % rank for a in axes} or set(range(rank))

    def body(p):
        index = tuple(p[f"i{axis}"] for axis in range(rank))
        out = [0 if a in reduced else i for a, i in enumerate(index) if keepdims or a not in reduced]
        return [("x", index)], [("y", tuple(out))]

    check(data, stmt, body)


# -- data movement --------------------------------------------------------------------------------------------------

@given(st.data())
def test_concat_and_split(data) -> None:
    shape = data.draw(st.lists(small, min_size=1, max_size=3))
    axis = data.draw(st.integers(0, len(shape) - 1))
    sizes = data.draw(st.lists(small, min_size=1, max_size=3))
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    parts = [[*shape[:axis], size, *shape[axis + 1:]] for size in sizes]
    whole = [*shape[:axis], sum(sizes), *shape[axis + 1:]]
    if data.draw(st.booleans()):
        lowered = one_node("Concat", [(f"x{i}", s) for i, s in enumerate(parts)], {"axis": axis})
        for part, stmt in enumerate(lowered.statements):
            check(data, stmt, lambda p, part=part: (
                [(f"x{part}", tuple(p[f"i{a}"] for a in range(len(shape))))],
                [("y", tuple(p[f"i{a}"] + (offsets[part] if a == axis else 0) for a in range(len(shape))))]))
        return
    outputs = [f"y{i}" for i in range(len(sizes))]
    lowered = one_node("Split", [("x", whole)], {"axis": axis}, {"split": np.array(sizes, np.int64)}, opset=13,
                       outputs=outputs)
    for part, stmt in enumerate(lowered.statements):
        check(data, stmt, lambda p, part=part: (
            [("x", tuple(p[f"i{a}"] + (offsets[part] if a == axis else 0) for a in range(len(shape))))],
            [(f"y{part}", tuple(p[f"i{a}"] for a in range(len(shape))))]))


@given(st.data())
def test_slice(data) -> None:
    shape = data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=3))
    rank = len(shape)
    axes = data.draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
    bound = st.integers(-8, 8)
    starts, ends = [data.draw(bound) for _ in axes], [data.draw(bound) for _ in axes]
    steps = [data.draw(st.sampled_from([1, 1, 2, 3, -1, -2])) for _ in axes]
    picked = [range(n) for n in shape]
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
        picked[axis] = range(shape[axis])[start:end:step]
    assume(all(len(p) for p in picked))
    consts = {name: np.array(v, np.int64) for name, v in
              (("starts", starts), ("ends", ends), ("axes", axes), ("steps", steps))}
    stmt = one_node("Slice", [("x", shape)], consts=consts).statements[0]
    check(data, stmt, lambda p: ([("x", tuple(picked[a][p[f"i{a}"]] for a in range(rank)))],
                                 [("y", tuple(p[f"i{a}"] for a in range(rank)))]))


@given(st.data())
def test_pad(data) -> None:
    shape = data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
    rank = len(shape)
    mode = data.draw(st.sampled_from(["constant", "edge", "reflect", "wrap"]))
    lowest = -1 if mode == "constant" else 0
    pads = [data.draw(st.integers(lowest, 3)) for _ in range(2 * rank)]
    if mode in ("reflect", "wrap"):
        limit = [n - 1 if mode == "reflect" else n for n in shape] * 2
        pads = [min(p, lim) for p, lim in zip(pads, limit, strict=True)]
    assume(all(n + b + e > 0 for n, b, e in zip(shape, pads[:rank], pads[rank:], strict=True)))
    stmt = one_node("Pad", [("x", shape)], {"mode": mode}, {"pads": np.array(pads, np.int64)}, opset=19).statements[0]
    # the oracle is numpy's own pad applied to coordinate arrays, one axis at a time
    tables = []
    for n, b, e in zip(shape, pads[:rank], pads[rank:], strict=True):
        ids = np.arange(n)[max(0, -b): n - max(0, -e)]
        mode_np = {"edge": "edge", "reflect": "reflect", "wrap": "wrap"}.get(mode, "constant")
        kwargs = {"constant_values": -1} if mode_np == "constant" else {}
        tables.append(np.pad(ids, (max(0, b), max(0, e)), mode=mode_np, **kwargs))

    def body(p):
        index = tuple(p[f"i{a}"] for a in range(rank))
        source = tuple(int(tables[a][i]) for a, i in enumerate(index))
        return ([("x", source)] if min(source, default=0) >= 0 else []), [("y", index)]

    check(data, stmt, body)


@given(st.data())
def test_transpose(data) -> None:
    shape = data.draw(st.lists(small, min_size=1, max_size=4))
    perm = data.draw(st.permutations(range(len(shape))))
    stmt = one_node("Transpose", [("x", shape)], {"perm": list(perm)}).statements[0]

    def body(p):
        out = tuple(p[f"i{a}"] for a in range(len(shape)))
        source = [0] * len(shape)
        for a, axis in enumerate(perm):
            source[axis] = out[a]
        return [("x", tuple(source))], [("y", out)]

    check(data, stmt, body)


@given(st.data())
def test_resize_nearest(data) -> None:
    shape = [1, data.draw(st.integers(1, 2)), data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))]
    scales = [1.0, 1.0, data.draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0])),
              data.draw(st.sampled_from([0.5, 1.0, 2.0, 2.5]))]
    assume(all(math.floor(n * s) >= 1 for n, s in zip(shape, scales, strict=True)))
    transform = data.draw(st.sampled_from(["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"]))
    rounding = data.draw(st.sampled_from(["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]))
    attrs = {"mode": "nearest", "coordinate_transformation_mode": transform, "nearest_mode": rounding}
    consts = {"roi": np.array([], np.float32), "scales": np.array(scales, np.float32)}
    stmt = one_node("Resize", [("x", shape)], attrs, consts).statements[0]
    # the oracle is onnxruntime resizing a tensor of coordinates
    coordinates = np.indices(shape).astype(np.float32)
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Resize", ["x", "roi", "scales"], ["y"], **attrs)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, n) for n, v in consts.items()]), opset_imports=[helper.make_opsetid("", 17)],
        ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    source = np.stack([session.run(None, {"x": coordinate})[0] for coordinate in coordinates]).astype(int)

    def body(p):
        out = tuple(p[f"i{a}"] for a in range(4))
        return [("x", tuple(source[(a, *out)] for a in range(4)))], [("y", out)]

    check(data, stmt, body)


# -- layout-only ops become aliases ---------------------------------------------------------------------------------

@given(st.data())
def test_views_read_their_base(data) -> None:
    shape = data.draw(st.lists(small, min_size=1, max_size=4))
    op_type = data.draw(st.sampled_from(["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"]))
    consts, attrs = {}, {}
    if op_type == "Reshape":
        size = math.prod(shape)
        first = data.draw(st.sampled_from([d for d in range(1, size + 1) if size % d == 0]))
        new = [first, size // first]
        consts = {"shape": np.array(new, np.int64)}
    elif op_type == "Flatten":
        attrs = {"axis": data.draw(st.integers(0, len(shape)))}
    elif op_type == "Squeeze":
        shape = [*shape, 1]
        consts = {"axes": np.array([len(shape) - 1], np.int64)}
    elif op_type == "Unsqueeze":
        consts = {"axes": np.array([data.draw(st.integers(0, len(shape)))], np.int64)}
    view = helper.make_node(op_type, ["x", *consts], ["v"], name="view", **attrs)
    relu = helper.make_node("Relu", ["v"], ["y"], name="relu")
    lowered = lower(load_graph(typed_model([view, relu], [("x", shape)], consts, 17)))
    assert [s.op_type for s in lowered.statements] == ["Relu"]  # the view is not a copy
    assert lowered.base("v") == "x"
    stmt = lowered.statements[0]
    view_shape = lowered.graph.tensors["v"].shape

    def body(p):
        index = tuple(p[f"i{a}"] for a in range(len(view_shape)))
        flat = np.ravel_multi_index(index, view_shape) if view_shape else 0
        return [("x", tuple(int(i) for i in np.unravel_index(flat, shape)))], [("y", index)]

    check(data, stmt, body)


@pytest.mark.parametrize("op_type", ["Upsample"])
def test_upsample_opset9(op_type: str) -> None:
    lowered = one_node(op_type, [("x", [1, 1, 2, 3])], {"mode": "nearest"},
                       {"scales": np.array([1, 1, 2, 2], np.float32)}, opset=9)
    stmt = lowered.statements[0]
    assert_matches(stmt, {}, lambda p: ([("x", (0, 0, p["i2"] // 2, p["i3"] // 2))], [("y", (0, 0, p["i2"], p["i3"]))]))


def test_every_required_op_has_a_lowering() -> None:
    from planner.ops import supported_ops

    required = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Neg",
                "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Erf", "Gelu", "HardSigmoid", "HardSwish", "Min",
                "Max", "Sum", "Mean", "BatchNormalization", "LayerNormalization", "LRN", "Softmax", "MaxPool",
                "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceSum", "Concat", "Split",
                "Slice", "Pad", "Resize", "Upsample", "Transpose", "Cast", "Reshape", "Flatten", "Squeeze",
                "Unsqueeze", "Identity", "Dropout",
                # for real exports (issue 9)
                "Gather", "GatherElements", "GatherND", "Expand", "Where", "Equal", "Less", "Greater", "LessOrEqual",
                "GreaterOrEqual", "Not", "And", "Or", "Xor", "Range", "Trilu", "Tile", "Softplus", "Mish", "ReduceMax",
                "ReduceMin", "ReduceProd", "ReduceL2", "ArgMax", "InstanceNormalization", "GroupNormalization",
                "DepthToSpace", "SpaceToDepth"}
    assert required <= set(supported_ops())
