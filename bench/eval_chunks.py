"""A method's test evaluation in chunks that survive a kill: ``<method>/eval/``.

The test plates are super-resolved and scored ``eval.chunk_plates`` at a time (default
:data:`lpsr.profile.EVAL_CHUNK`); each chunk's
per-plate rows (the columns of ``plates.csv``), the SR images of its figure plates
(:func:`lpsr.evaluate.figure_ids`) and its timings are written atomically as
``chunk-<k>.csv`` / ``.npz`` / ``.json``.  A killed evaluation, rerun, skips the chunks it
finished.  ``eval/key.json`` names what the chunks were made by (the run's training and
evaluation keys, a digest of the network's weights, the chunk size and the plates); chunks
made by anything else are discarded, never mixed in.  Memory holds one chunk's SR images,
not the test set's.

The default chunk is a multiple of 96 so that with the default SR batch (32) and OCR batch
(6) every batch holds the same plates as in one pass over the test set: the readings, whose
last float bits may depend on a batch's composition, are those of an unchunked run.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from lpsr.evaluate import load_images, save_images
from lpsr.io import atomic_path, read_json_or_none, write_json
from lpsr.metrics.spec import LABEL_COLUMNS, recognisers_in, text_column

EVAL_DIR = "eval"
#: scores one chunk of plates: (its plates.csv rows, the SR images of its figure plates, its info)
Scorer = Callable[[list], "tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, Any]]"]


def weights_digest(model: torch.nn.Module | None) -> str:
    """sha256 of a network's parameters and buffers (names, dtypes, shapes, bytes); ``none`` without one."""
    if model is None:
        return "none"
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def _read_chunk_table(path: Path) -> pd.DataFrame:
    """A chunk's rows as written: text columns as text ('' stays ''), floats to the last bit
    (pandas 3's default float parser round-trips the shortest repr it writes, pandas 2 needs
    ``float_precision="round_trip"``, which pandas 3 deprecates; tested)."""
    head = pd.read_csv(path, nrows=0).columns
    texts = {c: str for c in head if c in LABEL_COLUMNS or c in {text_column(o) for o in recognisers_in(pd.DataFrame(columns=head))}}
    exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
    return pd.read_csv(path, keep_default_na=False, dtype=texts, **exact)


class EvalChunks:
    """The chunks of ``size`` plates of one evaluation in ``folder`` (``<method>/eval``), for
    ``key`` (the chunk size is part of it)."""

    def __init__(self, folder: Path, key: dict[str, Any], size: int) -> None:
        self.folder, self.size = Path(folder), size
        self.key = {**key, "chunk": size}
        recorded = read_json_or_none(self.folder / "key.json")
        if recorded != self.key:
            if self.folder.exists():  # another network, setting or test set made them: not ours
                shutil.rmtree(self.folder)
            self.folder.mkdir(parents=True)
            write_json(self.folder / "key.json", self.key)

    def finished(self, n_plates: int) -> tuple[int, int]:
        """(chunks already scored, chunks in all) for ``n_plates`` plates."""
        n = -(-n_plates // self.size)
        return sum(1 for k in range(n) if self.done(k)), n

    def score(self, plates: list, score: Scorer, progress: Callable[[int], None] | None = None
              ) -> tuple[pd.DataFrame, dict[str, np.ndarray], list[dict[str, Any]]]:
        """``score(part)`` -> (rows, figure images, info) for every chunk of ``plates`` not yet
        scored, each written as it is done; then every chunk read back (:meth:`read`).
        ``progress(k)``: k plates done."""
        starts = range(0, len(plates), self.size)
        for k, start in enumerate(starts):
            part = plates[start:start + self.size]
            if not self.done(k):
                self.write(k, *score(part))
            if progress is not None:
                progress(start + len(part))
        return self.read(len(starts))

    def _path(self, k: int, suffix: str) -> Path:
        return self.folder / f"chunk-{k:05d}{suffix}"

    def done(self, k: int) -> bool:
        """Chunk ``k`` is complete (its info file is written last)."""
        return self._path(k, ".json").is_file()

    def write(self, k: int, table: pd.DataFrame, images: dict[str, np.ndarray], info: dict[str, Any]) -> None:
        with atomic_path(self._path(k, ".csv")) as tmp:
            table.to_csv(tmp, index=False)
        if images:
            save_images(self._path(k, ".npz"), list(images), list(images.values()))
        write_json(self._path(k, ".json"), {**info, "plates": len(table)})

    def read(self, n_chunks: int) -> tuple[pd.DataFrame, dict[str, np.ndarray], list[dict[str, Any]]]:
        """Every chunk's rows in plate order, the figure plates' SR images, each chunk's info."""
        tables, images, infos = [], {}, []
        for k in range(n_chunks):
            tables.append(_read_chunk_table(self._path(k, ".csv")))
            if self._path(k, ".npz").is_file():
                images.update(load_images(self._path(k, ".npz")))
            infos.append(json.loads(self._path(k, ".json").read_text(encoding="utf-8")))
        return pd.concat(tables, ignore_index=True), images, infos

    @staticmethod
    def remove_folder(folder: Path) -> None:
        """The method's results are written: its chunks are not needed any more."""
        shutil.rmtree(folder, ignore_errors=True)


def merged_ocr_info(infos: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per recogniser: plates, seconds and plates/s over every chunk (each chunk's own timing)."""
    out: dict[str, dict[str, Any]] = {}
    for info in infos:
        for name, part in (info.get("ocr") or {}).items():
            agg = out.setdefault(name, {"plates": 0, "seconds": 0.0})
            agg["plates"] += part["plates"]
            agg["seconds"] += part["seconds"]
    for agg in out.values():
        agg["seconds"] = round(agg["seconds"], 3)
        agg["plates_per_s"] = round(agg["plates"] / agg["seconds"], 1) if agg["seconds"] > 0 else None
    return out
