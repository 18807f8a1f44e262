"""Training recipes: precision, EMA, warm-up and schedules, clipping, early stopping, GAN
discriminator schedule."""
from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from lpsr import registry
from lpsr.method import TrainRecipe
from lpsr.train.checkpoint import load_resume, weights_metadata
from lpsr.train.loop import train
from lpsr.train.precision import resolve_precision
from lpsr.train.settings import TrainSettings
from lpsr.train.validate import Validator
from test_train_loop import SETTINGS, _plates, assert_same_weights, build, log_records

CPU = torch.device("cpu")


def _run(tmp_path, method=None, seed=0, progress=None, **over):
    method = method or registry.get("tiny").create(4)
    settings = TrainSettings(**{**SETTINGS, **over})
    res = train(method, build(method), _plates(6, 0), _plates(3, 1), settings, tmp_path, CPU, seed=seed, progress=progress)
    return res, log_records(tmp_path)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fp32_and_bf16_steps_both_lower_the_loss(tmp_path, precision):
    res, log = _run(tmp_path, precision=precision, iterations=16, log_every=2, val_every=8)
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < 0.8 * losses[0]
    used, note = resolve_precision(precision, CPU)
    assert res.engine["precision"] == used
    if used != precision:  # a CPU without native bf16 falls back, and says so
        assert note and note in res.notes


def test_channels_last_trains_like_contiguous(tmp_path):
    a, _ = _run(tmp_path / "a", iterations=4, val_every=4)
    b, _ = _run(tmp_path / "b", iterations=4, val_every=4, channels_last=True)
    assert b.engine["channels_last"] is True
    assert b.best_val_psnr == pytest.approx(a.best_val_psnr, abs=0.05)


def test_ema_weights_differ_and_best_holds_them(tmp_path):
    res, log = _run(tmp_path, ema_decay=0.9)
    ckpt = tmp_path / "ckpt"
    best, best_raw = load_file(str(ckpt / "best.safetensors")), load_file(str(ckpt / "best_raw.safetensors"))
    state = load_resume(ckpt / "resume.pt")
    assert any(not torch.equal(state["ema"][k], state["model"][k]) for k in state["model"])
    assert any(not torch.equal(best[k], best_raw[k]) for k in best)
    vals = {r["iteration"]: (r["val_psnr"], r["val_psnr_raw"]) for r in log if "val_psnr" in r}
    assert sorted(vals) == [4, 8, 12]
    # best = the EMA weights at the iteration with the best EMA val PSNR, scored as logged
    assert res.best_iteration == max(vals, key=lambda i: vals[i][0])
    assert weights_metadata(ckpt / "best.safetensors")["iteration"] == str(res.best_iteration)
    method = registry.get("tiny").create(4)
    model = method.build()
    model.load_state_dict(best)
    assert Validator(method, _plates(3, 1), CPU).mean_psnr(model) == pytest.approx(vals[res.best_iteration][0], abs=1e-9)
    if res.best_iteration == 12:
        assert_same_weights(best, state["ema"], atol=0)
    raw_it = int(weights_metadata(ckpt / "best_raw.safetensors")["iteration"])
    assert raw_it == max(vals, key=lambda i: vals[i][1])


def test_resume_with_ema_gives_the_same_final_weights(tmp_path):
    _run(tmp_path / "straight", ema_decay=0.9, seed=2)

    class Crash(Exception):
        pass

    def crash(it, total, logs):
        if it == 7:
            raise Crash

    with pytest.raises(Crash):
        _run(tmp_path / "resumed", ema_decay=0.9, seed=2, progress=crash)
    res, _ = _run(tmp_path / "resumed", ema_decay=0.9, seed=2)
    assert res.resumed_from == 4
    a, b = load_resume(tmp_path / "straight" / "ckpt" / "resume.pt"), load_resume(tmp_path / "resumed" / "ckpt" / "resume.pt")
    assert_same_weights(a["model"], b["model"])
    assert_same_weights(a["ema"], b["ema"])
    for name in ("best.safetensors", "best_raw.safetensors"):
        assert_same_weights(load_file(str(tmp_path / "straight" / "ckpt" / name)), load_file(str(tmp_path / "resumed" / "ckpt" / name)))


def _lrs(log):
    return {r["iteration"]: r["lr"] for r in log}


def test_warmup_then_cosine_lr_sequence(tmp_path):
    lr, total, warm = 2e-3, 12, 4
    _, log = _run(tmp_path, warmup_iterations=warm, log_every=1, iterations=total)
    got = _lrs(log)
    for it in range(1, total + 1):
        n = it - 1  # optimiser steps already taken
        want = lr * n / warm if n < warm else lr * (1 + math.cos(math.pi * (n - warm) / (total - warm))) / 2
        assert got[it] == pytest.approx(want, rel=1e-9, abs=1e-15), it
    assert got[warm + 1] == pytest.approx(lr)


def test_cosine_without_warmup_is_torchs_cosine_annealing(tmp_path):
    _, log = _run(tmp_path, log_every=1)
    opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=12)
    for it, lr in sorted(_lrs(log).items()):
        assert lr == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        sched.step()


def test_step_schedule_drops_at_the_listed_iterations(tmp_path):
    _, log = _run(tmp_path, schedule="step", lr_steps=[5, 9], lr_gamma=0.5, warmup_iterations=2, log_every=1)
    got = _lrs(log)
    assert got[1] == 0.0 and got[2] == pytest.approx(1e-3)  # warm-up
    assert [got[i] for i in (3, 4, 5, 8, 9, 12)] == pytest.approx([2e-3, 2e-3, 1e-3, 1e-3, 5e-4, 5e-4])


class ScaledTiny(type(registry.get("tiny").create(4))):
    """tiny with a recipe that owns a learnable parameter (like PECL's loss weights)."""

    def recipe(self, model):
        recipe = ScaledRecipe()
        self.last_recipe = recipe
        return recipe


class ScaledRecipe(TrainRecipe):
    def __init__(self):
        super().__init__("l1")
        self.gain = nn.Parameter(torch.tensor(50.0))

    def loss(self, sr, batch, iteration, total):
        value = self.gain * self.pixel_loss(sr, batch.hr) + 0.1 * self.gain**2
        return value, {"loss": float(value.detach())}


def _grad_norm(params):
    grads = [p.grad.detach().flatten() for p in params if p.grad is not None]
    return float(torch.cat(grads).norm())


def test_clipping_covers_the_recipes_parameters(tmp_path):
    method = ScaledTiny(4)
    norms = []

    def after_step(it, total, logs):
        model_params = list(model_holder[0].parameters())
        recipe = method.last_recipe
        assert recipe.gain.grad is not None
        norms.append(_grad_norm(model_params + [recipe.gain]))

    model_holder = []
    real_build = method.build

    def build_and_keep():
        m = real_build()
        model_holder.append(m)
        return m

    method.build = build_and_keep
    _run(tmp_path, method=method, grad_clip=0.5, iterations=4, val_every=4, progress=after_step)
    # the recipe's own gain has a gradient of ~10, far above the clip: every step is clipped
    assert norms == pytest.approx([0.5] * 4, rel=1e-4)


class GanTiny(type(registry.get("tiny").create(4))):
    def recipe(self, model):
        return GanRecipe()


class GanRecipe(TrainRecipe):
    """A toy two-stage GAN recipe: D trains only in the second half (like ESRGAN)."""

    def __init__(self):
        super().__init__("l1")
        self.disc = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1))

    def discriminator(self):
        return self.disc

    def discriminator_start(self, total):
        return total // 2

    def discriminator_loss(self, sr, batch, iteration, total):
        if iteration <= self.discriminator_start(total):
            return None
        d = self.disc(sr).mean() - self.disc(batch.hr).mean()
        return d, {"d_loss": float(d.detach())}


def test_discriminator_schedule_starts_with_its_stage(tmp_path):
    total, lr_d = 12, 1e-3
    res, log = _run(tmp_path, method=GanTiny(4), lr_d=lr_d, log_every=1, iterations=total)
    assert res.engine["discriminator_start"] == 6
    d_lrs = {r["iteration"]: r["lr_d"] for r in log if "lr_d" in r}
    assert sorted(d_lrs) == list(range(7, 13))  # D stepped only in its stage
    for k, it in enumerate(range(7, 13)):  # its cosine spans its own 6 steps, from the full lr_d
        assert d_lrs[it] == pytest.approx(lr_d * (1 + math.cos(math.pi * k / 6)) / 2, rel=1e-9)
    assert load_resume(tmp_path / "ckpt" / "resume.pt")["d_steps"] == 6


def test_early_stopping_stops_and_says_so(tmp_path):
    # lr so small that the (uint8-rounded) val PSNR cannot improve: a plateau from the start
    res, log = _run(tmp_path, lr=1e-12, iterations=40, val_every=2, early_stop_patience=2, log_every=2)
    assert res.stopped_early and res.iterations == 6 and res.best_iteration == 2
    last = log[-1]
    assert last["iteration"] == 6 and last["early_stop"] is True and "patience 2" in last["early_stop_reason"]
    again, _ = _run(tmp_path, lr=1e-12, iterations=40, val_every=2, early_stop_patience=2, log_every=2)
    assert again.stopped_early and again.iterations == 6 and again.resumed_from == 6  # not trained further


def test_discriminator_step_schedule_ignores_milestones_before_it_starts(tmp_path):
    # milestones 6 (= the GAN stage's start, halves G only) and 10 (halves both)
    _, log = _run(tmp_path, method=GanTiny(4), lr_d=1e-3, schedule="step", lr_steps=[6, 10], lr_gamma=0.5, log_every=1)
    g = {r["iteration"]: r["lr"] for r in log}
    d = {r["iteration"]: r["lr_d"] for r in log if "lr_d" in r}
    assert [g[i] for i in (5, 6, 9, 10)] == pytest.approx([2e-3, 1e-3, 1e-3, 5e-4])
    assert [d[i] for i in (7, 9, 10, 12)] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4])


# -- train.precision: auto (issue 19) -----------------------------------------------------------
@pytest.mark.parametrize("amx, quality, expected", [
    (True, "report.md", "bf16"),   # AMX and a measured method: bf16
    (True, None, "fp32"),          # AMX, quality never measured: fp32
    (False, "report.md", "fp32"),  # no AMX (avx512_bf16 alone is slower than fp32): fp32
])
def test_auto_precision_picks_bf16_only_on_amx_for_a_measured_method(monkeypatch, amx, quality, expected):
    import lpsr.train.precision as precision

    monkeypatch.setattr(precision, "cpu_has_amx", lambda: amx)
    used, note = resolve_precision("auto", CPU, quality)
    assert used == expected and note.startswith(f"train.precision auto: {expected} (")
    assert ("AMX-bf16" in note) and (("report.md" in note) == (expected == "bf16"))


def test_auto_precision_is_recorded_and_only_mse_has_a_quality_report(tmp_path, monkeypatch):
    import lpsr.train.precision as precision

    monkeypatch.setattr(precision, "cpu_has_amx", lambda: False)
    res, _ = _run(tmp_path, precision="auto", iterations=2, val_every=2)
    assert res.engine["precision"] == "fp32" and res.engine["precision_requested"] == "auto"
    assert any(n.startswith("train.precision auto: fp32") for n in res.notes)
    measured = {name for name in registry.known() if registry.get(name).create(8).bf16_quality}
    assert measured == {"mse"}  # mse-skip (bicubic skip) and the rest: never measured in bf16


def test_quick_uses_auto_and_the_study_profiles_keep_fp32():
    from lpsr.profile import load_profile

    assert load_profile("quick")[1].train.precision == "auto"
    for name in ("cpu", "paper", "gpu"):
        assert load_profile(name)[1].train.precision == "fp32"


@pytest.mark.parametrize("amx, expected", [(True, "bf16"), (False, "fp32")])
def test_upscale_precision_auto_is_bf16_where_fast(monkeypatch, amx, expected):
    import lpsr.train.precision as precision
    from lpsr.infer import resolve_inference_precision

    monkeypatch.setattr(precision, "cpu_has_amx", lambda: amx)
    used, why = resolve_inference_precision("auto", CPU)
    assert used == expected and why.startswith(f"--precision auto: {expected} (")
    assert resolve_inference_precision("fp32", CPU) == ("fp32", None)
