"""Typed access to a method's YAML settings, with one-line errors naming the file and key."""
from __future__ import annotations

from typing import Any, Callable

from lpsr.method import Method, MethodError


def setting(method: Method, key: str, default: Any, cast: Callable[[Any], Any] | None = None) -> Any:
    """``method.config[key]`` (or ``default``) converted by ``cast`` (default: type of ``default``)."""
    raw = method.config.get(key, default)
    cast = cast or type(default)
    try:
        return cast(raw)
    except (TypeError, ValueError):
        raise MethodError(
            f"configs/methods/{method.name}.yaml: {key} must be {getattr(cast, '__name__', cast)}, got {raw!r}"
        ) from None


def int_tuple(value: Any) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(value)
    return tuple(int(v) for v in value)


int_tuple.__name__ = "a list of integers"
