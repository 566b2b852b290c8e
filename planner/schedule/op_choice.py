"""Which of the tilings staging can emit for one statement alone the schedule takes: each is priced by the cost
model (planner.schedule.cost.price_op, the timeline staging's program would follow), and the one that moves the
fewest DRAM bytes among those at most OP_SLACK slower than the fastest wins (ties: double buffering, then the split,
then one slot).

Bytes alone would stage resnet18's layer4 3x3 convs at 64 KiB in one-slot tiles of a single output channel: all
weights read once, 3% fewer bytes than the split reduction, and 18x its cycles (one column of a 32-wide array).
A tight conv chain's one-slot 3x3 conv moves 27,700 bytes against the split's 47,400 at 1.06x its cycles, and is
taken.

The search asks again for the same op under many residencies: an `OpMemo` it owns (one graph, one machine) keeps
each answer under what it depends on: the statement, the resident tensors it touches, the room and the objective.
A whole-reduction tiling's price does not depend on the room at all (only a split's slices are sized by it), so it
is kept across rooms too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.errors import PlanError
from planner.schedule.cost import price_op
from planner.schedule.ir import OpTiling
from planner.schedule.op_tiles import _builder
from planner.schedule.timeline import Timeline
from planner.staging.op_tilings import tiling_choices
from planner.stmt import LoweredGraph, Statement
from simulator.machine import MachineConfig

OP_SLACK = 1.1  # how much slower (priced) than the fastest of its tilings an op's fewest-bytes tiling may be


@dataclass
class OpMemo:
    """What `op_tiling` found for the ops of one graph on one machine (statements are named uniquely in a graph):
    the tiling per (statement, touched residents, room, objective), and the priced cycles per (statement, tiling,
    touched residents, room, for a split only). Owned by one search; never shared across graphs or machines."""

    tilings: dict[tuple[str, frozenset[str], int, str], OpTiling | None] = field(default_factory=dict)
    cycles: dict[tuple[str, OpTiling, frozenset[str], int | None], float] = field(default_factory=dict)


def op_tiling(lowered: LoweredGraph, machine: MachineConfig, stmt: Statement, resident: frozenset[str],
              budget: int, objective: str = "traffic", memo: OpMemo | None = None) -> OpTiling | None:
    """How `stmt` is tiled in `budget` bytes per partition with the tensors in `resident` read and written in place
    (one of planner.staging.op_tilings.tiling_choices under `objective`, chosen as the module docstring says); None
    when nothing fits (staging would refuse it). `memo`, for one graph and machine, answers a question asked before."""
    touched = resident & {*stmt.tensors_read, stmt.writes[0].tensor}
    if memo is None:
        return _op_tiling(lowered, machine, stmt, touched, budget, objective, OpMemo())
    key = (stmt.name, touched, budget, objective)
    if key not in memo.tilings:
        memo.tilings[key] = _op_tiling(lowered, machine, stmt, touched, budget, objective, memo)
    return memo.tilings[key]


def _op_tiling(lowered: LoweredGraph, machine: MachineConfig, stmt: Statement, touched: frozenset[str],
               budget: int, objective: str, memo: OpMemo) -> OpTiling | None:
    builder = _builder(lowered, machine)
    try:
        # a split among them fits: tiling_choices found its slices with this builder in this room
        choices = tiling_choices(builder, stmt, touched, budget, objective)
    except PlanError:
        return None
    if not choices:
        return None
    if len(choices) == 1:
        return choices[0][2]
    priced = [(moved, rank, _cycles(lowered, machine, stmt, tiling, touched, budget, memo), tiling)
              for moved, rank, tiling in choices]
    fastest = min(cycles for _, _, cycles, _ in priced)
    return min(((moved, rank, tiling) for moved, rank, cycles, tiling in priced if cycles <= fastest * OP_SLACK),
               key=lambda choice: choice[:2])[2]


def _cycles(lowered: LoweredGraph, machine: MachineConfig, stmt: Statement, tiling: OpTiling,
            touched: frozenset[str], budget: int, memo: OpMemo) -> float:
    key = (stmt.name, tiling, touched, budget if tiling.split else None)  # only a split's slices follow the room
    if key not in memo.cycles:
        timeline = Timeline(lowered, machine)
        price_op(timeline, stmt, tiling, touched, budget)
        memo.cycles[key] = timeline.end
    return memo.cycles[key]

