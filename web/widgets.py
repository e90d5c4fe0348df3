"""Streamlit widgets generated from the scenario schema: a field's type, default, bounds, options and
description decide its widget, so a knob added to the schema appears in the dashboard without editing it.

`form(container, Model, section, key)` renders every scalar field of a pydantic model and writes the chosen
values back into `section` (a scenario document's dict), leaving out values equal to the field's default so
the downloaded scenario stays as short as the user's own.
"""
from __future__ import annotations

import types
import typing
from typing import Any, Callable, Literal

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

# fields whose options come from a catalog rather than from the schema itself: (model, field) -> options
Choices = dict[tuple[str, str], Callable[[], list[str]]]


def _unwrap(annotation) -> tuple[Any, bool]:
    """(the type inside an Optional, whether None is allowed)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


JS_MAX_INT = (1 << 53) - 1


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in info.metadata:
        if isinstance(m, Ge):
            lo = m.ge
        elif isinstance(m, Gt):
            lo = m.gt
        elif isinstance(m, Le):
            hi = m.le
        elif isinstance(m, Lt):
            hi = m.lt
    return lo, hi


def scalar_fields(model: type[BaseModel]) -> list[str]:
    """The fields a form can edit: numbers, booleans, strings and fixed option sets (nested sections and
    lists are edited in the scenario file)."""
    out = []
    for name, info in model.model_fields.items():
        t, _ = _unwrap(info.annotation)
        if t in (int, float, bool, str) or typing.get_origin(t) is Literal:
            out.append(name)
    return out


def default_of(info: FieldInfo):
    return None if info.default is PydanticUndefined else info.default


def widget(container, model: type[BaseModel], name: str, value, key: str, choices: Choices | None = None):
    """One field's widget, showing `value` (the document's, else the field's default); returns the choice."""
    info = model.model_fields[name]
    t, optional = _unwrap(info.annotation)
    label, helptext = name, info.description or None
    if optional:  # None has a meaning of its own ("the model's context", "no timeout"): say it with a box
        on = container.checkbox(f"{name}: set", value=value is not None, key=key + ":set",
                                help=(helptext or "") + " -- unset: None")
        if not on:
            return None
        if value is None:
            lo, _ = _bounds(info)
            value = 1 if t is int else 1.0 if lo is None else max(float(lo), 1.0)
    opts = (choices or {}).get((model.__name__, name))
    if opts is not None:
        options = opts()
        return container.selectbox(label, options, index=options.index(value) if value in options else 0,
                                   key=key, help=helptext)
    if typing.get_origin(t) is Literal:
        options = list(typing.get_args(t))
        return container.selectbox(label, options, index=options.index(value) if value in options else 0,
                                   key=key, help=helptext)
    if t is bool:
        return container.checkbox(label, value=bool(value), key=key, help=helptext)
    if t is int:
        lo, hi = _bounds(info)
        lo = None if lo is None else int(lo) + (1 if any(isinstance(m, Gt) for m in info.metadata) else 0)
        # the browser's numbers are doubles: a schema bound past 2^53 (a seed's) is the widget's largest safe int
        hi = None if hi is None else min(int(hi), JS_MAX_INT)
        return int(container.number_input(label, value=min(int(value), JS_MAX_INT), step=1, min_value=lo,
                                          max_value=hi, key=key, help=helptext))
    if t is float:
        lo, hi = _bounds(info)
        return float(container.number_input(label, value=float(value),
                                            min_value=None if lo is None else float(lo),
                                            max_value=None if hi is None else float(hi), key=key,
                                            help=helptext, format="%g"))
    return container.text_input(label, value="" if value is None else str(value), key=key, help=helptext) or None


def form(container, model: type[BaseModel], section: dict, key: str, fields: list[str] | None = None,
         choices: Choices | None = None) -> dict:
    """Widgets for `fields` (default: every scalar field) of `model`, writing into `section`."""
    for name in fields if fields is not None else scalar_fields(model):
        info = model.model_fields[name]
        dflt = default_of(info)
        got = widget(container, model, name, section.get(name, dflt), f"{key}.{name}", choices)
        if got == dflt and name not in section:
            continue
        section[name] = got
    return section
