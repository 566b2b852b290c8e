"""isl's closed forms as Python: an isl AST expression printed as Python source, and compiled once per shape of
expression. planner.poly.boxes turns a parametric bound of a tile's box into a function of the tile's bounds with
these, so pricing a tile is arithmetic.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import islpy as isl

_AST_OPS = {"add": "+", "sub": "-", "mul": "*", "div": "//", "fdiv_q": "//", "pdiv_q": "//", "pdiv_r": "%",
            "zdiv_r": "%", "eq": "==", "le": "<=", "lt": "<", "ge": ">=", "gt": ">", "and_": "and",
            "and_then": "and", "or_": "or", "or_else": "or"}


def python_source(expr: isl.AstExpr) -> str:
    """`expr` as a Python expression over its ids (isl's integer divisions as floor divisions)."""
    kind = expr.get_type()
    if kind == isl.ast_expr_type.int:
        return str(expr.int_get_val().to_python())
    if kind == isl.ast_expr_type.id:
        return str(expr.id_get_id().get_name())
    op = str(expr.op_get_type()).rsplit(".", 1)[-1]
    args = [python_source(expr.op_get_arg(i)) for i in range(expr.op_get_n_arg())]
    if op in _AST_OPS:
        return f"({f' {_AST_OPS[op]} '.join(args)})"
    if op in ("max", "min"):
        return f"{op}({', '.join(args)})"
    if op == "minus":
        return f"(-{args[0]})"
    if op in ("select", "cond"):
        return f"({args[1]} if {args[0]} else {args[2]})"
    raise ValueError(f"isl expression {expr.to_C_str()} uses {op}, which has no Python form here")


def compile_bound(source: str, arguments: list[str], extra: int) -> Callable[..., int]:
    # Source generated from isl's own expression tree (never from user text). Its integers are lifted out into a
    # closure, so that statements alike but for their sizes (a NAS loop's variants) share one compiled template.
    constants = [int(text) for text in _INTEGER.findall(source)]
    numbered = iter(range(len(constants)))
    source_template = _INTEGER.sub(lambda _: f"_k{next(numbered)}", source)
    return template(source_template, tuple(arguments), len(constants))(*constants, extra)


_INTEGER = re.compile(r"\b\d+\b")


@functools.lru_cache(maxsize=1 << 12)
def template(source: str, arguments: tuple[str, ...], constants: int) -> Callable[..., Callable[..., int]]:
    """A factory taking the `constants` lifted out of `source` (as _k0, _k1, ...) and an `_extra` added to the
    result, and giving the function of `arguments` that `source` computes."""
    names = ", ".join([*(f"_k{index}" for index in range(constants)), "_extra"])
    factory: Callable[..., Callable[..., int]] = eval(
        f"lambda {names}: lambda {', '.join(arguments)}: {source} + _extra", {"max": max, "min": min})
    return factory
