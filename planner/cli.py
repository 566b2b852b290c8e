"""The `scratchplan` command line.

Bad input of any kind ends as one line on stderr and exit status 2; nothing is printed before the result is whole.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import onnx

from planner.commands import EXIT_CHECK_FAILED, STRATEGIES, CheckFailed, run_compare, run_plan, run_simulate
from planner.errors import PlanError
from planner.graph import PLANNING_DTYPES, Graph, load_graph
from planner.inspect import op_rows, totals
from planner.ops import lower
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
    plan.set_defaults(run=lambda args: run_plan(args, load_model_argument))

    simulate = commands.add_parser("simulate", help="simulate a model's plan (or a plan file) cycle by cycle")
    _model_arguments(simulate, plan_files=True)
    _machine_arguments(simulate)
    simulate.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    simulate.add_argument("--trace", metavar="TRACE.json", help="write a Chrome/Perfetto trace of the simulation")
    simulate.add_argument("--check", action="store_true", help="verify the plan and run it on real numbers against "
                          "onnxruntime (exit status 3 on a mismatch)")
    simulate.set_defaults(run=lambda args: run_simulate(args, load_model_argument))

    compare = commands.add_parser("compare", help="baseline and fused side by side on one model and machine")
    _model_arguments(compare)
    _machine_arguments(compare, strategy=False)
    compare.add_argument("--json", action="store_true", help='print {"baseline": {...}, "fused": {...}}')
    compare.set_defaults(run=lambda args: run_compare(args, load_model_argument))
    return parser


def _machine_arguments(parser: argparse.ArgumentParser, strategy: bool = True) -> None:
    parser.add_argument("--machine", required=True, metavar="PRESET|FILE.yaml",
                        help=f"a preset ({', '.join(preset_names())}) or a machine YAML file")
    parser.add_argument("--scratchpad", metavar="SIZE", help="override the scratchpad capacity, e.g. 64KiB or 24MiB")
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


def load_model_argument(args: argparse.Namespace) -> tuple[Graph, str | onnx.ModelProto]:
    """Load MODEL as a file, or build it from the zoo when no such file exists and the name is a zoo model; return the
    Graph and what it was loaded from."""
    source: str | onnx.ModelProto = args.model
    if not Path(args.model).exists():
        import models  # only when asked for: building a zoo model needs nothing else from the planner

        name, small = (args.model[:-len("-small")], True) if args.model.endswith("-small") else (args.model, False)
        if name in models.ZOO:
            source = models.build(name, small=small, batch=args.batch or 1)
    return load_graph(source, batch=args.batch, input_shapes=args.input_shapes, dtype=args.dtype), source


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
    graph, _ = load_model_argument(args)
    lowered = lower(graph)
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
