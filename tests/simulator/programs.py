"""Small legal programs built by hand, a generator of tiled elementwise chains, and the machine they run on.

Every program here verifies clean on `small_machine()`; tests mutate them to make illegal ones, and other simulator
tests may run them as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from simulator.isa import Box, Buffer, Compute, DmaLoad, DmaStore, DramTensor, Instruction, Operand, Program, Release
from simulator.machine import (
    DmaConfig,
    DramConfig,
    MachineConfig,
    ScratchpadConfig,
    TensorEngineConfig,
    VectorEngineConfig,
)

FP32 = 4
ALIGNMENT_BYTES = 32


def small_machine(capacity_bytes: int = 4 * 1024, partitions: int = 4, alignment_bytes: int = ALIGNMENT_BYTES,
                  dma_engines: int = 2) -> MachineConfig:
    """A toy machine: 4 partitions of 1 KiB, 32-byte alignment, two DMA queues."""
    return MachineConfig(
        name="toy", clock_hz=1e9,
        scratchpad=ScratchpadConfig(capacity_bytes, partitions, alignment_bytes),
        dram=DramConfig(bandwidth_bytes_per_cycle=16, latency_cycles=100),
        dma=DmaConfig(engines=dma_engines, outstanding=4, burst_bytes=64, descriptor_cycles=8,
                      engine_bandwidth_bytes_per_cycle=16),
        tensor_engine=TensorEngineConfig(rows=4, cols=4, macs_per_cycle={"fp32": 16, "bf16": 32, "fp16": 32,
                                                                         "int8": 64},
                                         fill_cycles=4, drain_cycles=4),
        vector_engine=VectorEngineConfig(elements_per_cycle=8),
    )


def box(*ranges: tuple[int, int]) -> Box:
    """`box((0, 4), (2, 4))` is rows 0..3, columns 2..3."""
    return Box(tuple(lo for lo, _ in ranges), tuple(hi for _, hi in ranges))


def tensor(name: str, shape: tuple[int, ...], role: str) -> DramTensor:
    return DramTensor(name, shape, "float32", FP32, role)


def buffer(name: str, offset: int, shape: tuple[int, ...]) -> Buffer:
    return Buffer(name, offset, shape, tuple(range(len(shape))), FP32)


class ProgramBuilder:
    """Appends instructions with ids in order; each method returns the new instruction's id."""

    def __init__(self, tensors: Sequence[DramTensor], buffers: Sequence[Buffer]) -> None:
        self.tensors = tuple(tensors)
        self.buffers = tuple(buffers)
        self.instructions: list[Instruction] = []

    def _origin(self, buffer_name: str) -> tuple[int, ...]:
        return (0,) * len(next(b for b in self.buffers if b.name == buffer_name).shape)

    def load(self, tensor: str, region: Box, buffer: str, at: tuple[int, ...] | None = None,
             deps: Sequence[int | None] = (), queue: int = 0, op: str = "") -> int:
        at = self._origin(buffer) if at is None else at
        return self._add(DmaLoad(len(self.instructions), _deps(deps), queue, tensor, region, buffer, at, op))

    def store(self, buffer: str, tensor: str, region: Box, at: tuple[int, ...] | None = None,
              deps: Sequence[int | None] = (), queue: int = 1, op: str = "") -> int:
        at = self._origin(buffer) if at is None else at
        return self._add(DmaStore(len(self.instructions), _deps(deps), queue, buffer, at, tensor, region, op))

    def compute(self, node: str, op_type: str, inputs: Sequence[Operand], output: Operand,
                deps: Sequence[int | None] = (), engine: str = "vector", mnk: tuple[int, ...] = ()) -> int:
        macs = math.prod(mnk) if mnk else 0
        elem_ops = 0 if mnk else output.box.numel
        return self._add(Compute(len(self.instructions), _deps(deps), engine, node, op_type, (), tuple(inputs),
                                 output, macs=macs, elem_ops=elem_ops, mnk=mnk))

    def release(self, buffer: str, deps: Sequence[int | None] = ()) -> int:
        return self._add(Release(len(self.instructions), _deps(deps), buffer))

    def _add(self, instruction: Instruction) -> int:
        self.instructions.append(instruction)
        return instruction.id

    def build(self, model: str, outputs: Sequence[str]) -> Program:
        return Program(model, "by-hand", "toy", self.tensors, self.buffers, tuple(self.instructions), tuple(outputs))


def _deps(deps: Sequence[int | None]) -> tuple[int, ...]:
    """Drops the Nones that stand for "no earlier release of this buffer yet"."""
    return tuple(sorted({dep for dep in deps if dep is not None}))


def operand(tensor: str, region: Box, buffer: str, at: tuple[int, ...] | None = None) -> Operand:
    return Operand(tensor, region, buffer, (0,) * len(region.shape) if at is None else at)


def relu_double_buffered() -> Program:
    """Relu over X[4, 8] in four column tiles of [4, 2]: loads on queue 0, stores on queue 1, two input and two output
    buffers, the next tile's load in flight while this tile computes."""
    b = ProgramBuilder([tensor("X", (4, 8), "input"), tensor("Y", (4, 8), "output")],
                       [buffer("in0", 0, (4, 2)), buffer("in1", 32, (4, 2)),
                        buffer("out0", 64, (4, 2)), buffer("out1", 96, (4, 2))])
    tiles = [box((0, 4), (2 * t, 2 * t + 2)) for t in range(4)]
    released: dict[str, int | None] = dict.fromkeys(["in0", "in1", "out0", "out1"])
    loaded = {t: b.load("X", tiles[t], f"in{t}", op="relu") for t in (0, 1)}
    for t, tile in enumerate(tiles):
        source, target = f"in{t % 2}", f"out{t % 2}"
        relu = b.compute("relu", "Relu", [operand("X", tile, source)], operand("Y", tile, target),
                         deps=[loaded[t], released[target]])
        released[source] = b.release(source, deps=[relu])
        stored = b.store(target, "Y", tile, deps=[relu], op="relu")
        released[target] = b.release(target, deps=[stored])
        if t + 2 < len(tiles):  # prefetch two tiles ahead, into the buffer just freed
            loaded[t + 2] = b.load("X", tiles[t + 2], source, deps=[released[source]], op="relu")
    return b.build("relu", ["Y"])


def chain_through_dram() -> Program:
    """Relu then Exp over X[4, 8] in row tiles of [2, 8]; the Relu result T goes to DRAM and comes back. The Exp pass
    has buffers of its own, so its loads are ordered after the Relu pass's stores by those dependencies alone."""
    b = ProgramBuilder([tensor("X", (4, 8), "input"), tensor("T", (4, 8), "intermediate"),
                        tensor("Y", (4, 8), "output")],
                       [buffer("a", 0, (2, 8)), buffer("b", 32, (2, 8)), buffer("c", 64, (2, 8)),
                        buffer("d", 96, (2, 8))])
    released: dict[str, int | None] = dict.fromkeys("abcd")
    stored: dict[int, int] = {}
    for source, op_type, target, (inside, outside) in (("X", "Relu", "T", "ab"), ("T", "Exp", "Y", "cd")):
        for t in range(2):
            tile = box((2 * t, 2 * t + 2), (0, 8))
            loaded = b.load(source, tile, inside, deps=[released[inside], stored.get(t)], op=op_type.lower())
            computed = b.compute(op_type.lower(), op_type, [operand(source, tile, inside)],
                                 operand(target, tile, outside), deps=[loaded, released[outside]])
            released[inside] = b.release(inside, deps=[computed])
            stored[t] = b.store(outside, target, tile, deps=[computed], op=op_type.lower())
            released[outside] = b.release(outside, deps=[stored[t]])
    return b.build("relu-exp", ["Y"])


def matmul_resident_weights() -> Program:
    """Y[4, 6] = A[4, 8] @ W[8, 6] in row tiles of [2, 8], double-buffered; W is loaded once and stays for both
    tiles. The second MatMul does not wait for W's load: the tensor engine runs it after the first, which does."""
    b = ProgramBuilder([tensor("A", (4, 8), "input"), tensor("W", (8, 6), "constant"),
                        tensor("Y", (4, 6), "output")],
                       [buffer("w", 0, (8, 6)), buffer("a0", 64, (2, 8)), buffer("a1", 96, (2, 8)),
                        buffer("y0", 128, (2, 6)), buffer("y1", 160, (2, 6))])
    weights = b.load("W", Box.whole((8, 6)), "w", queue=1, op="matmul")
    matmuls = []
    for t in range(2):
        rows = box((2 * t, 2 * t + 2), (0, 8))
        out = box((2 * t, 2 * t + 2), (0, 6))
        loaded = b.load("A", rows, f"a{t}", op="matmul")
        matmul = b.compute("matmul", "MatMul", [operand("A", rows, f"a{t}"), operand("W", Box.whole((8, 6)), "w")],
                           operand("Y", out, f"y{t}"), engine="tensor", mnk=(2, 6, 8),
                           deps=[loaded, weights if t == 0 else None])
        b.release(f"a{t}", deps=[matmul])
        stored = b.store(f"y{t}", "Y", out, deps=[matmul], op="matmul")
        b.release(f"y{t}", deps=[stored])
        matmuls.append(matmul)
    b.release("w", deps=matmuls[-1:])
    return b.build("matmul", ["Y"])


def halo_two_parts() -> Program:
    """A width-3 Conv over X[1, 1, 10] in two output tiles of 4: each tile's 6 input columns arrive as a body of 4
    and a halo of 2, on different queues, into one buffer; the Conv reads all 6 at once."""
    b = ProgramBuilder([tensor("X", (1, 1, 10), "input"), tensor("K", (1, 1, 3), "constant"),
                        tensor("Y", (1, 1, 8), "output")],
                       [buffer("x", 0, (1, 1, 6)), buffer("k", 32, (1, 1, 3)), buffer("y", 64, (1, 1, 4))])
    kernel = b.load("K", Box.whole((1, 1, 3)), "k", queue=1, op="conv")
    released: dict[str, int | None] = {"x": None, "y": None}
    conv = kernel
    for t in range(2):
        start = 4 * t
        body = b.load("X", box((0, 1), (0, 1), (start, start + 4)), "x", deps=[released["x"]], op="conv")
        halo = b.load("X", box((0, 1), (0, 1), (start + 4, start + 6)), "x", at=(0, 0, 4), deps=[released["x"]],
                      queue=1, op="conv")
        out = box((0, 1), (0, 1), (start, start + 4))
        conv = b.compute("conv", "Conv", [operand("X", box((0, 1), (0, 1), (start, start + 6)), "x"),
                                          operand("K", Box.whole((1, 1, 3)), "k")],
                         operand("Y", out, "y"), deps=[body, halo, kernel, released["y"]])
        released["x"] = b.release("x", deps=[conv])
        stored = b.store("y", "Y", out, deps=[conv], op="conv")
        released["y"] = b.release("y", deps=[stored])
    b.release("k", deps=[conv])
    return b.build("conv", ["Y"])


def buffer_reuse_after_release() -> Program:
    """Relu of X[2, 8], then Exp of Z[2, 12] in a buffer z that takes the bytes of both x and y once they are
    released: z's load waits for both Releases."""
    b = ProgramBuilder([tensor("X", (2, 8), "input"), tensor("Y", (2, 8), "output"),
                        tensor("Z", (2, 12), "input"), tensor("W", (2, 12), "output")],
                       [buffer("x", 0, (2, 8)), buffer("y", 32, (2, 8)), buffer("z", 0, (2, 12)),
                        buffer("w", 64, (2, 12))])
    whole_x, whole_z = Box.whole((2, 8)), Box.whole((2, 12))
    loaded = b.load("X", whole_x, "x", op="relu")
    relu = b.compute("relu", "Relu", [operand("X", whole_x, "x")], operand("Y", whole_x, "y"), deps=[loaded])
    x_free = b.release("x", deps=[relu])
    stored = b.store("y", "Y", whole_x, deps=[relu], op="relu")
    y_free = b.release("y", deps=[stored])
    loaded = b.load("Z", whole_z, "z", deps=[x_free, y_free], op="exp")
    exp = b.compute("exp", "Exp", [operand("Z", whole_z, "z")], operand("W", whole_z, "w"), deps=[loaded])
    b.release("z", deps=[exp])
    stored = b.store("w", "W", whole_z, deps=[exp], op="exp")
    b.release("w", deps=[stored])
    return b.build("relu-exp-reuse", ["Y", "W"])


HAND_BUILT = {
    "relu_double_buffered": relu_double_buffered,
    "chain_through_dram": chain_through_dram,
    "matmul_resident_weights": matmul_resident_weights,
    "halo_two_parts": halo_two_parts,
    "buffer_reuse_after_release": buffer_reuse_after_release,
}


def tiled_chain(rows: int, cols: int, tile_rows: int, ops: Sequence[str], copies: int = 2,
                through_dram: bool = False, engines: Sequence[str] = ()) -> Program:
    """An elementwise chain (e.g. ["Relu", "Exp"]) over X[rows, cols] in row tiles, the last one possibly short.

    `copies` buffers per stage (2 is double buffering: the load `copies - 1` tiles ahead is in flight while a tile
    computes). Fused, every intermediate stays in the scratchpad; `through_dram`, each op is its own pass that stores
    its result and the next pass loads it back. `engines` gives each op's compute engine (default vector).
    """
    names = ["X", *[f"T{k}" for k in range(1, len(ops))], "Y"]
    roles = ["input", *["intermediate"] * (len(ops) - 1), "output"]
    tensors = [tensor(name, (rows, cols), role) for name, role in zip(names, roles, strict=True)]
    stages = 2 if through_dram else len(ops) + 1
    slot_bytes = -(-tile_rows * cols * FP32 // ALIGNMENT_BYTES) * ALIGNMENT_BYTES  # an upper bound of each buffer
    buffers = [buffer(f"s{stage}c{copy}", slot_bytes * (stage * copies + copy), (tile_rows, cols))
               for stage in range(stages) for copy in range(copies)]
    b = ProgramBuilder(tensors, buffers)
    tiles = [box((r, min(r + tile_rows, rows)), (0, cols)) for r in range(0, rows, tile_rows)]
    released: dict[str, int | None] = dict.fromkeys(buf.name for buf in buffers)
    ready: dict[int, int] = {}  # tile -> the store that put it in DRAM, for the next pass's load
    passes = [[k] for k in range(len(ops))] if through_dram else [list(range(len(ops)))]

    def load(source: str, t: int) -> int:
        into = f"s0c{t % copies}"
        return b.load(source, tiles[t], into, deps=[released[into], ready.get(t)], op=source)

    for chain in passes:
        source, target = names[chain[0]], names[chain[-1] + 1]
        loaded = {t: load(source, t) for t in range(min(copies, len(tiles)))}
        for t, tile in enumerate(tiles):
            writer = loaded[t]
            for stage, k in enumerate(chain):
                inside, outside = f"s{stage}c{t % copies}", f"s{stage + 1}c{t % copies}"
                engine = engines[k] if engines else "vector"
                writer = b.compute(f"{ops[k].lower()}{k}", ops[k], [operand(names[k], tile, inside)],
                                   operand(names[k + 1], tile, outside), deps=[writer, released[outside]],
                                   engine=engine)
                released[inside] = b.release(inside, deps=[writer])
            outside = f"s{len(chain)}c{t % copies}"
            ready[t] = b.store(outside, target, tile, deps=[writer], queue=1, op=target)
            released[outside] = b.release(outside, deps=[ready[t]])
            if t + copies < len(tiles):
                loaded[t + copies] = load(source, t + copies)
    return b.build("chain", ["Y"])


def machine_for(program: Program, partitions: int = 4) -> MachineConfig:
    """The small machine, grown to hold the program's buffers."""
    end = max(b.offset + b.partition_bytes(partitions) for b in program.buffers)
    per_partition = max(1024, -(-end // ALIGNMENT_BYTES) * ALIGNMENT_BYTES)
    return small_machine(capacity_bytes=per_partition * partitions, partitions=partitions)
