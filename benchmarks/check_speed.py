"""Where `simulate --check` spends its time: planning, verify, the onnxruntime reference, the functional runs.

    python benchmarks/check_speed.py [--models resnet18,resnet18-small] [--scratchpads 512KiB,64KiB]
                                     [--machine edge-npu]

Each (model, scratchpad) is planned (fused), then checked the way `planner.api.check` does it, one stage at a time:
`verify`, `reference_values` (onnxruntime on the whole model), `split_error_bounds` and `run_functional` (both poison
runs). Every stage is timed by wall clock (`time.perf_counter`) and process CPU time (`time.process_time`), printed
as `wall / cpu` seconds. To compare two checkouts, run this script twice with PYTHONPATH pointing at each; timings on
a shared machine are noisy, so run both close together.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

from planner.api import load, machine, plan
from planner.check import reference_values
from planner.check_bounds import split_error_bounds
from simulator.functional import run_functional
from simulator.verify import verify

T = TypeVar("T")


def timed(stage: Callable[[], T]) -> tuple[T, float, float]:
    """The stage's result, its wall seconds and its CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = stage()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def measure(model: str, scratchpad: str, machine_name: str) -> list[str]:
    """One table row: model, scratchpad, instructions, then `wall / cpu` per stage and in total."""
    loaded = load(model)
    config = machine(machine_name, scratchpad=scratchpad)
    program, *planning = timed(lambda: plan(loaded, config))
    violations, *verifying = timed(lambda: verify(program, config))
    if violations:
        raise SystemExit(f"{model} at {scratchpad}: verify: {violations[0].message}")
    (dram, reference), *referencing = timed(lambda: reference_values(
        loaded.graph, loaded.source, batch=loaded.batch, input_shapes=loaded.input_shapes))
    bounds, *bounding = timed(lambda: split_error_bounds(program, loaded.graph, reference))
    _, *functional = timed(lambda: run_functional(program, config, dram, reference=reference, error_bounds=bounds))
    stages = [planning, verifying, referencing, bounding, functional]
    total = [sum(stage[0] for stage in stages), sum(stage[1] for stage in stages)]
    return [model, scratchpad, str(len(program.instructions)),
            *(f"{wall:.1f} / {cpu:.1f}" for wall, cpu in [*stages, total])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18")
    parser.add_argument("--scratchpads", default="512KiB,64KiB")
    parser.add_argument("--machine", default="edge-npu")
    args = parser.parse_args()
    header = ["model", "scratchpad", "instructions", "planning s", "verify s", "reference s", "error bounds s",
              "functional s (both runs)", "total s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for model in args.models.split(","):
        for scratchpad in args.scratchpads.split(","):
            print("| " + " | ".join(measure(model, scratchpad, args.machine)) + " |", flush=True)
    print("\nEach cell is wall / CPU seconds (time.perf_counter / time.process_time).")


if __name__ == "__main__":
    main()
