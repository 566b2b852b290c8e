"""Run a Program on real numbers, in a real byte array, and check every tile against a reference.

DRAM holds one array per tensor, in the model's dtype; what the caller does not give starts as poison. The scratchpad
is bytes (`simulator.scratchpad`). Instructions run in program order, which respects every dependency.

A Compute reads each operand only from its buffer region. It builds every input at the tensor's full shape, filled
with a filler, copies the operand's box in, applies the operand's view, runs the whole op with onnxruntime
(`simulator.kernels`), and keeps the output tile. A halo the planner forgot to load therefore comes out as NaN
instead of being quietly fetched. Float inputs are filled with NaN. Integer inputs are filled with 0, because
poisoned indices would make Gather and its kin raise, not propagate; a missing integer element inside the box still
reads as poison.

An Unread slot (a Concat part's other inputs) is built from filler alone: the op needs its shape, not its values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from simulator.isa import (
    Box,
    Compute,
    DmaGather,
    DmaLoad,
    DmaStore,
    DramTensor,
    Instruction,
    Operand,
    Param,
    Program,
    Release,
    Unread,
)
from simulator.kernels import run_op
from simulator.machine import MachineConfig
from simulator.scratchpad import FunctionalError, Scratchpad, poison_value, poisoned, scale_factor

__all__ = ["FunctionalError", "FunctionalMismatch", "compare_outputs", "poison_value", "run_functional"]

_TOLERANCES = {"float16": (1e-2, 1e-3), "float32": (1e-4, 1e-5), "float64": (1e-4, 1e-5)}  # (rtol, atol)


class FunctionalMismatch(AssertionError):
    """A tile, a stored box or an output that differs from the reference, or an op fed poison."""


def run_functional(program: Program, machine: MachineConfig, dram: Mapping[str, np.ndarray], *,
                   reference: Mapping[str, np.ndarray] | None = None, rtol: float | None = None,
                   atol: float | None = None) -> dict[str, np.ndarray]:
    """Run `program` and return the final DRAM contents, one array per tensor.

    `dram` gives the model inputs and constants. With `reference` (expected values per tensor), every Compute tile,
    every DmaStore and finally every program output is compared, and the first difference raises
    FunctionalMismatch. `rtol`/`atol` override the per-dtype float tolerances. The tests build small programs by
    hand: tests/simulator/test_functional.py.
    """
    tensors = {tensor.name: tensor for tensor in program.tensors}
    state = _initial_dram(program, tensors, dram)
    pad = Scratchpad(machine.scratchpad.partitions, machine.scratchpad.partition_bytes, program.buffers,
                     scale_factor(program.tensors))
    checker = _Checker(tensors, reference, rtol, atol)
    for instruction in program.instructions:
        try:
            _step(instruction, program.opset, tensors, state, pad, checker)
        except FunctionalError as exc:
            raise FunctionalError(f"{_describe(instruction)}: {exc}") from None
    for name in program.outputs:
        checker.check(f"output {name}", _tensor(tensors, name), Box.whole(tensors[name].shape), state[name])
    return state


def compare_outputs(got: np.ndarray, expected: np.ndarray, dtype: np.dtype | str, *, rtol: float | None = None,
                    atol: float | None = None) -> str | None:
    """None when `got` matches `expected` (floats within the dtype's tolerance, NaN only where expected; everything
    else exactly), else one line saying how far off it is.

    >>> compare_outputs(np.array([1.0, 2.0], np.float32), np.array([1.0, 2.0]), "float32") is None
    True
    >>> compare_outputs(np.array([np.nan, 2.5, 2.0]), np.array([1.0, 2.0, 2.0]), "float32")
    '1 NaN of 3 elements; max abs error 0.5 at [1]'
    """
    dtype = np.dtype(dtype)
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        return f"shape {list(got.shape)} where {list(expected.shape)} was expected"
    if dtype.kind == "f":
        default_rtol, default_atol = _TOLERANCES.get(dtype.name, _TOLERANCES["float32"])
        got64, expected64 = got.astype(np.float64), expected.astype(np.float64)
        bad = ~np.isclose(got64, expected64, rtol=default_rtol if rtol is None else rtol,
                          atol=default_atol if atol is None else atol, equal_nan=True)
        poison = np.isnan(got64) & ~np.isnan(expected64)
        parts = [f"{int(poison.sum())} NaN of {got.size} elements"] if poison.any() else []
        missing_nan = int((np.isnan(expected64) & ~np.isnan(got64)).sum())
        if missing_nan:
            parts.append(f"{missing_nan} numbers where NaN was expected")
    else:
        got64, expected64 = got.astype(np.float64), expected.astype(np.float64)
        bad = got != expected
        poison = bad & (got == poison_value(dtype))
        parts = [f"{int(bad.sum())} of {got.size} elements differ ({int(poison.sum())} poison)"] if bad.any() else []
    if not bad.any():
        return None
    error = np.where(bad & ~np.isnan(got64) & ~np.isnan(expected64), np.abs(got64 - expected64), -1.0)
    if error.max() >= 0:
        worst = [int(i) for i in np.unravel_index(int(error.argmax()), error.shape)]
        parts.append(f"max abs error {error.max():.3g} at {worst}")
    return "; ".join(parts)


def _step(instruction: Instruction, opset: int, tensors: Mapping[str, DramTensor], state: dict[str, np.ndarray],
          pad: Scratchpad, checker: _Checker) -> None:
    match instruction:
        case DmaLoad(tensor=name, box=box, buffer=buffer, at=at):
            pad.write(pad.buffer(buffer), at, state[name][_slices(_tensor(tensors, name), box)])
        case DmaStore(buffer=buffer, at=at, tensor=name, box=box):
            tensor = _tensor(tensors, name)
            values = pad.read(pad.buffer(buffer), at, box.shape, tensor.dtype)
            state[name][_slices(tensor, box)] = values
            checker.check(_describe(instruction), tensor, box, values)
        case DmaGather():
            rows = _gather(instruction, tensors, state, pad)
            output = instruction.output
            pad.write(pad.buffer(output.buffer), output.at, rows)
            checker.check(_describe(instruction), _tensor(tensors, output.tensor), output.box, rows)
        case Compute():
            tile = _compute(instruction, opset, tensors, pad)
            pad.write(pad.buffer(instruction.output.buffer), instruction.output.at, tile)
            checker.check(_describe(instruction), tensors[instruction.output.tensor], instruction.output.box, tile)
        case Release(buffer=buffer):
            pad.release(pad.buffer(buffer))


def _gather(gather: DmaGather, tensors: Mapping[str, DramTensor], state: dict[str, np.ndarray],
            pad: Scratchpad) -> np.ndarray:
    """The rows an indirect DMA moves: the index values read from the scratchpad bytes, each naming one row."""
    indices, table = _tensor(tensors, gather.indices.tensor), _tensor(tensors, gather.table)
    values = pad.read(pad.buffer(gather.indices.buffer), gather.indices.at, gather.indices.box.shape, indices.dtype)
    if np.dtype(indices.dtype).kind not in "iu":
        raise FunctionalError(f"indices {indices.name} are {indices.dtype}, not integers")
    if (poison := int((values == poison_value(indices.dtype)).sum())):
        raise FunctionalMismatch(f"{_describe(gather)}: reads {poison} poison in {indices.name}"
                                 f"{_format(gather.indices.box)}")
    extent = table.shape[gather.axis]
    if values.size and (values.min() < -extent or values.max() >= extent):
        worst = int(values.min() if values.min() < -extent else values.max())
        raise FunctionalMismatch(f"{_describe(gather)}: index {worst} is outside axis {gather.axis} of "
                                 f"{table.name}{list(table.shape)}")
    slab = state[table.name][_slices(table, gather.window)]
    return np.take(slab, np.where(values < 0, values + extent, values), axis=gather.axis)


def _compute(compute: Compute, opset: int, tensors: Mapping[str, DramTensor], pad: Scratchpad) -> np.ndarray:
    """The output tile, computed from whole inputs that hold only what the operands read."""
    slots: list[np.ndarray | Param | None] = []
    poisoned_ints: list[str] = []
    for slot in compute.inputs:
        if not isinstance(slot, (Operand, Unread)):
            slots.append(slot)
            continue
        tensor = _tensor(tensors, slot.tensor)
        if isinstance(slot, Unread):
            whole = np.full(tensor.shape, _filler(tensor.dtype, compute.op_type), dtype=tensor.dtype)
        else:
            region = pad.read(pad.buffer(slot.buffer), slot.at, slot.box.shape, tensor.dtype)
            box = _slices(tensor, slot.box)
            if slot.box.shape == tensor.shape:  # the whole tensor: no filler needed
                whole = np.ascontiguousarray(region)
            else:
                whole = np.full(tensor.shape, _filler(tensor.dtype, compute.op_type), dtype=tensor.dtype)
                whole[box] = region
            if np.dtype(tensor.dtype).kind in "iu" and (count := int((region == poison_value(tensor.dtype)).sum())):
                poisoned_ints.append(f"{count} poison in {tensor.name}{_format(slot.box)}")
        slots.append(_view(whole, slot.view, tensor))
    output = compute.output
    tensor = _tensor(tensors, output.tensor)
    shape = output.view or tensor.shape
    try:
        result = run_op(compute.op_type, compute.attrs, opset, slots, compute.output_index, shape, tensor.dtype)
    except FunctionalError as exc:
        if poisoned_ints:  # the op choked on data nobody loaded: the plan's fault, not the op's
            raise FunctionalMismatch(f"{_describe(compute)}: reads {', '.join(poisoned_ints)}; {exc}") from None
        raise
    if result.shape != tuple(shape) or result.dtype != np.dtype(tensor.dtype):
        raise FunctionalError(f"output {compute.output_index} is {result.dtype}{list(result.shape)}; tensor "
                              f"{tensor.name} expects {tensor.dtype}{list(shape)}")
    return result.reshape(tensor.shape)[_slices(tensor, output.box)]


class _Checker:
    def __init__(self, tensors: Mapping[str, DramTensor], reference: Mapping[str, np.ndarray] | None,
                 rtol: float | None, atol: float | None) -> None:
        self.reference: dict[str, np.ndarray] = {}
        for name, values in (reference or {}).items():
            if name in tensors and np.shape(values) != tensors[name].shape:
                raise FunctionalError(f"reference {name} has shape {list(np.shape(values))}; the program's tensor "
                                      f"is {list(tensors[name].shape)}")
            self.reference[name] = np.asarray(values)
        self.rtol, self.atol = rtol, atol

    def check(self, where: str, tensor: DramTensor, box: Box, got: np.ndarray) -> None:
        if tensor.name not in self.reference:
            return
        expected = self.reference[tensor.name][_slices(tensor, box)]
        problem = compare_outputs(got, expected, tensor.dtype, rtol=self.rtol, atol=self.atol)
        if problem:
            raise FunctionalMismatch(f"{where} -> {tensor.name}{_format(box)}: {problem}")


def _initial_dram(program: Program, tensors: Mapping[str, DramTensor],
                  dram: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    loaded = {i.tensor for i in program.instructions if isinstance(i, DmaLoad)} | {
        i.table for i in program.instructions if isinstance(i, DmaGather)}
    missing = sorted(name for name, t in tensors.items()
                     if t.role in ("input", "constant") and name in loaded and name not in dram)
    if missing:
        raise FunctionalError(f"no values given for {missing}, which the program loads")
    state = {}
    for name, tensor in tensors.items():
        if name not in dram:
            state[name] = poisoned(tensor.shape, tensor.dtype)
            continue
        given = np.asarray(dram[name])
        if given.shape != tensor.shape or not np.can_cast(given.dtype, tensor.dtype, "same_kind"):
            raise FunctionalError(f"values for {name} are {given.dtype}{list(given.shape)}; the program's tensor is "
                                  f"{tensor.dtype}{list(tensor.shape)}")
        state[name] = given.astype(tensor.dtype, copy=True)
    return state


def _view(whole: np.ndarray, view: tuple[int, ...], tensor: DramTensor) -> np.ndarray:
    if not view:
        return whole
    if int(np.prod(view)) != whole.size:
        raise FunctionalError(f"view {list(view)} of {tensor.name}{list(tensor.shape)} changes its size")
    return whole.reshape(view)


# onnxruntime's max-like ops skip a NaN that is not the last of its window, which would hide an unloaded halo row;
# an infinity of the right sign always wins the comparison, so it shows up in the tile instead.
WINNING_FILL = {"MaxPool": np.inf, "GlobalMaxPool": np.inf, "Max": np.inf, "ReduceMax": np.inf,
                "Min": -np.inf, "ReduceMin": -np.inf}


def _filler(dtype: str, op_type: str = "") -> Any:
    """What stands for data a tile did not load: NaN (an infinity for max- and min-like ops); 0 for integers."""
    if np.dtype(dtype).kind != "f":
        return 0
    return WINNING_FILL.get(op_type, np.nan)


def _tensor(tensors: Mapping[str, DramTensor], name: str) -> DramTensor:
    try:
        return tensors[name]
    except KeyError:
        raise FunctionalError(f"no tensor {name!r}; the program declares {sorted(tensors)}") from None


def _slices(tensor: DramTensor, box: Box) -> tuple[slice, ...]:
    if len(box.start) != len(tensor.shape) or any(b > d for b, d in zip(box.stop, tensor.shape, strict=True)) or \
            any(a < 0 for a in box.start):
        raise FunctionalError(f"box {_format(box)} is outside {tensor.name}{list(tensor.shape)}")
    return tuple(slice(a, b) for a, b in zip(box.start, box.stop, strict=True))


def _format(box: Box) -> str:
    return "[" + ", ".join(f"{a}:{b}" for a, b in zip(box.start, box.stop, strict=True)) + "]"


def _describe(instruction: Instruction) -> str:
    match instruction:
        case DmaLoad():
            return f"instruction {instruction.id} DmaLoad {instruction.tensor} -> {instruction.buffer}"
        case DmaStore():
            return f"instruction {instruction.id} DmaStore {instruction.buffer}"
        case DmaGather():
            return f"instruction {instruction.id} DmaGather {instruction.table} -> {instruction.output.buffer}"
        case Compute():
            return f"instruction {instruction.id} Compute {instruction.node} ({instruction.op_type})"
        case Release():
            return f"instruction {instruction.id} Release {instruction.buffer}"
