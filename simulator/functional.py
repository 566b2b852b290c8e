"""Run a Program on real numbers, in a real byte array, and check every tile against a reference.

DRAM holds each tensor's bytes in its DRAM layout, moved descriptor by descriptor (`simulator.dram`), in the model's
dtype; what the caller does not give starts as poison. The scratchpad
is bytes (`simulator.scratchpad`). The program runs twice, so that it is an oracle on its own, apart from `verify`:

- **two poisons**: run 0 with poison pattern 0, run 1 with pattern 1, which differs from it in every poisoned
  element (large finite floats of both signs, two integer patterns, both bools). A stored value that differs between
  the runs read poison, whatever the op makes of it;
- **two orders**: each run takes a random topological order of happens-before (seeded), not program order. Run 0
  runs every race (`simulator.races`: two instructions on one byte, unordered by happens-before) against program
  order, and lets each Compute's output land before it reads its inputs (through other buffers); run 1 runs races in
  program order. A missing dependency shows up in the first, an early Release in the second;
- **release means gone**: a Release writes poison over its buffer.

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

from simulator.dram import DramImage, check_given, initial_dram
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
    Program,
    Release,
    Unread,
)
from simulator.kernels import run_op
from simulator.machine import MachineConfig
from simulator.races import analyse, orders, writes
from simulator.reference import Checker, FunctionalMismatch, compare_outputs
from simulator.scratchpad import (
    POISONS,
    FunctionalError,
    Poison,
    Scratchpad,
    is_poison,
    poison_value,
    scale_factor,
)

__all__ = ["FunctionalError", "FunctionalMismatch", "compare_outputs", "poison_value", "run_functional"]

def run_functional(program: Program, machine: MachineConfig, dram: Mapping[str, np.ndarray], *,
                   reference: Mapping[str, np.ndarray] | None = None, rtol: float | None = None,
                   atol: float | None = None, seed: int = 0,
                   error_bounds: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Run `program` twice (see the module docstring) and return the final DRAM contents of run 0, one array per
    tensor.

    `dram` gives the model inputs and constants. With `reference` (expected values per tensor), every Compute tile,
    every DmaStore and finally every program output is compared, in both runs, and the first difference raises
    FunctionalMismatch; so does a stored value that differs between the runs. `rtol`/`atol` override the per-dtype
    float tolerances; `error_bounds` adds, per tensor (an array broadcast to its shape), an absolute error allowed on
    top of them (a split reduction sums in another order than the reference); `seed` picks the random orders. The
    tests build small programs by hand: tests/simulator/test_functional.py.
    """
    tensors = {tensor.name: tensor for tensor in program.tensors}
    check_given(program, tensors, dram)
    checker = Checker(tensors, reference, rtol, atol, error_bounds or {})
    geometry = _scratchpad(program, machine, POISONS[0])
    try:
        races, readers = analyse(program, geometry, tensors)
    except FunctionalError:
        races, readers = [], {}  # a malformed region: the run below names the instruction
    plan = orders(program, races, seed, readers)
    hint = ""
    if races:
        a, b = races[0].first, races[0].second
        hint = (f" ({len(races)} races: e.g. {_describe(program.instructions[a])} and "
                f"{_describe(program.instructions[b])} touch the same bytes, neither waiting for the other)")
    runs = []
    for number, (poison, order) in enumerate(((POISONS[0], plan.exposing), (POISONS[1], plan.keeping))):
        adversarial = number == 0
        state = initial_dram(tensors, dram, poison, machine.dma.descriptor_dims)
        pad = _scratchpad(program, machine, poison)
        stored: dict[str, np.ndarray] = {}
        done: set[int] = set()
        for position in order:
            instruction = program.instructions[position]
            if adversarial:
                # A read run before the write that program order gives it: the write is in flight, its bytes garbage.
                for writer in plan.early_readers.get(position, ()):
                    if writer not in done:
                        _in_flight(program.instructions[writer], pad, state, tensors, poison)
            done.add(position)
            try:
                _step(instruction, program.opset, tensors, state, pad, checker, adversarial, stored)
            except FunctionalMismatch as exc:
                raise FunctionalMismatch(f"{exc}; run {number}{hint if races else ''}") from None
            except FunctionalError as exc:
                raise FunctionalError(f"{_describe(instruction)}: {exc}") from None
        for name in program.outputs:
            try:
                checker.check(f"output {name}", _tensor(tensors, name), Box.whole(tensors[name].shape),
                              state[name].logical())
            except FunctionalMismatch as exc:
                raise FunctionalMismatch(f"{exc}; run {number}{hint}") from None
        runs.append(({name: image.logical() for name, image in state.items()}, stored))  # back in ONNX order
    _compare_runs(program, tensors, runs, hint)
    return runs[0][0]


def _in_flight(writer: Instruction, pad: Scratchpad, state: dict[str, DramImage], tensors: Mapping[str, DramTensor],
               poison: Poison) -> None:
    """Poison what `writer` is about to write, in the scratchpad or in DRAM."""
    for name, at, shape in writes(writer, pad):
        pad.poison_region(pad.buffer(name), at, shape)
    if isinstance(writer, DmaStore) and writer.tensor in tensors:
        tensor = tensors[writer.tensor]
        state[writer.tensor].write(writer.box, poison.fill(writer.box.shape, tensor.dtype))


def _scratchpad(program: Program, machine: MachineConfig, poison: Poison) -> Scratchpad:
    return Scratchpad(machine.scratchpad.partitions, machine.scratchpad.partition_bytes, program.buffers,
                      scale_factor(program.tensors), poison)


def _compare_runs(program: Program, tensors: Mapping[str, DramTensor],
                  runs: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]], hint: str) -> None:
    """Every model output, and every other stored element, must come out the same in both runs."""
    (first, first_stored), (second, _) = runs
    names = dict.fromkeys([*program.outputs, *first_stored])
    for name in names:
        if name not in tensors:
            continue
        mask = np.ones(tensors[name].shape, dtype=bool) if name in program.outputs else first_stored[name]
        differ = mask & ~_same(first[name], second[name])
        if differ.any():
            where = [int(i) for i in np.argwhere(differ)[0]]
            raise FunctionalMismatch(f"{name}: {int(differ.sum())} of {int(mask.sum())} stored elements differ between "
                                     f"two runs with different poison and order (first at {where}): they read poison "
                                     f"or raced{hint}")


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f":
        return (a == b) | (np.isnan(a) & np.isnan(b))
    return np.asarray(a == b)


def _step(instruction: Instruction, opset: int, tensors: Mapping[str, DramTensor], state: dict[str, DramImage],
          pad: Scratchpad, checker: Checker, adversarial: bool, stored: dict[str, np.ndarray]) -> None:
    match instruction:
        case DmaLoad(tensor=name, box=box, buffer=buffer, at=at):
            _tensor(tensors, name)
            pad.write(pad.buffer(buffer), at, state[name].read(box))
        case DmaStore(buffer=buffer, at=at, tensor=name, box=box):
            tensor = _tensor(tensors, name)
            values = pad.read(pad.buffer(buffer), at, box.shape, tensor.dtype)
            state[name].write(box, values)
            stored.setdefault(name, np.zeros(tensor.shape, dtype=bool))[_slices(tensor, box)] = True
            checker.check(_describe(instruction), tensor, box, values)
        case DmaGather():
            rows = _gather(instruction, tensors, state, pad)
            output = instruction.output
            pad.write(pad.buffer(output.buffer), output.at, rows)
            checker.check(_describe(instruction), _tensor(tensors, output.tensor), output.box, rows)
        case Compute():
            output = instruction.output
            if adversarial and all(operand.buffer != output.buffer for operand in instruction.operands):
                # The engine writes while it reads: its output may land on bytes it has yet to read (bytes that
                # only a bad allocation would share with an input). Writing in place is left alone.
                pad.poison_region(pad.buffer(output.buffer), output.at, output.box.shape)
            tile = _compute_tile(instruction, opset, tensors, pad, cropped=True)
            if not instruction.partial:  # a partial sum is no value of the tensor yet
                try:
                    checker.check(_describe(instruction), tensors[output.tensor], output.box, tile)
                except FunctionalMismatch:
                    if tile_crop(instruction, tensors) is None:
                        raise
                    # A crop sums in another order than the whole op (onnxruntime blocks its GEMM by shape): where
                    # that rounding is past the tolerance, the whole op, as the reference runs it, decides.
                    tile = _compute_tile(instruction, opset, tensors, pad, cropped=False)
                    checker.check(_describe(instruction), tensors[output.tensor], output.box, tile)
            pad.write(pad.buffer(output.buffer), output.at, tile)
        case Release(buffer=buffer):
            pad.release(pad.buffer(buffer))


def _gather(gather: DmaGather, tensors: Mapping[str, DramTensor], state: dict[str, DramImage],
            pad: Scratchpad) -> np.ndarray:
    """The rows an indirect DMA moves: the index values read from the scratchpad bytes, each naming one row."""
    indices, table = _tensor(tensors, gather.indices.tensor), _tensor(tensors, gather.table)
    values = pad.read(pad.buffer(gather.indices.buffer), gather.indices.at, gather.indices.box.shape, indices.dtype)
    values = values.reshape(gather.index_shape)
    if np.dtype(indices.dtype).kind not in "iu":
        raise FunctionalError(f"indices {indices.name} are {indices.dtype}, not integers")
    if (poison := int(is_poison(values).sum())):
        raise FunctionalMismatch(f"{_describe(gather)}: reads {poison} poison in {indices.name}"
                                 f"{_format(gather.indices.box)}")
    extent = table.shape[gather.axis]
    if values.size and (values.min() < -extent or values.max() >= extent):
        worst = int(values.min() if values.min() < -extent else values.max())
        raise FunctionalMismatch(f"{_describe(gather)}: index {worst} is outside axis {gather.axis} of "
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
        tensor = _tensor(tensors, slot.tensor)
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
    tensor = _tensor(tensors, output.tensor)
    shape = crop.output.shape if crop is not None else (output.view or tensor.shape)
    try:
        result = run_op(compute.op_type, crop.attrs if crop is not None else compute.attrs, opset, slots,
                        compute.output_index, shape, tensor.dtype)
    except FunctionalError as exc:
        if poisoned_ints:  # the op choked on data nobody loaded: the plan's fault, not the op's
            raise FunctionalMismatch(f"{_describe(compute)}: reads {', '.join(poisoned_ints)}; {exc}") from None
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
