#!/usr/bin/env python3
"""Stage 0 of egs/mini: write the embedded corpus (no download, no system package).

The corpus is synthetic and deterministic (csmvanet.audio.synthetic): speech-like utterances of several
"speakers" (each a fixed f0 range, vocal-tract factor, speaking rate and level) with real pauses,
and several noise types. Layout, in the spirit of the real corpora:

    <corpus>/speech/<spk>/<spk>_<NNN>.wav      16 kHz, 16-bit mono, 2.5-4.5 s
    <corpus>/speech/<spk>/<spk>_<NNN>.vad      the true activity: "<start_s> <end_s>" per phrase
    <corpus>/noise/<part>/<kind>.wav           part = train or test: independent recordings
    <corpus>/README.txt                        what is where, and the seed

Speakers s01-s06 are for training, s07 for validation, s08-s09 for test; test noises are drawn with
other seeds than training noises, so test speakers, sentences and noise segments are all unseen.
Files are written atomically and a finished corpus is marked by <corpus>/.done (re-running with the
same arguments does nothing; with other arguments the corpus is rebuilt).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from csmvanet.audio.io import write_audio
from csmvanet.audio.synthetic import noise, random_speaker, speech_like
from csmvanet.base.atomic_files import atomic_write_text

SR = 16000
SPEAKERS = {"train": [f"s{i:02d}" for i in range(1, 7)], "valid": ["s07"], "test": ["s08", "s09"]}
NOISES = ("white", "pink", "babble", "hum", "car", "clatter")


def runs(active: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", help="output folder")
    p.add_argument("--utts_per_speaker", type=int, default=20)
    p.add_argument("--noise_seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=20240)
    args = p.parse_args()
    root = Path(args.corpus)
    stamp = json.dumps(vars(args), sort_keys=True)
    done = root / ".done"
    if done.is_file() and done.read_text() == stamp:
        print(f"{root}: corpus already complete, nothing to do")
        return 0
    if root.exists():
        shutil.rmtree(root)  # incomplete or made with other arguments: nothing in it is trusted
    speakers = [s for part in SPEAKERS.values() for s in part]
    for k, spk in enumerate(speakers):
        rng = np.random.default_rng([args.seed, 1, k])
        voice = random_speaker(rng, sex="f" if k % 2 else "m")
        for u in range(args.utts_per_speaker):
            seconds = float(rng.uniform(2.5, 4.5))
            wave, active = speech_like(rng, seconds, SR, speaker=voice)
            stem = root / "speech" / spk / f"{spk}_{u + 1:03d}"
            write_audio(stem.with_suffix(".wav"), wave, SR)
            atomic_write_text(stem.with_suffix(".vad"),
                              "".join(f"{a / SR:.4f} {b / SR:.4f}\n" for a, b in runs(active)))
    for j, part in enumerate(("train", "test")):
        for k, kind in enumerate(NOISES):
            x = noise(kind, np.random.default_rng([args.seed, 2, j, k]), args.noise_seconds, SR)
            write_audio(root / "noise" / part / f"{kind}.wav", x, SR)
    atomic_write_text(root / "README.txt",
                      "Synthetic corpus of egs/mini (csmvanet.audio.synthetic), made by local/make_corpus.py\n"
                      f"arguments: {stamp}\nspeakers: {json.dumps(SPEAKERS)}\nnoises: {', '.join(NOISES)}\n")
    atomic_write_text(done, stamp)
    n = len(speakers) * args.utts_per_speaker
    print(f"{root}: {n} utterances of {len(speakers)} speakers, {len(NOISES)} noise types x 2 parts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
