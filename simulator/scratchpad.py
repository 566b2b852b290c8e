"""The scratchpad as real bytes: P partitions of one flat uint8 array, laid out exactly as `simulator.isa` says.

Buffer row r (of the first axis of its `layout`) lives in partition r % P, slot r // P; the buffer takes bytes
[offset, offset + partition_bytes) of each partition it spans. Values are kept in the model's own dtype, so every
planned offset and size is scaled by one integer factor (see `scale_factor`): a float32 tensor planned as bf16 takes
4 bytes per element here, and ranges the planner kept apart stay apart.

Poison: the bytes start as 0xFF (NaN for every float width) and Release writes 0xFF again. Integers have no NaN, so a
shadow byte per scratchpad byte marks what no DMA or compute has written since; reading an integer element with any
shadowed byte yields `poison_value(dtype)`, hardware's poison bit in spirit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from simulator.isa import Buffer, DramTensor

POISON_BYTE = 0xFF


class FunctionalError(ValueError):
    """A program the functional simulator cannot run: an unknown buffer or tensor, a region outside its buffer, a
    dtype that does not fit its planned element size, an op onnxruntime rejects."""


def poison_value(dtype: np.dtype | str) -> float | int | bool:
    """The value that marks data nobody wrote: NaN for floats, the most negative signed integer, the largest
    unsigned one (0 is too common to stand out), and True for bool (which has no spare value).

    >>> poison_value("int32"), poison_value("uint8"), poison_value("float32")
    (-2147483648, 255, nan)
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return math.nan
    if dtype.kind == "i":
        return int(np.iinfo(dtype).min)
    if dtype.kind == "u":
        return int(np.iinfo(dtype).max)
    if dtype.kind == "b":
        return True
    raise FunctionalError(f"dtype {dtype} has no poison value; supported kinds are float, int, uint and bool")


def poisoned(shape: Sequence[int], dtype: np.dtype | str) -> np.ndarray:
    return np.full(tuple(shape), poison_value(dtype), dtype=np.dtype(dtype))


def scale_factor(tensors: Iterable[DramTensor]) -> int:
    """Bytes the simulator spends per planned byte: enough for the widest value per planned element size.

    >>> scale_factor([DramTensor("x", (2,), "float32", 2, "input"), DramTensor("i", (2,), "int64", 8, "input")])
    2
    """
    return max((-(-np.dtype(t.dtype).itemsize // t.elem_bytes) for t in tensors), default=1)


class Scratchpad:
    """`partitions` rows of bytes holding `buffers`, every planned byte offset and size multiplied by `scale`.

    >>> buf = Buffer("b", offset=0, shape=(3, 2), layout=(0, 1), elem_bytes=4)
    >>> pad = Scratchpad(2, 64, [buf], scale=1)
    >>> pad.write(buf, (0, 0), np.arange(6, dtype=np.int32).reshape(3, 2))
    >>> pad.read(buf, (1, 0), (2, 2), np.int32).tolist()
    [[2, 3], [4, 5]]
    >>> pad.release(buf); pad.read(buf, (0, 0), (1, 1), np.int32).tolist()
    [[-2147483648]]
    """

    def __init__(self, partitions: int, partition_bytes: int, buffers: Iterable[Buffer], scale: int) -> None:
        self.partitions, self.scale = partitions, scale
        self.buffers = {buffer.name: buffer for buffer in buffers}
        for buffer in self.buffers.values():
            end = buffer.offset + buffer.partition_bytes(partitions)
            if end > partition_bytes:
                raise FunctionalError(f"buffer {buffer.name}: bytes [{buffer.offset}, {end}) of each partition "
                                      f"overrun the partition's {partition_bytes} bytes")
        # Only as many bytes as some buffer reaches: a 24 MiB machine running a tiny program stays cheap.
        used = max((b.offset + b.partition_bytes(partitions) for b in self.buffers.values()), default=0)
        self.width_bytes = used * scale
        self.data = np.full((partitions, self.width_bytes), POISON_BYTE, dtype=np.uint8)
        self.shadow = np.full_like(self.data, POISON_BYTE)
        self._views: dict[tuple[str, str, bool], np.ndarray] = {}

    def buffer(self, name: str) -> Buffer:
        try:
            return self.buffers[name]
        except KeyError:
            raise FunctionalError(f"no buffer {name!r}; the program declares {sorted(self.buffers)}") from None

    def write(self, buffer: Buffer, at: Sequence[int], values: np.ndarray) -> None:
        """Store `values` (in the buffer's logical axis order) into the region starting at element `at`."""
        index = self._index(buffer, at, values.shape)
        in_layout = values.reshape(values.shape or (1,)).transpose(_layout(buffer))
        self._view(buffer, values.dtype, shadow=False)[index] = in_layout
        self._view(buffer, values.dtype, shadow=True)[index] = 0

    def read(self, buffer: Buffer, at: Sequence[int], shape: Sequence[int], dtype: np.dtype | str) -> np.ndarray:
        """The region of `shape` starting at element `at`, as `dtype`, in the buffer's logical axis order."""
        dtype = np.dtype(dtype)
        index = self._index(buffer, at, shape)
        values = self._view(buffer, dtype, shadow=False)[index]
        if dtype.kind != "f":  # float poison is already NaN in the bytes themselves
            values[self._view(buffer, dtype, shadow=True)[index] != 0] = poison_value(dtype)
        layout = _layout(buffer)
        return values.transpose([layout.index(axis) for axis in range(len(layout))]).reshape(tuple(shape))

    def release(self, buffer: Buffer) -> None:
        start = buffer.offset * self.scale
        stop = start + buffer.partition_bytes(self.partitions) * self.scale
        used = buffer.partitions_used(self.partitions)
        self.data[:used, start:stop] = POISON_BYTE
        self.shadow[:used, start:stop] = POISON_BYTE

    def _index(self, buffer: Buffer, at: Sequence[int], shape: Sequence[int]) -> tuple[np.ndarray | slice, ...]:
        dims = _dims(buffer)
        at, shape = (tuple(at), tuple(shape)) if buffer.shape else ((0,), (1,))
        if len(at) != len(dims) or len(shape) != len(dims) or any(
                a < 0 or a + n > d for a, n, d in zip(at, shape, dims, strict=True)):
            raise FunctionalError(f"buffer {buffer.name} of shape {list(buffer.shape)}: region of shape "
                                  f"{list(shape)} at {list(at)} does not fit")
        layout = _layout(buffer)
        rows = np.arange(at[layout[0]], at[layout[0]] + shape[layout[0]])
        inner = tuple(slice(at[axis], at[axis] + shape[axis]) for axis in layout[1:])
        return (rows % self.partitions, rows // self.partitions, *inner)

    def _view(self, buffer: Buffer, dtype: np.dtype, shadow: bool) -> np.ndarray:
        """The buffer's bytes as an array of (partition, slot, *other layout axes), one element per planned one."""
        key = (buffer.name, dtype.str, shadow)
        if key not in self._views:
            element_bytes = buffer.elem_bytes * self.scale
            if dtype.itemsize > element_bytes:
                raise FunctionalError(f"buffer {buffer.name}: {dtype} values take {dtype.itemsize} bytes, more than "
                                      f"the {element_bytes} bytes per element planned (times the scale {self.scale})")
            dims, layout = _dims(buffer), _layout(buffer)
            inner = tuple(dims[axis] for axis in layout[1:])
            inner_strides = tuple(element_bytes * math.prod(inner[k + 1:]) for k in range(len(inner)))
            row_bytes = element_bytes * math.prod(inner)
            slots = -(-dims[layout[0]] // self.partitions)
            as_type = np.dtype(f"u{dtype.itemsize}") if shadow else dtype
            self._views[key] = np.ndarray((self.partitions, slots, *inner), dtype=as_type,
                                          buffer=self.shadow if shadow else self.data,
                                          offset=buffer.offset * self.scale,
                                          strides=(self.width_bytes, row_bytes, *inner_strides))
        return self._views[key]


def _dims(buffer: Buffer) -> tuple[int, ...]:
    return buffer.shape or (1,)  # a scalar buffer is one row of one element


def _layout(buffer: Buffer) -> tuple[int, ...]:
    return buffer.layout or (0,)
