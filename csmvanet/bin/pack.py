"""csmvanet-pack: pack a trained model into one file for csmvanet-enhance and Enhancer.from_pretrained.

  csmvanet-pack --exp_dir E --out model.pth [--checkpoint valid.loss.ave.pth]

The file holds the config (E/config.yaml text), the weights (default: the first present of
valid.loss.ave.pth, valid.*.ave.pth, valid.loss.best.pth, valid.*.best.pth, checkpoint_last.pth),
metadata (training data dirs, git hash, csmvanet/torch/numpy/python versions, sample rate, date,
scores, the inference settings of E/inference.yaml) and a sha256 over the weights, config and
metadata, verified when the file is loaded. It is a torch.save of tensors and plain Python types
only, so it loads with torch.load(weights_only=True). --checkpoint must be a file of E (weights of
another experiment would be labelled with E's config, scores and data); --out must not be one of
E's own files (its weights, checkpoints, config).
"""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="csmvanet-pack", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp_dir", required=True)
    p.add_argument("--out", required=True, help="packed model file to write (e.g. model.pth)")
    p.add_argument("--checkpoint", default=None, help="weights file name inside the experiment dir")
    args = p.parse_args(argv)
    from csmvanet.bin import write_one_file
    from csmvanet.experiment.packing import pack_model

    return write_one_file("csmvanet-pack", args.out,
                          lambda: pack_model(args.exp_dir, args.out, checkpoint=args.checkpoint))


if __name__ == "__main__":
    sys.exit(main())
