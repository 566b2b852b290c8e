"""Staging tiles for cycles as well as bytes, one-slot staging where double buffering does not fit, and the
tolerance --check gives the tensors a split reduction reaches."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from planner import api
from planner.check import reference_values
from planner.check_bounds import LAMBDA, split_error_bounds
from planner.graph import load_graph
from planner.ops import lower
from planner.staging.alloc import buffer_bytes
from planner.staging.op_tilings import tile_cost
from planner.staging.tile import choose_tile, op_cycles
from planner.tiling import largest_tile
from simulator.isa import Compute
from simulator.machine_file import load_machine

rng = np.random.default_rng(0)


def _model(nodes: list[onnx.NodeProto], x: list[int], y: list[int], weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "tile", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x)],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, y)],
                              initializer=[numpy_helper.from_array(v, n) for n, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_tile_flat_in_bytes_along_rows_is_widened_along_them() -> None:
    # A 3x3 conv whose input and output are resident (read and written in place): only the weights take room, so
    # halving rows saves nothing; the largest tile by bytes still ends at one output pixel (M = 1 on the array).
    model = _model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], [1, 64, 7, 7], [1, 64, 7, 7],
                   {"w": rng.standard_normal((64, 64, 3, 3)).astype(np.float32)})
    lowered = lower(load_graph(model))
    stmt = lowered.statements[0]
    machine = load_machine("edge-npu")

    def cost(block: dict[str, tuple[int, int]]) -> int:
        return tile_cost(stmt, block, lambda t, shape: buffer_bytes(shape, 4, machine.scratchpad),
                         frozenset({"x", "y"}))

    budget = cost({}) // 4  # a quarter of the weights (in two slots)
    narrow = largest_tile(stmt, cost, budget)
    chosen = choose_tile(stmt, cost, budget, machine, "fp32", 1)
    assert narrow is not None and chosen is not None
    assert (narrow["y"], narrow["x"]) == (1, 1)
    assert (chosen["y"], chosen["x"]) == (7, 7)
    assert cost({d: (0, s) for d, s in chosen.items()}) <= budget
    assert op_cycles(stmt, chosen, machine, "fp32", 1) < op_cycles(stmt, narrow, machine, "fp32", 1) / 10


def test_batchnorm_over_many_channels_plans_at_8kib_with_one_slot_per_operand() -> None:
    # 336 fp32 channels: its four parameters and the tensor take more than 256 bytes per partition double-buffered.
    channels = 336
    params = {name: rng.uniform(0.5, 2.0, channels).astype(np.float32) for name in ("s", "b", "m", "v")}
    model = _model([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])],
                   [1, channels, 1, 1], [1, channels, 1, 1], params)
    machine = api.machine("edge-npu", scratchpad="8KiB")
    for strategy in ("baseline", "fused"):
        program = api.plan(model, machine, strategy=strategy)
        assert any(isinstance(i, Compute) for i in program.instructions)
        api.check(model, program, machine)


def test_a_split_reduction_reaches_later_tensors_with_a_tolerance_of_its_length() -> None:
    model = _model([helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
                    helper.make_node("Relu", ["c"], ["y"])], [1, 128, 2, 2], [1, 2, 2, 2],
                   {"w": rng.standard_normal((2, 128, 3, 3)).astype(np.float32),
                    "b": rng.standard_normal(2).astype(np.float32)})
    loaded = api.load(model)
    tight = api.plan(model, api.machine("edge-npu", scratchpad="8KiB"), strategy="baseline")
    roomy = api.plan(model, "edge-npu", strategy="baseline")
    _, reference = reference_values(loaded.graph, model)
    assert any(isinstance(i, Compute) and i.slices for i in tight.instructions)
    assert split_error_bounds(roomy, loaded.graph, reference) == {}
    bounds = split_error_bounds(tight, loaded.graph, reference)
    unit = float(np.finfo(np.float32).eps) / 2
    for name in ("c", "y"):
        expected = LAMBDA * np.sqrt(128 * 9 + 1) * unit * np.abs(reference[name]).max()
        assert np.isclose(float(bounds[name]), expected, rtol=1e-6)
    api.check(model, tight, api.machine("edge-npu", scratchpad="8KiB"))
