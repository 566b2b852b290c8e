"""Each strategy's traffic against compulsory traffic, and its cycles against the roofline, for every zoo model.

    python benchmarks/strategies.py [--strategies baseline fused] [--dtype bf16] [--batch 1]
                                    [--machines inferentia2-core edge-npu] [--models ...] [--small]
                                    [--scratchpad 16KiB]

Every figure comes from simulating the emitted program. Prints a Markdown table; planning seconds are wall-clock on
this (shared) machine.
"""

from __future__ import annotations

import argparse
import time

import models
from planner.bounds import bounds
from planner.commands import STRATEGIES
from planner.graph import load_graph
from planner.ops import lower
from simulator.machine_file import load_machine
from simulator.timing import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--machines", nargs="+", default=["inferentia2-core", "edge-npu"])
    parser.add_argument("--models", nargs="+", default=list(models.ZOO))
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--scratchpad", help="override every machine's scratchpad capacity, e.g. 16KiB")
    parser.add_argument("--strategies", nargs="+", default=["baseline", "fused"], choices=sorted(STRATEGIES))
    args = parser.parse_args()
    print("| model | batch | machine | strategy | DRAM bytes | x compulsory | x best unfused | transfers | cycles | "
          "x roofline | instructions | plan s | sim s |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.models:
        lowered = lower(load_graph(models.build(name, small=args.small, batch=args.batch), dtype=args.dtype))
        limits_of = {name: bounds(lowered, load_machine(name, scratchpad=args.scratchpad),
                                   with_best_unfused=True) for name in args.machines}
        for machine_name, strategy in [(m, s) for m in args.machines for s in args.strategies]:
            machine = load_machine(machine_name, scratchpad=args.scratchpad)
            start = time.perf_counter()
            program = STRATEGIES[strategy](lowered, machine)
            planned = time.perf_counter()
            stats = simulate(program, machine).stats
            simulated = time.perf_counter()
            limits = limits_of[machine_name]
            best = limits.best_unfused_bytes or 1
            traffic = stats.dram_bytes_read + stats.dram_bytes_written
            instructions = len(program.instructions)
            print(f"| {name}{'-small' if args.small else ''} | {args.batch} | {machine_name} | {strategy} | "
                  f"{traffic:,} | {traffic / limits.compulsory_bytes:.2f} | {traffic / best:.2f} | "
                  f"{stats.dma_transfers:,} | "
                  f"{stats.total_cycles:,} | {stats.total_cycles / limits.roofline_cycles:.2f} | {instructions:,} | "
                  f"{planned - start:.1f} | {simulated - planned:.1f} |", flush=True)


if __name__ == "__main__":
    main()
