"""Decoded plates written to disk as they arrive, so that building the plate cache holds no
split in memory: the cold build of 300k plates would otherwise keep ~11 GB of HR crops
(192x64x3 bytes each) until the store is written.

:meth:`Spill.mapper` wraps a loader's ``decode`` (:data:`lpsr.data.parallel.Mapper`): each
decoded :class:`~lpsr.data.record.PlateRecord`'s pixels are appended to one raw file per
plate size and replaced by a zero-byte stand-in of the same shape (loaders never read a
plate's pixels after decoding it); :meth:`Spill.attach` then points every record at its row
of a read-only memory map of that file.  What the page cache holds is the OS's to reclaim.

Written by hand: no library spills a stream of numpy arrays of a few sizes to one mapped
file each (numpy's ``open_memmap`` needs the row count up front, which skips make unknown).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from lpsr.data.parallel import Mapper
from lpsr.data.record import PlateRecord


class Spill:
    """Raw pixel files in ``folder`` (created; removed by :meth:`close`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True)
        self._files: dict[tuple[int, ...], Any] = {}   # shape -> open file
        self._rows: dict[tuple[int, ...], int] = {}    # shape -> rows written
        self._where: dict[int, tuple[str, tuple[int, ...], int]] = {}  # id(record) -> (attribute, shape, row)
        self._records: list[PlateRecord] = []          # keeps the records (and so their ids) alive

    def _path(self, shape: tuple[int, ...]) -> Path:
        return self.folder / f"plates-{'x'.join(map(str, shape))}.raw"

    def _put(self, record: PlateRecord) -> PlateRecord:
        attr = "hr" if record.hr is not None else "lr"
        pixels = np.ascontiguousarray(getattr(record, attr))
        shape = tuple(pixels.shape)
        if shape not in self._files:
            self._files[shape] = open(self._path(shape), "wb")  # noqa: SIM115 (closed in attach / close)
            self._rows[shape] = 0
        self._files[shape].write(pixels.tobytes())
        self._where[id(record)] = (attr, shape, self._rows[shape])
        self._rows[shape] += 1
        self._records.append(record)
        setattr(record, attr, np.broadcast_to(np.zeros((), np.uint8), shape))  # a stand-in: no bytes held
        return record

    def mapper(self, decode: Mapper) -> Mapper:
        """``decode`` with every decoded plate's pixels spilled to disk as it arrives."""
        def spilled(fn: Callable[[Any], Any], items: Sequence[Any], label: str, want: int | None = None) -> Iterator[Any]:
            for result in decode(fn, items, label, want):
                yield self._put(result) if isinstance(result, PlateRecord) else result
        return spilled

    def attach(self) -> None:
        """Point every spilled record at its row of the memory-mapped file (read-only)."""
        maps = {}
        for shape, fh in self._files.items():
            fh.close()
            if self._rows[shape]:
                maps[shape] = np.memmap(self._path(shape), dtype=np.uint8, mode="r", shape=(self._rows[shape], *shape))
        for record in self._records:
            attr, shape, row = self._where[id(record)]
            setattr(record, attr, maps[shape][row])
        self._files.clear()

    def close(self) -> None:
        """Remove the files (records still mapped keep their pages until they are freed)."""
        for fh in self._files.values():
            fh.close()
        self._files.clear()
        shutil.rmtree(self.folder, ignore_errors=True)
