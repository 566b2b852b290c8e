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

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import onnx
import onnx.printer

from planner.baseline import plan_baseline
from planner.bounds import bounds, program_bounds
from planner.check import reference_values
from planner.errors import PlanError
from planner.graph import Graph, load_graph
from planner.ops import lower
from planner.stmt import LoweredGraph
from simulator.functional import run_functional
from simulator.isa import Program
from simulator.machine import MachineConfig, machine_to_yaml
from simulator.stats import SimStats
from simulator.timing import simulate
from simulator.verify import verify

Strategy = Callable[[LoweredGraph, MachineConfig], Program]
STRATEGIES: dict[str, Strategy] = {"baseline": plan_baseline}
GROWTH = 4  # a refused model is planned again on a scratchpad this many times larger


def describe(model: onnx.ModelProto, machine: MachineConfig) -> str:
    """The model as ONNX text and the machine as YAML: what it takes to rerun a failing example by hand."""
    return (f"--- model (onnx.parser.parse_model) ---\n{onnx.printer.to_text(model)}\n"
            f"--- machine (simulator.machine.machine_from_dict(yaml.safe_load(...))) ---\n{machine_to_yaml(machine)}")


@contextmanager
def explained(model: onnx.ModelProto, machine: MachineConfig) -> Iterator[None]:
    """Attach `describe(model, machine)` to any exception that leaves the block."""
    try:
        yield
    except BaseException as exc:
        exc.add_note(describe(model, machine))
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
    def of(cls, model: onnx.ModelProto) -> Case:
        graph = load_graph(model)
        dram, reference = reference_values(graph, model)
        return cls(model, graph, lower(graph), dram, reference)


def traffic_bytes(stats: SimStats) -> int:
    return stats.dram_bytes_read + stats.dram_bytes_written


def check_invariants(model: onnx.ModelProto, machine: MachineConfig, strategy: str = "baseline") -> Program | None:
    """Plan `model` on `machine` with the named strategy and assert every invariant; the program, or None when the
    scratchpad was rightly too small."""
    with explained(model, machine):
        case = Case.of(model)
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
        again = plan(lower(load_graph(model)), machine)  # from scratch: no cache or id() may leak into the plan
        assert again.to_json() == program.to_json(), "planning the same model twice gave different plans"
        return program


def check_program(program: Program, case: Case, machine: MachineConfig) -> SimStats:
    """Every invariant of one program of `case` on `machine`; returns its simulated stats."""
    violations = verify(program, machine)
    assert violations == [], f"verify: {len(violations)} violations, first: {violations[0].message}"
    run_functional(program, machine, case.dram, reference=case.reference)  # raises on the first tile that differs
    stats = simulate(program, machine).stats
    limits = bounds(case.lowered, machine)
    assert limits.compulsory_bytes <= traffic_bytes(stats), (
        f"traffic {traffic_bytes(stats):,} bytes is below the compulsory {limits.compulsory_bytes:,}")
    assert limits.roofline_cycles <= stats.total_cycles, (
        f"{stats.total_cycles:,} cycles is below the roofline {limits.roofline_cycles:,}")
    assert stats.peak_scratchpad_bytes <= machine.scratchpad.capacity_bytes, (
        f"peak scratchpad {stats.peak_scratchpad_bytes:,} bytes exceeds {machine.scratchpad.capacity_bytes:,}")
    assert program_bounds(program, machine) == limits, "the plan file's bounds differ from the model's"
    assert Program.from_json(program.to_json()) == program, "the plan JSON does not read back to the same program"
    return stats


_NAMED = re.compile(r"\b(?:op|node) '([^']+)'")


def check_too_small(error: PlanError, case: Case, machine: MachineConfig, strategy: str) -> None:
    """A refusal must name an op of the model and the bytes it needs; four times the scratchpad must then plan
    legally or be refused the same way."""
    message = str(error)
    nodes = {node.name for node in case.graph.nodes}
    named = [name for name in _NAMED.findall(message) if name in nodes]
    assert named and "bytes" in message, f"a PlanError that names no op of the model, or no bytes: {message}"
    bigger = replace(machine, scratchpad=replace(machine.scratchpad,
                                                 capacity_bytes=GROWTH * machine.scratchpad.capacity_bytes))
    try:
        program = STRATEGIES[strategy](case.lowered, bigger)
    except PlanError as again:
        again_named = [name for name in _NAMED.findall(str(again)) if name in nodes]
        assert again_named and "bytes" in str(again), f"a PlanError that names no op, or no bytes: {again}"
        return
    check_program(program, case, bigger)
