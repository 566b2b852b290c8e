"""Time the timing simulator before and after issue 12's speed-up, in the same run, on the same programs.

    python benchmarks/simulator_speed.py [--repeat N] [--sizes 10000,100000,300000]

Programs: synthetic double-buffered chains of 10^4 to 3 * 10^5 instructions (load tile i + 1 while computing tile i
on the tensor engine, store each result, release each buffer; loads and stores rotate over the DMA queues), and a few
real plans (the stored programs of tests/simulator/golden/timing). Each is simulated by

- `before`: the simulator as it was (benchmarks/simulator_reference, a frozen copy of main at 02c8f0d);
- `python`: today's `simulator.timing.simulate` with the event loop in Python;
- `after`: today's `simulate` as it runs by default: the compiled loop (`simulator.events_jit`) from
  `simulator.events.COMPILED_FROM` instructions on, when numba (the `fast` extra) is installed.

Every run's schedule and stats are checked equal to `before`'s. Times are medians of `--repeat` runs of the simulation
alone (program building excluded), in CPU seconds (`time.process_time`: steadier than wall time on a shared machine);
instructions per second is per CPU second. The ratios compare runs of the same program in the same process.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from simulator import events
from simulator.costs import instruction_costs
from simulator.isa import Box, Buffer, Compute, DmaLoad, DmaStore, DramTensor, Instruction, Operand, Program, Release
from simulator.machine import (
    DmaConfig,
    DramConfig,
    MachineConfig,
    ScratchpadConfig,
    TensorEngineConfig,
    VectorEngineConfig,
)
from simulator.machine_file import machine_from_dict
from simulator.plan_file import decode_program
from simulator.timing import simulate

TILE_ROWS, COLS, OUT_COLS = 128, 512, 128  # a tile: 128 x 512 bf16 in (128 KiB), 128 x 128 out
GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "simulator" / "golden" / "timing"
REAL = ("resnet18-small.baseline.inferentia2-core", "resnet18-small.fused.edge-npu",
        "bert_base-small.baseline.edge-npu")


def machine(queues: int) -> MachineConfig:
    """A NeuronCore-like core: 128 x 128 bf16 array at 1.4 GHz, ~290 B/cycle of HBM, `queues` DMA engines."""
    return MachineConfig("bench", 1.4e9, ScratchpadConfig(24 << 20, 128, 64), DramConfig(290.0, 700),
                         DmaConfig(queues, 4, 64, 8, 128.0),
                         TensorEngineConfig(128, 128, {"fp32": 4096, "bf16": 16384, "fp16": 16384, "int8": 32768},
                                            128, 128),
                         VectorEngineConfig(128))


def chain(instructions: int, queues: int) -> Program:
    """About `instructions` instructions: five per tile (load, compute, store, two releases)."""
    tiles = max(1, instructions // 5)
    x = DramTensor("x", (tiles * TILE_ROWS, COLS), "float32", 2, "input")
    y = DramTensor("y", (tiles * TILE_ROWS, OUT_COLS), "float32", 2, "output")
    inputs = [Buffer(f"in{k}", k * COLS * 2, (TILE_ROWS, COLS), (0, 1), 2) for k in range(2)]
    outputs = [Buffer(f"out{k}", 4 * COLS + k * OUT_COLS * 2, (TILE_ROWS, OUT_COLS), (0, 1), 2) for k in range(2)]
    program: list[Instruction] = []
    release_in: dict[int, int] = {}
    release_out: dict[int, int] = {}
    loads: dict[int, int] = {}

    def add(make: type, *fields: object, **named: object) -> int:
        program.append(make(len(program), *fields, **named))
        return len(program) - 1

    def load(tile: int) -> int:
        rows = Box((tile * TILE_ROWS, 0), ((tile + 1) * TILE_ROWS, COLS))
        deps = (release_in[tile - 2],) if tile >= 2 else ()
        return add(DmaLoad, deps, (2 * tile) % queues, "x", rows, inputs[tile % 2].name, (0, 0), op=f"tile{tile}")

    loads[0] = load(0)
    for tile in range(tiles):
        if tile + 1 < tiles:
            loads[tile + 1] = load(tile + 1)
        source = Operand("x", Box((tile * TILE_ROWS, 0), ((tile + 1) * TILE_ROWS, COLS)), inputs[tile % 2].name,
                         (0, 0))
        target = Operand("y", Box((tile * TILE_ROWS, 0), ((tile + 1) * TILE_ROWS, OUT_COLS)), outputs[tile % 2].name,
                         (0, 0))
        deps = (loads[tile], *((release_out[tile - 2],) if tile >= 2 else ()))
        compute = add(Compute, deps, "tensor", f"tile{tile}", "MatMul", (), (source, None), target,
                      mnk=(TILE_ROWS, OUT_COLS, COLS))
        store = add(DmaStore, (compute,), (2 * tile + 1) % queues, target.buffer, (0, 0), "y", target.box,
                    op=f"tile{tile}")
        release_in[tile] = add(Release, (compute,), inputs[tile % 2].name)
        release_out[tile] = add(Release, (store,), outputs[tile % 2].name)
    return Program("chain", "synthetic", "bench", (x, y), (*inputs, *outputs), tuple(program), ("y",), "bf16")


def stored(case: str) -> tuple[Program, MachineConfig]:
    document = json.loads(gzip.decompress((GOLDEN / f"{case}.json.gz").read_bytes()))
    return decode_program(json.loads(document["program"])), machine_from_dict(yaml.safe_load(document["machine"]))


def cpu_seconds(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    seconds, result = [], None
    for _ in range(repeat):
        start = time.process_time()
        result = run()
        seconds.append(time.process_time() - start)
    return statistics.median(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="10000,100000,300000", help="synthetic chain sizes, comma-separated")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from simulator_reference.timing import simulate as simulate_before

    try:
        from simulator import events_jit
        compiled = events_jit.numba is not None
    except ImportError:
        compiled = False
    programs = [(f"chain {size:,} / {queues} queues", chain(size, queues), machine(queues))
                for size in map(int, args.sizes.split(",")) for queues in (2, 4)]
    programs += [(case, *stored(case)) for case in REAL if (GOLDEN / f"{case}.json.gz").exists()]
    if compiled:  # load (or compile) the compiled loop once, before any timing
        _, first, first_machine = programs[0]
        events_jit.schedule(instruction_costs(first, first_machine), first_machine)
    print(f"compiled loop: {'numba ' + events_jit.numba.__version__ if compiled else 'not installed (python only)'}; "
          f"used from {events.COMPILED_FROM:,} instructions on; CPU seconds, median of {args.repeat}")
    print()
    print("| program | instructions | simulated cycles | before s | python s | after s | before instr/s | "
          "after instr/s | after / before |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    threshold = events.COMPILED_FROM
    for name, program, target in programs:
        before, old = cpu_seconds(lambda p=program, m=target: simulate_before(p, m), args.repeat)
        events.COMPILED_FROM = 1 << 62  # the Python loop only
        python, new_python = cpu_seconds(lambda p=program, m=target: simulate(p, m), args.repeat)
        events.COMPILED_FROM = threshold
        after, new = cpu_seconds(lambda p=program, m=target: simulate(p, m), args.repeat)
        for result in (new_python, new):
            # to_dict: the reference's classes are its own copies, so compare the figures, not the objects
            if (result.start_cycles, result.end_cycles, result.stats.to_dict(), result.energy.to_dict()) != (
                    old.start_cycles, old.end_cycles, old.stats.to_dict(), old.energy.to_dict()):
                raise SystemExit(f"{name}: today's simulator disagrees with the reference")
        count = len(program.instructions)
        print(f"| {name} | {count:,} | {new.stats.total_cycles:,} | {before:.3f} | {python:.3f} | {after:.3f} | "
              f"{count / before:,.0f} | {count / after:,.0f} | {before / after:.1f}x |")


if __name__ == "__main__":
    main()
