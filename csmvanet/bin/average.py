"""csmvanet-average: (re-)average the N best epochs of an experiment dir by a validation criterion.

  csmvanet-average --exp_dir E [--criterion valid.loss] [--nbest N]

Reads E/history.json, ranks the epochs (valid.loss: lower is better; valid.pesq / valid.stoi:
higher), and writes E/<criterion>.best.txt (ranking), E/<criterion>.best.pth and
E/<criterion>.ave.pth (weights averaged over the N best epochs whose epoch<N>.pth still exist).
"""
from __future__ import annotations

import argparse
import sys

from csmvanet.base.errors import TrainingError
from csmvanet.experiment.checkpoint import CheckpointError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="csmvanet-average", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp_dir", required=True)
    p.add_argument("--criterion", default="valid.loss", help="valid.loss (min), valid.pesq, valid.stoi (max), ...")
    p.add_argument("--nbest", type=int, default=None, help="default: train.nbest of E/config.yaml")
    args = p.parse_args(argv)
    from csmvanet.experiment.resolved_config import average

    try:
        chosen = average(args.exp_dir, args.criterion, args.nbest)
    except (CheckpointError, TrainingError, ValueError, FileNotFoundError) as e:
        print(f"csmvanet-average: error: {e}", file=sys.stderr)
        return 1
    print(f"{args.criterion}: averaged epochs {' '.join(str(e) for e, _ in chosen)} "
          f"-> {args.exp_dir}/{args.criterion}.ave.pth")
    return 0


if __name__ == "__main__":
    sys.exit(main())
