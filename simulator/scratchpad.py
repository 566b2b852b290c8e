"""The scratchpad as real bytes: P partitions of one flat uint8 array, laid out exactly as `simulator.isa` says.

Buffer row r (of the first axis of its `layout`) lives in partition r % P, slot r // P; the buffer takes bytes
[offset, offset + partition_bytes) of each partition it spans. Values are kept in the model's own dtype, so every
planned offset and size is scaled by one integer factor (see `scale_factor`): a float32 tensor planned as bf16 takes
4 bytes per element here, and ranges the planner kept apart stay apart.

Poison: two patterns, one per run of the functional simulator (`POISONS`). Bytes nobody wrote hold 0x5F or 0xDF,
alternating every 8 bytes (so a float32 reads as +1.6e19 or -3.2e19, both finite, and a window of a max- or
min-like op holds poison of both signs), and run 1 holds the complement of run 0; Release writes the pattern back.
A shadow byte per scratchpad byte marks what no DMA or compute has written since, so that a bool (which the bytes
cannot poison) reads as the run's bool poison, and an op that chokes on integer poison can say where it came from.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.isa import Buffer, DramTensor


class FunctionalError(ValueError):
    """A program the functional simulator cannot run: an unknown buffer or tensor, a region outside its buffer, a
    dtype that does not fit its planned element size, an op onnxruntime rejects."""


POISON_BYTES = (0x5F, 0xDF)


@dataclass(frozen=True, slots=True)
class Poison:
    """One run's poison: `phase` 0 or 1; the two phases disagree on every poisoned element.

    >>> Poison(0).fill((4,), "float32").tolist()
    [1.609568804685008e+19, -3.22637151627148e+19, 1.609568804685008e+19, -3.22637151627148e+19]
    >>> Poison(1).fill((2,), "int8").tolist(), Poison(0).fill((2,), "bool").tolist()
    ([-33, 95], [True, True])
    """

    phase: int

    def fill(self, shape: Sequence[int], dtype: np.dtype | str) -> np.ndarray:
        """An array of poison: element i holds pattern (i + phase) % 2; bools are all `phase == 0`."""
        dtype = np.dtype(dtype)
        if dtype.kind == "b":
            return np.full(tuple(shape), self.phase == 0, dtype=dtype)
        if dtype.kind not in "fiu":
            raise FunctionalError(f"dtype {dtype} has no poison; supported kinds are float, int, uint and bool")
        values = np.array([poison_value(dtype, k) for k in (self.phase, 1 - self.phase)], dtype=dtype)
        result = np.empty(tuple(shape), dtype=dtype)
        flat = result.reshape(-1)  # two strided stores: np.resize builds its result by concatenation, 30x slower
        flat[0::2], flat[1::2] = values
        return result

    def filler(self, dtype: np.dtype | str) -> np.ndarray:
        """What stands for the part of an input a tile did not load, as a 1-element array: poison for floats; for
        integers 0 (phase 0) or -1 / 1 (phase 1), valid indices either way, since a poisoned index outside the tile
        would make Gather raise rather than propagate; for bools, `phase == 0`."""
        dtype = np.dtype(dtype)
        if dtype.kind == "f":
            return self.fill((2,), dtype)
        if dtype.kind == "b":
            return np.array([self.phase == 0], dtype=dtype)
        return np.array([0 if self.phase == 0 else (-1 if dtype.kind == "i" else 1)], dtype=dtype)

    def bytes_for(self, partitions: int, width_bytes: int) -> np.ndarray:
        """The scratchpad's poison bytes: 8-byte blocks alternating between the two patterns."""
        blocks = (np.arange(width_bytes) // 8 + np.arange(partitions)[:, None] + self.phase) % 2
        return np.where(blocks == 0, POISON_BYTES[0], POISON_BYTES[1]).astype(np.uint8)


POISONS = (Poison(0), Poison(1))


def poison_value(dtype: np.dtype | str, pattern: int = 0) -> float | int | bool:
    """Poison `pattern` (0 or 1) as one value of `dtype`: its bytes all 0x5F or all 0xDF; True / False for bool.

    >>> poison_value("int32"), poison_value("uint8", 1), poison_value("float16")
    (1600085855, 223, 471.75)
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return pattern == 0
    if dtype.kind not in "fiu":
        raise FunctionalError(f"dtype {dtype} has no poison value; supported kinds are float, int, uint and bool")
    value = np.frombuffer(bytes([POISON_BYTES[pattern]] * dtype.itemsize), dtype=dtype)[0]
    return float(value) if dtype.kind == "f" else int(value)


def is_poison(values: np.ndarray) -> np.ndarray:
    """Where `values` equal either poison pattern (bools: never, both values being data too)."""
    values = np.asarray(values)
    if values.dtype.kind not in "fiu":
        return np.zeros(values.shape, dtype=bool)
    return (values == poison_value(values.dtype, 0)) | (values == poison_value(values.dtype, 1))


def poisoned(shape: Sequence[int], dtype: np.dtype | str, poison: Poison = POISONS[0]) -> np.ndarray:
    return poison.fill(shape, dtype)


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
    [[1600085855]]
    """

    def __init__(self, partitions: int, partition_bytes: int, buffers: Iterable[Buffer], scale: int,
                 poison: Poison = POISONS[0]) -> None:
        self.partitions, self.scale, self.poison = partitions, scale, poison
        self.buffers = {buffer.name: buffer for buffer in buffers}
        for buffer in self.buffers.values():
            end = buffer.offset + buffer.partition_bytes(partitions)
            if end > partition_bytes:
                raise FunctionalError(f"buffer {buffer.name}: bytes [{buffer.offset}, {end}) of each partition "
                                      f"overrun the partition's {partition_bytes} bytes")
        # Only as many bytes as some buffer reaches: a 24 MiB machine running a tiny program stays cheap.
        used = max((b.offset + b.partition_bytes(partitions) for b in self.buffers.values()), default=0)
        self.width_bytes = used * scale
        self.pattern = poison.bytes_for(partitions, self.width_bytes)
        self.data = self.pattern.copy()
        self.shadow = np.full_like(self.data, 0xFF)
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
        if dtype.kind == "b":  # the poison bytes are no bool; every other kind reads them as they are
            values[self._view(buffer, dtype, shadow=True)[index] != 0] = self.poison.phase == 0
        layout = _layout(buffer)
        return values.transpose([layout.index(axis) for axis in range(len(layout))]).reshape(tuple(shape))

    def release(self, buffer: Buffer) -> None:
        start = buffer.offset * self.scale
        stop = start + buffer.partition_bytes(self.partitions) * self.scale
        used = buffer.partitions_used(self.partitions)
        self.data[:used, start:stop] = self.pattern[:used, start:stop]
        self.shadow[:used, start:stop] = 0xFF

    def poison_region(self, buffer: Buffer, at: Sequence[int], shape: Sequence[int]) -> None:
        """Put poison back into a region, as if a write had landed there before anything was read (see
        `simulator.functional`'s adversarial run)."""
        index = self._index(buffer, at, shape)
        self.byte_view(buffer, self.data)[index] = self.byte_view(buffer, self.pattern)[index]
        self.byte_view(buffer, self.shadow)[index] = 0xFF

    def poisoned_count(self, buffer: Buffer, at: Sequence[int], shape: Sequence[int], dtype: np.dtype | str) -> int:
        """Elements of the region that no DMA or compute wrote since the buffer was last released."""
        index = self._index(buffer, at, shape)
        return int((self._view(buffer, np.dtype(dtype), shadow=True)[index] != 0).sum())

    def region_index(self, buffer: Buffer, at: Sequence[int], shape: Sequence[int]) -> tuple[np.ndarray | slice, ...]:
        """The index of a region into `byte_view(buffer, ...)`: (partitions, slots, *other layout axes)."""
        return self._index(buffer, at, shape)

    def cells(self, buffer: Buffer, at: Sequence[int], shape: Sequence[int], array: np.ndarray) -> np.ndarray:
        """The cells of `array` (one per scratchpad byte, shape (partitions, width_bytes)) under the region."""
        return self.byte_view(buffer, array)[self._index(buffer, at, shape)]

    def byte_view(self, buffer: Buffer, array: np.ndarray) -> np.ndarray:
        """`array` (one cell per scratchpad byte) seen as the buffer: (partition, slot, *other layout axes, byte)."""
        dims, layout = _dims(buffer), _layout(buffer)
        element_bytes = buffer.elem_bytes * self.scale
        inner = tuple(dims[axis] for axis in layout[1:])
        inner_strides = tuple(element_bytes * math.prod(inner[k + 1:]) for k in range(len(inner)))
        slots = -(-dims[layout[0]] // self.partitions)
        cell = array.itemsize
        return np.lib.stride_tricks.as_strided(
            array[:, buffer.offset * self.scale:], (self.partitions, slots, *inner, element_bytes),
            (array.strides[0], element_bytes * math.prod(inner) * cell, *(s * cell for s in inner_strides), cell))

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
