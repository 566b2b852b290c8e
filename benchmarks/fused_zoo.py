"""The fused plan of full-size zoo models at chosen scratchpads, on this checkout and (optionally) another, same run.

    python benchmarks/fused_zoo.py [--models resnet18 bert_base ...] [--scratchpads preset 64KiB]
                                   [--machine edge-npu] [--dtype bf16] [--against DIR] [--timeout S]
    python benchmarks/fused_zoo.py --job MODEL MACHINE SCRATCHPAD DTYPE       # one job, one JSON line

Each row is one process: load the model, `api.plan` (fused) timed in CPU seconds of that process (the machine is
shared), then `api.simulate` of the emitted program. `--against DIR` runs every row again with DIR first on
`sys.path` (`git archive COMMIT | tar -x -C DIR` makes one), interleaved with this checkout's rows, and prints the
ratios: what a change did to bytes, cycles and plan time, measured under the same load. No bounds are searched here
(benchmarks/zoo_table.py does that).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("mlp", "cnn", "vit", "mobilenet_v2", "resnet18", "resnet50", "bert_base", "vgg16")


def job(model: str, machine: str, scratchpad: str, dtype: str) -> dict[str, float]:
    from planner import api

    config = api.machine(machine, scratchpad=None if scratchpad == "preset" else scratchpad)
    loaded = api.load(model, dtype=dtype)
    started = time.process_time()
    program = api.plan(loaded, config)
    seconds = time.process_time() - started
    stats = api.simulate(program, config).stats
    return {"bytes": stats.dram_bytes_read + stats.dram_bytes_written, "cycles": stats.total_cycles,
            "plan_s": round(seconds, 1)}


def run(root: Path, args: argparse.Namespace, model: str, scratchpad: str) -> dict[str, float] | str:
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, str(Path(__file__).resolve()), "--job", model, args.machine, scratchpad, args.dtype]
    try:
        done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, timeout=args.timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return f"timed out after {args.timeout} s"
    if done.returncode:
        lines = done.stderr.strip().splitlines()
        return f"failed: {lines[-1] if lines else done.returncode}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--scratchpads", nargs="+", default=["preset"],
                        help="sizes such as 512KiB 64KiB, or `preset` for the machine's own (the default)")
    parser.add_argument("--machine", default="edge-npu")
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--against", type=Path, help="another checkout's root, run row by row beside this one")
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--job", nargs=4, metavar=("MODEL", "MACHINE", "SCRATCHPAD", "DTYPE"))
    args = parser.parse_args()
    if args.job:
        print(json.dumps(job(*args.job)))
        return
    print(f"{args.machine}, {args.dtype}, batch 1; bytes and cycles simulated from the emitted fused programs; plan s "
          "is CPU seconds")
    print()
    header = "| model | scratchpad | bytes | cycles | plan s |"
    rule = "|---|---|---:|---:|---:|"
    if args.against:
        header += " before bytes | before cycles | before plan s | bytes ratio | cycles ratio | plan s ratio |"
        rule += "---:|---:|---:|---:|---:|---:|"
    print(header)
    print(rule)
    for scratchpad in args.scratchpads:
        for model in args.models:
            after = run(ROOT, args, model, scratchpad)
            cells = [model, scratchpad]
            rows = [after] + ([run(args.against.resolve(), args, model, scratchpad)] if args.against else [])
            for result in rows:
                if isinstance(result, str):
                    cells += [result, "", ""]
                else:
                    cells += [f"{int(result['bytes']):,}", f"{int(result['cycles']):,}", f"{result['plan_s']}"]
            if args.against and not any(isinstance(result, str) for result in rows):
                now, then = rows
                assert not isinstance(now, str) and not isinstance(then, str)
                cells += [f"{now[key] / max(0.1, then[key]):.2f}" for key in ("bytes", "cycles", "plan_s")]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
