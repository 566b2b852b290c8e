"""The ResNet basic block (56x56x64, int8) on a 32x32 array with 256 KiB and 8 B/cycle: how close fusion gets.

    python benchmarks/basic_block.py [--save out/basic_block.onnx] [--check]

The workload is benchmarks/peers/workloads.py:basic_block() (Conv3x3 -> Relu -> Conv3x3 -> Add(input) -> Relu), the
machine benchmarks/basic_block.yaml (the same as benchmarks/peers/machines.py:OURS). Prints the compulsory bytes, the
best-unfused bound, and per strategy the simulated DRAM bytes (x compulsory, x best unfused), cycles and the seconds
planning took (CPU time of this process), then the fused plan's groups as its schedule names them. `--save` writes
the model, so that `scratchplan simulate MODEL --machine benchmarks/basic_block.yaml --dtype int8 --check` can check
it; `--check` runs that check here (verify, then the functional simulator against onnxruntime).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import onnx

from planner import api
from planner.errors import PlanError
from planner.fused import stage
from planner.schedule.search import search

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "peers"))
from workloads import basic_block  # noqa: E402  (benchmarks/peers is no package)

MACHINE = HERE / "basic_block.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", metavar="PATH", help="write the model (ONNX) here")
    parser.add_argument("--check", action="store_true", help="check the fused plan on real numbers")
    args = parser.parse_args()
    model = basic_block()
    if args.save:
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, args.save)
    config = api.machine(str(MACHINE))
    loaded = api.load(model, dtype="int8")
    rows = []
    for strategy in ("baseline", "fused"):
        started = time.process_time()
        api.plan(loaded, config, strategy=strategy)
        seconds = time.process_time() - started
        rows.append((strategy, api.evaluate(loaded, config, strategy=strategy), seconds))
    compulsory = rows[0][1].compulsory_bytes
    best = rows[0][1].best_unfused_bytes or 0
    print(f"basic block, int8, {MACHINE.name}; bytes and cycles simulated from the emitted programs")
    print()
    print("| | DRAM bytes | x compulsory | x best unfused | cycles | plan s (CPU) |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| compulsory | {compulsory:,} | 1.00 | | | |")
    print(f"| best unfused | {best:,} | {best / compulsory:.2f} | 1.00 | | |")
    for strategy, report, seconds in rows:
        print(f"| {strategy} | {report.dram_bytes:,} | {report.dram_bytes / compulsory:.2f} | "
              f"{report.dram_bytes / best:.2f} | {report.cycles:,} | {seconds:.1f} |")
    ranked = search(loaded.lowered, config)
    staged = 0  # the first schedule that stages is the one planned
    while staged + 1 < len(ranked):
        try:
            stage(loaded.lowered, config, ranked[staged][0])
            break
        except PlanError:
            staged += 1
    schedule, cost = ranked[staged]
    print()
    print(f"fused schedule staged (cost model: {cost.dram_bytes:,} bytes, {cost.cycles:,} cycles):")
    for group in schedule.groups:
        print(f"  group {group.first}..{group.last} -> {group.sink}: tile {group.tile}, overlap {group.overlap}, "
              f"weights {group.weights}")
    for index, tiling in schedule.ops:
        print(f"  op {index} ({loaded.lowered.statements[index].name}) alone: tile {dict(tiling.tile)}"
              f"{', split' if tiling.split else ''}")
    print(f"  kept whole: {', '.join(k.tensor for k in schedule.residency.kept) or 'none'}")
    if args.check:
        api.check(loaded, api.plan(loaded, config, strategy="fused"), config)
        print("check: passed")


if __name__ == "__main__":
    main()
