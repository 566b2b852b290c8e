"""Reduction splits: ops whose smallest whole-reduction tile does not fit run their reduction in slices, partial sums
on chip, and still compute what onnxruntime computes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from planner.baseline import plan_baseline
from planner.best_unfused import best_unfused
from planner.check import reference_values
from planner.check_bounds import split_error_bounds
from planner.fused import plan_fused, stage
from planner.graph import load_graph
from planner.ops import lower
from planner.schedule.cost import price
from planner.schedule.search import candidates
from simulator.functional import run_functional
from simulator.isa import Compute, Program
from simulator.machine_file import load_machine
from simulator.plan_file import program_from_json, program_to_json
from simulator.timing import simulate
from simulator.verify import verify


def _model(node: onnx.NodeProto, inputs: dict[str, list[int]], output: list[int],
           weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    graph = helper.make_graph(
        [node], "split", [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, output)],
        initializer=[numpy_helper.from_array(v, n) for n, v in weights.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


rng = np.random.default_rng(0)
CASES = {
    "conv": _model(helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1]), {"x": [1, 128, 2, 2]},
                   [1, 2, 2, 2], {"w": rng.standard_normal((2, 128, 3, 3)).astype(np.float32),
                                  "b": rng.standard_normal(2).astype(np.float32)}),
    "matmul": _model(helper.make_node("MatMul", ["x", "w"], ["y"]), {"x": [1, 2048]}, [1, 2],
                     {"w": rng.standard_normal((2048, 2)).astype(np.float32)}),
    "gemm": _model(helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1), {"x": [1, 2400]}, [1, 2],
                   {"w": rng.standard_normal((2, 2400)).astype(np.float32),
                    "b": rng.standard_normal(2).astype(np.float32)}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_split_reduction_matches_onnxruntime(name: str) -> None:
    machine = load_machine("edge-npu", scratchpad="8KiB")  # 256 bytes per partition: no whole reduction fits
    model = CASES[name]
    graph = load_graph(model)
    lowered = lower(graph)
    program = plan_baseline(lowered, machine)
    computes = [i for i in program.instructions if isinstance(i, Compute)]
    assert len(computes) > 1 and all(c.slices for c in computes)
    assert any(c.partial for c in computes) and any(c.accumulate is not None for c in computes)
    assert verify(program, machine) == []
    dram, reference = reference_values(graph, model)
    run_functional(program, machine, dram, reference=reference)  # every finished tile is checked
    assert program_from_json(program_to_json(program)) == program
    stats = simulate(program, machine).stats
    assert best_unfused(lowered, machine).dram_bytes <= stats.dram_bytes_read + stats.dram_bytes_written
    assert sum(c.macs for c in computes) == lowered.macs


def test_a_wrong_running_sum_is_caught() -> None:
    machine = load_machine("edge-npu", scratchpad="8KiB")
    model = CASES["matmul"]
    graph = load_graph(model)
    program = plan_baseline(lower(graph), machine)
    # drop the running sum from the last slice of the first tile: the finished tile misses the earlier slices
    last = next(i for i in program.instructions if isinstance(i, Compute) and not i.partial)
    instructions = tuple(i if i is not last else Compute(**{**{k: getattr(i, k) for k in i.__slots__},
                                                             "accumulate": None}) for i in program.instructions)
    broken = Program(**{**{k: getattr(program, k) for k in program.__dataclass_fields__},
                        "instructions": instructions})
    dram, reference = reference_values(graph, model)
    with pytest.raises(AssertionError, match=r"differ|error"):
        run_functional(broken, machine, dram, reference=reference)


def test_a_matmul_whose_fitting_tiles_reread_an_operand_splits_and_reaches_its_bound() -> None:
    """A whole-reduction tile fits, but only a small one (16x24 of a 128x192 output, k 3072 on edge-npu's 16 KiB
    partitions), which reads the activations once per column block: 7.5 MB for 2.0 MB of tensors. Slices of the
    reduction with the whole output on chip read everything once, the per-op optimum (best_unfused)."""
    machine = load_machine("edge-npu")
    model = _model(helper.make_node("MatMul", ["x", "w"], ["y"]), {"x": [1, 128, 3072]}, [1, 128, 192],
                   {"w": rng.standard_normal((3072, 192)).astype(np.float32)})
    graph = load_graph(model, dtype="bf16")
    lowered = lower(graph)
    bound = best_unfused(lowered, machine).dram_bytes
    for program in (plan_baseline(lowered, machine), plan_fused(lowered, machine)):
        assert any(c.partial for c in program.instructions if isinstance(c, Compute))
        assert verify(program, machine) == []
        stats = simulate(program, machine).stats
        assert stats.dram_bytes_read + stats.dram_bytes_written == bound
    for schedule in candidates(lowered, machine):  # the cost model prices the split as staging emits it
        stats = simulate(stage(lowered, machine, schedule), machine).stats
        assert price(lowered, machine, schedule).dram_bytes == stats.dram_bytes_read + stats.dram_bytes_written
    program = plan_baseline(lowered, machine)
    dram, reference = reference_values(graph, model)
    run_functional(program, machine, dram, reference=reference,
                   error_bounds=split_error_bounds(program, graph, reference))
