"""csmvanet-vad-labels: energy-based VAD frame labels (int32, one per STFT frame) from clean speech."""
from __future__ import annotations

import argparse
import logging
import sys

from csmvanet.audio.stft import STFTConfig
from csmvanet.base.config import load_config
from csmvanet.base.outdirs import output_dir_problem
from csmvanet.base.process_pool import WorkerDied
from csmvanet.bin import report_failures
from csmvanet.data.datadir import DataDirError, read_scp, write_frame_shift
from csmvanet.data.vad import configs_from_dict, label_scp, write_label_ark


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="csmvanet-vad-labels",
        description="Write OUT_DIR/vad_labels.ark + vad_labels.scp: kaldiio int32 vectors of 0/1 speech labels, one per "
                    "STFT frame of the model (num_samples // hop + 1), computed from clean speech by frame "
                    "energy with hangover (see csmvanet.data.vad), and OUT_DIR/frame_shift (seconds per frame: hop / sample rate, 0.00625 for hop 100 at 16 kHz). Utterances that fail are listed and left out; "
                    "the exit status is then 1.")
    p.add_argument("--scp", required=True, help="clean speech list, e.g. data/x/spk1.scp")
    p.add_argument("--out_dir", required=True, help="where vad_labels.ark, vad_labels.scp and frame_shift go, e.g. data/x")
    p.add_argument("--config", help="YAML: a recipe config with stft: and vad_labels: sections, or a plain "
                                    "vad_labels section (defaults when omitted)")
    p.add_argument("--stft_config", help="YAML whose stft: section sets the frames (e.g. the training config); "
                                         "overrides the stft: section of --config")
    p.add_argument("--nj", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    """SIGTERM/SIGINT: temporary files removed, one line saying what was finished, exit 128 + signal."""
    from csmvanet.bin import run_interruptible

    return run_interruptible("csmvanet-vad-labels", lambda: _main(argv))


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    problem = output_dir_problem(args.out_dir)   # before the labels are computed
    if problem:
        print(f"csmvanet-vad-labels: error: --out_dir {args.out_dir}: {problem}", file=sys.stderr)
        return 2
    try:
        stft_cfg, vad_cfg = configs_from_dict(load_config(args.config) if args.config else None)
        if args.stft_config:
            stft_cfg = STFTConfig.from_dict(load_config(args.stft_config).get("stft"))
        entries = read_scp(args.scp)
    except (DataDirError, ValueError, FileNotFoundError) as e:
        print(f"csmvanet-vad-labels: error: {e}", file=sys.stderr)
        return 1
    failures: list[str] = []
    labels = label_scp(entries, stft_cfg, vad_cfg, failures, nj=args.nj, progress=not args.quiet,
                         list_name=args.scp)
    try:
        ark, scp = write_label_ark(args.out_dir, labels)
        write_frame_shift(args.out_dir, stft_cfg.hop_length, stft_cfg.sample_rate)
    except WorkerDied as e:
        print(f"csmvanet-vad-labels: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"csmvanet-vad-labels: error: cannot write to {args.out_dir}: {e}", file=sys.stderr)
        return 1
    logging.getLogger("csmvanet-vad-labels").info(
        "labelled %d of %d utterances -> %s (stft %s, vad_labels %s)", len(entries) - len(failures), len(entries), scp,
        stft_cfg.to_dict(), vad_cfg.to_dict())
    return report_failures("csmvanet-vad-labels", failures, "utterance")


if __name__ == "__main__":
    sys.exit(main())
