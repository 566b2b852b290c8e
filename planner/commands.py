"""What `scratchplan plan` and `scratchplan simulate` do, behind the argument parsing in `planner.cli`.

Every figure comes from simulating the emitted program; the planner's own estimates are never reported.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.baseline import plan_baseline
from planner.bounds import Bounds, bounds, program_bounds
from planner.check import reference_values
from planner.errors import PlanError
from planner.fused import plan_fused
from planner.graph import Graph
from planner.ops import lower
from simulator.functional import FunctionalError, FunctionalMismatch, run_functional
from simulator.isa import Program, ProgramError
from simulator.machine import MachineConfig, MachineError
from simulator.machine_file import load_machine
from simulator.timing import SimResult, TimingError, simulate
from simulator.trace import chrome_trace
from simulator.verify import verify

STRATEGIES = {"fused": plan_fused, "baseline": plan_baseline}
EXIT_CHECK_FAILED = 3


class CheckFailed(Exception):
    """--check found the plan illegal or its numbers wrong: exit status 3."""


@dataclass(frozen=True, slots=True)
class Planned:
    """A program with its bounds; `graph` and `source` (a path or a built zoo model) when it came from a model."""

    program: Program
    bounds: Bounds
    graph: Graph | None = None
    source: Any = None


Loader = Callable[[argparse.Namespace], tuple[Graph, Any]]


def machine_argument(args: argparse.Namespace) -> MachineConfig:
    try:
        return load_machine(args.machine, scratchpad=args.scratchpad)
    except MachineError as exc:
        raise PlanError(f"--machine {args.machine}: {exc}") from None


def plan_program(args: argparse.Namespace, machine: MachineConfig, load_model: Loader) -> Planned:
    """A program for MODEL (planned with --strategy) or read from a plan file."""
    if str(args.model).endswith(".json"):
        try:
            program = Program.from_json(Path(args.model).read_text())
        except OSError as exc:
            raise PlanError(f"{args.model}: {exc.strerror}") from None
        except ProgramError as exc:
            raise PlanError(f"{args.model}: {exc}") from None
        return Planned(program, program_bounds(program, machine))
    graph, source = load_model(args)
    lowered = lower(graph)
    return Planned(STRATEGIES[args.strategy](lowered, machine), bounds(lowered, machine), graph, source)


def run_plan(args: argparse.Namespace, load_model: Loader) -> str:
    machine = machine_argument(args)
    planned = plan_program(args, machine, load_model)
    write_atomically(args.output, planned.program.to_json() + "\n")
    return (f"wrote {args.output}: {len(planned.program.instructions):,} instructions, "
            f"{len(planned.program.buffers):,} buffers ({planned.program.strategy} on {machine.name})\n")


def run_simulate(args: argparse.Namespace, load_model: Loader) -> str:
    machine = machine_argument(args)
    planned = plan_program(args, machine, load_model)
    try:
        result = simulate(planned.program, machine)
    except TimingError as exc:
        raise PlanError(f"{args.model}: {exc}") from None
    if args.check:
        check_program(args, planned, machine)
    if args.trace:
        write_atomically(args.trace, json.dumps(chrome_trace(planned.program, result)))
    report = simulation_report(planned, machine, result)
    return json.dumps(report) + "\n" if args.json else format_report(report, checked=args.check)


def run_compare(args: argparse.Namespace, load_model: Loader) -> str:
    """Both strategies on one model and machine, side by side, every figure simulated."""
    machine = machine_argument(args)
    graph, source = load_model(args)
    lowered = lower(graph)
    limits = bounds(lowered, machine)
    reports = {}
    for name in ("baseline", "fused"):
        planned = Planned(STRATEGIES[name](lowered, machine), limits, graph, source)
        try:
            result = simulate(planned.program, machine)
        except TimingError as exc:
            raise PlanError(f"{args.model}: {exc}") from None
        reports[name] = simulation_report(planned, machine, result)
    if args.json:
        return json.dumps(reports) + "\n"
    header = f"{'strategy':<10}{'DRAM read':>16}{'DRAM written':>16}{'transfers':>11}{'cycles':>15}" \
             f"{'x compulsory':>14}{'x roofline':>12}{'energy uJ':>12}"
    lines = [f"{graph.name} on {machine.name} ({graph.planning_dtype or 'model dtype'}): compulsory "
             f"{limits.compulsory_bytes:,} bytes, roofline {limits.roofline_cycles:,} cycles", header]
    for name, r in reports.items():
        traffic = r["dram_bytes_read"] + r["dram_bytes_written"]
        lines.append(f"{name:<10}{r['dram_bytes_read']:>16,}{r['dram_bytes_written']:>16,}{r['dma_transfers']:>11,}"
                     f"{r['total_cycles']:>15,}{traffic / limits.compulsory_bytes:>14.2f}"
                     f"{r['total_cycles'] / limits.roofline_cycles:>12.2f}{r['energy_pj']['total'] / 1e6:>12,.2f}")
    base, fused = reports["baseline"], reports["fused"]
    base_traffic = base["dram_bytes_read"] + base["dram_bytes_written"]
    fused_traffic = fused["dram_bytes_read"] + fused["dram_bytes_written"]
    lines.append(f"reduction: DRAM traffic {base_traffic / max(fused_traffic, 1):.2f}x less, cycles "
                 f"{base['total_cycles'] / max(fused['total_cycles'], 1):.2f}x fewer")
    return "\n".join(lines) + "\n"


def check_program(args: argparse.Namespace, planned: Planned, machine: MachineConfig) -> None:
    """Verify, then run on real numbers against onnxruntime; CheckFailed names the first fault."""
    if planned.graph is None:
        raise PlanError(f"{args.model}: --check needs the model to compare with; give the .onnx file or zoo name")
    violations = verify(planned.program, machine)
    if violations:
        raise CheckFailed(f"verify: {violations[0].message} ({len(violations)} violations)")
    dram, reference = reference_values(planned.graph, planned.source, batch=args.batch,
                                       input_shapes=args.input_shapes)
    try:
        run_functional(planned.program, machine, dram, reference=reference)
    except (FunctionalMismatch, FunctionalError) as exc:
        raise CheckFailed(f"functional: {exc}") from None


def simulation_report(planned: Planned, machine: MachineConfig, result: SimResult) -> dict[str, Any]:
    stats = result.stats
    return {
        "strategy": planned.program.strategy, "machine": machine.name, "model": planned.program.model,
        "total_cycles": stats.total_cycles, "dram_bytes_read": stats.dram_bytes_read,
        "dram_bytes_written": stats.dram_bytes_written, "dma_transfers": stats.dma_transfers,
        "peak_scratchpad_bytes": stats.peak_scratchpad_bytes, "compulsory_bytes": planned.bounds.compulsory_bytes,
        "roofline_cycles": planned.bounds.roofline_cycles, "stall_cycles": stats.stall_cycles,
        "busy_cycles": dict(stats.busy_cycles), "instructions": len(planned.program.instructions),
        "energy_pj": result.energy.to_dict(),
        "ops": [{"name": name, "cycles": op.cycles, "compute_cycles": op.compute_cycles,
                 "dram_bytes_read": op.dram_bytes_read, "dram_bytes_written": op.dram_bytes_written}
                for name, op in stats.ops.items()],
    }


def format_report(report: dict[str, Any], *, checked: bool) -> str:
    traffic = report["dram_bytes_read"] + report["dram_bytes_written"]
    cycles, roofline = report["total_cycles"], report["roofline_cycles"]
    lines = [f"{report['model']}: {report['strategy']} on {report['machine']}, {report['instructions']:,} instructions",
             f"  cycles          {cycles:>16,}  ({cycles / roofline:.2f} x roofline {roofline:,})",
             f"  DRAM read       {report['dram_bytes_read']:>16,} bytes",
             f"  DRAM written    {report['dram_bytes_written']:>16,} bytes  ({traffic / report['compulsory_bytes']:.2f}"
             f" x compulsory {report['compulsory_bytes']:,})",
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
