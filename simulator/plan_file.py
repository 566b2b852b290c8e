"""The plan file: a Program to and from plain JSON values (the schema version is added by `Program.to_json`).

Every dataclass becomes an object of its fields; operands, params, unread inputs and instructions carry a "kind" so
that they read back to the same class.
"""

from __future__ import annotations

from typing import Any

from simulator.isa import (
    Box,
    Buffer,
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

_KINDS = {"load": DmaLoad, "store": DmaStore, "gather": DmaGather, "compute": Compute, "release": Release}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}


def encode_program(program: Program) -> dict[str, Any]:
    encoded: dict[str, Any] = _encode(program)
    return encoded


def _encode(value: Any) -> Any:
    if isinstance(value, Box):
        return {"start": list(value.start), "stop": list(value.stop)}
    if isinstance(value, (Operand, Param, Unread)):
        return {"kind": type(value).__name__.lower(), **{k: _encode(getattr(value, k)) for k in value.__slots__}}
    if isinstance(value, (DmaLoad, DmaStore, DmaGather, Compute, Release)):
        return {"kind": _KIND_OF[type(value)], **{k: _encode(getattr(value, k)) for k in value.__slots__}}
    if hasattr(value, "__dataclass_fields__"):
        return {k: _encode(getattr(value, k)) for k in value.__slots__}
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    return value


def _tuple(value: Any) -> Any:
    return tuple(_tuple(item) for item in value) if isinstance(value, list) else value


def _box(value: dict[str, Any]) -> Box:
    return Box(tuple(value["start"]), tuple(value["stop"]))


def _slot(value: dict[str, Any] | None) -> Operand | Param | Unread | None:
    if value is None:
        return None
    if value["kind"] == "param":
        return Param(tuple(value["values"]), tuple(value["shape"]), value["dtype"])
    if value["kind"] == "unread":
        return Unread(value["tensor"], tuple(value["view"]))
    return Operand(value["tensor"], _box(value["box"]), value["buffer"], tuple(value["at"]), tuple(value["view"]))


def _instruction(value: dict[str, Any]) -> Instruction:
    kind, deps = value["kind"], tuple(value["deps"])
    if kind == "load":
        return DmaLoad(value["id"], deps, value["queue"], value["tensor"], _box(value["box"]), value["buffer"],
                       tuple(value["at"]), value["op"])
    if kind == "store":
        return DmaStore(value["id"], deps, value["queue"], value["buffer"], tuple(value["at"]), value["tensor"],
                        _box(value["box"]), value["op"])
    if kind == "gather":  # indirect DMA: {"kind": "gather", "table", "axis", "window", "indices", "output", ...}
        indices, output = _slot(value["indices"]), _slot(value["output"])
        if not isinstance(indices, Operand) or not isinstance(output, Operand):
            raise ValueError(f"instruction {value['id']}: indices and output must be operands")
        return DmaGather(value["id"], deps, value["queue"], value["table"], value["axis"], _box(value["window"]),
                         indices, output, value["op"])
    if kind == "release":
        return Release(value["id"], deps, value["buffer"])
    if kind == "compute":
        output = _slot(value["output"])
        if not isinstance(output, Operand):
            raise ValueError(f"instruction {value['id']}: output must be an operand")
        return Compute(value["id"], deps, value["engine"], value["node"], value["op_type"],
                       tuple((key, _tuple(item)) for key, item in value["attrs"]),
                       tuple(_slot(slot) for slot in value["inputs"]), output, value["output_index"], value["macs"],
                       value["elem_ops"], tuple(value["mnk"]))
    raise ValueError(f"unknown instruction kind {kind!r}")


def decode_program(document: dict[str, Any]) -> Program:
    tensors = tuple(DramTensor(t["name"], tuple(t["shape"]), t["dtype"], t["elem_bytes"], t["role"])
                    for t in document["tensors"])
    buffers = tuple(Buffer(b["name"], b["offset"], tuple(b["shape"]), tuple(b["layout"]), b["elem_bytes"])
                    for b in document["buffers"])
    instructions = tuple(_instruction(i) for i in document["instructions"])
    return Program(document["model"], document["strategy"], document["machine"], tensors, buffers, instructions,
                   tuple(document["outputs"]), document["dtype"], document["opset"], document["compulsory_bytes"])
