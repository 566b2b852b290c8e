"""Quantized corpus files against their fp32 export: compulsory DRAM traffic on edge-npu, as a Markdown table.

    python benchmarks/corpus_quant.py /work/corpus

For every TorchScript opset-17 export `NAME.ts17.onnx` that `benchmarks/corpus.py build` also quantized
(`NAME.ts17.qdq.onnx`, `NAME.ts17.dynamic.onnx`), the compulsory bytes (`planner.bounds`: every input, weight and
output moved once) of each file and their ratio to the fp32 file's. int8 weights and activations make a QDQ model's
about a quarter of the fp32 one's; what stays fp32 (the model's input and output, LayerNorm and bias constants behind
an unfused DequantizeLinear) keeps small models above that.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from corpus_check import input_shapes, manifest_of

KINDS = ("ts17", "ts17.qdq", "ts17.dynamic")


def compulsory_table(folder: Path, machine_name: str = "edge-npu") -> str:
    from planner.bounds import bounds
    from planner.graph import load_graph
    from planner.ops import lower
    from simulator.machine_file import load_machine

    machine = load_machine(machine_name, scratchpad="512KiB")
    lines = ["| model | " + " | ".join(f"{k} bytes" for k in KINDS) + " | qdq / fp32 | dynamic / fp32 |",
             "|---|" + "---|" * (len(KINDS) + 2)]
    for fp32 in sorted(folder.glob("*.ts17.onnx")):
        files = {kind: fp32.with_name(fp32.name.replace(".ts17.onnx", f".{kind}.onnx")) for kind in KINDS}
        files = {kind: path for kind, path in files.items() if path.exists() and path.with_suffix(".json").exists()}
        if len(files) < 2:
            continue
        sizes = {kind: bounds(lower(load_graph(str(path), input_shapes=input_shapes(manifest_of(path)))),
                              machine).compulsory_bytes for kind, path in files.items()}
        ratios = [f"{sizes[k] / sizes['ts17']:.3f}" if k in sizes else "" for k in ("ts17.qdq", "ts17.dynamic")]
        cells = [f"{sizes[k]:,}" if k in sizes else "" for k in KINDS]
        lines.append(f"| {manifest_of(fp32)['model']} | " + " | ".join([*cells, *ratios]) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--machine", default="edge-npu")
    args = parser.parse_args()
    print(compulsory_table(args.dir, args.machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
