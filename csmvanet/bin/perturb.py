"""csmvanet-perturb: the training data dir as ESPnet's enh.sh makes it -- speed-perturbed copies
(Kaldi's sp<f>- keys, soxr resampling, mixture/clean/noise consistent) and a length filter.

  csmvanet-perturb --src dump/train --dst dump/train_sp --fs 16000 [--speed_perturb_factors "0.9 1.0 1.1"]
                   [--min_wav_duration 0.1] [--max_wav_duration 20] [--audio_format wav|flac] [--nj N]

See csmvanet/data/train_set.py for the layout. The VAD labels of the new dir are not written here
(csmvanet-vad-labels on its spk1.scp; steps/perturb_train_set.sh does both).
"""
from __future__ import annotations

import argparse
import sys

from csmvanet.bin import seconds_arg


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="csmvanet-perturb", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", required=True, help="training data dir (wav.scp, spk1.scp[, noise1.scp], utt2spk ...)")
    p.add_argument("--dst", required=True, help="data dir to write ")
    p.add_argument("--audio_dir", default=None, help="audio of the copies (default: DST/data)")
    p.add_argument("--fs", type=int, required=True, help="sample rate of the audio (Hz)")
    p.add_argument("--speed_perturb_factors", default="1.0", help='e.g. "0.9 1.0 1.1" (default 1.0: none)')
    p.add_argument("--min_wav_duration", type=seconds_arg(positive=False), default=None, help="keep longer utterances only (s)")
    p.add_argument("--max_wav_duration", type=seconds_arg(positive=False), default=None, help="keep shorter utterances only (s)")
    p.add_argument("--audio_format", choices=("wav", "flac"), default="wav", help="audio of the copies")
    p.add_argument("--nj", type=int, default=1, help="parallel processes")
    return p


def main(argv=None) -> int:
    """SIGTERM/SIGINT: temporary files removed, one line saying what was finished, exit 128 + signal."""
    from csmvanet.bin import run_interruptible

    return run_interruptible("csmvanet-perturb", lambda: _main(argv))


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from csmvanet.audio.io import AudioError
    from csmvanet.bin import report_failures
    from csmvanet.data.datadir import DataDirError
    from csmvanet.data.train_set import make_train_dir, parse_factors

    prog = "csmvanet-perturb"
    try:
        factors = parse_factors(args.speed_perturb_factors)
        if not factors:
            raise ValueError("--speed_perturb_factors is empty (1.0: no perturbation)")
        n, failures = make_train_dir(args.src, args.dst, factors=factors, fs=args.fs,
                                     audio_format=args.audio_format, min_seconds=args.min_wav_duration,
                                     max_seconds=args.max_wav_duration, nj=args.nj,
                                     audio_dir=args.audio_dir)
    except (DataDirError, AudioError, OSError, ValueError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    print(f"{prog}: wrote {args.dst}: {n} utterances (factors {' '.join(f'{f:g}' for f in factors)}"
          f"{'' if args.min_wav_duration is None else f'; > {args.min_wav_duration:g} s'}"
          f"{'' if args.max_wav_duration is None else f'; < {args.max_wav_duration:g} s'})")
    return report_failures(prog, failures, "utterance")


if __name__ == "__main__":
    sys.exit(main())
