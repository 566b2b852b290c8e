"""DRAM for the functional simulator: each tensor's bytes as one flat array in its layout, moved by descriptors.

A load or store of a box goes through the descriptors the DMA engine would run (`simulator.dma`): the box's pieces
under the tensor's layout, each piece's elements at the offsets its descriptors walk (up to the machine's
`dma.descriptor_dims` dims each). A layout or descriptor split that moved the wrong elements would therefore feed the
wrong values to the ops, and the check against the reference would catch it. Values go in and come out in the
tensor's logical (ONNX) order: a model's inputs are given, and its outputs read back, as onnxruntime has them.

>>> from simulator.isa import Box, DmaGather, DmaLoad, DramTensor, Program
>>> from simulator.layout import DramLayout
>>> x = DramTensor("x", (2, 3), "float32", 4, "intermediate", DramLayout((1, 0)))  # column-major
>>> image = DramImage(x, np.arange(6, dtype=np.float32).reshape(2, 3), 2)
>>> image.flat.tolist()
[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
>>> image.read(Box((0, 1), (2, 3))).tolist()
[[1.0, 2.0], [4.0, 5.0]]
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np

from simulator.dma import element_offsets, physical_shape, pieces
from simulator.isa import Box, DmaGather, DmaLoad, DramTensor, Program
from simulator.layout import Region
from simulator.scratchpad import FunctionalError, Poison, poisoned


class DramImage:
    """One tensor in DRAM (see the module docstring)."""

    def __init__(self, tensor: DramTensor, values: np.ndarray, descriptor_dims: int) -> None:
        self.tensor, self.descriptor_dims = tensor, descriptor_dims
        self.physical = physical_shape(tensor)
        self.flat = np.empty(int(np.prod(tensor.shape)), dtype=values.dtype)
        self.write(Box.whole(tensor.shape), values.reshape(tensor.shape))

    def read(self, box: Box) -> np.ndarray:
        """The values of `box`, in its logical shape."""
        self._check(box)
        out = np.empty(box.shape, dtype=self.flat.dtype)
        for piece in pieces(self.tensor, box):
            values = self.flat[_offsets(self.physical, piece.physical, self.descriptor_dims)]
            out[_within(piece.logical, box)] = self._to_logical(values, piece.physical, piece.logical)
        return out

    def write(self, box: Box, values: np.ndarray) -> None:
        """Store `values` (the box's logical shape) into `box`."""
        self._check(box)
        values = np.broadcast_to(values, box.shape)
        for piece in pieces(self.tensor, box):
            part = values[_within(piece.logical, box)]
            self.flat[_offsets(self.physical, piece.physical, self.descriptor_dims)] = \
                self._to_physical(part, piece.physical)

    def logical(self) -> np.ndarray:
        """The whole tensor in its logical shape (a copy)."""
        return self.read(Box.whole(self.tensor.shape))

    def _to_logical(self, values: np.ndarray, physical: Region, logical: Region) -> np.ndarray:
        extents = tuple(b - a for a, b in zip(*physical, strict=True))
        shape = tuple(b - a for a, b in zip(*logical, strict=True))
        layout = self.tensor.layout
        if layout is None:
            return values.reshape(shape)
        return values.reshape(extents).transpose(layout.logical_axes()).reshape(shape)

    def _to_physical(self, part: np.ndarray, physical: Region) -> np.ndarray:
        layout = self.tensor.layout
        if layout is None:
            return part.reshape(-1)
        extents = tuple(b - a for a, b in zip(*physical, strict=True))
        axes = layout.logical_axes()
        split = part.reshape(tuple(extents[axis] for axis in axes))  # (outer_0, inner_0, outer_1, ...)
        return split.transpose(np.argsort(axes)).reshape(-1)

    def _check(self, box: Box) -> None:
        shape = self.tensor.shape
        if len(box.start) != len(shape) or min(box.start, default=0) < 0 or any(
                b > d for b, d in zip(box.stop, shape, strict=True)):
            where = ", ".join(f"{a}:{b}" for a, b in zip(box.start, box.stop, strict=True))
            raise FunctionalError(f"box [{where}] is outside {self.tensor.name}{list(shape)}")


@functools.lru_cache(maxsize=256)  # two runs load the same boxes; a bound on memory, as offsets are 8 B each
def _offsets(physical: tuple[int, ...], region: Region, descriptor_dims: int) -> np.ndarray:
    return element_offsets(physical, region, descriptor_dims)


def _within(region: Region, box: Box) -> tuple[slice, ...]:
    return tuple(slice(a - s, b - s) for a, b, s in zip(region[0], region[1], box.start, strict=True))


def check_given(program: Program, tensors: Mapping[str, DramTensor], dram: Mapping[str, np.ndarray]) -> None:
    """Values for every input and constant the program loads, each of its tensor's size and kind."""
    loaded = {i.tensor for i in program.instructions if isinstance(i, DmaLoad)} | {
        i.table for i in program.instructions if isinstance(i, DmaGather)}
    missing = sorted(name for name, t in tensors.items()
                     if t.role in ("input", "constant") and name in loaded and name not in dram)
    if missing:
        raise FunctionalError(f"no values given for {missing}, which the program loads")
    for name, given in dram.items():
        if name in tensors:
            tensor = tensors[name]
            given = np.asarray(given)
            # the same elements in the same order: a scalar given for a [1] tensor is the same bytes
            if given.size != int(np.prod(tensor.shape)) or not np.can_cast(given.dtype, tensor.dtype, "same_kind"):
                raise FunctionalError(f"values for {name} are {given.dtype}{list(given.shape)}; the program's tensor "
                                      f"is {tensor.dtype}{list(tensor.shape)}")


def initial_dram(tensors: Mapping[str, DramTensor], dram: Mapping[str, np.ndarray], poison: Poison,
                  descriptor_dims: int) -> dict[str, DramImage]:
    """DRAM at the start: the given values, and poison for the rest."""
    # each tensor in its own DRAM layout; the caller's values are in ONNX order, as onnxruntime has them
    return {name: DramImage(tensor, np.asarray(dram[name]).astype(tensor.dtype, copy=True).reshape(tensor.shape)
                            if name in dram else poisoned(tensor.shape, tensor.dtype, poison), descriptor_dims)
            for name, tensor in tensors.items()}
