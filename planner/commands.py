"""What `scratchplan plan`, `simulate` and `compare` do: argparse values in, `planner.api` calls, text out.

Every figure comes from simulating the emitted program; the planner's own estimates are never reported.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from planner import api
from planner.api import CheckFailed, Model, Report
from planner.errors import PlanError
from simulator.isa import Program
from simulator.machine import MachineConfig
from simulator.plan_file import program_to_json
from simulator.trace import chrome_trace
from simulator.units import parse_size

STRATEGIES = api.STRATEGIES
EXIT_CHECK_FAILED = 3

__all__ = ["EXIT_CHECK_FAILED", "STRATEGIES", "CheckFailed", "run_compare", "run_plan", "run_profile", "run_simulate",
           "run_sweep"]


def machine_argument(args: argparse.Namespace) -> MachineConfig:
    return api.machine(args.machine, scratchpad=args.scratchpad)


def model_argument(args: argparse.Namespace) -> Model:
    return api.load(args.model, batch=args.batch, input_shapes=args.input_shapes, dtype=args.dtype)


def plan_program(args: argparse.Namespace, machine: MachineConfig) -> tuple[Program, Model | None]:
    """A program for MODEL (planned with --strategy) or read from a plan file, and the model when there is one."""
    if str(args.model).endswith(".json"):
        return api.load_program(args.model), None
    model = model_argument(args)
    return api.plan(model, machine, strategy=args.strategy, objective=getattr(args, "objective", "traffic")), model


def run_plan(args: argparse.Namespace) -> str:
    machine = machine_argument(args)
    explained = ""
    if getattr(args, "explain", False):
        if args.strategy != "fused":
            raise PlanError(f"--explain: the {args.strategy} strategy searches no schedule; use --strategy fused")
        from planner.explain import format_explain

        model = model_argument(args)
        program, schedule = api.fused_schedule(model, machine, objective=getattr(args, "objective", "traffic"))
        explained = format_explain(model.lowered, schedule)
    else:
        program, _ = plan_program(args, machine)
    write_atomically(args.output, program_to_json(program) + "\n")
    return (f"wrote {args.output}: {len(program.instructions):,} instructions, "
            f"{len(program.buffers):,} buffers ({program.strategy} on {machine.name})\n") + explained


def run_simulate(args: argparse.Namespace) -> str:
    machine = machine_argument(args)
    program, model = plan_program(args, machine)
    result = api.simulate(program, machine)
    if args.check:
        if model is None:
            raise PlanError(f"{args.model}: --check needs the model to compare with; give the .onnx file or zoo name")
        api.check(model, program, machine)
    if args.trace:
        write_atomically(args.trace, json.dumps(chrome_trace(program, result)))
    if getattr(args, "plot", None):
        from planner.plots import plot_simulation

        write_plot(args.plot, lambda path: plot_simulation(program, result, path))
    report = api.report_of(program, machine, result, api.model_bounds(model, program, machine))
    return json.dumps(report.to_dict()) + "\n" if args.json else format_report(report.to_dict(), checked=args.check)


def run_compare(args: argparse.Namespace) -> str:
    """Both strategies on one model and machine, side by side, every figure simulated."""
    machine = machine_argument(args)
    model = model_argument(args)
    objective = getattr(args, "objective", "traffic")
    reports: dict[str, Report] = {name: api.evaluate(model, machine, strategy=name, objective=objective)
                                  for name in ("baseline", "fused")}
    if getattr(args, "plot", None):
        from planner.plots import plot_compare

        write_plot(args.plot, lambda path: plot_compare(reports, path))
    if args.json:
        return json.dumps({name: report.to_dict() for name, report in reports.items()}) + "\n"
    graph = model.graph
    limits = reports["fused"]
    header = f"{'strategy':<10}{'DRAM read':>16}{'DRAM written':>16}{'in bursts':>16}{'transfers':>11}{'cycles':>15}" \
             f"{'x compulsory':>14}{'x best unfused':>16}{'x roofline':>12}{'energy uJ':>12}"
    lines = [f"{graph.name} on {machine.name} ({graph.planning_dtype or 'model dtype'}): compulsory "
             f"{limits.compulsory_bytes:,} bytes, best unfused {limits.best_unfused_bytes or 0:,} bytes, roofline "
             f"{limits.roofline_cycles:,} cycles", header]
    for name, r in reports.items():
        lines.append(f"{name:<10}{r.dram_bytes_read:>16,}{r.dram_bytes_written:>16,}"
                     f"{r.dram_burst_bytes:>16,}{r.dma_transfers:>11,}"
                     f"{r.cycles:>15,}{r.dram_bytes / max(r.compulsory_bytes, 1):>14.2f}"
                     f"{r.dram_bytes / max(r.best_unfused_bytes or 0, 1):>16.2f}"
                     f"{r.cycles / max(r.roofline_cycles, 1):>12.2f}{r.energy_pj['total'] / 1e6:>12,.2f}")
    base, fused = reports["baseline"], reports["fused"]
    lines.append(f"reduction: DRAM traffic {base.dram_bytes / max(fused.dram_bytes, 1):.2f}x less, cycles "
                 f"{base.cycles / max(fused.cycles, 1):.2f}x fewer")
    return "\n".join(lines) + "\n"


def run_sweep(args: argparse.Namespace) -> str:
    """The sweep's rows as JSON or a table; --csv and --plot write files besides."""
    from planner import sweep

    machine = machine_argument(argparse.Namespace(machine=args.machine, scratchpad=None))
    model = model_argument(args)  # a bad model fails here, once, not in every worker
    source = model.source if isinstance(model.source, str) else model.source.SerializeToString()
    job = sweep.Job(source, args.batch, tuple(sorted(args.input_shapes.items())), args.dtype, machine,
                    tuple(args.strategies))
    if args.points < 1:
        raise PlanError(f"--points {args.points}: give at least 1")
    grid = sweep.points(sweep.parse_range(args.scratchpad, "--scratchpad", parse_size), args.points,
                        sweep.parse_range(args.bandwidth, "--bandwidth") if args.bandwidth else None,
                        sweep.parse_range(args.array, "--array", int) if args.array else None)

    def save(rows: list[dict[str, Any]]) -> None:  # the CSV grows as points finish: an interrupted sweep keeps them
        write_atomically(args.csv, sweep.to_csv(rows))

    rows = sweep.sweep(job, grid, executor=args.executor, jobs=args.jobs, on_point=save if args.csv else None)
    document = {"model": model.name, "machine": machine.name, "points": rows}
    if args.plot:
        from planner.plots import plot_sweep

        write_plot(args.plot, lambda path: plot_sweep(document, path, machine.scratchpad.capacity_bytes))
    if args.json:
        return json.dumps(document) + "\n"
    return sweep.to_csv(rows).replace(",", "\t")


def run_profile(args: argparse.Namespace) -> str:
    """Per layer, per machine, for one model or two side by side."""
    from planner.profile import format_profile, profile

    documents = []
    for name in [args.model, *([args.other] if args.other else [])]:
        model = api.load(name, batch=args.batch, dtype=args.dtype)
        documents.append(profile(model, args.machines, strategy=args.strategy))
    if args.plot:
        from planner.plots import plot_profile

        write_plot(args.plot, lambda path: plot_profile(documents, path))
    if args.json:
        return json.dumps(documents[0] if len(documents) == 1 else {"models": documents}) + "\n"
    return format_profile(documents)


def format_report(report: dict[str, Any], *, checked: bool) -> str:
    traffic = report["dram_bytes_read"] + report["dram_bytes_written"]
    cycles, roofline = report["total_cycles"], report["roofline_cycles"]
    lines = [f"{report['model']}: {report['strategy']} on {report['machine']}, {report['instructions']:,} instructions",
             f"  cycles          {cycles:>16,}  ({cycles / roofline:.2f} x roofline {roofline:,})",
             f"  DRAM read       {report['dram_bytes_read']:>16,} bytes  ({report['dram_burst_bytes_read']:,} in "
             "whole bursts)",
             f"  DRAM written    {report['dram_bytes_written']:>16,} bytes  ({report['dram_burst_bytes_written']:,} in "
             f"whole bursts; payload {traffic / report['compulsory_bytes']:.2f} x compulsory "
             f"{report['compulsory_bytes']:,})",
             *([f"  best unfused    {report['best_unfused_bytes']:>16,} bytes  "
                f"({traffic / max(report['best_unfused_bytes'], 1):.2f} x best unfused)"]
               if report.get("best_unfused_bytes") else []),
             f"  DMA transfers   {report['dma_transfers']:>16,}",
             f"  peak scratchpad {report['peak_scratchpad_bytes']:>16,} bytes",
             f"  stall cycles    {report['stall_cycles']:>16,}",
             f"  energy          {report['energy_pj']['total'] / 1e6:>16,.3f} uJ  ("
             + ", ".join(f"{part} {pj / 1e6:,.3f}" for part, pj in report["energy_pj"].items() if part != "total")
             + ")"]
    if checked:
        lines.append("  check           verify and functional simulation match onnxruntime")
    lines += ["", *op_table(report["ops"])]
    return "\n".join(lines) + "\n"


def op_table(ops: list[dict[str, Any]]) -> list[str]:
    """The per-op rows of a simulation report: span, engine-busy compute cycles, DRAM bytes."""
    width = max([len("op"), *(len(op["name"]) for op in ops)])
    lines = [f"  {'op':<{width}}{'span cycles':>16}{'compute cycles':>16}{'DRAM read':>14}{'DRAM written':>14}"]
    lines += [f"  {op['name']:<{width}}{op['cycles']:>16,}{op['compute_cycles']:>16,}{op['dram_bytes_read']:>14,}"
              f"{op['dram_bytes_written']:>14,}" for op in ops]
    return lines


def write_plot(path: str, draw: Callable[[str], None]) -> None:
    """Draw into a temporary file beside `path`, then rename it into place: a whole picture or none."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".png", ".svg", ".pdf"):
        raise PlanError(f"--plot {path}: give a .png, .svg or .pdf file")
    try:
        handle, temporary = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=".scratchplan-",
                                             suffix=suffix)
        os.close(handle)
        try:
            draw(temporary)
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError as exc:
        raise PlanError(f"{path}: cannot write: {exc.strerror}") from None


def write_atomically(path: str, text: str) -> None:
    """Write a whole file or nothing: a temporary file in the same folder, renamed into place."""
    target = Path(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=".scratchplan-")
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, target)
    except OSError as exc:
        raise PlanError(f"{path}: cannot write: {exc.strerror}") from None
