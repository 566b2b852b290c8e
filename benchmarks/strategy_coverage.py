"""What the `planner.testing` strategies reach: the share of fused plans with fusion groups, multi-tile groups,
recompute, cache, residency, line buffers and split reductions, per strategy, and how often a fused plan moves more
than the best unfused bound.

    python benchmarks/strategy_coverage.py [--examples 40] [--strategies fusion_cases onnx_models] [--unfused]

Each example is drawn by hypothesis (derandomized, so a run is reproducible), planned with the fused strategy and
simulated (DRAM bytes come from the simulated program); no functional run, so it is quicker than the property tests.
`--unfused` also counts examples whose fused traffic exceeds `planner.best_unfused` and prints the first few.
"""

from __future__ import annotations

import argparse
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.best_unfused import best_unfused
from planner.errors import PlanError
from planner.fused import plan_fused
from planner.graph import load_graph
from planner.ops import lower
from planner.testing import Coverage, describe, fusion_cases, machines, onnx_models, split_cases
from planner.testing.coverage import FEATURES
from planner.testing.invariants import traffic_bytes
from simulator.timing import simulate

STRATEGIES = {"fusion_cases": fusion_cases(), "onnx_models": st.tuples(onnx_models(), machines()),
              **{f"fusion_cases:{regime}": fusion_cases(regimes=(regime,)) for regime in ("rows", "tight")},
              "split_cases": split_cases()}


def measure(name: str, examples: int, unfused: bool) -> tuple[Coverage, int, int, list[str]]:
    coverage, compared, above, first = Coverage(), 0, 0, []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(STRATEGIES[name])
    def run(case) -> None:
        nonlocal compared, above
        model, machine = case
        lowered = lower(load_graph(model))
        try:
            program = plan_fused(lowered, machine)
        except PlanError:
            coverage.add(None)
            return
        coverage.add(program)
        if not unfused:
            return
        fused_bytes = traffic_bytes(simulate(program, machine).stats)
        bound = best_unfused(lowered, machine).dram_bytes
        compared += 1
        if fused_bytes > bound:
            above += 1
            if len(first) < 2:
                first.append(f"fused {fused_bytes:,} > best unfused {bound:,} bytes\n{describe(model, machine)}")

    run()
    return coverage, compared, above, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=40)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    parser.add_argument("--unfused", action="store_true", help="also compare fused traffic with best unfused")
    args = parser.parse_args()
    print("| strategy | examples | planned | group | multi-tile group | recompute | cache | residency "
          "| line buffer | split | fused > best unfused | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    cases = []
    for name in args.strategies:
        start = time.perf_counter()
        coverage, compared, above, first = measure(name, args.examples, args.unfused)
        shares = " | ".join(f"{coverage.share(f):.0%}" for f in FEATURES)
        unfused = f"{above} of {compared}" if args.unfused else "-"
        print(f"| {name} | {coverage.examples} | {coverage.planned} | {shares} | {unfused} | "
              f"{time.perf_counter() - start:.0f} |")
        cases += first
    for case in cases:
        print(f"\n{case}")


if __name__ == "__main__":
    main()
