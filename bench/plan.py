"""What a run is asked to do (:class:`RunPlan`, the command line's options) and what planning
resolved it to (:class:`RunContext`: profile, seed, data facts, device, run directory, each
method's training settings).

A :class:`RunContext` holds no plates: it is what a method's process receives to rebuild its
inputs (:mod:`bench.child`); :meth:`DataSpec.load` is the one call that loads the plates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench.options import resolve_degradation
from bench.progress import BarFactory
from lpsr.data.record import PlateSplits
from lpsr.data.sources import load_data
from lpsr.degradations import Degradation, default_degradation
from lpsr.profile import Profile
from lpsr.train.settings import TrainSettings


@dataclass
class RunPlan:
    methods: list[str]
    scale: int
    data: str = "synthetic"
    profile: str = "quick"
    device: str = "auto"
    weights: dict[str, str] = field(default_factory=dict)
    ocr: list[str] = field(default_factory=lambda: ["ppocr"])
    run_dir: Path | None = None
    strict: bool = False
    limit: int | None = None
    hr_size: tuple[int, int] | None = None
    crop: str | None = None
    seed: int | None = None
    #: ``process``: each method trains and evaluates in its own spawned process (a crash,
    #: an out-of-memory kill or a NaN is a failed row; bench/isolation.py); ``none``: in this one
    isolation: str = "process"
    #: ``--deterministic``: deterministic algorithms, cudnn.benchmark off (lpsr.train.device.device_settings)
    deterministic: bool = False
    #: ``--log``: experiment loggers besides train.jsonl (``tensorboard``: <method>/tb/)
    log: tuple[str, ...] = ()
    #: ``--degradation``: how every method's test LR is made (a preset name or YAML path)
    degradation: str | None = None  # None: lpsr.degradations.DEFAULT_DEGRADATION
    #: ``--no-cache``: decode ccpd:/folder: data without the plate cache; ``--cache-dir``: where it lives
    cache: bool = True
    cache_dir: Path | None = None  # None: lpsr.data.cache_dir.cache_root's default
    #: ``--train-degradation``: the profile's ``train.degradation`` for this run (None: the profile's)
    train_degradation: str | None = None
    #: ``--test-subsets``: only the test plates of these CCPD subsets (None: every test plate)
    test_subsets: tuple[str, ...] | None = None


def with_train_degradation(profile: Profile, spec: str | None) -> Profile:
    """The profile as if its ``train.degradation`` said ``spec`` (``--train-degradation``;
    None: the profile unchanged).  A bad name or file is one line naming the option."""
    if spec is None:
        return profile
    resolve_degradation(spec, "--train-degradation")
    return profile.model_copy(update={"train": profile.train.model_copy(update={"degradation": spec})})


def lr_names_suffix(profile: Profile, degradation: Degradation) -> str:
    """What the default run directory and leaderboard names get for the LR: ``-train-<name>``
    for the profile's training degradation (``train.degradation``, ``--train-degradation``),
    then ``-<name>`` for the test one (``--degradation``); nothing for bicubic."""
    train = profile.train.lr_degradation()
    return (f"-train{train.suffix}" if train.suffix else "") + degradation.suffix


@dataclass(frozen=True)
class DataSpec:
    """The arguments that load a run's plates; the same arguments give the same plates."""

    spec: str
    hr_size: tuple[int, int]
    crop: str
    strict: bool
    seed: int
    synthetic_sizes: tuple[int, int, int]
    limit: int | None = None
    scale: int | None = None
    #: the plate cache (lpsr.data.plate_cache): on or off, and its folder (None: the default);
    #: it changes how fast the plates come, never which
    cache: bool = True
    cache_dir: str | None = None
    #: ``--test-subsets``: only the test plates of these CCPD subsets (None: all)
    test_subsets: tuple[str, ...] | None = None

    def load(self, report: Callable[[str], None] | None = None, make_bar: BarFactory | None = None,
             verify: bool = True) -> PlateSplits:
        # the one place plates are loaded: through the plate cache, so the planner decodes
        # the photos once and each method's process opens the same memory-mapped store
        # (``verify``: its bytes against their sha256; the planner does, a method's process need not)
        limit = {"train": self.limit, "val": self.limit, "test": self.limit} if self.limit else None
        return load_data(self.spec, hr_size=self.hr_size, crop=self.crop, strict=self.strict, seed=self.seed,
                         synthetic_sizes=self.synthetic_sizes, limit=limit, scale=self.scale,
                         cache=self.cache, cache_dir=self.cache_dir, report=report, make_bar=make_bar,
                         test_subsets=self.test_subsets, verify_cache=verify)


@dataclass(frozen=True)
class DataFacts:
    """What the results record about the plates (``data`` of config.yaml and result.json)."""

    name: str
    fingerprint: str
    n_train: int
    n_val: int
    n_test: int
    skipped: tuple[str, ...] = ()
    #: LR-only data (real LR crops, no HR): readability-only scoring, its LR size and whether it has tracks
    lr_only: bool = False
    lr_size: tuple[int, int] | None = None
    tracks: bool = False


@dataclass(frozen=True)
class RunContext:
    """Everything a method's run needs besides its plates: checked and resolved once, by the
    planning process (:class:`bench.runner.Runner`), before anything trains."""

    data: DataSpec
    facts: DataFacts
    scale: int
    seed: int
    device: str
    run_dir: Path
    profile_name: str
    profile: Profile
    #: ``--profile`` as given (a name or a YAML path): messages name it
    profile_spec: str
    ocr: tuple[str, ...]
    commit: str
    #: method -> its checked training settings (learned methods trained here)
    train_settings: dict[str, TrainSettings]
    #: method -> ``--weights`` file and its sha256
    weights: dict[str, str] = field(default_factory=dict)
    weights_sha: dict[str, str] = field(default_factory=dict)
    deterministic: bool = False
    log: tuple[str, ...] = ()
    #: the test LR of every method (``--degradation``; the training LR is ``train.degradation``)
    degradation: Degradation = field(default_factory=default_degradation)

    def val_settings(self, name: str) -> TrainSettings:
        """The settings a method's val plates are scored under (``val_plates``, the val LR's
        ``degradation``): its training settings, or the profile's for a method not trained here."""
        return self.train_settings.get(name) or self.profile.train_for(name, where=self.profile_where)

    @property
    def names_suffix(self) -> str:
        """What the default run directory and leaderboard names get (:func:`lr_names_suffix`)."""
        return lr_names_suffix(self.profile, self.degradation)

    @property
    def profile_where(self) -> str:
        return f"profile {self.profile_spec}"

    @property
    def eval_batch(self) -> int:
        return int(self.profile.eval.batch_size)

    @property
    def eval_chunk(self) -> int:
        return int(self.profile.eval.chunk_plates)

    @property
    def crop_border(self) -> int:
        return int(self.profile.eval.crop_border)

    def method_dir(self, name: str) -> Path:
        return self.run_dir / name

    def data_record(self) -> dict[str, Any]:
        """``data`` of config.yaml and result.json."""
        return {
            "name": self.facts.name,
            "spec": self.data.spec,
            "fingerprint": self.facts.fingerprint,
            "hr_size": list(self.data.hr_size),
            "crop": self.data.crop,
            "n_train": self.facts.n_train,
            "n_val": self.facts.n_val,
            "n_test": self.facts.n_test,
            "skipped": list(self.facts.skipped),
            **({"test_subsets": list(self.data.test_subsets)} if self.data.test_subsets is not None else {}),
            # only LR-only data says so (the default's records stay as they were)
            **({"lr_only": True, "lr_size": list(self.facts.lr_size or ()), "tracks": self.facts.tracks} if self.facts.lr_only else {}),
        }
