"""Baseline traffic against compulsory traffic, and baseline cycles against the roofline, for every zoo model.

    python benchmarks/baseline_bounds.py [--dtype bf16] [--machines inferentia2-core edge-npu] [--small]

Every figure comes from simulating the emitted program. Prints a Markdown table; planning seconds are wall-clock on
this (shared) machine.
"""

from __future__ import annotations

import argparse
import time

import models
from planner.baseline import plan_baseline
from planner.bounds import bounds
from planner.graph import load_graph
from planner.ops import lower
from simulator.machine import load_machine
from simulator.timing import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--machines", nargs="+", default=["inferentia2-core", "edge-npu"])
    parser.add_argument("--models", nargs="+", default=list(models.ZOO))
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    print("| model | machine | DRAM bytes | x compulsory | transfers | cycles | x roofline | instructions | "
          "plan s | sim s | sim instr/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.models:
        lowered = lower(load_graph(models.build(name, small=args.small), dtype=args.dtype))
        for machine_name in args.machines:
            machine = load_machine(machine_name)
            start = time.perf_counter()
            program = plan_baseline(lowered, machine)
            planned = time.perf_counter()
            stats = simulate(program, machine).stats
            simulated = time.perf_counter()
            limits = bounds(lowered, machine)
            traffic = stats.dram_bytes_read + stats.dram_bytes_written
            instructions = len(program.instructions)
            print(f"| {name}{'-small' if args.small else ''} | {machine_name} | {traffic:,} | "
                  f"{traffic / limits.compulsory_bytes:.2f} | {stats.dma_transfers:,} | {stats.total_cycles:,} | "
                  f"{stats.total_cycles / limits.roofline_cycles:.2f} | {instructions:,} | {planned - start:.1f} | "
                  f"{simulated - planned:.1f} | {instructions / (simulated - planned):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
