"""Processes of a training run: DDP setup from torchrun's environment, local spawning, rank checks.

A run is one process, W local processes spawned like torchrun would (single node), or one rank of a
torchrun job (RANK / WORLD_SIZE / LOCAL_RANK in the environment). CPU ranks talk over gloo, CUDA
ranks over nccl. The helpers below are no-ops (or trivially true) in a single process.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch

from csmvanet.base.errors import TrainingError


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def in_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup_distributed(ngpu: int) -> DistInfo:
    """Device and process group from torchrun's env (RANK, WORLD_SIZE, LOCAL_RANK) or a single process.

    ``ngpu`` 0: CPU (gloo when distributed); otherwise CUDA device LOCAL_RANK (nccl).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if ngpu > 0:
        if not torch.cuda.is_available():
            raise TrainingError(f"--ngpu {ngpu}: CUDA is not available here (use --ngpu 0 for CPU)")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    info = DistInfo(rank, world, local, device)
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return info


def teardown_distributed(dist: DistInfo) -> None:
    if dist.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _spawn_worker(local_rank: int, world: int, port: int, fn, args, kwargs):
    os.environ.update({"RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    fn(*args, **kwargs)


def spawn_local(nproc: int, fn, *args, **kwargs) -> None:
    """Run ``fn`` in ``nproc`` local processes set up like torchrun would (single node)."""
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_spawn_worker, args=(nproc, port, fn, args, kwargs), nprocs=nproc, join=True)


def all_reduce(t: torch.Tensor, dist: DistInfo, op=None) -> torch.Tensor:
    """Sum (or ``op``) of ``t`` over the ranks, in place; ``t`` itself in a single process."""
    if dist.distributed:
        torch.distributed.all_reduce(t, op=op or torch.distributed.ReduceOp.SUM)
    return t


def all_ranks(flag: bool, dist: DistInfo) -> bool:
    """True when ``flag`` holds on every rank."""
    t = torch.tensor([1.0 if flag else 0.0], device=dist.device)
    all_reduce(t, dist, torch.distributed.ReduceOp.MIN if dist.distributed else None)
    return t.item() >= 1.0


def any_rank(flag: bool, dist: DistInfo) -> bool:
    """True when ``flag`` holds on some rank."""
    if not dist.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=dist.device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return t.item() > 0


def ranks_identical(module: torch.nn.Module) -> bool:
    """Whether every rank holds bit-identical parameters (collective)."""
    flat = torch.cat([p.detach().reshape(-1).float() for p in module.parameters()])
    ref = flat.clone()
    torch.distributed.broadcast(ref, src=0)
    bad = torch.tensor([0.0 if torch.equal(ref, flat) else 1.0], device=flat.device)
    torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
    return bad.item() == 0


def gather_objects(obj, dist: DistInfo) -> list:
    """``obj`` of every rank, in rank order (collective)."""
    if not dist.distributed:
        return [obj]
    out = [None] * dist.world_size
    torch.distributed.all_gather_object(out, obj)
    return out
