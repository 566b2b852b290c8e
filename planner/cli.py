"""The `scratchplan` command line.

Bad input of any kind ends as one line on stderr and exit status 2; nothing is printed before the result is whole.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from planner import api
from planner.api import OBJECTIVES
from planner.commands import (
    EXIT_CHECK_FAILED,
    STRATEGIES,
    CheckFailed,
    run_compare,
    run_plan,
    run_profile,
    run_simulate,
    run_sweep,
)
from planner.errors import PlanError
from planner.graph import PLANNING_DTYPES
from planner.inspect import op_rows, totals
from simulator.machine_file import preset_names

EXIT_BAD_INPUT = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        args.input_shapes = dict(_parse_input_shape(spec) for spec in getattr(args, "input_shape", []))
        text = args.run(args)
    except PlanError as exc:
        print(f"scratchplan: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except CheckFailed as exc:
        print(f"scratchplan: check failed: {exc}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `scratchplan inspect m | head` is fine
        sys.stderr.close()
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit status 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"scratchplan: error: {self.prog}: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scratchplan", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Parser)
    inspect = commands.add_parser("inspect", help="per-op shapes, work and bytes of a model, and its totals")
    _model_arguments(inspect)
    inspect.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    inspect.set_defaults(run=_inspect)

    plan = commands.add_parser("plan", help="write the staging program (plan file) for a model on a machine")
    _model_arguments(plan)
    _machine_arguments(plan)
    plan.add_argument("-o", "--output", required=True, metavar="PLAN.json", help="where to write the plan")
    plan.add_argument("--explain", action="store_true", help="print the schedule the fused search chose: groups, "
                      "tiles, overlap, weights, tensors kept whole")
    plan.set_defaults(run=run_plan)

    simulate = commands.add_parser("simulate", help="simulate a model's plan (or a plan file) cycle by cycle")
    _model_arguments(simulate, plan_files=True)
    _machine_arguments(simulate)
    simulate.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    simulate.add_argument("--trace", metavar="TRACE.json", help="write a Chrome/Perfetto trace of the simulation")
    simulate.add_argument("--check", action="store_true", help="verify the plan and run it on real numbers against "
                          "onnxruntime (exit status 3 on a mismatch)")
    simulate.add_argument("--plot", metavar="F.png", help="draw scratchpad occupancy by tensor role and engine and "
                          "DMA utilisation over time")
    simulate.set_defaults(run=run_simulate)

    compare = commands.add_parser("compare", help="baseline and fused side by side on one model and machine")
    _model_arguments(compare)
    _machine_arguments(compare, strategy=False)
    compare.add_argument("--json", action="store_true", help='print {"baseline": {...}, "fused": {...}}')
    compare.add_argument("--plot", metavar="F.png", help="draw per-op bars of DRAM bytes and cycles of both strategies")
    compare.set_defaults(run=run_compare)

    sweep = commands.add_parser("sweep", help="plan and simulate over log-spaced scratchpad sizes (and bandwidths, "
                                "array sizes): the ski slope")
    _model_arguments(sweep)
    sweep.add_argument("--machine", required=True, metavar="PRESET|FILE.yaml", help="the machine to vary")
    sweep.add_argument("--scratchpad", required=True, metavar="A..B", help="capacity range, e.g. 16KiB..2MiB")
    sweep.add_argument("--points", type=int, default=8, metavar="N", help="log-spaced points per range (default 8)")
    sweep.add_argument("--bandwidth", metavar="A..B", help="DRAM bandwidth range in bytes per cycle, e.g. 4..64")
    sweep.add_argument("--array", metavar="A..B", help="square tensor-engine sizes, e.g. 16..128")
    sweep.add_argument("--strategies", nargs="+", choices=sorted(STRATEGIES), default=["baseline", "fused"])
    sweep.add_argument("--executor", default="local", metavar="local|dask://HOST:PORT",
                       help="a local process pool (default) or a Dask distributed scheduler")
    sweep.add_argument("--jobs", type=int, metavar="N", help="local worker processes (default: one per core)")
    sweep.add_argument("--csv", metavar="F.csv", help="write the rows as CSV")
    sweep.add_argument("--plot", metavar="F.png", help="draw DRAM bytes and cycles against capacity (log-log)")
    sweep.add_argument("--json", action="store_true", help='print {"model", "machine", "points": [...]}')
    sweep.set_defaults(run=run_sweep)

    profile = commands.add_parser("profile", help="per layer cycles, DRAM bytes and bound of one or two models on "
                                  "several machines")
    profile.add_argument("model", metavar="MODEL", help="an .onnx file or a zoo model by name")
    profile.add_argument("other", metavar="MODEL2", nargs="?", help="a second model to compare (a pruned variant)")
    profile.add_argument("--machines", nargs="+", required=True, metavar="PRESET|FILE.yaml")
    profile.add_argument("--strategy", choices=sorted(STRATEGIES), default="fused")
    profile.add_argument("--batch", type=int, help="batch size: fills symbolic leading dims")
    profile.add_argument("--dtype", choices=sorted(PLANNING_DTYPES), help="element type to plan with")
    profile.add_argument("--json", action="store_true", help='print {"model", "machines": [...]} (two models: '
                         '{"models": [...]})')
    profile.add_argument("--plot", metavar="F.png", help="draw each machine's layers' cycles, stacked")
    profile.set_defaults(run=run_profile, input_shape=[])
    return parser


def _machine_arguments(parser: argparse.ArgumentParser, strategy: bool = True) -> None:
    parser.add_argument("--machine", required=True, metavar="PRESET|FILE.yaml",
                        help=f"a preset ({', '.join(preset_names())}) or a machine YAML file")
    parser.add_argument("--scratchpad", metavar="SIZE", help="override the scratchpad capacity, e.g. 64KiB or 24MiB")
    parser.add_argument("--objective", choices=OBJECTIVES, default="traffic",
                        help="what the fused search minimises: traffic (default: DRAM bytes, ties by cycles, at most "
                        "1%% slower than the baseline), latency (cycles) or edp (energy x cycles)")
    if strategy:
        parser.add_argument("--strategy", choices=sorted(STRATEGIES), default="fused",
                            help="fused (default): the whole graph at once; baseline: each op on its own")


def _model_arguments(parser: argparse.ArgumentParser, plan_files: bool = False) -> None:
    also = ", or a plan file (.json)" if plan_files else ""
    parser.add_argument("model", metavar="MODEL",
                        help=f"an .onnx file, or a zoo model by name (resnet50; resnet50-small is its small "
                        f"variant){also}")
    parser.add_argument("--batch", type=int, help="batch size: fills symbolic leading dims (or replaces leading 1s)")
    parser.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxDx...",
                        help="static shape for an input with symbolic dims (repeatable)")
    parser.add_argument("--dtype", choices=sorted(PLANNING_DTYPES), help="element type to plan with (default: the "
                        "model's own)")


def _parse_input_shape(spec: str) -> tuple[str, tuple[int, ...]]:
    name, _, dims = spec.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.lower().split("x"))
    except ValueError:
        shape = ()
    if not name or not shape or min(shape) <= 0:
        raise PlanError(f"--input-shape {spec!r}: expected NAME=DxDx... with positive dims, like x=1x3x224x224")
    return name, shape


def _inspect(args: argparse.Namespace) -> str:
    model = api.load(args.model, batch=args.batch, input_shapes=args.input_shapes, dtype=args.dtype)
    graph, lowered = model.graph, model.lowered
    rows, total = op_rows(lowered), totals(lowered)
    if args.json:
        document = {
            "model": graph.name,
            "ops": [{"name": r.name, "op_type": r.op_type, "inputs": [list(s) for s in r.inputs],
                     "outputs": [list(s) for s in r.outputs], "macs": r.macs, "elem_ops": r.elem_ops,
                     "bytes_in": r.bytes_in, "bytes_out": r.bytes_out} for r in rows],
            "totals": {"param_bytes": total.param_bytes, "activation_bytes": total.activation_bytes,
                       "compulsory_bytes": total.compulsory_bytes, "macs": total.macs},
        }
        return json.dumps(document) + "\n"
    header = ("name", "op_type", "inputs", "outputs", "MACs", "elem ops", "bytes in", "bytes out")
    table = [header] + [(r.name, r.op_type, _shapes(r.inputs), _shapes(r.outputs), f"{r.macs:,}", f"{r.elem_ops:,}",
                         f"{r.bytes_in:,}", f"{r.bytes_out:,}") for r in rows]
    widths = [min(max(len(row[col]) for row in table), 48) for col in range(len(header))]
    numeric = {4, 5, 6, 7}
    lines = ["  ".join(cell.rjust(w) if col in numeric else cell.ljust(w)
                       for col, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip() for row in table]
    dtype = graph.planning_dtype or "model dtype"
    lines += ["", f"model {graph.name} ({graph.source}), {len(rows)} ops, planned as {dtype}",
              f"  parameters   {total.param_bytes:>16,} bytes",
              f"  activations  {total.activation_bytes:>16,} bytes",
              f"  compulsory   {total.compulsory_bytes:>16,} bytes (constants and inputs read once, outputs written "
              "once)",
              f"  MACs         {total.macs:>16,}"]
    return "\n".join(lines) + "\n"


def _shapes(shapes: tuple[tuple[int, ...], ...]) -> str:
    return " ".join("x".join(map(str, shape)) or "scalar" for shape in shapes)


if __name__ == "__main__":
    sys.exit(main())
