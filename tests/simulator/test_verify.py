"""The static verifier: hand-built legal programs pass, and every mutant that breaks legality is rejected with the
right kind of violation; happens-before agrees with a brute-force transitive closure."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.hb import HappensBefore
from simulator.isa import (
    ENGINES,
    Box,
    Compute,
    DmaLoad,
    DmaStore,
    Instruction,
    Operand,
    Program,
    Release,
    Unread,
)
from simulator.machine import MachineConfig
from simulator.plan_file import program_from_json, program_to_json
from simulator.regions import Region, RegionIndex, intersect, uncovered, volume
from simulator.verify import Kind, VerifyError, check, verify
from tests.simulator.programs import (
    HAND_BUILT,
    ProgramBuilder,
    box,
    buffer,
    buffer_reuse_after_release,
    chain_through_dram,
    halo_two_parts,
    machine_for,
    matmul_resident_weights,
    operand,
    relu_double_buffered,
    small_machine,
    tensor,
    tiled_chain,
)

# Program surgery: each returns a new Program.


def drop(program: Program, position: int) -> Program:
    """Without one instruction: later ids shift down, and whoever waited for it waits for its deps instead."""
    removed = program.instructions[position]

    def renumber(dep: int) -> int:
        return dep - 1 if dep > position else dep

    kept: list[Instruction] = []
    for instruction in program.instructions:
        if instruction.id == position:
            continue
        deps = {dep for dep in instruction.deps if dep != position}
        if position in instruction.deps:
            deps.update(removed.deps)
        kept.append(replace(instruction, id=renumber(instruction.id), deps=tuple(sorted(map(renumber, deps)))))
    return replace(program, instructions=tuple(kept))


def edit(program: Program, position: int, **changes: Any) -> Program:
    instructions = list(program.instructions)
    instructions[position] = replace(instructions[position], **changes)
    return replace(program, instructions=tuple(instructions))


def edit_buffer(program: Program, name: str, **changes: Any) -> Program:
    return replace(program, buffers=tuple(replace(b, **changes) if b.name == name else b for b in program.buffers))


def kinds(program: Program, machine: MachineConfig) -> set[Kind]:
    return {violation.kind for violation in verify(program, machine)}


def ordered_without(program: Program, dep: int, reader: int) -> bool:
    """Brute force: does `dep` still happen-before `reader` once reader stops waiting for it directly?"""
    previous: dict[int, int] = {}
    last_on: dict[str, int] = {}
    for instruction in program.instructions:
        if isinstance(instruction, Compute):
            if instruction.engine in last_on:
                previous[instruction.id] = last_on[instruction.engine]
            last_on[instruction.engine] = instruction.id

    def predecessors(position: int) -> list[int]:
        deps = [d for d in program.instructions[position].deps if not (position == reader and d == dep)]
        return deps + ([previous[position]] if position in previous else [])

    stack, seen = predecessors(reader), set()
    while stack:
        node = stack.pop()
        if node == dep:
            return True
        if node > dep and node not in seen:
            seen.add(node)
            stack.extend(predecessors(node))
    return False


# Mutations guaranteed to make a legal program illegal: each lists the places it applies to, and the violation kind
# it must cause there.


@dataclass(frozen=True)
class Mutation:
    name: str
    kind: Kind
    targets: Callable[[Program], list[Any]]
    apply: Callable[[Program, MachineConfig, Any], tuple[Program, MachineConfig]]


def _shifted_box(program: Program, tensor_name: str, region: Box) -> Box | None:
    """The same shape one step further along the first axis with room, wrapping around; None if it fills the
    tensor."""
    shape = next(t.shape for t in program.tensors if t.name == tensor_name)
    for axis, (extent, size) in enumerate(zip(shape, region.shape, strict=True)):
        if size < extent:
            start = list(region.start)
            start[axis] = (start[axis] + 1) % (extent - size + 1)
            return Box(tuple(start), tuple(s + n for s, n in zip(start, region.shape, strict=True)))
    return None


def _read_loads(program: Program) -> list[int]:
    read = {o.buffer for i in program.instructions if isinstance(i, Compute) for o in i.operands}
    return [i.id for i in program.instructions if isinstance(i, DmaLoad) and i.buffer in read]


def _load_deps(program: Program) -> list[tuple[int, int]]:
    pairs = []
    for instruction in program.instructions:
        if isinstance(instruction, Compute):
            read = {o.buffer for o in instruction.operands}
            for dep in instruction.deps:
                source = program.instructions[dep]
                if (isinstance(source, DmaLoad) and source.buffer in read
                        and not ordered_without(program, dep, instruction.id)):
                    pairs.append((instruction.id, dep))
    return pairs


def _without_dep(program: Program, machine: MachineConfig, target: tuple[int, int]) -> tuple[Program, MachineConfig]:
    reader, dep = target
    deps = tuple(d for d in program.instructions[reader].deps if d != dep)
    return edit(program, reader, deps=deps), machine


def _buffer_pairs(program: Program) -> list[tuple[str, str]]:
    return sorted({(o.buffer, i.output.buffer) for i in program.instructions if isinstance(i, Compute)
                   for o in i.operands if o.buffer != i.output.buffer})


def _move_onto(program: Program, machine: MachineConfig, pair: tuple[str, str]) -> tuple[Program, MachineConfig]:
    source, target = pair
    offset = next(b.offset for b in program.buffers if b.name == source)
    return edit_buffer(program, target, offset=offset), machine


def _shrink(program: Program, machine: MachineConfig, _: None) -> tuple[Program, MachineConfig]:
    pad = machine.scratchpad
    end = max(b.offset + b.partition_bytes(pad.partitions) for b in program.buffers)
    return program, replace(machine, scratchpad=replace(pad, capacity_bytes=(end - 1) * pad.partitions))


def _wrong_store_boxes(program: Program) -> list[tuple[int, Box]]:
    moved = [(i.id, _shifted_box(program, i.tensor, i.box)) for i in program.instructions
             if isinstance(i, DmaStore)]
    return [(position, region) for position, region in moved if region is not None]


def _last_output_stores(program: Program) -> list[int]:
    last = {i.tensor: i.id for i in program.instructions if isinstance(i, DmaStore) and i.tensor in program.outputs}
    return sorted(last.values())


def _wrong_operand_boxes(program: Program) -> list[tuple[int, Box]]:
    moved = [(i.id, _shifted_box(program, i.operands[0].tensor, i.operands[0].box)) for i in program.instructions
             if isinstance(i, Compute) and i.operands]
    return [(position, region) for position, region in moved if region is not None]


def _with_operand_box(program: Program, machine: MachineConfig,
                      target: tuple[int, Box]) -> tuple[Program, MachineConfig]:
    position, region = target
    compute = program.instructions[position]
    assert isinstance(compute, Compute)
    first = compute.inputs.index(compute.operands[0])
    inputs = list(compute.inputs)
    inputs[first] = replace(compute.operands[0], box=region)
    return edit(program, position, inputs=tuple(inputs)), machine


MUTATIONS = [
    # Every load in these programs writes data nothing else puts there, so its reader finds the place empty.
    Mutation("drop a load", "not-resident", _read_loads, lambda p, m, i: (drop(p, i), m)),
    # Only deps that no other path implies (brute force), on a load whose buffer the compute reads.
    Mutation("drop a dependency", "missing-dep", _load_deps, _without_dep),
    # A compute's input and output are both live while it runs, so they cannot share bytes.
    Mutation("move a buffer onto another's addresses", "overlap", _buffer_pairs, _move_onto),
    # One byte short of the furthest buffer's end.
    Mutation("shrink the capacity", "capacity", lambda p: [None], _shrink),
    # A Release with no deps is ordered after nothing, and each one here follows some use of its buffer.
    Mutation("release early", "early-release",
             lambda p: [i.id for i in p.instructions if isinstance(i, Release) and i.deps],
             lambda p, m, i: (edit(p, i, deps=()), m)),
    # The buffer holds the box at its old place in the tensor; a moved box has another shift.
    Mutation("store to the wrong box", "not-resident", _wrong_store_boxes,
             lambda p, m, target: (edit(p, target[0], box=target[1]), m)),
    # The stores of an output here are disjoint tiles, so the last one is the only store of its box.
    Mutation("drop the final store of an output", "output-not-stored", _last_output_stores,
             lambda p, m, i: (drop(p, i), m)),
    Mutation("change an operand's box", "not-resident", _wrong_operand_boxes, _with_operand_box),
]


@pytest.mark.parametrize("name", sorted(HAND_BUILT))
def test_hand_built_programs_are_legal(name: str) -> None:
    program = HAND_BUILT[name]()
    assert verify(program, small_machine()) == []
    check(program, small_machine())
    assert program_from_json(program_to_json(program)) == program


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_every_mutant_of_every_hand_built_program_is_rejected(mutation: Mutation) -> None:
    applied = 0
    for name, build in HAND_BUILT.items():
        for target in mutation.targets(build()):
            program, machine = mutation.apply(build(), small_machine(), target)
            found = kinds(program, machine)
            assert mutation.kind in found, f"{name}, {mutation.name} at {target}: {verify(program, machine)}"
            applied += 1
    assert applied >= 3


def test_check_raises_the_first_violation() -> None:
    program = drop(relu_double_buffered(), 0)
    with pytest.raises(VerifyError, match=r"compute 1 \(Relu relu\) reads X\[0:4, 0:2\] from buffer in0") as error:
        check(program, small_machine())
    assert error.value.violations == verify(program, small_machine())
    assert error.value.violations[0].instruction == 1


# One test per rule, on the smallest program that breaks it.


def test_missing_dependency_names_writer_reader_and_buffer() -> None:
    program = edit(relu_double_buffered(), 2, deps=())
    violation, *others = verify(program, small_machine())
    assert violation.kind == "missing-dep" and violation.instruction == 2
    assert [v.kind for v in others] == ["early-release"]  # in0's Release waits for the Relu, no longer for the load
    assert "load 0 (relu)" in violation.message and "buffer in0" in violation.message


def test_tensor_engine_order_is_a_dependency() -> None:
    program = matmul_resident_weights()
    second = [i.id for i in program.instructions if isinstance(i, Compute)][1]
    assert 0 not in program.instructions[second].deps  # W arrives through the engine's order only
    violations = verify(edit(program, second, engine="vector"), small_machine())
    assert violations[0].kind == "missing-dep" and "W[0:8, 0:6] from buffer w" in violations[0].message
    assert {v.kind for v in violations[1:]} == {"early-release"}  # w's Release no longer follows the first MatMul


def test_halo_part_missing_or_unordered() -> None:
    program = halo_two_parts()
    halo = program.instructions[2]
    assert isinstance(halo, DmaLoad) and halo.at == (0, 0, 4)
    assert kinds(drop(program, halo.id), small_machine()) == {"not-resident"}
    conv = next(i for i in program.instructions if isinstance(i, Compute))
    violations = verify(edit(program, conv.id, deps=tuple(d for d in conv.deps if d != halo.id)), small_machine())
    assert violations[0].kind == "missing-dep" and "X[0:1, 0:1, 0:6]" in violations[0].message
    assert {v.kind for v in violations[1:]} == {"early-release"}  # x's Release no longer waits for the halo


def test_read_after_release_is_not_resident() -> None:
    b = ProgramBuilder([tensor("X", (4, 2), "input"), tensor("Y", (4, 2), "output")],
                       [buffer("a", 0, (4, 2)), buffer("y", 32, (4, 2))])
    whole = Box.whole((4, 2))
    loaded = b.load("X", whole, "a")
    released = b.release("a", deps=[loaded])
    relu = b.compute("relu", "Relu", [operand("X", whole, "a")], operand("Y", whole, "y"), deps=[loaded, released])
    b.store("y", "Y", whole, deps=[relu])
    violations = verify(b.build("late", ["Y"]), small_machine())
    assert [v.kind for v in violations] == ["not-resident"]
    assert violations[0].message == ("compute 2 (Relu relu) reads X[0:4, 0:2] from buffer a at [0, 0], but "
                                     "X[0:4, 0:2] is not there (the buffer was last released by release 1)")


def test_early_release_while_a_store_reads() -> None:
    program = relu_double_buffered()
    release = 5  # out0's Release waits for the Relu that wrote it, not the store that reads it
    assert kinds(edit(program, release, deps=(2,)), small_machine()) == {"early-release"}


def _reload_in_place(deps: tuple[int, ...]) -> Program:
    b = ProgramBuilder([tensor("X", (2, 8), "input"), tensor("Y", (2, 8), "output")],
                       [buffer("a", 0, (1, 8)), buffer("y", 32, (1, 8))])
    first, second = box((0, 1), (0, 8)), box((1, 2), (0, 8))
    loaded = b.load("X", first, "a")
    relu = b.compute("relu", "Relu", [operand("X", first, "a")], operand("Y", first, "y"), deps=[loaded])
    stored = b.store("y", "Y", first, deps=[relu])
    y_free = b.release("y", deps=[stored])
    loaded = b.load("X", second, "a", deps=deps)  # over the first row, no Release between
    relu = b.compute("relu", "Relu", [operand("X", second, "a")], operand("Y", second, "y"), deps=[loaded, y_free])
    b.release("a", deps=[relu])
    stored = b.store("y", "Y", second, deps=[relu])
    b.release("y", deps=[stored])
    return b.build("reload", ["Y"])


def test_write_after_read_hazard() -> None:
    assert verify(_reload_in_place(deps=(1,)), small_machine()) == []
    violations = verify(_reload_in_place(deps=()), small_machine())
    assert {v.kind for v in violations} == {"write-hazard"}
    assert "compute 1 (Relu relu) reads" in violations[0].message and "(WAR)" in violations[0].message


def test_write_after_write_hazard() -> None:
    def program(ordered: bool) -> Program:
        b = ProgramBuilder([tensor("X", (2, 8), "input"), tensor("Y", (1, 8), "output")],
                           [buffer("a", 0, (1, 8)), buffer("y", 32, (1, 8))])
        first = b.load("X", box((0, 1), (0, 8)), "a")
        second = b.load("X", box((1, 2), (0, 8)), "a", deps=[first] if ordered else [])  # or it may land first
        relu = b.compute("relu", "Relu", [operand("X", box((1, 2), (0, 8)), "a")],
                         operand("Y", box((0, 1), (0, 8)), "y"), deps=[first, second])
        b.store("y", "Y", box((0, 1), (0, 8)), deps=[relu])
        return b.build("waw", ["Y"])

    assert verify(program(ordered=True), small_machine()) == []
    violations = verify(program(ordered=False), small_machine())
    assert [v.kind for v in violations] == ["write-hazard"] and "(WAW)" in violations[0].message


def test_buffer_reuse_needs_every_release_of_the_bytes_it_takes() -> None:
    program = buffer_reuse_after_release()
    load_z = next(i for i in program.instructions if isinstance(i, DmaLoad) and i.tensor == "Z")
    for kept in load_z.deps:  # z takes the bytes of both x and y: dropping either Release is an overlap
        violations = verify(edit(program, load_z.id, deps=(kept,)), small_machine())
        assert {v.kind for v in violations} == {"overlap"}, violations
    release_x = next(i.id for i in program.instructions if isinstance(i, Release) and i.buffer == "x")
    violations = verify(drop(program, release_x), small_machine())
    assert {v.kind for v in violations} == {"overlap"}
    assert "while buffer x (bytes [0, 32))" in violations[0].message and "is not released" in violations[0].message


def test_capacity_counts_whole_slots() -> None:
    # 5 rows over 4 partitions take 2 slots of 32 bytes: 64 bytes of each 64-byte partition, exactly full.
    def program(offset: int) -> Program:
        b = ProgramBuilder([tensor("X", (5, 8), "input")], [buffer("x", offset, (5, 8))])
        loaded = b.load("X", Box.whole((5, 8)), "x")
        b.release("x", deps=[loaded])
        return b.build("fill", [])

    machine = small_machine(capacity_bytes=4 * 64)
    assert verify(program(0), machine) == []
    [violation] = verify(program(32), machine)
    assert violation.kind == "capacity"
    assert "5 rows over 4 partitions take 2 slot(s) of 32 bytes, so bytes [32, 96)" in violation.message


@pytest.mark.parametrize(("mutate", "kind"), [
    (lambda p: edit_buffer(p, "in1", offset=48), "alignment"),
    (lambda p: edit(p, 0, queue=2), "queue"),
    (lambda p: edit(p, 0, queue=-1), "queue"),
    (lambda p: edit(p, 0, at=(0, 1)), "bounds"),
    (lambda p: edit(p, 0, box=box((0, 4), (7, 9))), "bounds"),
    (lambda p: edit(p, 0, box=box((0, 4), (0, 2), (0, 1))), "bounds"),
    (lambda p: replace(p, tensors=(replace(p.tensors[0], elem_bytes=2), *p.tensors[1:])), "elem-bytes"),
    (lambda p: edit(p, 0, buffer="nowhere"), "name"),
    (lambda p: edit(p, 0, tensor="nothing"), "name"),
    (lambda p: edit(p, 3, buffer="nowhere"), "name"),
    (lambda p: replace(p, outputs=("Y", "Z")), "name"),
    (lambda p: replace(p, buffers=(*p.buffers, p.buffers[0])), "name"),
    (lambda p: edit(p, 4, tensor="X"), "read-only"),
])
def test_static_rules(mutate: Callable[[Program], Program], kind: Kind) -> None:
    assert kind in kinds(mutate(relu_double_buffered()), small_machine())


def test_load_of_an_intermediate_needs_its_store_first() -> None:
    program = chain_through_dram()
    load_t = next(i for i in program.instructions if isinstance(i, DmaLoad) and i.tensor == "T")
    store = next(d for d in load_t.deps if isinstance(program.instructions[d], DmaStore))
    violations = verify(edit(program, load_t.id, deps=tuple(d for d in load_t.deps if d != store)), small_machine())
    assert [v.kind for v in violations] == ["dram-not-ready"]
    assert f"store {store} (relu) writes part of it but does not happen-before" in violations[0].message
    never = drop(program, store)
    assert "dram-not-ready" in kinds(never, small_machine())


def test_output_coverage_counts_overlapping_stores_exactly() -> None:
    whole = Box.whole((4, 8))
    b = ProgramBuilder([tensor("X", (4, 8), "input"), tensor("Y", (4, 8), "output")],
                       [buffer("a", 0, (4, 8)), buffer("y", 64, (4, 8))])
    loaded = b.load("X", whole, "a")
    relu = b.compute("relu", "Relu", [operand("X", whole, "a")], operand("Y", whole, "y"), deps=[loaded])
    parts = [((0, 3), (0, 8)), ((2, 4), (0, 5))]  # overlapping, and missing Y[3:4, 5:8]
    stored = [b.store("y", "Y", box(*part), at=(part[0][0], part[1][0]), deps=[relu]) for part in parts]
    b.release("y", deps=stored)
    violations = verify(b.build("cover", ["Y"]), small_machine())
    assert [(v.kind, v.message) for v in violations] == [
        ("output-not-stored", "model output Y: 3 of 32 elements are never stored, e.g. Y[3:4, 5:8]")]


def test_a_read_may_span_segments_of_several_writers() -> None:
    b = ProgramBuilder([tensor("X", (4, 8), "input"), tensor("Y", (4, 8), "output")],
                       [buffer("a", 0, (4, 8)), buffer("y", 64, (4, 8))])
    halves = [b.load("X", box((0, 4), (4 * h, 4 * h + 4)), "a", at=(0, 4 * h), queue=h) for h in (0, 1)]
    relu = b.compute("relu", "Relu", [operand("X", Box.whole((4, 8)), "a")], operand("Y", Box.whole((4, 8)), "y"),
                     deps=halves)
    b.release("a", deps=[relu])
    b.store("y", "Y", Box.whole((4, 8)), deps=[relu])
    program = b.build("halves", ["Y"])
    assert verify(program, small_machine()) == []
    misplaced = edit(program, 1, at=(0, 3))  # the right half lands one column early: X[.., 4] sits where 3 belongs
    assert "not-resident" in kinds(misplaced, small_machine())


def test_in_place_compute_reads_before_it_writes() -> None:
    whole = Box.whole((4, 8))
    b = ProgramBuilder([tensor("X", (4, 8), "input"), tensor("Y", (4, 8), "output")], [buffer("a", 0, (4, 8))])
    loaded = b.load("X", whole, "a")
    relu = b.compute("relu", "Relu", [operand("X", whole, "a")], operand("Y", whole, "a"), deps=[loaded])
    stored = b.store("a", "Y", whole, deps=[relu])
    b.release("a", deps=[stored])
    assert verify(b.build("in-place", ["Y"]), small_machine()) == []


def test_unread_inputs_must_name_a_tensor() -> None:
    program = relu_double_buffered()
    relu = program.instructions[2]
    assert isinstance(relu, Compute)
    assert verify(edit(program, 2, inputs=(*relu.inputs, Unread("X"))), small_machine()) == []
    [violation] = verify(edit(program, 2, inputs=(*relu.inputs, Unread("Z"))), small_machine())
    assert violation.kind == "name" and "unknown tensor Z" in violation.message


def test_deps_on_later_instructions_are_caught_even_around_the_constructor() -> None:
    program = relu_double_buffered()
    late = list(program.instructions)
    late[2] = replace(late[2], deps=(5,))
    object.__setattr__(program, "instructions", tuple(late))  # Program's own check would refuse this
    assert [(v.instruction, v.kind) for v in verify(program, small_machine())] == [(2, "bad-dep")]


# Region arithmetic and the index against brute force over every element.

small_regions = st.tuples(st.integers(0, 5), st.integers(1, 4), st.integers(0, 5), st.integers(1, 4)).map(
    lambda r: ((r[0], r[2]), (r[0] + r[1], r[2] + r[3])))


def _elements(region: Region) -> set[tuple[int, int]]:
    (y0, x0), (y1, x1) = region
    return {(y, x) for y in range(y0, y1) for x in range(x0, x1)}


@given(small_regions, st.lists(small_regions, max_size=6))
def test_uncovered_is_exact(target: Region, cuts: list[Region]) -> None:
    pieces = uncovered(target, cuts)
    left = _elements(target).difference(*map(_elements, cuts))
    assert sum(volume(piece) for piece in pieces) == len(left)
    assert set().union(*map(_elements, pieces)) == left


tall_regions = st.tuples(st.integers(0, 40), st.integers(1, 24), st.integers(0, 5), st.integers(1, 4)).map(
    lambda r: ((r[0], r[2]), (r[0] + r[1], r[2] + r[3])))  # some span more than RegionIndex.WIDE buckets


@given(st.lists(st.tuples(tall_regions, st.booleans()), max_size=30), tall_regions)
def test_region_index_finds_what_a_scan_finds(operations: list[tuple[Region, bool]], query: Region) -> None:
    index: RegionIndex[int, Region] = RegionIndex((40, 8))
    live: dict[int, Region] = {}
    for key, (region, remove_one) in enumerate(operations):
        if remove_one and live:
            index.remove(min(live))
            del live[min(live)]
        index.add(key, region, region)
        live[key] = region
    found = sorted(region for region, _ in index.overlapping(query))
    assert found == sorted(region for region in live.values() if intersect(region, query) is not None)


# Generated programs: every one is legal, every mutant is not.


@st.composite
def chains(draw: st.DrawFn) -> tuple[Program, MachineConfig]:
    rows = draw(st.integers(2, 9))
    ops = draw(st.lists(st.sampled_from(["Relu", "Exp", "Neg", "Sigmoid"]), min_size=1, max_size=3))
    program = tiled_chain(rows=rows, cols=draw(st.integers(1, 5)), tile_rows=draw(st.integers(1, rows - 1)), ops=ops,
                          copies=draw(st.integers(1, 3)), through_dram=draw(st.booleans()),
                          engines=draw(st.lists(st.sampled_from(ENGINES), min_size=len(ops), max_size=len(ops))))
    return program, machine_for(program, partitions=draw(st.sampled_from([1, 2, 4, 8])))


@given(chains())
def test_generated_programs_are_legal(case: tuple[Program, MachineConfig]) -> None:
    program, machine = case
    assert verify(program, machine) == []


@given(chains(), st.sampled_from(MUTATIONS), st.data())
def test_generated_mutants_are_rejected(case: tuple[Program, MachineConfig], mutation: Mutation,
                                        data: st.DataObject) -> None:
    program, machine = case
    targets = mutation.targets(program)
    assert targets, f"{mutation.name} applies to every generated program"
    target = data.draw(st.sampled_from(targets), label="target")
    mutant, mutant_machine = mutation.apply(program, machine, target)
    assert mutation.kind in kinds(mutant, mutant_machine)


# Happens-before against a brute-force transitive closure.


@st.composite
def dags(draw: st.DrawFn) -> list[Instruction]:
    instructions: list[Instruction] = []
    out = Operand("Y", Box((0,), (1,)), "b", (0,))
    for position in range(draw(st.integers(1, 30))):
        deps = tuple(sorted(draw(st.sets(st.integers(0, position - 1), max_size=3)))) if position else ()
        kind = draw(st.sampled_from(["compute", "load", "release"]))
        if kind == "compute":
            instructions.append(Compute(position, deps, draw(st.sampled_from(ENGINES)), "n", "Relu", (), (), out))
        elif kind == "load":
            instructions.append(DmaLoad(position, deps, 0, "X", Box((0,), (1,)), "b", (0,)))
        else:
            instructions.append(Release(position, deps, "b"))
    return instructions


@given(dags())
def test_happens_before_is_the_transitive_closure(instructions: list[Instruction]) -> None:
    ancestors: list[set[int]] = []
    last_on: dict[str, int] = {}
    for instruction in instructions:
        direct = set(instruction.deps)
        if isinstance(instruction, Compute):
            if instruction.engine in last_on:
                direct.add(last_on[instruction.engine])
            last_on[instruction.engine] = instruction.id
        ancestors.append(direct.union(*(ancestors[d] for d in direct)))
    hb = HappensBefore(instructions)
    for b in range(len(instructions)):
        for a in range(len(instructions)):
            assert hb.before(a, b) == (a in ancestors[b]), (a, b)


def test_hundred_thousand_instructions_verify_in_seconds() -> None:
    """Not a timing assertion: prints how long a 10^5-instruction legal program takes (run with -s to see it)."""
    program = tiled_chain(rows=11_112, cols=8, tile_rows=1, ops=["Relu", "Exp", "Neg"])
    assert len(program.instructions) >= 100_000
    started = time.perf_counter()
    assert verify(program, machine_for(program)) == []
    print(f"verify: {len(program.instructions)} instructions in {time.perf_counter() - started:.2f} s")


def test_buffers_are_described_in_messages() -> None:
    program = edit_buffer(relu_double_buffered(), "out0", offset=0)
    messages = [v.message for v in verify(program, small_machine()) if v.kind == "overlap"]
    assert messages and "buffer out0 (bytes [0, 8))" in messages[0] and "buffer in0" in messages[0]
