"""The oracle check: are the checks strong enough to catch planner bugs, each on its own?

Each mutation plants one class of planner bug into a valid plan of a generated model (one test per strategy in
`planner.testing.STRATEGIES`), keeping the program well formed (ids renumbered, deps pointing back). Every mutant
goes through `verify` alone and through the functional simulation alone (`run_functional` against onnxruntime, two
poisons and two orders), never one after the other, so that neither check's rate is the other's. Each must catch at
least 95% of every class it can see; `verify` cannot see a wrong halo (a well-formed program that computes the wrong
numbers), and the functional simulation cannot see a bug in data no output depends on (x read by Sub(x, x), the
weights of a conv whose only output reads padding, the input of a Softmax over an axis of extent 1): the mutants of
plans of models with such a dead read are counted apart for it. Both tables are printed with `-s`.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from planner.errors import PlanError
from planner.staging.alloc import align
from planner.testing import STRATEGIES, Case, explained, machines, onnx_models
from simulator.functional import FunctionalError, FunctionalMismatch, run_functional
from simulator.isa import Box, Buffer, Compute, DmaLoad, DmaStore, Instruction, Operand, Program, Release
from simulator.machine import MachineConfig
from simulator.verify import verify

CATCH_RATE = 0.95
WINDOWED = ("Conv", "MaxPool", "AveragePool")
WINDOWED_LAYERS = ("unary", "conv", "pool", "binary")  # models dense in halos, for the wrong-halo class


# -- keeping mutants well formed -------------------------------------------------------------------------------------

def rebuild(program: Program, order: Sequence[Instruction], buffers: Sequence[Buffer] | None = None) -> Program:
    """`order` is the mutant's instructions, each still carrying its old id (a new one carries id -1 and deps in old
    ids). Ids become positions; a dep on a dropped instruction becomes a dep on what that one waited for, so that
    dropping an instruction removes it and nothing else."""
    old = {i.id: i for i in program.instructions}
    position = {i.id: n for n, i in enumerate(order) if i.id >= 0}

    def remap(deps: Sequence[int]) -> set[int]:
        found: set[int] = set()
        for dep in deps:
            found |= {position[dep]} if dep in position else remap(old[dep].deps)
        return found

    instructions = []
    for n, instruction in enumerate(order):
        deps = tuple(sorted(d for d in remap(instruction.deps) if d < n))
        instructions.append(replace(instruction, id=n, deps=deps))
    return replace(program, instructions=tuple(instructions),
                   buffers=tuple(buffers) if buffers is not None else program.buffers)


def reads_buffer(instruction: Instruction, buffer: str) -> bool:
    if isinstance(instruction, Compute):
        return any(operand.buffer == buffer for operand in instruction.operands)
    return isinstance(instruction, DmaStore) and instruction.buffer == buffer


def writes_buffer(instruction: Instruction, buffer: str) -> bool:
    if isinstance(instruction, Compute):
        return instruction.output.buffer == buffer
    return isinstance(instruction, DmaLoad) and instruction.buffer == buffer


# -- the bug classes ---------------------------------------------------------------------------------------------------

Mutation = Callable[[Program, MachineConfig, random.Random], Program | None]


def skipped_load(program: Program, machine: MachineConfig, rng: random.Random) -> Program | None:
    """A DMA load that never happens."""
    loads = [i for i in program.instructions if isinstance(i, DmaLoad)]
    if not loads:
        return None
    dropped = rng.choice(loads)
    return rebuild(program, [i for i in program.instructions if i is not dropped])


def early_release(program: Program, machine: MachineConfig, rng: random.Random) -> Program | None:
    """A buffer released just before one of its readers (after everything that used it before)."""
    readers = [(i, b.name) for i in program.instructions for b in program.buffers if reads_buffer(i, b.name)]
    if not readers:
        return None
    reader, buffer = rng.choice(readers)
    before = program.instructions[:reader.id]
    users = tuple(i.id for i in before if reads_buffer(i, buffer) or writes_buffer(i, buffer))
    release = Release(-1, users, buffer)
    return rebuild(program, [*before, release, *program.instructions[reader.id:]])


def overlapping_allocation(program: Program, machine: MachineConfig, rng: random.Random) -> Program | None:
    """A buffer moved onto the bytes of another buffer that one compute uses at the same time."""
    partitions, capacity = machine.scratchpad.partitions, machine.scratchpad.partition_bytes
    alignment = machine.scratchpad.alignment_bytes
    by_name = {b.name: b for b in program.buffers}
    sites = []
    for compute in program.instructions:
        if isinstance(compute, Compute):
            names = sorted({compute.output.buffer, *(o.buffer for o in compute.operands)})
            sites += [(a, b) for a in names for b in names if a != b]
    rng.shuffle(sites)
    for moved_name, fixed_name in sites:
        moved, fixed = by_name[moved_name], by_name[fixed_name]
        size = align(moved.partition_bytes(partitions), alignment)
        fixed_end = fixed.offset + fixed.partition_bytes(partitions)
        # aligned offsets whose range [offset, offset + size) meets [fixed.offset, fixed_end) and fits the partition
        low = max(0, fixed.offset - size + 1)
        candidates = [o for o in range(align(low, alignment), min(fixed_end, capacity - size + 1), alignment)
                      if o != moved.offset]
        if candidates:
            offset = min(candidates, key=lambda o: abs(o - fixed.offset))
            buffers = [replace(b, offset=offset) if b.name == moved_name else b for b in program.buffers]
            return rebuild(program, program.instructions, buffers)
    return None


def missing_dependency(program: Program, machine: MachineConfig, rng: random.Random) -> Program | None:
    """One dep dropped that nothing else implies: not another path of deps, not the serial order of an engine."""
    instructions = program.instructions
    ancestors: list[int] = []  # bitsets of what happens before each instruction
    previous_on_engine: dict[str, int] = {}
    engine_predecessor: list[int | None] = []
    for i in instructions:
        before = previous_on_engine.get(i.engine) if isinstance(i, Compute) else None
        engine_predecessor.append(before)
        mask = 0
        for p in (*i.deps, *([before] if before is not None else [])):
            mask |= ancestors[p] | (1 << p)
        ancestors.append(mask)
        if isinstance(i, Compute):
            previous_on_engine[i.engine] = i.id
    needed = []
    for i in instructions:
        for dep in i.deps:
            others = [d for d in i.deps if d != dep]
            before = engine_predecessor[i.id]
            others += [before] if before is not None else []
            implied = 0
            for p in others:
                implied |= ancestors[p] | (1 << p)
            if not implied >> dep & 1:
                needed.append((i, dep))
    if not needed:
        return None
    victim, dep = rng.choice(needed)
    mutated = replace(victim, deps=tuple(d for d in victim.deps if d != dep))
    return replace(program, instructions=tuple(mutated if i is victim else i for i in instructions))


def halo_sites(program: Program) -> list[tuple[int, int, str]]:
    """(compute id, axis, edge) of every conv or pool tile whose input box has more than one row along a spatial
    axis."""
    sites = []
    for compute in program.instructions:
        if isinstance(compute, Compute) and compute.op_type in WINDOWED and isinstance(compute.inputs[0], Operand):
            box = compute.inputs[0].box
            sites += [(compute.id, axis, edge) for axis in range(2, len(box.start)) if box.shape[axis] > 1
                      for edge in ("start", "stop")]
    return sites


def wrong_halo(program: Program, machine: MachineConfig, rng: random.Random) -> Program | None:
    """A conv or pool tile whose input box misses its last (or first) row along a spatial axis, in the loads that
    fill it and in the operands that read it alike."""
    sites = halo_sites(program)
    rng.shuffle(sites)
    return next((m for site in sites if (m := shrink_halo(program, *site)) is not None), None)


def shrink_halo(program: Program, compute_id: int, axis: int, edge: str) -> Program | None:
    """`wrong_halo` at a given site; None when the operand's box did not come from loads alone (a resident tensor
    read in place)."""
    compute = program.instructions[compute_id]
    assert isinstance(compute, Compute)
    operand = compute.inputs[0]
    assert isinstance(operand, Operand)
    old_box = operand.box
    start, stop = list(old_box.start), list(old_box.stop)
    if edge == "start":
        start[axis] += 1
    else:
        stop[axis] -= 1
    new_box = Box(tuple(start), tuple(stop))
    shift = tuple(n - o for n, o in zip(new_box.start, old_box.start, strict=True))

    # The loads that put old_box into the buffer: the latest writes of that buffer before the compute.
    fills: list[DmaLoad] = []
    for i in reversed(program.instructions[:compute.id]):
        if writes_buffer(i, operand.buffer):
            if not isinstance(i, DmaLoad) or i.tensor != operand.tensor or not _inside(i.box, old_box):
                break
            fills.append(i)
            if sum(load.box.numel for load in fills) >= old_box.numel:
                break
    if sum(load.box.numel for load in fills) != old_box.numel:
        return None
    filled = {load.id for load in fills}
    first, rewritten = min(filled), False
    order: list[Instruction] = []
    for i in program.instructions:
        if isinstance(i, DmaLoad) and i.id in filled:
            part = _intersect(i.box, new_box)
            if part is not None:
                at = tuple(a + p - s for a, p, s in zip(i.at, part.start, i.box.start, strict=True))
                order.append(replace(i, box=part, at=at))
            continue
        if i.id > first and not rewritten:  # every reader of what the fills put there, until it is overwritten
            rewritten = writes_buffer(i, operand.buffer)
            slot = i.inputs[0] if isinstance(i, Compute) else None
            if isinstance(i, Compute) and isinstance(slot, Operand) and slot.buffer == operand.buffer \
                    and slot.box == old_box:
                at = tuple(a + s for a, s in zip(slot.at, shift, strict=True))
                i = replace(i, inputs=(replace(slot, box=new_box, at=at), *i.inputs[1:]))
        order.append(i)
    return rebuild(program, order)


def _inside(part: Box, whole: Box) -> bool:
    return all(w0 <= p0 and p1 <= w1 for p0, p1, w0, w1 in zip(part.start, part.stop, whole.start, whole.stop,
                                                                  strict=True))


def _intersect(first: Box, second: Box) -> Box | None:
    start = tuple(max(a, b) for a, b in zip(first.start, second.start, strict=True))
    stop = tuple(min(a, b) for a, b in zip(first.stop, second.stop, strict=True))
    return Box(start, stop) if all(a < b for a, b in zip(start, stop, strict=True)) else None


MUTATIONS: dict[str, Mutation] = {
    "skipped load": skipped_load,
    "early release": early_release,
    "overlapping allocation": overlapping_allocation,
    "missing dependency": missing_dependency,
    "wrong halo": wrong_halo,
}


# -- the check ---------------------------------------------------------------------------------------------------------

def oracle_examples() -> int:
    """Plans to mutate: 40 under the `ci` profile, the profile's own count otherwise (2000 under `thorough`)."""
    if settings.get_current_profile_name() == "ci":
        return 40
    return settings().max_examples


MUTANTS_PER_CLASS = 2  # per plan: the variety is in the plans (40), each mutant costs a functional run
CHECKS = ("functional", "verify")
BLIND = {"verify": {"wrong halo"}}  # classes a check cannot see


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_oracle_catches_planted_bugs(strategy: str, capsys: pytest.CaptureFixture[str]) -> None:
    tally: dict[str, dict[str, Counter[str]]] = {check: {name: Counter() for name in MUTATIONS} for check in CHECKS}

    # Scratchpads small enough that most ops take several tiles, large enough that most models plan.
    @settings(max_examples=oracle_examples())
    @given(st.one_of(onnx_models(layers=WINDOWED_LAYERS, min_layers=2, input_ranks=(4, 3)), onnx_models()),
           machines(partition_bytes=st.integers(96, 4096)), st.integers(0, 2**32 - 1))
    def plant(model, machine, seed) -> None:
        case = Case.of(model)
        try:
            program = STRATEGIES[strategy](case.lowered, machine)
        except PlanError:
            reject()
        with explained(model, machine):  # the unmutated plan must pass both checks
            assert verify(program, machine) == []
            run_functional(program, machine, case.dram, reference=case.reference)
        rng = random.Random(seed)
        blind = bool(dead_reads(case))  # the functional check may not see its mutants
        for name, mutate in MUTATIONS.items():
            for _ in range(MUTANTS_PER_CLASS):
                mutant = mutate(program, machine, rng)
                if mutant is None:
                    break
                for check in CHECKS:
                    if check == "functional" and blind:  # counted apart, and still run
                        tally[check][name]["dead"] += 1
                        tally[check][name]["dead caught"] += catches(check, mutant, case, machine)
                        continue
                    tally[check][name]["mutants"] += 1
                    tally[check][name]["caught" if catches(check, mutant, case, machine) else "missed"] += 1

    plant()
    tables, missed = [], []
    for check in CHECKS:
        lines = []
        for name, counts in tally[check].items():
            rate = counts["caught"] / counts["mutants"] if counts["mutants"] else 0.0
            blind = name in BLIND.get(check, set())
            apart = (f" (and {counts['dead caught']} of {counts['dead']} in models with a dead read)"
                     if counts["dead"] else "")
            lines.append(f"  {name:<24} {rate:6.1%} of {counts['mutants']:>4} caught" + (" (cannot see)" if blind
                                                                                           else apart))
            if not blind and rate < CATCH_RATE:
                missed.append(f"{check}: {name}")
        tables.append(f"{check} alone, {strategy} plans:\n" + "\n".join(lines))
    report = "\n".join(tables)
    with capsys.disabled():
        print("\n" + report)
    assert not missed, f"fewer than {CATCH_RATE:.0%} caught for {', '.join(missed)}\n{report}"


def dead_reads(case: Case) -> list[tuple[str, str]]:
    """(node, tensor) where the node reads a float tensor that no model output depends on through it: changing
    every value the node sees of it (in every input slot at once: Sub(x, x) is dead) leaves the outputs as they
    were. onnxruntime on the model with that node fed a changed copy."""
    outputs = [o.name for o in case.model.graph.output]
    expected = [case.reference[name] for name in outputs]
    feeds = {i.name: np.asarray(case.reference[i.name]) for i in case.model.graph.input}
    dead = []
    for position, node in enumerate(case.model.graph.node):
        for name in dict.fromkeys(node.input):
            value = np.asarray(case.reference.get(name, np.zeros(0)))
            if not name or value.dtype.kind != "f" or not value.size:
                continue
            model = onnx.ModelProto()
            model.CopyFrom(case.model)
            del model.graph.value_info[:]
            changed = model.graph.node[position]
            changed.input[:] = [f"{name}__changed" if i == name else i for i in changed.input]
            model.graph.input.append(onnx.helper.make_tensor_value_info(
                f"{name}__changed", onnx.helper.np_dtype_to_tensor_dtype(value.dtype), value.shape))
            options = ort.SessionOptions()
            options.log_severity_level = 3  # the replaced initializer is unused now, and onnxruntime says so
            session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
            got = session.run(outputs, {**feeds, f"{name}__changed": np.asarray(value * -1.7 + 0.3, dtype=value.dtype)})
            if all(np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(got, expected, strict=True)):
                dead.append((node.name, name))
    return dead


def catches(check: str, mutant: Program, case: Case, machine: MachineConfig) -> bool:
    """Does `check` alone find the mutant wrong? A simulator refusing to run it counts as caught."""
    if check == "verify":
        return bool(verify(mutant, machine))
    try:
        run_functional(mutant, machine, case.dram, reference=case.reference)
    except (FunctionalMismatch, FunctionalError):
        return True
    return False
