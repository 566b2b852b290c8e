"""Dead branches and unread optional outputs: planning, bounds and the check all see the same live graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from planner.bounds import bounds
from planner.check import reference_values
from planner.fused import plan_fused
from planner.graph import load_graph
from planner.inspect import totals
from planner.liveness import drop_dead_nodes
from planner.ops import lower
from simulator.machine_file import load_machine
from simulator.timing import simulate

FLOAT = TensorProto.FLOAT
FP32_BYTES = 4


def _weights(name: str, shape: tuple[int, ...]) -> TensorProto:
    return numpy_helper.from_array(np.random.default_rng(len(name)).standard_normal(shape).astype(np.float32), name)


def dead_branch() -> onnx.ModelProto:
    """x -> conv -> relu -> y, and beside it a branch with large weights whose output reaches no graph output."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu"),
             helper.make_node("Conv", ["x", "w_dead"], ["d"], name="conv_dead", pads=[1, 1, 1, 1]),
             helper.make_node("Flatten", ["d"], ["flat_dead"], name="flat_dead"),
             helper.make_node("MatMul", ["flat_dead", "fc_dead"], ["dead"], name="fc_dead")]
    graph = helper.make_graph(nodes, "dead_branch", [helper.make_tensor_value_info("x", FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", FLOAT, [1, 4, 8, 8])],
                              [_weights("w", (4, 3, 3, 3)), _weights("w_dead", (8, 3, 3, 3)),
                               _weights("fc_dead", (8 * 8 * 8, 64))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    return model


LIVE_BYTES = (3 * 8 * 8 + 4 * 3 * 3 * 3 + 4 * 8 * 8) * FP32_BYTES  # x, w and y: each once


def test_dead_branch_is_dropped_before_planning() -> None:
    graph = load_graph(dead_branch())
    assert [node.name for node in graph.nodes] == ["conv", "relu"]
    assert not {"w_dead", "fc_dead", "d", "dead"} & set(graph.tensors)


@pytest.mark.parametrize("scratchpad", ["64KiB", "512KiB"])
def test_fused_plan_of_a_model_with_a_dead_branch_moves_at_least_compulsory(scratchpad: str) -> None:
    lowered = lower(load_graph(dead_branch()))
    machine = load_machine("edge-npu", scratchpad=scratchpad)
    limits = bounds(lowered, machine)
    assert limits.compulsory_bytes == LIVE_BYTES  # the dead branch's weights are no part of the bound
    assert totals(lowered).param_bytes == 4 * 3 * 3 * 3 * FP32_BYTES
    stats = simulate(plan_fused(lowered, machine), machine).stats
    assert stats.dram_bytes_read + stats.dram_bytes_written >= limits.compulsory_bytes


def test_check_reference_sees_the_live_graph() -> None:
    model = dead_branch()
    graph = load_graph(model)
    dram, values = reference_values(graph, model)
    assert "w_dead" not in dram and "dead" not in values
    assert values["y"].shape == (1, 4, 8, 8)


def test_unread_optional_outputs_are_cut_and_read_ones_kept() -> None:
    model = onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 12]>
        g (float[1,2,8,8] x) => (float[1,2,4,4] y, int64[1,2,4,4] where) {
          d, mask = Dropout(x)
          p, unread_indices = MaxPool<kernel_shape = [2, 2], strides = [2, 2]>(d)
          y, where = MaxPool<kernel_shape = [2, 2], strides = [2, 2]>(d)
          s = Add(p, y)
        }''')
    drop_dead_nodes(model)
    assert [list(node.output) for node in model.graph.node] == [["d"], ["y", "where"]]


def test_a_split_piece_nobody_reads_keeps_its_place() -> None:
    # Split's outputs are not optional: the unread piece stays, so the pieces after it keep their offsets.
    model = onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 18]>
        g (float[1,6] x) => (float[1,2] c) { a, b, c = Split<axis = 1, num_outputs = 3>(x) }''')
    graph = load_graph(model)
    assert graph.nodes[0].outputs == ("a", "b", "c")
    assert graph.tensors["b"].shape == (1, 2)
