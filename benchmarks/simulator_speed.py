"""Time the timing simulator before and after issue 12's speed-up, in the same run, on the same programs.

    python benchmarks/simulator_speed.py [--repeat N] [--sizes 10000,100000,300000] [--before COMMIT]

Programs: synthetic double-buffered chains of 10^4 to 3 * 10^5 instructions (load tile i + 1 while computing tile i
on the tensor engine, store each result, release each buffer; loads and stores rotate over the DMA queues), and a few
real plans (the stored programs of tests/simulator/golden/timing). Each is simulated by

- `before`: the simulator as it was at `--before` (default 02c8f0d, main before the speed-up, when the golden
  figures were frozen), taken from git history (`git archive COMMIT simulator` into a temporary directory) and run
  in a child process that imports it instead of today's package; it reads each program from its plan file;
- `python`: today's `simulator.timing.simulate` with the event loop in Python;
- `after`: today's `simulate` as it runs by default: the compiled loop (`simulator.events_jit`) from
  `simulator.events.COMPILED_FROM` instructions on, when numba (the `fast` extra) is installed.

Every run's schedule, stats and energy are checked equal to `before`'s. Times are medians of `--repeat` runs of the
simulation alone (program building and decoding excluded), in CPU seconds (`time.process_time`: steadier than wall
time on a shared machine); instructions per second is per CPU second. `before` runs in its own process, a few
seconds before the others, in the same run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
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
from simulator.machine_file import machine_from_dict, machine_to_yaml
from simulator.plan_file import decode_program, program_to_json
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


def figures(result: Any) -> dict[str, Any]:
    """What must agree bit for bit, as JSON values."""
    return {"start": list(result.start_cycles), "end": list(result.end_cycles), "stats": result.stats.to_dict(),
            "energy": result.energy.to_dict()}


def run_before(commit: str, programs: list[tuple[str, Program, MachineConfig]], repeat: int) -> list[dict[str, Any]]:
    """Each program's CPU seconds and figures under the simulator of `commit`, in a child process."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="simulator-before-") as folder:
        archive = subprocess.run(["git", "-C", str(root), "archive", commit, "simulator"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        manifest = []
        for n, (name, program, target) in enumerate(programs):
            (Path(folder) / f"{n}.json").write_text(program_to_json(program))
            (Path(folder) / f"{n}.yaml").write_text(machine_to_yaml(target))
            manifest.append(name)
        (Path(folder) / "manifest.json").write_text(json.dumps(manifest))
        environment = {**os.environ, "PYTHONPATH": folder}  # the old package shadows today's
        done = subprocess.run([sys.executable, __file__, "--child", folder, "--repeat", str(repeat)], env=environment,
                              check=True, capture_output=True, text=True)
    return [json.loads(line) for line in done.stdout.splitlines()]


def child(folder: Path, repeat: int) -> None:
    """`--child`: time the programs of `folder` with the `simulator` package found there, one JSON line each."""
    import simulator
    from simulator.machine_file import machine_from_dict as old_machine
    from simulator.plan_file import decode_program as old_decode
    from simulator.timing import simulate as old_simulate

    if not Path(simulator.__file__).resolve().is_relative_to(folder.resolve()):
        raise SystemExit(f"--child: imported {simulator.__file__}, not the package in {folder}")
    for n, _ in enumerate(json.loads((folder / "manifest.json").read_text())):
        program = old_decode(json.loads((folder / f"{n}.json").read_text()))
        target = old_machine(yaml.safe_load((folder / f"{n}.yaml").read_text()))
        seconds, result = cpu_seconds(lambda p=program, m=target: old_simulate(p, m), repeat)
        print(json.dumps({"seconds": seconds, **figures(result)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="10000,100000,300000", help="synthetic chain sizes, comma-separated")
    parser.add_argument("--before", default="02c8f0d", metavar="COMMIT",
                        help="the commit whose simulator is `before` (default: main before the speed-up)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeat)
        return
    try:
        from simulator import events_jit
        compiled = events_jit.numba is not None
    except ImportError:
        compiled = False
    programs = [(f"chain {size:,} / {queues} queues", chain(size, queues), machine(queues))
                for size in map(int, args.sizes.split(",")) for queues in (2, 4)]
    programs += [(case, *stored(case)) for case in REAL if (GOLDEN / f"{case}.json.gz").exists()]
    befores = run_before(args.before, programs, args.repeat)
    if compiled:  # load (or compile) the compiled loop once, before any timing
        _, first, first_machine = programs[0]
        events_jit.schedule(instruction_costs(first, first_machine), first_machine)
    print(f"before: simulator at {args.before}; compiled loop: "
          f"{'numba ' + events_jit.numba.__version__ if compiled else 'not installed (python only)'}; "
          f"used from {events.COMPILED_FROM:,} instructions on; CPU seconds, median of {args.repeat}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print()
    print("| program | instructions | simulated cycles | before s | python s | after s | before instr/s | "
          "after instr/s | after / before |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    threshold = events.COMPILED_FROM
    for (name, program, target), old in zip(programs, befores, strict=True):
        before = old.pop("seconds")
        events.COMPILED_FROM = 1 << 62  # the Python loop only
        python, new_python = cpu_seconds(lambda p=program, m=target: simulate(p, m), args.repeat)
        events.COMPILED_FROM = threshold
        after, new = cpu_seconds(lambda p=program, m=target: simulate(p, m), args.repeat)
        for result in (new_python, new):
            if figures(result) != old:
                raise SystemExit(f"{name}: today's simulator disagrees with the one at {args.before}")
        count = len(program.instructions)
        print(f"| {name} | {count:,} | {new.stats.total_cycles:,} | {before:.3f} | {python:.3f} | {after:.3f} | "
              f"{count / before:,.0f} | {count / after:,.0f} | {before / after:.1f}x |")


if __name__ == "__main__":
    main()
