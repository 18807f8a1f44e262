"""The training step: the one place a batch becomes an optimiser update.

:func:`train_step` is what ``lpsr.train.loop.train`` runs every iteration, and what
``benchmarks/train_throughput.py``, ``benchmarks/step_time.py`` and ``bench check-method``
time or check (with a state from :func:`lpsr.train.state.build_state`): forward and the
recipe's loss under autocast, backward, gradient clipping, the GradScaler, the optimiser
step, the discriminator's step when it is due, the scaler update, the recipe's
``after_step``, the EMA update.  The lr of each optimiser is set from its pure schedule.

The step never waits for the device: the recipe's logs stay tensors (the loop reads them at
log intervals) and a non-finite loss is recorded in the device-side ``state.first_bad``.
"""
from __future__ import annotations

import torch
from torch import nn

from lpsr.method import Batch
from lpsr.errors import UserError
from lpsr.train import ddp
from lpsr.train.errors import TrainingSetupError, first_line
from lpsr.train.precision import autocast
from lpsr.train.state import TrainState


def train_step(state: TrainState, batch: Batch, it: int) -> dict:
    """One iteration ``it`` (1-based) on ``batch``; returns the step's logs (tensors and
    floats: the recipe's, ``lr`` and, when the discriminator stepped, ``lr_d``)."""
    s = state
    s.model.train()
    s.recipe.train()
    batch = batch.to(s.device, non_blocking=True)
    if s.settings.channels_last:
        batch.lr = batch.lr.contiguous(memory_format=torch.channels_last)
        batch.hr = batch.hr.contiguous(memory_format=torch.channels_last)
    lr_now = s.sched_g.apply(s.opt_g, it - 1)
    with autocast(s.device, s.precision):
        sr = s.fwd(batch.lr)
        loss, logs = s.recipe.loss(sr, batch, it, s.total)
    # no host-device sync: the flag is read at log intervals
    s.first_bad = torch.where(s.first_bad > 0, s.first_bad, (~torch.isfinite(loss.detach())).long() * it)
    s.opt_g.zero_grad(set_to_none=True)
    backward_and_step(loss, s.opt_g, s.params_g, s.settings.grad_clip, s.scaler, s.sync_g)
    if s.opt_d is not None:
        with autocast(s.device, s.precision):
            d_out = s.recipe.discriminator_loss(sr.detach(), batch, it, s.total)
        if d_out is not None:
            d_loss, d_logs = d_out
            lr_d = s.sched_d.apply(s.opt_d, s.d_steps)
            s.opt_d.zero_grad(set_to_none=True)
            backward_and_step(d_loss, s.opt_d, list(s.disc.parameters()), s.settings.grad_clip, s.scaler, s.sync_d)
            s.d_steps += 1
            logs = {**logs, **d_logs, "lr_d": lr_d}
    if s.scaler is not None:
        s.scaler.update()
    s.recipe.after_step()
    if s.ema is not None:
        s.ema.update(s.model, step=it)
    s.iteration = it
    return {**logs, "lr": lr_now}


def first_compiled_step(state: TrainState, batch: Batch, it: int) -> dict:
    """:func:`train_step` where torch.compile compiles: its failure is a setup error."""
    try:
        return train_step(state, batch, it)
    except UserError:
        raise
    except Exception as exc:
        raise TrainingSetupError(f"train.compile: torch.compile failed on the first step ({first_line(exc)}); set train.compile: false") from None


def backward_and_step(loss: torch.Tensor, opt: torch.optim.Optimizer, params: list[torch.Tensor], clip: float, scaler,
                      sync: list[torch.Tensor] | None = None) -> None:
    """Backward, (DDP: average the gradients of ``sync``, parameters outside the DDP module),
    clip, step; with a GradScaler for fp16 (fused Adam takes the scale: no host sync)."""
    if scaler is not None:
        scaler.scale(loss).backward()
        if sync:
            ddp.allreduce_grads(sync)
        if clip > 0:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(params, clip)
        scaler.step(opt)
        return
    loss.backward()
    if sync:
        ddp.allreduce_grads(sync)
    if clip > 0:
        nn.utils.clip_grad_norm_(params, clip)
    opt.step()
