"""The indirect DMA (DmaGather): timed per row, verified, run on real bytes, and round-tripped through the plan file."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simulator.functional import FunctionalMismatch, run_functional
from simulator.isa import Box, Buffer, DmaGather, DmaLoad, DmaStore, DramTensor, Operand, Program, Release
from simulator.plan_file import program_from_json, program_to_json
from simulator.timing import simulate
from simulator.verify import verify
from tests.simulator.programs import small_machine

ROWS, WIDTH, IDS = 10, 6, 3


def gather_program(ids_loaded: bool = True, window: Box | None = None) -> Program:
    """Load 3 ids, gather their rows of a 10 x 6 table, store the 3 x 6 result."""
    tensors = (DramTensor("ids", (IDS,), "int64", 8, "input"),
               DramTensor("table", (ROWS, WIDTH), "float32", 4, "constant"),
               DramTensor("y", (IDS, WIDTH), "float32", 4, "output"))
    buffers = (Buffer("b_ids", 0, (IDS,), (0,), 8), Buffer("b_y", 32, (IDS, WIDTH), (0, 1), 4))
    whole = Box((0,), (IDS,))
    load = DmaLoad(0, (), 0, "ids", whole, "b_ids", (0,))
    gather = DmaGather(1, (0,), 1, "table", 0, window or Box((0, 0), (ROWS, WIDTH)), Operand("ids", whole, "b_ids",
                       (0,)), Operand("y", Box((0, 0), (IDS, WIDTH)), "b_y", (0, 0)), op="embed")
    store = DmaStore(2, (1,), 0, "b_y", (0, 0), "y", Box((0, 0), (IDS, WIDTH)))
    instructions = [load, gather, store, Release(3, (1,), "b_ids"), Release(4, (2,), "b_y")]
    if not ids_loaded:
        instructions = [dataclasses.replace(i, id=i.id - 1, deps=tuple(d - 1 for d in i.deps if d))
                        for i in instructions[1:]]
        instructions[2] = dataclasses.replace(instructions[2], deps=())
    return Program("m", "by-hand", "toy", tensors, buffers, tuple(instructions), ("y",))


def dram() -> dict[str, np.ndarray]:
    return {"ids": np.array([7, 0, -1]), "table": np.arange(ROWS * WIDTH, dtype=np.float32).reshape(ROWS, WIDTH)}


def test_gather_moves_the_named_rows() -> None:
    machine = small_machine()
    program = gather_program()
    assert verify(program, machine) == []
    values = dram()
    expected = values["table"][[7, 0, 9]]
    out = run_functional(program, machine, values, reference={"y": expected})
    assert np.array_equal(out["y"], expected)


def test_gather_is_timed_per_row() -> None:
    machine = small_machine()
    stats = simulate(program := gather_program(), machine).stats
    assert stats.dram_bytes_read == IDS * 8 + IDS * WIDTH * 4  # the ids, then 3 rows of 24 bytes, not the table
    gather = simulate(program, machine)
    cycles = gather.end_cycles[1] - gather.start_cycles[1]
    dma = machine.dma
    # 3 descriptors, one latency, then 3 bursts of 64 bytes at the engine's 16 bytes a cycle
    assert cycles == IDS * dma.descriptor_cycles + machine.dram.latency_cycles + IDS * 64 // 16


def test_gather_round_trips_through_the_plan_file() -> None:
    program = gather_program()
    assert program_from_json(program_to_json(program)) == program
    assert '"kind":"gather"' in program_to_json(program)


def test_verify_wants_the_indices_resident() -> None:
    kinds = [v.kind for v in verify(gather_program(ids_loaded=False), small_machine())]
    assert "not-resident" in kinds


def test_verify_wants_the_window_inside_the_table_and_over_every_row() -> None:
    machine = small_machine()
    partial = gather_program(window=Box((0, 0), (5, WIDTH)))
    assert [v.kind for v in verify(partial, machine)] == ["bounds"]
    assert "not every row" in verify(partial, machine)[0].message


def test_verify_wants_the_destination_allocated() -> None:
    program = gather_program()
    gather = program.instructions[1]
    assert isinstance(gather, DmaGather)
    moved = dataclasses.replace(gather, output=dataclasses.replace(gather.output, buffer="nowhere"))
    broken = dataclasses.replace(program, instructions=(program.instructions[0], moved, *program.instructions[2:]))
    assert "name" in [v.kind for v in verify(broken, small_machine())]


def test_an_index_outside_the_table_is_a_fault() -> None:
    values = dram()
    values["ids"] = np.array([1, 10, 2])
    with pytest.raises(FunctionalMismatch, match="index 10 is outside axis 0 of table"):
        run_functional(gather_program(), small_machine(), values)


def test_the_output_box_must_have_the_gathered_shape() -> None:
    with pytest.raises(ValueError, match="gathered shape"):
        DmaGather(0, (), 0, "table", 0, Box((0, 0), (ROWS, WIDTH)), Operand("ids", Box((0,), (IDS,)), "b", (0,)),
                  Operand("y", Box((0, 0), (IDS, 2)), "o", (0, 0)))


def test_gather_shows_in_the_trace_and_the_per_op_stats() -> None:
    from simulator.trace import chrome_trace

    machine = small_machine()
    program = gather_program()
    result = simulate(program, machine)
    names = [event.get("name") for event in chrome_trace(program, result)["traceEvents"]]
    assert "gather table" in names
    assert result.stats.ops["embed"].dram_bytes_read == IDS * WIDTH * 4


def test_indices_read_as_a_view_must_be_the_whole_tensor() -> None:
    program = gather_program()
    gather = program.instructions[1]
    assert isinstance(gather, DmaGather)
    part = dataclasses.replace(gather, indices=Operand("ids", Box((0,), (2,)), "b_ids", (0,), view=(1, 2)),
                               output=Operand("y", Box((0, 0, 0), (1, 2, WIDTH)), "b_y", (0, 0)))
    broken = dataclasses.replace(program, instructions=(program.instructions[0], part))
    messages = [v.message for v in verify(broken, small_machine()) if v.kind == "bounds"]
    assert any("must be the whole tensor" in m for m in messages)
