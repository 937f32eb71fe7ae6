#!/usr/bin/env python3
"""LibriSpeech + DEMAND -> speech lists per subset and noise lists per environment (stage 1).

Speech (``<out>/speech_<name>/``): wav.scp (flac paths), utt2spk, spk2utt, utt2num_samples, text,
for ``speech_train`` (the --train_sets together), ``speech_dev`` (--dev_set) and ``speech_test``
(--test_set). The LibriSpeech root holds ``LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<NNNN>.flac``.

Noise (``<out>/noise_train/``, ``<out>/noise_test/``): wav.scp with one entry per environment and
channel (key ``<ENV>_ch<NN>``), noise2type (key -> environment; the noise type of the mixtures),
utt2num_samples. The test environments (--test_noises, default PCAFETER PSTATION NRIVER) go to
noise_test, every other DEMAND environment to noise_train; the two lists never share an environment.
DEMAND channels used: --channels (default 01: the first microphone of the array, one mono signal per
environment; the 16 channels of an environment are near copies of the same scene).

Every file's header is read: speech must be 16 kHz mono. A DEMAND channel at another rate (SCAFE
exists only at 48 kHz upstream; stage 0 resamples the download, a copy of one's own may not be) is
resampled to --fs as stage 0 does (soxr, 16-bit, csmvanet.audio.io.resample_scp) into
``<out>/demand_<fs>/<ENV>/chNN.wav``, with a line saying so, and the noise list points there; the
corpus is left as it is. Problems are listed, naming the file, and the exit status is then 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import soundfile as sf

from csmvanet.data.datadir import utt2spk_to_spk2utt, write_scp

DEMAND_ENVS = ("DKITCHEN", "DLIVING", "DWASHING", "NFIELD", "NPARK", "NRIVER", "OHALLWAY", "OMEETING",
               "OOFFICE", "PCAFETER", "PRESTO", "PSTATION", "SCAFE", "SPSQUARE", "STRAFFIC", "TBUS", "TCAR",
               "TMETRO")
FULL_COUNTS = {"dev-clean": 2703, "test-clean": 2620, "train-clean-100": 28539, "train-clean-360": 104014,
               "train-other-500": 148688}


def header(path: Path, fs: int, problems: list[str]) -> int | None:
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as e:
        problems.append(f"{path}: cannot read audio ({str(e).strip().splitlines()[-1]})")
        return None
    if info.samplerate != fs:
        problems.append(f"{path}: sample rate {info.samplerate} Hz, expected {fs} Hz")
        return None
    if info.channels != 1:
        problems.append(f"{path}: {info.channels} channels, expected mono")
        return None
    if info.frames <= 0:
        problems.append(f"{path}: no samples")
        return None
    return int(info.frames)


def speech_list(base: Path, subsets: list[str], out: Path, fs: int, problems: list[str]) -> int:
    wav, utt2spk, lengths, text = {}, {}, {}, {}
    for subset in subsets:
        d = base / subset
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: no such folder; is {base.parent} the LibriSpeech root (LIBRISPEECH in "
                                    f"db.sh, --librispeech_root)? Stage 0 downloads {subset}.")
        n = 0
        for trans in sorted(d.glob("*/*/*.trans.txt")):
            for line in trans.read_text(errors="replace").splitlines():
                parts = line.split(maxsplit=1)
                if parts:
                    text[parts[0]] = parts[1] if len(parts) > 1 else "<empty>"
        for flac in sorted(d.glob("*/*/*.flac")):
            utt = flac.stem
            spk, chapter = flac.parent.parent.name, flac.parent.name
            if not utt.startswith(f"{spk}-{chapter}-"):
                problems.append(f"{flac}: the name does not start with '{spk}-{chapter}-'")
                continue
            if utt in wav:
                problems.append(f"{flac}: utterance {utt} also in {wav[utt]}")
                continue
            length = header(flac, fs, problems)
            if length is None:
                continue
            wav[utt], utt2spk[utt], lengths[utt] = str(flac.resolve()), spk, length
            n += 1
        if n == 0:
            raise FileNotFoundError(f"{d}: no <spk>/<chapter>/*.flac files")
        if subset in FULL_COUNTS and n != FULL_COUNTS[subset]:
            print(f"data_prep.py: note: {subset}: {n} utterances (the full subset has {FULL_COUNTS[subset]})",
                  file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    write_scp(out / "wav.scp", wav)
    write_scp(out / "utt2spk", utt2spk)
    write_scp(out / "spk2utt", utt2spk_to_spk2utt(dict(sorted(utt2spk.items(), key=lambda kv: kv[0].encode()))))
    write_scp(out / "utt2num_samples", lengths)
    missing_text = [u for u in wav if u not in text]
    if missing_text:
        print(f"data_prep.py: note: {len(missing_text)} utterance(s) of {out} without transcript (e.g. "
              f"{missing_text[0]}); no text file", file=sys.stderr)
        (out / "text").unlink(missing_ok=True)
    else:
        write_scp(out / "text", {u: text[u] for u in wav})
    print(f"data_prep.py: {out}: {len(wav)} utterances, {len(set(utt2spk.values()))} speakers "
          f"({' '.join(subsets)}), {sum(lengths.values()) / fs / 3600:.2f} h")
    return len(wav)


def other_rate(path: Path, env: str, ch: str, fs: int, resampled: Path, problems: list[str]) -> Path | None:
    """path itself when it is at fs Hz (or unreadable: header() reports it); else its copy resampled
    to fs Hz, resampled/<env>/ch<NN>.wav (None if resampling failed)."""
    try:
        rate = sf.info(str(path)).samplerate
    except (sf.LibsndfileError, RuntimeError):
        return path
    if rate == fs:
        return path
    from csmvanet.audio.io import resample_scp

    out = resampled / env / f"ch{ch}.wav"
    _, _, failures, _ = resample_scp({f"ch{ch}": str(path)}, out.parent, fs, progress=False)
    if failures:
        problems.extend(f"{path}: cannot resample to {fs} Hz: {f}" for f in failures)
        return None
    print(f"data_prep.py: {path} is at {rate} Hz: resampled to {fs} Hz (soxr, as stage 0 does) -> {out}")
    return out


def noise_list(root: Path, envs: list[str], channels: list[str], out: Path, fs: int, problems: list[str]) -> None:
    wav, types, lengths = {}, {}, {}
    for env in envs:
        for ch in channels:
            p = root / env / f"ch{ch}.wav"
            if not p.is_file():
                problems.append(f"{p}: missing (DEMAND environment {env}, channel {ch}; DEMAND in db.sh, "
                                f"--demand_root; stage 0 downloads it)")
                continue
            p = other_rate(p, env, ch, fs, out.parent / f"demand_{fs}", problems)
            if p is None:
                continue
            length = header(p, fs, problems)
            if length is None:
                continue
            key = f"{env}_ch{ch}"
            wav[key], types[key], lengths[key] = str(p.resolve()), env, length
    out.mkdir(parents=True, exist_ok=True)
    write_scp(out / "wav.scp", wav)
    write_scp(out / "noise2type", types)
    write_scp(out / "utt2num_samples", lengths)
    for name in ("utt2spk", "spk2utt"):  # each recording its own speaker: a data dir Kaldi's validator accepts
        write_scp(out / name, {k: k for k in wav})
    print(f"data_prep.py: {out}: {len(wav)} noise files, environments {' '.join(sorted(set(types.values())))}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("librispeech_root", type=Path, help="folder holding LibriSpeech/ (LIBRISPEECH in db.sh)")
    ap.add_argument("demand_root", type=Path, help="folder holding <ENV>/chNN.wav (DEMAND in db.sh)")
    ap.add_argument("out", type=Path, help="data folder")
    ap.add_argument("--train_sets", default="train-clean-100")
    ap.add_argument("--dev_set", default="dev-clean")
    ap.add_argument("--test_set", default="test-clean")
    ap.add_argument("--test_noises", default="PCAFETER PSTATION NRIVER")
    ap.add_argument("--channels", default="01", help="DEMAND channels, e.g. '01' or '01 02 03' (default 01)")
    ap.add_argument("--fs", type=int, default=16000)
    args = ap.parse_args(argv)

    test_envs = args.test_noises.split()
    unknown = [e for e in test_envs if e not in DEMAND_ENVS]
    if unknown or not test_envs:
        print(f"data_prep.py: error: unknown test noise(s) {unknown}; DEMAND has {' '.join(DEMAND_ENVS)}",
              file=sys.stderr)
        return 1
    channels = []
    for c in args.channels.split():
        if not c.isdigit() or not 1 <= int(c) <= 16:
            print(f"data_prep.py: error: DEMAND channel {c!r} is not in 1..16", file=sys.stderr)
            return 1
        channels.append(f"{int(c):02d}")
    train_envs = [e for e in DEMAND_ENVS if e not in test_envs]
    problems: list[str] = []
    base = args.librispeech_root / "LibriSpeech"
    try:
        speech_list(base, args.train_sets.split(), args.out / "speech_train", args.fs, problems)
        speech_list(base, [args.dev_set], args.out / "speech_dev", args.fs, problems)
        speech_list(base, [args.test_set], args.out / "speech_test", args.fs, problems)
    except FileNotFoundError as e:
        print(f"data_prep.py: error: {e}", file=sys.stderr)
        return 1
    noise_list(args.demand_root, train_envs, channels, args.out / "noise_train", args.fs, problems)
    noise_list(args.demand_root, test_envs, channels, args.out / "noise_test", args.fs, problems)
    for p in problems:
        print(f"data_prep.py: problem: {p}", file=sys.stderr)
    if problems:
        print(f"data_prep.py: {len(problems)} problem(s); the lists hold the usable files only", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
