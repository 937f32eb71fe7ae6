"""csmvanet-train: train CSM-VANet from a YAML config and Kaldi data dirs.

  csmvanet-train --config CONF --train_dir D --valid_dir D --exp_dir E [--resume] [--seed S]
                 [--ngpu N] [--key.sub value ...]

Any other ``--section.key value`` (or ``--section.key=value``) overrides the config, e.g.
``--train.epochs 10 --optim.lr 1e-4``. ``--ngpu 0`` trains on the CPU; ``--ngpu N > 1`` starts N
local processes (one per GPU); under torchrun (RANK/WORLD_SIZE in the environment) every process
joins the DDP group (nccl on CUDA, gloo on CPU).
"""
from __future__ import annotations

import argparse
import sys

from csmvanet.base.errors import TrainingError
from csmvanet.experiment.checkpoint import CheckpointError


def main(argv=None, hooks=()) -> int:
    """``hooks``: objects with ``after_step(trainer)`` handed to the Trainer (the tests inject faults so)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="csmvanet-train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="training config (YAML)")
    p.add_argument("--train_dir", required=True, help="training data dir (wav.scp, spk1.scp, vad_labels.scp)")
    p.add_argument("--valid_dir", required=True, help="validation data dir (never the test set)")
    p.add_argument("--exp_dir", required=True, help="experiment dir: checkpoints, logs, averaged model")
    p.add_argument("--resume", action="store_true", help="continue from EXP_DIR/checkpoint_last.pth")
    p.add_argument("--seed", type=int, default=None, help="overrides train.seed")
    p.add_argument("--ngpu", type=int, default=0, help="GPUs (0: CPU)")
    args, overrides = p.parse_known_args(argv)
    try:
        from csmvanet.experiment.resolved_config import read_training_config
        from csmvanet.train.trainer import train
    except ImportError as e:  # pragma: no cover - broken install
        print(f"csmvanet-train: {e}", file=sys.stderr)
        return 1
    try:
        cfg = read_training_config(args.config, overrides)
        train(cfg, args.train_dir, args.valid_dir, args.exp_dir, resume=args.resume, seed=args.seed,
              ngpu=args.ngpu, argv=argv, hooks=hooks)
    except (FileNotFoundError, ValueError, TrainingError, CheckpointError) as e:
        print(f"csmvanet-train: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
