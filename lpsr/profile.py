"""Profiles (``configs/profiles/*.yaml`` or a YAML file of your own) as one typed model.

Every key is checked when the profile is loaded, before anything trains: a misspelt block
(``trian:``, ``evall:``), a mistyped value (``seed: abc``, ``train: 5``), an out-of-range
value (``eval.batch_size: 0``) or a ``per_method`` name that is not one of the known
methods the caller passes is a :class:`lpsr.errors.ConfigError` naming the file and the key
path::

    profile p.yaml: eval.crop_border: must be >= 0, got -1

``Profile.train`` is a :class:`lpsr.train.settings.TrainSettings` (validated by
:meth:`~lpsr.train.settings.TrainSettings.from_dict`, so every training setting the engine
knows is accepted and nothing else is); each ``per_method`` block is an override of it,
checked when the profile is loaded, and :meth:`Profile.train_for` gives a method's resolved
settings.  The field defaults below are the one source of the profile defaults.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lpsr.config import configs_dir, deep_merge, read_yaml
from lpsr.data.record import HR_SIDE_MAX, HR_SIDE_MIN, HR_SIZE, HR_SIZE_TEXT  # noqa: F401  (HR_SIDE_*: re-exported for the CLI and runner)
from lpsr.errors import ConfigError
from lpsr.settings_model import one_line, shown_key
from lpsr.train.settings import TrainSettings

SEED_MAX = 2**32 - 1
SPLIT_MAX = 1_000_000
EVAL_BATCH_MAX = 4096
#: plates per inference batch (``eval.batch_size``): the one source of the default
EVAL_BATCH = 32
#: test plates scored and saved per resumable chunk (``eval.chunk_plates``; bench.eval_chunks):
#: a multiple of 96, so SR batches of 32 and OCR batches of 6 hold the plates one pass would
EVAL_CHUNK = 960


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SyntheticSizes(_Block):
    train: int = Field(400, ge=1, le=SPLIT_MAX)
    val: int = Field(24, ge=0, le=SPLIT_MAX)
    test: int = Field(64, ge=1, le=SPLIT_MAX)


class DataSettings(_Block):
    hr_size: tuple[int, int] = HR_SIZE
    crop: Literal["perspective", "bbox"] = "perspective"
    synthetic: SyntheticSizes = SyntheticSizes()

    @field_validator("hr_size", mode="before")
    @classmethod
    def _pair(cls, value: Any) -> Any:
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(value, tuple) and len(value) != 2:
            raise ValueError(f"expected [width, height], got {list(value)}")
        return value

    @field_validator("hr_size")
    @classmethod
    def _sides(cls, value: tuple[int, int]) -> tuple[int, int]:
        check_hr_sides(*value, what="")
        return value


class EvalSettings(_Block):
    crop_border: int = Field(0, ge=0, le=HR_SIDE_MAX)
    batch_size: int = Field(EVAL_BATCH, ge=1, le=EVAL_BATCH_MAX)
    #: how the test plates are chunked for a resumable evaluation; not part of any run key
    #: (the scores are the same) as long as it is a multiple of the SR and OCR batch sizes
    chunk_plates: int = Field(EVAL_CHUNK, ge=1, le=SPLIT_MAX)


class Profile(_Block):
    description: str = ""
    seed: int = Field(0, ge=0, le=SEED_MAX)
    data: DataSettings = DataSettings()
    train: TrainSettings = TrainSettings()
    eval: EvalSettings = EvalSettings()
    #: per method, overrides of ``train`` (checked at load, merged by :meth:`train_for`)
    per_method: dict[str, dict[str, Any]] = {}
    #: whether each method's published recipe (its YAML's ``train:``) applies; ``false`` in
    #: the paper profile, which imposes the paper's one protocol on every method
    method_recipes: bool = True

    def train_for(self, method: str, method_train: dict[str, Any] | None = None, where: str = "") -> TrainSettings:
        """The training settings of ``method``: profile ``train`` <- the method YAML's
        ``train`` (when ``method_recipes``) <- this profile's ``per_method`` block; a
        mistake is a ConfigError naming ``where``."""
        recipe = dict(method_train or {}) if self.method_recipes else {}
        block = deep_merge(deep_merge(self.train.to_dict(), recipe), dict(self.per_method.get(method, {})))
        return TrainSettings.from_dict(block, where=where or f"train settings for {method}")


class _Unchecked(Profile):
    """A profile whose ``train`` block is still a plain mapping: every other key is checked
    first, then ``train`` by :meth:`TrainSettings.from_dict` (its own one-line messages)."""

    train: dict[str, Any] = {}  # type: ignore[assignment]


def check_hr_sides(w: int, h: int, what: str = "--hr-size") -> None:
    """Both sides within [HR_SIDE_MIN, HR_SIDE_MAX] (a plate, not a photo: memory stays bounded)."""
    for side in (w, h):
        if not HR_SIDE_MIN <= side <= HR_SIDE_MAX:
            raise ValueError(
                f"{what + ' ' if what else ''}{w}x{h}: each side must be {HR_SIDE_MIN}..{HR_SIDE_MAX} px (default {HR_SIZE_TEXT})"
            )


def validate_profile(raw: Any, where: str = "profile", known_methods: Iterable[str] | None = None) -> Profile:
    """A profile mapping -> :class:`Profile`; ConfigError ``"{where}: key.path: ..."`` otherwise
    (always one line).

    ``known_methods``: the names ``per_method`` may use (``lpsr.registry.known()`` for a
    run); ``None`` leaves the names unchecked (e.g. ``bench report`` reading a description),
    though every block is still checked as training settings.
    """
    try:
        return _validate_profile(raw, where, known_methods)
    except ConfigError as exc:
        message = str(exc)
        if "\n" in message or "\r" in message:
            raise ConfigError(" ".join(message.split())) from None
        raise


def _validate_profile(raw: Any, where: str, known_methods: Iterable[str] | None) -> Profile:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: top level must be a mapping of settings, got {type(raw).__name__}")
    raw = {str(k): v for k, v in raw.items()}
    try:
        unchecked = _Unchecked(**raw)
    except ValidationError as exc:
        raise ConfigError(one_line(exc, where, _Unchecked)) from None
    # train and per_method go through the engine's own typed settings
    train = TrainSettings.from_dict(unchecked.train, where=f"{where}: train")
    profile = Profile(**{**{key: getattr(unchecked, key) for key in Profile.model_fields}, "train": train})
    known = None if known_methods is None else list(known_methods)
    for name in profile.per_method:
        if known is not None and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{where}: per_method.{shown_key(name)}: no method named {name!r}{hint}; `bench list` shows the methods")
        profile.train_for(name, where=f"{where}: per_method.{name}")
    return profile


def profile_path(spec: str) -> tuple[str, Path]:
    """(name, file) for ``quick`` / ``paper`` / ... or a path to a ``.yaml`` file."""
    path = Path(spec)
    if path.suffix in (".yaml", ".yml"):
        if path.is_dir():
            raise ConfigError(f"--profile {spec}: is a folder, not a YAML file")
        if not path.is_file():
            raise ConfigError(f"--profile {spec}: file not found")
        return path.stem, path
    folder = configs_dir() / "profiles"
    named = folder / f"{spec}.yaml"
    if not spec or "/" in spec or not named.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ConfigError(f"--profile {spec!r}: no such profile; use one of {', '.join(known)} or a .yaml path")
    return spec, named


def load_profile(spec: str, known_methods: Iterable[str] | None = None) -> tuple[str, Profile]:
    """Name and typed model of the profile ``spec`` (see :func:`profile_path`);
    ``known_methods`` as in :func:`validate_profile`."""
    name, path = profile_path(spec)
    where = f"profile {path if Path(spec).suffix in ('.yaml', '.yml') else name + ' (' + str(path) + ')'}"
    try:
        raw = read_yaml(path)
    except ConfigError as exc:
        raise ConfigError(f"profile {exc}") from None
    return name, validate_profile(raw, where, known_methods)
