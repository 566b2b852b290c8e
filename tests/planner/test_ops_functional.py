"""One- and two-op models of the ops added for real exports, planned by both strategies on a tight and a roomy
scratchpad: verify passes, every tile equals onnxruntime (the functional check), and traffic lies between the
bounds. The embedding model plans its Gather as an indirect DMA whose compulsory traffic is the rows it reads."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.parser
import pytest
from onnx import numpy_helper

from planner.baseline import plan_baseline
from planner.bounds import bounds
from planner.check import reference_values
from planner.fused import dram_bytes, plan_fused
from planner.graph import load_graph
from planner.ops import lower
from simulator.functional import run_functional
from simulator.isa import DmaGather, DmaLoad, Program
from simulator.machine import MachineConfig
from simulator.machine_file import load_machine
from simulator.plan_file import program_from_json, program_to_json
from simulator.timing import simulate
from simulator.verify import verify

HEADER = '<ir_version: 8, opset_import: ["" : {opset}]>\n'
MACHINES = {"tight": ("edge-npu", "8KiB"), "roomy": ("edge-npu", None)}

# name -> (opset, graph text, initializers as (name, array))
CASES: dict[str, tuple[int, str, dict[str, np.ndarray]]] = {
    "gather-select": (18, "g (float[8,6,64] x) => (float[8,64] y) { y = Gather<axis = 1>(x, i) }",
                      {"i": np.array(4, np.int64)}),
    "gather-list": (17, "g (float[6,32,16] x) => (float[3,32,16] y) { y = Gather(x, i) }",
                    {"i": np.array([5, 0, 2], np.int64)}),
    "gather-elements": (17, "g (float[4,8] x) => (float[4,3] y) { y = GatherElements<axis = 1>(x, i) }",
                        {"i": np.array([[0, 7, 1], [2, 2, 2], [7, 6, 5], [1, 0, 3]], np.int64)}),
    "gather-nd": (17, "g (float[4,5,8] x) => (float[3,8] y) { y = GatherND(x, i) }",
                  {"i": np.array([[0, 4], [3, 1], [2, 2]], np.int64)}),
    "where-less": (17, "g (float[64,32] a, float[32] b) => (float[64,32] y) { c = Less(a, b) y = Where(c, a, b) }",
                   {}),
    "logic": (17, "g (float[64,32] a, float[64,32] b) => (bool[64,32] y) { c = Greater(a, b) d = LessOrEqual(a, b) "
                  "e = Or(c, d) f = Not(e) y = Xor(f, c) }", {}),
    "expand-softplus": (17, "g (float[32,1] x) => (float[2,32,32] y) { e = Expand(x, s) y = Softplus(e) }",
                        {"s": np.array([2, 32, 32], np.int64)}),
    "trilu-mish": (18, "g (float[4,32,32] x) => (float[4,32,32] y) { t = Trilu<upper = 0>(x) y = Mish(t) }", {}),
    "tile": (17, "g (float[2,16,16] x) => (float[4,16,48] y) { y = Tile(x, r) }", {"r": np.array([2, 1, 3], np.int64)}),
    "reductions": (18, "g (float[8,6,32] x) => (float[8,32] a, float[8,1,32] b, float[1,6,1] c, int64[8,32] d) {"
                       " a = ReduceMax<keepdims = 0>(x, one) b = ReduceL2(x, one) c = ReduceProd(x, ends)"
                       " d = ArgMax<axis = 1, keepdims = 0>(x) }",
                   {"one": np.array([1], np.int64), "ends": np.array([0, 2], np.int64)}),
    "reduce-min": (17, "g (float[32,6,32] x) => (float[32,6,1] y) { y = ReduceMin<axes = [2]>(x) }", {}),
    "instance-norm": (17, "g (float[2,16,4,4] x, float[16] s, float[16] b) => (float[2,16,4,4] y) {"
                          " y = InstanceNormalization(x, s, b) }", {}),
    "group-norm": (21, "g (float[2,12,4,4] x, float[12] s, float[12] b) => (float[2,12,4,4] y) {"
                       " y = GroupNormalization<num_groups = 6>(x, s, b) }", {}),
    "depth-space": (17, "g (float[2,16,8,12] x) => (float[2,16,8,12] y) {"
                        " d = DepthToSpace<blocksize = 2, mode = \"CRD\">(x) y = SpaceToDepth<blocksize = 2>(d) }", {}),
    "gather-ids-axis1": (17, "g (int64[3,2] ids) => (float[4,3,2,16] y) { y = Gather<axis = 1>(t, ids) }",
                         {"t": np.arange(4 * 10 * 16, dtype=np.float32).reshape(4, 10, 16)}),
    "gather-id-scalar": (17, "g (int64 id, float[8] x) => (float[8] y) { r = Gather(t, id) y = Add(r, x) }",
                         {"t": np.arange(5 * 8, dtype=np.float32).reshape(5, 8)}),
    "gather-ids-view": (17, "g (int64[2,8] ids) => (float[16,32] y) { v = Reshape(ids, s) y = Gather(t, v) }",
                        {"t": np.arange(6 * 32, dtype=np.float32).reshape(6, 32), "s": np.array([16], np.int64)}),
    "resize-bilinear": (17, "g (float[1,4,8,8] x) => (float[1,4,16,16] y) {"
                            " y = Resize<mode = \"linear\">(x, roi, sc) }",
                        {"roi": np.array([], np.float32), "sc": np.array([1, 1, 2, 2], np.float32)}),
    "resize-cubic": (19, "g (float[1,2,8,8] x) => (float[1,2,13,5] y) { y = Resize<mode = \"cubic\", "
                         "coordinate_transformation_mode = \"align_corners\">(x, roi, sc, sz) }",
                     {"roi": np.array([], np.float32), "sc": np.array([], np.float32),
                      "sz": np.array([1, 2, 13, 5], np.int64)}),
    "resize-crop": (17, "g (float[1,2,8,8] x) => (float[1,2,6,6] y) { y = Resize<mode = \"linear\", "
                        "coordinate_transformation_mode = \"tf_crop_and_resize\">(x, roi, sc, sz) }",
                    {"roi": np.array([0, 0, 0.1, 0.2, 1, 1, 0.7, 1.1], np.float32), "sc": np.array([], np.float32),
                     "sz": np.array([1, 2, 6, 6], np.int64)}),
}


def build(opset: int, text: str, inits: dict[str, np.ndarray]) -> onnx.ModelProto:
    model = onnx.parser.parse_model(HEADER.format(opset=opset) + text)
    model.graph.initializer.extend(numpy_helper.from_array(v, n) for n, v in inits.items())
    return model


def plan_and_check(model: onnx.ModelProto, machine: MachineConfig) -> dict[str, Program]:
    graph = load_graph(model)
    lowered = lower(graph)
    dram, reference = reference_values(graph, model)
    compulsory = bounds(lowered, machine).compulsory_bytes
    plans = {}
    for plan in (plan_baseline, plan_fused):
        program = plan(lowered, machine)
        assert verify(program, machine) == []
        run_functional(program, machine, dram, reference=reference)  # raises at the first tile that differs
        stats = simulate(program, machine).stats
        assert compulsory <= stats.dram_bytes_read + stats.dram_bytes_written == dram_bytes(program)
        assert program_from_json(program_to_json(program)) == program
        plans[plan.__name__] = program
    assert dram_bytes(plans["plan_fused"]) <= dram_bytes(plans["plan_baseline"])
    return plans


@pytest.mark.parametrize("kind", sorted(MACHINES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_new_ops_plan_and_match_onnxruntime(case: str, kind: str) -> None:
    name, scratchpad = MACHINES[kind]
    plan_and_check(build(*CASES[case]), load_machine(name, scratchpad=scratchpad))


EMBEDDING = """g (int64[2,16] ids) => (float[2,16,8] y) { e = Gather(table, ids) y = MatMul(e, w) }"""


@pytest.mark.parametrize("kind", sorted(MACHINES))
def test_embedding_lookup_is_an_indirect_dma_reading_only_its_rows(kind: str) -> None:
    rng = np.random.default_rng(1)
    vocab, width = 500, 32
    model = build(17, EMBEDDING, {"table": rng.standard_normal((vocab, width)).astype(np.float32),
                                  "w": rng.standard_normal((width, 8)).astype(np.float32)})
    name, scratchpad = MACHINES[kind]
    machine = load_machine(name, scratchpad=scratchpad)
    plans = plan_and_check(model, machine)
    rows_bytes = 2 * 16 * width * 4  # 32 ids, one row of 32 floats each: not the 64 KB table
    compulsory = bounds(lower(load_graph(model)), machine).compulsory_bytes
    assert compulsory == rows_bytes + 2 * 16 * 8 + width * 8 * 4 + 2 * 16 * 8 * 4  # rows, ids, w, y
    for program in plans.values():
        gathers = [i for i in program.instructions if isinstance(i, DmaGather)]
        assert gathers and sum(g.output.box.numel for g in gathers) * 4 == rows_bytes
        assert "table" not in {i.tensor for i in program.instructions if isinstance(i, DmaLoad)}
    assert dram_bytes(plans["plan_fused"]) <= dram_bytes(plans["plan_baseline"])


def test_more_ids_than_rows_bound_the_rows_by_the_table() -> None:
    model = build(17, "g (int64[64] ids) => (float[64,4] y) { y = Gather(table, ids) }",
                  {"table": np.ones((10, 4), np.float32)})
    lowered = lower(load_graph(model))
    assert bounds(lowered, load_machine("edge-npu")).compulsory_bytes == 10 * 4 * 4 + 64 * 8 + 64 * 4 * 4
