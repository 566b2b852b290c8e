"""`scratchplan plan --explain`: the schedule the fused search chose, unit by unit, as a table.

One row per fusion group or op staged alone, in program order: the ops it covers, how it is tiled (a group's sink
tile, overlap mode, weight policy and tiles in flight; an op's tile per output dim and loop order, or a split
reduction; an op with its epilogue, planner.schedule.epilogue, is "alone (Conv+Relu)"), then the tensors kept
whole in the scratchpad across units. What the program moves and takes is `simulate`'s to report: no estimate of
the cost model is printed here.
"""

from __future__ import annotations

from planner.schedule.ir import GroupSchedule, OpTiling, Schedule
from planner.stmt import LoweredGraph

HEADER = ("#", "ops", "first op", "last op", "kind", "tile", "overlap", "weights", "slots")


def explain_rows(lowered: LoweredGraph, schedule: Schedule) -> list[tuple[str, ...]]:
    """The table's rows (strings), one per unit of the schedule."""
    nodes = [stmt.node or stmt.name for stmt in lowered.statements]
    tilings = dict(schedule.ops)
    rows: list[tuple[str, ...]] = []
    for number, unit in enumerate(schedule.units()):
        if isinstance(unit, GroupSchedule):
            tile = "x".join(map(str, unit.tile))
            rows.append((str(number), str(unit.last - unit.first + 1), nodes[unit.first], nodes[unit.last], "group",
                         tile, unit.overlap, unit.weights, str(unit.slots)))
        else:
            tiling = tilings[unit]
            covered = lowered.statements[unit:unit + 1 + tiling.epilogue]
            kind = "+".join(stmt.op_type for stmt in covered)
            rows.append((str(number), str(len(covered)), nodes[unit], nodes[unit + tiling.epilogue], f"alone ({kind})",
                         _op_tile(tiling), "", "", str(tiling.slots)))
    return rows


def _op_tile(tiling: OpTiling) -> str:
    if tiling.split:
        return "split reduction"
    sizes = dict(tiling.tile)
    return " ".join(f"{dim}={sizes[dim]}" for dim in tiling.order)


def format_explain(lowered: LoweredGraph, schedule: Schedule | None) -> str:
    """The table, and the tensors kept whole; a line saying so when the per-op baseline planned the model."""
    if schedule is None:
        return "no fused schedule: the search found none, so every op was planned alone (the baseline)\n"
    rows = explain_rows(lowered, schedule)
    widths = [max(len(row[i]) for row in (HEADER, *rows)) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in (HEADER, *rows)]
    groups = sum(isinstance(unit, GroupSchedule) for unit in schedule.units())
    lines.append(f"{groups} groups, {len(schedule.ops)} ops alone; tile: a group's sink tile, an op's tile per output "
                 "dim in loop order (outermost first)")
    nodes = [stmt.node or stmt.name for stmt in lowered.statements]
    for kept in schedule.residency.kept:
        lines.append(f"kept whole: {kept.tensor} from {nodes[kept.first]} to {nodes[kept.last]} "
                     f"({kept.size_bytes:,} bytes per partition at offset {kept.offset:,})")
    return "\n".join(lines) + "\n"
