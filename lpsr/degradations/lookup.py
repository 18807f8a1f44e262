"""``get_degradation(name_or_path)``: a built-in preset from ``configs/degradations/`` by
name, or any preset YAML by path; every mistake is one line naming the preset or file."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from lpsr.config import ConfigError, configs_dir, read_yaml
from lpsr.degradations.degradation import DEFAULT_DEGRADATION, Degradation
from lpsr.degradations.presets import KINDS
from lpsr.settings_model import one_line


def presets_dir() -> Path:
    return configs_dir() / "degradations"


def known_degradations() -> list[str]:
    """The built-in preset names (the YAML stems in ``configs/degradations/``)."""
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))


def _is_path(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text


def _unknown_keys_first(exc: ValidationError) -> ValidationError:
    """The same errors with unknown keys first: a preset has no defaults, so a misspelt key
    also makes its right spelling "required", and the misspelling is the one to name."""
    errors = exc.errors(include_url=False)
    ordered = sorted(errors, key=lambda e: e["type"] != "extra_forbidden")
    if ordered == errors:
        return exc
    details = [{k: e[k] for k in ("type", "loc", "input", "ctx") if k in e} for e in ordered]
    return ValidationError.from_exception_data(exc.title, details)  # type: ignore[arg-type]


def load_preset(path: Path, name: str | None = None) -> Degradation:
    """The preset in ``path`` (named ``name``, default the file's stem)."""
    shown = str(path)
    data = read_yaml(path)
    kind = data.get("kind")
    if kind not in KINDS:
        got = "missing" if kind is None else f"unknown kind {kind!r}"
        raise ConfigError(f"{shown}: kind: {got}; known kinds: {', '.join(KINDS)}")
    model = KINDS[kind]
    try:
        preset = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(one_line(_unknown_keys_first(exc), shown, model)) from None
    return Degradation(name or path.stem, preset, shown)


def default_degradation() -> Degradation:
    """Today's LR (``DEFAULT_DEGRADATION``), read once per presets folder: evaluation and
    every validation ask for it, and the preset file does not change within a process."""
    return _preset_at(str(presets_dir() / f"{DEFAULT_DEGRADATION}.yaml"))


@lru_cache(maxsize=None)
def _preset_at(path: str) -> Degradation:
    return load_preset(Path(path))


def degradation_from_record(record: dict | None) -> Degradation:
    """The degradation a ``describe()`` record (e.g. result.json's) stands for; the default
    one for a record written before degradations were recorded (``None``)."""
    if not record:
        return default_degradation()
    params = dict(record["params"])
    return Degradation(str(record["name"]), KINDS[params["kind"]].model_validate(params))


def get_degradation(name_or_path: str | Path) -> Degradation:
    """A built-in preset by name (``camera``), or a preset YAML by path."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or _is_path(text):
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"degradation file {text} does not exist; give a preset YAML or one of: {', '.join(known_degradations())}")
        return load_preset(path)
    known = known_degradations()
    if text not in known:
        raise ConfigError(f"unknown degradation {text!r}; known: {', '.join(known)} (or the path of a preset YAML)")
    return load_preset(presets_dir() / f"{text}.yaml")
