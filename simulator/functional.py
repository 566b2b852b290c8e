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

What each instruction does in a run, and how a Compute reads only its operands' regions so that a halo the planner
forgot to load comes out as poison, is `simulator.functional_step`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from simulator.dram import DramImage, check_given, initial_dram
from simulator.functional_step import describe, step, tensor_named
from simulator.isa import Box, DmaStore, DramTensor, Instruction, Program
from simulator.machine import MachineConfig
from simulator.races import analyse, orders, writes
from simulator.reference import Checker, FunctionalMismatch, compare_outputs
from simulator.scratchpad import POISONS, FunctionalError, Poison, Scratchpad, poison_value, scale_factor

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
        hint = (f" ({len(races)} races: e.g. {describe(program.instructions[a])} and "
                f"{describe(program.instructions[b])} touch the same bytes, neither waiting for the other)")
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
                step(instruction, program.opset, tensors, state, pad, checker, adversarial, stored)
            except FunctionalMismatch as exc:
                raise FunctionalMismatch(f"{exc}; run {number}{hint if races else ''}") from None
            except FunctionalError as exc:
                raise FunctionalError(f"{describe(instruction)}: {exc}") from None
        for name in program.outputs:
            try:
                checker.check(f"output {name}", tensor_named(tensors, name), Box.whole(tensors[name].shape),
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
