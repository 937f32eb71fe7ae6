"""csmvanet-resample: resample the audio of an scp list into a folder at one sample rate, writing a new scp."""
from __future__ import annotations

import argparse
import logging
import sys

from csmvanet.audio.io import resample_scp
from csmvanet.base.outdirs import output_dir_problem
from csmvanet.bin import report_failures
from csmvanet.data.datadir import DataDirError, read_scp, write_scp


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="csmvanet-resample",
        description="Resample every entry of SCP (paths, `cmd |` pipes or x.ark:offset) with soxr (very high "
                    "quality) to --fs and write OUT_DIR/<key>.wav (atomically: a file is either complete or "
                    "absent), then OUT_SCP (`key path`, sorted). Samples beyond the 16-bit range after "
                    "resampling are clipped and the keys reported. Entries that fail are listed on stderr "
                    "and left out of OUT_SCP; the exit status is then 1.",
        epilog="example: csmvanet-resample --scp data/train/wav.scp --fs 16000 --out_dir dump/train/wav/noisy "
               "--out_scp dump/train/wav.scp --utt2num_samples dump/train/utt2num_samples --nj 8")
    p.add_argument("--scp", required=True, help="input list: key value")
    p.add_argument("--fs", type=int, required=True, help="target sample rate (Hz)")
    p.add_argument("--out_dir", required=True, help="folder for the resampled <key>.wav files")
    p.add_argument("--out_scp", required=True, help="output list: key path of the resampled file")
    p.add_argument("--utt2num_samples", help="also write the output lengths (samples) here")
    p.add_argument("--subtype", choices=["PCM_16", "FLOAT"], default="PCM_16", help="wav sample format")
    p.add_argument("--audio_format", choices=["wav", "flac"], default="wav",
                   help="output files: <key>.wav, or <key>.flac (PCM_16 only)")
    p.add_argument("--nj", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    """SIGTERM/SIGINT: temporary files removed, one line saying what was finished, exit 128 + signal."""
    from csmvanet.bin import run_interruptible

    return run_interruptible("csmvanet-resample", lambda: _main(argv))


def _main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    log = logging.getLogger("csmvanet-resample")
    problem = output_dir_problem(args.out_dir)
    if problem:
        print(f"csmvanet-resample: error: --out_dir {args.out_dir}: {problem}", file=sys.stderr)
        return 2
    try:
        entries = read_scp(args.scp)
        paths, lengths, failures, clipped = resample_scp(entries, args.out_dir, args.fs, nj=args.nj,
                                                         subtype=args.subtype, progress=not args.quiet,
                                                         list_name=args.scp, audio_format=args.audio_format)
        write_scp(args.out_scp, paths)
        if args.utt2num_samples:
            write_scp(args.utt2num_samples, lengths)
    except (DataDirError, ValueError, OSError) as e:
        print(f"csmvanet-resample: error: {e}", file=sys.stderr)
        return 1
    if clipped:
        log.warning("%d file(s) exceeded the 16-bit range after resampling and were clipped: %s%s",
                    len(clipped), " ".join(clipped[:10]), " ..." if len(clipped) > 10 else "")
    log.info("resampled %d of %d entries of %s to %d Hz -> %s", len(paths), len(entries), args.scp, args.fs,
             args.out_scp)
    return report_failures("csmvanet-resample", failures, "entry")


if __name__ == "__main__":
    sys.exit(main())
