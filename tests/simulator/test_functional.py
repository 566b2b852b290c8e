"""The functional simulator on hand-built programs: tiles, halos, views, Concat parts, layouts, poison, dtype scale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from simulator.functional import (
    FunctionalError,
    FunctionalMismatch,
    compare_outputs,
    poison_value,
    run_functional,
)
from simulator.isa import (
    Box,
    Buffer,
    Compute,
    DmaLoad,
    DmaStore,
    DramTensor,
    Instruction,
    Operand,
    Param,
    Program,
    Release,
    Unread,
)
from simulator.machine import (
    DmaConfig,
    DramConfig,
    MachineConfig,
    ScratchpadConfig,
    TensorEngineConfig,
    VectorEngineConfig,
)
from simulator.plan_file import program_from_json, program_to_json
from simulator.scratchpad import POISONS, Scratchpad, is_poison, scale_factor
from tests.simulator import programs

RNG = np.random.default_rng(0)


def machine(partitions: int = 4, capacity_bytes: int = 64 * 1024) -> MachineConfig:
    return MachineConfig("test", 1e9, ScratchpadConfig(capacity_bytes, partitions, 4), DramConfig(16.0, 10),
                         DmaConfig(2, 4, 64, 1, 16.0),
                         TensorEngineConfig(4, 4, {"fp32": 16, "bf16": 32, "fp16": 32, "int8": 64}, 1, 1),
                         VectorEngineConfig(8))


def buffers(*specs: tuple[str, tuple[int, ...], tuple[int, ...], int], partitions: int = 4) -> tuple[Buffer, ...]:
    """(name, shape, layout, elem_bytes) packed one after another, 4-byte aligned."""
    placed, offset = [], 0
    for name, shape, layout, elem_bytes in specs:
        buffer = Buffer(name, offset, shape, layout, elem_bytes)
        placed.append(buffer)
        offset += -(-buffer.partition_bytes(partitions) // 4) * 4
    return tuple(placed)


def box(*ranges: tuple[int, int]) -> Box:
    return Box(tuple(a for a, _ in ranges), tuple(b for _, b in ranges))


def whole(shape: Sequence[int]) -> Box:
    return Box.whole(tuple(shape))


class Builder:
    """Instructions in program order, each waiting for the one before (deps only need to point backward)."""

    def __init__(self) -> None:
        self.instructions: list[Instruction] = []

    def _deps(self) -> tuple[int, ...]:
        return (len(self.instructions) - 1,) if self.instructions else ()

    def load(self, tensor: str, region: Box, buffer: str, at: tuple[int, ...] | None = None) -> None:
        at = at if at is not None else (0,) * len(region.start)
        self.instructions.append(DmaLoad(len(self.instructions), self._deps(), 0, tensor, region, buffer, at))

    def store(self, buffer: str, tensor: str, region: Box, at: tuple[int, ...] | None = None) -> None:
        at = at if at is not None else (0,) * len(region.start)
        self.instructions.append(DmaStore(len(self.instructions), self._deps(), 0, buffer, at, tensor, region))

    def compute(self, node: str, op_type: str, inputs: Sequence[Operand | Param | Unread | None], output: Operand,
                attrs: Sequence[tuple[str, Any]] = (), output_index: int = 0) -> None:
        self.instructions.append(Compute(len(self.instructions), self._deps(), "vector", node, op_type, tuple(attrs),
                                         tuple(inputs), output, output_index))

    def release(self, buffer: str) -> None:
        self.instructions.append(Release(len(self.instructions), self._deps(), buffer))

    def program(self, tensors: Sequence[DramTensor], placed: Sequence[Buffer], outputs: Sequence[str]) -> Program:
        return Program("test", "hand", "test", tuple(tensors), tuple(placed), tuple(self.instructions),
                       tuple(outputs))


def tensor(name: str, shape: tuple[int, ...], role: str, dtype: str = "float32", elem_bytes: int = 4) -> DramTensor:
    return DramTensor(name, shape, dtype, elem_bytes, role)


def operand(name: str, region: Box, buffer: str, view: tuple[int, ...] = ()) -> Operand:
    return Operand(name, region, buffer, (0,) * len(region.start), view)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


# -- (1) elementwise tiles, double buffered -------------------------------------------------------------------------

def relu_program() -> Program:
    build = Builder()
    for t in range(2):
        rows = box((2 * t, 2 * t + 2), (0, 6))
        build.load("x", rows, f"in{t}")
        build.compute("relu", "Relu", [operand("x", rows, f"in{t}")], operand("y", rows, f"out{t}"))
        build.store(f"out{t}", "y", rows)
        build.release(f"in{t}")
        build.release(f"out{t}")
    placed = buffers(*((f"{kind}{t}", (2, 6), (0, 1), 4) for t in range(2) for kind in ("in", "out")))
    return build.program([tensor("x", (4, 6), "input"), tensor("y", (4, 6), "output")], placed, ["y"])


def test_relu_row_tiles_match_numpy() -> None:
    x = randn(4, 6)
    expected = np.maximum(x, 0)
    got = run_functional(relu_program(), machine(), {"x": x}, reference={"x": x, "y": expected})
    np.testing.assert_array_equal(got["y"], expected)


# -- (2, 3) a convolution tiled by output rows, with halos ----------------------------------------------------------

CONV_ATTRS = (("kernel_shape", (3, 3)), ("pads", (1, 1, 1, 1)), ("strides", (1, 1)))


def conv_program(tile1_rows: tuple[int, int] = (2, 6)) -> Program:
    """Output rows 0..2 read input rows 0..3, rows 3..5 read `tile1_rows` (2..5 is the full halo)."""
    build = Builder()
    build.load("w", whole((3, 2, 3, 3)), "wbuf")
    build.load("b", whole((3,)), "bbuf")
    for in_rows, out_rows in (((0, 4), (0, 3)), (tile1_rows, (3, 6))):
        x_box, y_box = box((0, 1), (0, 2), in_rows, (0, 6)), box((0, 1), (0, 3), out_rows, (0, 6))
        build.load("x", x_box, "xbuf")
        build.compute("conv", "Conv", [operand("x", x_box, "xbuf"), operand("w", whole((3, 2, 3, 3)), "wbuf"),
                                       operand("b", whole((3,)), "bbuf")], operand("y", y_box, "ybuf"), CONV_ATTRS)
        build.store("ybuf", "y", y_box)
        build.release("xbuf")
        build.release("ybuf")
    placed = buffers(("wbuf", (3, 2, 3, 3), (0, 1, 2, 3), 4), ("bbuf", (3,), (0,), 4),
                     ("xbuf", (1, 2, 4, 6), (1, 0, 2, 3), 4), ("ybuf", (1, 3, 3, 6), (1, 0, 2, 3), 4))
    tensors = [tensor("x", (1, 2, 6, 6), "input"), tensor("w", (3, 2, 3, 3), "constant"),
               tensor("b", (3,), "constant"), tensor("y", (1, 3, 6, 6), "output")]
    return build.program(tensors, placed, ["y"])


def onnxruntime_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.fixture(scope="module")
def conv_data() -> dict[str, np.ndarray]:
    x, w, b = randn(1, 2, 6, 6), randn(3, 2, 3, 3), randn(3)
    return {"x": x, "w": w, "b": b, "y": onnxruntime_conv(x, w, b)}


def test_conv_tiles_with_halos_match_the_whole_conv(conv_data: dict[str, np.ndarray]) -> None:
    inputs = {name: conv_data[name] for name in ("x", "w", "b")}
    got = run_functional(conv_program(), machine(), inputs, reference=conv_data)
    np.testing.assert_allclose(got["y"], conv_data["y"], rtol=1e-5, atol=1e-6)


def test_conv_survives_the_plan_file(conv_data: dict[str, np.ndarray]) -> None:
    program = program_from_json(program_to_json(conv_program()))  # attrs come back as JSON-style tuples
    got = run_functional(program, machine(), {name: conv_data[name] for name in ("x", "w", "b")})
    np.testing.assert_allclose(got["y"], conv_data["y"], rtol=1e-5, atol=1e-6)


def test_missing_halo_row_is_named_in_the_mismatch(conv_data: dict[str, np.ndarray]) -> None:
    inputs = {name: conv_data[name] for name in ("x", "w", "b")}
    program = conv_program(tile1_rows=(3, 6))  # output row 3 needs input row 2
    with pytest.raises(FunctionalMismatch, match=r"Compute conv \(Conv\) -> y\[0:1, 0:3, 3:6, 0:6\]: 18 of 54 "
                                                 r"elements differ"):
        run_functional(program, machine(), inputs, reference=conv_data)
    # Without a reference, the poison makes the two runs disagree, on output row 3 only.
    with pytest.raises(FunctionalMismatch, match=r"y: 18 of 108 stored elements differ between two runs .* at "
                                                 r"\[0, 0, 3, 0\]"):
        run_functional(program, machine(), inputs)


# -- (4) a view: Gemm over Flatten's output, read through its base tensor -------------------------------------------

def test_gemm_reads_a_flatten_view() -> None:
    build = Builder()
    build.load("x", whole((1, 2, 2, 2)), "xbuf")
    build.load("w", whole((8, 3)), "wbuf")
    build.compute("fc", "Gemm", [operand("x", whole((1, 2, 2, 2)), "xbuf", view=(1, 8)),
                                 operand("w", whole((8, 3)), "wbuf"), Param((0.5, -1.0, 2.0), (3,), "float32")],
                  operand("y", whole((1, 3)), "ybuf"), attrs=[("alpha", 1), ("transB", 0)])
    build.store("ybuf", "y", whole((1, 3)))
    placed = buffers(("xbuf", (1, 2, 2, 2), (1, 0, 2, 3), 4), ("wbuf", (8, 3), (0, 1), 4), ("ybuf", (1, 3), (1, 0), 4))
    program = build.program([tensor("x", (1, 2, 2, 2), "input"), tensor("w", (8, 3), "constant"),
                             tensor("y", (1, 3), "output")], placed, ["y"])
    x, w = randn(1, 2, 2, 2), randn(8, 3)
    got = run_functional(program, machine(), {"x": x, "w": w})
    np.testing.assert_allclose(got["y"], x.reshape(1, 8) @ w + np.array([0.5, -1.0, 2.0]), rtol=1e-5, atol=1e-6)


# -- (5) Concat, one Compute per part -------------------------------------------------------------------------------

def test_concat_parts_each_read_one_input() -> None:
    build = Builder()
    build.load("a", whole((2, 3)), "abuf")
    build.compute("cat", "Concat", [operand("a", whole((2, 3)), "abuf"), Unread("b")],
                  operand("y", box((0, 2), (0, 3)), "ya"), attrs=[("axis", 1)])
    build.store("ya", "y", box((0, 2), (0, 3)))
    build.load("b", whole((2, 2)), "bbuf")
    build.compute("cat", "Concat", [Unread("a"), operand("b", whole((2, 2)), "bbuf")],
                  operand("y", box((0, 2), (3, 5)), "yb"), attrs=[("axis", 1)])
    build.store("yb", "y", box((0, 2), (3, 5)))
    placed = buffers(("abuf", (2, 3), (0, 1), 4), ("bbuf", (2, 2), (0, 1), 4), ("ya", (2, 3), (0, 1), 4),
                     ("yb", (2, 2), (0, 1), 4))
    program = build.program([tensor("a", (2, 3), "input"), tensor("b", (2, 2), "input"),
                             tensor("y", (2, 5), "output")], placed, ["y"])
    a, b = randn(2, 3), randn(2, 2)
    expected = np.concatenate([a, b], axis=1)
    got = run_functional(program, machine(), {"a": a, "b": b}, reference={"y": expected})
    np.testing.assert_array_equal(got["y"], expected)


# -- (6) layouts and partitions -------------------------------------------------------------------------------------

def test_permuted_layout_over_several_slots_round_trips() -> None:
    x = randn(3, 10)
    placed = buffers(("t", (3, 10), (1, 0), 4), partitions=4)  # 10 rows on 4 partitions: 3 slots
    build = Builder()
    build.load("x", box((0, 3), (0, 6)), "t")
    build.load("x", box((0, 3), (6, 10)), "t", at=(0, 6))
    build.store("t", "y", box((1, 3), (2, 9)), at=(1, 2))
    build.store("t", "y", box((0, 1), (0, 10)))
    build.store("t", "y", box((1, 3), (0, 2)), at=(1, 0))
    build.store("t", "y", box((1, 3), (9, 10)), at=(1, 9))
    program = build.program([tensor("x", (3, 10), "input"), tensor("y", (3, 10), "output")], placed, ["y"])
    got = run_functional(program, machine(partitions=4), {"x": x}, reference={"y": x})
    np.testing.assert_array_equal(got["y"], x)


def test_bytes_sit_where_the_layout_says() -> None:
    buffer = Buffer("t", offset=8, shape=(3, 10), layout=(1, 0), elem_bytes=4)
    pad = Scratchpad(4, 256, [buffer], scale=1)
    x = np.arange(30, dtype=np.float32).reshape(3, 10)
    pad.write(buffer, (0, 0), x)
    row_bytes = 3 * 4
    for i in range(3):
        for j in range(10):  # layout row j (axis 1) lives in partition j % 4, slot j // 4
            start = 8 + (j // 4) * row_bytes + i * 4
            assert pad.data[j % 4, start:start + 4].view(np.float32)[0] == x[i, j]
    unused = np.s_[2:, 8 + 2 * row_bytes:8 + 3 * row_bytes]  # rows 10, 11 of partitions 2, 3 do not exist
    assert (pad.data[unused] == pad.pattern[unused]).all() and is_poison(pad.data[unused].view(np.float32)).all()


# -- (7) poison -----------------------------------------------------------------------------------------------------

def test_reading_a_released_buffer_is_a_mismatch() -> None:
    rows = whole((2, 6))
    build = Builder()
    build.load("x", rows, "xbuf")
    build.release("xbuf")
    build.compute("relu", "Relu", [operand("x", rows, "xbuf")], operand("y", rows, "ybuf"))
    build.store("ybuf", "y", rows)
    placed = buffers(("xbuf", (2, 6), (0, 1), 4), ("ybuf", (2, 6), (0, 1), 4))
    program = build.program([tensor("x", (2, 6), "input"), tensor("y", (2, 6), "output")], placed, ["y"])
    x = randn(2, 6)
    with pytest.raises(FunctionalMismatch, match=r"instruction 2 Compute relu \(Relu\) -> y\[0:2, 0:6\]: \d+ of 12 "
                                                 r"elements differ"):
        run_functional(program, machine(), {"x": x}, reference={"y": np.maximum(x, 0)})


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8", "uint8", "bool", "float16", "float64"])
def test_released_and_unwritten_bytes_read_as_poison(dtype: str) -> None:
    buffer = Buffer("t", offset=0, shape=(5, 2), layout=(0, 1), elem_bytes=8)
    values = np.ones((5, 2), dtype=dtype)
    seen = []
    for poison in POISONS:
        pad = Scratchpad(4, 64, [buffer], scale=1, poison=poison)
        pad.write(buffer, (0, 0), values[:4])
        got = pad.read(buffer, (0, 0), (5, 2), dtype)
        np.testing.assert_array_equal(got[:4], values[:4])
        pad.release(buffer)
        released = pad.read(buffer, (0, 0), (5, 2), dtype)
        np.testing.assert_array_equal(got[4], released[4])
        if dtype == "bool":
            assert (released == (poison.phase == 0)).all()
        else:
            assert is_poison(released).all() and np.isfinite(released.astype(np.float64)).all()
        seen.append(released)
    assert (seen[0] != seen[1]).all()  # the two runs' poisons disagree everywhere


def gather_program(release_indices: bool = False) -> Program:
    build = Builder()
    build.load("data", whole((5, 3)), "dbuf")
    for t in range(2):
        index_box, out_box = box((2 * t, 2 * t + 2)), box((2 * t, 2 * t + 2), (0, 3))
        build.load("idx", index_box, "ibuf")
        if release_indices and t == 1:
            build.release("ibuf")
        build.compute("gather", "Gather", [operand("data", whole((5, 3)), "dbuf"), operand("idx", index_box, "ibuf")],
                      operand("g", out_box, "gbuf"), attrs=[("axis", 0)])
        build.store("gbuf", "g", out_box)
        build.compute("cast", "Cast", [operand("idx", index_box, "ibuf")], operand("f", index_box, "fbuf"),
                      attrs=[("to", TensorProto.FLOAT)])
        build.store("fbuf", "f", index_box)
    placed = buffers(("dbuf", (5, 3), (0, 1), 8), ("ibuf", (2,), (0,), 8), ("gbuf", (2, 3), (0, 1), 8),
                     ("fbuf", (2,), (0,), 8))
    return build.program([tensor("data", (5, 3), "constant"), tensor("idx", (4,), "input", "int64", 8),
                          tensor("g", (4, 3), "output"), tensor("f", (4,), "output")], placed, ["g", "f"])


def test_integer_indices_tiled_through_gather_and_cast() -> None:
    data, idx = randn(5, 3), np.array([4, 0, 3, 3], np.int64)
    got = run_functional(gather_program(), machine(), {"data": data, "idx": idx},
                         reference={"g": data[idx], "f": idx.astype(np.float32)})
    np.testing.assert_array_equal(got["g"], data[idx])
    np.testing.assert_array_equal(got["f"], idx.astype(np.float32))


def test_poisoned_indices_are_a_mismatch_not_a_crash() -> None:
    data, idx = randn(5, 3), np.array([4, 0, 3, 3], np.int64)
    with pytest.raises(FunctionalMismatch, match=r"Compute gather \(Gather\).*2 poison in idx\[2:4\]"):
        run_functional(gather_program(release_indices=True), machine(), {"data": data, "idx": idx})


# -- (8) values wider than planned ----------------------------------------------------------------------------------

def test_float32_values_planned_as_two_byte_elements_do_not_overlap() -> None:
    rows = whole((2, 3))
    placed = buffers(("a", (2, 3), (0, 1), 2), ("b", (2, 3), (0, 1), 2), ("c", (2, 3), (0, 1), 2))
    assert [buffer.offset for buffer in placed] == [0, 8, 16]  # 6 planned bytes per partition, aligned to 8
    placed = tuple(Buffer(b.name, 6 * i, b.shape, b.layout, 2) for i, b in enumerate(placed))  # packed tight
    build = Builder()
    build.load("x1", rows, "a")
    build.load("x2", rows, "b")
    build.compute("add", "Add", [operand("x1", rows, "a"), operand("x2", rows, "b")], operand("y", rows, "c"))
    build.store("c", "y", rows)
    tensors = [tensor("x1", (2, 3), "input", elem_bytes=2), tensor("x2", (2, 3), "input", elem_bytes=2),
               tensor("y", (2, 3), "output", elem_bytes=2)]
    assert scale_factor(tensors) == 2
    x1, x2 = randn(2, 3), randn(2, 3)
    got = run_functional(build.program(tensors, placed, ["y"]), machine(), {"x1": x1, "x2": x2},
                         reference={"y": x1 + x2})
    np.testing.assert_array_equal(got["y"], x1 + x2)


# -- attributes, outputs, errors ------------------------------------------------------------------------------------

def test_split_second_output_and_json_style_float_attribute() -> None:
    build = Builder()
    build.load("x", whole((4, 6)), "xbuf")
    build.compute("split", "Split", [operand("x", whole((4, 6)), "xbuf"), Param((1, 3), (2,), "int64")],
                  operand("s1", whole((3, 6)), "sbuf"), attrs=[("axis", 0)], output_index=1)
    build.compute("leaky", "LeakyRelu", [operand("s1", whole((3, 6)), "sbuf")], operand("y", whole((3, 6)), "ybuf"),
                  attrs=[("alpha", 2)])  # JSON-style: an int where ONNX wants a float
    build.store("ybuf", "y", whole((3, 6)))
    placed = buffers(("xbuf", (4, 6), (0, 1), 4), ("sbuf", (3, 6), (0, 1), 4), ("ybuf", (3, 6), (0, 1), 4))
    program = build.program([tensor("x", (4, 6), "input"), tensor("s1", (3, 6), "intermediate"),
                             tensor("y", (3, 6), "output")], placed, ["y"])
    x = randn(4, 6)
    got = run_functional(program, machine(), {"x": x})
    np.testing.assert_allclose(got["y"], np.where(x[1:] > 0, x[1:], 2 * x[1:]), rtol=1e-6)
    assert is_poison(got["s1"]).all()  # never stored: still poison


def test_a_bad_store_is_caught_at_the_store() -> None:
    program = relu_program()
    # The second tile's store reads the first tile's output buffer, released by then.
    instructions = tuple(DmaStore(i.id, i.deps, i.queue, "out0", i.at, i.tensor, i.box)
                         if isinstance(i, DmaStore) and i.box.start == (2, 0) else i for i in program.instructions)
    program = Program("t", "h", "t", program.tensors, program.buffers, instructions, program.outputs)
    x = randn(4, 6)
    with pytest.raises(FunctionalMismatch, match=r"instruction 7 DmaStore out0 -> y\[2:4, 0:6\]: \d+ of 12 elements "
                                                 r"differ"):
        run_functional(program, machine(), {"x": x}, reference={"y": np.maximum(x, 0)})


def test_bad_programs_name_the_instruction() -> None:
    with pytest.raises(FunctionalError, match=r"no values given for \['x'\]"):
        run_functional(relu_program(), machine(), {})
    program = relu_program()
    broken = DmaLoad(0, (), 0, "x", box((0, 3), (0, 6)), "in0", (0, 0))  # 3 rows into a 2-row buffer
    program = Program("t", "h", "t", program.tensors, program.buffers, (broken, *program.instructions[1:]),
                      program.outputs)
    with pytest.raises(FunctionalError, match=r"instruction 0 DmaLoad x -> in0: buffer in0 of shape \[2, 6\]"):
        run_functional(program, machine(), {"x": randn(4, 6)})
    with pytest.raises(FunctionalError, match=r"overrun the partition's 16 bytes"):
        run_functional(relu_program(), machine(capacity_bytes=64), {"x": randn(4, 6)})


def test_compare_outputs() -> None:
    assert compare_outputs(np.array([1.0, 2.0]), np.array([1.0 + 1e-6, 2.0]), "float32") is None
    assert compare_outputs(np.array([1.0, np.nan]), np.array([1.0, np.nan]), "float32") == \
        "1 of 2 elements differ (1 NaN, 1 NaN in the reference itself)"  # a NaN never matches
    assert compare_outputs(np.array([1.0, 1.01]), np.array([1.0, 1.0]), "float16") is None
    assert compare_outputs(np.array([7, poison_value("int64", 1)]), np.array([7, 3]), "int64") == \
        "1 of 2 elements differ (1 poison); max abs error 2.31e+18 at [1]"
    assert poison_value("int8") == 95 and poison_value("uint16", 1) == 0xDFDF and poison_value("float16") == 471.75
    assert poison_value("bool") is True and poison_value("bool", 1) is False


# -- the shared hand-built programs ------------------------------------------------------------------------------------

def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def _correlate(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    return np.correlate(x.reshape(-1), k.reshape(-1), mode="valid").reshape(1, 1, -1)


EXPECTED = {  # program -> (inputs, everything it should compute from them)
    "relu_double_buffered": lambda x: ({"X": x(4, 8)}, lambda d: {"Y": _relu(d["X"])}),
    "chain_through_dram": lambda x: ({"X": x(4, 8)}, lambda d: {"T": _relu(d["X"]), "Y": np.exp(_relu(d["X"]))}),
    "matmul_resident_weights": lambda x: ({"A": x(4, 8), "W": x(8, 6)}, lambda d: {"Y": d["A"] @ d["W"]}),
    "halo_two_parts": lambda x: ({"X": x(1, 1, 10), "K": x(1, 1, 3)}, lambda d: {"Y": _correlate(d["X"], d["K"])}),
    "buffer_reuse_after_release": lambda x: ({"X": x(2, 8), "Z": x(2, 12)},
                                             lambda d: {"Y": _relu(d["X"]), "W": np.exp(d["Z"])}),
}


@pytest.mark.parametrize("name", sorted(programs.HAND_BUILT))
def test_shared_hand_built_programs_compute_the_right_numbers(name: str) -> None:
    program = programs.HAND_BUILT[name]()
    inputs, compute = EXPECTED[name](randn)
    expected = compute(inputs)
    got = run_functional(program, programs.machine_for(program), inputs, reference=expected, rtol=1e-5, atol=1e-6)
    for tensor_name, values in expected.items():
        np.testing.assert_allclose(got[tensor_name], values, rtol=1e-5, atol=1e-6)


def test_a_tiled_chain_of_thousands_of_instructions() -> None:
    program = programs.tiled_chain(rows=512, cols=8, tile_rows=1, ops=["Relu", "Exp", "Neg"], through_dram=True)
    assert len(program.instructions) > 4000
    x = randn(512, 8)
    expected = {"T1": _relu(x), "T2": np.exp(_relu(x)), "Y": -np.exp(_relu(x))}
    got = run_functional(program, programs.machine_for(program), {"X": x}, reference=expected)
    np.testing.assert_allclose(got["Y"], expected["Y"], rtol=1e-6)

