"""Hypothesis strategies: valid ONNX models (random DAGs of the supported ops) and machine descriptions.

`onnx_models()` grows a graph layer by layer. Each layer is one op family (conv, pool, Gemm, a residual add, a
concat, a reshape...) applied to one or two tensors that already exist, with attributes drawn to fit their shapes, so
every model passes the ONNX checker and shape inference, has static float32 shapes, and runs on onnxruntime in
milliseconds (at most MAX_ELEMENTS elements per tensor). Tensors nothing reads become the graph outputs, and
sometimes a tensor that is read as well. Weights are initializers filled from a seed that hypothesis draws. The first
layer kind is Relu and inputs are picked newest first, so a shrunk model is a short chain of simple ops.

`conv_chains()` and `fusion_cases()` aim at fusion: conv chains at batch 1 on machines that force row tiles.

    >>> from hypothesis import find
    >>> model = find(onnx_models(), lambda m: len(m.graph.node) >= 2)
    >>> [node.op_type for node in model.graph.node]
    ['Relu', 'Relu']
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto, helper, shape_inference

from planner.staging.alloc import choose_layout
from planner.testing.layers import IR_VERSION, LAYERS, MAX_ELEMENTS, MAX_LAYERS, OPSET, Draw, _batch_norm, _Graph
from planner.testing.machines import machines
from simulator.machine import MachineConfig


@st.composite
def input_shapes(draw: Draw, ranks: Sequence[int] = (4, 2, 3, 1)) -> tuple[int, ...]:
    """N x C x H x W most often (shrinks there), else N x C x L, a matrix or a vector."""
    rank = draw(st.sampled_from(ranks))
    if rank == 1:
        return (draw(st.integers(1, 64)),)
    shape = [draw(st.integers(1, 2)), draw(st.integers(1, 8))]
    shape += [draw(st.integers(1, 12)) for _ in range(rank - 2)]
    while math.prod(shape) > MAX_ELEMENTS // 2:  # room for a layer or two to grow it (Pad, Concat)
        shape[-1] = -(-shape[-1] // 2)
    return tuple(shape)


@st.composite
def onnx_models(draw: Draw, max_layers: int = MAX_LAYERS, layers: Sequence[str] | None = None, min_layers: int = 1,
                input_ranks: Sequence[int] = (4, 2, 3, 1)) -> onnx.ModelProto:
    """A valid opset-17 float32 model: one or two graph inputs of a rank in `input_ranks`, then `min_layers` to
    `max_layers` layers (kinds from `layers`, default all of LAYERS), each reading the newest fitting tensor unless
    hypothesis picks an older one."""
    kinds = [LAYERS[name] for name in (layers or LAYERS) for _ in range(LAYERS[name].weight)]
    g = _Graph(np.random.default_rng(draw(st.integers(0, 2**32 - 1))))
    shape = draw(input_shapes(input_ranks))
    g.inputs = ["x"] + (["x_other"] if draw(st.booleans()) else [])
    g.shapes.update({name: shape for name in g.inputs})
    for _ in range(draw(st.integers(min_layers, max_layers))):
        kind = draw(st.sampled_from(kinds))
        candidates = [t for t in reversed(g.shapes) if len(g.shapes[t]) in kind.ranks]
        if not candidates:
            continue
        x = candidates[draw(st.integers(0, len(candidates) - 1))]
        nodes, initializers = len(g.nodes), len(g.initializers)
        if kind.build(draw, g, x) is None:
            del g.nodes[nodes:], g.initializers[initializers:]
    if not g.nodes:
        assert g.add("Relu", ["x"]) is not None
    read = {name for node in g.nodes for name in node.input}
    made = [name for node in g.nodes for name in node.output]
    also = [name for name in made if name in read]  # an intermediate a model also returns, as exporters allow
    extra = draw(st.lists(st.sampled_from(also), unique=True, max_size=2)) if also else []
    outputs = [name for name in made if name not in read or name in extra]
    return _model(g, _dead_ends(draw, outputs))


def _dead_ends(draw: Draw, outputs: list[str]) -> list[str]:
    """Maybe leave some unread tensors out of the outputs (at least one stays): their nodes are dead ends the
    planner must drop, and the compulsory bound must not count."""
    if len(outputs) < 2 or not draw(st.booleans()):
        return outputs
    dead = set(draw(st.lists(st.sampled_from(outputs), unique=True, min_size=1, max_size=len(outputs) - 1)))
    return [name for name in outputs if name not in dead]


def _model(g: _Graph, outputs: list[str]) -> onnx.ModelProto:
    read = {name for node in g.nodes for name in node.input}
    inputs = [name for name in g.inputs if name in read]
    graph = helper.make_graph(
        g.nodes, "hypothesis",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, g.shapes[name]) for name in inputs],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, g.shapes[name]) for name in outputs],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    return model




@st.composite
def conv_chains(draw: Draw, min_convs: int = 2, max_convs: int = 3, max_channels: int = 4) -> onnx.ModelProto:
    """A chain of 'same' convolutions at batch 1 with enough rows to tile, each maybe followed by Relu,
    BatchNormalization, a residual block (two 3x3 convs and a skip Add: a run that only fuses whole, so it
    recomputes or caches its halos), a residual Add of an earlier tensor of its shape, a 2x2 MaxPool (over an odd
    extent too, whose last row is dead), or a Slice that crops rows (dead back to the input): the graphs fusion
    groups are made of. Each conv has 1 to `max_channels` output channels.

    >>> from hypothesis import find
    >>> [n.op_type for n in find(conv_chains(), lambda m: True).graph.node]
    ['Conv', 'Relu', 'Conv', 'Relu']
    """
    g = _Graph(np.random.default_rng(draw(st.integers(0, 2**32 - 1))))
    channels, rows = draw(st.integers(1, max_channels)), draw(st.integers(16, 32))
    cols = min(draw(st.integers(4, 16)), MAX_ELEMENTS // max_channels // rows)
    g.inputs = ["x"]
    g.shapes["x"] = (1, channels, rows, cols)
    x = "x"
    for _ in range(draw(st.integers(min_convs, max_convs))):
        kernel, dilation = draw(st.sampled_from([3, 1, 5])), draw(st.sampled_from([1, 1, 2]))
        reach = dilation * (kernel - 1) // 2
        if 2 * reach >= min(g.shapes[x][2:]):
            kernel, dilation, reach = 1, 1, 0
        in_channels, out_channels = g.shapes[x][1], draw(st.integers(1, max_channels))
        weight = g.weight("w", [out_channels, in_channels, kernel, kernel], in_channels * kernel * kernel)
        inputs = [x, weight] + ([g.weight("b", [out_channels])] if draw(st.booleans()) else [])
        made = g.add("Conv", inputs, kernel_shape=[kernel, kernel], dilations=[dilation, dilation],
                     pads=[reach] * 4)
        assert made is not None
        x = made[0]
        follow = draw(st.sampled_from(["relu", "block", "block", "none", "batch_norm", "residual", "pool", "crop"]))
        if follow == "relu":
            x = _added(g.add("Relu", [x]), x)
        elif follow == "batch_norm":
            x = _added(_batch_norm(draw, g, x), x)
        elif follow == "residual":
            partners = [t for t in g.shapes if t != x and g.shapes[t] == g.shapes[x]]
            if partners:
                x = _added(g.add("Add", [x, draw(st.sampled_from(partners))]), x)
        elif follow == "block":  # a residual block: two 3x3 convs whose skip keeps their run one group
            skip = x
            for _ in range(2):
                c = g.shapes[x][1]
                made = g.add("Conv", [x, g.weight("w", [c, c, 3, 3], 9 * c)], kernel_shape=[3, 3], pads=[1] * 4)
                assert made is not None
                x = _added(g.add("Relu", made), made[0])
            x = _added(g.add("Add", [x, skip]), x)
        elif follow == "pool" and min(g.shapes[x][2:]) >= 4:
            # an odd extent leaves a dead last row: no output depends on it, so no plan need load or compute it
            x = _added(g.add("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2]), x)
        elif follow == "crop" and g.shapes[x][2] >= 8:  # rows a Slice drops are dead back to the input
            rows = g.shapes[x][2]
            first, stop = draw(st.integers(0, 2)), rows - draw(st.integers(0, 2))
            x = _added(g.add("Slice", [x, g.ints("starts", [first]), g.ints("ends", [stop]), g.ints("axes", [2])]), x)
    return _model(g, [x])


def _added(made: object, otherwise: str) -> str:
    return made[0] if isinstance(made, list) else otherwise


REGIMES = ("rows", "rows", "rows", "tight")  # rows first: hypothesis shrinks towards it


@st.composite
def fusion_cases(draw: Draw, regimes: Sequence[str] = REGIMES, max_channels: int = 4,
                 ) -> tuple[onnx.ModelProto, MachineConfig]:
    """A conv chain and a machine whose scratchpad, per partition, is one of three regimes: against the chain's
    largest activation, `rows` holds a third of it to all of it (at least 512 bytes), so fusion groups tile along
    rows; `tight` holds a sixteenth to a third of it (at least 256 bytes), down towards the minimal tile, where
    groups need many tiles (or the plan is refused, with proof); `split` (not drawn unless asked for: see
    `split_cases`) holds 256 bytes to 1 KiB, less than one output element of a conv over 16 channels needs whole, so
    convs split their input channels. The chain's convs have 1 to `max_channels` channels. No regime aims at cached
    groups: a scratchpad that holds a group's intermediates whole lets residency keep them between ops for the same
    bytes, and the fused strategy takes residency on a tie."""
    model = draw(conv_chains(max_channels=max_channels))
    partitions = draw(st.sampled_from([1, 2, 4]))
    shapes = [tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
              for v in [*model.graph.input, *shape_inference.infer_shapes(model).graph.value_info]]
    largest = max(choose_layout(shape, 4, partitions)[1] for shape in shapes)
    low, high = {"rows": (max(512, largest // 3), max(512, largest)),
                 "tight": (max(256, largest // 16), max(256, largest // 3)),
                 "split": (256, 1024)}[draw(st.sampled_from(regimes))]
    per_partition = draw(st.integers(low, high))
    machine = draw(machines(partition_bytes=st.just(per_partition), partitions=st.just(partitions),
                            alignments=st.sampled_from([1, 2, 4, 8, 16])))
    return model, machine


def split_cases() -> st.SearchStrategy[tuple[onnx.ModelProto, MachineConfig]]:
    """Conv chains of up to 16 channels on 256 B to 1 KiB per partition: convs split their input channels (about
    half of the examples), and groups still tile."""
    return fusion_cases(regimes=("split",), max_channels=16)
