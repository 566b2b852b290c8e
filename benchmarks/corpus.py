"""Build the corpus of real exports: what users bring, written by the tools they use.

    pip install -e '.[corpus]'
    python benchmarks/corpus.py build [--out out/corpus] [--small] [--only NAME ...] [--exporter ts17 ...]
    python benchmarks/corpus.py report DIR [--scratchpad 512KiB ...] [--strategy fused ...] [--timeout S]
        [--rows rows.jsonl] [--import-only] [--file GLOB ...] > table.md

`build` exports every model of `corpus_models.SPECS` with both PyTorch exporters (the TorchScript-based one at opset
17, the torch.export-based one at opset 18), quantizes some of them with onnxruntime's tool (static QDQ and dynamic),
and copies the old model-zoo graphs that the `onnx` package ships (opset 9, IR 3). Beside every `NAME.onnx` it writes
`NAME.json`, its manifest: family, exporter, opset, input shapes and the MAC count measured in torch
(`torch.utils.flop_counter.FlopCounterMode`, FLOPs / 2), not by this project. `report` prints what `scratchplan` makes
of every file as a Markdown table (see `corpus_check.py`).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "out" / "corpus"
EXPORTERS = {"ts17": ("torchscript", 17), "dynamo18": ("torch.export", 18), "ts9": ("torchscript", 9)}
# Old-style TorchScript exports at opset 9, as the model zoo's files were made, for the classic CNNs only.
OPSET9_MODELS = {"alexnet", "squeezenet", "tinyconv"}
# Quantized with onnxruntime from the TorchScript opset-17 export: name -> the quantizations made.
QUANTIZED = {"tinyconv": ("qdq",), "bert_tiny": ("dynamic", "qdq"), "resnet18": ("qdq", "dynamic"),
             "mobilenet_v3_small": ("qdq",), "bert": ("qdq", "dynamic"), "encoder_layer": ("dynamic",)}
ZOO = ("bvlc_alexnet", "inception_v1", "squeezenet", "vgg19", "resnet50", "densenet121", "shufflenet",
       "inception_v2", "zfnet512")
SMALL_ZOO = ("bvlc_alexnet", "squeezenet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="export the corpus into --out")
    build.add_argument("--out", type=Path, default=DEFAULT_OUT)
    build.add_argument("--small", action="store_true", help="only the small set that tests/data/exports holds")
    build.add_argument("--only", action="append", default=[], metavar="NAME", help="only these models (repeatable)")
    build.add_argument("--exporter", action="append", default=[], choices=sorted(EXPORTERS))
    build.add_argument("--no-zoo", action="store_true", help="skip the onnx package's model-zoo graphs")
    report = commands.add_parser("report", help="a Markdown table of what scratchplan makes of each file in DIR")
    report.add_argument("dir", type=Path)
    report.add_argument("--machine", default="edge-npu")
    report.add_argument("--scratchpad", action="append", default=[], help="default: 512KiB and 64KiB")
    report.add_argument("--strategy", action="append", default=[], help="default: baseline and fused")
    report.add_argument("--timeout", type=float, default=900, help="seconds per (file, strategy, scratchpad) job")
    report.add_argument("--no-check", action="store_true", help="skip --check (the functional simulation)")
    report.add_argument("--import-only", action="store_true", help="only import and count MACs: no plans")
    report.add_argument("--rows", type=Path, help="JSON lines of jobs already run: reuse them, append new ones")
    report.add_argument("--rows-only", action="store_true", help="with --rows: only the files it has rows for")
    report.add_argument("--file", action="append", default=[], metavar="GLOB",
                        help="only run jobs on files whose name matches (repeatable); the table still lists all")
    args = parser.parse_args(argv)
    if args.command == "report":
        from corpus_check import report_table

        scratchpads = [] if args.import_only else args.scratchpad or ["512KiB", "64KiB"]
        strategies = args.strategy or ["baseline", "fused"]
        print(report_table(args.dir, args.machine, scratchpads, strategies, check=not args.no_check,
                           rows_file=args.rows, rows_only=args.rows_only, timeout_seconds=args.timeout,
                           only=args.file))
        return 0
    return build_corpus(args)


def build_corpus(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    logging.disable(logging.WARNING)  # onnxscript's optimizer and the quantizer log advice on every file

    from corpus_models import SPECS

    args.out.mkdir(parents=True, exist_ok=True)
    specs = [s for s in SPECS if (s.small or not args.small) and (not args.only or s.name in args.only)]
    exporters = args.exporter or sorted(EXPORTERS)
    jobs = [(spec, exporter) for spec in specs for exporter in exporters
            if exporter != "ts9" or spec.name in OPSET9_MODELS]
    failures = []
    for spec, exporter in tqdm(jobs, desc="export", unit="file"):
        try:
            path = export(spec, exporter, args.out)
        except Exception as exc:  # an exporter's own failure is a finding to list, not a reason to stop
            failures.append(f"{spec.name} ({exporter}): {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            continue
        if exporter == "ts17":
            for kind in QUANTIZED.get(spec.name, ()):
                try:
                    quantize(path, kind)
                except Exception as exc:
                    failures.append(f"{spec.name} ({kind}): {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    if not args.no_zoo and not args.only:
        for name in SMALL_ZOO if args.small else ZOO:
            copy_zoo(name, args.out)
    failures = [plain(line) for line in failures]
    for line in failures:
        print(f"corpus: not made: {line}", file=sys.stderr)
    # what an exporter or the quantizer refused, for `report` to list under its table (this run's refusals only)
    (args.out / "not-made.txt").write_text("".join(f"{line}\n" for line in failures))
    return 0  # an exporter's refusal is a finding about the exporter (listed above), not a failed build


def export(spec: Any, exporter: str, out: Path) -> Path:
    """Export one model with one exporter; write NAME.EXPORTER.onnx and its manifest."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    module, inputs = spec.build()
    module.eval()
    # Counted as exported: grad enabled (under no_grad nn.TransformerEncoderLayer takes a fused fast path that the
    # counter does not see) and attention by the math kernel (the CPU flash kernel is not counted either).
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        module(*inputs.values())
    macs = counter.get_total_flops() // 2
    kind, opset = EXPORTERS[exporter]
    path = out / f"{spec.name}.{exporter}.onnx"
    names = list(inputs)
    # Not under no_grad: nn.TransformerEncoderLayer would take its fused fast path, which no exporter writes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "torchscript":
            dynamic = {n: axes for n, axes in spec.dynamic.items() if n in inputs} or None
            torch.onnx.export(module, tuple(inputs.values()), str(path), dynamo=False, opset_version=opset,
                              input_names=names, output_names=["output"], dynamic_axes=dynamic)
        else:
            program = torch.onnx.export(module, tuple(inputs.values()), dynamo=True, opset_version=opset,
                                        input_names=names, output_names=["output"], verbose=False)
            assert program is not None
            program.save(str(path))
    model = onnx.load(str(path), load_external_data=False)
    write_manifest(path, {
        "model": spec.name, "family": spec.family, "config": spec.config, "exporter": kind,
        "exporter_args": f"torch.onnx.export(dynamo={kind != 'torchscript'}, opset_version={opset})",
        "opset": _opset(model), "ir_version": model.ir_version, "torch": torch.__version__,
        "inputs": {n: list(t.shape) for n, t in inputs.items()},
        "dynamic_axes": {n: {str(k): v for k, v in a.items()} for n, a in spec.dynamic.items()} if kind == "torchscript"
        else {}, "macs": int(macs), "macs_source": "torch.utils.flop_counter.FlopCounterMode total FLOPs / 2",
    })
    return path


def quantize(source: Path, kind: str) -> Path:
    """onnxruntime's quantizer on a fp32 export: static QDQ with 4 random calibration batches, or dynamic."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    manifest = json.loads(source.with_suffix(".json").read_text())
    target = source.with_name(source.name.replace(".ts17.onnx", f".ts17.{kind}.onnx"))
    if kind == "dynamic":
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    else:
        model = onnx.load(str(source), load_external_data=False)
        elem_types = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
        rng = np.random.default_rng(0)

        def batch() -> dict[str, np.ndarray]:
            feeds = {}
            for name, shape in manifest["inputs"].items():
                if elem_types[name] == onnx.TensorProto.INT64:
                    feeds[name] = (rng.integers(0, 100, shape) if name == "input_ids" else np.ones(shape)).astype(
                        np.int64)
                else:
                    feeds[name] = rng.standard_normal(shape).astype(np.float32)
            return feeds

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.batches = iter([batch() for _ in range(4)])

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self.batches, None)

        quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    import onnxruntime

    model = onnx.load(str(target), load_external_data=False)
    write_manifest(target, manifest | {
        "exporter": f"{manifest['exporter']} + onnxruntime quantize_{'dynamic' if kind == 'dynamic' else 'static'}",
        "exporter_args": manifest["exporter_args"] + (
            "; quantize_dynamic(weight_type=QInt8)" if kind == "dynamic"
            else "; quantize_static(QDQ, QInt8 activations and weights, 4 random calibration batches)"),
        "opset": _opset(model), "ir_version": model.ir_version, "onnxruntime": onnxruntime.__version__,
        "macs_source": manifest["macs_source"] + " (of the fp32 model before quantization)",
    })
    return target


def copy_zoo(name: str, out: Path) -> Path:
    """The model-zoo graph that the onnx package ships for its backend tests ("light": every weight is a
    ConstantOfShape), with MACs counted from onnx shape inference (`zoo_macs`), as no torch model exists."""
    source = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"
    target = out / f"zoo_{name}.onnx"
    shutil.copyfile(source, target)
    model = onnx.load(str(target))
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input
              if i.name not in {t.name for t in model.graph.initializer}}
    write_manifest(target, {
        "model": name, "family": "onnx model zoo", "config": f"onnx {onnx.__version__} backend test data, light_{name}",
        "exporter": model.producer_name or "unknown", "exporter_args": "as shipped", "opset": _opset(model),
        "ir_version": model.ir_version, "inputs": inputs, "dynamic_axes": {}, "macs": zoo_macs(model),
        "macs_source": "Conv/Gemm/MatMul output elements x reduction size, shapes from onnx shape inference",
    })
    return target


def zoo_macs(model: onnx.ModelProto) -> int:
    """MACs of Conv, Gemm and MatMul nodes from onnx's own shape inference (no torch model exists for zoo files)."""
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    shapes |= {t.name: list(t.dims) for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        out = int(np.prod(shapes[node.output[0]]))
        if node.op_type == "Conv":
            weight = shapes[node.input[1]]
            total += out * int(np.prod(weight[1:]))
        elif node.op_type == "Gemm":
            trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
            a = shapes[node.input[0]]
            total += out * (a[0] if trans_a else a[1])
        elif node.op_type == "MatMul":
            total += out * shapes[node.input[0]][-1]
    return total


def plain(text: str) -> str:
    """`text` without terminal colour codes (torch's ConversionError colours its "step 2/3")."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    manifest = manifest | {"file": path.name, "bytes": path.stat().st_size}
    path.with_suffix(".json").write_text(json.dumps(manifest, indent=1) + "\n")


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


if __name__ == "__main__":
    sys.exit(main())
