"""The plan file: its published JSON Schema, and malformed files refused with one line naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from planner.cli import main
from simulator.plan_file import ProgramError, program_from_json, program_to_json, schema
from tests.simulator import programs


def test_the_schema_is_valid_and_accepts_every_hand_built_program() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    for build in programs.HAND_BUILT.values():
        program = build()
        document = json.loads(program_to_json(program))
        jsonschema.validate(document, schema())
        assert program_from_json(program_to_json(program)) == program


def test_the_schema_ships_next_to_the_isa() -> None:
    import simulator.isa

    assert (Path(simulator.isa.__file__).parent / "plan.schema.json").is_file()


def _plan() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(program_to_json(programs.HAND_BUILT["relu_double_buffered"]()))
    return loaded


def _set(document: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    target: Any = document
    for part in path[:-1]:
        target = target[part]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


def _first(kind: str) -> int:
    return next(n for n, i in enumerate(_plan()["instructions"]) if i["kind"] == kind)


MALFORMED = [
    (("instructions", _first("load"), "queue"), "0", f"instructions[{_first('load')}].queue: '0' is not of type"),
    (("instructions", _first("load"), "deps"), [True], f"instructions[{_first('load')}].deps[0]: True is not of type"),
    (("instructions", _first("compute"), "engine"), "gpu", f"instructions[{_first('compute')}].engine: 'gpu' is not"),
    (("instructions", _first("compute"), "output", "box", "start"), [0.5, 0],
     f"instructions[{_first('compute')}].output.box.start[0]: 0.5 is not of type 'integer'"),
    (("instructions", 0, "kind"), "jump", "instructions[0].kind: 'jump' is not one of"),
    (("buffers", 0, "offset"), -4, "buffers[0].offset: -4 is less than the minimum of 0"),
    (("tensors", 0, "role"), "weights", "tensors[0].role: 'weights' is not one of"),
    (("tensors", 0, "shape"), KeyError, "tensors[0]: 'shape' is a required property"),
    (("opset",), "17", "opset: '17' is not of type 'integer'"),
    (("instructions", 1, "deps"), [5], "instructions: instruction 1 waits for (5,): deps must come earlier"),
]


@pytest.mark.parametrize(("path", "value", "message"), MALFORMED, ids=[".".join(map(str, m[0])) for m in MALFORMED])
def test_a_malformed_field_is_one_line_naming_it_and_status_2(path, value, message, tmp_path, capsys) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(_set(_plan(), path, value)))
    with pytest.raises(ProgramError, match="^" + _escape(message)):
        program_from_json(plan.read_text())
    assert main(["simulate", str(plan), "--machine", "edge-npu"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"scratchplan: {plan}: {message}") or f"{plan}: {message}" in err


def _escape(text: str) -> str:
    import re

    return re.escape(text)
