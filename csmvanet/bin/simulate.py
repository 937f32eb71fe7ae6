"""csmvanet-simulate: make a mixture spec from speech + noise lists, and/or mix a spec into wavs + a data dir."""
from __future__ import annotations

import argparse
import logging
import sys
import textwrap

from csmvanet.audio.io import AudioError
from csmvanet.bin import report_failures
from csmvanet.data.datadir import DataDirError, read_scp
from csmvanet.data.simulate import SpecError, ValueSpec, load_sources, make_specs, read_spec, simulate, write_spec

DESCRIPTION = textwrap.dedent("""\
    Simulate noisy mixtures, in two steps usable separately or together.

    1. Make a spec (--make_spec): speech scp + noise scp + SNR spec -> a tab-separated, human-readable
       mixture list (utt_id spk speech_id speech speech_offset noise_id noise_type noise noise_offset
       length snr_db speech_gain_db), deterministic by --seed.
         csmvanet-simulate --make_spec --speech_scp data/train_clean/wav.scp \\
             --noise_scp data/noise_train/wav.scp --snrs uniform:-10:15 --num 20000 --length 2 \\
             --seed 1 --spec data/train/spec.tsv
    2. Mix a spec (--data_dir): writes OUT_WAV_DIR/{noisy,clean[,noise]}/<utt>.wav and the data dir
       (wav.scp spk1.scp [noise1.scp] utt2spk spk2utt utt2noise utt2snr utt2num_samples mixtures.tsv).
         csmvanet-simulate --spec data/train/spec.tsv --out_wav_dir dump/train --data_dir data/train --nj 8
    Both at once: give the options of both.

    SNR specs: a list '-5,0,5' (one value drawn per mixture, or every value with --per_condition)
    or a range 'uniform:-10:15'. SNR = 10 log10(sum speech^2 / sum noise^2) over the whole mixture
    segment, exact to float precision; if the mixture peak exceeds --max_peak, mixture, speech and
    noise are scaled together (SNR unchanged; the factor is in mixtures.tsv). Output bytes do not
    depend on --nj. Failed mixtures are listed and left out; the exit status is then 1.
    """)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="csmvanet-simulate", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", required=True, help="mixture spec file (written by --make_spec, read when mixing)")
    p.add_argument("--fs", type=int, default=16000, help="sample rate of all audio (default 16000)")
    g = p.add_argument_group("making a spec")
    g.add_argument("--make_spec", action="store_true", help="write --spec from the lists below")
    g.add_argument("--speech_scp", help="speech list (key path)")
    g.add_argument("--noise_scp", help="noise list (key path)")
    g.add_argument("--speech_utt2spk", help="speaker of each speech key (default: the mixture id)")
    g.add_argument("--noise2type", help="noise type of each noise key, written to utt2noise (default: the key)")
    g.add_argument("--speech_lengths", help="utt2num_samples of the speech list (default: read the headers)")
    g.add_argument("--noise_lengths", help="utt2num_samples of the noise list (default: read the headers)")
    g.add_argument("--snrs", default="uniform:-10:15", help="SNR spec (default uniform:-10:15)")
    g.add_argument("--speech_gain_db", default="0", help="speech level change spec, dB (default 0)")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument("--num", type=int, help="number of mixtures (default: one per speech utterance)")
    mode.add_argument("--per_condition", type=int,
                      help="mixtures per (noise type, SNR) pair; needs an SNR list")
    g.add_argument("--length", type=float, default=0.0,
                   help="clip length in seconds; 0 = whole utterances (default 0)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    m = p.add_argument_group("mixing a spec")
    m.add_argument("--data_dir", help="data dir to write (mixing happens when this is given)")
    m.add_argument("--out_wav_dir", help="folder for noisy/, clean/ and noise/ wavs")
    m.add_argument("--nj", type=int, default=1, help="parallel processes (default 1)")
    m.add_argument("--subtype", choices=["PCM_16", "FLOAT"], default="PCM_16", help="wav sample format")
    m.add_argument("--audio_format", choices=["wav", "flac"], default="wav",
                   help="files of the mixtures (flac: PCM_16 only; default wav)")
    m.add_argument("--write_noise", action="store_true", help="also write the scaled noise (noise1.scp)")
    m.add_argument("--max_peak", type=float, default=0.99, help="peak limit of the mixture (default 0.99)")
    m.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _join_negative_values(argv: list[str]) -> list[str]:
    """Let '--snrs -5,0,5' through argparse (which would take '-5,0,5' for an option)."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in ("--snrs", "--speech_gain_db") and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv=None) -> int:
    """SIGTERM/SIGINT: temporary files removed, one line saying what was finished, exit 128 + signal."""
    from csmvanet.bin import run_interruptible

    return run_interruptible("csmvanet-simulate", lambda: _main(argv))


def _main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(_join_negative_values(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    log = logging.getLogger("csmvanet-simulate")
    if not args.make_spec and not args.data_dir:
        print("csmvanet-simulate: nothing to do: give --make_spec and/or --data_dir", file=sys.stderr)
        return 2
    if args.data_dir and not args.out_wav_dir:
        print("csmvanet-simulate: --data_dir needs --out_wav_dir", file=sys.stderr)
        return 2
    failed = False
    try:
        if args.make_spec:
            if not args.speech_scp or not args.noise_scp:
                print("csmvanet-simulate: --make_spec needs --speech_scp and --noise_scp", file=sys.stderr)
                return 2
            snrs = ValueSpec(args.snrs, "SNR")
            gains = ValueSpec(args.speech_gain_db, "speech gain")
            speech, e1 = load_sources(args.speech_scp, args.speech_lengths, args.fs, progress=not args.quiet)
            noises, e2 = load_sources(args.noise_scp, args.noise_lengths, args.fs, progress=not args.quiet)
            for e in e1 + e2:
                print(f"csmvanet-simulate: skipped: {e}", file=sys.stderr)
            failed = bool(e1 or e2)
            utt2spk = read_scp(args.speech_utt2spk) if args.speech_utt2spk else None
            noise2type = read_scp(args.noise2type) if args.noise2type else None
            length = int(round(args.length * args.fs)) if args.length > 0 else None
            specs = make_specs(speech, noises, snrs, seed=args.seed, num=args.num,
                               per_condition=args.per_condition, length=length, speech_gain_db=gains,
                               utt2spk=utt2spk, noise2type=noise2type)
            comments = [f"csmvanet mixture spec: seed={args.seed} snrs={args.snrs} "
                        f"speech_gain_db={args.speech_gain_db} length={args.length}s fs={args.fs}",
                        f"speech={args.speech_scp} noise={args.noise_scp} "
                        f"num={args.num} per_condition={args.per_condition}"]
            write_spec(args.spec, specs, comments)
            log.info("wrote %d mixture specs to %s", len(specs), args.spec)
        if args.data_dir:
            specs = read_spec(args.spec)
            failures = simulate(specs, args.out_wav_dir, args.data_dir, nj=args.nj, sr=args.fs,
                                subtype=args.subtype, write_noise=args.write_noise, max_peak=args.max_peak,
                                progress=not args.quiet, audio_format=args.audio_format)
            log.info("mixed %d of %d mixtures into %s (data dir %s)", len(specs) - len(failures), len(specs),
                     args.out_wav_dir, args.data_dir)
            if report_failures("csmvanet-simulate", failures, "mixture"):
                failed = True
    except (SpecError, DataDirError, AudioError, ValueError, OSError) as e:
        print(f"csmvanet-simulate: error: {e}", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
