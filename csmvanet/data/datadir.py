"""Kaldi-style data directories: reading and writing key-value lists (scp, utt2spk, ...)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping

from csmvanet.base.atomic_files import atomic_write_text


class DataDirError(ValueError):
    """A malformed data-dir file; the message names the file, the line or key, and the problem."""


def c_order(text: str) -> bytes:
    """Sort key of C locale order (bytes); keys read with surrogateescape give back their bytes."""
    return text.encode(errors="surrogateescape")


def read_scp(path: str | Path, *, allow_empty_value: bool = False) -> dict[str, str]:
    """Read ``key value...`` lines into an insertion-ordered dict. Duplicate keys are an error."""
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: no such file")
    out: dict[str, str] = {}
    with open(path, errors="surrogateescape", newline="\n") as f:  # non-UTF-8 bytes pass through (Kaldi)
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            key = parts[0]
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                raise DataDirError(f"{path}:{n}: key {key!r} has no value")
            if key in out:
                raise DataDirError(f"{path}:{n}: duplicate key {key!r}")
            out[key] = value
    return out


def write_scp(path: str | Path, items: Mapping[str, object] | Iterable[tuple[str, object]], *,
              sort: bool = True) -> None:
    """Write ``key value`` lines atomically, sorted by key (C locale order) unless told otherwise."""
    pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
    if sort:
        pairs.sort(key=lambda kv: c_order(kv[0]))
    for k, _ in pairs:
        if not k or any(c.isspace() for c in k):
            raise DataDirError(f"{path}: invalid key {k!r} (empty or with white space)")
    try:
        atomic_write_text(path, "".join(f"{k} {v}\n" for k, v in pairs))
    except OSError as e:   # a full disk, ...: name the list, not the temporary file (or nothing)
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None


# ---------------------------------------------------------------------------------------------
# Layout: which files of a data dir are keyed by utterance, recording or speaker
# ---------------------------------------------------------------------------------------------

VAD_LABELS = "vad_labels.scp"  # int32 0/1 per STFT frame; its frame shift is in FRAME_SHIFT
OLD_VAD_LABELS = "vad.scp"     # the name before: read, with a notice (Kaldi's vad.scp means floats)
FRAME_SHIFT = "frame_shift"    # seconds per label frame, as Kaldi keeps it
SPEAKER_FILES = ("spk2gender", "spk2warp", "cmvn.scp")  # keyed by speaker (spk2utt is rebuilt)
RECORDING_FILES = ("reco2file_and_channel", "reco2dur", "reco2num_samples")
COPIED_FILES = (FRAME_SHIFT,)  # plain values, copied as they are


def is_audio_list(name: str) -> bool:
    """wav.scp, spkN.scp, noiseN.scp: the audio lists (keyed by recording when there are segments)."""
    stem = name[:-4] if name.endswith(".scp") else ""
    return stem == "wav" or any(stem.startswith(p) and stem[len(p):].isdigit() for p in ("spk", "noise"))


def per_utterance_files(data_dir: str | Path, extra: Iterable[str] = ()) -> list[Path]:
    """The files keyed by utterance: ``*.scp``, ``utt2*``, ``text``, ``segments`` and the names in
    ``extra`` (Kaldi's --utt-extra-files), sorted by name. With ``segments``, the audio lists
    (wav.scp, spkN.scp, noiseN.scp) and reco2* are keyed by recording and not among them (without
    segments a recording is an utterance, as in Kaldi, so reco2file_and_channel is); speaker files
    (cmvn.scp, spk2gender) never are."""
    d = Path(data_dir)
    segments = (d / "segments").is_file()
    extra = set(extra)
    files = [p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")
             and (p.name in extra or p.suffix == ".scp" or p.name.startswith("utt2")
                  or p.name in ("text", "segments") or p.name in RECORDING_FILES)
             and p.name not in SPEAKER_FILES
             and not (segments and (is_audio_list(p.name) or p.name in RECORDING_FILES))]
    return sorted(files, key=lambda p: c_order(p.name))


def per_recording_files(data_dir: str | Path) -> list[Path]:
    """The files keyed by recording: with ``segments``, the audio lists and reco2*; else none."""
    d = Path(data_dir)
    if not (d / "segments").is_file():
        return []
    files = [p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")
             and (is_audio_list(p.name) or p.name in RECORDING_FILES)]
    return sorted(files, key=lambda p: c_order(p.name))


def per_speaker_files(data_dir: str | Path) -> list[Path]:
    d = Path(data_dir)
    return [d / n for n in SPEAKER_FILES if (d / n).is_file()]


def vad_labels_file(data_dir: str | Path) -> tuple[Path | None, str | None]:
    """(the VAD label list of a data dir or None, a one-line notice when it has the old name)."""
    d = Path(data_dir)
    if (d / VAD_LABELS).is_file():
        return d / VAD_LABELS, None
    if (d / OLD_VAD_LABELS).is_file():
        return d / OLD_VAD_LABELS, (f"{d / OLD_VAD_LABELS}: read as VAD labels (int32 per STFT frame) under "
                                    f"the old name; rename it to {VAD_LABELS} (Kaldi's vad.scp means "
                                    "something else)")
    return None, None


def write_frame_shift(data_dir: str | Path, hop_length: int, sample_rate: int) -> None:
    """``frame_shift``: seconds per label frame (0.00625 for hop 100 at 16 kHz)."""
    atomic_write_text(Path(data_dir) / FRAME_SHIFT, f"{hop_length / sample_rate:g}\n")


def read_segments(path: str | Path) -> dict[str, tuple[str, float, float]]:
    """Kaldi ``segments``: ``utt reco start end`` (seconds; end -1 = to the end) -> {utt: (reco, start,
    end)}. Duplicate utterances, bad or non-finite numbers (inf, nan) and end <= start are errors
    naming the line."""
    path = Path(path)
    out: dict[str, tuple[str, float, float]] = {}
    for n, utt, value in _scan(path):
        parts = value.split()
        try:
            if len(parts) != 3:
                raise ValueError
            start, end = float(parts[1]), float(parts[2])
        except ValueError:
            raise DataDirError(f"{path}:{n}: expected 'utt reco start end', got '{utt} {value}'") from None
        if not (math.isfinite(start) and math.isfinite(end)):
            raise DataDirError(f"{path}:{n}: utterance '{utt}': times must be finite numbers of seconds, got "
                               f"start={parts[1]} end={parts[2]}")
        if start < 0 or (end != -1 and end <= start):
            raise DataDirError(f"{path}:{n}: utterance '{utt}': bad times start={parts[1]} end={parts[2]}")
        if utt in out:
            raise DataDirError(f"{path}:{n}: duplicate key '{utt}'")
        out[utt] = (parts[0], start, end)
    return out


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, str]:
    """{utt: spk} -> {spk: "utt1 utt2 ..."}: speakers sorted (C locale), utterances in input order."""
    groups: dict[str, list[str]] = {}
    for utt, spk in utt2spk.items():
        groups.setdefault(spk, []).append(utt)
    return {s: " ".join(groups[s]) for s in sorted(groups, key=c_order)}


def raw_lines(path: str | Path) -> dict[str, str]:
    """{key: its whole line as read, without the newline} (the first line of each key): what a tool
    that only filters or sorts writes back, byte for byte, as Kaldi's filter_scp.pl and sort do."""
    out: dict[str, str] = {}
    with open(path, errors="surrogateescape", newline="\n") as f:
        for line in f:
            parts = line.split(maxsplit=1)
            if parts and parts[0] not in out:
                out[parts[0]] = line[:-1] if line.endswith("\n") else line
    return out


def _scan(path: Path):
    """Lines of a key-value file as (line number, key, value), without judging order or duplicates."""
    rows = []
    with open(path, errors="surrogateescape", newline="\n") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split(maxsplit=1)
            value = parts[1].strip() if len(parts) > 1 else ""
            rows.append((n, parts[0], value))
    return rows
