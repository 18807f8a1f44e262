"""``bench add-method NAME``: write ``methods/<module>.py`` and ``configs/methods/NAME.yaml``
from the templates beside this file; the new method then runs like the built-ins."""
from __future__ import annotations

import keyword
import re
from pathlib import Path

from lpsr.errors import UserError

TEMPLATES = Path(__file__).resolve().parent / "templates"
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def scaffold(name: str, root: Path | None = None) -> list[Path]:
    from lpsr import registry

    if not NAME_RE.match(name):
        raise UserError(f"method name {name!r}: use lower-case letters, digits, '-' or '_', starting with a letter")
    module = name.replace("-", "_")
    if keyword.iskeyword(module):
        raise UserError(f"method name {name!r} is a Python keyword; pick another")
    root = Path(root) if root else project_root()
    if root == project_root() and name in registry.discover():
        raise UserError(f"method '{name}' already exists ({registry.get(name).origin}); pick another name")
    py_path = root / "methods" / f"{module}.py"
    yaml_path = root / "configs" / "methods" / f"{name}.yaml"
    for path in (py_path, yaml_path):
        if path.exists():
            raise UserError(f"{path} already exists; remove it or pick another name")
    cls = "".join(part.capitalize() for part in re.split(r"[-_]", name))
    py_path.parent.mkdir(parents=True, exist_ok=True)
    yaml_path.parent.mkdir(parents=True, exist_ok=True)
    py_path.write_text((TEMPLATES / "method.py.tmpl").read_text().replace("{name}", name).replace("{cls}", cls))
    yaml_path.write_text((TEMPLATES / "method.yaml.tmpl").read_text().replace("{name}", name))
    return [py_path, yaml_path]
