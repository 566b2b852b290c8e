"""Tight scratchpads: every small zoo model planned both ways at each capacity, the fused plan checked on real numbers.

    python benchmarks/tight.py [--models mlp-small cnn-small ...] [--scratchpads 16KiB 8KiB] [--machine edge-npu]

Prints one row per model and capacity: the simulated bytes and cycles of both strategies, fused against compulsory,
best unfused and the baseline, whether `check` (verify, then the functional simulator against onnxruntime) passed,
and the seconds the fused plan, simulation and check took (wall clock: read them as ratios, the machine is shared).
A refusal or a failed check is a row saying so, not the end of the table.
"""

from __future__ import annotations

import argparse
import time

from planner import api
from planner.errors import PlanError

SMALL_ZOO = ("mlp-small", "cnn-small", "resnet18-small", "vit-small", "bert_base-small", "mobilenet_v2-small",
             "resnet50-small", "vgg16-small")


def row(model: str, machine: str, scratchpad: str) -> str:
    config = api.machine(machine, scratchpad=scratchpad)
    try:
        base = api.evaluate(model, config, strategy="baseline")
        started = time.perf_counter()
        fused = api.evaluate(model, config, strategy="fused")
        program = api.plan(model, config, strategy="fused")  # the same plan, cached by evaluate's inputs
        try:
            api.check(model, program, config)
            checked = "passed"
        except PlanError as error:
            checked = f"FAILED: {error}"
        seconds = time.perf_counter() - started
    except PlanError as error:
        return f"| {model} | {scratchpad} | refused: {error} | | | | | | | |"
    best = fused.best_unfused_bytes or 0
    return (f"| {model} | {scratchpad} | {base.dram_bytes:,} | {fused.dram_bytes:,} | "
            f"{fused.dram_bytes / fused.compulsory_bytes:.2f} | {fused.dram_bytes / best:.2f} | "
            f"{fused.dram_bytes / base.dram_bytes:.2f} | {fused.cycles / base.cycles:.2f} | {checked} | "
            f"{seconds:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(SMALL_ZOO))
    parser.add_argument("--scratchpads", nargs="+", default=["16KiB", "8KiB"])
    parser.add_argument("--machine", default="edge-npu")
    args = parser.parse_args()
    print(f"{args.machine}, model dtype; bytes and cycles simulated from the emitted programs")
    print()
    print("| model | scratchpad | baseline bytes | fused bytes | x compulsory | x best unfused | bytes / baseline | "
          "cycles / baseline | check | fused s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for scratchpad in args.scratchpads:
        for model in args.models:
            print(row(model, args.machine, scratchpad), flush=True)


if __name__ == "__main__":
    main()
