"""Where the fused strategy's cycles go, against the baseline's: one row per model and machine.

    python benchmarks/fused_cycles.py [--models mlp cnn resnet18-small ...] [--machines edge-npu inferentia2-core
                                      benchmarks/peers-256KiB.yaml] [--dtype bf16] [--scratchpad 16KiB] [--ops 5]

Prints a Markdown table: baseline and fused cycles, their ratio, and for each strategy the tensor engine's busy
cycles, the busiest DMA queue's busy cycles, and the tensor-engine tiles' mean utilisation (MACs over what the array
could have done in the cycles those tiles took). With `--ops N`, the N ops whose fused span grew the most follow,
each with its tensor-engine tiles (count, mean M x N x K) in both plans. Every figure comes from simulating the
emitted programs; wall seconds are on this (shared) machine.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

from planner import api
from simulator.isa import Compute, Program
from simulator.machine import MachineConfig, mac_dtype
from simulator.systolic import tensor_cycles

DEFAULT_MODELS = ["mlp", "cnn", "resnet18-small", "resnet50-small", "mobilenet_v2-small", "vgg16-small",
                  "bert_base-small", "vit-small"]


def tensor_tiles(program: Program, machine: MachineConfig) -> dict[str, list[tuple[int, ...]]]:
    """Per node, the systolic shapes of its tensor-engine computes."""
    found: dict[str, list[tuple[int, ...]]] = defaultdict(list)
    for instruction in program.instructions:
        if isinstance(instruction, Compute) and instruction.engine == "tensor" and instruction.mnk:
            found[instruction.node].append(instruction.mnk)
    return found


def utilisation(program: Program, machine: MachineConfig) -> float:
    """MACs over the array's peak MACs in the cold cycles of every tensor-engine tile (1.0: no fold left idle)."""
    engine = machine.tensor_engine
    macs = cycles = 0
    for instruction in program.instructions:
        if isinstance(instruction, Compute) and instruction.engine == "tensor" and instruction.mnk:
            dtype = mac_dtype(instruction.op_type, program.dtype)
            macs += instruction.macs
            cycles += tensor_cycles(instruction.mnk, engine, dtype) * engine.macs_per_cycle[dtype]
    return macs / cycles if cycles else 0.0


def _mean_shape(shapes: list[tuple[int, ...]]) -> str:
    if not shapes:
        return "-"
    return " x ".join(f"{sum(s[i] for s in shapes) / len(shapes):.0f}" for i in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--machines", nargs="+", default=["edge-npu", "inferentia2-core"])
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--scratchpad", help="override every machine's scratchpad capacity, e.g. 16KiB")
    parser.add_argument("--ops", type=int, default=0, help="also list the N ops whose span grew the most")
    args = parser.parse_args()
    print("| model | machine | baseline cycles | fused cycles | fused / baseline | tensor busy (b / f) | "
          "DMA busy, busiest queue (b / f) | array use (b / f) | plan s (b / f) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    details = []
    for name in args.models:
        model = api.load(name, dtype=args.dtype)
        for machine_spec in args.machines:
            machine = api.machine(machine_spec, scratchpad=args.scratchpad)
            row = {}
            for strategy in ("baseline", "fused"):
                start = time.perf_counter()
                program = api.plan(model, machine, strategy=strategy)
                seconds = time.perf_counter() - start
                stats = api.simulate(program, machine).stats
                busy = stats.busy_cycles
                dma = max((v for k, v in busy.items() if k.startswith("dma")), default=0)
                row[strategy] = (stats, busy.get("tensor", 0), dma, utilisation(program, machine), seconds, program)
            (b, bt, bd, bu, bs, bp), (f, ft, fd, fu, fs, fp) = row["baseline"], row["fused"]
            print(f"| {name} | {machine.name} | {b.total_cycles:,} | {f.total_cycles:,} | "
                  f"{f.total_cycles / max(1, b.total_cycles):.2f} | {bt:,} / {ft:,} | {bd:,} / {fd:,} | "
                  f"{bu:.2f} / {fu:.2f} | {bs:.1f} / {fs:.1f} |", flush=True)
            if args.ops:
                details.append((name, machine, b, f, bp, fp))
    for name, machine, b, f, bp, fp in details:
        spans = {op_name: op.cycles for op_name, op in b.ops.items()}
        grown = sorted(f.ops.items(), key=lambda item: spans.get(item[0], 0) - item[1].cycles)[:args.ops]
        base_tiles, fused_tiles = tensor_tiles(bp, machine), tensor_tiles(fp, machine)
        print(f"\n{name} on {machine.name}: the ops whose span grew most\n")
        print("| op | baseline span | fused span | baseline tiles (mean M x N x K) | fused tiles (mean M x N x K) |")
        print("|---|---:|---:|---|---|")
        for op_name, op in grown:
            print(f"| {op_name} | {spans.get(op_name, 0):,} | {op.cycles:,} | "
                  f"{len(base_tiles[op_name])} ({_mean_shape(base_tiles[op_name])}) | "
                  f"{len(fused_tiles[op_name])} ({_mean_shape(fused_tiles[op_name])}) |")


if __name__ == "__main__":
    main()
