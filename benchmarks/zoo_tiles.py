"""What a zoo model's plan asks of the tensor engine, tile by tile, and which of the search's best schedules stage.

    python benchmarks/zoo_tiles.py MODEL [--machine edge-npu] [--strategy fused] [--top 10]
    python benchmarks/zoo_tiles.py MODEL --ranked 3        # the search's first schedules: priced, then staged

The first form plans the model (bf16) and prints, for the `--top` tensor-engine ops that lose the most cycles against
the engine's peak rate, their tiles' shapes (mnk: rows streamed, output columns, reduction), MACs per cycle and
cycles (the simulator's own cost formula, `simulator.costs.compute_cycles`). `--ranked N` prints the first N
schedules of the fused strategy's search with their priced bytes and cycles, and whether each one stages (the fused
strategy stages the first that does).
"""

from __future__ import annotations

import argparse
import collections

from planner import api
from planner.errors import PlanError
from simulator.costs import compute_cycles
from simulator.isa import Compute


def tiles(model: str, machine: str, strategy: str, top: int) -> list[str]:
    loaded, config = api.load(model, dtype="bf16"), api.machine(machine)
    program = api.plan(loaded, config, strategy=strategy)
    peak = config.tensor_engine.macs_per_cycle[program.dtype]
    per_op: dict[str, list[Compute]] = collections.defaultdict(list)
    for instruction in program.instructions:
        if isinstance(instruction, Compute) and instruction.engine == "tensor":
            per_op[instruction.node].append(instruction)
    rows, cycles_total, macs_total = [], 0, 0
    for op, computes in per_op.items():
        cycles = sum(compute_cycles(c, config, program.dtype) for c in computes)
        macs = sum(c.macs for c in computes)
        cycles_total, macs_total = cycles_total + cycles, macs_total + macs
        shapes = collections.Counter(c.mnk for c in computes).most_common(2)
        rows.append((cycles - macs / peak, op, len(computes), macs / max(cycles, 1), cycles, shapes))
    lines = [f"{model} {strategy} on {machine}: tensor engine {cycles_total:,} cycles for {macs_total:,} MACs, "
             f"{macs_total / max(cycles_total, 1):.1f} of {peak} MACs per cycle", "",
             "| op | computes | MACs/cycle | cycles | commonest tiles (mnk: count) |", "|---|---:|---:|---:|---|"]
    for _, op, count, rate, cycles, shapes in sorted(rows, reverse=True)[:top]:
        common = ", ".join(f"{mnk}: {n}" for mnk, n in shapes)
        lines.append(f"| {op} | {count} | {rate:.1f} | {cycles:,} | {common} |")
    return lines


def ranked(model: str, machine: str, count: int) -> list[str]:
    from planner.fused import stage
    from planner.schedule.search import search

    loaded, config = api.load(model, dtype="bf16"), api.machine(machine)
    lines = [f"{model} on {machine}: the fused search's first {count} schedules (traffic objective)", "",
             "| rank | groups | tensors kept | priced bytes | priced cycles | staged |",
             "|---:|---:|---:|---:|---:|---|"]
    for index, (schedule, price) in enumerate(search(loaded.lowered, config)[:count]):
        try:
            staged = f"yes, {len(stage(loaded.lowered, config, schedule).instructions):,} instructions"
        except PlanError as error:
            staged = f"no: {error}".replace("|", "\\|")
        lines.append(f"| {index} | {len(schedule.groups)} | {len(schedule.residency.kept)} | {price.dram_bytes:,} | "
                     f"{price.cycles:,} | {staged} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--machine", default="edge-npu")
    parser.add_argument("--strategy", default="fused", choices=sorted(api.STRATEGIES))
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--ranked", type=int, metavar="N", help="stage the search's first N schedules instead")
    args = parser.parse_args(argv)
    lines = ranked(args.model, args.machine, args.ranked) if args.ranked else tiles(args.model, args.machine,
                                                                                    args.strategy, args.top)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
