"""``bench check-method NAME``: the conformance suite every method should pass.

Checks, each reported as PASS / FAIL / SKIP with one line of detail:

1. output shapes at x2, x4 and x8 on plate-sized LR inputs (24x8 and an odd 25x9);
2. the parameter count (``param_count()`` agrees with the built network);
3. a few of the engine's training steps with the method's own recipe lower its loss on a fixed batch;
4. save/load round trip (safetensors, as the harness checkpoints) gives identical outputs;
5. the same seed builds the same weights;
6. ``super_resolve`` stays in [0, 1] (and finite), also on all-black and all-white input.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

SCALES = (2, 4, 8)
LR_SIZES = ((8, 24), (9, 25))  # (H, W): a plate-sized LR at x8 of 192x64, and an odd size


@dataclass
class CheckResult:
    name: str
    status: str  # PASS | FAIL | SKIP
    detail: str


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _create(name: str, scale: int):
    from lpsr import registry

    return registry.get(name).create(scale)


def _build(method, seed: int = 0):
    torch.manual_seed(seed)
    model = method.build()
    if model is not None:
        model.eval()
    return model


def check_shapes(name: str) -> CheckResult:
    done = []
    for scale in SCALES:
        method = _create(name, scale)
        model = _build(method)
        for h, w in LR_SIZES:
            lr = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(scale))
            with torch.no_grad():
                sr = method.super_resolve(model, lr)
            want = (2, 3, h * scale, w * scale)
            if tuple(sr.shape) != want:
                return CheckResult("shapes", "FAIL", f"x{scale} on LR {w}x{h}: output {tuple(sr.shape)}, expected {want}")
            done.append(f"x{scale} {w}x{h}->{w * scale}x{h * scale}")
    return CheckResult("shapes", "PASS", "; ".join(done))


def check_params(name: str) -> CheckResult:
    from lpsr.method import count_parameters

    method = _create(name, 8)
    model = _build(method)
    reported = method.param_count()
    counted = count_parameters(model)
    if reported != counted:
        return CheckResult("params", "FAIL", f"param_count() says {reported:,}, the built network has {counted:,} trainable parameters")
    if method.trainable and counted == 0:
        return CheckResult("params", "FAIL", "trainable method with 0 trainable parameters")
    return CheckResult("params", "PASS", f"{counted:,} trainable parameters at x8")


def _plate_batch(scale: int, n: int = 4):
    from lpsr.data.degrade import make_pair
    from lpsr.data.patches import to_tensor
    from lpsr.data.synthetic import make_synthetic
    from lpsr.method import Batch

    splits = make_synthetic(n, 0, 0, seed=0, hr_size=(24 * scale, 8 * scale))
    pairs = [make_pair(p.hr, scale, p.id) for p in splits.train]
    return Batch(to_tensor([lr for lr, _ in pairs]), to_tensor([hr for _, hr in pairs]), [p.text for p in splits.train])


def check_training(name: str, steps: int = 12, scale: int = 4) -> CheckResult:
    """A few of the engine's own training steps (:func:`lpsr.train.step.train_step`, with a
    state from :func:`lpsr.train.state.build_state`, as ``bench run`` trains) on a fixed
    batch lower the recipe's loss."""
    from lpsr import registry
    from lpsr.train.settings import TrainSettings
    from lpsr.train.state import build_state
    from lpsr.train.step import train_step

    method = _create(name, scale)
    if not method.trainable:
        return CheckResult("training lowers the loss", "SKIP", "not trainable")
    model = _build(method)
    if model is None:
        return CheckResult("training lowers the loss", "FAIL", "trainable but build() returned no network")
    batch = _plate_batch(scale)
    # the method's own lr (its YAML's train:), else the training default (TrainSettings)
    lr_rate = float(registry.get(name).train_overrides.get("lr", TrainSettings.model_fields["lr"].default))
    # a long nominal run: the steps stay in any warm-up / pre-training phase
    state, _ = build_state(method, model, TrainSettings(iterations=100 * steps, lr=lr_rate), torch.device("cpu"), seed=1)

    def loss_now() -> float:
        torch.manual_seed(123)
        state.model.eval()
        state.recipe.eval()
        with torch.no_grad():
            value, _ = state.recipe.loss(state.model(batch.lr), batch, 1, state.total)
        return float(value)

    before = loss_now()
    for it in range(1, steps + 1):
        train_step(state, batch, it)
    after = loss_now()
    detail = f"loss {before:.5f} -> {after:.5f} after {steps} training steps (lr {lr_rate:g}) at x{scale} on 4 synthetic plates"
    if not (after < before):
        return CheckResult("training lowers the loss", "FAIL", detail)
    return CheckResult("training lowers the loss", "PASS", detail)


def check_round_trip(name: str, scale: int = 8) -> CheckResult:
    from lpsr.train.checkpoint import load_weights, save_weights

    method = _create(name, scale)
    model = _build(method, seed=0)
    if model is None:
        return CheckResult("save/load round trip", "SKIP", "no network")
    with torch.no_grad():  # move the weights off their initialisation so loading visibly matters
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    lr = torch.rand(2, 3, 8, 24, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = method.super_resolve(model, lr)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.safetensors"
        save_weights(model, path)
        other = _build(method, seed=1)
        load_weights(other, path, flag="check-method")
    with torch.no_grad():
        got = method.super_resolve(other, lr)
    if not torch.equal(want, got):
        return CheckResult("save/load round trip", "FAIL", f"outputs differ after reload (max |diff| {float((want - got).abs().max()):.3g})")
    return CheckResult("save/load round trip", "PASS", "identical outputs after save_weights/load_weights")


def check_seed(name: str, scale: int = 8) -> CheckResult:
    method = _create(name, scale)
    a, b = _build(method, seed=0), _build(method, seed=0)
    if a is None:
        return CheckResult("same seed, same weights", "SKIP", "no network")
    sa, sb = a.state_dict(), b.state_dict()
    diff = [k for k in sa if not torch.equal(sa[k], sb[k])]
    if diff:
        return CheckResult("same seed, same weights", "FAIL", f"{len(diff)} tensors differ between two builds with seed 0, e.g. {diff[0]}")
    return CheckResult("same seed, same weights", "PASS", f"{len(sa)} tensors identical")


def check_range(name: str, scale: int = 8) -> CheckResult:
    method = _create(name, scale)
    model = _build(method)
    if model is not None:
        with torch.no_grad():  # an untrained-looking, pushed network must still be clamped
            for p in model.parameters():
                p.add_(0.5 * torch.randn_like(p))
    g = torch.Generator().manual_seed(3)
    inputs = {"random": torch.rand(2, 3, 8, 24, generator=g), "black": torch.zeros(1, 3, 8, 24), "white": torch.ones(1, 3, 8, 24)}
    for label, lr in inputs.items():
        with torch.no_grad():
            sr = method.super_resolve(model, lr)
        if not torch.isfinite(sr).all():
            return CheckResult("output in [0, 1]", "FAIL", f"non-finite output on {label} input")
        lo, hi = float(sr.min()), float(sr.max())
        if lo < 0.0 or hi > 1.0:
            return CheckResult("output in [0, 1]", "FAIL", f"output range [{lo:.4f}, {hi:.4f}] on {label} input; clamp in super_resolve")
    return CheckResult("output in [0, 1]", "PASS", "random, black and white LR inputs (with perturbed weights)")


def check_method(name: str, steps: int = 12) -> list[CheckResult]:
    """Run every check on method ``name`` (unknown names raise the registry's one-line error)."""
    from lpsr import registry

    registry.get(name)
    out: list[CheckResult] = []
    checks = [("shapes", check_shapes), ("params", check_params), ("training lowers the loss", lambda n: check_training(n, steps)),
              ("save/load round trip", check_round_trip), ("same seed, same weights", check_seed), ("output in [0, 1]", check_range)]
    for label, fn in checks:
        try:
            out.append(fn(name))
        except Exception as exc:  # a failing method must not stop the other checks
            out.append(CheckResult(label, "FAIL", _one_line(exc)))
    return out
