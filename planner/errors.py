"""The one exception the planner raises for bad input.

The CLI turns it into a single line on stderr and exit status 2, so the message must name the file, node, tensor or
flag at fault and say what would fix it.
"""


class PlanError(ValueError):
    """Bad input to the planner: a malformed model, an unsupported op, a shape with no meaning.

    >>> str(PlanError("model.onnx: node 'conv1': stride 0 along axis 2"))
    "model.onnx: node 'conv1': stride 0 along axis 2"
    """


class TileTooLarge(PlanError):
    """The scratchpad cannot hold an op's smallest tile (one output element per tile), with its double buffering.

    `block` is the 1-element block (dim -> (start, stop)) whose buffers need `bytes_per_partition`, or None when no
    single block is too large but the buffers of all 1-element tiles together (each as large as the largest box it
    holds) need that much; `capacity_bytes` is what each partition offers; tensors in `in_place` (kept whole by the
    fused strategy) take no tile buffer. `bytes_per_partition > capacity_bytes`.
    """

    def __init__(self, message: str, *, node: str, op_type: str, block: dict[str, tuple[int, int]] | None,
                 bytes_per_partition: int, capacity_bytes: int, in_place: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        assert bytes_per_partition > capacity_bytes, "a refusal must not claim what fits does not"
        self.node, self.op_type, self.block, self.in_place = node, op_type, block, in_place
        self.bytes_per_partition, self.capacity_bytes = bytes_per_partition, capacity_bytes


class SplitTooLarge(PlanError):
    """Even a split reduction does not fit: one output element over one reduction step, its inputs double-buffered
    beside a partial sum at accumulator precision, needs `bytes_per_partition` > `capacity_bytes`; `block` is that
    step (dim -> (start, stop), the reduction dim included)."""

    def __init__(self, message: str, *, node: str, op_type: str, block: dict[str, tuple[int, int]],
                 bytes_per_partition: int, capacity_bytes: int) -> None:
        super().__init__(message)
        assert bytes_per_partition > capacity_bytes, "a refusal must not claim what fits does not"
        self.node, self.op_type, self.block = node, op_type, block
        self.bytes_per_partition, self.capacity_bytes = bytes_per_partition, capacity_bytes
