"""What `scratchplan` makes of each corpus file: import, MACs, the fused plan on a machine, and `--check`.

    python benchmarks/corpus_check.py FILE.onnx [--scratchpad 64KiB ...]   # one file, one JSON line
    python benchmarks/corpus.py report DIR                                  # every file, a Markdown table

Each step calls the functions behind the CLI (`load_graph`, `lower`, `totals`, `plan_fused`, `simulate`,
`check_program`), so a row says what `scratchplan inspect` and `scratchplan simulate --check` say. The report runs each
file in its own process with a time limit, so one slow or crashing model costs its own row only.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

# A MAC total within this fraction of the manifest's counts as right: FlopCounterMode counts each aten matmul and
# convolution exactly as 2 x MACs, and the ONNX graph has the same ones, so the totals agree exactly on every file
# measured; the slack only covers an exporter folding a tiny weight-only product (e.g. rotary frequencies) away.
MAC_TOLERANCE = 0.01
TIMEOUT_SECONDS = 900


def manifest_of(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.with_suffix(".json").read_text()))


def input_shapes(manifest: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shapes a user gives with --input-shape: only for inputs exported with dynamic axes."""
    return {name: tuple(manifest["inputs"][name]) for name in manifest.get("dynamic_axes", {})
            if name in manifest["inputs"]}


def macs_match(ours: int, expected: int) -> bool:
    return abs(ours - expected) <= MAC_TOLERANCE * max(expected, 1)


def evaluate(path: Path, machine_name: str = "edge-npu", scratchpads: tuple[str, ...] = ("512KiB", "64KiB"),
             check: bool = True) -> dict[str, Any]:
    """One file's row: {"imports": error line or None, "macs", "plans": {scratchpad: {...}}}; stderr it prints
    (warnings included) is kept in "stderr", since bad input must be one line there."""
    from planner import api
    from planner.api import CheckFailed
    from planner.bounds import bounds
    from planner.errors import PlanError
    from planner.fused import plan_fused
    from planner.graph import load_graph
    from planner.inspect import totals
    from planner.ops import lower
    from simulator.machine_file import load_machine
    from simulator.timing import simulate

    manifest = manifest_of(path)
    shapes = input_shapes(manifest)
    row: dict[str, Any] = {"file": path.name, "model": manifest["model"], "exporter": manifest["exporter"],
                           "opset": manifest["opset"], "manifest_macs": manifest["macs"], "imports": None,
                           "macs": None, "plans": {}}
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
        for scratchpad in scratchpads if row["imports"] is None else ():
            row["plans"][scratchpad] = plan = {}
            try:
                machine = load_machine(machine_name, scratchpad=scratchpad)
                program = plan_fused(lowered, machine)
                limits = bounds(lowered, machine)
                stats = simulate(program, machine).stats
                plan["x_compulsory"] = round((stats.dram_bytes_read + stats.dram_bytes_written)
                                             / limits.compulsory_bytes, 3)
                if check:
                    api.check(api.load(str(path), input_shapes=shapes), program, machine)
                    plan["check"] = "pass"
            except (PlanError, CheckFailed) as exc:
                plan["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            except Exception as exc:
                plan["error"] = f"crash: {type(exc).__name__}: {exc}".splitlines()[0]
    row["stderr"] = (stderr.getvalue() + "".join(f"{w.category.__name__}: {w.message}\n" for w in caught))[:500]
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def evaluate_in_subprocess(path: Path, machine: str, scratchpads: list[str], check: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, str(path), "--machine", machine]
    for scratchpad in scratchpads:
        command += ["--scratchpad", scratchpad]
    command += [] if scratchpads else ["--import-only"]
    try:
        done = subprocess.run(command + ([] if check else ["--no-check"]), capture_output=True, text=True,
                              timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        manifest = manifest_of(path)
        return {"file": path.name, "model": manifest["model"], "exporter": manifest["exporter"],
                "opset": manifest["opset"], "manifest_macs": manifest["macs"], "macs": None,
                "imports": f"timed out after {TIMEOUT_SECONDS} s", "plans": {}}
    if done.returncode != 0:
        manifest = manifest_of(path)
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"file": path.name, "model": manifest["model"], "exporter": manifest["exporter"],
                "opset": manifest["opset"], "manifest_macs": manifest["macs"], "macs": None,
                "imports": f"process died ({done.returncode}): {last}", "plans": {}}
    return dict(json.loads(done.stdout))


def report_table(folder: Path, machine: str, scratchpads: list[str], check: bool = True,
                 rows_file: Path | None = None, rows_only: bool = False) -> str:
    """Evaluate every file of `folder`, or take the rows that `rows_file` (JSON lines of `corpus_check.py FILE`)
    already holds and evaluate only the rest (none with `rows_only`)."""
    from tqdm import tqdm

    files = sorted(p for p in folder.glob("*.onnx") if p.with_suffix(".json").exists())  # a manifest: made whole
    done = {}
    if rows_file is not None and rows_file.exists():
        done = {row["file"]: row for row in map(json.loads, rows_file.read_text().splitlines())}
    if rows_only:
        files = [path for path in files if path.name in done]
    rows = [done.get(path.name) or evaluate_in_subprocess(path, machine, scratchpads, check)
            for path in tqdm(files, unit="file")]
    header = ["file", "exporter", "opset", "imports", "MACs (ours / torch)"]
    for scratchpad in scratchpads:
        header += [f"fused x compulsory {scratchpad}", f"--check {scratchpad}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        macs = "" if row["macs"] is None else (f"{row['macs']:,} / {row['manifest_macs']:,}"
                                               + ("" if macs_match(row["macs"], row["manifest_macs"]) else " (wrong)"))
        imports = "yes" if row["imports"] is None else _cell(_short(row["imports"], folder / row["file"]))
        if row.get("stderr"):  # bad input must be one line: anything more on stderr is a finding of its own
            imports += f" (and on stderr: {_cell(row['stderr'].splitlines()[0])})"
        cells = [row["file"], row["exporter"], str(row["opset"]), imports, macs]
        for scratchpad in scratchpads:
            plan = row["plans"].get(scratchpad, {})
            ratio = plan.get("x_compulsory")
            cells += [f"{ratio:.2f}" if ratio is not None else "",
                      plan.get("check", _cell(plan["error"]) if "error" in plan else "")]
        lines.append("| " + " | ".join(cells) + " |")
    imported = sum(row["imports"] is None for row in rows)
    right = sum(row["macs"] is not None and macs_match(row["macs"], row["manifest_macs"]) for row in rows)
    checked = {s: sum(row["plans"].get(s, {}).get("check") == "pass" for row in rows) for s in scratchpads}
    lines += ["", f"{imported} of {len(rows)} import, {right} with the right MAC total; --check passes: "
              + ", ".join(f"{n} at {s}" for s, n in checked.items())]
    refused = folder / "not-made.txt"
    if refused.exists() and refused.read_text().strip():
        lines += ["", "Not made (the exporter or quantizer refused):", ""]
        lines += [f"- {line}" for line in refused.read_text().splitlines()]
    return "\n".join(lines)


def _short(message: str, path: Path) -> str:
    """The message without the file name (the row has it) or the list of supported ops."""
    return message.removeprefix(f"{path}: ").split("; supported ops:")[0]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")[:160]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--machine", default="edge-npu")
    parser.add_argument("--scratchpad", action="append", default=[])
    parser.add_argument("--no-check", action="store_true")
    parser.add_argument("--import-only", action="store_true")
    args = parser.parse_args()
    scratchpads = () if args.import_only else tuple(args.scratchpad or ["512KiB", "64KiB"])
    row = evaluate(args.file, args.machine, scratchpads, check=not args.no_check)
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
