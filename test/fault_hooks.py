"""Fault injection for the training tests, as Trainer hooks (``after_step(trainer)``).

``KillAfterStep(k)`` SIGKILLs the process right after global step k; ``DesyncRank(r)`` makes rank r's
weights differ from the others after the first step (to show that train.ddp_check_every catches
it). Run as a script, this is csmvanet-train with those hooks installed::

    python test/fault_hooks.py --kill_after_step 7 --config C --train_dir D ...
"""
from __future__ import annotations

import logging
import os
import signal
import sys

import torch


class KillAfterStep:
    def __init__(self, step: int):
        self.step = int(step)

    def after_step(self, trainer) -> None:
        if trainer.global_step != self.step:
            return
        if trainer.dist.is_main:
            logging.getLogger("csmvanet.trainer").warning(
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


def main(argv: list[str]) -> int:
    hooks, rest = [], list(argv)
    for opt, kind in (("--kill_after_step", KillAfterStep), ("--desync_rank", DesyncRank)):
        if opt in rest:
            i = rest.index(opt)
            hooks.append(kind(rest[i + 1]))
            del rest[i:i + 2]
    from csmvanet.bin.train import main as train_main

    return train_main(rest, hooks=hooks)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
