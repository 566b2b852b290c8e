"""The Python face of scratchplan: load a model, plan it, simulate the program, check it, or all at once.

`model` is an `.onnx` path, an `onnx.ModelProto` or a zoo name (`resnet50`, `resnet50-small`); `machine` is a preset
name, a machine YAML path or a `MachineConfig`. Bad input raises `PlanError` with the one line the CLI prints. Every
figure comes from simulating the emitted program; the planner's own estimates are never reported.

    >>> report = evaluate("cnn-small", "edge-npu")
    >>> report.compulsory_bytes <= report.dram_bytes and report.roofline_cycles <= report.cycles
    True

A NAS loop is a loop over `evaluate` (see the README); what is pure is cached (lowering per model, and whole reports
per model, machine and strategy), so asking twice costs a dictionary look-up.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from planner.baseline import plan_baseline
from planner.bounds import Bounds, bounds, program_bounds
from planner.check import reference_values
from planner.check_bounds import split_error_bounds
from planner.errors import PlanError
from planner.fused import choose_fused, plan_fused
from planner.graph import Graph, load_graph
from planner.ops import lower
from planner.report import OpReport, Report, report_of
from planner.schedule.ir import Schedule
from planner.schedule.search import OBJECTIVES as SEARCH_OBJECTIVES
from planner.stmt import LoweredGraph
from simulator.functional import FunctionalError, FunctionalMismatch, run_functional
from simulator.isa import Program
from simulator.machine import MachineConfig, MachineError
from simulator.machine_file import load_machine
from simulator.plan_file import ProgramError, program_from_json
from simulator.timing import SimResult, TimingError
from simulator.timing import simulate as simulate_program
from simulator.units import parse_size
from simulator.verify import verify

__all__ = ["STRATEGIES", "CheckFailed", "Model", "OpReport", "PlanError", "Report", "check", "evaluate",
           "fused_schedule", "load", "load_program", "machine", "plan", "simulate"]

STRATEGIES = {"fused": plan_fused, "baseline": plan_baseline}
OBJECTIVES = SEARCH_OBJECTIVES  # what the fused strategy's search minimises (planner.schedule.search)
ModelLike = str | os.PathLike[str] | onnx.ModelProto
MachineLike = str | os.PathLike[str] | MachineConfig


class CheckFailed(Exception):
    """`check` found the plan illegal or its numbers wrong (the CLI's exit status 3)."""


@dataclass(frozen=True, slots=True, eq=False)
class Model:
    """A loaded model: its Graph and lowering, and what it came from (a path or a built zoo model), which `check`
    needs to run onnxruntime on it."""

    graph: Graph
    lowered: LoweredGraph
    source: str | onnx.ModelProto
    batch: int | None = None
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.graph.name


def machine(spec: MachineLike, *, scratchpad: str | int | None = None) -> MachineConfig:
    """A MachineConfig from a preset name, a YAML path or a MachineConfig; `scratchpad` ("64KiB", bytes) overrides
    its capacity.

    >>> machine("edge-npu", scratchpad="64KiB").scratchpad.capacity_bytes
    65536
    """
    if isinstance(spec, MachineConfig):
        if scratchpad is None:
            return spec
        try:
            capacity = parse_size(scratchpad)
            return dataclasses.replace(spec, scratchpad=dataclasses.replace(spec.scratchpad, capacity_bytes=capacity))
        except (MachineError, ValueError) as exc:
            raise PlanError(f"--scratchpad {scratchpad}: {exc}") from None
    path = os.fspath(spec)
    try:
        if os.path.exists(path):  # a file may be rewritten between calls: read it each time
            return load_machine(path, scratchpad=scratchpad)
        return _preset(path, scratchpad)
    except MachineError as exc:
        raise PlanError(f"--machine {spec}: {exc}") from None


@functools.lru_cache(maxsize=64)  # a preset is package data: parsing its YAML once per process is enough
def _preset(name: str, scratchpad: str | int | None) -> MachineConfig:
    return load_machine(name, scratchpad=scratchpad)


def load(model: ModelLike | Model, *, batch: int | None = None, input_shapes: Mapping[str, tuple[int, ...]] | None
         = None, dtype: str | None = None) -> Model:
    """Load and lower a model (cached per model bytes and options: a NAS loop loads each variant once).

    >>> load("mlp-small").graph.inputs
    ('input',)
    """
    if isinstance(model, Model):
        return model
    shapes = tuple(sorted((input_shapes or {}).items()))
    if isinstance(model, onnx.ModelProto):
        data = model.SerializeToString()
        return _load_proto(hashlib.sha256(data).hexdigest(), data, batch, shapes, dtype)
    path = os.fspath(model)
    try:
        stat = os.stat(path)
        version = (stat.st_mtime_ns, stat.st_size)  # a file rewritten in place is loaded again
    except OSError:
        version = (0, 0)
    return _load_named(path, version, batch, shapes, dtype)


def load_program(path: str | os.PathLike[str]) -> Program:
    """Read a plan file (JSON); a missing or malformed file is a PlanError naming it."""
    try:
        return program_from_json(Path(path).read_text())
    except OSError as exc:
        raise PlanError(f"{path}: {exc.strerror}") from None
    except ProgramError as exc:
        raise PlanError(f"{path}: {exc}") from None


def plan(model: ModelLike | Model, machine_spec: MachineLike, *, strategy: str = "fused",
         objective: str = "traffic") -> Program:
    """The program of `strategy` for the model on the machine.

    >>> plan("mlp-small", "edge-npu", strategy="baseline").strategy
    'baseline'
    """
    if strategy not in STRATEGIES:
        raise PlanError(f"strategy {strategy!r}: unknown; choose one of {', '.join(sorted(STRATEGIES))}")
    if objective not in OBJECTIVES:
        raise PlanError(f"objective {objective!r}: unknown; choose one of {', '.join(OBJECTIVES)}")
    if strategy == "fused":
        return plan_fused(load(model).lowered, machine(machine_spec), objective)
    return STRATEGIES[strategy](load(model).lowered, machine(machine_spec))


def fused_schedule(model: ModelLike | Model, machine_spec: MachineLike, *,
                   objective: str = "traffic") -> tuple[Program, Schedule | None]:
    """The fused program and the schedule the search chose and staged (`planner.schedule.ir.Schedule`: groups, tiles,
    residency), or None where no fused schedule was found and every op was planned alone.

    >>> program, schedule = fused_schedule("cnn-small", "edge-npu")
    >>> program.strategy, len(schedule.groups) > 0
    ('fused', True)
    """
    if objective not in OBJECTIVES:
        raise PlanError(f"objective {objective!r}: unknown; choose one of {', '.join(OBJECTIVES)}")
    return choose_fused(load(model).lowered, machine(machine_spec), objective)


def simulate(program: Program, machine_spec: MachineLike) -> SimResult:
    """Time the program on the machine (`simulator.timing.simulate`); a program it cannot run is a PlanError."""
    try:
        return simulate_program(program, machine(machine_spec))
    except TimingError as exc:
        raise PlanError(f"{program.model}: {exc}") from None


def check(model: ModelLike | Model, program: Program, machine_spec: MachineLike) -> None:
    """Verify the program statically, then run it on real numbers against onnxruntime; CheckFailed names the first
    fault."""
    loaded, config = load(model), machine(machine_spec)
    violations = verify(program, config)
    if violations:
        raise CheckFailed(f"verify: {violations[0].message} ({len(violations)} violations)")
    dram, reference = reference_values(loaded.graph, loaded.source, batch=loaded.batch,
                                       input_shapes=loaded.input_shapes)
    try:
        run_functional(program, config, dram, reference=reference,
                       error_bounds=split_error_bounds(program, loaded.graph, reference))
    except (FunctionalMismatch, FunctionalError) as exc:
        raise CheckFailed(f"functional: {exc}") from None


def evaluate(model: ModelLike | Model, machine_spec: MachineLike, *, strategy: str = "fused",
             scratchpad: str | int | None = None, batch: int | None = None,
             input_shapes: Mapping[str, tuple[int, ...]] | None = None, dtype: str | None = None,
             best_unfused: bool = True, objective: str = "traffic") -> Report:
    """Plan, simulate, and report the figures beside the bounds (cached: the same question gets the same report).
    `best_unfused=False` leaves that bound out (None): its search over every op's tilings costs more than planning,
    so a NAS loop that only ranks candidates by bytes and cycles skips it.

    >>> evaluate("mlp-small", "edge-npu", strategy="baseline").strategy
    'baseline'
    """
    loaded = load(model, batch=batch, input_shapes=input_shapes, dtype=dtype)
    config = machine(machine_spec, scratchpad=scratchpad)
    return _evaluate(loaded, _machine_yaml(config), config, strategy, best_unfused, objective)


def model_bounds(model: Model | None, program: Program, config: MachineConfig) -> Bounds:
    """The model's bounds, or for a plan file alone the ones recorded in it."""
    if model is None:
        return program_bounds(program, config)
    return bounds(model.lowered, config, with_best_unfused=True)


# -- caches: everything below is a pure function of its (hashable) arguments ------------------------------------------

_REPORTS: dict[tuple[int, str, str, bool, str], tuple[Model, Report]] = {}
_REPORTS_KEPT = 256
_BOUNDS: dict[tuple[int, str], tuple[Model, Bounds]] = {}


def _evaluate(loaded: Model, machine_key: str, config: MachineConfig, strategy: str,
              with_best_unfused: bool = True, objective: str = "traffic") -> Report:
    # `loaded` is the cached Model of its bytes (same bytes, same object); the entry keeps it alive, so its id is not
    # reused while the entry exists
    key = (id(loaded), machine_key, strategy, with_best_unfused, objective)
    entry = _REPORTS.get(key)
    if entry is None or entry[0] is not loaded:
        program = plan(loaded, config, strategy=strategy, objective=objective)
        if len(_REPORTS) >= _REPORTS_KEPT:
            _REPORTS.pop(next(iter(_REPORTS)))
        entry = _REPORTS[key] = (loaded, report_of(program, config, simulate(program, config),
                                                   model_limits(loaded, config, machine_key) if with_best_unfused
                                                   else bounds(loaded.lowered, config)))
    return entry[1]


def model_limits(loaded: Model, config: MachineConfig, machine_key: str | None = None) -> Bounds:
    """The model's bounds on the machine, best unfused included: searched once per model and machine (it costs
    seconds on a large model), then shared by every strategy evaluated there."""
    key = (id(loaded), machine_key or _machine_yaml(config))
    entry = _BOUNDS.get(key)
    if entry is None or entry[0] is not loaded:
        if len(_BOUNDS) >= _REPORTS_KEPT:
            _BOUNDS.pop(next(iter(_BOUNDS)))
        entry = _BOUNDS[key] = (loaded, bounds(loaded.lowered, config, with_best_unfused=True))
    return entry[1]


def _machine_yaml(config: MachineConfig) -> str:
    # Per config object (a preset is one cached object): writing the YAML cost more than a cached report's look-up.
    # A MachineConfig holds dicts, so it cannot key a cache itself; the entry keeps it alive, so its id is not reused.
    entry = _YAML.get(id(config))
    if entry is None or entry[0] is not config:
        from simulator.machine_file import machine_to_yaml

        if len(_YAML) >= _REPORTS_KEPT:
            _YAML.pop(next(iter(_YAML)))
        entry = _YAML[id(config)] = (config, machine_to_yaml(config))
    return entry[1]


_YAML: dict[int, tuple[MachineConfig, str]] = {}


@functools.lru_cache(maxsize=32)
def _load_proto(digest: str, data: bytes, batch: int | None, shapes: tuple[tuple[str, tuple[int, ...]], ...],
                dtype: str | None) -> Model:
    proto = onnx.ModelProto()
    proto.ParseFromString(data)
    graph = load_graph(proto, batch=batch, input_shapes=dict(shapes), dtype=dtype)
    return Model(graph, lower(graph), proto, batch, dict(shapes))


@functools.lru_cache(maxsize=32)
def _load_named(name: str, version: tuple[int, int], batch: int | None, shapes: tuple[tuple[str, tuple[int, ...]], ...],
                dtype: str | None) -> Model:
    source: str | onnx.ModelProto = name
    if not Path(name).exists():
        import models  # only when asked for: building a zoo model needs nothing else from the planner

        base, small = (name[:-len("-small")], True) if name.endswith("-small") else (name, False)
        if base in models.ZOO:
            source = models.build(base, small=small, batch=batch or 1)
    graph = load_graph(source, batch=batch, input_shapes=dict(shapes), dtype=dtype)
    return Model(graph, lower(graph), source, batch, dict(shapes))
