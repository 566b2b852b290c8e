"""Bad input of every kind ends as one line on stderr naming the file, node or key at fault, and exit status 2.

Each case builds its file by hand (onnx.helper, unchecked): whichever stage catches it first (reading, structure
checks, the ONNX checker, shape inference, lowering), the message must be one line that names the culprit.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from planner.cli import EXIT_BAD_INPUT, main
from planner.errors import PlanError
from planner.graph import load_graph

REPO_ROOT = Path(__file__).resolve().parents[2]
FLOAT = TensorProto.FLOAT


def make_model(nodes: list[onnx.NodeProto], inputs: dict[str, list[int | str]],
               outputs: dict[str, list[int | str] | None], initializers: tuple[TensorProto, ...] = (),
               domains: dict[str, int] | None = None) -> onnx.ModelProto:
    """A model as written, with no check: the planner must do the checking. An output shape of None is unknown."""
    graph = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info(n, FLOAT, s) for n, s in inputs.items()],
                              [helper.make_tensor_value_info(n, FLOAT, s) for n, s in outputs.items()],
                              list(initializers))
    opsets = [helper.make_opsetid(domain, version) for domain, version in ({"": 17} | (domains or {})).items()]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def valid_model() -> onnx.ModelProto:
    weights = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    return make_model([helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
                       helper.make_node("Relu", ["c"], ["y"], name="relu")],
                      {"x": [1, 3, 8, 8]}, {"y": [1, 4, 8, 8]}, (weights,))


def conv(x_shape: list[int], w_shape: tuple[int, ...], **attrs: object) -> onnx.ModelProto:
    weights = numpy_helper.from_array(np.ones(w_shape, np.float32), "w")
    return make_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv_bad", **attrs)], {"x": x_shape},
                      {"y": None}, (weights,))


def relu_chain(*edges: tuple[str, str, str], outputs: tuple[str, ...] = ("y",)) -> onnx.ModelProto:
    """Relu nodes given by `edges` (name, input, output)."""
    nodes = [helper.make_node("Relu", [source], [target], name=name) for name, source, target in edges]
    return make_model(nodes, {"x": [1, 4]}, {name: [1, 4] for name in outputs})


def one_node(node: onnx.NodeProto) -> onnx.ModelProto:
    return make_model([node], {"x": [1, 4]}, {"y": [1, 4]})


def with_external_weights(location: str) -> onnx.ModelProto:
    model = valid_model()
    weights = model.graph.initializer[0]
    weights.ClearField("raw_data")
    del weights.float_data[:]
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(4 * 4 * 3 * 3 * 3))):
        weights.external_data.add(key=key, value=value)
    return model


# A file case makes its file under tmp_path; each case lists what its message must hold besides the file's name.
Case = Callable[[Path], Path]


def _write(tmp_path: Path, data: bytes, name: str = "bad.onnx") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _first_half(model: onnx.ModelProto) -> bytes:
    data = model.SerializeToString()
    return data[:len(data) // 2]


FILE_CASES: dict[str, tuple[Case, list[str]]] = {
    "missing file": (lambda tmp: tmp / "missing.onnx", ["no such file"]),
    "directory": (lambda tmp: tmp, ["directory"]),
    "empty file": (lambda tmp: _write(tmp, b""), ["empty"]),
    "truncated file": (lambda tmp: _write(tmp, _first_half(valid_model())), ["not an ONNX model"]),
    "random bytes": (lambda tmp: _write(tmp, np.random.default_rng(0).bytes(4096)), ["not an ONNX model"]),
    "text file": (lambda tmp: _write(tmp, b"graph {\n  node: conv\n}\n", "model.txt"), ["not an ONNX model"]),
}

GRAPH_CASES: dict[str, tuple[Callable[[], onnx.ModelProto], list[str]]] = {
    "cycle": (lambda: relu_chain(("first", "x", "a"), ("loop_a", "c", "b"), ("loop_b", "b", "c"), ("last", "c", "y")),
              ["cycle", "'loop_a'", "'loop_b'"]),
    "output nothing produces": (lambda: relu_chain(("only", "x", "y"), outputs=("y", "ghost_out")),
                                ["'ghost_out'", "produced by no node"]),
    "two nodes write one tensor": (lambda: relu_chain(("writer_1", "x", "y"), ("writer_2", "x", "y")),
                                   ["'y'", "'writer_1'", "'writer_2'"]),
    "input nothing provides": (lambda: relu_chain(("reader", "ghost_in", "y")), ["'reader'", "'ghost_in'"]),
    "dynamic dim with no override": (
        lambda: make_model([helper.make_node("Relu", ["x"], ["y"], name="relu")], {"x": ["batch", 4]},
                           {"y": ["batch", 4]}),
        ["'x'", "'batch'", "--batch"]),
    "non-standard domain": (
        lambda: make_model([helper.make_node("FusedConv", ["x", "w"], ["y"], name="fused", domain="com.microsoft",
                                             activation="Relu")], {"x": [1, 3, 8, 8], "w": [4, 3, 3, 3]},
                           {"y": [1, 4, 8, 8]}, domains={"com.microsoft": 1}),
        ["'fused'", "com.microsoft::FusedConv"]),
    "NonMaxSuppression": (
        lambda: make_model([helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["selected"], name="nms")],
                           {"boxes": [1, 10, 4], "scores": [1, 1, 10]}, {"selected": ["n", 3]}),
        ["'nms'", "NonMaxSuppression"]),
    "unsupported op": (
        lambda: make_model([helper.make_node("Einsum", ["x", "x"], ["y"], name="einsum", equation="ij,ij->i")],
                           {"x": [8, 4]}, {"y": [8]}),
        ["'einsum'", "Einsum is not supported", "Conv"]),
    "TopK": (
        lambda: make_model([helper.make_node("TopK", ["x", "k"], ["values", "indices"], name="top")], {"x": [1, 10]},
                           {"values": [1, 3]}, (numpy_helper.from_array(np.array([3], np.int64), "k"),)),
        ["'top'", "TopK is not supported"]),
    "negative pad": (lambda: conv([1, 3, 8, 8], (4, 3, 3, 3), pads=[-1, 0, 0, 0]), ["'conv_bad'", "pad"]),
    "zero stride": (lambda: conv([1, 3, 8, 8], (4, 3, 3, 3), strides=[0, 1]), ["'conv_bad'", "stride"]),
    "kernel larger than padded input": (lambda: conv([1, 3, 4, 4], (4, 3, 7, 7), pads=[1, 1, 1, 1]),
                                        ["'conv_bad'", "(Conv)"]),
    "kernel larger than the input, negative extent": (lambda: conv([1, 3, 8, 1], (4, 3, 3, 3)),
                                                      ["'conv_bad'", "(Conv)", "make no shape"]),
    "channels do not match the weights": (lambda: conv([1, 3, 8, 8], (4, 2, 3, 3)), ["'conv_bad'", "channel"]),
    "types do not match (shape inference)": (
        lambda: make_model([helper.make_node("Add", ["x", "steps"], ["y"], name="add_mixed")], {"x": [4]}, {"y": [4]},
                           (numpy_helper.from_array(np.arange(4), "steps"),)),
        ["'add_mixed'", "(Add)", "shape inference"]),
    "constant folding fails": (
        lambda: make_model([helper.make_node("Gather", ["table", "five"], ["row"], name="gather_const"),
                            helper.make_node("Add", ["x", "row"], ["y"], name="add")], {"x": [1]}, {"y": [1]},
                           (numpy_helper.from_array(np.zeros(3, np.float32), "table"),
                            numpy_helper.from_array(np.array([5], np.int64), "five"))),
        ["'gather_const'", "constant folding"]),
    "op onnx does not know": (lambda: one_node(helper.make_node("Frobnicate", ["x"], ["y"], name="frob")),
                              ["'frob'", "Frobnicate"]),
    "opset newer than onnx knows": (
        lambda: make_model([helper.make_node("Relu", ["x"], ["y"], name="relu")], {"x": [1, 4]}, {"y": [1, 4]},
                           domains={"": 999}),
        ["opset_import", "999"]),
    "If whose branch reads an activation": (
        lambda: make_model([helper.make_node(
            "If", ["always"], ["y"], name="branch",
            then_branch=helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                                          [helper.make_tensor_value_info("t", FLOAT, [1, 4])]),
            else_branch=helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                                          [helper.make_tensor_value_info("e", FLOAT, [1, 4])]))],
            {"x": [1, 4]}, {"y": [1, 4]}, (numpy_helper.from_array(np.array(True), "always"),)),
        ["'branch'", "control flow is not supported"]),
    "unknown attribute (the checker)": (
        lambda: one_node(helper.make_node("Relu", ["x"], ["y"], name="relu_alpha", alpha=0.1)),
        ["'relu_alpha'", "alpha"]),
    "unnamed node (named by op and index)": (
        lambda: make_model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Relu", ["r", "x"], ["y"])],
                           {"x": [1, 4]}, {"y": [1, 4]}),
        ["'Relu_1'", "input size 2"]),
}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run `scratchplan inspect` and return its one error line, after checking the contract for bad input."""
    status = main(["inspect", *argv])
    out, err = capsys.readouterr()
    assert (status, out) == (EXIT_BAD_INPUT, "")
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("scratchplan: error: ")
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(("case", "expected"), FILE_CASES.values(), ids=FILE_CASES.keys())
def test_file_that_is_not_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: Case,
                                  expected: list[str]) -> None:
    path = case(tmp_path)
    err = run_cli(capsys, str(path))
    for part in [str(path), *expected]:
        assert part in err


@pytest.mark.parametrize(("build", "expected"), GRAPH_CASES.values(), ids=GRAPH_CASES.keys())
def test_bad_graph_names_the_node(save_model: Callable[..., Path], capsys: pytest.CaptureFixture[str],
                                  build: Callable[[], onnx.ModelProto], expected: list[str]) -> None:
    path = save_model(build(), "bad.onnx")
    err = run_cli(capsys, str(path))
    for part in [str(path), *expected]:
        assert part in err


def test_every_truncation_of_a_model_is_refused_in_one_line(tmp_path: Path) -> None:
    data = valid_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    for length in range(len(data)):
        path.write_bytes(data[:length])
        with pytest.raises(PlanError) as error:
            load_graph(path)
        assert str(path) in str(error.value) and "\n" not in str(error.value), (length, str(error.value))


@pytest.mark.parametrize(("location", "expected"), [
    ("../outside.bin", ["'w'", "'../outside.bin'", "outside the model's folder"]),
    ("/etc/passwd", ["'w'", "'/etc/passwd'", "outside the model's folder"]),
    ("missing.bin", ["'w'", "'missing.bin'", "missing"]),
    ("short.bin", ["'w'", "'short.bin'", "shorter"]),
])
def test_bad_external_data_is_refused_unread(tmp_path: Path, capsys: pytest.CaptureFixture[str], location: str,
                                             expected: list[str]) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "outside.bin").write_bytes(bytes(4096))  # exists, but outside the model's folder
    (folder / "short.bin").write_bytes(bytes(16))
    path = _write(folder, with_external_weights(location).SerializeToString())
    err = run_cli(capsys, str(path))
    for part in [str(path), *expected]:
        assert part in err


@pytest.mark.parametrize(("argv", "expected"), [
    (["--input-shape", "nope=1x3x8x8"], ["--input-shape", "'nope'", "x"]),
    (["--input-shape", "x=1x3xeight"], ["--input-shape", "x=1x3xeight"]),
    (["--input-shape", "x=1x3x8"], ["--input-shape x", "rank 3", "rank 4"]),
    (["--batch", "-1"], ["--batch", "positive"]),
])
def test_bad_flags_name_the_flag(save_model: Callable[..., Path], capsys: pytest.CaptureFixture[str], argv: list[str],
                                 expected: list[str]) -> None:
    err = run_cli(capsys, str(save_model(valid_model())), *argv)
    for part in expected:
        assert part in err


def test_valid_model_is_fine(save_model: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(save_model(valid_model())), "--json"]) == 0
    assert '"macs": 6912' in capsys.readouterr().out


@pytest.mark.parametrize("case", ["truncated file", "cycle", "channels do not match the weights"])
def test_real_process_prints_one_line_and_no_traceback(tmp_path: Path, save_model: Callable[..., Path],
                                                       case: str) -> None:
    path = FILE_CASES[case][0](tmp_path) if case in FILE_CASES else save_model(GRAPH_CASES[case][0]())
    result = subprocess.run([sys.executable, "-m", "planner.cli", "inspect", str(path)], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (EXIT_BAD_INPUT, "")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("scratchplan: error: ") and str(path) in result.stderr


@pytest.mark.parametrize("argv", [["--dtype", "fp8"], ["--batch", "two"], ["--frob"]])
def test_flag_errors_from_argparse_are_one_line(save_model: Callable[..., Path], capsys: pytest.CaptureFixture[str],
                                                argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_status:
        main(["inspect", str(save_model(valid_model())), *argv])
    _, err = capsys.readouterr()
    assert exit_status.value.code == EXIT_BAD_INPUT
    assert err.count("\n") == 1 and argv[0] in err, err


def test_in_memory_model_without_nodes_is_refused() -> None:
    import onnx.helper

    from planner.errors import PlanError
    from planner.graph import load_graph

    empty = onnx.helper.make_model(onnx.helper.make_graph([], "empty", [], []))
    with pytest.raises(PlanError, match="empty: not an ONNX model"):
        load_graph(empty)


# What a static plan cannot hold, each written the shortest way (ONNX text), each refused by a real `scratchplan plan`
# process in one line that names what is at fault and says why, with no plan file left behind.
UNPLANNABLE: dict[str, tuple[str, list[str]]] = {
    "opset 1": ('''<ir_version: 3, opset_import: ["" : 1]> g (float[1,4] x) => (float[1,4] y) { y = Relu(x) }''',
                ["version 1", "older than 7"]),
    "opset 6": ('''<ir_version: 3, opset_import: ["" : 6]> g (float[1,4] x) => (float[1,4] y) { y = Relu(x) }''',
                ["version 6", "older than 7"]),
    "opset newer than onnx knows": (
        '''<ir_version: 8, opset_import: ["" : 999]> g (float[1,4] x) => (float[1,4] y) { y = Relu(x) }''',
        ["version 999", "newer than the installed onnx"]),
    "string input": ('''<ir_version: 8, opset_import: ["" : 17]>
        g (string[2] s, float[2] x) => (float[2] y, string[2] t) { t = Identity(s)  y = Relu(x) }''',
                     ["input 's'", "string tensor"]),
    "string computed": ('''<ir_version: 8, opset_import: ["" : 17]>
        g (float[2] x) => (string[2] t) { r = Relu(x)  t = Cast<to = 8>(r) }''',
                        ["'Cast_1' (Cast)", "output 't'", "string tensor"]),
    "NonZero": ('''<ir_version: 8, opset_import: ["" : 17]> g (float[4] x) => (int64[1,N] y) { y = NonZero(x) }''',
                ["'NonZero_0' (NonZero)", "no static shape", "number of nonzero elements of 'x'"]),
    "TopK with k from data": ('''<ir_version: 8, opset_import: ["" : 17]>
        g (float[1,10] x, int64[1] k) => (float[1,N] v, int64[1,N] i) { v, i = TopK(x, k) }''',
                              ["'TopK_0' (TopK)", "no static shape", "value of 'k'", "known only when the model runs"]),
    "Unique": ('''<ir_version: 8, opset_import: ["" : 17]> g (float[6] x) => (float[N] y) { y = Unique(x) }''',
               ["'Unique_0' (Unique)", "number of distinct values"]),
    "Compress": ('''<ir_version: 8, opset_import: ["" : 17]>
        g (float[6] x, bool[6] c) => (float[N] y) { y = Compress<axis = 0>(x, c) }''',
                 ["'Compress_0' (Compress)", "number of true values in the condition 'c'"]),
    "NonMaxSuppression": ('''<ir_version: 8, opset_import: ["" : 17]>
        g (float[1,10,4] boxes, float[1,1,10] scores) => (int64[N,3] kept) {
            kept = NonMaxSuppression(boxes, scores) }''',
                          ["'NonMaxSuppression_0' (NonMaxSuppression)", "boxes of 'boxes' that survive"]),
    "Reshape to a shape from data": ('''<ir_version: 8, opset_import: ["" : 17]>
        g (float[2,6] x, float[2] s) => (float[N,M] y) { si = Cast<to = 7>(s)  y = Reshape(x, si) }''',
                                     ["'Reshape_1' (Reshape)", "value of 'si'"]),
    "Loop": ('''<ir_version: 8, opset_import: ["" : 17]> g (float[2] x, int64 n) => (float[2] y) {
        t = Constant<value = bool {1}>()
        y = Loop(n, t, x) <body = b (int64 i, bool c, float[2] v) => (bool co, float[2] vo) {
            co = Identity(c)  vo = Relu(v) }>
        }''', ["'Loop_1' (Loop)", "control flow"]),
    "If": ('''<ir_version: 8, opset_import: ["" : 17]> g (float[2] x, bool c) => (float[2] y) {
        y = If(c) <then_branch = t () => (float[2] a) { a = Relu(x) },
                   else_branch = e () => (float[2] b) { b = Neg(x) }>
        }''', ["'If_0' (If)", "control flow"]),
}


SUBPROCESS_KINDS = ("opset 1", "string computed", "TopK with k from data", "Loop")  # one of each kind


def _plan_argv(model: Path, plan: Path) -> list[str]:
    return ["plan", str(model), "--machine", "edge-npu", "-o", str(plan)]


def _check_one_line(case: str, model: Path, plan: Path, status: int, stdout: str, stderr: str) -> None:
    assert (status, stdout) == (EXIT_BAD_INPUT, ""), stderr
    assert stderr.startswith(f"scratchplan: error: {model}: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr and "Warning" not in stderr
    for part in UNPLANNABLE[case][1]:
        assert part in stderr
    assert not plan.exists()


@pytest.mark.parametrize("case", UNPLANNABLE)
def test_unplannable_model_is_one_line_exit_2_and_no_plan_file(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                                              case: str) -> None:
    model, plan = tmp_path / "case.onnx", tmp_path / "case.plan.json"
    model.write_bytes(onnx.parser.parse_model(UNPLANNABLE[case][0]).SerializeToString())
    status = main(_plan_argv(model, plan))
    out, err = capfd.readouterr()  # file descriptors: what onnx's or onnxruntime's C++ code prints is caught too
    _check_one_line(case, model, plan, status, out, err)


@pytest.fixture(scope="module")
def unplannable_processes(tmp_path_factory: pytest.TempPathFactory,
                          ) -> dict[str, tuple[Path, Path, subprocess.Popen[str]]]:
    """A real `scratchplan plan` process for one case of each kind, all started at once (each spends seconds
    importing)."""
    folder = tmp_path_factory.mktemp("unplannable")
    runs = {}
    for index, name in enumerate(SUBPROCESS_KINDS):
        model, plan = folder / f"case{index}.onnx", folder / f"case{index}.plan.json"
        model.write_bytes(onnx.parser.parse_model(UNPLANNABLE[name][0]).SerializeToString())
        runs[name] = (model, plan, subprocess.Popen([sys.executable, "-m", "planner.cli", *_plan_argv(model, plan)],
                                                    cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                    text=True))
    return runs


@pytest.mark.parametrize("case", SUBPROCESS_KINDS)
def test_unplannable_model_in_a_real_process(unplannable_processes: dict[str, tuple[Path, Path, subprocess.Popen[str]]],
                                             case: str) -> None:
    model, plan, process = unplannable_processes[case]
    stdout, stderr = process.communicate(timeout=300)
    _check_one_line(case, model, plan, process.returncode, stdout, stderr)
