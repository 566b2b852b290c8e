"""Quantize zoo models with onnxruntime's own quantizer and print what planning them gives.

    python benchmarks/make_quantized.py [--out DIR] [--models cnn resnet18-small ...] [--scratchpad 512KiB]

For each fp32 model and each mode (QDQ static, QDQ per channel, dynamic) it writes the quantized file to DIR (the
default, tests/data/quant, is where the two small files the tests use live: cnn-small in QDQ and dynamic form), then
prints one row: compulsory bytes of the fp32 model and of the quantized one, their ratio, the fused plan's traffic
over compulsory on edge-npu, its cycles, and whether `--check` passes. Every figure is simulated.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx

import models
from models.quantized import MODES, quantize
from planner.bounds import bounds
from planner.check import reference_values
from planner.fused import plan_fused
from planner.graph import load_graph
from planner.ops import lower
from simulator.functional import FunctionalError, FunctionalMismatch, run_functional
from simulator.machine_file import load_machine
from simulator.timing import simulate
from simulator.verify import verify

CHECKED_IN = {("cnn-small", "qdq"), ("cnn-small", "dynamic")}


def _row(model: onnx.ModelProto, fp32_bytes: int, scratchpad: str) -> str:
    machine = load_machine("edge-npu", scratchpad=scratchpad)
    graph = load_graph(model)
    lowered = lower(graph)
    program = plan_fused(lowered, machine)
    stats = simulate(program, machine).stats
    compulsory = bounds(lowered, machine).compulsory_bytes
    dram, reference = reference_values(graph, model)
    try:
        ok = not verify(program, machine)
        run_functional(program, machine, dram, reference=reference)
    except (FunctionalMismatch, FunctionalError) as exc:
        ok, _ = False, exc
    traffic = stats.dram_bytes_read + stats.dram_bytes_written
    return (f"{compulsory:>14,}{compulsory / fp32_bytes:>9.3f}{traffic / compulsory:>10.2f}{stats.total_cycles:>12,}"
            f"  {'pass' if ok else 'FAIL'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "tests" / "data" / "quant")
    parser.add_argument("--models", nargs="+", default=["cnn-small", "resnet18-small", "mlp-small", "cnn",
                                                         "resnet18"])
    parser.add_argument("--scratchpad", default="512KiB")
    parser.add_argument("--all-files", action="store_true", help="write every quantized file, not only the tests'")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{'model':<18}{'mode':<17}{'fp32 compulsory':>16}{'compulsory':>14}{'x fp32':>9}{'x compul':>10}"
          f"{'cycles':>12}  check ({args.scratchpad} edge-npu, fused)")
    for name in args.models:
        base, small = name.removesuffix("-small"), name.endswith("-small")
        fp32 = models.build(base, small=small)
        machine = load_machine("edge-npu", scratchpad=args.scratchpad)
        fp32_bytes = bounds(lower(load_graph(fp32)), machine).compulsory_bytes
        print(f"{name:<18}{'fp32':<17}{fp32_bytes:>16,}{_row(fp32, fp32_bytes, args.scratchpad)}")
        for mode in MODES:
            model = quantize(fp32, mode)
            if args.all_files or (name, mode) in CHECKED_IN:
                onnx.save(model, args.out / f"{name}-{mode}.onnx")
            print(f"{name:<18}{mode:<17}{fp32_bytes:>16,}{_row(model, fp32_bytes, args.scratchpad)}")


if __name__ == "__main__":
    main()
