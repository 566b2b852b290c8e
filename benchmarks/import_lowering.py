"""Time ONNX import (check, fold, shape inference) and polyhedral lowering for every zoo model.

    python benchmarks/import_lowering.py [--small] [--repeat N]

Prints a Markdown table. Times are wall-clock medians on whatever this machine is doing; compare rows taken in the
same run, not across runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import models
from planner.graph import load_graph
from planner.ops import lower


def measure(name: str, small: bool, repeat: int) -> dict[str, float | int | str]:
    model = models.build(name, small=small)
    import_seconds, lower_seconds = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        graph = load_graph(model, dtype="bf16")
        middle = time.perf_counter()
        lowered = lower(graph)
        import_seconds.append(middle - start)
        lower_seconds.append(time.perf_counter() - middle)
    return {"model": name + ("-small" if small else ""), "nodes": len(graph.nodes),
            "statements": len(lowered.statements), "aliases": len(lowered.aliases), "gmacs": lowered.macs / 1e9,
            "import_s": statistics.median(import_seconds), "lower_s": statistics.median(lower_seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the small variants instead of the full-size models")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| model | nodes | statements | views | GMACs | import s | lower s | total s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in models.ZOO:
        row = measure(name, args.small, args.repeat)
        print(f"| {row['model']} | {row['nodes']} | {row['statements']} | {row['aliases']} | {row['gmacs']:.3f} | "
              f"{row['import_s']:.2f} | {row['lower_s']:.2f} | {row['import_s'] + row['lower_s']:.2f} |")


if __name__ == "__main__":
    main()
