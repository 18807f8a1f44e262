"""What every typed settings model shares (profiles, training settings, method settings):
the lenient float type and the one-line error for a wrong key or value.

One formatter for all three, so a misspelt key reads the same in a profile, a ``train:``
block and a method YAML::

    {where}: {key.path}: unknown key 'widht' (did you mean 'width'?); known: ...
    {where}: {key.path}: expected an integer, got 4.7

pydantic's own messages are multi-line and name its internals; none of pydantic's helpers
produces this form, so it is written here once.
"""
from __future__ import annotations

import difflib
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ValidationError

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _number(value: Any) -> Any:
    """Floats accept ints and plain-number strings (PyYAML reads ``1e-4`` as a string),
    never booleans."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    if isinstance(value, int):
        return float(value)
    return value


#: a float setting that also takes ``1e-4`` written in YAML (a string there) and integers
Float = Annotated[float, BeforeValidator(_number)]

_WORDS = {
    "int_type": "expected an integer",
    "int_from_float": "expected an integer",
    "int_parsing": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "missing": "required",
}
_BOUNDS = {"greater_than_equal": ">= {ge}", "greater_than": "> {gt}", "less_than_equal": "<= {le}", "less_than": "< {lt}"}


def shown_key(key: Any) -> str:
    """A key as it can be printed on one line (repr for anything odd, e.g. a newline)."""
    text = str(key)
    return text if text and text.isprintable() and text.strip() == text else repr(text)


def _shown_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    return [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]


def _path_and_model(model: type[BaseModel], loc: tuple) -> tuple[list[str], type[BaseModel] | None]:
    """The user's key path, with pydantic's union-branch tags (``literal['learnable']``,
    ``function-after[...]``, a member model's class name) dropped, and the model that holds
    the path's last key (``None`` inside a plain mapping)."""
    path: list[str] = []
    current: type[BaseModel] | None = model
    members: list[type[BaseModel]] = []
    for part in loc:
        if isinstance(part, str) and (("[" in part and part.endswith("]")) or part in {m.__name__ for m in members}):
            current = next((m for m in members if m.__name__ == part), current)
            continue
        path.append(shown_key(part))
        info = current.model_fields.get(part) if current is not None and isinstance(part, str) else None
        members = _models_in(info.annotation) if info is not None else []
        current = members[0] if members else None
    return path, current


def one_line(exc: ValidationError, where: str, model: type[BaseModel], sep: str = ": ") -> str:
    """The first error of ``exc`` (validating ``model``) as ``{where}{sep}{key.path}: {what}``."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    if len(errors) > 1 and err["type"] == "literal_error" and not isinstance(err.get("input"), str):
        # a union such as ``"learnable" | {pixel, con}`` given a mapping: report the mapping's error
        deeper = [e for e in errors[1:] if len(e["loc"]) > len(err["loc"])]
        err = next((e for e in deeper if e["type"] == "extra_forbidden"), deeper[0] if deeper else err)
    loc = tuple(err["loc"])
    path, _ = _path_and_model(model, loc)
    head = f"{where}{sep}{'.'.join(path) or '(top level)'}"
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        _, parent = _path_and_model(model, loc[:-1])
        known = list(parent.model_fields) if parent is not None else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        name = shown_key(loc[-1])
        name = name if name != str(loc[-1]) else f"'{name}'"  # an odd key is already a repr
        return f"{head}: unknown key {name}{hint}; known: {', '.join(known)}"
    if kind == "value_error":
        return f"{head}: {ctx.get('error', err['msg'])}"
    if kind in _BOUNDS:
        words = "must be " + _BOUNDS[kind].format(**ctx)
    elif kind == "literal_error":
        words = f"expected one of {ctx.get('expected', '?')}"
    else:
        words = _WORDS.get(kind) or str(err["msg"]).removeprefix("Value error, ").rstrip(".")
    if kind == "missing":
        return f"{head}: {words}"
    return f"{head}: {words}, got {_shown_value(err.get('input'))}"
