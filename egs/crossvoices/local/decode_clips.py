#!/usr/bin/env python3
"""Stage 0 of egs/crossvoices: the recordings of one unpacked new package -> 16 kHz mono 16-bit wav.

    local/decode_clips.py [--nj 2] <unpacked package> <corpus> <package>

Writes <corpus>/speech/<spk>/<clip>.wav and <corpus>/noise/<package>/<rec>.wav (ids: local/clip_sources.py),
then the stamp <corpus>/.done.<package> holding <unpacked package>/.done (the .deb's sha256). Decoding is
egs/voiceprompts' (its local/decode.py: soundfile, channels averaged, soxr to 16 kHz, clipped to the
16-bit range). Failed files are listed and the stamp is not written (exit 1).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parents[1] / "voiceprompts" / "local"))
from clip_sources import sources  # noqa: E402
from decode import SR, _batch, _Serial  # noqa: E402  (egs/voiceprompts/local/decode.py)

from csmvanet.base.atomic_files import atomic_write_text  # noqa: E402


def main() -> int:
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
        items = sources(args.package, args.unpacked)
    except ValueError as e:
        print(f"{sys.argv[0]}: {e}", file=sys.stderr)
        return 1
    items = [it for it in items if it[2].stat().st_size > 0]
    if not items:
        print(f"{sys.argv[0]}: {args.unpacked}: no recordings of {args.package} found", file=sys.stderr)
        return 1
    jobs, folders = [], set()
    for kind, rid, f in items:
        if kind == "speech":
            spk, clip = rid.split("/")
            folder, name = args.corpus / "speech" / spk, clip
        else:
            folder, name = args.corpus / "noise" / args.package, rid
        folders.add(folder)
        jobs.append((f, folder / f"{name}.wav"))
    stamp = args.corpus / f".done.{args.package}"
    stamp.unlink(missing_ok=True)
    for folder in folders:            # nothing of an earlier, other version of the package survives
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    batches = [jobs[i:i + 16] for i in range(0, len(jobs), 16)]
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


if __name__ == "__main__":
    sys.exit(main())
