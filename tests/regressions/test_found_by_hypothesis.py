"""Bugs the properties found, each as a plain test on an explicit small model.

Each comment says what was wrong and where; all were fixed in planner/ and simulator/ (commits 3355841 and
7ff0e2c). While a bug is open, its test here carries `pytest.mark.xfail(strict=True, reason=...)`, so that the fix
shows up as a strict XPASS and the marker goes.
"""

from __future__ import annotations

import onnx
import onnx.parser
import pytest
import yaml

from planner.baseline import plan_baseline
from planner.testing import Case, check_plan, check_program
from simulator.functional import FunctionalMismatch
from simulator.isa import Compute
from simulator.machine import MachineConfig
from simulator.machine_file import machine_from_dict
from tests.test_oracle import shrink_halo

# A slow, plain machine: one partition, no alignment, one DMA queue; each test sets the scratchpad.
MACHINE = """
clock: 1 GHz
scratchpad: {{capacity: {capacity}, partitions: 1, alignment: {alignment}}}
dram: {{bandwidth: 1 B/cycle, latency: 0 cycles}}
dma: {{engines: 1, outstanding: 1, burst: 1 B, descriptor: 0 cycles, engine_bandwidth: 1 B/cycle}}
tensor_engine: {{rows: 4, cols: 4, macs_per_cycle: {{fp32: 1, bf16: 2, fp16: 2, int8: 4}}, fill: 0 cycles,
                drain: 0 cycles}}
vector_engine: {{elements_per_cycle: 1}}
"""


def machine(capacity: str = "64 KiB", alignment: str = "1 B") -> MachineConfig:
    return machine_from_dict(yaml.safe_load(MACHINE.format(capacity=capacity, alignment=alignment)))


def model(text: str) -> onnx.ModelProto:
    return onnx.parser.parse_model('<ir_version: 8, opset_import: ["" : 17]>\n' + text)


# planner/staging/builder.py (build): a model output that is a view of a model input took the input's name with role
# "output"; nothing stored it, verify found it unstored, and loads of the input read an output no store had written.
@pytest.mark.parametrize("text", [
    "g (float[2,3] x) => (float[1,6] y) { y = Flatten <axis = 0> (x) }",
    "g (float[2,3] x) => (float[2,3] r, float[6] y) <int64[1] shape = {6}> { r = Relu (x)\n y = Reshape (x, shape) }",
], ids=["only-a-view", "also-read"])
def test_output_that_is_a_view_of_an_input(text: str) -> None:
    check_plan(model(text), machine(), "baseline")


# planner/staging/builder.py (compute): the tensor of an Unread slot was not declared in the program when no instruction
# loaded it, and verify and the functional simulator refused the unknown name.
def test_conv_whose_windows_read_only_padding() -> None:
    text = """g (float[1,1,1,1] x) => (float[1,1,1,1] y) <float[1,1,1,1] w = {0.5}> {
        y = Conv <kernel_shape = [1, 1], pads = [0, 1, 0, 0], strides = [1, 2]> (x, w)
    }"""
    check_plan(model(text), machine(), "baseline")


# planner/tiling.py (largest_tile) costed only the middle block, which padding can clip below a border block's
# needs: here the middle tile (x = 0) reads only padding and "fits" in 3 x 64 B, the tile x = 1 reads x as well and
# needs 256 B. The allocator then refused with a message naming a buffer instead of the op.
def test_border_tile_that_reads_more_than_the_middle_one() -> None:
    text = """g (float[1,1,1,1] x) => (float[1,1,1,2] y) <float[1,1,1,1] w = {0.5}> {
        y = Conv <kernel_shape = [1, 1], pads = [0, 1, 0, 0]> (x, w)
    }"""
    check_plan(model(text), machine("255 B", alignment="64 B"), "baseline")


# planner/staging/op.py (load_tile) evicted the slot loaded first. Along L the tiles read x[.., 1:2], x[.., 0:3],
# x[.., 1:2] (dilation 2, pad 1): the third reused slot 0 without a reload, and the prefetch for the next batch's
# first tile evicted slot 0 as the oldest before the third tile read it. Verify: not-resident.
def test_tile_box_that_comes_back() -> None:
    text = """g (float[2,1,3] x) => (float[2,1,3] y) <float[1,1,2] w = {0.5, -0.25}> {
        y = Conv <dilations = [2], kernel_shape = [2], pads = [1, 1]> (x, w)
    }"""
    check_plan(model(text), machine("40 B"), "baseline")


# planner/inspect.py (totals) counted every input an op reads in full: stride 2 with a 1 x 1 kernel reads row 0 of x
# only, so a legal plan moved 12 bytes while the "lower bound" said 16 (and the roofline rose with it).
def test_strided_conv_that_skips_input_rows() -> None:
    text = """g (float[1,1,2,1] x) => (float[1,1,1,1] y) <float[1,1,1,1] w = {0.5}> {
        y = Conv <kernel_shape = [1, 1], strides = [2, 1]> (x, w)
    }"""
    check_plan(model(text), machine(), "baseline")


# simulator/functional.py (_compute) filled unloaded input with NaN, but onnxruntime's MaxPool skips a NaN that is
# not the last of its window, so a tile missing its first halo row computed the right numbers (the oracle's
# wrong-halo class stayed at 97.6% under the thorough profile, every miss a MaxPool).
def test_maxpool_tile_missing_its_first_halo_row_is_caught() -> None:
    case = Case.of(model("g (float[1,1,4,4] x) => (float[1,1,3,3] y) { y = MaxPool <kernel_shape = [2, 2]> (x) }"))
    tight = machine("64 B")  # tiles of 1 x 2 outputs reading 2 x 3 inputs
    program = plan_baseline(case.lowered, tight)
    check_program(program, tight, case)
    first = next(i for i in program.instructions if isinstance(i, Compute))
    mutant = shrink_halo(program, first.id, 2, "start")  # the first tile loses input row 0, which its windows read
    assert mutant is not None
    with pytest.raises(FunctionalMismatch):
        check_program(mutant, tight, case)
