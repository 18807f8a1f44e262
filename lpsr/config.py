"""Configuration files: profiles (``configs/profiles``) and method defaults (``configs/methods``).

A method YAML holds the keyword settings its Method class reads from ``self.config``;
the optional key ``train`` overrides the profile's training settings for that method.
A YAML whose top level has ``base: OTHER`` defines a *variant*: a method named after the
file, built by OTHER's class with OTHER's settings updated by this file's (the ablation
grid is made of these).  Meta keys (``base``, ``groups``, ``in_all``, ``description``)
are not passed to the method.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from lpsr.errors import ConfigError  # noqa: F401  (defined with the other errors; re-exported for its importers)

META_KEYS = ("base", "groups", "in_all", "description")


def configs_dir() -> Path:
    """Where the built-in profiles and method YAMLs are.

    ``$LPSR_CONFIGS`` when set; else ``lpsr/_configs`` inside an installed wheel (the
    repository's ``configs/`` folder ships there as package data, see ``setup.py``); else
    the ``configs/`` folder of a source checkout (editable install).
    """
    env = os.environ.get("LPSR_CONFIGS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    packaged = here / "_configs"
    if (packaged / "profiles").is_dir():
        return packaged
    return here.parent / "configs"


class DuplicateKeyError(yaml.YAMLError):
    """A mapping in a YAML file lists the same key twice (PyYAML keeps the last silently)."""

    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(f"key {key!r} appears twice (lines {first} and {second}); keep one")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys in any mapping (merge keys ``<<``
    may still be overridden, as YAML intends)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise DuplicateKeyError(key, seen[key], line)
                    seen[key] = line
                except TypeError:  # unhashable key: SafeLoader's own error follows
                    continue
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=UniqueKeyLoader)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def method_yamls() -> dict[str, dict[str, Any]]:
    """Every ``configs/methods/*.yaml`` by file stem (raw, meta keys included)."""
    folder = configs_dir() / "methods"
    if not folder.is_dir():
        return {}
    return {p.stem: read_yaml(p) for p in sorted(folder.glob("*.yaml"))}


def strip_meta(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in META_KEYS}


def config_hash(obj: Any) -> str:
    """Short, stable hash of a JSON-able object (key order does not matter)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
