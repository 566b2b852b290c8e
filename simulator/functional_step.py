"""One instruction of a Program on real numbers: what it does to the DRAM image and the scratchpad bytes, checked.

`simulator.functional` runs a program twice, in adversarial orders and with two poisons; this module is what each
step of those runs does, apart from the order it is run in. A load and a store copy bytes between DRAM and the
scratchpad (a store is compared with the reference), a gather reads its index values from the scratchpad bytes, a
Release poisons its buffer, and a Compute runs its op on what its operands hold.

A Compute reads each operand only from its buffer region. It builds every input at the tensor's full shape, filled
with a filler (poison for floats; for integers a valid index, 0 or -1 by run, because poisoned indices would make
Gather raise, not propagate), copies the operand's box in, applies the operand's view, runs the whole op with
onnxruntime (`simulator.kernels`), and keeps the output tile. A halo the planner forgot to load therefore comes out
as poison instead of being quietly fetched. An Unread slot (a Concat part's other inputs) is built from filler alone:
the op needs its shape, not its values.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from simulator.dram import DramImage
from simulator.functional_crop import crop as tile_crop
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
    Release,
    Unread,
)
from simulator.kernels import run_op
from simulator.reference import Checker, FunctionalMismatch
from simulator.scratchpad import FunctionalError, Poison, Scratchpad, is_poison


def step(instruction: Instruction, opset: int, tensors: Mapping[str, DramTensor], state: dict[str, DramImage],
          pad: Scratchpad, checker: Checker, adversarial: bool, stored: dict[str, np.ndarray]) -> None:
    """Run one instruction on `state` (DRAM) and `pad`, checking what it stores or computes with `checker`.

    `stored` marks, per tensor, the elements stores have written; `adversarial` (run 0) lets a Compute's output land
    on bytes it has yet to read.
    """
    match instruction:
        case DmaLoad(tensor=name, box=box, buffer=buffer, at=at):
            tensor_named(tensors, name)
            pad.write(pad.buffer(buffer), at, state[name].read(box))
        case DmaStore(buffer=buffer, at=at, tensor=name, box=box):
            tensor = tensor_named(tensors, name)
            values = pad.read(pad.buffer(buffer), at, box.shape, tensor.dtype)
            state[name].write(box, values)
            stored.setdefault(name, np.zeros(tensor.shape, dtype=bool))[_slices(tensor, box)] = True
            checker.check(describe(instruction), tensor, box, values)
        case DmaGather():
            rows = _gather(instruction, tensors, state, pad)
            output = instruction.output
            pad.write(pad.buffer(output.buffer), output.at, rows)
            checker.check(describe(instruction), tensor_named(tensors, output.tensor), output.box, rows)
        case Compute():
            output = instruction.output
            if adversarial and all(operand.buffer != output.buffer for operand in instruction.operands):
                # The engine writes while it reads: its output may land on bytes it has yet to read (bytes that
                # only a bad allocation would share with an input). Writing in place is left alone.
                pad.poison_region(pad.buffer(output.buffer), output.at, output.box.shape)
            tile = _compute_tile(instruction, opset, tensors, pad, cropped=True)
            if not instruction.partial:  # a partial sum is no value of the tensor yet
                try:
                    checker.check(describe(instruction), tensors[output.tensor], output.box, tile)
                except FunctionalMismatch:
                    if tile_crop(instruction, tensors) is None:
                        raise
                    # A crop sums in another order than the whole op (onnxruntime blocks its GEMM by shape): where
                    # that rounding is past the tolerance, the whole op, as the reference runs it, decides.
                    tile = _compute_tile(instruction, opset, tensors, pad, cropped=False)
                    checker.check(describe(instruction), tensors[output.tensor], output.box, tile)
            pad.write(pad.buffer(output.buffer), output.at, tile)
        case Release(buffer=buffer):
            pad.release(pad.buffer(buffer))


def _gather(gather: DmaGather, tensors: Mapping[str, DramTensor], state: dict[str, DramImage],
            pad: Scratchpad) -> np.ndarray:
    """The rows an indirect DMA moves: the index values read from the scratchpad bytes, each naming one row."""
    indices, table = tensor_named(tensors, gather.indices.tensor), tensor_named(tensors, gather.table)
    values = pad.read(pad.buffer(gather.indices.buffer), gather.indices.at, gather.indices.box.shape, indices.dtype)
    values = values.reshape(gather.index_shape)
    if np.dtype(indices.dtype).kind not in "iu":
        raise FunctionalError(f"indices {indices.name} are {indices.dtype}, not integers")
    if (poison := int(is_poison(values).sum())):
        raise FunctionalMismatch(f"{describe(gather)}: reads {poison} poison in {indices.name}"
                                 f"{_format(gather.indices.box)}")
    extent = table.shape[gather.axis]
    if values.size and (values.min() < -extent or values.max() >= extent):
        worst = int(values.min() if values.min() < -extent else values.max())
        raise FunctionalMismatch(f"{describe(gather)}: index {worst} is outside axis {gather.axis} of "
                                 f"{table.name}{list(table.shape)}")
    slab = state[table.name].read(gather.window)
    return np.take(slab, np.where(values < 0, values + extent, values), axis=gather.axis)


def _compute_tile(compute: Compute, opset: int, tensors: Mapping[str, DramTensor], pad: Scratchpad,
                  cropped: bool) -> np.ndarray:
    """The tile the Compute writes: the op's tile, plus the running sum of a split reduction's later slice."""
    tile = _compute(compute, opset, tensors, pad, cropped)
    if compute.accumulate is not None:
        running = compute.accumulate
        tile = tile + pad.read(pad.buffer(running.buffer), running.at, running.box.shape, tile.dtype)
    return tile


def _compute(compute: Compute, opset: int, tensors: Mapping[str, DramTensor], pad: Scratchpad,
             cropped: bool) -> np.ndarray:
    """The output tile, computed from whole inputs that hold only what the operands read (or, when `cropped`, from
    the crop of those whole inputs that the tile depends on: `simulator.functional_crop`)."""
    crop = tile_crop(compute, tensors) if cropped else None
    slots: list[np.ndarray | Param | None] = []
    poisoned_ints: list[str] = []
    for number, slot in enumerate(compute.inputs):
        if not isinstance(slot, (Operand, Unread)):
            slots.append(slot)
            continue
        tensor = tensor_named(tensors, slot.tensor)
        part = crop.crops[number] if crop is not None else None
        if isinstance(slot, Unread):
            whole = _blank(tensor, pad.poison)
        else:
            buffer = pad.buffer(slot.buffer)
            region = pad.read(buffer, slot.at, slot.box.shape, tensor.dtype)
            if part is not None and slot.view:  # the whole tensor through a view: the crop is of the view
                _slices(tensor, slot.box)
                whole = np.array(_view(np.asarray(region), slot.view, tensor)[
                    tuple(slice(a, b) for a, b in zip(part.start, part.stop, strict=True))], order="C")
            elif part is not None:
                whole = _cropped(tensor, slot.box, region, part, pad.poison)
            elif slot.box.shape == tensor.shape:  # the whole tensor: no filler needed
                whole = np.array(region, order="C")  # not ascontiguousarray, which makes a scalar 1-D
            else:
                whole = _blank(tensor, pad.poison)
                whole[_slices(tensor, slot.box)] = region
            if np.dtype(tensor.dtype).kind in "iu" and (
                    count := pad.poisoned_count(buffer, slot.at, slot.box.shape, tensor.dtype)):
                poisoned_ints.append(f"{count} poison in {tensor.name}{_format(slot.box)}")
        slots.append(whole if part is not None else _view(whole, slot.view, tensor))
    for index, axis, start, stop in compute.slices:  # a slice of a split reduction: the op on that slice alone
        sliced = slots[index]
        if not isinstance(sliced, np.ndarray):
            raise FunctionalError(f"slice of input {index}, which is not read from the scratchpad")
        slots[index] = np.take(sliced, np.arange(start, stop), axis=axis)
    output = compute.output
    tensor = tensor_named(tensors, output.tensor)
    shape = crop.output.shape if crop is not None else (output.view or tensor.shape)
    try:
        result = run_op(compute.op_type, crop.attrs if crop is not None else compute.attrs, opset, slots,
                        compute.output_index, shape, tensor.dtype)
    except FunctionalError as exc:
        if poisoned_ints:  # the op choked on data nobody loaded: the plan's fault, not the op's
            raise FunctionalMismatch(f"{describe(compute)}: reads {', '.join(poisoned_ints)}; {exc}") from None
        raise
    if result.shape != tuple(shape) or result.dtype != np.dtype(tensor.dtype):
        raise FunctionalError(f"output {compute.output_index} is {result.dtype}{list(result.shape)}; tensor "
                              f"{tensor.name} expects {tensor.dtype}{list(shape)}")
    if crop is not None:
        return result[tuple(slice(a - c, b - c) for a, b, c in zip(output.box.start, output.box.stop,
                                                                    crop.output.start, strict=True))]
    return result.reshape(tensor.shape)[_slices(tensor, output.box)]


def _cropped(tensor: DramTensor, box: Box, region: np.ndarray, part: Box, poison: Poison) -> np.ndarray:
    """`part` of the whole input that holds `region` at `box` and filler elsewhere, built at `part`'s size only."""
    _slices(tensor, box)
    whole = _blank_shape(tensor, part.shape, poison)
    low = [max(a, c) for a, c in zip(box.start, part.start, strict=True)]
    high = [min(b, d) for b, d in zip(box.stop, part.stop, strict=True)]
    if all(a < b for a, b in zip(low, high, strict=True)):
        whole[tuple(slice(a - c, b - c) for a, b, c in zip(low, high, part.start, strict=True))] = \
            region[tuple(slice(a - c, b - c) for a, b, c in zip(low, high, box.start, strict=True))]
    return whole


def _blank(tensor: DramTensor, poison: Poison) -> np.ndarray:
    """A whole input before its operand's box is copied in: poison for floats, the run's filler otherwise."""
    return _blank_shape(tensor, tensor.shape, poison)


def _blank_shape(tensor: DramTensor, shape: tuple[int, ...], poison: Poison) -> np.ndarray:
    if np.dtype(tensor.dtype).kind == "f":
        return poison.fill(shape, tensor.dtype)
    return np.full(shape, poison.filler(tensor.dtype)[0], dtype=tensor.dtype)


def _view(whole: np.ndarray, view: tuple[int, ...], tensor: DramTensor) -> np.ndarray:
    if not view:
        return whole
    if int(np.prod(view)) != whole.size:
        raise FunctionalError(f"view {list(view)} of {tensor.name}{list(tensor.shape)} changes its size")
    return whole.reshape(view)


def tensor_named(tensors: Mapping[str, DramTensor], name: str) -> DramTensor:
    """The tensor the program declares as `name`, or a FunctionalError listing the ones it does."""
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


def describe(instruction: Instruction) -> str:
    """The instruction as error messages name it, e.g. "instruction 7 DmaLoad x -> buf_x"."""
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
