"""Where `simulate --check` spends its time: planning, verify, the onnxruntime reference, the functional runs.

    python benchmarks/check_speed.py [--models resnet18,mobilenet_v2,/work/corpus/alexnet.dynamo18.onnx]
                                     [--scratchpads 512KiB,64KiB] [--machine edge-npu]
                                     [--compare /work/main,/work/wt/checkspeed] [--timeout 300]

A model is a zoo name or an .onnx path; a path with a corpus manifest beside it (NAME.json, `benchmarks/corpus.py`)
takes its input shapes from the manifest's "inputs", as `benchmarks/corpus_check.py` does. With `--compare`, every
row runs once per checkout, in a subprocess whose PYTHONPATH is that checkout (so "before" and "after" are timed in
one run, close together), each cut off after `--timeout` seconds.

Each (model, scratchpad) is planned (fused), then checked the way `planner.api.check` does it, one stage at a time:
`verify`, `reference_values` (onnxruntime on the whole model), `split_error_bounds` and `run_functional` (both poison
runs). Every stage is timed by wall clock (`time.perf_counter`) and process CPU time (`time.process_time`), printed
as `wall / cpu` seconds. To compare two checkouts, run this script twice with PYTHONPATH pointing at each; timings on
a shared machine are noisy, so run both close together.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
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
    manifest = Path(model).with_suffix(".json")
    shapes = {name: tuple(dims) for name, dims in json.loads(manifest.read_text())["inputs"].items()} \
        if model.endswith(".onnx") and manifest.exists() else None
    loaded = load(model, input_shapes=shapes)
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
    return [Path(model).name, scratchpad, str(len(program.instructions)),
            *(f"{wall:.1f} / {cpu:.1f}" for wall, cpu in [*stages, total])]


def compared(model: str, scratchpad: str, machine_name: str, checkout: str, timeout: float) -> list[str]:
    """`measure` run in a subprocess on `checkout`'s code; a row that ran out of time says so."""
    command = [sys.executable, __file__, "--row", "--models", model, "--scratchpads", scratchpad,
               "--machine", machine_name]
    env = {**os.environ, "PYTHONPATH": checkout}
    start = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return [checkout, Path(model).name, scratchpad, "", "", "", "", "", "", f"> {timeout:.0f} (cut off)"]
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return [checkout, Path(model).name, scratchpad, f"failed after {time.perf_counter() - start:.0f} s: {last}",
                "", "", "", "", "", ""]
    return [checkout, *json.loads(done.stdout)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet18")
    parser.add_argument("--scratchpads", default="512KiB,64KiB")
    parser.add_argument("--machine", default="edge-npu")
    parser.add_argument("--compare", default="", help="checkouts, comma-separated: one row each, in a subprocess")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per row with --compare")
    parser.add_argument("--row", action="store_true", help=argparse.SUPPRESS)  # one row as JSON, for --compare
    args = parser.parse_args()
    if args.row:
        print(json.dumps(measure(args.models, args.scratchpads, args.machine)))
        return
    checkouts = [c for c in args.compare.split(",") if c]
    header = ["model", "scratchpad", "instructions", "planning s", "verify s", "reference s", "error bounds s",
              "functional s (both runs)", "total s"]
    if checkouts:
        header = ["code", *header]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for model in args.models.split(","):
        for scratchpad in args.scratchpads.split(","):
            rows = [compared(model, scratchpad, args.machine, checkout, args.timeout) for checkout in checkouts] \
                if checkouts else [measure(model, scratchpad, args.machine)]
            for row in rows:
                print("| " + " | ".join(row) + " |", flush=True)
    print("\nEach cell is wall / CPU seconds (time.perf_counter / time.process_time).")


if __name__ == "__main__":
    main()
