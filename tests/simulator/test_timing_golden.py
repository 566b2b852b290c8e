"""The timing model's results frozen on real plans: every figure a simulation reports, exactly.

The programs in `golden/timing/` are plans the planner emitted (zoo models, baseline and fused, on edge-npu,
inferentia2-core and tpu-v1-like, each preset with `descriptor_dims` > 1, one machine cut to `descriptor_dims` 1,
an embedding planned as a DmaGather, and the benchmark's synthetic chain), stored with their machine so that later
planner or preset changes leave them alone. `golden/timing_expected.json` holds what the timing model gave on them
when this test was written (commit 02c8f0d, before the simulator was sped up, issue 12): total and per-queue busy
cycles, stalls, bytes, per-op spans, bytes and compute_cycles, energy by component, and digests of every
instruction's start and end cycle and of the Perfetto trace. A faster simulator must give the same, bit for bit, and
so must the compiled event loop (`simulator.events_jit`, with numba installed) on every one of them.

Regenerate the expected figures from the stored programs (only for an intended change of the timing model):

    python -m tests.simulator.test_timing_golden

and the programs themselves from today's planner with `--programs`.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator import events, events_jit
from simulator.costs import instruction_costs
from simulator.isa import Program
from simulator.machine import MachineConfig
from simulator.machine_file import load_machine, machine_from_dict, machine_to_yaml
from simulator.plan_file import decode_program, program_to_json
from simulator.timing import simulate
from simulator.trace import chrome_trace

GOLDEN = Path(__file__).parent / "golden"
PROGRAMS = GOLDEN / "timing"
EXPECTED = GOLDEN / "timing_expected.json"

ZOO_MODELS = ("mlp-small", "cnn-small", "resnet18-small", "bert_base-small")
EMBEDDING = """<ir_version: 8, opset_import: ["" : 17]>
g (int64[2,16] ids) => (float[2,16,8] y) { e = Gather(table, ids) y = MatMul(e, w) }"""


def load_case(path: Path) -> tuple[Program, MachineConfig]:
    document = json.loads(gzip.decompress(path.read_bytes()))
    machine = machine_from_dict(yaml.safe_load(document["machine"]), source=path.name)
    # decoded without the schema check (plan_file's job, and slow on big plans)
    return decode_program(json.loads(document["program"])), machine


def figures(program: Program, machine: MachineConfig) -> dict[str, Any]:
    """Everything one simulation reports, as JSON values (floats exact through JSON's repr)."""
    result = simulate(program, machine)
    schedule = json.dumps([result.start_cycles, result.end_cycles, result.resources])
    trace = json.dumps(chrome_trace(program, result), sort_keys=True)
    return {"stats": result.stats.to_dict(), "energy_pj": result.energy.to_dict(),
            "schedule_sha256": hashlib.sha256(schedule.encode()).hexdigest(),
            "trace_sha256": hashlib.sha256(trace.encode()).hexdigest()}


def _expected() -> dict[str, Any]:
    return dict(json.loads(EXPECTED.read_text())) if EXPECTED.exists() else {}


CASES = sorted(_expected())


def test_every_stored_program_has_expected_figures() -> None:
    assert sorted(path.name.removesuffix(".json.gz") for path in PROGRAMS.glob("*.json.gz")) == CASES
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES)
def test_timing_is_what_it_was(case: str) -> None:
    program, machine = load_case(PROGRAMS / f"{case}.json.gz")
    expected = _expected()[case]
    got = figures(program, machine)
    # the readable figures first, so that a failure shows which one moved
    assert got["stats"]["total_cycles"] == expected["stats"]["total_cycles"]
    assert got["stats"]["busy_cycles"] == expected["stats"]["busy_cycles"]
    assert {name: op["compute_cycles"] for name, op in got["stats"]["ops"].items()} == {
        name: op["compute_cycles"] for name, op in expected["stats"]["ops"].items()}
    assert got == expected


@pytest.mark.parametrize("case", CASES)
def test_compiled_loop_gives_the_same_schedule(case: str) -> None:
    # the `fast` extra's numba loop against the Python loop, on every stored program (slow only the first time,
    # while numba compiles into its cache)
    pytest.importorskip("numba")
    program, machine = load_case(PROGRAMS / f"{case}.json.gz")
    costs = instruction_costs(program, machine)
    assert events_jit.schedule(costs, machine) == events.schedule(costs, machine, compiled=False)


def _plan_cases() -> dict[str, tuple[Program, MachineConfig]]:
    # imported here: only regenerating needs the planner and the benchmark's chain
    import numpy as np
    import onnx.parser
    from onnx import numpy_helper

    from benchmarks.simulator_speed import chain
    from benchmarks.simulator_speed import machine as bench_machine
    from planner import api
    from tests.simulator.programs import small_machine

    cases: dict[str, tuple[Program, MachineConfig]] = {}
    for model in ZOO_MODELS:
        for machine_name in ("edge-npu", "inferentia2-core"):
            for strategy in ("baseline", "fused"):
                machine = load_machine(machine_name)
                cases[f"{model}.{strategy}.{machine_name}"] = (api.plan(model, machine, strategy=strategy), machine)
    for strategy in ("baseline", "fused"):
        machine = load_machine("tpu-v1-like")  # two stationary buffers: warm tiles
        cases[f"cnn-small.{strategy}.tpu-v1-like"] = (api.plan("cnn-small", machine, strategy=strategy), machine)
    edge = load_machine("edge-npu")
    one_dim = dataclasses.replace(edge, dma=dataclasses.replace(edge.dma, descriptor_dims=1))
    cases["resnet18-small.baseline.edge-npu-dims1"] = (api.plan("resnet18-small", one_dim, strategy="baseline"),
                                                       one_dim)
    rng = np.random.default_rng(1)
    embedding = onnx.parser.parse_model(EMBEDDING)
    embedding.graph.initializer.extend([
        numpy_helper.from_array(rng.standard_normal((500, 32)).astype(np.float32), "table"),
        numpy_helper.from_array(rng.standard_normal((32, 8)).astype(np.float32), "w")])
    for scratchpad in ("8KiB", None):
        machine = load_machine("edge-npu", scratchpad=scratchpad)
        for strategy in ("baseline", "fused"):
            name = f"embedding.{strategy}.edge-npu-{scratchpad or 'full'}"
            cases[name] = (api.plan(embedding, machine, strategy=strategy), machine)
    for queues in (2, 4):
        cases[f"chain.synthetic.bench-{queues}q"] = (chain(1_000, queues), bench_machine(queues))
    cases["toy.small-machine"] = (api.plan("cnn-small", small_machine(64 * 1024), strategy="baseline"),
                                  small_machine(64 * 1024))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate the timing golden figures.")
    parser.add_argument("--programs", action="store_true", help="re-plan the stored programs with today's planner")
    args = parser.parse_args()
    if args.programs:
        PROGRAMS.mkdir(parents=True, exist_ok=True)
        for old in PROGRAMS.glob("*.json.gz"):
            old.unlink()
        for name, (program, machine) in _plan_cases().items():
            document = {"machine": machine_to_yaml(machine), "program": program_to_json(program)}
            (PROGRAMS / f"{name}.json.gz").write_bytes(gzip.compress(json.dumps(document).encode(), mtime=0))
    expected = {path.name.removesuffix(".json.gz"): figures(*load_case(path))
                for path in sorted(PROGRAMS.glob("*.json.gz"))}
    EXPECTED.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"{len(expected)} cases -> {EXPECTED}")


if __name__ == "__main__":
    main()
