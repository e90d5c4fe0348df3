"""The scenario reference (docs/scenarios.md), generated from the schema: every section, every field, its type,
default, bounds and description. `planner reference` prints it; a test keeps the committed copy current."""
from __future__ import annotations

import types
import typing
from typing import Literal

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from planner.scenario import Scenario


def _type_name(t) -> str:
    origin = typing.get_origin(t)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(t))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(t))
    if origin in (list, tuple):
        args = typing.get_args(t)
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if origin is typing.Annotated:
        return _type_name(typing.get_args(t)[0])
    if t is type(None):
        return "none"
    if isinstance(t, type) and issubclass(t, BaseModel):
        return f"[{t.__name__}](#{t.__name__.lower()})"
    return getattr(t, "__name__", str(t))


def _bounds(info) -> str:
    sym = {Ge: (">=", "ge"), Gt: (">", "gt"), Le: ("<=", "le"), Lt: ("<", "lt"), MinLen: ("len >=", "min_length"),
           MaxLen: ("len <=", "max_length")}
    out = []
    for m in info.metadata:
        for cls, (s, attr) in sym.items():
            if isinstance(m, cls):
                out.append(f"{s} {getattr(m, attr)}")
    return ", ".join(out)


def _default(info) -> str:
    if info.is_required():
        return "**required**"
    d = info.default
    if d is PydanticUndefined:
        return ""
    if isinstance(d, BaseModel):
        return "(section defaults)"
    return f"`{d!r}`" if d is not None else "none"


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """Every model class reachable from `root`, in the order a reader meets them."""
    seen: list[type[BaseModel]] = []

    def walk(t):
        if isinstance(t, type) and issubclass(t, BaseModel):
            if t in seen:
                return
            seen.append(t)
            for info in t.model_fields.values():
                walk(info.annotation)
            return
        for a in typing.get_args(t):
            walk(a)
    walk(root)
    return seen


def reference() -> str:
    lines = ["# Scenario reference", "",
             "Generated from the schema by `planner reference` (do not edit by hand). A scenario is YAML or JSON; "
             "only `model` and `workload` are required. Engine knobs carry vLLM's names.", ""]
    for m in _models(Scenario):
        lines += [f"## {m.__name__}", "", (m.__doc__ or "").strip().split("\n\n")[0].replace("\n", " "), "",
                  "| field | type | default | bounds | what it is |", "|---|---|---|---|---|"]
        for name, info in m.model_fields.items():
            desc = (info.description or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{name}` | {_type_name(info.annotation)} | {_default(info)} | {_bounds(info)} | {desc} |")
        lines.append("")
    return "\n".join(lines)
