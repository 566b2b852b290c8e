"""Epilogues: the pointwise ops after an op staged alone run in place on its output tiles (planner.schedule.epilogue),
so the op's output never goes to DRAM, and the program still computes what onnxruntime computes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from planner.baseline import plan_baseline
from planner.fused import choose_fused, dram_bytes, stage
from planner.graph import load_graph
from planner.ops import lower
from planner.schedule.cost import price
from planner.schedule.epilogue import epilogue_length
from planner.schedule.ir import Residency
from planner.schedule.search import schedule_of
from planner.testing import check_plan, check_program
from simulator.isa import Compute
from simulator.machine_file import load_machine
from simulator.timing import simulate


def _conv_then(ops: list[str], channels: int = 64, outputs: tuple[str, ...] = ("y",)) -> onnx.ModelProto:
    """x -> Conv 3x3 (`channels` in, 8 out, 8x8) -> each of `ops` in turn -> y; `outputs` names the model outputs."""
    rng = np.random.default_rng(1)
    names = ["conv", *(f"t{i}" for i in range(len(ops) - 1)), "y"]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], [names[0]], pads=[1, 1, 1, 1])]
    nodes += [helper.make_node(op, [names[i]], [names[i + 1]]) for i, op in enumerate(ops)]
    graph = helper.make_graph(
        nodes, "epilogue", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, channels, 8, 8])],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in outputs],
        initializer=[numpy_helper.from_array(rng.standard_normal((8, channels, 3, 3)).astype(np.float32), "w"),
                     numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_which_statements_make_an_epilogue() -> None:
    assert epilogue_length(lower(load_graph(_conv_then(["Relu", "Sigmoid"]))), 0, frozenset()) == 2
    lowered = lower(load_graph(_conv_then(["Relu", "Sigmoid"], outputs=("y", "t0"))))  # t0 is read outside
    assert epilogue_length(lowered, 0, frozenset()) == 1
    lowered = lower(load_graph(_conv_then(["Relu"])))
    assert epilogue_length(lowered, 0, frozenset({"conv"})) == 0  # kept whole: read and written in place already
    lowered = lower(load_graph(_conv_then(["Softmax"])))
    assert epilogue_length(lowered, 0, frozenset()) == 0  # each point reads a whole row: not in place


def test_the_search_runs_activations_in_place_after_a_split_conv() -> None:
    """At 8 KiB no whole reduction fits: the conv is split, and the fused plan runs both activations on each
    finished tile (no group of the three fits)."""
    machine = load_machine("edge-npu", scratchpad="8KiB")
    model = _conv_then(["Relu", "Sigmoid"])
    _, schedule = choose_fused(lower(load_graph(model)), machine)
    assert schedule is not None and not schedule.groups and not schedule.residency.kept
    assert [(index, tiling.split, tiling.epilogue) for index, tiling in schedule.ops] == [(0, True, 2)]
    assert check_plan(model, machine) is not None


@pytest.mark.parametrize("scratchpad", ["8KiB", "64KiB"])
def test_a_conv_with_its_activations_in_place(scratchpad: str) -> None:
    """Every op alone, nothing kept, with epilogues: the conv's output and the Relu's move no byte, the activations
    compute in their tile's buffer, the plan is legal and equals onnxruntime (check_program), and the cost model's
    bytes are the simulated program's."""
    machine = load_machine("edge-npu", scratchpad=scratchpad)
    model = _conv_then(["Relu", "Sigmoid"])
    lowered = lower(load_graph(model))
    capacity = machine.scratchpad.partition_bytes
    schedule = schedule_of(lowered, machine, (), Residency((), (capacity,) * 3))
    assert schedule is not None and [t.epilogue for _, t in schedule.ops] == [2]
    program = stage(lowered, machine, schedule)
    stats = check_program(program, machine, model)
    computes = [i for i in program.instructions if isinstance(i, Compute)]
    in_place = [c for c in computes if c.operands[0].buffer == c.output.buffer and c.operands[0].at == c.output.at]
    assert {c.node for c in in_place} == {lowered.statements[1].node, lowered.statements[2].node}
    moved = stats.dram_bytes_read + stats.dram_bytes_written
    assert moved == dram_bytes(program) == price(lowered, machine, schedule).dram_bytes
    baseline = simulate(plan_baseline(lowered, machine), machine).stats
    # the baseline stores the conv's output and the Relu's, and loads both again
    assert baseline.dram_bytes_read + baseline.dram_bytes_written - moved == 4 * (8 * 8 * 8 * 4)
