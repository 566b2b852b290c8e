"""How long `planner.api.evaluate` takes in-process: the first call, the same model again, and new variants.

    python benchmarks/api_speed.py [--variants N]

The model is the zoo's three-conv CNN at 32x32 (`cnn`) on edge-npu. "same model again" hits the report cache (a
report is a pure function of the model bytes, machine and strategy); "new variant" is what a NAS loop pays per
candidate: a CNN with other channel widths, loaded, lowered, planned and simulated from scratch (with the best
unfused bound searched too, and without it; the bound's search alone; the per-op baseline strategy instead of the
fused planner). CPU ms is this process's own time, a fairer figure on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import models
from planner import api


def _timed(call) -> tuple[float, float]:
    """Wall and CPU milliseconds of one call (CPU of this process only: what other jobs on a shared machine take is
    left out)."""
    start, cpu = time.perf_counter(), time.process_time()
    call()
    return (time.perf_counter() - start) * 1000, (time.process_time() - cpu) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=5)
    args = parser.parse_args()
    rows = [("first call (imports warm, caches cold)", [_timed(lambda: api.evaluate("cnn", "edge-npu"))])]
    rows.append(("same model again (cached report)", [_timed(lambda: api.evaluate("cnn", "edge-npu"))
                                                       for _ in range(20)]))
    proto = models.build("cnn")
    api.evaluate(proto, "edge-npu")
    rows.append(("same ModelProto again (hash + cached report)", [_timed(lambda: api.evaluate(proto, "edge-npu"))
                                                                   for _ in range(10)]))
    variants = [models.build("cnn", channels=(8 + 4 * i, 16 + 8 * i, 32 + 16 * i)) for i in range(args.variants)]
    rows.append(("new variant (other channel widths)", [_timed(lambda v=v: api.evaluate(v, "edge-npu"))
                                                         for v in variants]))
    others = [models.build("cnn", channels=(10 + 4 * i, 20 + 8 * i, 36 + 16 * i)) for i in range(args.variants)]
    rows.append(("new variant, best_unfused=False", [_timed(lambda v=v: api.evaluate(v, "edge-npu",
                                                                                    best_unfused=False))
                                                      for v in others]))
    # where a new variant's time goes: the bound's search alone, and the per-op baseline instead of the fused planner
    bounded = [api.load(models.build("cnn", channels=(12 + 4 * i, 24 + 8 * i, 40 + 16 * i)))
               for i in range(args.variants)]
    config = api.machine("edge-npu")
    rows.append(("best unfused bound alone, new variant", [_timed(lambda m=m: api.model_limits(m, config))
                                                            for m in bounded]))
    plain = [models.build("cnn", channels=(14 + 4 * i, 28 + 8 * i, 44 + 16 * i)) for i in range(args.variants)]
    rows.append(("new variant, strategy=baseline, best_unfused=False",
                 [_timed(lambda v=v: api.evaluate(v, "edge-npu", strategy="baseline", best_unfused=False))
                  for v in plain]))
    print("| evaluate, cnn 3x32x32 on edge-npu | calls | median ms | min ms | max ms | median CPU ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, calls in rows:
        times, cpu = [wall for wall, _ in calls], statistics.median(cpu for _, cpu in calls)
        print(f"| {name} | {len(times)} | {statistics.median(times):.1f} | {min(times):.1f} | {max(times):.1f} | "
              f"{cpu:.1f} |")


if __name__ == "__main__":
    main()
