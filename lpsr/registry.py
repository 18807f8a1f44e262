"""Find methods by name: modules of method packages, plug-ins by entry point, variants
from YAML files with ``base:`` in ``configs/methods``.

Method packages: every module of a package registered under the entry-point group
``lpsr.method_packages`` that defines a :class:`Method` subclass with a non-empty ``name``
(this distribution registers ``methods``, the built-ins; ``lpsr`` never imports it by
name).  Third-party packages register ``name = "pkg.module:Class"`` under the entry-point
group ``lpsr.methods``; a plug-in may not shadow a built-in.
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from lpsr.config import configs_dir, deep_merge, method_yamls, strip_meta
from lpsr.method import Method, MethodError

ENTRY_POINT_GROUP = "lpsr.methods"
#: packages whose every module may define methods (``methods`` for this distribution)
PACKAGE_GROUP = "lpsr.method_packages"
DISTRIBUTION = "lpsr-bench"


class UnknownMethodError(MethodError):
    pass


@dataclass(frozen=True)
class Entry:
    """A method the harness can build: its class, where it came from, its default settings."""

    name: str
    cls: type[Method]
    origin: str
    defaults: dict[str, Any] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    in_all: bool = True
    base: str = ""

    def create(self, scale: int, overrides: dict[str, Any] | None = None) -> Method:
        """The method with its YAML settings (+ ``overrides``), validated against its
        settings model: a wrong key is a ConfigError naming the YAML file and the key path."""
        settings = {k: v for k, v in self.defaults.items() if k != "train"}
        where = self.settings_file()
        if overrides:
            self.cls.parse_settings(settings, where)  # a mistake in the YAML names the YAML
            where = f"overrides of {where}"
        merged = deep_merge(settings, overrides or {})
        try:
            method = self.cls(scale, merged, where=where)
        except TypeError as exc:  # a plug-in whose __init__ predates ``where``
            if "where" not in str(exc):
                raise
            method = self.cls(scale, merged)
        method.name = self.name  # variants share a class but keep their own name
        return method

    def settings_file(self) -> str:
        """The YAML this method's settings come from (for error messages)."""
        path = configs_dir() / "methods" / f"{self.name}.yaml"
        try:
            shown = str(path.resolve().relative_to(Path.cwd().resolve()))
        except ValueError:
            shown = str(path)
        return shown + (f" (variant of {self.base})" if self.base else "")

    @property
    def train_overrides(self) -> dict[str, Any]:
        """The YAML's ``train:`` block: overrides of the profile's training settings."""
        return dict(self.defaults.get("train") or {})


def _package_classes() -> dict[str, tuple[type[Method], str]]:
    """Method classes of every module in the packages registered under the entry-point
    group ``lpsr.method_packages`` (this distribution registers its ``methods`` package
    there), so ``lpsr`` itself never imports a particular method package, and a new module
    that ``bench add-method`` writes into one is found without reinstalling."""
    out: dict[str, tuple[type[Method], str]] = {}
    for ep in entry_points(group=PACKAGE_GROUP):
        dist = getattr(ep, "dist", None)
        origin = "built-in" if dist is not None and dist.name == DISTRIBUTION else f"plugin:{dist.name if dist else ep.value}"
        try:
            package = importlib.import_module(ep.value)
        except Exception as exc:
            raise MethodError(f"entry point '{ep.name}' ({ep.value}) in group {PACKAGE_GROUP} failed to import: {exc}") from None
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            try:
                module = importlib.import_module(f"{ep.value}.{info.name}")
            except Exception as exc:  # a user's new method with a mistake: name it, no traceback
                where = getattr(exc, "filename", None) or f"{ep.value.replace('.', '/')}/{info.name}.py"
                line = f" line {exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
                raise MethodError(f"{where}{line}: method module {ep.value}.{info.name} failed to import: {type(exc).__name__}: {exc}") from None
            for obj in vars(module).values():
                if isinstance(obj, type) and issubclass(obj, Method) and obj.name and obj.__module__ == module.__name__:
                    out.setdefault(obj.name, (obj, origin))
    return out


def _plugin_classes(taken: set[str]) -> dict[str, tuple[type[Method], str]]:
    out: dict[str, tuple[type[Method], str]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # name the broken plug-in instead of a bare traceback
            raise MethodError(f"entry point '{ep.name}' ({ep.value}) in group {ENTRY_POINT_GROUP} failed to import: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise MethodError(f"entry point '{ep.name}' ({ep.value}) is not an lpsr.method.Method subclass")
        name = cls.name or ep.name
        if name in taken:
            continue
        dist = getattr(ep, "dist", None)
        out[name] = (cls, f"plugin:{dist.name if dist else ep.value}")
    return out


@lru_cache(maxsize=1)
def discover() -> dict[str, Entry]:
    yamls = method_yamls()
    classes = _package_classes()
    classes.update(_plugin_classes(set(classes)))
    table: dict[str, Entry] = {}
    for name, (cls, origin) in classes.items():
        raw = yamls.get(name, {})
        table[name] = Entry(
            name=name,
            cls=cls,
            origin=origin,
            defaults=strip_meta(raw),
            groups=tuple(raw.get("groups", cls.groups)),
            in_all=bool(raw.get("in_all", cls.in_all)),
        )
    for name, raw in yamls.items():
        base = raw.get("base")
        if not base or name in table:
            continue
        if base not in table:
            raise MethodError(f"configs/methods/{name}.yaml: base method '{base}' is not registered")
        parent = table[base]
        table[name] = Entry(
            name=name,
            cls=parent.cls,
            origin=f"variant of {base}",
            defaults=deep_merge(parent.defaults, strip_meta(raw)),
            groups=tuple(raw.get("groups", ())),
            in_all=bool(raw.get("in_all", False)),
            base=base,
        )
    return table


def _order(name: str) -> tuple[int, str]:
    entry = discover()[name]
    return (entry.cls.order, name)


def names() -> list[str]:
    return sorted(discover(), key=_order)


def get(name: str) -> Entry:
    table = discover()
    if name not in table:
        close = difflib.get_close_matches(name, list(table) + list(groups()), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(names())}"
        raise UnknownMethodError(f"unknown method '{name}'{hint}")
    return table[name]


def groups() -> dict[str, list[str]]:
    """Named groups of methods: ``all`` plus every group a method or variant declares."""
    out: dict[str, list[str]] = {"all": []}
    for name in names():
        entry = discover()[name]
        if entry.in_all:
            out["all"].append(name)
        for g in entry.groups:
            out.setdefault(g, []).append(name)
    return out


def resolve(spec: str) -> list[str]:
    """Turn ``--methods`` (``all``, a group, or ``a,b,c``) into an ordered, unique list."""
    table = groups()
    chosen: list[str] = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        members = table.get(part)
        if members is None:
            get(part)  # raises with a suggestion
            members = [part]
        for m in members:
            if m not in chosen:
                chosen.append(m)
    if not chosen:
        raise UnknownMethodError("--methods is empty; give 'all', a group, or comma-separated names")
    return chosen
