"""Files as others write them import: PyTorch exports, old model-zoo files, shape overrides, huge shapes, external data.

Every model is built here from code (onnx.helper), checked to run in onnxruntime, then loaded and lowered.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from planner.errors import PlanError
from planner.graph import load_graph
from planner.ops import lower

REPO_ROOT = Path(__file__).resolve().parents[2]
FLOAT = TensorProto.FLOAT
# The IR version torch.onnx.export writes for each opset.
PYTORCH_IR_VERSION = {11: 6, 13: 7, 14: 7, 17: 8, 18: 8}
PYTORCH_MACS_AT_BATCH_2 = 2 * (4 * 8 * 8 * 3 * 3 * 3 + 10 * 16)  # conv 4x3x3x3 over 8x8, then a 16 -> 10 linear
FOLDED_AWAY = {"Constant", "Shape", "Gather", "Unsqueeze", "Concat", "Cast", "Identity"}


def run_onnxruntime(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _weights(name: str, shape: tuple[int, ...], seed: int) -> TensorProto:
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), name)


def _constant(name: str, value: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [f"{name}_output_0"], name=name,
                            value=numpy_helper.from_array(np.asarray(value)))


def pytorch_export(opset: int) -> onnx.ModelProto:
    """What torch.onnx.export writes for conv -> relu -> split/add -> mean -> x.view(x.size(0), -1) -> linear."""
    nodes = [
        helper.make_node("Identity", ["conv1.weight"], ["onnx::Conv_123"], name="/layer1/conv/Identity"),
        helper.make_node("Conv", ["input", "onnx::Conv_123", "conv1.bias"], ["/layer1/conv/Conv_output_0"],
                         name="/layer1/conv/Conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["/layer1/conv/Conv_output_0"], ["/layer1/relu/Relu_output_0"],
                         name="/layer1/relu/Relu"),
    ]
    split_outputs = ["/layer1/Split_output_0", "/layer1/Split_output_1"]
    if opset < 13:  # split sizes: an attribute before 13, an input from 13
        nodes.append(helper.make_node("Split", ["/layer1/relu/Relu_output_0"], split_outputs, name="/layer1/Split",
                                      axis=1, split=[2, 2]))
    else:
        nodes += [_constant("/layer1/Constant", np.array([2, 2], np.int64)),
                  helper.make_node("Split", ["/layer1/relu/Relu_output_0", "/layer1/Constant_output_0"],
                                   split_outputs, name="/layer1/Split", axis=1)]
    nodes.append(helper.make_node("Add", split_outputs, ["/layer1/Add_output_0"], name="/layer1/Add"))
    if opset < 18:  # ReduceMean axes: an attribute before 18, an input from 18
        nodes.append(helper.make_node("ReduceMean", ["/layer1/Add_output_0"], ["/ReduceMean_output_0"],
                                      name="/ReduceMean", axes=[3], keepdims=1))
    else:
        nodes += [_constant("/Constant_4", np.array([3], np.int64)),
                  helper.make_node("ReduceMean", ["/layer1/Add_output_0", "/Constant_4_output_0"],
                                   ["/ReduceMean_output_0"], name="/ReduceMean", keepdims=1)]
    # x * 0.5, where the traced Python float becomes a double constant and a Cast.
    nodes += [_constant("/Constant_5", np.array(0.5, np.float64)),
              helper.make_node("Cast", ["/Constant_5_output_0"], ["/Cast_output_0"], name="/Cast", to=FLOAT),
              helper.make_node("Mul", ["/ReduceMean_output_0", "/Cast_output_0"], ["/Mul_output_0"], name="/Mul")]
    # x.view(x.size(0), -1)
    nodes += [helper.make_node("Shape", ["/Mul_output_0"], ["/Shape_output_0"], name="/Shape"),
              _constant("/Constant", np.array(0, np.int64)),
              helper.make_node("Gather", ["/Shape_output_0", "/Constant_output_0"], ["/Gather_output_0"],
                               name="/Gather", axis=0)]
    if opset < 13:  # Unsqueeze axes: an attribute before 13, an input from 13
        nodes.append(helper.make_node("Unsqueeze", ["/Gather_output_0"], ["onnx::Concat_17"], name="/Unsqueeze",
                                      axes=[0]))
    else:
        nodes += [_constant("/Constant_1", np.array([0], np.int64)),
                  helper.make_node("Unsqueeze", ["/Gather_output_0", "/Constant_1_output_0"], ["onnx::Concat_17"],
                                   name="/Unsqueeze")]
    nodes += [_constant("/Constant_2", np.array([-1], np.int64)),
              helper.make_node("Concat", ["onnx::Concat_17", "/Constant_2_output_0"], ["/Concat_output_0"],
                               name="/Concat", axis=0),
              helper.make_node("Reshape", ["/Mul_output_0", "/Concat_output_0"], ["/Reshape_output_0"],
                               name="/Reshape"),
              helper.make_node("Gemm", ["/Reshape_output_0", "fc.weight", "fc.bias"], ["output"], name="/fc/Gemm",
                               alpha=1.0, beta=1.0, transB=1)]
    graph = helper.make_graph(
        nodes, "main_graph",
        [helper.make_tensor_value_info("input", FLOAT, ["batch_size", 3, 8, 8])],
        [helper.make_tensor_value_info("output", FLOAT, ["batch_size", 10])],
        [_weights("conv1.weight", (4, 3, 3, 3), 1), _weights("conv1.bias", (4,), 2),
         _weights("fc.weight", (10, 16), 3), _weights("fc.bias", (10,), 4)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=PYTORCH_IR_VERSION[opset], producer_name="pytorch", producer_version="2.1.0")
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize("opset", sorted(PYTORCH_IR_VERSION))
def test_pytorch_export_loads_with_the_shape_chain_folded(opset: int) -> None:
    model = pytorch_export(opset)
    (reference,) = run_onnxruntime(model, {"input": np.ones((2, 3, 8, 8), np.float32)})
    assert reference.shape == (2, 10)

    graph = load_graph(model, batch=2)

    op_types = [node.op_type for node in graph.nodes]
    assert op_types == ["Conv", "Relu", "Split", "Add", "ReduceMean", "Mul", "Reshape", "Gemm"]
    assert not FOLDED_AWAY & set(op_types)
    assert "/layer1/conv/Conv" in [node.name for node in graph.nodes]
    assert graph.tensors["input"].shape == (2, 3, 8, 8)
    assert graph.tensors["/Reshape_output_0"].shape == (2, 16)
    assert graph.tensors["output"].shape == reference.shape
    assert graph.tensors["onnx::Conv_123"].kind == "constant"
    assert graph.values["/Concat_output_0"].tolist() == [2, -1]
    assert (graph.inputs, graph.outputs, graph.opset) == (("input",), ("output",), opset)
    lowered = lower(graph)
    assert lowered.macs == PYTORCH_MACS_AT_BATCH_2


def model_zoo_opset9() -> onnx.ModelProto:
    """An IR-3 model as the old model zoo has them: every initializer is also a graph input, and some weights are
    computed by ConstantOfShape (the last one too large to fold)."""
    initializers = [_weights("conv1_w", (8, 3, 3, 3), 1), _weights("conv1_b", (8,), 2),
                    *(numpy_helper.from_array(np.full(8, value, np.float32), f"bn_{name}")
                      for value, name in ((1.0, "scale"), (0.0, "bias"), (0.0, "mean"), (1.0, "var"))),
                    _weights("fc_w", (10, 64), 3), _weights("fc_b", (10,), 4)]
    shape = helper.make_tensor_value_info
    nodes = [
        helper.make_node("Conv", ["data", "conv1_w", "conv1_b"], ["conv1"], name="conv1", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["conv1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["bn1"],
                         name="bn1", epsilon=1e-5),
        helper.make_node("Relu", ["bn1"], ["relu1"], name="relu1"),
        _constant("conv2_w_shape", np.array([16, 8, 3, 3], np.int64)),
        helper.make_node("ConstantOfShape", ["conv2_w_shape_output_0"], ["conv2_w"], name="conv2_w",
                         value=helper.make_tensor("v", FLOAT, [1], [0.01])),
        helper.make_node("Conv", ["relu1", "conv2_w"], ["conv2"], name="conv2", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        _constant("up_scales", np.array([1.0, 1.0, 2.0, 2.0], np.float32)),
        helper.make_node("Upsample", ["conv2", "up_scales_output_0"], ["up"], name="up", mode="nearest"),
        _constant("conv3_w_shape", np.array([64, 16, 9, 9], np.int64)),  # 82944 elements: kept lazily
        helper.make_node("ConstantOfShape", ["conv3_w_shape_output_0"], ["conv3_w"], name="conv3_w",
                         value=helper.make_tensor("v", FLOAT, [1], [0.001])),
        helper.make_node("Conv", ["up", "conv3_w"], ["conv3"], name="conv3", kernel_shape=[9, 9], strides=[4, 4]),
        helper.make_node("GlobalAveragePool", ["conv3"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flat", axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["prob"], name="fc", transB=1),
    ]
    inputs = [shape("data", FLOAT, [1, 3, 16, 16])] + [shape(t.name, t.data_type, list(t.dims)) for t in initializers]
    graph = helper.make_graph(nodes, "zoo", inputs, [shape("prob", FLOAT, [1, 10])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)], ir_version=3)
    onnx.checker.check_model(model)
    return model


def test_opset9_ir3_model_zoo_file_loads() -> None:
    model = model_zoo_opset9()
    (reference,) = run_onnxruntime(model, {"data": np.ones((1, 3, 16, 16), np.float32)})
    assert reference.shape == (1, 10)

    graph = load_graph(model)

    assert graph.inputs == ("data",)
    assert {graph.tensors[name].kind for name in ("conv1_w", "bn_mean", "fc_w")} == {"constant"}
    assert graph.tensors["conv2_w"].kind == "constant" and "conv2_w" in graph.values
    large = graph.tensors["conv3_w"]
    assert (large.kind, large.shape) == ("constant", (64, 16, 9, 9))
    assert "conv3_w" not in graph.values
    assert [node.op_type for node in graph.constant_nodes] == ["ConstantOfShape"]
    assert graph.tensors["up"].shape == (1, 16, 32, 32)
    assert graph.tensors["conv3"].shape == (1, 64, 6, 6)
    assert graph.tensors["prob"].shape == reference.shape
    assert [node.op_type for node in graph.nodes] == ["Conv", "BatchNormalization", "Relu", "Conv", "Upsample",
                                                      "Conv", "GlobalAveragePool", "Flatten", "Gemm"]
    assert lower(graph).macs > 0


def test_file_saved_by_old_exporter_loads_from_disk(save_model: Callable[..., Path]) -> None:
    path = save_model(model_zoo_opset9(), "zoo.onnx")
    graph = load_graph(path)
    assert graph.source == str(path)
    assert graph.tensors["prob"].shape == (1, 10)


def test_unnamed_and_duplicate_node_names_become_unique() -> None:
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"], name="act"),
         helper.make_node("Relu", ["b"], ["y"], name="act")], "g",
        [helper.make_tensor_value_info("x", FLOAT, [1, 4])], [helper.make_tensor_value_info("y", FLOAT, None)]),
        opset_imports=[helper.make_opsetid("", 17)])
    graph = load_graph(model)
    assert [node.name for node in graph.nodes] == ["Relu_0", "act", "act_1"]
    assert graph.tensors["y"].shape == (1, 4)  # an output declared without a shape is inferred
    assert len(lower(graph).statements) == 3


# --batch and --input-shape


def two_inputs() -> onnx.ModelProto:
    return onnx.parser.parse_model("""<ir_version: 8, opset_import: ["" : 17]>
        g (float[batch_size, seq, 8] tokens, float[batch_size, 8] bias) => (float[batch_size, seq, 8] y) {
            y = Add(tokens, bias_3d)
            bias_3d = Unsqueeze(bias, axes)
            axes = Constant<value = int64[1] {1}>()
        }""")


def test_input_shape_and_batch_fill_symbolic_dims() -> None:
    graph = load_graph(two_inputs(), batch=3, input_shapes={"tokens": (3, 5, 8)})
    assert graph.tensors["tokens"].shape == (3, 5, 8)
    assert graph.tensors["bias"].shape == (3, 8)
    assert graph.tensors["y"].shape == (3, 5, 8)
    lower(graph)


def test_batch_replaces_a_fixed_leading_one() -> None:
    model = onnx.parser.parse_model("""<ir_version: 8, opset_import: ["" : 17]>
        g (float[1, 4] x) => (float[1, 4] y) { y = Relu(x) }""")
    assert load_graph(model, batch=4).tensors["y"].shape == (4, 4)


@pytest.mark.parametrize(("batch", "input_shapes", "expected"), [
    (None, {"tokens": (3, 5, 8)}, ["'bias'", "dim 0", "--batch", "--input-shape bias="]),
    (3, {}, ["'tokens'", "dim 1", "'seq'", "--input-shape tokens=3xNx8"]),
    (3, {"token": (3, 5, 8)}, ["--input-shape", "'token'", "tokens, bias"]),
    (3, {"tokens": (3, 5)}, ["--input-shape tokens", "rank 2", "rank 3"]),
    (0, {}, ["--batch", "positive"]),
])
def test_missing_or_wrong_override_names_input_and_flag(batch: int | None, input_shapes: dict[str, tuple[int, ...]],
                                                        expected: list[str]) -> None:
    with pytest.raises(PlanError) as error:
        load_graph(two_inputs(), batch=batch, input_shapes=input_shapes)
    message = str(error.value)
    assert "\n" not in message
    for part in expected:
        assert part in message
    if "dim 1" in expected:
        assert "--batch" not in message  # only dim 0 is the batch


def test_input_shape_resizes_a_fixed_input_and_its_declared_outputs() -> None:
    model = onnx.parser.parse_model("""<ir_version: 8, opset_import: ["" : 17]>
        g (float[1, 3, 8, 8] x) => (float[1, 4, 8, 8] y) {
            shape = Constant<value = int64[4] {4, 3, 3, 3}>()
            w = ConstantOfShape<value = float[1] {0.5}>(shape)
            y = Conv<pads = [1, 1, 1, 1]>(x, w)
        }""")
    graph = load_graph(model, input_shapes={"x": (2, 3, 16, 16)})
    assert graph.tensors["y"].shape == (2, 4, 16, 16)


# --dtype


def test_bf16_halves_float_tensors_and_keeps_int64() -> None:
    model = pytorch_export(17)
    fp32, bf16 = load_graph(model, batch=2), load_graph(model, batch=2, dtype="bf16")
    floats = [name for name, t in fp32.tensors.items() if t.dtype == "float"]
    assert floats and all(bf16.tensor_bytes(name) * 2 == fp32.tensor_bytes(name) for name in floats)
    assert fp32.tensor_bytes("output") == 2 * 10 * 4
    assert fp32.tensors["/Concat_output_0"].dtype == "int64"
    assert bf16.tensor_bytes("/Concat_output_0") == fp32.tensor_bytes("/Concat_output_0") == 2 * 8
    assert bf16.planning_dtype == "bf16"


def test_unknown_dtype_is_refused() -> None:
    with pytest.raises(PlanError, match="--dtype fp8"):
        load_graph(pytorch_export(17), batch=2, dtype="fp8")


# Huge but valid shapes: planning works on shapes, never on data of that size.

HUGE_MODELS = {
    "input of 10^12 elements through the PyTorch flatten chain": """<ir_version: 8, opset_import: ["" : 17]>
        g (float[1, 1024, 1024, 1024, 1000] x) => (float[1, 1073741824000] y) {
            r = Relu(x)
            s = Shape(r)
            n = Gather<axis = 0>(s, zero)
            zero = Constant<value = int64 {0}>()
            axes = Constant<value = int64[1] {0}>()
            n1 = Unsqueeze(n, axes)
            minus_one = Constant<value = int64[1] {-1}>()
            target = Concat<axis = 0>(n1, minus_one)
            y = Reshape(r, target)
        }""",
    "Gemm with a 10^12-element output": """<ir_version: 8, opset_import: ["" : 17]>
        g (float[1000000, 64] a, float[64, 1000000] b) => (float[1000000, 1000000] y) { y = Gemm(a, b) }""",
    "weight of 10^10 elements from ConstantOfShape": """<ir_version: 8, opset_import: ["" : 17]>
        g (float[1, 100000] x) => (float[1, 100000] y) {
            shape = Constant<value = int64[2] {100000, 100000}>()
            w = ConstantOfShape<value = float[1] {0.5}>(shape)
            y = MatMul(x, w)
        }""",
    "Conv over a 10^5 x 10^5 image": """<ir_version: 8, opset_import: ["" : 17]>
        g (float[1, 3, 100000, 100000] x) => (float[1, 8, 100000, 100000] y) {
            shape = Constant<value = int64[4] {8, 3, 3, 3}>()
            w = ConstantOfShape<value = float[1] {0.5}>(shape)
            y = Conv<pads = [1, 1, 1, 1]>(x, w)
        }""",
}

LOW_MEMORY_SCRIPT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # 2 GiB of address space in all
resource.setrlimit(resource.RLIMIT_CPU, (20, 20))  # CPU seconds, not wall time: a hang dies, a busy machine does not
import onnx.parser
from planner.graph import load_graph
from planner.ops import lower
lowered = lower(load_graph(onnx.parser.parse_model(sys.stdin.read())))
print(lowered.macs, max(tensor.numel for tensor in lowered.graph.tensors.values()))
"""


def run_python(script: str, *args: str, stdin: str = "") -> str:
    """Run a script in a fresh interpreter with one BLAS thread (so a memory limit is about data); return stdout."""
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], input=stdin, cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("text", HUGE_MODELS.values(), ids=HUGE_MODELS.keys())
def test_huge_shapes_plan_without_allocating(text: str) -> None:
    macs, largest_tensor = map(int, run_python(LOW_MEMORY_SCRIPT, stdin=text).split())
    assert largest_tensor >= 10**10 and macs >= 0


# External data: only the shapes are read; the bytes never are.

NEVER_OPEN_SCRIPT = """
import sys
def refuse_open(event, args):
    if event == "open" and str(args[0]).endswith("w.bin"):
        raise RuntimeError(f"external data was opened: {args[0]}")
sys.addaudithook(refuse_open)
from planner.graph import load_graph
from planner.ops import lower
graph = load_graph(sys.argv[1], batch=2)
print(graph.tensors["fc.weight"].shape)
print(lower(graph).macs)
try:
    open(sys.argv[1].replace("model.onnx", "w.bin"))
except RuntimeError:
    print("the hook works")
"""


@pytest.fixture
def external_model(tmp_path: Path) -> Path:
    """The PyTorch export saved with its weights in w.bin, then w.bin overwritten by garbage of the right size."""
    path = tmp_path / "model.onnx"
    onnx.save(pytorch_export(17), path, save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin",
              size_threshold=0)
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"\xff" * weights.stat().st_size)  # NaNs: any value read from it would show
    return path


def test_external_data_loads_with_shapes_only(external_model: Path) -> None:
    graph = load_graph(external_model, batch=2)

    assert graph.tensors["fc.weight"].shape == (10, 16)
    assert graph.tensors["output"].shape == (2, 10)
    assert not {"conv1.weight", "onnx::Conv_123", "fc.weight", "fc.bias"} & set(graph.values)
    assert lower(graph).macs == PYTORCH_MACS_AT_BATCH_2


def test_external_data_file_is_never_opened(external_model: Path) -> None:
    shape, macs, hook = run_python(NEVER_OPEN_SCRIPT, str(external_model)).splitlines()
    assert (shape, macs, hook) == ("(10, 16)", str(PYTORCH_MACS_AT_BATCH_2), "the hook works")


@pytest.mark.parametrize("opset", [13, 17])
def test_dequantize_linear_folds_at_an_opset_onnx_reference_lacks(opset: int) -> None:
    # onnx.reference implements DequantizeLinear from opset 19 only; folding runs it in onnxruntime instead. A scalar
    # (a scale computed by dequantizing) folds; a weight of narrow integers stays int8 in DRAM and is dequantized as
    # an op (planner.fold.NARROW_INTEGERS), so compulsory traffic counts the int8 bytes.
    quantized = np.arange(-54, 54, dtype=np.int8).reshape(4, 3, 3, 3)
    model = helper.make_model(helper.make_graph(
        [helper.make_node("DequantizeLinear", ["s_q", "w_scale", "w_zero"], ["s"], name="dq_scalar"),
         helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], name="dq"),
         helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
         helper.make_node("Mul", ["c", "s"], ["y"], name="scale")], "qdq",
        [helper.make_tensor_value_info("x", FLOAT, [1, 3, 5, 5])], [helper.make_tensor_value_info("y", FLOAT, None)],
        [numpy_helper.from_array(quantized, "w_q"), numpy_helper.from_array(np.array(0.25, np.float32), "w_scale"),
         numpy_helper.from_array(np.array(2, np.int8), "w_zero"),
         numpy_helper.from_array(np.array(6, np.int8), "s_q")]),
        opset_imports=[helper.make_opsetid("", opset)])
    graph = load_graph(model)
    assert [node.op_type for node in graph.nodes] == ["DequantizeLinear", "Conv", "Mul"]
    np.testing.assert_array_equal(graph.values["s"], np.float32((6 - 2) * 0.25))
    assert graph.tensors["w_q"].kind == "constant" and graph.elem_bytes("w_q") == 1
