"""The functional simulator as an oracle on its own, without `verify`: each kind of planner bug on a tiny program
shows up in its numbers (two poisons, two orders; `simulator.functional`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simulator.functional import FunctionalMismatch, run_functional
from simulator.isa import Buffer, Compute, DmaLoad, Program, Release
from simulator.races import find_races
from simulator.scratchpad import POISONS, Scratchpad, scale_factor
from tests.simulator import programs
from tests.simulator.test_functional import (
    Builder,
    box,
    buffers,
    machine,
    operand,
    randn,
    relu_program,
    tensor,
    whole,
)


def races_of(program: Program) -> list[tuple[int, int]]:
    """The pairs of instructions that race."""
    m = programs.machine_for(program) if program.machine == "toy" else machine()
    pad = Scratchpad(m.scratchpad.partitions, m.scratchpad.partition_bytes, program.buffers,
                     scale_factor(program.tensors), POISONS[0])
    return [(race.first, race.second) for race in find_races(program, pad, {t.name: t for t in program.tensors})]


@pytest.mark.parametrize("name", sorted(programs.HAND_BUILT))
def test_legal_programs_have_no_races(name: str) -> None:
    assert races_of(programs.HAND_BUILT[name]()) == []


def test_a_compute_that_does_not_wait_for_its_load_reads_poison() -> None:
    program = relu_program()
    compute = program.instructions[1]
    assert isinstance(compute, Compute) and compute.deps == (0,)
    program = replace(program, instructions=(program.instructions[0], replace(compute, deps=()),
                                             *program.instructions[2:]))
    assert (0, 1) in races_of(program)
    x = randn(4, 6)
    with pytest.raises(FunctionalMismatch, match=r"instruction 1 Compute relu .* run 0 \(2 races: e\.g\. instruction 0 "
                                                 r"DmaLoad x -> in0 and instruction 1"):
        run_functional(program, machine(), {"x": x}, reference={"y": np.maximum(x, 0)})
    with pytest.raises(FunctionalMismatch, match=r"differ between two runs"):  # and without a reference
        run_functional(program, machine(), {"x": x})


def test_a_release_before_the_last_reader_poisons_it() -> None:
    program = relu_program()
    load, compute = program.instructions[:2]
    early = Release(1, (0,), "in0")  # waits for the load only, and comes before the compute in program order
    rest = [replace(i, id=i.id + 1, deps=tuple(d + 1 for d in i.deps)) for i in program.instructions[2:]]
    program = replace(program, instructions=(load, early, replace(compute, id=2, deps=(0,)), *rest))
    assert (1, 2) in races_of(program)
    x = randn(4, 6)
    with pytest.raises(FunctionalMismatch, match=r"Compute relu .* run \d"):
        run_functional(program, machine(), {"x": x}, reference={"y": np.maximum(x, 0)})


def test_maxpool_with_an_unloaded_row_inside_its_box() -> None:
    """onnxruntime's MaxPool skips a NaN that is not last in its window; poison of both signs cannot hide."""
    build = Builder()
    build.load("x", box((0, 1), (0, 1), (1, 4), (0, 4)), "xbuf", at=(0, 0, 1, 0))  # row 0 never loaded
    build.compute("pool", "MaxPool", [operand("x", whole((1, 1, 4, 4)), "xbuf")], operand("y", whole((1, 1, 3, 3)),
                  "ybuf"), attrs=[("kernel_shape", (2, 2)), ("strides", (1, 1))])
    build.store("ybuf", "y", whole((1, 1, 3, 3)))
    placed = buffers(("xbuf", (1, 1, 4, 4), (2, 0, 1, 3), 4), ("ybuf", (1, 1, 3, 3), (2, 0, 1, 3), 4))
    program = build.program([tensor("x", (1, 1, 4, 4), "input"), tensor("y", (1, 1, 3, 3), "output")], placed, ["y"])
    x = randn(1, 1, 4, 4)
    windows = np.lib.stride_tricks.sliding_window_view(x[0, 0], (2, 2)).max(axis=(2, 3))
    with pytest.raises(FunctionalMismatch, match=r"Compute pool \(MaxPool\) -> y\[0:1, 0:1, 0:3, 0:3\]: \d of 9"):
        run_functional(program, machine(), {"x": x}, reference={"y": windows[None, None]})


def test_an_output_buffer_on_the_bytes_of_its_input_is_caught() -> None:
    rows = whole((2, 3))
    build = Builder()
    build.load("a", rows, "abuf")
    build.load("b", rows, "bbuf")
    build.compute("add", "Add", [operand("a", rows, "abuf"), operand("b", rows, "bbuf")], operand("y", rows, "ybuf"))
    build.store("ybuf", "y", rows)
    placed = buffers(("abuf", (2, 3), (0, 1), 4), ("bbuf", (2, 3), (0, 1), 4))
    program = build.program([tensor("a", (2, 3), "input"), tensor("b", (2, 3), "input"), tensor("y", (2, 3), "output")],
                            (*placed, Buffer("ybuf", placed[1].offset, (2, 3), (0, 1), 4)), ["y"])  # on bbuf's bytes
    a, b = randn(2, 3), randn(2, 3)
    with pytest.raises(FunctionalMismatch, match=r"Compute add \(Add\) -> y\[0:2, 0:3\]: 6 of 6 elements differ"
                                                 r".*run 0"):
        run_functional(program, machine(), {"a": a, "b": b}, reference={"y": a + b})


def test_a_load_that_overwrites_what_a_compute_still_reads() -> None:
    """Two tiles through one input buffer, the second load not waiting for the first tile's compute (WAR)."""
    program = relu_program()
    loads = [i for i in program.instructions if isinstance(i, DmaLoad)]
    single = replace(program, buffers=tuple(replace(b, offset=0) if b.name.startswith("in") else b
                                            for b in program.buffers))
    # one buffer for both tiles: in1 on in0's bytes; tile 1's load waits only for tile 0's load
    late = loads[1]
    instructions = tuple(replace(i, deps=(loads[0].id,)) if i is late else i for i in single.instructions)
    program = replace(single, instructions=instructions)
    x = randn(4, 6)
    with pytest.raises(FunctionalMismatch):
        run_functional(program, machine(), {"x": x}, reference={"y": np.maximum(x, 0)})
