"""Shared by the recipe tests: a tiny training budget and running a recipe's run.sh in place."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

# csmvanet-train overrides: a tiny model and one short epoch
TINY_TRAIN_ARGS = ("--model.channels [8,16] --model.num_conformers 1 --model.heads 2 --model.ff_mult 2 "
                   "--model.conv_kernel 7 --model.dropout 0.0 --train.epochs 1 --train.batch_size 2 "
                   "--train.num_workers 0 --train.nbest 1 --train.plot false --train.tensorboard false")


def run_recipe(recipe: Path, *args, env=None, timeout=600) -> subprocess.CompletedProcess:
    """``./run.sh ARGS`` in the recipe folder, output captured."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(["./run.sh", *map(str, args)], cwd=recipe, env=e, capture_output=True, text=True,
                          timeout=timeout)
