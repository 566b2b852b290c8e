"""The plan file: a Program to and from JSON, checked against its published JSON Schema (`plan.schema.json`).

Every dataclass of `simulator.isa` becomes an object of its fields; operands, params, unread inputs and instructions
carry a "kind" so that they read back to the same class. Reading validates every field's type with `jsonschema`
first, so a malformed file is one ProgramError naming the field by its JSON path, never a TypeError later on.

>>> from simulator.isa import Program
>>> p = Program("m", "baseline", "edge-npu", (), (), ())
>>> program_from_json(program_to_json(p)) == p
True
>>> program_from_json(program_to_json(p).replace('"model":"m"', '"model":3'))
Traceback (most recent call last):
...
simulator.plan_file.ProgramError: model: 3 is not of type 'string'
"""

from __future__ import annotations

import functools
import json
from collections import deque
from importlib import resources
from typing import Any

import jsonschema
from jsonschema import validators

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
from simulator.layout import DramLayout

SCHEMA_VERSION = 1
SCHEMA_FILE = "plan.schema.json"  # next to this module, shipped as package data

_KINDS = {"load": DmaLoad, "store": DmaStore, "gather": DmaGather, "compute": Compute, "release": Release}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}


class ProgramError(ValueError):
    """A plan file that is not a valid program (bad JSON, wrong schema version, a malformed field)."""


def program_to_json(program: Program) -> str:
    """The plan file's text: one line of JSON with the schema version."""
    return json.dumps({"schema_version": SCHEMA_VERSION, **encode_program(program)}, separators=(",", ":"))


def program_from_json(text: str) -> Program:
    """Read a plan file; any malformation is a ProgramError whose message starts with the JSON path at fault."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProgramError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("schema_version") != SCHEMA_VERSION:
        found = document.get("schema_version") if isinstance(document, dict) else None
        raise ProgramError(f"schema_version {found!r}; this simulator reads version {SCHEMA_VERSION}")
    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        raise ProgramError(f"{json_path(error.absolute_path)}: {_shorten(error.message)}")
    return decode_program(document)


def json_path(path: deque[str | int] | list[str | int]) -> str:
    """`instructions[3].queue` for the path ("instructions", 3, "queue"); `(document)` for the empty path.

    >>> json_path(["instructions", 3, "queue"])
    'instructions[3].queue'
    """
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def schema() -> dict[str, Any]:
    """The published JSON Schema of the plan file."""
    loaded: dict[str, Any] = json.loads(resources.files("simulator").joinpath(SCHEMA_FILE).read_text())
    return loaded


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    # JSON Schema counts 1.0 as an integer and Python counts True as one; a plan file's integers are neither.
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    strict = validators.extend(jsonschema.Draft202012Validator, type_checker=checker)
    loaded = schema()
    strict.check_schema(loaded)
    return strict(loaded)


def _shorten(message: str, limit: int = 160) -> str:
    line = " ".join(message.split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


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
    if isinstance(value, DramTensor) and value.layout is None:  # ONNX's layout: the key is left out
        return {k: _encode(getattr(value, k)) for k in value.__slots__ if k != "layout"}
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
    output = _slot(value["output"])
    assert isinstance(output, Operand)  # the schema says so
    return Compute(value["id"], deps, value["engine"], value["node"], value["op_type"],
                   tuple((key, _tuple(item)) for key, item in value["attrs"]),
                   tuple(_slot(slot) for slot in value["inputs"]), output, value["output_index"], value["macs"],
                   value["elem_ops"], tuple(value["mnk"]), tuple(tuple(s) for s in value.get("slices", ())),
                   _accumulated(value.get("accumulate")), bool(value.get("partial", False)))


def _accumulated(value: Any) -> Operand | None:
    if value is None:
        return None
    slot = _slot(value)
    if not isinstance(slot, Operand):
        raise ValueError("accumulate must be an operand")
    return slot


def decode_program(document: dict[str, Any]) -> Program:
    """A Program from a document the schema accepts; what the schema cannot say (a box's start below its stop, ids
    in order) is checked by the dataclasses, and named by path here."""
    parts: dict[str, list[Any]] = {"tensors": [], "buffers": [], "instructions": []}
    for key, decode in (("tensors", _tensor), ("buffers", _buffer), ("instructions", _instruction)):
        for position, value in enumerate(document[key]):
            try:
                parts[key].append(decode(value))
            except ValueError as exc:
                raise ProgramError(f"{key}[{position}]: {exc}") from None
    try:
        return Program(document["model"], document["strategy"], document["machine"], tuple(parts["tensors"]),
                       tuple(parts["buffers"]), tuple(parts["instructions"]), tuple(document["outputs"]),
                       document["dtype"], document["opset"], document["compulsory_bytes"])
    except ValueError as exc:
        raise ProgramError(f"instructions: {exc}") from None


def _tensor(t: dict[str, Any]) -> DramTensor:
    layout = t.get("layout")
    return DramTensor(t["name"], tuple(t["shape"]), t["dtype"], t["elem_bytes"], t["role"],
                      None if layout is None else DramLayout(tuple(layout["order"]), tuple(layout["block"])))


def _buffer(b: dict[str, Any]) -> Buffer:
    return Buffer(b["name"], b["offset"], tuple(b["shape"]), tuple(b["layout"]), b["elem_bytes"])
