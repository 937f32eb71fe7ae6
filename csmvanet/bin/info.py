"""csmvanet-info: parameter counts and feature shapes of a model config."""
from __future__ import annotations

import argparse
import sys

from csmvanet.base.config import load_config
from csmvanet.nets.summary import describe


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True, help="a training config (YAML) with model/stft sections")
    p.add_argument("--seconds", type=float, default=2.0, help="input length for the shapes shown")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config)
        print(describe(cfg, args.seconds))
    except (FileNotFoundError, ValueError) as e:
        print(f"csmvanet-info: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
