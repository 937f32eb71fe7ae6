"""Repair of a data dir in place (utils/fix_data_dir.sh).

Sorts every file (C locale), drops duplicate keys (the first line wins) and lines without value,
keeps only the utterances present in every per-utterance file (with segments: whose recording is in
every per-recording file), whose utt2dur / utt2num_frames value is one positive number and whose
speaker is in spk2gender and cmvn.scp when those exist (as Kaldi's fix_data_dir.sh), keeps the
recordings that kept segments use and the speakers that kept utterances have, and rebuilds spk2utt.
Lines that stay are written back byte for byte (tabs and double spaces inside values kept); names
given in ``utt_extra_files`` that do not exist are ignored, as Kaldi does. It refuses (DataDirError,
nothing changed) when no utterance would remain, or when more than ``max_drop_fraction`` of them
would go. The files it rewrites are
first copied to ``.backup/``, or, when that holds an earlier backup, to the first free
``.backup.N/``: no backup is ever overwritten. A dir that needs no change is left alone.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable

from csmvanet.base.atomic_files import atomic_write_text
from csmvanet.data.datadir import (DataDirError, _scan, per_recording_files, per_speaker_files, per_utterance_files,
                                   raw_lines)
from csmvanet.data.dir_ops import Tables, _file_texts
from csmvanet.data.durations import positive_number

DEFAULT_MAX_DROP = 0.5


class FixResult:
    """What :func:`fix_data_dir` did: utterance counts before/after and why utterances went."""

    def __init__(self, before: int, kept: int, reasons: list[str], backup: Path | None, changed: bool):
        self.before = before
        self.kept = kept
        self.reasons = reasons
        self.backup = backup
        self.changed = changed

    @property
    def removed(self) -> int:
        return self.before - self.kept


def _lenient(path: Path, reasons: list[str]) -> dict[str, str]:
    table: dict[str, str] = {}
    dups = empties = 0
    for _, key, value in _scan(path):
        if not value and path.name != "text":
            empties += 1
        elif key in table:
            dups += 1
        else:
            table[key] = value
    if dups:
        reasons.append(f"{path}: dropped {dups} duplicate line(s) (kept the first of each key)")
    if empties:
        reasons.append(f"{path}: dropped {empties} line(s) without a value")
    return table


def _read(path: Path) -> str:
    with open(path, errors="surrogateescape", newline="\n") as f:
        return f.read()


def _next_backup(d: Path) -> Path:
    cand = d / ".backup"
    n = 0
    while cand.exists() and (not cand.is_dir() or any(cand.iterdir())):
        n += 1
        cand = d / f".backup.{n}"
    return cand


def fix_data_dir(data_dir: str | Path, *, backup: bool = True, utt_extra_files: Iterable[str] = (),
                 max_drop_fraction: float = DEFAULT_MAX_DROP) -> FixResult:
    d = Path(data_dir)
    if not d.is_dir():
        raise DataDirError(f"{d}: no such data dir")
    extra = [name for name in utt_extra_files if (d / name).is_file()]  # absent ones: ignored (Kaldi)
    reasons: list[str] = []
    t = Tables(d)
    for p in per_utterance_files(d, extra):
        t.utt[p.name] = _lenient(p, reasons)
    for p in per_recording_files(d):
        t.reco[p.name] = _lenient(p, reasons)
    for p in per_speaker_files(d):
        t.spk[p.name] = _lenient(p, reasons)
    for p in per_utterance_files(d, extra) + per_recording_files(d) + per_speaker_files(d):
        t.raw[p.name] = raw_lines(p)
    if (d / "frame_shift").is_file():
        t.copied["frame_shift"] = (d / "frame_shift").read_text(errors="surrogateescape")
    if "utt2spk" not in t.utt and (d / "spk2utt").is_file():
        t.utt["utt2spk"] = {u: s for _, s, us in _scan(d / "spk2utt") for u in us.split()}
        reasons.append(f"{d / 'utt2spk'}: rebuilt from spk2utt")
    if not t.utt:
        raise DataDirError(f"{d}: no per-utterance files (wav.scp, utt2spk, segments, ...); nothing changed")

    all_keys = set().union(*(tb.keys() for tb in t.utt.values()))
    keep = set(all_keys)
    for name, table in t.utt.items():
        lacking = keep - table.keys()
        if lacking:
            reasons.append(f"{d / name}: lacks {len(lacking)} utterance(s) of other files, e.g. "
                           f"'{sorted(lacking)[0]}'")
        keep &= table.keys()
    for name in ("utt2dur", "utt2num_frames"):  # Kaldi keeps an utterance only with a positive value
        bad = {u for u in keep if not positive_number(t.utt.get(name, {}).get(u, "1"))}
        if bad:
            reasons.append(f"{d / name}: {len(bad)} utterance(s) without one positive number, e.g. "
                           f"'{sorted(bad)[0]}'")
        keep -= bad
    if "utt2spk" in t.utt:
        for name, table in t.spk.items():  # Kaldi drops the speakers a speaker file lacks
            if name not in ("spk2gender", "cmvn.scp"):
                continue
            gone = {u for u in keep if t.utt["utt2spk"].get(u) not in table}
            if gone:
                reasons.append(f"{d / name}: lacks the speaker of {len(gone)} utterance(s), e.g. "
                               f"'{sorted(gone)[0]}' (speaker '{t.utt['utt2spk'][sorted(gone)[0]]}')")
            keep -= gone
    if t.has_segments:
        for name, table in t.reco.items():
            gone = {u for u in keep if t.recording_of(u) not in table}
            if gone:
                reasons.append(f"{d / 'segments'}: {len(gone)} utterance(s) whose recording is not in "
                               f"{d / name}, e.g. '{sorted(gone)[0]}'")
            keep -= gone
    before = len(all_keys)
    if not keep:
        raise DataDirError(f"{d}: fixing would leave no utterance (of {before}); nothing changed"
                           + (": " + "; ".join(reasons) if reasons else ""))
    dropped = (before - len(keep)) / before
    if dropped > max_drop_fraction:
        raise DataDirError(f"{d}: fixing would drop {before - len(keep)} of {before} utterances "
                           f"({dropped:.0%} > --max-drop-fraction {max_drop_fraction:g}); nothing changed: "
                           + "; ".join(reasons))

    texts = _file_texts(t.select(keep))
    changed = [n for n, text in texts.items() if not (d / n).is_file() or _read(d / n) != text]
    if not changed:
        return FixResult(before, len(keep), reasons, None, False)
    backup_dir = None
    if backup:
        backup_dir = _next_backup(d)
        backup_dir.mkdir(exist_ok=True)
        for name in changed:
            if (d / name).is_file():
                shutil.copy2(d / name, backup_dir / name)
    for name in changed:
        atomic_write_text(d / name, texts[name])
    return FixResult(before, len(keep), reasons, backup_dir, True)
