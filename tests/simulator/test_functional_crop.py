"""An elementwise or MatMul/Gemm tile run on its crop (`simulator.functional_crop`) gives the whole op's tile, bit for
bit, poison included.

Random shapes (with broadcasting, odd sizes so that vector kernels have tails), random output tiles, and inputs that
hold data in a random box and poison elsewhere, as the functional simulator builds them.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.functional_crop import EXACT, crop
from simulator.isa import Box, Compute, DramTensor, Operand
from simulator.kernels import run_op
from simulator.scratchpad import Poison

BINARY = sorted(EXACT & {"Add", "Sub", "Mul", "Div", "Max", "Min", "PRelu"})
UNARY = sorted(EXACT & {"Relu", "Neg", "Abs", "Sqrt", "Floor", "Ceil", "Sign", "LeakyRelu"})


def _box(rng: np.random.Generator, shape: tuple[int, ...]) -> Box:
    starts = [int(rng.integers(0, n)) for n in shape]
    return Box(tuple(starts), tuple(int(rng.integers(a + 1, n + 1)) for a, n in zip(starts, shape, strict=True)))


def _slices(box: Box) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in zip(box.start, box.stop, strict=True))


def _poisoned(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard-normal data in a random box, poison elsewhere (either phase)."""
    data = rng.standard_normal(shape).astype(np.float32)
    whole = Poison(int(rng.integers(0, 2))).fill(shape, "float32")
    loaded = _box(rng, shape) if shape else Box((), ())
    whole[_slices(loaded)] = data[_slices(loaded)]
    return whole


def _run_both(op: str, attrs: dict, inputs: list[np.ndarray], slices: tuple = ()) -> bool:
    """Run the whole op and the cropped op on a random tile; assert they agree bitwise. True if the crop was smaller.
    `slices` are a split reduction's (input, axis, start, stop), taken after the crop as functional.py does."""
    rng = np.random.default_rng(len(inputs) + sum(a.size for a in inputs))

    def sliced(arrays: list[np.ndarray]) -> list[np.ndarray]:
        arrays = list(arrays)
        for index, axis, start, stop in slices:
            arrays[index] = np.take(arrays[index], np.arange(start, stop), axis=axis)
        return arrays

    whole = run_op(op, tuple(attrs.items()), 17, sliced(inputs), 0, (), "float32")
    tensors = {f"t{i}": DramTensor(f"t{i}", a.shape, "float32", 4, "input") for i, a in enumerate(inputs)}
    tensors["y"] = DramTensor("y", whole.shape, "float32", 4, "output")
    tile = _box(rng, whole.shape)
    operands = tuple(Operand(f"t{i}", Box.whole(a.shape), "b", (0,) * a.ndim) for i, a in enumerate(inputs))
    compute = Compute(0, (), "vector", "n", op, tuple(attrs.items()), operands, Operand("y", tile, "o", tile.start),
                      slices=slices)
    found = crop(compute, tensors)
    assert found is not None
    slots = [a if part is None or not a.ndim else a[_slices(part)] for a, part in zip(inputs, found.crops, strict=True)]
    got = run_op(op, found.attrs, 17, sliced(slots), 0, found.output.shape, "float32")
    got = got[tuple(slice(a - c, b - c) for a, b, c in zip(tile.start, tile.stop, found.output.start, strict=True))]
    expected = whole[_slices(tile)]
    assert got.tobytes() == expected.tobytes(), f"{op} {attrs} {[a.shape for a in inputs]} tile {tile}"
    return sum(s.size for s in slots) < sum(a.size for a in inputs)


def _broadcast_shapes(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    rank = int(rng.integers(1, 5))
    full = tuple(int(n) for n in rng.choice([1, 3, 7, 17, 40], rank))
    other = tuple(1 if rng.random() < 0.3 else n for n in full)
    other = other[int(rng.integers(0, rank)):]  # fewer dims: right-aligned
    return (full, other) if rng.random() < 0.5 else (other, full)


@pytest.mark.parametrize("op", BINARY)
def test_a_cropped_binary_tile_equals_the_whole_ops(op: str) -> None:
    rng = np.random.default_rng(3)
    smaller = 0
    for _ in range(40):
        a, b = _broadcast_shapes(rng)
        if op == "PRelu":  # the slope broadcasts to the input, not the other way
            a = tuple(np.broadcast_shapes(a, b))
        smaller += _run_both(op, {}, [_poisoned(rng, a), _poisoned(rng, b)])
    assert smaller > 10


@pytest.mark.parametrize("op", UNARY)
def test_a_cropped_unary_tile_equals_the_whole_ops(op: str) -> None:
    rng = np.random.default_rng(5)
    attrs = {"alpha": 0.1} if op == "LeakyRelu" else {}
    for _ in range(20):
        shape = tuple(int(n) for n in rng.integers(1, 70, int(rng.integers(1, 4))))
        _run_both(op, attrs, [_poisoned(rng, shape)])


def test_a_cropped_clip_tile_equals_the_whole_ops() -> None:
    rng = np.random.default_rng(6)
    for _ in range(10):
        shape = tuple(int(n) for n in rng.integers(1, 70, 3))
        _run_both("Clip", {}, [_poisoned(rng, shape), np.array(0.0, np.float32), np.array(6.0, np.float32)])


@pytest.mark.parametrize("op", ["MatMul", "Gemm"])
def test_a_cropped_matmul_tile_equals_the_whole_ops(op: str) -> None:
    """Deep and shallow reductions, wide and narrow outputs, one row (MLAS's own kernel) and several."""
    rng = np.random.default_rng(11)
    smaller = 0
    for _ in range(60):
        m = int(rng.choice([1, 2, 5, 33]))
        k = int(rng.choice([3, 64, 200, 700]))
        n = int(rng.choice([1, 2, 9, 50, 130, 300]))
        if op == "Gemm":
            attrs = {"transA": int(rng.integers(0, 2)), "transB": int(rng.integers(0, 2))}
            a = _poisoned(rng, (k, m) if attrs["transA"] else (m, k))
            b = _poisoned(rng, (n, k) if attrs["transB"] else (k, n))
            inputs = [a, b] + ([_poisoned(rng, (n,) if rng.random() < 0.5 else (m, n))] if rng.random() < 0.7 else [])
            axes = (1 - attrs["transA"], attrs["transB"])
        else:
            attrs = {}
            batch = tuple(int(x) for x in rng.choice([1, 2, 3], int(rng.integers(0, 3))))
            inputs = [_poisoned(rng, (*batch, m, k)), _poisoned(rng, (*batch[len(batch) // 2:], k, n))]
            axes = (inputs[0].ndim - 1, inputs[1].ndim - 2)
        slices: tuple = ()
        if rng.random() < 0.4:  # one slice of a split reduction over k
            start = int(rng.integers(0, k))
            stop = int(rng.integers(start + 1, k + 1))
            slices = ((0, axes[0], start, stop), (1, axes[1], start, stop))
        smaller += _run_both(op, attrs, inputs, slices)
    assert smaller > 20


def test_a_flattened_input_is_cropped_through_its_view() -> None:
    """A Gemm reading a whole 4-D tensor through a (1, k) view, as a Flatten fused into it does: the crop is of the
    view, and gives the whole op's tile."""
    rng = np.random.default_rng(13)
    for _ in range(10):
        x = _poisoned(rng, (1, 8, 3, 3))
        w, bias = _poisoned(rng, (40, 72)), _poisoned(rng, (40,))
        attrs = {"transB": 1}
        whole = run_op("Gemm", tuple(attrs.items()), 17, [x.reshape(1, 72), w, bias], 0, (), "float32")
        tensors = {"x": DramTensor("x", x.shape, "float32", 4, "input"),
                   "w": DramTensor("w", w.shape, "float32", 4, "input"),
                   "b": DramTensor("b", bias.shape, "float32", 4, "input"),
                   "y": DramTensor("y", whole.shape, "float32", 4, "output")}
        tile = _box(rng, whole.shape)
        operands = (Operand("x", Box.whole(x.shape), "b", (0,) * 4, view=(1, 72)),
                    Operand("w", Box.whole(w.shape), "b", (0, 0)), Operand("b", Box.whole(bias.shape), "b", (0,)))
        compute = Compute(0, (), "vector", "n", "Gemm", tuple(attrs.items()), operands,
                          Operand("y", tile, "o", tile.start))
        found = crop(compute, tensors)
        assert found is not None
        viewed = [x.reshape(1, 72), w, bias]
        slots = [a if part is None else a[_slices(part)] for a, part in zip(viewed, found.crops, strict=True)]
        got = run_op("Gemm", found.attrs, 17, slots, 0, found.output.shape, "float32")
        got = got[tuple(slice(a - c, b - c) for a, b, c in zip(tile.start, tile.stop, found.output.start,
                                                                strict=True))]
        assert got.tobytes() == whole[_slices(tile)].tobytes()
        assert slots[1].size < w.size or tile.shape[1] >= 39
