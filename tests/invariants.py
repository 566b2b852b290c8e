"""What every plan of every strategy must satisfy, checked on one model and one machine.

`check_invariants(model, machine, strategy)` plans the model and asserts that the plan

- is legal: `simulator.verify` finds no violation;
- computes what onnxruntime computes, tile by tile (`run_functional` against `reference_values`);
- moves at least the compulsory bytes, and no more than the baseline does (strategies other than the baseline);
- takes at least the roofline cycles, and never more scratchpad than the machine has;
- reads back from its JSON as the same program, and comes out byte-identical when planned again from scratch;
- or, when the scratchpad is too small, fails with the clear PlanError that names an op and the bytes it needs, and
  a machine with four times the scratchpad then plans it legally or refuses it the same way.

Any failure carries the model as ONNX text and the machine as YAML, so a shrunk example can be rerun by hand.
Adding a strategy to the properties is one line in STRATEGIES.

Open planner bugs are listed in KNOWN_BUGS, each with its xfail regression in tests/regressions/. While a bug is
listed, an example that runs into it raises KnownBug (the properties skip it) or, for the bound, is held to the
corrected bound only; delete the entry when the fix lands and the properties check that case again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import islpy as isl
import numpy as np
import onnx
import onnx.printer

from planner import poly
from planner.baseline import plan_baseline
from planner.bounds import Bounds, bounds, program_bounds
from planner.check import reference_values
from planner.errors import PlanError
from planner.graph import Graph, load_graph
from planner.ops import lower
from planner.stmt import LoweredGraph
from simulator.functional import run_functional
from simulator.isa import Compute, Program, Unread
from simulator.machine import MachineConfig, machine_to_yaml
from simulator.stats import SimStats
from simulator.timing import simulate
from simulator.verify import verify

Strategy = Callable[[LoweredGraph, MachineConfig], Program]
STRATEGIES: dict[str, Strategy] = {"baseline": plan_baseline}
GROWTH = 4  # a refused model is planned again on a scratchpad this many times larger

KNOWN_BUGS: dict[str, str] = {
    "output-aliases-input": "a model output that is a view (Reshape, Flatten...) of a model input is never stored, "
                            "and loads of the input are taken for loads of an unwritten output",
    "unread-tensor-undeclared": "an op that reads none of an input (a conv whose windows all fall in the padding) "
                                "names it in an Unread slot, but the program does not declare the tensor",
    "allocator-refusal": "the baseline sizes tiles by the cost of the middle block only; when a border block reads "
                         "more (padding clips the middle one), the allocator refuses with a message naming a "
                         "buffer, not the op",
    "slot-evicts-current-tile": "the baseline's double buffering evicts the oldest-loaded slot, which is the one the "
                                "current tile reads when its box came back (A, B, A, C along a padded, dilated "
                                "window), so the next tile's prefetch overwrites it",
    "compulsory-counts-unread": "compulsory traffic counts every input and constant an op touches in full, though a "
                                "strided window or a conv reading only padding needs part of it",
}


class KnownBug(Exception):
    """The example runs into an open bug listed in KNOWN_BUGS."""


def known_bug(bug: str, detail: str) -> None:
    """Raise KnownBug while `bug` is listed; once it is fixed (and delisted) the example is checked in full."""
    if bug in KNOWN_BUGS:
        raise KnownBug(f"{bug}: {detail}")


def describe(model: onnx.ModelProto, machine: MachineConfig, dtype: str | None = None) -> str:
    """The model as ONNX text and the machine as YAML: what it takes to rerun a failing example by hand."""
    return (f"--- model (onnx.parser.parse_model) ---\n{onnx.printer.to_text(model)}\n"
            f"--- machine (simulator.machine.machine_from_dict(yaml.safe_load(...))) ---\n{machine_to_yaml(machine)}"
            + (f"--- planning dtype: {dtype} ---\n" if dtype else ""))


@contextmanager
def explained(model: onnx.ModelProto, machine: MachineConfig, dtype: str | None = None) -> Iterator[None]:
    """Attach `describe(model, machine, dtype)` to any exception that leaves the block, KnownBug aside."""
    try:
        yield
    except KnownBug:
        raise
    except BaseException as exc:
        exc.add_note(describe(model, machine, dtype))
        raise


@dataclass(frozen=True, slots=True)
class Case:
    """A model ready to plan: its graph, its lowering, and the numbers to check a plan of it against."""

    model: onnx.ModelProto
    graph: Graph
    lowered: LoweredGraph
    dram: dict[str, np.ndarray]
    reference: dict[str, np.ndarray]

    @classmethod
    def of(cls, model: onnx.ModelProto, dtype: str | None = None) -> Case:
        graph = load_graph(model, dtype=dtype)
        dram, reference = reference_values(graph, model)
        return cls(model, graph, lower(graph), dram, reference)


def traffic_bytes(stats: SimStats) -> int:
    return stats.dram_bytes_read + stats.dram_bytes_written


def check_invariants(model: onnx.ModelProto, machine: MachineConfig, strategy: str = "baseline",
                     dtype: str | None = None) -> Program | None:
    """Plan `model` on `machine` with the named strategy (and planning dtype) and assert every invariant; the program,
    or None when the scratchpad was rightly too small."""
    with explained(model, machine, dtype):
        case = Case.of(model, dtype)
        plan = STRATEGIES[strategy]
        try:
            program = plan(case.lowered, machine)
        except PlanError as error:
            check_too_small(error, case, machine, strategy)
            return None
        check_known_bugs(program, case)
        stats = check_program(program, case, machine)
        if strategy != "baseline":
            try:
                baseline = simulate(plan_baseline(case.lowered, machine), machine).stats
            except PlanError:
                pass  # a strategy may fit where the baseline does not
            else:
                assert traffic_bytes(stats) <= traffic_bytes(baseline), (
                    f"{strategy} moves {traffic_bytes(stats):,} bytes, the baseline {traffic_bytes(baseline):,}")
        again = plan(lower(load_graph(model, dtype=dtype)), machine)  # from scratch: no cache or id() may leak into the plan
        assert again.to_json() == program.to_json(), "planning the same model twice gave different plans"
        return program


def check_program(program: Program, case: Case, machine: MachineConfig) -> SimStats:
    """Every invariant of one program of `case` on `machine`; returns its simulated stats."""
    violations = verify(program, machine)
    if violations and all(v.kind == "not-resident" and _EVICTED.search(v.message) for v in violations):
        known_bug("slot-evicts-current-tile", violations[0].message)
    assert violations == [], f"verify: {len(violations)} violations, first: {violations[0].message}"
    run_functional(program, machine, case.dram, reference=case.reference)  # raises on the first tile that differs
    stats = simulate(program, machine).stats
    needed = footprint_bounds(case.lowered, machine)
    for limits in (needed, bounds(case.lowered, machine)):
        if limits != needed and "compulsory-counts-unread" in KNOWN_BUGS:
            break  # the planner's own bound overcounts: hold the plan to the footprint bound only
        assert limits.compulsory_bytes <= traffic_bytes(stats), (
            f"traffic {traffic_bytes(stats):,} bytes is below the compulsory {limits.compulsory_bytes:,}")
        assert limits.roofline_cycles <= stats.total_cycles, (
            f"{stats.total_cycles:,} cycles is below the roofline {limits.roofline_cycles:,}")
        if limits is not needed:
            assert program_bounds(program, machine) == limits, "the plan file's bounds differ from the model's"
    assert stats.peak_scratchpad_bytes <= machine.scratchpad.capacity_bytes, (
        f"peak scratchpad {stats.peak_scratchpad_bytes:,} bytes exceeds {machine.scratchpad.capacity_bytes:,}")
    assert Program.from_json(program.to_json()) == program, "the plan JSON does not read back to the same program"
    return stats


def footprint_bounds(lowered: LoweredGraph, machine: MachineConfig) -> Bounds:
    """The bounds with compulsory traffic counted from isl footprints: the elements of each input and constant that
    some op reads, and every element of every output. A legal plan moves at least this much."""
    graph = lowered.graph
    read: dict[str, isl.Set] = {}
    for stmt in lowered.statements:
        for tensor, elements in poly.footprint(stmt).items():
            if graph.tensors[tensor].kind != "activation":
                read[tensor] = read[tensor].union(elements) if tensor in read else elements
    compulsory = sum(int(elements.count_val().to_python()) * graph.elem_bytes(tensor)
                     for tensor, elements in read.items())
    compulsory += sum(graph.tensor_bytes(name) for name in {lowered.base(name) for name in graph.outputs})
    limits = bounds(lowered, machine)
    memory_cycles = math.ceil(compulsory / machine.dram.bandwidth_bytes_per_cycle)
    return Bounds(compulsory, limits.compute_cycles, memory_cycles)


def check_known_bugs(program: Program, case: Case) -> None:
    inputs = [name for name in program.outputs if case.graph.tensors[name].kind == "input"]
    if inputs:
        known_bug("output-aliases-input", f"model output {inputs[0]!r} is a view of a model input")
    declared = {tensor.name for tensor in program.tensors}
    for instruction in program.instructions:
        if isinstance(instruction, Compute):
            for slot in instruction.inputs:
                if isinstance(slot, Unread) and slot.tensor not in declared:
                    known_bug("unread-tensor-undeclared", f"{instruction.node} reads none of {slot.tensor!r}")


_NAMED = re.compile(r"\b(?:op|node) '([^']+)'")
_EVICTED = re.compile(r"reads (\S+)\[[^]]*\] from buffer (\S+) at .*but that place holds \1\[")
_ALLOCATOR = re.compile(r"buffer \S+ needs \d+ bytes per partition at offset")


def check_too_small(error: PlanError, case: Case, machine: MachineConfig, strategy: str) -> None:
    """A refusal must name an op of the model and the bytes it needs; four times the scratchpad must then plan
    legally or be refused the same way."""
    message = str(error)
    nodes = {node.name for node in case.graph.nodes}
    named = [name for name in _NAMED.findall(message) if name in nodes]
    if not named and _ALLOCATOR.search(message):
        known_bug("allocator-refusal", message)
    assert named and "bytes" in message, f"a PlanError that names no op of the model, or no bytes: {message}"
    bigger = replace(machine, scratchpad=replace(machine.scratchpad,
                                                 capacity_bytes=GROWTH * machine.scratchpad.capacity_bytes))
    try:
        program = STRATEGIES[strategy](case.lowered, bigger)
    except PlanError as again:
        again_named = [name for name in _NAMED.findall(str(again)) if name in nodes]
        if not again_named and _ALLOCATOR.search(str(again)):
            known_bug("allocator-refusal", str(again))
        assert again_named and "bytes" in str(again), f"a PlanError that names no op, or no bytes: {again}"
        return
    check_known_bugs(program, case)
    check_program(program, case, bigger)
