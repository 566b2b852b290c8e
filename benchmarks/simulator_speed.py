"""Time the timing simulator on synthetic programs of 10^4 to 3 * 10^5 instructions.

    python benchmarks/simulator_speed.py [--repeat N]

Each program is a double-buffered chain over tiles: load tile i + 1 while computing tile i on the tensor engine,
store each result, release each buffer; loads and stores rotate over the DMA queues. Prints a Markdown table; wall
and CPU times are medians of `--repeat` runs of `simulate` alone (program building excluded). On a shared machine the
CPU seconds (`time.process_time`) are the steadier figure; instructions per second is per CPU second.
"""

from __future__ import annotations

import argparse
import statistics
import time

from simulator.isa import Box, Buffer, Compute, DmaLoad, DmaStore, DramTensor, Instruction, Operand, Program, Release
from simulator.machine import (
    DmaConfig,
    DramConfig,
    MachineConfig,
    ScratchpadConfig,
    TensorEngineConfig,
    VectorEngineConfig,
)
from simulator.timing import simulate

TILE_ROWS, COLS, OUT_COLS = 128, 512, 128  # a tile: 128 x 512 bf16 in (128 KiB), 128 x 128 out


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| instructions | DMA queues | simulated cycles | stall cycles | wall s | CPU s | instructions / CPU s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in (10_000, 100_000, 300_000):
        for queues in (2, 4):
            program, target = chain(size, queues), machine(queues)
            seconds, cpu_seconds = [], []
            for _ in range(args.repeat):
                start, cpu_start = time.perf_counter(), time.process_time()
                stats = simulate(program, target).stats
                seconds.append(time.perf_counter() - start)
                cpu_seconds.append(time.process_time() - cpu_start)
            wall, cpu = statistics.median(seconds), statistics.median(cpu_seconds)
            count = len(program.instructions)
            print(f"| {count:,} | {queues} | {stats.total_cycles:,} | {stats.stall_cycles:,} | {wall:.2f} | "
                  f"{cpu:.2f} | {count / cpu:,.0f} |")


if __name__ == "__main__":
    main()
