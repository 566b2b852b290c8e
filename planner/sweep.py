"""`scratchplan sweep`: how traffic and cycles respond to scratchpad size, DRAM bandwidth and array size.

Points are log-spaced over each range given (their product when several are), and every point plans and simulates
each strategy (`planner.api.evaluate`): the figures come from the simulated programs. A point that cannot be planned
(a scratchpad too small for any tile) is a row with its `error`, not the end of the sweep.

Points run in a local process pool by default, or on a Dask distributed cluster (`dask://HOST:PORT`, the `[dask]`
extra); both call the same pure `run_point`, so both give the same rows.

    >>> log_spaced(16 * 1024, 2 * 1024 * 1024, 3)
    [16384, 185364, 2097152]
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import onnx
from tqdm import tqdm

from planner import api
from planner.bounds import bounds
from planner.errors import PlanError
from simulator.machine import MachineConfig

COLUMNS = ("scratchpad_bytes", "bandwidth_bytes_per_cycle", "array", "strategy", "dram_bytes", "cycles",
           "compulsory_bytes", "best_unfused_bytes", "roofline_cycles", "error")


@dataclass(frozen=True, slots=True)
class Point:
    """One machine of the sweep: the base machine with these overrides (None keeps the base machine's value)."""

    scratchpad_bytes: int
    bandwidth_bytes_per_cycle: float | None = None
    array: int | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """Everything a worker needs, picklable: the model as a name, a path or serialized bytes, and its options."""

    model: str | bytes
    batch: int | None
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...]
    dtype: str | None
    machine: MachineConfig
    strategies: tuple[str, ...]


def log_spaced(low: float, high: float, count: int) -> list[int]:
    """`count` integers from `low` to `high`, evenly spaced in log scale (both ends included, duplicates dropped)."""
    if count == 1 or low == high:
        return [round(low)]
    ratio = math.log(high / low) / (count - 1)
    return sorted({round(low * math.exp(ratio * i)) for i in range(count - 1)} | {round(high)})


def parse_range(text: str, flag: str, parse: Callable[[str], float] = float) -> tuple[float, float]:
    """`A..B` (or one value `A`) into (A, B), positive and increasing; a bad range is a PlanError naming the flag.

    >>> from simulator.units import parse_size
    >>> parse_range("16KiB..2MiB", "--scratchpad", parse_size)
    (16384, 2097152)
    """
    low_text, _, high_text = text.partition("..")
    try:
        low, high = parse(low_text.strip()), parse((high_text or low_text).strip())
    except ValueError as exc:
        raise PlanError(f"{flag} {text}: {exc}") from None
    if not 0 < low <= high:
        raise PlanError(f"{flag} {text}: expected A..B with 0 < A <= B")
    return low, high


def points(scratchpad: tuple[float, float], count: int, bandwidth: tuple[float, float] | None = None,
           array: tuple[float, float] | None = None) -> list[Point]:
    """The sweep's points: every combination of the log-spaced values of each range given."""
    capacities = log_spaced(*scratchpad, count)
    bandwidths: list[float | None] = [float(b) for b in log_spaced(*bandwidth, count)] if bandwidth else [None]
    arrays: list[int | None] = list(log_spaced(*array, count)) if array else [None]
    return [Point(c, b, a) for c in capacities for b in bandwidths for a in arrays]


def machine_at(base: MachineConfig, point: Point) -> MachineConfig:
    """The base machine with the point's capacity, bandwidth and a square array of the point's size (its MACs per
    cycle scaled with the array's area)."""
    machine = dataclasses.replace(base, scratchpad=dataclasses.replace(base.scratchpad,
                                                                        capacity_bytes=point.scratchpad_bytes))
    if point.bandwidth_bytes_per_cycle is not None:
        machine = dataclasses.replace(machine, dram=dataclasses.replace(
            machine.dram, bandwidth_bytes_per_cycle=point.bandwidth_bytes_per_cycle))
    if point.array is not None:
        engine = machine.tensor_engine
        scale = point.array * point.array / (engine.rows * engine.cols)
        rates = {dtype: max(1, round(rate * scale)) for dtype, rate in engine.macs_per_cycle.items()}
        machine = dataclasses.replace(machine, tensor_engine=dataclasses.replace(
            engine, rows=point.array, cols=point.array, macs_per_cycle=rates))
    return machine


def run_point(job: Job, point: Point) -> list[dict[str, Any]]:
    """The rows of one point, one per strategy: simulated figures, or the error that stopped planning."""
    model_source: str | onnx.ModelProto = job.model if isinstance(job.model, str) else onnx.load_from_string(job.model)
    model = api.load(model_source, batch=job.batch, input_shapes=dict(job.input_shapes), dtype=job.dtype)
    machine = machine_at(job.machine, point)
    try:  # once per point, shared by its strategies (api.evaluate reads the same cache)
        limits = api.model_limits(model, machine)
    except PlanError:  # no tiling of some op fits: best unfused is undefined here, the rows say why
        limits = bounds(model.lowered, machine)
    rows = []
    for strategy in job.strategies:
        row: dict[str, Any] = {"scratchpad_bytes": point.scratchpad_bytes,
                               "bandwidth_bytes_per_cycle": point.bandwidth_bytes_per_cycle, "array": point.array,
                               "strategy": strategy, "dram_bytes": None, "cycles": None,
                               "compulsory_bytes": limits.compulsory_bytes,
                               "best_unfused_bytes": limits.best_unfused_bytes,
                               "roofline_cycles": limits.roofline_cycles,
                               "error": None}
        try:
            report = api.evaluate(model, machine, strategy=strategy)
        except PlanError as exc:
            row["error"] = str(exc)
        else:
            row |= {"dram_bytes": report.dram_bytes, "cycles": report.cycles}
        rows.append(row)
    return rows


def sweep(job: Job, sweep_points: Sequence[Point], *, executor: str = "local", jobs: int | None = None,
          progress: bool | None = None,
          on_point: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """Every point's rows, in the order of `sweep_points` (however the executor finishes them).

    `on_point`, when given, is called after each point completes with the rows of every point finished so far (in
    the order of `sweep_points`), so that a long sweep cut short keeps what it has done."""
    results: dict[int, list[dict[str, Any]]] = {}
    bar = tqdm(total=len(sweep_points), desc="sweep", unit="point", file=sys.stderr,
               disable=(not sys.stderr.isatty()) if progress is None else not progress)
    for index, rows in _run(job, sweep_points, executor, jobs):
        results[index] = rows
        bar.update()
        if on_point is not None:
            on_point([row for done in sorted(results) for row in results[done]])
    bar.close()
    return [row for index in range(len(sweep_points)) for row in results[index]]


def _run(job: Job, sweep_points: Sequence[Point], executor: str, jobs: int | None,
         ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    if executor.startswith("dask://"):
        yield from _run_dask(job, sweep_points, "tcp://" + executor.removeprefix("dask://"))
        return
    if executor != "local":
        raise PlanError(f"--executor {executor}: expected local or dask://HOST:PORT")
    workers = jobs or os.cpu_count() or 1
    if workers == 1 or len(sweep_points) == 1:
        for index, point in enumerate(sweep_points):
            yield index, run_point(job, point)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(sweep_points))) as pool:
        futures = {pool.submit(run_point, job, point): index for index, point in enumerate(sweep_points)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _run_dask(job: Job, sweep_points: Sequence[Point], address: str) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:
        raise PlanError("--executor dask://...: Dask is not installed; pip install -e '.[dask]'") from None
    try:
        client = Client(address, timeout=10)
    except (OSError, TimeoutError) as exc:
        raise PlanError(f"--executor dask://{address.removeprefix('tcp://')}: cannot reach the scheduler: {exc}") \
            from None
    with client:
        futures = [client.submit(run_point, job, point, pure=False) for point in sweep_points]
        index_of = {future.key: index for index, future in enumerate(futures)}
        for future in dask_completed(futures):
            yield index_of[future.key], future.result()


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV, one column per COLUMNS entry (empty cells for what a failed point lacks)."""
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row[key] is None else row[key] for key in COLUMNS})
    return stream.getvalue()


def from_csv(text: str) -> list[dict[str, Any]]:
    """Rows written by `to_csv`, read back with their types (what a sweep cut short left on disk can be plotted).

    >>> rows = [{**dict.fromkeys(COLUMNS), "scratchpad_bytes": 1024, "strategy": "fused", "error": "too small"}]
    >>> from_csv(to_csv(rows)) == rows
    True
    """
    numbers: dict[str, Callable[[str], Any]] = {"strategy": str, "error": str, "bandwidth_bytes_per_cycle": float}
    return [{key: None if value == "" else numbers.get(key, int)(value) for key, value in row.items()}
            for row in csv.DictReader(io.StringIO(text))]
