"""Where the DMA time goes: descriptors or bytes, before and after the planner chooses DRAM layouts.

    python benchmarks/descriptors.py [MODEL ...] [--full] [--machine edge-npu] [--dtype bf16] [--strategy fused]
                                     [--capacity-kib N] [--descriptor-dims N] [--time-box SECONDS]
                                     [--save DIR]

A MODEL ending in .json is a plan file, counted as it is (its layouts were chosen for the machine it was planned
on). Models default to the small variant of every zoo model (`--full`: the full-size ones, each planned within
`--time-box` seconds or skipped with a note). For each model it plans once, then counts every DMA of the one emitted
program twice: "before" with every tensor in ONNX's row-major layout (the same instructions, layouts taken off),
"after" with the layouts the planner chose. Counts come from `simulator.dma` (as the timing model charges them):
contiguous runs, their average bytes, descriptor cycles (descriptors x the machine's cost) against byte cycles
(burst-rounded bytes at one queue's rate), and the share of the two spent moving bytes. The simulated run time of
both programs is printed beside them.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from models import ZOO
from planner import api
from simulator.dma import DmaTotals, program_totals
from simulator.isa import Program
from simulator.machine import MachineConfig
from simulator.plan_file import program_to_json


def onnx_layout(program: Program) -> Program:
    """The same program with every tensor in ONNX's layout."""
    return dataclasses.replace(program, tensors=tuple(dataclasses.replace(t, layout=None) for t in program.tensors))


def _row(totals: DmaTotals, machine: MachineConfig, cycles: int) -> list[str]:
    descriptor = totals.descriptor_cycles(machine.dma)
    moving = totals.byte_cycles(machine)
    share = moving / (moving + descriptor) if moving + descriptor else 1.0
    average = totals.payload_bytes / totals.runs if totals.runs else 0.0
    return [f"{totals.transfers:,}", f"{totals.runs:,}", f"{average:,.0f}", f"{descriptor:,}", f"{moving:,.0f}",
            f"{100 * share:.1f}%", f"{cycles:,}"]


class _TimeUp(Exception):
    pass


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _TimeUp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="zoo names (default: every zoo model)")
    parser.add_argument("--full", action="store_true", help="full-size models instead of the small variants")
    parser.add_argument("--machine", default="edge-npu")
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--strategy", default="fused")
    parser.add_argument("--capacity-kib", type=int, help="override the scratchpad capacity (KiB)")
    parser.add_argument("--descriptor-dims", type=int, help="override the machine's dma.descriptor_dims")
    parser.add_argument("--save", metavar="DIR", help="write each model's plan file (chosen layouts) into DIR")
    parser.add_argument("--time-box", type=float, default=600.0, help="seconds to plan and count one model")
    args = parser.parse_args(argv)
    machine = api.machine(args.machine)
    if args.capacity_kib:
        machine = dataclasses.replace(machine, scratchpad=dataclasses.replace(
            machine.scratchpad, capacity_bytes=args.capacity_kib * 1024))
    if args.descriptor_dims:
        machine = dataclasses.replace(machine, dma=dataclasses.replace(machine.dma,
                                                                       descriptor_dims=args.descriptor_dims))
    names = args.models or [name if args.full else f"{name}-small" for name in ZOO]
    columns = ["transfers", "runs", "avg run B", "descriptor cyc", "byte cyc", "moving bytes", "sim cycles"]
    print(f"{args.strategy} on {machine.name} ({machine.scratchpad.capacity_bytes // 1024} KiB, "
          f"{machine.dma.descriptor_cycles} cycles per descriptor, descriptor_dims {machine.dma.descriptor_dims}), "
          f"{args.dtype}")
    print()
    print("| model | layout | " + " | ".join(columns) + " | plan s |")
    print("|---|---|" + "---|" * (len(columns) + 1))
    signal.signal(signal.SIGALRM, _alarm)
    for name in names:
        started = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, args.time_box)
        try:
            program = (api.load_program(name) if name.endswith(".json") else
                       api.plan(api.load(name, dtype=args.dtype), machine, strategy=args.strategy))
            plan_seconds = time.perf_counter() - started
            if args.save:
                Path(args.save, f"{name}.json").write_text(program_to_json(program))
            rows = []
            for label, variant in (("ONNX (before)", onnx_layout(program)), ("chosen (after)", program)):
                cycles = api.simulate(variant, machine).stats.total_cycles
                rows.append((label, _row(program_totals(variant, machine), machine, cycles)))
        except _TimeUp:
            print(f"| {name} | | skipped: over the {args.time_box:.0f} s time box |" + " |" * (len(columns) - 1))
            continue
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        for label, cells in rows:
            print(f"| {name} | {label} | " + " | ".join(cells) + f" | {plan_seconds:.1f} |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
