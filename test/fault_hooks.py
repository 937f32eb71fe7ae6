"""Fault injection for the training tests, as Trainer hooks (``after_step(trainer)``).

``KillAfterStep(k)`` SIGKILLs the process right after global step k; ``DesyncRank(r)`` makes rank r's
weights differ from the others after the first step (to show that train.ddp_check_every catches
it); ``DiskFullAfterStep(k)`` makes the disk of the experiment dir full after global step k: every
file opened for writing in it from then on writes to /dev/full, so each write fails as on a full
disk (ENOSPC from the kernel, through Python's and torch's own writers), and so does the open
train.log; creating (empty) files still works, as on a full disk. Run as a
script, this is csmvanet-train with those hooks installed::

    python test/fault_hooks.py --kill_after_step 7 --config C --train_dir D ...
"""
from __future__ import annotations

import builtins
import io
import logging
import os
import signal
import sys
from pathlib import Path

import torch


class KillAfterStep:
    def __init__(self, step: int):
        self.step = int(step)

    def after_step(self, trainer) -> None:
        if trainer.global_step != self.step:
            return
        if trainer.dist.is_main:
            logging.getLogger("csmvanet.train.trainer").warning(
                "kill after step %d: killing this process with SIGKILL (fault injection)", self.step)
            for h in logging.getLogger("csmvanet").handlers:
                h.flush()
        os.kill(os.getpid(), signal.SIGKILL)


class DesyncRank:
    def __init__(self, rank: int):
        self.rank = int(rank)

    def after_step(self, trainer) -> None:
        if trainer.dist.rank == self.rank and trainer.global_step == 1:
            with torch.no_grad():
                next(trainer.module.parameters()).add_(1e-3)


class DiskFullAfterStep:
    def __init__(self, step: int):
        self.step = int(step)

    def after_step(self, trainer) -> None:
        if trainer.global_step != self.step:
            return
        logging.getLogger("csmvanet.train.trainer").warning(
            "disk full after step %d: writes into %s fail from now on (fault injection)", self.step, trainer.exp_dir)
        full_dir = Path(trainer.exp_dir).resolve()
        real_open = builtins.open

        def open_on_full_disk(file, mode="r", *args, **kwargs):
            if (isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+")
                    and full_dir in Path(file).resolve().parents):
                return real_open("/dev/full", mode.replace("x", "w"), *args, **kwargs)
            return real_open(file, mode, *args, **kwargs)

        builtins.open = io.open = open_on_full_disk
        for h in logging.getLogger("csmvanet").handlers:
            if isinstance(h, logging.FileHandler) and full_dir in Path(h.baseFilename).resolve().parents:
                h.stream = real_open("/dev/full", "a")


def main(argv: list[str]) -> int:
    hooks, rest = [], list(argv)
    for opt, kind in (("--kill_after_step", KillAfterStep), ("--desync_rank", DesyncRank),
                      ("--disk_full_after_step", DiskFullAfterStep)):
        if opt in rest:
            i = rest.index(opt)
            hooks.append(kind(rest[i + 1]))
            del rest[i:i + 2]
    from csmvanet.bin.train import main as train_main

    return train_main(rest, hooks=hooks)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
