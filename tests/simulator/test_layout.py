"""DRAM layouts: boxes map onto the bytes as the layout says, runs and descriptors are counted under it, plan files
carry it, verify checks boxes under it, and the functional simulator keeps DRAM in it."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.cli import main
from simulator.dma import descriptor_count, element_offsets, physical_shape, pieces, program_totals, transfer
from simulator.dram import DramImage
from simulator.functional import run_functional
from simulator.isa import Box, DramTensor, Program
from simulator.layout import DramLayout
from simulator.plan_file import ProgramError, program_from_json, program_to_json
from simulator.timing import contiguous_runs, descriptors, simulate
from simulator.verify import verify
from tests.simulator import programs
from tests.simulator.test_gather import gather_program


@st.composite
def tensors_with_boxes(draw: st.DrawFn) -> tuple[DramTensor, Box]:
    rank = draw(st.integers(1, 4))
    blocks = [draw(st.sampled_from([1, 2, 3])) for _ in range(rank)]
    shape = tuple(b * draw(st.integers(1, 3)) for b in blocks)
    order = tuple(draw(st.permutations(range(rank))))
    block = tuple(blocks) if draw(st.booleans()) else ()
    start = tuple(draw(st.integers(0, d - 1)) for d in shape)
    stop = tuple(draw(st.integers(a + 1, d)) for a, d in zip(start, shape, strict=True))
    return DramTensor("t", shape, "float32", 4, "intermediate", DramLayout(order, block)), Box(start, stop)


def _physical_index(tensor: DramTensor, index: tuple[int, ...]) -> int:
    """Where element `index` lies, straight from the definition in simulator.layout."""
    assert tensor.layout is not None
    block = tensor.layout.block or tensor.shape
    outer = [index[a] // block[a] for a in tensor.layout.order]
    inner = [index[a] % block[a] for a in tensor.layout.order]
    return int(np.ravel_multi_index((*outer, *inner), physical_shape(tensor)))


@given(tensors_with_boxes(), st.integers(1, 4))
def test_a_box_moves_the_elements_the_layout_puts_there(case: tuple[DramTensor, Box], dims: int) -> None:
    tensor, box = case
    values = np.arange(math.prod(tensor.shape), dtype=np.float32).reshape(tensor.shape)
    image = DramImage(tensor, values, dims)
    for index in itertools.product(*map(range, tensor.shape)):
        assert image.flat[_physical_index(tensor, index)] == values[index]
    region = tuple(slice(a, b) for a, b in zip(box.start, box.stop, strict=True))
    np.testing.assert_array_equal(image.read(box), values[region])
    image.write(box, -values[region])
    expected = values.copy()
    expected[region] *= -1
    np.testing.assert_array_equal(image.logical(), expected)


@given(tensors_with_boxes(), st.integers(1, 4))
def test_runs_and_descriptors_are_those_of_the_bytes_the_box_touches(case: tuple[DramTensor, Box], dims: int) -> None:
    tensor, box = case
    moved = transfer(tensor, box, 64, dims)
    physical, runs, covered = physical_shape(tensor), 0, 0
    for piece in pieces(tensor, box):
        offsets = element_offsets(physical, piece.physical, dims)
        runs += 1 + int(np.count_nonzero(np.diff(offsets) != 1))  # a run breaks where the next byte is not next
        covered += offsets.size
        assert descriptor_count(physical, piece.physical, 1) == 1 + int(np.count_nonzero(np.diff(offsets) != 1))
    assert (moved.runs, covered, moved.payload_bytes) == (runs, box.numel, 4 * box.numel)
    assert moved.descriptors <= moved.runs and (dims > 1 or moved.descriptors == moved.runs)


@given(tensors_with_boxes(), st.integers(1, 4))
def test_without_a_layout_the_counts_are_the_timing_models_row_major_ones(case: tuple[DramTensor, Box],
                                                                        dims: int) -> None:
    tensor, box = case
    plain = dataclasses.replace(tensor, layout=None)
    moved = transfer(plain, box, 64, dims)
    assert moved.runs == contiguous_runs(plain.shape, box)
    assert moved.descriptors == descriptors(plain.shape, box, dims)
    identity = dataclasses.replace(tensor, layout=DramLayout(tuple(range(len(tensor.shape)))))
    assert transfer(identity, box, 64, dims) == moved


def _with_layout(program: Program, name: str, layout: DramLayout) -> Program:
    tensors = tuple(dataclasses.replace(t, layout=layout) if t.name == name else t for t in program.tensors)
    return dataclasses.replace(program, tensors=tensors)


def test_the_layout_round_trips_through_the_plan_file() -> None:
    program = _with_layout(programs.chain_through_dram(), "T", DramLayout((1, 0), (2, 4)))
    text = program_to_json(program)
    assert '"layout":{"order":[1,0],"block":[2,4]}' in text
    assert program_from_json(text) == program
    plain = json.loads(program_to_json(programs.chain_through_dram()))
    assert all("layout" not in t for t in plain["tensors"])  # ONNX's layout: the key is left out


BAD_LAYOUTS = [({"order": [0, 0], "block": []}, "tensors[1]: layout order [0, 0] is not a permutation"),
               ({"order": [1, 0], "block": [3, 8]}, "tensors[1]: tensor T: layout block [3, 8] does not divide"),
               ({"order": [1, 0, 2], "block": []}, "tensors[1]: tensor T: layout order [1, 0, 2] has 3 axes"),
               ({"order": [1, 0]}, "tensors[1].layout: "),
               ("nhwc", "tensors[1].layout: 'nhwc' is not valid")]


@pytest.mark.parametrize(("layout", "message"), BAD_LAYOUTS)
def test_a_bad_layout_in_a_plan_file_is_one_line_and_status_2(layout, message, tmp_path, capsys) -> None:
    document = json.loads(program_to_json(programs.chain_through_dram()))
    assert document["tensors"][1]["name"] == "T"
    document["tensors"][1]["layout"] = layout
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(document))
    with pytest.raises(ProgramError, match="^" + message.replace("[", r"\[").replace("]", r"\]")):
        program_from_json(plan.read_text())
    assert main(["simulate", str(plan), "--machine", "edge-npu"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err and message in err


def test_verify_rejects_a_box_outside_the_tensor_under_a_layout() -> None:
    program = _with_layout(programs.chain_through_dram(), "T", DramLayout((1, 0), (2, 4)))
    machine = programs.machine_for(program)
    assert verify(program, machine) == []
    store = next(i for i, ins in enumerate(program.instructions) if getattr(ins, "tensor", "") == "T")
    moved = dataclasses.replace(program.instructions[store], box=Box((3, 0), (5, 8)))
    bad = dataclasses.replace(program, instructions=(*program.instructions[:store], moved,
                                                     *program.instructions[store + 1:]))
    found = [v for v in verify(bad, machine) if v.kind == "bounds"]
    assert found and found[0].instruction == store and "outside the tensor's shape [4, 8]" in found[0].message


@pytest.mark.parametrize("layout", [DramLayout((1, 0)), DramLayout((1, 0), (2, 4)), DramLayout((0, 1), (1, 2))])
@pytest.mark.parametrize("dims", [1, 3])
def test_the_functional_simulator_keeps_an_intermediate_in_its_layout(layout: DramLayout, dims: int) -> None:
    program = _with_layout(programs.chain_through_dram(), "T", layout)
    machine = programs.machine_for(program)
    machine = dataclasses.replace(machine, dma=dataclasses.replace(machine.dma, descriptor_dims=dims))
    x = np.linspace(-2, 2, 32, dtype=np.float32).reshape(4, 8)
    reference = {"X": x, "T": np.maximum(x, 0), "Y": np.exp(np.maximum(x, 0))}
    got = run_functional(program, machine, {"X": x}, reference=reference)
    np.testing.assert_allclose(got["Y"], reference["Y"], rtol=1e-5)
    np.testing.assert_allclose(got["T"], reference["T"])  # read back in ONNX order


def test_verify_refuses_a_gather_from_a_table_with_a_layout() -> None:
    program, machine = gather_program(), programs.small_machine()
    laid_out = _with_layout(program, "table", DramLayout((1, 0)))
    assert [v.kind for v in verify(program, machine)] == []
    assert any("has a DRAM layout" in v.message for v in verify(laid_out, machine))


@pytest.mark.parametrize("layout", [None, DramLayout((1, 0)), DramLayout((1, 0), (2, 4))])
def test_the_timing_model_charges_the_runs_and_descriptors_of_the_layout(layout: DramLayout | None) -> None:
    program = programs.chain_through_dram()
    if layout is not None:
        program = _with_layout(program, "T", layout)
    machine = programs.machine_for(program)
    result = simulate(program, machine)
    totals = program_totals(program, machine)
    assert result.stats.dram_burst_bytes == totals.burst_bytes
    assert result.energy.descriptor_pj == pytest.approx(totals.descriptors * machine.energy.descriptor_pj)
    column_major = program_totals(_with_layout(program, "T", DramLayout((1, 0))), machine)
    assert totals.runs <= column_major.runs  # row tiles of a column-major tensor are the worst case here
