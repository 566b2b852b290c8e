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
from planner.fused import plan_fused
from planner.graph import Graph, load_graph
from planner.ops import lower
from planner.stmt import LoweredGraph
from simulator.functional import run_functional
from simulator.isa import Program
from simulator.machine import MachineConfig
from simulator.machine_file import machine_to_yaml
from simulator.stats import SimStats
from simulator.timing import simulate
from simulator.verify import verify

Strategy = Callable[[LoweredGraph, MachineConfig], Program]
STRATEGIES: dict[str, Strategy] = {"baseline": plan_baseline, "fused": plan_fused}
GROWTH = 4  # a refused model is planned again on a scratchpad this many times larger

def describe(model: onnx.ModelProto, machine: MachineConfig, dtype: str | None = None) -> str:
    """The model as ONNX text and the machine as YAML: what it takes to rerun a failing example by hand."""
    return (f"--- model (onnx.parser.parse_model) ---\n{onnx.printer.to_text(model)}\n"
            f"--- machine (simulator.machine_file.machine_from_dict(yaml.safe_load(...))) ---\n"
            f"{machine_to_yaml(machine)}"
            + (f"--- planning dtype: {dtype} ---\n" if dtype else ""))


@contextmanager
def explained(model: onnx.ModelProto, machine: MachineConfig, dtype: str | None = None) -> Iterator[None]:
    """Attach `describe(model, machine, dtype)` to any exception that leaves the block."""
    try:
        yield
    except Exception as exc:
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
        stats = check_program(program, case, machine)
        if strategy != "baseline":
            try:
                baseline = simulate(plan_baseline(case.lowered, machine), machine).stats
            except PlanError:
                pass  # a strategy may fit where the baseline does not
            else:
                assert traffic_bytes(stats) <= traffic_bytes(baseline), (
                    f"{strategy} moves {traffic_bytes(stats):,} bytes, the baseline {traffic_bytes(baseline):,}")
        # From scratch, so that no cache or id() leaks into the plan:
        again = plan(lower(load_graph(model, dtype=dtype)), machine)
        assert again.to_json() == program.to_json(), "planning the same model twice gave different plans"
        return program


def check_program(program: Program, case: Case, machine: MachineConfig) -> SimStats:
    """Every invariant of one program of `case` on `machine`; returns its simulated stats."""
    violations = verify(program, machine)
    assert violations == [], f"verify: {len(violations)} violations, first: {violations[0].message}"
    run_functional(program, machine, case.dram, reference=case.reference)  # raises on the first tile that differs
    stats = simulate(program, machine).stats
    needed = footprint_bounds(case.lowered, machine)  # counted here, apart from the planner's own count
    for limits in (needed, bounds(case.lowered, machine)):
        assert limits.compulsory_bytes <= traffic_bytes(stats), (
            f"traffic {traffic_bytes(stats):,} bytes is below the compulsory {limits.compulsory_bytes:,}")
        assert limits.roofline_cycles <= stats.total_cycles, (
            f"{stats.total_cycles:,} cycles is below the roofline {limits.roofline_cycles:,}")
        if limits is not needed:
            assert program_bounds(program, machine) == limits, "the plan file's bounds differ from the model's"
    usable = machine.scratchpad.partitions * machine.scratchpad.partition_bytes  # the remainder is never used
    assert stats.peak_scratchpad_bytes <= usable, (
        f"peak scratchpad {stats.peak_scratchpad_bytes:,} bytes exceeds the {usable:,} usable")
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
    # a model output that is a view of an input or constant is in DRAM already: nothing to write
    written = {lowered.base(name) for name in graph.outputs} - set(read) - set(graph.inputs)
    compulsory += sum(graph.tensor_bytes(name) for name in written if graph.tensors[name].kind == "activation")
    limits = bounds(lowered, machine)
    memory_cycles = math.ceil(compulsory / machine.dram.bandwidth_bytes_per_cycle)
    return Bounds(compulsory, limits.compute_cycles, memory_cycles)


_NAMED = re.compile(r"\b(?:op|node) '([^']+)'")


def check_too_small(error: PlanError, case: Case, machine: MachineConfig, strategy: str) -> None:
    """A refusal must name an op of the model and the bytes it needs; four times the scratchpad must then plan
    legally or be refused the same way."""
    check_refusal(error, case)
    bigger = replace(machine, scratchpad=replace(machine.scratchpad,
                                                 capacity_bytes=GROWTH * machine.scratchpad.capacity_bytes))
    try:
        program = STRATEGIES[strategy](case.lowered, bigger)
    except PlanError as again:
        check_refusal(again, case)
        return
    check_program(program, case, bigger)


def check_refusal(error: PlanError, case: Case) -> None:
    message = str(error)
    named = [name for name in _NAMED.findall(message) if name in {node.name for node in case.graph.nodes}]
    assert named and "bytes" in message, f"a PlanError that names no op of the model, or no bytes: {message}"
