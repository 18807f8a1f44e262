"""Find methods by name: modules of method packages, plug-ins by entry point, variants
from YAML files with ``base:`` in ``configs/methods``.

Lazy: :func:`discover` builds an *index* of names without importing any method module, and
a method's module is imported the first time that method is asked for (``Entry.cls``).  A
broken method module therefore fails only the commands that need it, with its own
exception chained.  The commands that need every method (``bench list``, ``--methods all``
or a group: :func:`names`, :func:`groups`) import them all.

* Method packages: every module of a package registered under the entry-point group
  ``lpsr.method_packages`` (this distribution registers ``methods``, the built-ins; ``lpsr``
  never imports it by name).  A module's methods are the classes in it with a literal class
  attribute ``name = "..."``, read from its source (``ast``) without importing it.  A module
  whose source cannot be read that way (a syntax error, a computed name) is imported when a
  name the index does not know is asked for, or when every method is.
* Plug-ins: ``name = "pkg.module:Class"`` under the entry-point group ``lpsr.methods``; the
  entry point's name is the method's name; a plug-in may not shadow a built-in.
* Variants: ``configs/methods/NAME.yaml`` with ``base: OTHER``.
"""
from __future__ import annotations

import ast
import difflib
import importlib
import pkgutil
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Callable

from lpsr.config import configs_dir, deep_merge, method_yamls, strip_meta
from lpsr.method import Method, MethodError

ENTRY_POINT_GROUP = "lpsr.methods"
#: packages whose every module may define methods (``methods`` for this distribution)
PACKAGE_GROUP = "lpsr.method_packages"
DISTRIBUTION = "lpsr-bench"


class UnknownMethodError(MethodError):
    pass


@dataclass(frozen=True, init=False)
class Entry:
    """A method the harness can build: where it comes from, its default settings, and (on
    first use of :attr:`cls`) its class.

    Give either ``cls`` (a class at hand) or ``load`` (imports the method's module and
    returns its class; called once, by :attr:`cls`).  ``groups`` / ``in_all``: the YAML's
    (``None``: the class attribute decides)."""

    name: str
    origin: str
    defaults: dict[str, Any]
    yaml_groups: tuple[str, ...] | None
    yaml_in_all: bool | None
    base: str

    def __init__(self, name: str, cls: type[Method] | None = None, origin: str = "", defaults: dict[str, Any] | None = None,
                 groups: tuple[str, ...] | None = None, in_all: bool | None = None, base: str = "",
                 load: Callable[[], type[Method]] | None = None) -> None:
        if (cls is None) == (load is None):
            raise TypeError("Entry: give exactly one of cls and load")
        values = {"name": name, "origin": origin, "defaults": dict(defaults or {}), "yaml_groups": groups,
                  "yaml_in_all": in_all, "base": base, "_load": load or (lambda: cls)}
        for key, value in values.items():
            object.__setattr__(self, key, value)
        if cls is not None:
            self.__dict__["cls"] = cls

    @cached_property
    def cls(self) -> type[Method]:
        return self._load()

    @property
    def groups(self) -> tuple[str, ...]:
        return self.yaml_groups if self.yaml_groups is not None else tuple(self.cls.groups)

    @property
    def in_all(self) -> bool:
        return self.yaml_in_all if self.yaml_in_all is not None else bool(self.cls.in_all)

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


# ------------------------------------------------------------------ loading one method
def _module_file(module: str) -> str:
    return module.replace(".", "/") + ".py"


def _import_module(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except Exception as exc:  # a user's new method with a mistake: name it, keep its traceback
        where = getattr(exc, "filename", None) or _module_file(module)
        line = f" line {exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
        raise MethodError(f"{where}{line}: method module {module} failed to import: {type(exc).__name__}: {exc}") from exc


def _methods_in(module: Any) -> dict[str, type[Method]]:
    return {
        obj.name: obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Method) and obj.name and obj.__module__ == module.__name__
    }


def _class_loader(module: str, name: str) -> Callable[[], type[Method]]:
    def load() -> type[Method]:
        cls = _methods_in(_import_module(module)).get(name)
        if cls is None:
            raise MethodError(f"{_module_file(module)}: declares method '{name}' but defines no Method subclass with name = {name!r}")
        return cls

    return load


def _plugin_loader(ep: EntryPoint) -> Callable[[], type[Method]]:
    def load() -> type[Method]:
        try:
            cls = ep.load()
        except Exception as exc:  # name the broken plug-in; its traceback stays chained
            raise MethodError(f"entry point '{ep.name}' ({ep.value}) in group {ENTRY_POINT_GROUP} failed to import: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise MethodError(f"entry point '{ep.name}' ({ep.value}) is not an lpsr.method.Method subclass")
        return cls

    return load


def _variant_loader(name: str, base: str, table: dict[str, Entry]) -> Callable[[], type[Method]]:
    def load() -> type[Method]:
        if base not in table:
            raise MethodError(f"configs/methods/{name}.yaml: base method '{base}' is not registered")
        return table[base].cls

    return load


# ------------------------------------------------------------------ the index
def declared_names(source: str) -> list[str] | None:
    """Method names a module's source declares (``name = "..."`` in a class body), or
    ``None`` when the source does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    out = []
    for node in tree.body:
        if not (isinstance(node, ast.ClassDef) and node.bases):
            continue
        for stmt in node.body:
            target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else getattr(stmt, "target", None)
            value = getattr(stmt, "value", None)
            if (isinstance(target, ast.Name) and target.id == "name" and isinstance(value, ast.Constant)
                    and isinstance(value.value, str) and value.value):
                out.append(value.value)
    return out


def _origin(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return "built-in" if dist is not None and dist.name == DISTRIBUTION else f"plugin:{dist.name if dist else ep.value}"


def _package_modules() -> tuple[dict[str, tuple[str, str]], list[str]]:
    """(method name -> (module, origin)) read from the sources of every module of the
    packages registered under ``lpsr.method_packages``, and the modules whose names could
    not be read.  Only the packages themselves are imported, so a new module that ``bench
    add-method`` writes into one is found without reinstalling."""
    named: dict[str, tuple[str, str]] = {}
    unread: list[str] = []
    for ep in entry_points(group=PACKAGE_GROUP):
        try:
            package = importlib.import_module(ep.value)
        except Exception as exc:
            raise MethodError(f"entry point '{ep.name}' ({ep.value}) in group {PACKAGE_GROUP} failed to import: {exc}") from exc
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            module = f"{ep.value}.{info.name}"
            path = Path(getattr(info.module_finder, "path", "")) / f"{info.name}.py"
            try:
                names = declared_names(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                names = None
            if not names:
                unread.append(module)
                continue
            for name in names:
                named.setdefault(name, (module, _origin(ep)))
    return named, unread


class _Table(dict):
    """name -> Entry, plus the modules whose method names could not be read (``unread``)."""

    unread: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def discover() -> dict[str, Entry]:
    """Every known method by name (no method module is imported)."""
    yamls = method_yamls()
    named, unread = _package_modules()
    table = _Table()
    table.unread = tuple(unread)

    def add(name: str, origin: str, load: Callable[[], type[Method]]) -> None:
        raw = yamls.get(name, {})
        table[name] = Entry(name=name, origin=origin, load=load, defaults=strip_meta(raw),
                            groups=tuple(raw["groups"]) if "groups" in raw else None,
                            in_all=bool(raw["in_all"]) if "in_all" in raw else None)

    for name, (module, origin) in named.items():
        add(name, origin, _class_loader(module, name))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in table:
            add(ep.name, _origin(ep), _plugin_loader(ep))
    for name, raw in yamls.items():
        base = raw.get("base")
        if not base or name in table:
            continue
        parent = table.get(base)
        table[name] = Entry(
            name=name,
            origin=f"variant of {base}",
            load=_variant_loader(name, base, table),
            defaults=deep_merge(parent.defaults if parent else {}, strip_meta(raw)),
            groups=tuple(raw.get("groups", ())),
            in_all=bool(raw.get("in_all", False)),
            base=base,
        )
    return table


def _read_unread(wanted: str | None = None) -> None:
    """Import the modules whose method names the index could not read, and add their
    methods.  ``wanted``: a name asked for; only the module of that name (``-`` read as
    ``_``) must import, a failure of any other is left to the commands that need it."""
    table = discover()
    for module in getattr(table, "unread", ()):
        if module.rsplit(".", 1)[-1] == (wanted or "").replace("-", "_") or wanted is None:
            found = _methods_in(_import_module(module))
        else:
            try:
                found = _methods_in(importlib.import_module(module))
            except Exception:
                continue
        for name, cls in found.items():
            if name not in table:
                table[name] = Entry(name=name, cls=cls, origin="built-in")


def known() -> list[str]:
    """The names the index knows, alphabetically, without importing any method."""
    return sorted(discover())


def names() -> list[str]:
    """Every method in listing order (``order``, then name): imports every method module."""
    _read_unread()
    table = discover()
    return sorted(table, key=lambda name: (table[name].cls.order, name))


def get(name: str) -> Entry:
    table = discover()
    if name not in table:
        _read_unread(name)
    if name not in table:
        declared = {g for entry in table.values() for g in entry.yaml_groups or ()}  # groups the YAMLs name: no import
        close = difflib.get_close_matches(name, list(table) + ["all", *sorted(declared)], n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known())}"
        raise UnknownMethodError(f"unknown method '{name}'{hint}")
    return table[name]


def groups() -> dict[str, list[str]]:
    """Named groups of methods: ``all`` plus every group a method or variant declares
    (imports every method module)."""
    out: dict[str, list[str]] = {"all": []}
    for name in names():
        entry = discover()[name]
        if entry.in_all:
            out["all"].append(name)
        for g in entry.groups:
            out.setdefault(g, []).append(name)
    return out


def resolve(spec: str) -> list[str]:
    """Turn ``--methods`` (``all``, a group, or ``a,b,c``) into an ordered, unique list.
    Plain names import nothing; a group (``all`` included) imports every method."""
    chosen: list[str] = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        if part in discover():
            members = [part]
        else:
            members = groups().get(part)
            if members is None:
                get(part)  # raises with a suggestion
                members = [part]
        for m in members:
            if m not in chosen:
                chosen.append(m)
    if not chosen:
        raise UnknownMethodError("--methods is empty; give 'all', a group, or comma-separated names")
    return chosen
