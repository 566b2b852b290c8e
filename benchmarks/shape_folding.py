"""How well each way of making exporter shape subgraphs static does on real exports: a Markdown table.

For each model: our import (onnx shape inference with data propagation, to a fixed point with constant folding by
onnx.reference), onnx's `infer_shapes(data_prop=True)` alone, and the simplifiers onnxsim and onnxslim where they are
installed (`pip install onnxsim onnxslim`; neither is a dependency). Each column gives the node outputs whose shape is
fully static over all node outputs, the nodes left, the seconds taken, and the lines the tool printed (warnings
included, caught at the file descriptors, so C++ output counts too).

    python benchmarks/shape_folding.py                      # the checked-in exports in tests/data/import
    python benchmarks/shape_folding.py /work/corpus/*.onnx  # any files (external data next to them is loaded)
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import onnx
from onnx import shape_inference
from onnx.external_data_helper import load_external_data_for_model

from planner.errors import PlanError
from planner.graph import load_graph, prepare_model

CASES = Path(__file__).resolve().parents[1] / "tests" / "data" / "import"


@contextmanager
def printed_lines() -> Iterator[list[int]]:
    """Count the non-empty lines written to stdout and stderr (file descriptors 1 and 2) and the Python warnings."""
    count = [0]
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield count
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            sink.seek(0)
            count[0] = sum(1 for line in sink.read().decode(errors="replace").splitlines() if line.strip())
            count[0] += len(caught)


def static_outputs(model: onnx.ModelProto) -> tuple[int, int]:
    """(node outputs with a fully static shape after shape inference, all node outputs)."""
    inferred = shape_inference.infer_shapes(model, data_prop=True)
    types = {value.name: value.type for value in [*inferred.graph.value_info, *inferred.graph.output]}
    outputs = [name for node in inferred.graph.node for name in node.output if name]
    static = 0
    for name in outputs:
        tensor = types[name].tensor_type if name in types and types[name].HasField("tensor_type") else None
        if tensor is not None and tensor.HasField("shape") and all(d.HasField("dim_value") for d in tensor.shape.dim):
            static += 1
    return static, len(outputs)


def _onnxsim(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxsim
    return onnxsim.simplify(model)[0]


def _onnxslim(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxslim
    return onnxslim.slim(model)


SIMPLIFIERS: dict[str, Callable[[onnx.ModelProto], onnx.ModelProto]] = {"onnxsim": _onnxsim, "onnxslim": _onnxslim}


def ours(path: Path) -> str:
    start = time.perf_counter()
    with printed_lines() as lines:
        try:
            graph = load_graph(path)
        except PlanError as exc:
            return f"fails: {str(exc).removeprefix(str(path) + ': ')[:50]}"
    # Only compute nodes are left; every one of their outputs is static, or the import fails.
    return f"all, {len(graph.nodes)}, {time.perf_counter() - start:.2f}, {lines[0]}"


def simplified(name: str, model: onnx.ModelProto) -> str:
    start = time.perf_counter()
    try:
        with printed_lines() as lines:
            result = SIMPLIFIERS[name](model)
    except Exception as exc:  # a simplifier raises whatever it raises: report it in the table
        return f"fails: {' '.join(str(exc).split())[:50]}"
    seconds = time.perf_counter() - start
    static, total = static_outputs(result)
    return f"{static}/{total}, {len(result.graph.node)}, {seconds:.2f}, {lines[0]}"


def row(path: Path) -> str:
    model, _, folder = prepare_model(path)  # inputs fixed the same way for every column
    if folder is not None:
        load_external_data_for_model(model, str(folder))  # the simplifiers evaluate weights too
    static, total = static_outputs(model)
    cells = [path.name.removesuffix(".onnx"), str(len(model.graph.node)), ours(path), f"{static}/{total}"]
    for name in SIMPLIFIERS:
        if importlib.util.find_spec(name) is None:
            cells.append("not installed")
        else:
            copy = onnx.ModelProto()
            copy.CopyFrom(model)
            cells.append(simplified(name, copy))
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="ONNX files (default: tests/data/import)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = args.models
        if not paths:
            for packed in sorted(CASES.glob("*.onnx.gz")):
                paths.append(Path(folder) / packed.name.removesuffix(".gz"))
                paths[-1].write_bytes(gzip.decompress(packed.read_bytes()))
        print("| model | nodes | ours: static, nodes, s, lines printed | infer_shapes(data_prop) alone: static "
              "| onnxsim: static, nodes, s, lines printed | onnxslim: static, nodes, s, lines printed |")
        print("|---|---|---|---|---|---|")
        for path in paths:
            print(row(path), flush=True)


if __name__ == "__main__":
    main()
