"""Every zoo model on each preset, both strategies planned and simulated, against the bounds: issue 10's RESULTS table.

    python benchmarks/zoo_table.py [--quick] [--models cnn-small ...] [--machines edge-npu ...] [--timeout S]
                                   [--rows out/zoo/rows.jsonl] [--rows-only] [--reports out/zoo] [--retry]
    python benchmarks/zoo_table.py --models cnn-small --machines edge-npu        # the cheap smoke run
    python benchmarks/zoo_table.py --job MODEL MACHINE BATCH                      # one job, one JSON line

Each (model, machine, batch) job runs in its own process with a time limit and prints one JSON row; the table run
appends every finished row (a time-out or a crash is a row too) to `--rows`, so a stopped run resumes where it was,
and `--rows-only` reprints the table from the rows alone. Jobs run cheapest first: the -small variants, the full-size
models on inferentia2-core, resnet50 and mobilenet_v2 at batch 8 there, then the full-size models on edge-npu.

A job does what `scratchplan inspect` and `scratchplan compare --json` do, through `planner.api`, timing each step in
CPU seconds of its own process (`time.process_time`; the machine is shared): inspect (build, import and lower the
model, then `op_rows` and `totals`), the bounds (`api.model_limits`: compulsory, roofline, best unfused), then per
strategy `api.plan` and `api.simulate`. Its figures are the `Report`s `compare --json` prints (written whole, per-op
rows included, to `--reports`); nothing is recomputed here but ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SMALL = ("mlp-small", "cnn-small", "vit-small", "resnet18-small", "bert_base-small", "mobilenet_v2-small",
         "resnet50-small", "vgg16-small")
# full size, in the order edge-npu plans them fastest (issue 4's and 10's measured plan times)
FULL = ("mlp", "cnn", "vit", "mobilenet_v2", "resnet18", "resnet50", "bert_base", "vgg16")
MACHINES = ("edge-npu", "inferentia2-core")
BATCH8 = ("resnet50", "mobilenet_v2")  # the roomy target at batch 8
TIMEOUT_SECONDS = 3600
DTYPE = "bf16"


def default_jobs(quick: bool) -> list[tuple[str, str, int]]:
    jobs = [(m, machine, 1) for machine in MACHINES for m in SMALL]
    if quick:
        return jobs
    jobs += [(m, "inferentia2-core", 1) for m in FULL]
    jobs += [(m, "inferentia2-core", 8) for m in BATCH8]
    jobs += [(m, "edge-npu", 1) for m in FULL]
    return jobs


def run_job(model: str, machine_name: str, batch: int, reports: Path | None) -> dict[str, Any]:
    """Inspect, bound, plan and simulate one model on one machine; the row of the table, as a dict."""
    from planner import api
    from planner.inspect import op_rows, totals

    row: dict[str, Any] = {"model": model, "machine": machine_name, "batch": batch, "dtype": DTYPE}
    cpu: dict[str, float] = {}
    wall: dict[str, float] = {}

    def timed(step: str, work: Any) -> Any:
        started, started_wall = time.process_time(), time.perf_counter()
        value = work()
        cpu[step] = round(time.process_time() - started, 2)
        wall[step] = round(time.perf_counter() - started_wall, 2)
        return value

    config = api.machine(machine_name)

    def inspect() -> api.Model:
        loaded = api.load(model, batch=batch, dtype=DTYPE)
        op_rows(loaded.lowered)
        totals(loaded.lowered)
        return loaded

    loaded = timed("inspect", inspect)
    limits = timed("bounds", lambda: api.model_limits(loaded, config))
    documents = {}
    for strategy in ("baseline", "fused"):
        program = timed(f"{strategy}_plan", lambda s=strategy: api.plan(loaded, config, strategy=s))
        result = timed(f"{strategy}_simulate", lambda p=program: api.simulate(p, config))
        report = api.report_of(program, config, result, limits)
        documents[strategy] = report.to_dict()
        row[strategy] = {"dram_bytes": report.dram_bytes, "cycles": report.cycles,
                         "dma_transfers": report.dma_transfers, "dram_burst_bytes": report.dram_burst_bytes,
                         "busy_cycles": dict(report.busy_cycles), "instructions": report.instructions,
                         "peak_scratchpad_bytes": report.peak_scratchpad_bytes, "roles": role_bytes(program)}
    row |= {"compulsory_bytes": limits.compulsory_bytes, "best_unfused_bytes": limits.best_unfused_bytes,
            "roofline_cycles": limits.roofline_cycles, "cpu_seconds": cpu, "wall_seconds": wall}
    if reports is not None:
        reports.mkdir(parents=True, exist_ok=True)
        (reports / f"{model}.{machine_name}.b{batch}.json").write_text(json.dumps(documents) + "\n")
    return row


def role_bytes(program: Any) -> dict[str, dict[str, int]]:
    """Payload bytes the program's DMAs read and write, by the role of the DRAM tensor (input, constant, output,
    intermediate), and how many bytes of distinct tensors of each role they touch: where a plan's traffic goes. Read
    off the emitted instructions; the totals are the simulator's `dram_bytes_read` / `_written`."""
    from simulator.isa import DmaGather, DmaLoad, DmaStore

    tensors = {t.name: t for t in program.tensors}
    roles: dict[str, dict[str, int]] = {}
    touched: set[str] = set()
    for instruction in program.instructions:
        if isinstance(instruction, DmaLoad | DmaStore):
            name, moved = instruction.tensor, instruction.box.numel
            direction = "read" if isinstance(instruction, DmaLoad) else "written"
        elif isinstance(instruction, DmaGather):
            name, moved, direction = instruction.table, instruction.rows * instruction.row_box.numel, "read"
        else:
            continue
        tensor = tensors[name]
        entry = roles.setdefault(tensor.role, {"read": 0, "written": 0, "tensor_bytes": 0})
        entry[direction] += moved * tensor.elem_bytes
        if name not in touched:
            touched.add(name)
            entry["tensor_bytes"] += tensor.nbytes
    return roles


def job_in_subprocess(job: tuple[str, str, int], timeout: float, reports: Path | None) -> dict[str, Any]:
    """One job in its own process; past its time limit, or dying, it is a row with an error."""
    model, machine, batch = job
    command = [sys.executable, __file__, "--job", model, machine, str(batch)]
    command += ["--reports", str(reports)] if reports is not None else []
    row: dict[str, Any] = {"model": model, "machine": machine, "batch": batch, "dtype": DTYPE}
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return row | {"error": f"timed out after {timeout:.0f} s wall"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return row | {"error": f"process died ({done.returncode}): {last}"[:300]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1])) | {"job_wall_seconds":
                                                                     round(time.perf_counter() - started, 1)}


def commit() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "planner", "simulator", "models"],
                           capture_output=True, text=True).stdout.strip()
    return done.stdout.strip() + ("+dirty" if dirty else "")


def key_of(row: dict[str, Any]) -> tuple[str, str, int]:
    return row["model"], row["machine"], int(row["batch"])


def collect(jobs: list[tuple[str, str, int]], rows_file: Path | None, rows_only: bool, retry: bool, timeout: float,
            reports: Path | None) -> list[dict[str, Any]]:
    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    if rows_file is not None and rows_file.exists():
        for line in rows_file.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                if "error" not in row or key_of(row) not in done or "error" in done[key_of(row)]:
                    done[key_of(row)] = row  # a later row of the same job wins, unless it failed and one did not
    rows = []
    head = commit()
    for job in jobs:
        row = done.get(job)
        if (row is None or (retry and "error" in row)) and not rows_only:
            print(f"zoo_table: {' '.join(map(str, job))} ...", file=sys.stderr, flush=True)
            row = job_in_subprocess(job, timeout, reports) | {"commit": head}
            print(f"zoo_table: {' '.join(map(str, job))}: {row.get('error') or 'done'} "
                  f"({row.get('job_wall_seconds', '')} s wall)", file=sys.stderr, flush=True)
            if rows_file is not None:
                rows_file.parent.mkdir(parents=True, exist_ok=True)
                with rows_file.open("a") as out:
                    out.write(json.dumps(row) + "\n")
        if row is not None:
            rows.append(row)
    return rows


HEADER = ("model", "machine", "batch", "compulsory bytes", "best unfused bytes", "baseline x compulsory",
          "fused x compulsory", "fused x best unfused", "fused x roofline", "fused / baseline cycles",
          "plan s", "inspect s", "(plan+sim) / inspect", "commit")


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|---|---|" + "---:|" * (len(HEADER) - 3) + "---|"]
    for row in rows:
        head = [row["model"], row["machine"], str(row["batch"])]
        if "error" in row:
            cells = [row["error"].replace("|", "\\|")] + [""] * (len(HEADER) - 5) + [row.get("commit", "")]
            lines.append("| " + " | ".join(head + cells) + " |")
            continue
        base, fused, cpu = row["baseline"], row["fused"], row["cpu_seconds"]
        best = row["best_unfused_bytes"]
        plan_sim = cpu["fused_plan"] + cpu["fused_simulate"]
        cells = [f"{row['compulsory_bytes']:,}", f"{best:,}" if best else "",
                 f"{base['dram_bytes'] / row['compulsory_bytes']:.2f}",
                 f"{fused['dram_bytes'] / row['compulsory_bytes']:.2f}",
                 f"{fused['dram_bytes'] / best:.2f}" if best else "",
                 f"{fused['cycles'] / row['roofline_cycles']:.2f}", f"{fused['cycles'] / base['cycles']:.2f}",
                 f"{cpu['fused_plan']:.1f}", f"{cpu['inspect']:.2f}",
                 f"{plan_sim / cpu['inspect']:.1f}" if cpu["inspect"] > 0 else "", row.get("commit", "")]
        lines.append("| " + " | ".join(head + cells) + " |")
    return "\n".join([*lines, "", *findings(rows)])


def findings(rows: list[dict[str, Any]]) -> list[str]:
    """The invariants the issue asks for, checked on every finished row: a bound beaten, fused above the baseline's
    bytes or best unfused, fused cycles more than 1% above the baseline's."""
    found = []
    for row in rows:
        if "error" in row:
            continue
        name = f"{row['model']} on {row['machine']} at batch {row['batch']}"
        best = row["best_unfused_bytes"]
        for strategy in ("baseline", "fused"):
            figures = row[strategy]
            if figures["dram_bytes"] < row["compulsory_bytes"]:
                found.append(f"- BOUND BEATEN: {name}: {strategy} moves {figures['dram_bytes']:,} bytes, below "
                             f"compulsory {row['compulsory_bytes']:,}")
            if figures["cycles"] < row["roofline_cycles"]:
                found.append(f"- BOUND BEATEN: {name}: {strategy} takes {figures['cycles']:,} cycles, below the "
                             f"roofline {row['roofline_cycles']:,}")
        base, fused = row["baseline"], row["fused"]
        if best and base["dram_bytes"] < best:
            found.append(f"- BOUND BEATEN: {name}: the baseline (one op at a time) moves {base['dram_bytes']:,} bytes, "
                         f"below best unfused {best:,}")
        if fused["dram_bytes"] > base["dram_bytes"]:
            found.append(f"- fused above baseline bytes: {name}: {fused['dram_bytes']:,} > {base['dram_bytes']:,}")
        if best and fused["dram_bytes"] > best:
            found.append(f"- fused above best unfused: {name}: {fused['dram_bytes']:,} > {best:,} "
                         f"({fused['dram_bytes'] / best:.2f}x)")
        if fused["cycles"] > 1.01 * base["cycles"]:
            found.append(f"- fused slower than the baseline: {name}: {fused['cycles']:,} > {base['cycles']:,} cycles "
                         f"({fused['cycles'] / base['cycles']:.2f}x)")
    return found or ["No invariant broken in the rows above."]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", nargs=3, metavar=("MODEL", "MACHINE", "BATCH"), help="run one job, print its row")
    parser.add_argument("--quick", action="store_true", help="only the -small variants, batch 1")
    parser.add_argument("--models", nargs="+", help="only these models (zoo names, -small for the small variant)")
    parser.add_argument("--machines", nargs="+", help="only these presets")
    parser.add_argument("--batch", type=int, nargs="+", help="only these batch sizes")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_SECONDS, help="wall seconds per job")
    parser.add_argument("--rows", type=Path, help="JSON lines of jobs already run: reuse them, append new ones")
    parser.add_argument("--rows-only", action="store_true", help="with --rows: reprint the table, run nothing")
    parser.add_argument("--retry", action="store_true", help="rerun the jobs whose row is an error")
    parser.add_argument("--reports", type=Path, help="write each job's `compare --json` document here")
    args = parser.parse_args(argv)
    if args.job:
        model, machine, batch = args.job
        print(json.dumps(run_job(model, machine, int(batch), args.reports)))
        return 0
    jobs = default_jobs(args.quick)
    if args.models:
        known = {job[0] for job in jobs}
        jobs = [job for job in jobs if job[0] in args.models]
        jobs += [(m, machine, 1) for m in args.models if m not in known for machine in MACHINES]
    jobs = [job for job in jobs if (not args.machines or job[1] in args.machines)
            and (not args.batch or job[2] in args.batch)]
    rows = collect(jobs, args.rows, args.rows_only, args.retry, args.timeout, args.reports)
    print("bf16; bytes and cycles simulated from the emitted programs; seconds are CPU seconds of the job's process\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
