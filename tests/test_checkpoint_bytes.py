"""Issue 20: after a kill-and-resume, best.safetensors (and best_raw) are byte-identical to
the uninterrupted run's, so "same weights" is checkable with sha256sum (the metadata keys
are written in sorted order).  Reuses the kill harness of tests/test_train_kill.py."""
from __future__ import annotations

import hashlib

import pytest

from test_train_kill import _killed_run, _resume, straight  # noqa: F401  (straight: its module fixture)


@pytest.mark.parametrize("point", ["step-6", "after-rename-8"])
def test_resumed_checkpoints_are_byte_identical(tmp_path, straight, point):  # noqa: F811
    out = tmp_path / "run"
    _killed_run(out, point)
    _resume(out)
    for name in ("best.safetensors", "best_raw.safetensors"):
        a, b = (straight[0] / "ckpt" / name).read_bytes(), (out / "ckpt" / name).read_bytes()
        assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest(), name
