"""The part of an op's inputs that one output tile depends on, for elementwise ops and MatMul/Gemm.

`simulator.functional_window` does this for sliding-window ops. The functional simulator otherwise runs the whole op
on whole inputs (filler outside the operand boxes) once per tile; here it runs on the crop of those whole inputs
that the tile reads, so each tile costs its own work. The crop comes from the same whole input: what the tile did not
load is filler in it too, so poison still flows to the output elements that read it.

Only crops whose results are bit-identical to the whole op's are taken (the tiles are compared with the reference, and
a drift of one ulp per layer grows): elementwise ops whose kernels compute each element by one IEEE operation or a
comparison (`EXACT`), and for MatMul/Gemm the output's rows, batch dims and columns. A dot product does not depend on
how many rows there are; MlasSgemmOperation picks its reduction blocks by the number of output columns, so columns
are cut only where the blocks stay the same; and a single row or column is widened to two, since MLAS runs one row by
another kernel. tests/simulator/test_functional_crop.py checks every crop against the whole op, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping

from simulator.functional_window import Window, window
from simulator.isa import Box, Compute, DramTensor, Operand, Param

# Kernels that compute every element on its own, by a correctly rounded operation: any crop gives the same bits.
EXACT = frozenset({
    "Add", "Sub", "Mul", "Div", "Relu", "Neg", "Abs", "Max", "Min", "Sqrt", "Clip", "Where", "Equal", "Less",
    "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Not", "Xor", "Cast", "Identity", "Floor", "Ceil",
    "Sign", "IsNaN", "IsInf", "LeakyRelu", "PRelu",
})
GEMMS = frozenset({"MatMul", "Gemm"})


def crop(compute: Compute, tensors: Mapping[str, DramTensor]) -> Window | None:
    """The crop that computes `compute`'s output tile alone, or None where the whole op must run."""
    if compute.op_type in EXACT or compute.op_type in GEMMS:
        if (compute.slices and compute.op_type not in GEMMS) or compute.output.view or compute.output_index != 0 or \
                compute.output.tensor not in tensors:
            return None
        partial = frozenset(number for number, slot in enumerate(compute.inputs) if isinstance(slot, Operand) and
                            slot.view and slot.tensor in tensors and slot.box.shape != tensors[slot.tensor].shape)
        if any(isinstance(slot, Operand) and slot.tensor not in tensors for slot in compute.inputs) or \
                (partial and compute.op_type in EXACT):
            return None  # a view of part of a tensor: its box has no place in the view's coordinates
        if compute.op_type in EXACT:
            return _elementwise(compute, tensors)
        found = _gemm(compute, tensors)
        if found is None or not partial:
            return found
        # An operand read through a view of part of its tensor (a split reduction's slice of a flattened input, as
        # in AlexNet's first Gemm) is left whole, which the crop allows only where it would have kept it whole
        crops = list(found.crops)
        for number in partial:
            part = crops[number]
            if part is not None and part.shape != _shape(compute.inputs[number], tensors):  # type: ignore[arg-type]
                return None
            crops[number] = None
        return Window(tuple(crops), found.attrs, found.output)
    return window(compute, tensors)


def _elementwise(compute: Compute, tensors: Mapping[str, DramTensor]) -> Window | None:
    """Each input by the output box, right-aligned as ONNX broadcasts; an axis of extent 1 is broadcast: kept."""
    out = compute.output.box
    rank = len(out.start)
    crops: list[Box | None] = []
    for slot in compute.inputs:
        if isinstance(slot, Param):
            if any(n != 1 for n in slot.shape):
                return None  # a by-value constant cannot be cut here
            crops.append(None)
            continue
        if not isinstance(slot, Operand):  # None (an omitted input); Unread never reaches an elementwise op
            if slot is not None:
                return None
            crops.append(None)
            continue
        shape = _shape(slot, tensors)
        lead = rank - len(shape)
        if lead < 0:
            return None
        crops.append(Box(tuple(0 if n == 1 else out.start[lead + i] for i, n in enumerate(shape)),
                         tuple(1 if n == 1 else out.stop[lead + i] for i, n in enumerate(shape))))
    return Window(tuple(crops), compute.attrs, out)


def _gemm(compute: Compute, tensors: Mapping[str, DramTensor]) -> Window | None:
    """A's rows by the output's rows (and batch dims), B's columns by its columns where MLAS would block the
    reduction the same way (`_same_sums`); Gemm's C by the rule of an elementwise input. The depth is never cut, so a
    split reduction's slices of it apply to the crop as to the whole."""
    out = compute.output.box
    whole = tensors[compute.output.tensor].shape
    slots = compute.inputs
    if len(slots) < 2 or not all(isinstance(slot, Operand) for slot in slots[:2]):
        return None
    a, b = (_shape(slot, tensors) for slot in slots[:2])  # type: ignore[arg-type]
    attrs = dict(compute.attrs)
    rank = len(whole)
    if rank < 2 or len(out.start) != rank or len(a) < 2 or len(b) < 2:
        return None  # 1-D MatMul operands change the output's rank: left whole
    trans_a, trans_b = int(attrs.get("transA", 0)), int(attrs.get("transB", 0))
    depth = a[-2] if trans_a else a[-1]
    # A split reduction's slice (functional.py takes it after the crop) cuts the depth, which no crop cuts.
    reduced = {0: len(a) - 2 if trans_a else len(a) - 1, 1: len(b) - 1 if trans_b else len(b) - 2}
    for index, axis, start, stop in compute.slices:
        if reduced.get(index) != axis % (len(a) if index == 0 else len(b)):
            return None
        depth = stop - start
    rows = _at_least_two(out.start[-2], out.stop[-2], whole[-2])
    cols = _at_least_two(out.start[-1], out.stop[-1], whole[-1])
    one_row = all(n == 1 for n in whole[:-1]) and not trans_a and float(attrs.get("alpha", 1.0)) == 1.0 and \
        float(attrs.get("beta", 1.0)) in (0.0, 1.0)  # MLAS's one-row kernel: each dot product alone, unblocked
    if not one_row and not _same_sums(whole[-1], cols[1] - cols[0], depth):
        cols = (0, whole[-1])
    output = Box((*out.start[:-2], rows[0], cols[0]), (*out.stop[:-2], rows[1], cols[1]))
    if compute.op_type == "Gemm":
        if len(a) != 2 or len(b) != 2 or len(slots) > 3:
            return None
        a_crop = Box((0, rows[0]), (a[0], rows[1])) if trans_a else Box((rows[0], 0), (rows[1], a[1]))
        b_crop = Box((cols[0], 0), (cols[1], b[1])) if trans_b else Box((0, cols[0]), (b[0], cols[1]))
        crops: list[Box | None] = [a_crop, b_crop]
        if len(slots) > 2:
            c = slots[2]
            if isinstance(c, Param):
                if any(n != 1 for n in c.shape):
                    return None
                crops.append(None)
            elif isinstance(c, Operand):
                shape = _shape(c, tensors)
                lead = 2 - len(shape)
                if lead < 0:
                    return None
                crops.append(Box(tuple(0 if n == 1 else output.start[lead + i] for i, n in enumerate(shape)),
                                 tuple(1 if n == 1 else output.stop[lead + i] for i, n in enumerate(shape))))
            elif c is None:
                crops.append(None)
            else:
                return None
        return Window(tuple(crops), compute.attrs, output)
    if len(slots) != 2:
        return None
    batch = rank - 2
    a_crop = Box((*_batch(out.start, a, batch, 0), rows[0], 0), (*_batch(out.stop, a, batch, 1), rows[1], a[-1]))
    b_crop = Box((*_batch(out.start, b, batch, 0), 0, cols[0]), (*_batch(out.stop, b, batch, 1), b[-2], cols[1]))
    return Window((a_crop, b_crop), compute.attrs, output)


def _at_least_two(start: int, stop: int, extent: int) -> tuple[int, int]:
    """The range, widened to two where it is one of several: MLAS runs a single row (or column) by another kernel."""
    if stop - start == 1 and extent > 1:
        return (start, stop + 1) if stop < extent else (start - 1, stop)
    return start, stop


def _stride_k(n: int, k: int) -> int:
    """How many terms of the reduction MLAS's SGEMM sums per block for `n` output columns and depth `k`
    (MlasSgemmOperation: it widens the K block where N is small, and the N block where K is small)."""
    stride_n, stride_k = 128, 128
    if n >= k:
        while stride_k // 2 >= k:
            stride_n, stride_k = stride_n * 2, stride_k // 2
    else:
        while stride_n > 16 and stride_n // 2 >= n:
            stride_n, stride_k = stride_n // 2, stride_k * 2
    return stride_k


def _same_sums(whole: int, cropped: int, depth: int) -> bool:
    """Whether `cropped` of `whole` output columns sum each dot product in the same blocks of the depth."""
    return min(_stride_k(whole, depth), depth) == min(_stride_k(cropped, depth), depth)


def _batch(corner: tuple[int, ...], shape: tuple[int, ...], batch: int, stop: int) -> tuple[int, ...]:
    """An operand's batch dims of the output box `corner`, right-aligned; a broadcast dim (extent 1) is kept whole."""
    dims = shape[:-2]
    lead = batch - len(dims)
    return tuple(stop if n == 1 else corner[lead + i] for i, n in enumerate(dims))


def _shape(slot: Operand, tensors: Mapping[str, DramTensor]) -> tuple[int, ...]:
    """The shape the op sees: the operand's view (of the whole tensor, `crop` makes sure) or the tensor's own."""
    return tuple(slot.view) if slot.view else tuple(tensors[slot.tensor].shape)
