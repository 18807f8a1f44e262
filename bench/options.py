"""Checks of ``bench run`` / ``bench sweep`` options that several commands share."""
from __future__ import annotations


import torch

from lpsr.errors import UserError
from lpsr.profile import SEED_MAX


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {spec}: CUDA is not available on this machine; use --device cpu or auto")
    if spec != "cpu" and not spec.startswith("cuda"):
        raise UserError(f"--device {spec!r}: use auto, cpu, cuda or cuda:N")
    return torch.device(spec)


def resolve_degradation(spec: str | None, option: str = "--degradation"):
    """``--degradation NAME|PATH`` (None: the default bicubic) as a
    :class:`lpsr.degradations.Degradation`; a bad value is one line naming ``option``."""
    from lpsr.config import ConfigError
    from lpsr.degradations import default_degradation, get_degradation

    try:
        return get_degradation(spec) if spec else default_degradation()
    except ConfigError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def check_seed(seed: object, where: str = "--seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise UserError(f"{where} {seed}: use an integer from 0 to {SEED_MAX}")
    return seed


def describe_skipped(names: list[str] | tuple[str, ...], shown: int = 5) -> str:
    if not names:
        return ""
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
    return f"{len(names)} files skipped: {listed}"


def describe_load(info: dict) -> str:
    """How the plates came (the run summary): load seconds, the plate cache's state, CCPD's
    no-plate photos left out and the test subsets chosen."""
    cache = {"hit": "plate cache hit", "built": "plate cache built", "off": "no plate cache"}.get(info.get("cache", ""))
    seconds = info.get("load_seconds")
    text = f"loaded in {seconds:.1f} s" if isinstance(seconds, (int, float)) else "loaded"
    text += f" ({cache})" if cache else ""
    if info.get("no_plate_skipped"):  # CCPD's ccpd_np/: photos without a plate
        text += f"; {info['no_plate_skipped']:,} ccpd_np photos (no plate) left out"
    if info.get("test_subsets"):
        text += f"; test subsets {', '.join(info['test_subsets'])}"
    return text
