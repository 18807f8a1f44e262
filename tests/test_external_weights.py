"""`--weights METHOD=PATH` accepts an authors'-format checkpoint that spandrel recognises."""
from __future__ import annotations

import pytest
import torch
from spandrel.architectures.ESRGAN import ESRGAN

from bench.weights import load_external_model
from lpsr import registry
from lpsr.errors import UserError


@pytest.fixture
def small_esrgan_pth(tmp_path):
    torch.manual_seed(0)
    net = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=8)
    path = tmp_path / "RRDB_small_x8.pth"
    torch.save(net.state_dict(), path)  # a plain state dict, as the authors publish
    return path, net


def test_spandrel_checkpoint_replaces_the_network(small_esrgan_pth):
    path, original = small_esrgan_pth
    method = registry.get("bicubic").create(8)  # any method: the loaded network is used as is
    model = load_external_model(method, None, str(path))
    x = torch.rand(1, 3, 8, 24)
    with torch.no_grad():
        assert model(x).shape == (1, 3, 64, 192)
        torch.testing.assert_close(model.eval()(x), original.eval()(x))


def test_scale_mismatch_and_garbage_are_clear_errors(small_esrgan_pth, tmp_path):
    path, _ = small_esrgan_pth
    with pytest.raises(UserError, match="checkpoint is x8, the run is x4"):
        load_external_model(registry.get("bicubic").create(4), None, str(path))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="neither a harness .safetensors checkpoint nor a model spandrel recognises"):
        load_external_model(registry.get("bicubic").create(8), None, str(junk))
