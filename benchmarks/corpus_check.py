"""What `scratchplan` makes of each corpus file: import, MACs, and per strategy and scratchpad the plan and `--check`.

    python benchmarks/corpus_check.py FILE.onnx --strategy fused --scratchpad 64KiB   # one job, one JSON line
    python benchmarks/corpus.py report DIR --rows rows.jsonl                          # every file, a Markdown table

Each step calls the functions behind the CLI (`load_graph`, `lower`, `totals`, `plan_fused` or `plan_baseline`,
`simulate`, `check`), so a row says what `scratchplan inspect` and `scratchplan simulate --check` say. The report runs
each (file, strategy, scratchpad) job in its own process with a time limit, so one slow or crashing plan costs its own
cell only, and appends every finished job to the rows file, so a long run can be stopped and resumed.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import io
import json
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# A MAC total within this fraction of the manifest's counts as right: FlopCounterMode counts each aten matmul and
# convolution exactly as 2 x MACs, and the ONNX graph has the same ones, so the totals agree exactly on every file
# measured; the slack only covers an exporter folding a tiny weight-only product (e.g. rotary frequencies) away.
MAC_TOLERANCE = 0.01
TIMEOUT_SECONDS = 900
STRATEGIES = ("baseline", "fused")
COLOUR_CODE = re.compile(r"\x1b\[[0-9;]*m")  # torch's ConversionError colours its "step 2/3"


def manifest_of(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.with_suffix(".json").read_text()))


def input_shapes(manifest: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shapes a user gives with --input-shape: only for inputs exported with dynamic axes."""
    return {name: tuple(manifest["inputs"][name]) for name in manifest.get("dynamic_axes", {})
            if name in manifest["inputs"]}


def macs_match(ours: int, expected: int) -> bool:
    return abs(ours - expected) <= MAC_TOLERANCE * max(expected, 1)


def evaluate(path: Path, machine_name: str = "edge-npu", jobs: Iterable[tuple[str, str]] = (("fused", "512KiB"),),
             check: bool = True) -> dict[str, Any]:
    """One file's row: {"imports": error line or None, "macs", "plans": {"STRATEGY SCRATCHPAD": {...}}}; stderr it
    prints (warnings included) is kept in "stderr", since bad input must be one line there."""
    from planner import api
    from planner.api import STRATEGIES as PLANNERS
    from planner.api import CheckFailed
    from planner.bounds import bounds
    from planner.errors import PlanError
    from planner.graph import load_graph
    from planner.inspect import totals
    from planner.ops import lower
    from simulator.machine_file import load_machine
    from simulator.timing import simulate

    manifest = manifest_of(path)
    shapes = input_shapes(manifest)
    row = _row_head(path, manifest)
    stderr = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(stderr), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            graph = load_graph(str(path), input_shapes=shapes)
            lowered = lower(graph)
            row["macs"] = totals(lowered).macs
        except PlanError as exc:
            row["imports"] = str(exc)
        except Exception as exc:  # a crash is a finding too: bad input must never show a traceback
            row["imports"] = f"crash: {type(exc).__name__}: {exc}".splitlines()[0]
        row["import_seconds"] = round(time.perf_counter() - start, 1)
        for strategy, scratchpad in jobs if row["imports"] is None else ():
            row["plans"][f"{strategy} {scratchpad}"] = plan = {}
            plan_start = time.perf_counter()
            try:
                machine = load_machine(machine_name, scratchpad=scratchpad)
                program = PLANNERS[strategy](lowered, machine)
                limits = bounds(lowered, machine)
                stats = simulate(program, machine).stats
                plan["x_compulsory"] = round((stats.dram_bytes_read + stats.dram_bytes_written)
                                             / limits.compulsory_bytes, 3)
                plan["plan_seconds"] = round(time.perf_counter() - plan_start, 1)
                if check:
                    api.check(api.load(str(path), input_shapes=shapes), program, machine)
                    plan["check"] = "pass"
            except (PlanError, CheckFailed) as exc:
                plan["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            except Exception as exc:
                plan["error"] = f"crash: {type(exc).__name__}: {exc}".splitlines()[0]
            plan["seconds"] = round(time.perf_counter() - plan_start, 1)
    row["stderr"] = (stderr.getvalue() + "".join(f"{w.category.__name__}: {w.message}\n" for w in caught))[:500]
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def _row_head(path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    return {"file": path.name, "model": manifest["model"], "exporter": manifest["exporter"],
            "opset": manifest["opset"], "manifest_macs": manifest["macs"], "imports": None, "macs": None, "plans": {}}


def evaluate_in_subprocess(path: Path, machine: str, job: tuple[str, str] | None, check: bool,
                           timeout_seconds: float = TIMEOUT_SECONDS) -> dict[str, Any]:
    """One job (None: import only) in its own process; a job past its time limit or a dead process is a row too."""
    command = [sys.executable, __file__, str(path), "--machine", machine]
    command += ["--import-only"] if job is None else ["--strategy", job[0], "--scratchpad", job[1]]
    command += [] if check else ["--no-check"]
    row = _row_head(path, manifest_of(path))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        if job is None:
            row["imports"] = f"timed out after {timeout_seconds:.0f} s"
        else:
            row["plans"][" ".join(job)] = {"error": f"timed out after {timeout_seconds:.0f} s",
                                           "seconds": timeout_seconds}
        return row
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        row["imports"] = f"process died ({done.returncode}): {last}"
        return row
    return dict(json.loads(done.stdout))


def report_table(folder: Path, machine: str, scratchpads: list[str], strategies: list[str], check: bool = True,
                 rows_file: Path | None = None, rows_only: bool = False,
                 timeout_seconds: float = TIMEOUT_SECONDS, only: Iterable[str] = ()) -> str:
    """Evaluate every file of `folder`, smallest MAC count first, one job per strategy and scratchpad; take the jobs
    `rows_file` (JSON lines of `corpus_check.py FILE`) already holds and append the ones run (none with `rows_only`,
    and only on files matching a glob of `only` when it names some: the others are listed from `rows_file`)."""
    from tqdm import tqdm

    files = sorted(p for p in folder.glob("*.onnx") if p.with_suffix(".json").exists())  # a manifest: made whole
    jobs: list[tuple[str, str] | None] = [(s, sp) for s in strategies for sp in scratchpads] or [None]
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if rows_file is not None and rows_file.exists():
        for line in rows_file.read_text().splitlines():
            row = json.loads(line)
            for key in row["plans"] or [""]:
                done[(row["file"], key)] = row
    rows = {}
    # Job by job in the order given, each over the files smallest first: a long run has the first strategy of every
    # file before the second of the largest.
    todo = [(path, job) for job in jobs for path in sorted(files, key=lambda p: (manifest_of(p)["macs"], p.name))]
    for path, job in tqdm(todo, unit="job"):
        key = (path.name, " ".join(job) if job else "")
        known = done.get(key) or (done.get((path.name, "")) if job is None else None)
        chosen = not only or any(fnmatch.fnmatch(path.name, pattern) for pattern in only)
        if known is None and chosen and not rows_only:
            known = evaluate_in_subprocess(path, machine, job, check, timeout_seconds)
            if rows_file is not None:
                with rows_file.open("a") as out:
                    out.write(json.dumps(known) + "\n")
        if known is None:  # with rows_only: a job not run yet
            known = _row_head(path, manifest_of(path)) | {"imports": "not run"}
            known["plans"] = {" ".join(job): {"error": "not run"}} if job else {}
        merged = rows.setdefault(path.name, known | {"plans": {}})
        if merged["imports"] == "not run" or (merged["imports"] is None and known["imports"] not in (None,
                                                                                                   "not run")):
            merged |= {k: known[k] for k in ("imports", "macs", "stderr") if k in known}
        merged["plans"] |= known["plans"]
        merged["stderr"] = merged.get("stderr") or known.get("stderr", "")
    return _table([rows[name] for name in sorted(rows)], folder, [" ".join(j) for j in jobs if j])


def _table(rows: list[dict[str, Any]], folder: Path, keys: list[str]) -> str:
    header = ["file", "exporter", "opset", "imports", "MACs (ours / torch)", *keys]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        macs = "" if row["macs"] is None else (f"{row['macs']:,} / {row['manifest_macs']:,}"
                                               + ("" if macs_match(row["macs"], row["manifest_macs"]) else " (wrong)"))
        imports = "yes" if row["imports"] is None else _cell(_short(row["imports"], folder / row["file"]))
        if row.get("stderr"):  # bad input must be one line: anything more on stderr is a finding of its own
            imports += f" (and on stderr: {_cell(row['stderr'].splitlines()[0])})"
        cells = [row["file"], row["exporter"], str(row["opset"]), imports, macs]
        cells += [_plan_cell(row["plans"].get(key)) for key in keys]
        lines.append("| " + " | ".join(cells) + " |")
    imported = sum(row["imports"] is None for row in rows)
    not_run = sum(row["imports"] == "not run" for row in rows)
    right = sum(row["macs"] is not None and macs_match(row["macs"], row["manifest_macs"]) for row in rows)
    lines += ["", f"{imported} of {len(rows) - not_run} import, {right} with the right MAC total"
              + (f" ({not_run} not run)." if not_run else ".")]
    for key in keys:
        plans = [row["plans"][key] for row in rows
                 if key in row["plans"] and row["plans"][key].get("error") != "not run"]
        planned = sum("x_compulsory" in p for p in plans)
        passed = sum(p.get("check") == "pass" for p in plans)
        timed_out = sum("timed out" in p.get("error", "") for p in plans)
        lines.append(f"{key}: {planned} of {len(plans)} planned, {passed} pass --check, {timed_out} timed out"
                     + (f" ({len(rows) - len(plans)} not run)." if len(plans) < len(rows) else "."))
    refused = folder / "not-made.txt"
    if refused.exists() and refused.read_text().strip():
        lines += ["", "Not made (the exporter or quantizer refused):", ""]
        lines += ["- " + COLOUR_CODE.sub("", line) for line in refused.read_text().splitlines()]
    return "\n".join(lines)


def _plan_cell(plan: dict[str, Any] | None) -> str:
    """`pass, 1.02x` | `1.02x, check: why` | `refused: why` | `timed out ...` | empty (not run)."""
    if plan is None:
        return ""
    ratio = f"{plan['x_compulsory']:.2f}x" if "x_compulsory" in plan else None
    if plan.get("error") == "not run":
        return "not run"
    if plan.get("check") == "pass":
        return f"pass, {ratio}"
    if ratio is None:
        error = plan.get("error", "")
        return _cell(error if error.startswith("timed out") else f"refused: {error}")
    return f"{ratio}, " + (_cell(plan["error"]) if "error" in plan else "not checked")


def _short(message: str, path: Path) -> str:
    """The message without the file name (the row has it) or the list of supported ops."""
    return message.removeprefix(f"{path}: ").split("; supported ops:")[0]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")[:160]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--machine", default="edge-npu")
    parser.add_argument("--strategy", action="append", default=[], choices=STRATEGIES)
    parser.add_argument("--scratchpad", action="append", default=[])
    parser.add_argument("--no-check", action="store_true")
    parser.add_argument("--import-only", action="store_true")
    args = parser.parse_args()
    jobs = [] if args.import_only else [(s, sp) for s in args.strategy or ["fused"]
                                        for sp in args.scratchpad or ["512KiB", "64KiB"]]
    print(json.dumps(evaluate(args.file, args.machine, jobs, check=not args.no_check)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
