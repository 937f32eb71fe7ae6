"""Benchmark: mixture simulation speed (mixtures/s) for 2 s clips, and peak memory.

Builds a small synthetic corpus in a temporary folder (speech utterances of 3-6 s, a few noise
files of 60 s), makes a spec of --num clips of --length seconds, mixes it with --nj processes
(16-bit wavs, noise not written, as the recipes do) and prints mixtures/s, the time per mixture,
and the peak RSS of the main process and of the largest worker.

    tools/venv/bin/python bench/bench_simulate.py --num 2000 --nj 2
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=2000, help="mixtures (default 2000)")
    p.add_argument("--nj", type=int, default=2, help="processes (default 2)")
    p.add_argument("--length", type=float, default=2.0, help="clip seconds (default 2)")
    p.add_argument("--num_speech", type=int, default=200, help="speech utterances in the corpus")
    p.add_argument("--workdir", help="keep the files here (default: a temporary folder)")
    args = p.parse_args()

    from csmvanet import __version__, synthetic
    from csmvanet.audio.io import write_audio
    from csmvanet.data.simulate import load_sources, make_specs, simulate, write_spec

    try:
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        git = "?"
    print(f"csmvanet {__version__} (git {git or '?'}), numpy {np.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} cpus; num={args.num} nj={args.nj} length={args.length}s")

    tmp = tempfile.TemporaryDirectory() if args.workdir is None else None
    root = Path(args.workdir or tmp.name)
    corpus = root / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    with open(corpus / "speech.scp", "w") as f:
        for i in range(args.num_speech):
            wave, _ = synthetic.speech_like(int(rng.integers(1 << 30)), float(rng.uniform(3, 6)))
            write_audio(corpus / f"s{i:04d}.wav", wave, 16000)
            f.write(f"s{i:04d} {corpus}/s{i:04d}.wav\n")
    with open(corpus / "noise.scp", "w") as f:
        for j, kind in enumerate(("pink", "car", "clatter", "hum")):
            write_audio(corpus / f"n_{kind}.wav", synthetic.noise(kind, j, 60.0), 16000)
            f.write(f"{kind} {corpus}/n_{kind}.wav\n")
    print(f"corpus: {args.num_speech} speech files, 4 noise files of 60 s, made in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    speech, _ = load_sources(corpus / "speech.scp", sr=16000)
    noises, _ = load_sources(corpus / "noise.scp", sr=16000)
    specs = make_specs(speech, noises, "uniform:-10:15", seed=1, num=args.num, length=int(args.length * 16000))
    write_spec(root / "spec.tsv", specs)
    t_spec = time.perf_counter() - t0
    print(f"make spec: {len(specs)} mixtures in {t_spec:.2f} s ({len(specs) / t_spec:.0f} specs/s)")

    t0 = time.perf_counter()
    failures = simulate(specs, root / "wav", root / "data", nj=args.nj, progress=False)
    t_mix = time.perf_counter() - t0
    assert not failures, failures[:3]
    rate = len(specs) / t_mix
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    audio_s = len(specs) * args.length
    print(f"mix: {len(specs)} x {args.length} s clips with nj={args.nj} in {t_mix:.2f} s: "
          f"{rate:.1f} mixtures/s, {1000 / rate:.2f} ms/mixture, {audio_s / t_mix:.0f}x real time")
    print(f"peak RSS: main {self_rss:.0f} MiB, largest worker {child_rss:.0f} MiB")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
