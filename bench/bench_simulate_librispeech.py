"""Benchmark: stage 2 of egs/librispeech_demand for the training set, on a corpus shaped like the real one.

Builds (in a temporary folder unless --workdir) LibriSpeech-like speech (--num_speech 16 kHz FLAC files
of 10-16 s, LibriSpeech's typical length) and DEMAND-like noise (the 15 training environments, one
channel each, --noise_seconds long: 300 s = the real 5 minutes), then runs the recipe's own stage-2
commands for --num training clips of 2 s with SNR uniform in [-10, 15] dB:

  1. csmvanet-simulate --make_spec   (the readable mixture list)
  2. csmvanet-simulate --data_dir --nj N   (mixing: 16-bit noisy + clean wavs and the data dir)
  3. csmvanet-vad-labels --nj N   (VAD labels from the clean clips)

and prints, per step and in total: wall seconds, clips/s, the extrapolation to --target clips (the
paper's 200,000; all steps are linear in the clip count: a fixed spec-making start-up cost aside,
the rest is per clip), the peak RSS of the largest process (ru_maxrss of the children), and the disk
used per clip. The mixture list for all --target clips is also made (measured, not extrapolated),
since it is the one thing held in memory whose size grows with the clip count.

    tools/venv/bin/python bench/bench_simulate_librispeech.py --num 5000 --nj 2
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRAIN_ENVS = ("DKITCHEN", "DLIVING", "DWASHING", "NFIELD", "NPARK", "OHALLWAY", "OMEETING", "OOFFICE", "PRESTO",
              "SCAFE", "SPSQUARE", "STRAFFIC", "TBUS", "TCAR", "TMETRO")


def build_corpus(root: Path, num_speech: int, noise_seconds: float) -> tuple[Path, Path, Path]:
    from csmvanet.audio import synthetic
    from csmvanet.audio.io import write_audio
    from csmvanet.data.datadir import write_scp

    rng = np.random.default_rng(0)
    # A pool of synthetic talkers; each FLAC file is a different rotation/concatenation of them.
    pool = [synthetic.speech_like(int(rng.integers(1 << 30)), 8.0)[0] for _ in range(24)]
    wav, u2s, lengths = {}, {}, {}
    for i in range(num_speech):
        spk, chap = 100 + i // 50, 1000 + i // 10
        seconds = float(rng.uniform(10, 16))
        n = int(seconds * 16000)
        a, b = pool[int(rng.integers(len(pool)))], pool[int(rng.integers(len(pool)))]
        x = np.roll(np.concatenate([a, b]), int(rng.integers(len(a))))[:n]
        utt = f"{spk}-{chap}-{i % 10:04d}"
        p = root / "LibriSpeech" / "train-clean-100" / str(spk) / str(chap) / f"{utt}.flac"
        write_audio(p, x, 16000)
        wav[utt], u2s[utt], lengths[utt] = str(p), str(spk), n
    speech = root / "data" / "speech_train"
    write_scp(speech / "wav.scp", wav)
    write_scp(speech / "utt2spk", u2s)
    write_scp(speech / "utt2num_samples", lengths)
    kinds = ("pink", "brown", "white", "car", "hum")
    nw, nt, nl = {}, {}, {}
    for e, env in enumerate(TRAIN_ENVS):
        x = synthetic.noise(kinds[e % len(kinds)], e, noise_seconds, 16000)
        p = root / "DEMAND" / env / "ch01.wav"
        write_audio(p, x, 16000)
        nw[f"{env}_ch01"], nt[f"{env}_ch01"], nl[f"{env}_ch01"] = str(p), env, len(x)
    noise = root / "data" / "noise_train"
    write_scp(noise / "wav.scp", nw)
    write_scp(noise / "noise2type", nt)
    write_scp(noise / "utt2num_samples", nl)
    return speech, noise, root / "dump" / "train"


_WRAP = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
         "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
         "sys.exit(r.returncode)")


def timed(cmd: list[str], env: dict) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB of the largest process the command started, itself included)."""
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _WRAP, *cmd], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        sys.exit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-2000:]}")
    rss = [int(ln.split()[1]) for ln in res.stderr.splitlines() if ln.startswith("MAXRSS ")]
    return wall, rss[-1]


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--num", type=int, default=5000, help="training clips (default 5000)")
    ap.add_argument("--nj", type=int, default=2, help="processes (default 2)")
    ap.add_argument("--target", type=int, default=200000, help="clip count to extrapolate to (default 200000)")
    ap.add_argument("--num_speech", type=int, default=400, help="speech files (default 400)")
    ap.add_argument("--noise_seconds", type=float, default=300.0, help="length of each noise file (default 300)")
    ap.add_argument("--workdir", help="keep the files here (default: a temporary folder)")
    args = ap.parse_args()

    from csmvanet import __version__

    git = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                         cwd=ROOT).stdout.strip() or "?"
    print(f"csmvanet {__version__} (git {git}), numpy {np.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}")
    print(f"num={args.num} nj={args.nj} num_speech={args.num_speech} noise_seconds={args.noise_seconds} "
          f"(15 training environments x 1 channel); clips of 2 s, SNR uniform:-10:15, seed 1")

    tmp = tempfile.TemporaryDirectory() if args.workdir is None else None
    root = Path(args.workdir or tmp.name)
    t0 = time.perf_counter()
    speech, noise, dump = build_corpus(root, args.num_speech, args.noise_seconds)
    print(f"corpus built in {time.perf_counter() - t0:.1f} s: {du(root / 'LibriSpeech') / 1e6:.0f} MB speech (flac), "
          f"{du(root / 'DEMAND') / 1e6:.0f} MB noise")

    venv = ROOT / "tools" / "venv" / "bin"
    env = {**os.environ, "PATH": f"{venv}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1", "LC_ALL": "C"}
    spec = dump / "spec.tsv"
    steps = [
        ("make spec", ["csmvanet-simulate", "--quiet", "--make_spec", "--spec", str(spec), "--seed", "1",
                       "--speech_scp", str(speech / "wav.scp"), "--speech_lengths", str(speech / "utt2num_samples"),
                       "--speech_utt2spk", str(speech / "utt2spk"), "--noise_scp", str(noise / "wav.scp"),
                       "--noise_lengths", str(noise / "utt2num_samples"), "--noise2type", str(noise / "noise2type"),
                       "--snrs", "uniform:-10:15", "--num", str(args.num), "--length", "2"]),
        ("mix", ["csmvanet-simulate", "--quiet", "--spec", str(spec), "--data_dir", str(dump), "--out_wav_dir",
                 str(dump / "wav"), "--nj", str(args.nj)]),
        ("VAD labels", ["csmvanet-vad-labels", "--quiet", "--nj", str(args.nj), "--scp", str(dump / "spk1.scp"),
                        "--out_dir", str(dump)]),
    ]
    total, peak = 0.0, 0
    print(f"\n| step | wall s | clips/s | extrapolated to {args.target:,} clips | peak RSS (largest process) |")
    print("|---|---:|---:|---:|---:|")
    for name, cmd in steps:
        wall, rss = timed(cmd, env)
        total += wall
        peak = max(peak, rss)
        ext = wall * args.target / args.num
        print(f"| {name} | {wall:.1f} | {args.num / wall:.0f} | {ext / 3600:.2f} h | {rss / 1024:.0f} MiB |")
    ext = total * args.target / args.num
    # The mixture list itself at full size: the one part whose memory grows with the clip count.
    big = ["--num" if c == "--num" else c for c in steps[0][1]]
    big[big.index("--num") + 1] = str(args.target)
    big[big.index("--spec") + 1] = str(dump / "spec_target.tsv")
    wall_big, rss_big = timed(big, env)
    print(f"| total | {total:.1f} | {args.num / total:.1f} | {ext / 3600:.2f} h | {peak / 1024:.0f} MiB |")
    print(f"| make spec, all {args.target:,} clips (measured) | {wall_big:.1f} | {args.target / wall_big:.0f} | "
          f"{wall_big / 3600:.2f} h | {rss_big / 1024:.0f} MiB |")
    (dump / "spec_target.tsv").unlink()
    size = du(dump)
    print(f"\ndisk: {size / 1e6:.0f} MB for {args.num} clips ({size / args.num / 1e3:.0f} kB/clip) -> "
          f"{size / args.num * args.target / 1e9:.1f} GB for {args.target:,}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
