"""Data-parallel training under ``torchrun`` (``torch.distributed`` + ``DistributedDataParallel``).

``torchrun --nproc_per_node N $(which bench) run ...`` starts N copies of ``bench run``;
torchrun puts ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` in each one's environment.  With ``WORLD_SIZE`` > 1:

* every process runs each method IN-PROCESS (no per-method child process): the runner asks
  :func:`distributed_context` and skips its process-per-method isolation;
* :func:`init_distributed` joins the process group: NCCL when the run's device is CUDA
  (each rank on ``cuda:LOCAL_RANK``), gloo on the CPU;
* the training loop touches DDP through two calls: :func:`wrap` (the network in
  ``DistributedDataParallel``, gradients all-reduced; the step also averages the gradients
  of parameters outside it with :func:`allreduce_grads`) and :func:`agree` (every rank
  takes the same decision: stop, divergence, rank 0's scores and errors, the RNG states of
  a checkpoint).  Each rank draws its own reproducible patch stream (batch ``k`` of rank
  ``r`` is a pure function of ``(seed, r, k)``), and rank 0 alone validates, logs and
  writes checkpoints; the other ranks wait at a barrier;
* the runner writes ``config.yaml``, ``result.json`` and the leaderboard on rank 0 only
  (:attr:`DistContext.is_main`).

A single process (``WORLD_SIZE`` unset or 1) is the ordinary run: every helper here is then
a no-op.
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

import torch
import torch.distributed as dist

from lpsr.errors import UserError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True under torchrun with more than one process (train data-parallel, in-process)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that validates, logs and writes files."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise UserError(f"environment variable {name}={value!r}: expected an integer (set by torchrun)") from None


def distributed_context() -> DistContext:
    """Rank, world size and local rank from the environment torchrun sets (1 process when unset).

    ``distributed_context().enabled`` (``WORLD_SIZE`` > 1) means: run each method in this
    process, data-parallel; ``.is_main`` means: this process writes results."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise UserError(f"RANK={rank}, WORLD_SIZE={world}: not a valid torchrun environment")
    return DistContext(rank=rank, world_size=world, local_rank=local)


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def init_distributed(device: torch.device | str = "cpu") -> DistContext:
    """Join the process group when launched by torchrun with WORLD_SIZE > 1 (idempotent).

    Backend: NCCL for a CUDA device, gloo otherwise.  Returns the context; a single
    process returns it without touching torch.distributed."""
    ctx = distributed_context()
    if not ctx.enabled or is_initialized():
        return ctx
    if not dist.is_available():
        raise UserError(f"WORLD_SIZE={ctx.world_size}: this torch build has no torch.distributed; run a single process")
    device = torch.device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(ctx.local_rank)
    dist.init_process_group(backend=backend)
    return ctx


def device_for_rank(device: torch.device) -> torch.device:
    """Under DDP on CUDA each rank uses its own GPU, ``cuda:LOCAL_RANK``."""
    ctx = distributed_context()
    if ctx.enabled and device.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return device


def barrier() -> None:
    if is_initialized():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (the object itself in a single process)."""
    if not is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on at least one (a collective under DDP)."""
    if not is_initialized():
        return bool(flag)
    backend = dist.get_backend()
    t = torch.tensor([1.0 if flag else 0.0], device=device if backend == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def finish(code: int = 0) -> NoReturn:
    """End this torchrun rank's process with exit status ``code``.

    A clean end (``code == 0``) first waits for every rank at a barrier; then the group is
    destroyed, stdout, stderr and logging are flushed, and the process leaves through
    ``os._exit``, without the interpreter's finalization.  Written by hand because torch
    (2.14) cannot end such a process safely: once DDP has used the group, its gloo worker
    threads outlive ``destroy_process_group()`` (the C++ side keeps the group), and a worker
    that drops a finished collective's Python-made tensor while the interpreter finalizes
    takes the GIL, is ended by ``pthread_exit`` inside a destructor and aborts the rank
    ("terminate called without an active exception": ``AsyncBroadcastWork::~AsyncBroadcastWork``
    -> ``TensorImpl::decref_pyobject`` -> ``take_gil`` -> ``PyThread_exit_thread`` in a core
    of this test suite's rank 1; pytorch/pytorch#190489).  ``multiprocessing`` ends its own
    children with ``os._exit`` for the same reason.  Files are already complete at this
    point: results and checkpoints are written atomically and closed by their writers.
    A failing rank skips the barrier (the others may be inside another collective) and
    exits at once; torchrun then stops the rest."""
    try:
        if is_initialized():
            if code == 0:
                dist.barrier()
            dist.destroy_process_group()
    except Exception as exc:  # e.g. another rank is gone: never report success then
        rank = distributed_context().rank
        print(f"error: rank {rank}: could not leave the process group cleanly ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        code = code or 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more to say
            pass
    os._exit(code)


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not is_initialized():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def max_int(value: int, device: torch.device) -> int:
    """The largest ``value`` over all ranks (a collective under DDP)."""
    if not is_initialized():
        return int(value)
    t = torch.tensor([int(value)], dtype=torch.long, device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The module the training step calls: ``DistributedDataParallel(model)`` under DDP,
    the model itself in a single process."""
    if not is_initialized():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


#: how :func:`agree` combines the ranks' values
AGREE = ("any", "max", "main", "all")


def agree(value: Any, how: str, device: torch.device | None = None) -> Any:
    """One value every rank agrees on (a collective under DDP; ``value`` itself, or
    ``[value]`` for ``all``, in a single process):

    * ``any``: True when ``value`` is true on at least one rank (e.g. a stop signal);
    * ``max``: the largest int (e.g. the first iteration with a non-finite loss);
    * ``main``: rank 0's value (its validation scores, a setup error);
    * ``all``: every rank's value in rank order (e.g. the RNG states of a checkpoint).
    """
    device = device if device is not None else torch.device("cpu")
    if how == "any":
        return any_rank(bool(value), device)
    if how == "max":
        return max_int(int(value), device)
    if how == "main":
        return broadcast_object(value)
    if how == "all":
        return all_gather_object(value)
    raise ValueError(f"agree: how={how!r}, expected one of {AGREE}")


def allreduce_grads(params: list[torch.Tensor]) -> None:
    """Average the gradients of ``params`` over the ranks (for parameters that are not inside
    the ``DistributedDataParallel`` module: a recipe's loss weights, a discriminator).
    Coalesced: one all-reduce per dtype/device."""
    if not is_initialized():
        return
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    world = dist.get_world_size()
    groups: dict[tuple, list[torch.Tensor]] = {}
    for p in params:
        if p.grad is not None:
            groups.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
    for grads in groups.values():
        flat = _flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat.div_(world)
        for g, synced in zip(grads, _unflatten_dense_tensors(flat, grads)):
            g.copy_(synced)
