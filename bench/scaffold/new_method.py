"""``bench add-method NAME``: write ``methods/<module>.py`` and ``configs/methods/NAME.yaml``
from the templates beside this file (or, with ``--package DIR``, a separate installable
package that registers through the ``lpsr.methods`` entry point); the new method then runs
like the built-ins and passes ``bench check-method NAME`` as generated."""
from __future__ import annotations

import keyword
import re
from pathlib import Path

from lpsr.errors import UserError

TEMPLATES = Path(__file__).resolve().parent / "templates"
NAME_RE = re.compile(r"[a-z][a-z0-9_-]*")  # whole name (fullmatch: "$" would let a final newline through)


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def check_name(name: str) -> str:
    """The module name for method ``name``; a one-line error for an unusable or taken name."""
    from lpsr import registry

    if not NAME_RE.fullmatch(name or ""):
        raise UserError(f"method name {name!r}: use lower-case letters, digits, '-' or '_', starting with a letter")
    module = name.replace("-", "_")
    if not module.isidentifier() or keyword.iskeyword(module) or keyword.issoftkeyword(module):
        raise UserError(f"method name {name!r} is a Python keyword; pick another")
    if name in registry.groups():
        raise UserError(f"method name {name!r} is a group name (`--methods {name}` selects a group); pick another")
    if name in registry.discover():
        raise UserError(f"method '{name}' already exists ({_where(registry.get(name))}); pick another name")
    return module


def _where(entry) -> str:
    """Where a method is defined, by file (not "built-in": a scaffolded method lives in the
    same methods/ package as the built-ins)."""
    import inspect

    if entry.origin.startswith("variant of"):
        return entry.origin
    try:
        source = inspect.getsourcefile(entry.cls)
    except TypeError:
        source = None
    return f"class {entry.cls.__name__} in {source}" if source else entry.origin


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[-_]", name) if part)


def _render(template: str, name: str) -> str:
    return (TEMPLATES / template).read_text().replace("{name}", name).replace("{cls}", class_name(name)).replace("{module}", name.replace("-", "_"))


def scaffold(name: str, root: Path | None = None) -> list[Path]:
    module = check_name(name)
    if root:
        py_path = Path(root) / "methods" / f"{module}.py"
        yaml_path = Path(root) / "configs" / "methods" / f"{name}.yaml"
    else:  # where the registry looks: the methods package and the configs folder in use
        from lpsr.config import configs_dir

        py_path = project_root() / "methods" / f"{module}.py"
        yaml_path = configs_dir() / "methods" / f"{name}.yaml"
    for path in (py_path, yaml_path):
        if path.exists():
            raise UserError(f"{path} already exists; remove it or pick another name")
    py_path.parent.mkdir(parents=True, exist_ok=True)
    yaml_path.parent.mkdir(parents=True, exist_ok=True)
    py_path.write_text(_render("method.py.tmpl", name))
    yaml_path.write_text(_render("method.yaml.tmpl", name))
    return [py_path, yaml_path]


def scaffold_package(name: str, package_dir: Path) -> list[Path]:
    """A plug-in package ``lpsr-<name>`` in ``package_dir``: ``pyproject.toml`` registering
    ``<name> = "lpsr_<module>.method:<Class>"`` under ``lpsr.methods``, and the method module."""
    module = check_name(name)
    package_dir = Path(package_dir)
    if package_dir.exists() and any(package_dir.iterdir()):
        raise UserError(f"--package {package_dir}: folder exists and is not empty; pick a new folder")
    pkg = package_dir / f"lpsr_{module}"
    files = {
        package_dir / "pyproject.toml": _render("pyproject.toml.tmpl", name),
        pkg / "__init__.py": f'"""lpsr-bench plug-in: the `{name}` super-resolution method."""\n',
        pkg / "method.py": _render("method.py.tmpl", name),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)
