"""Checking values against a reference: one tensor box at a time, floats within the dtype's tolerance.

The functional simulator checks every Compute tile, every stored box and every model output with a `Checker`; a
difference raises `FunctionalMismatch` with one line saying where and how far off.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from simulator.isa import Box, DramTensor
from simulator.scratchpad import FunctionalError, is_poison

_TOLERANCES = {"float16": (1e-2, 1e-3), "float32": (1e-4, 1e-5), "float64": (1e-4, 1e-5)}  # (rtol, atol)


class FunctionalMismatch(AssertionError):
    """A tile, a stored box or an output that differs from the reference, or an op fed poison."""


def compare_outputs(got: np.ndarray, expected: np.ndarray, dtype: np.dtype | str, *, rtol: float | None = None,
                    atol: float | np.ndarray | None = None) -> str | None:
    """None when `got` matches `expected` (floats within the dtype's tolerance, a NaN never, even where NaN is
    expected: the reference inputs keep every op inside its domain; everything else exactly), else one line saying
    how far off it is.

    >>> compare_outputs(np.array([1.0, 2.0], np.float32), np.array([1.0, 2.0]), "float32") is None
    True
    >>> compare_outputs(np.array([np.nan, 2.5, 2.0]), np.array([1.0, 2.0, 2.0]), "float32")
    '2 of 3 elements differ (1 NaN); max abs error 0.5 at [1]'
    """
    dtype = np.dtype(dtype)
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        return f"shape {list(got.shape)} where {list(expected.shape)} was expected"
    got64, expected64 = got.astype(np.float64), expected.astype(np.float64)
    if dtype.kind == "f":
        default_rtol, default_atol = _TOLERANCES.get(dtype.name, _TOLERANCES["float32"])
        bad = ~np.isclose(got64, expected64, rtol=default_rtol if rtol is None else rtol,
                          atol=default_atol if atol is None else atol, equal_nan=False)
    else:
        bad = got != expected
    if not bad.any():
        return None
    details = [f"{count} {what}" for count, what in (
        (int((bad & is_poison(got)).sum()), "poison"), (int(np.isnan(got64).sum()), "NaN"),
        (int(np.isnan(expected64).sum()), "NaN in the reference itself")) if count]
    parts = [f"{int(bad.sum())} of {got.size} elements differ" + (f" ({', '.join(details)})" if details else "")]
    finite = bad & np.isfinite(got64) & np.isfinite(expected64)
    error = np.where(finite, np.abs(got64 - expected64), -1.0)
    if error.max() >= 0:
        worst = [int(i) for i in np.unravel_index(int(error.argmax()), error.shape)]
        parts.append(f"max abs error {error.max():.3g} at {worst}")
    return "; ".join(parts)


class Checker:
    """Expected values per tensor; `check` compares one box of one tensor."""

    def __init__(self, tensors: Mapping[str, DramTensor], reference: Mapping[str, np.ndarray] | None,
                 rtol: float | None, atol: float | None, error_bounds: Mapping[str, np.ndarray]) -> None:
        self.reference: dict[str, np.ndarray] = {}
        for name, values in (reference or {}).items():
            if name in tensors and np.size(values) != int(np.prod(tensors[name].shape)):
                raise FunctionalError(f"reference {name} has shape {list(np.shape(values))}; the program's tensor "
                                      f"is {list(tensors[name].shape)}")
            # the same elements in the same order: a scalar reference for a [1] tensor is the same values
            self.reference[name] = np.asarray(values).reshape(tensors[name].shape) if name in tensors \
                else np.asarray(values)
        self.rtol, self.atol, self.error_bounds = rtol, atol, error_bounds

    def check(self, where: str, tensor: DramTensor, box: Box, got: np.ndarray) -> None:
        if tensor.name not in self.reference:
            return
        expected = self.reference[tensor.name][_slices(box)]
        atol: float | np.ndarray | None = self.atol
        if tensor.name in self.error_bounds and np.dtype(tensor.dtype).kind == "f":
            base = _TOLERANCES.get(np.dtype(tensor.dtype).name, _TOLERANCES["float32"])[1] if atol is None else atol
            atol = base + np.broadcast_to(self.error_bounds[tensor.name], tensor.shape)[_slices(box)]
        problem = compare_outputs(got, expected, tensor.dtype, rtol=self.rtol, atol=atol)
        if problem:
            raise FunctionalMismatch(f"{where} -> {tensor.name}{_format(box)}: {problem}")


def _slices(box: Box) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in zip(box.start, box.stop, strict=True))


def _format(box: Box) -> str:
    return "[" + ", ".join(f"{a}:{b}" for a, b in zip(box.start, box.stop, strict=True)) + "]"
