"""Real torch exports import with every shape static and right, every folded value right, and nothing on stderr.

The files in tests/data/import/ are what torch.onnx.export wrote for tiny configurations of the models that once
failed to import (`benchmarks/make_import_cases.py` writes them again). Each is checked against onnxruntime running
the same file: every tensor's planned shape is the shape it has at run time, and every value folded at planning
time is the value onnxruntime computes.
"""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from planner.graph import Graph, load_graph
from planner.ops import lower

DATA = Path(__file__).resolve().parents[1] / "data" / "import"
CASES = sorted(path.name.removesuffix(".onnx.gz") for path in DATA.glob("*.onnx.gz"))
VOCAB = 32  # the token-id models' vocabulary (make_import_cases.py)


@pytest.fixture(params=CASES)
def export(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / f"{request.param}.onnx"
    path.write_bytes(gzip.decompress((DATA / f"{request.param}.onnx.gz").read_bytes()))
    return path


def run_every_tensor(path: Path, graph: Graph) -> dict[str, np.ndarray]:
    """onnxruntime on the file as exported, with every node output exposed."""
    model = onnx.load(str(path))
    del model.graph.output[:]
    model.graph.output.extend(onnx.ValueInfoProto(name=name) for node in model.graph.node for name in node.output
                              if name)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for name in graph.inputs:
        tensor = graph.tensors[name]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        feeds[name] = (rng.standard_normal(tensor.shape) if np.issubdtype(dtype, np.floating)
                       else rng.integers(0, VOCAB, tensor.shape)).astype(dtype)
    names = [output.name for output in model.graph.output]
    return dict(zip(names, session.run(names, feeds), strict=True))


def test_export_imports_quietly_with_shapes_and_values_onnxruntime_agrees_with(
        export: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Python warning fails the test; capfd catches what C++ code prints
        graph = load_graph(export)
    assert capfd.readouterr() == ("", "")
    assert not any(node.op_type in ("Shape", "ConstantOfShape", "Range") for node in graph.nodes), \
        "shape subgraphs must fold"
    computed = run_every_tensor(export, graph)
    for name, tensor in graph.tensors.items():
        if name in computed:
            assert tensor.shape == computed[name].shape, name
    for name, value in graph.values.items():
        if name in computed:  # T5's masks hold -inf on purpose: equal_nan and inf compare as equal here
            np.testing.assert_allclose(value, computed[name], rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=name)


def test_opset9_training_export_lowers_with_its_dropout_mask_and_split_piece_unread(tmp_path: Path) -> None:
    path = tmp_path / "dropout-split-ts9.onnx"
    path.write_bytes(gzip.decompress((DATA / "dropout-split-ts9.onnx.gz").read_bytes()))
    graph = load_graph(path)
    dropout = next(node for node in graph.nodes if node.op_type == "Dropout")
    assert len(dropout.outputs) == 1  # the mask nobody reads is cut, so it needs no shape
    split = next(node for node in graph.nodes if node.op_type == "Split")
    assert graph.tensors[split.outputs[1]].shape == (1, 2, 6, 6)  # unread, but it keeps its place
    assert lower(graph).macs == 4 * 3 * 3 * 3 * 6 * 6 + 2 * 6 * 6 * 10  # conv, then the linear on the kept half
