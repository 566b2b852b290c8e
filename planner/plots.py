"""Pictures (matplotlib, drawn off screen): the sweep's ski slope, one simulation over time, a comparison, a profile.

Each function writes one file (PNG, SVG or PDF, by the path's suffix) and returns nothing. matplotlib is imported
here only, when a picture is asked for, so the commands start without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from simulator.isa import Compute, DmaLoad, DmaStore, Program, Release
from simulator.timing import SimResult

if TYPE_CHECKING:
    from planner.api import Report

ROLES = ("constant", "input", "intermediate", "output")
BINS = 200  # time bins of the utilisation panel


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_sweep(document: Mapping[str, Any], path: str, preset_capacity_bytes: int | None = None) -> None:
    """Log-log DRAM bytes against scratchpad capacity, a curve per strategy beside compulsory (and best unfused
    when the rows carry it); below it, cycles against capacity with the roofline. Failed points are left out."""
    plt = _pyplot()
    rows = document["points"]
    figure, (traffic, cycles) = plt.subplots(2, 1, figsize=(8, 8), sharex=True)
    strategies = list(dict.fromkeys(row["strategy"] for row in rows))
    for strategy in strategies:
        done = sorted((r for r in rows if r["strategy"] == strategy and r["error"] is None),
                      key=lambda r: r["scratchpad_bytes"])
        x = [r["scratchpad_bytes"] for r in done]
        traffic.plot(x, [r["dram_bytes"] for r in done], marker="o", label=strategy)
        cycles.plot(x, [r["cycles"] for r in done], marker="o", label=strategy)
    reference = sorted({r["scratchpad_bytes"]: r for r in rows}.values(), key=lambda r: r["scratchpad_bytes"])
    x = [r["scratchpad_bytes"] for r in reference]
    traffic.plot(x, [r["compulsory_bytes"] for r in reference], "k--", label="compulsory")
    unfused = [r for r in reference if r.get("best_unfused_bytes") is not None]
    if unfused:
        traffic.plot([r["scratchpad_bytes"] for r in unfused], [r["best_unfused_bytes"] for r in unfused], "k:",
                     label="best unfused")
    cycles.plot(x, [r["roofline_cycles"] for r in reference], "k--", label="roofline")
    refused = [r["scratchpad_bytes"] for r in rows if r["error"] is not None]
    for axes in (traffic, cycles):
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        if preset_capacity_bytes:
            axes.axvline(preset_capacity_bytes, color="grey", linewidth=1)
        for capacity in sorted(set(refused)):
            axes.axvspan(capacity / 1.05, capacity * 1.05, color="red", alpha=0.15)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    if preset_capacity_bytes:
        traffic.annotate(f"{document['machine']} ({preset_capacity_bytes // 1024} KiB)",
                         (preset_capacity_bytes, traffic.get_ylim()[1]), rotation=90, va="top", ha="right",
                         fontsize=8, color="grey")
    traffic.set_ylabel("DRAM bytes (read + written)")
    cycles.set_ylabel("cycles")
    cycles.set_xlabel("scratchpad capacity (bytes)")
    traffic.set_title(f"{document['model']} on {document['machine']}" + (" (red: refused)" if refused else ""))
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def buffer_roles(program: Program) -> dict[str, str]:
    """Each buffer's role: that of the first tensor loaded into it or computed into it."""
    role_of = {tensor.name: tensor.role for tensor in program.tensors}
    roles: dict[str, str] = {}
    for instruction in program.instructions:
        if isinstance(instruction, DmaLoad):
            roles.setdefault(instruction.buffer, role_of.get(instruction.tensor, "intermediate"))
        elif isinstance(instruction, Compute):
            roles.setdefault(instruction.output.buffer, role_of.get(instruction.output.tensor, "intermediate"))
    return roles


def occupancy_by_role(program: Program, result: SimResult) -> dict[str, list[tuple[int, int]]]:
    """Per role, (cycle, live bytes from that cycle on) steps: a buffer counts from the start of its first write to
    the end of its release (the same liveness as `simulator.stats.scratchpad_timeline`)."""
    partitions = result.machine.scratchpad.partitions
    sizes = {b.name: b.partition_bytes(partitions) * b.partitions_used(partitions) for b in program.buffers}
    roles = buffer_roles(program)
    changes: dict[str, list[tuple[int, int]]] = {role: [] for role in ROLES}
    live: dict[str, bool] = {}
    for i, instruction in enumerate(program.instructions):
        if isinstance(instruction, Release):
            buffer, at, taking = instruction.buffer, result.end_cycles[i], False
        elif isinstance(instruction, DmaLoad):
            buffer, at, taking = instruction.buffer, result.start_cycles[i], True
        elif isinstance(instruction, Compute):
            buffer, at, taking = instruction.output.buffer, result.start_cycles[i], True
        else:
            continue
        if taking != live.get(buffer, False):
            changes[roles.get(buffer, "intermediate")].append((at, sizes[buffer] if taking else -sizes[buffer]))
            live[buffer] = taking
    steps: dict[str, list[tuple[int, int]]] = {}
    for role, deltas in changes.items():
        total, series = 0, [(0, 0)]
        for at, delta in sorted(deltas):
            total += delta
            series.append((at, total))
        steps[role] = series
    return steps


def utilisation(program: Program, result: SimResult, bins: int = BINS) -> tuple[list[float], dict[str, list[float]]]:
    """Bin centres (cycles) and, per engine and DMA queue, the share of each bin it was busy (a queue with several
    transfers in flight counts once)."""
    total = max(result.stats.total_cycles, 1)
    width = total / bins
    busy: dict[str, list[float]] = {}
    for i, instruction in enumerate(program.instructions):
        if not isinstance(instruction, (Compute, DmaLoad, DmaStore)):
            continue
        share = busy.setdefault(result.resources[i], [0.0] * bins)
        start, end = result.start_cycles[i], result.end_cycles[i]
        for b in range(int(start // width), min(bins, int(end // width) + 1)):
            low, high = b * width, (b + 1) * width
            share[b] += max(0.0, min(end, high) - max(start, low)) / width
    return [(b + 0.5) * width for b in range(bins)], {k: [min(1.0, v) for v in vs] for k, vs in sorted(busy.items())}


def plot_simulation(program: Program, result: SimResult, path: str) -> None:
    """Scratchpad occupancy over time stacked by tensor role, and engine and DMA utilisation below it."""
    plt = _pyplot()
    figure, (memory, engines) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    steps = occupancy_by_role(program, result)
    horizon = max(result.stats.total_cycles, 1)
    grid = sorted({0, horizon, *(at for series in steps.values() for at, _ in series)})
    stacked = [[_value_at(steps[role], t) for t in grid] for role in ROLES]
    memory.stackplot(grid, stacked, labels=[f"{role} buffers" for role in ROLES], step="post", alpha=0.8)
    capacity = result.machine.scratchpad.capacity_bytes
    memory.axhline(capacity, color="k", linestyle="--", linewidth=1, label=f"capacity {capacity:,} B")
    memory.set_ylabel("scratchpad bytes live")
    memory.legend(loc="upper right", fontsize=8)
    memory.set_title(f"{program.model}: {program.strategy} on {result.machine.name}, "
                     f"{result.stats.total_cycles:,} cycles")
    centres, busy = utilisation(program, result)
    for resource, shares in busy.items():
        engines.plot(centres, [100 * s for s in shares], label=resource, linewidth=1)
    engines.set_ylabel("busy (% of each bin)")
    engines.set_xlabel("cycle")
    engines.set_ylim(0, 105)
    engines.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _value_at(series: Sequence[tuple[int, int]], cycle: int) -> int:
    value = 0
    for at, total in series:
        if at > cycle:
            break
        value = total
    return value


def plot_compare(reports: Mapping[str, Report], path: str) -> None:
    """Per op, bars of DRAM bytes and of cycles (each op's span) for every strategy."""
    plt = _pyplot()
    names = list(dict.fromkeys(op.name for report in reports.values() for op in report.ops))
    figure, (traffic, cycles) = plt.subplots(2, 1, figsize=(max(8, 0.35 * len(names)), 8), sharex=True)
    width = 0.8 / max(1, len(reports))
    for k, (strategy, report) in enumerate(reports.items()):
        ops = {op.name: op for op in report.ops}
        x = [i + k * width for i in range(len(names))]
        traffic.bar(x, [ops[n].dram_bytes_read + ops[n].dram_bytes_written if n in ops else 0 for n in names],
                    width, label=f"{strategy} ({report.dram_bytes:,} B)")
        cycles.bar(x, [ops[n].cycles if n in ops else 0 for n in names], width,
                   label=f"{strategy} ({report.cycles:,} cycles)")
    traffic.set_ylabel("DRAM bytes")
    cycles.set_ylabel("cycles (op span)")
    cycles.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names, rotation=90, fontsize=7)
    for axes in (traffic, cycles):
        axes.legend(fontsize=8)
    first = next(iter(reports.values()))
    traffic.set_title(f"{first.model} on {first.machine}")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot_profile(documents: Sequence[Mapping[str, Any]], path: str) -> None:
    """Per machine, each layer's attributed cycles as a stacked bar (one bar per model), memory-bound layers
    hatched."""
    plt = _pyplot()
    machines = [m["name"] for m in documents[0]["machines"]]
    figure, axes = plt.subplots(1, len(machines), figsize=(4 * len(machines), 5), squeeze=False)
    for column, machine in enumerate(machines):
        ax = axes[0][column]
        for position, document in enumerate(documents):
            entry = next(m for m in document["machines"] if m["name"] == machine)
            bottom = 0
            for layer in entry["layers"]:
                ax.bar(position, layer["cycles"], bottom=bottom, color="tab:orange" if layer["bound"] == "memory"
                       else "tab:blue", edgecolor="white", linewidth=0.3)
                bottom += layer["cycles"]
        ax.set_xticks(range(len(documents)), [d["model"] for d in documents], fontsize=8)
        ax.set_title(machine)
        ax.set_ylabel("cycles (layers stacked; orange: memory-bound)")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
