#!/usr/bin/env python3
"""Stage 0 of egs/voiceprompts: the recordings of one unpacked package -> 16 kHz mono 16-bit wav.

    local/decode.py [--nj 2] <unpacked package> <corpus> <package>

Writes <corpus>/speech/<spk>/<prompt>.wav (speech packages) or <corpus>/noise/<package>/<rec>.wav
(noise packages), see local/packages.py for the ids, then the stamp <corpus>/.done.<package> holding
the content of <unpacked package>/.done (the .deb's sha256), so a re-extracted package is decoded
again and a decoded one is skipped. G.722 (.g722) is decoded by ffmpeg, ogg and wav by soundfile;
channels are averaged, other rates are resampled with soxr (csmvanet.audio.io.resample). Failed files
are listed and the stamp is not written (exit 1); empty files (asterisk-core-sounds-ru-g722 has one)
are skipped.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from packages import sources  # noqa: E402

from csmvanet.audio.io import AudioError, read_audio, resample, write_audio  # noqa: E402
from csmvanet.base.atomic_files import atomic_write_text  # noqa: E402

SR = 16000
FFMPEG_HINT = "ffmpeg is needed to decode the G.722 prompts of asterisk-core-sounds-*: apt-get install ffmpeg"


def decode_g722(jobs: list[tuple[Path, Path]]) -> list[str]:
    """G.722 files -> 16 kHz 16-bit wav, one ffmpeg call for the whole batch (starting ffmpeg costs far
    more than decoding a prompt); each output is written under a temporary name, then renamed."""
    args, maps, tmps = [], [], []
    for i, (src, dst) in enumerate(jobs):
        tmp = dst.parent / f".tmp.{dst.name}"
        args += ["-f", "g722", "-i", str(src)]
        maps += ["-map", f"{i}:a", "-ar", str(SR), "-ac", "1", "-c:a", "pcm_s16le", str(tmp)]
        tmps.append(tmp)
    proc = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args, *maps], capture_output=True)
    if proc.returncode != 0:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        if len(jobs) > 1:  # find the bad file(s)
            return [e for job in jobs for e in decode_g722([job])]
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        return [f"{jobs[0][0]}: ffmpeg failed ({msg[-1] if msg else 'status %d' % proc.returncode})"]
    errors = []
    for (src, dst), tmp in zip(jobs, tmps):
        if tmp.is_file() and sf.info(str(tmp)).frames > 0:
            tmp.rename(dst)
        else:
            tmp.unlink(missing_ok=True)
            errors.append(f"{src}: no samples decoded")
    return errors


def load_16k_mono(path: Path) -> np.ndarray:
    wave, sr = read_audio(path, always_2d=True)
    x = resample(wave.mean(axis=1), sr, SR)
    return np.clip(x, -1.0, 32767 / 32768)  # soxr can overshoot full scale: never let samples wrap


def _batch(jobs: list[tuple[Path, Path]]) -> list[str]:
    if jobs[0][0].suffix == ".g722":
        return decode_g722(jobs)
    errors = []
    for src, dst in jobs:
        try:
            x = load_16k_mono(src)
            if x.size == 0:
                raise AudioError(f"{src}: no samples")
            write_audio(dst, x, SR)
        except (AudioError, OSError, RuntimeError) as e:
            errors.append(str(e))
    return errors


def main(find_sources=sources) -> int:
    """The command line; ``find_sources(package, unpacked)`` lists the recordings (another recipe passes its own)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("unpacked", type=Path)
    p.add_argument("corpus", type=Path)
    p.add_argument("package")
    p.add_argument("--nj", type=int, default=2)
    args = p.parse_args()
    stamp_src = args.unpacked / ".done"
    if not stamp_src.is_file():
        print(f"{sys.argv[0]}: {args.unpacked} is not a complete unpacked package (no .done)", file=sys.stderr)
        return 1
    try:
        items = find_sources(args.package, args.unpacked)
    except ValueError as e:
        print(f"{sys.argv[0]}: {e}", file=sys.stderr)
        return 1
    if not items:
        print(f"{sys.argv[0]}: {args.unpacked}: no recordings of {args.package} found", file=sys.stderr)
        return 1
    if any(f.suffix == ".g722" for _, _, f in items) and shutil.which("ffmpeg") is None:
        print(f"{sys.argv[0]}: ERROR: {FFMPEG_HINT}", file=sys.stderr)
        return 1
    empty = [f for _, _, f in items if f.stat().st_size == 0]
    for f in empty:
        print(f"{sys.argv[0]}: {f}: empty file in the package, skipped")
    jobs, folders = [], set()
    for kind, rid, f in items:
        if f in empty:
            continue
        if kind == "speech":
            spk, prompt = rid.split("/")
            folder = args.corpus / "speech" / spk
            dst = folder / f"{prompt}.wav"
        else:
            folder = args.corpus / "noise" / args.package
            dst = folder / f"{rid}.wav"
        folders.add(folder)
        jobs.append((f, dst))
    stamp = args.corpus / f".done.{args.package}"
    stamp.unlink(missing_ok=True)
    for folder in folders:            # nothing of an earlier, other version of the package survives
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    g722 = [j for j in jobs if j[0].suffix == ".g722"]
    other = [j for j in jobs if j[0].suffix != ".g722"]
    batches = [g722[i:i + 50] for i in range(0, len(g722), 50)] + [other[i:i + 8] for i in range(0, len(other), 8)]
    with mp.get_context("spawn").Pool(max(1, args.nj)) if args.nj > 1 else _Serial() as pool:
        errors = [e for errs in pool.imap(_batch, batches) for e in errs]
    if errors:
        print(f"{sys.argv[0]}: {len(errors)} of {len(jobs)} files of {args.package} failed:", file=sys.stderr)
        for e in errors[:20]:
            print(f"  {e}", file=sys.stderr)
        return 1
    atomic_write_text(stamp, stamp_src.read_text())
    print(f"{sys.argv[0]}: {args.package}: {len(jobs)} recordings -> {args.corpus} ({SR} Hz mono)")
    return 0


class _Serial:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def imap(fn, items):
        return map(fn, items)


if __name__ == "__main__":
    sys.exit(main())
