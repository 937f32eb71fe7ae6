"""Kaldi-style data directories: reading and writing key-value lists (scp, utt2spk, ...)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from csmvanet.fileio import atomic_write_text


class DataDirError(ValueError):
    """A malformed data-dir file; the message names the file, the line or key, and the problem."""


def read_scp(path: str | Path, *, allow_empty_value: bool = False) -> dict[str, str]:
    """Read ``key value...`` lines into an insertion-ordered dict. Duplicate keys are an error."""
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: no such file")
    out: dict[str, str] = {}
    with open(path) as f:
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
        pairs.sort(key=lambda kv: kv[0].encode())
    for k, _ in pairs:
        if not k or any(c.isspace() for c in k):
            raise DataDirError(f"{path}: invalid key {k!r} (empty or with white space)")
    atomic_write_text(path, "".join(f"{k} {v}\n" for k, v in pairs))


# ---------------------------------------------------------------------------------------------
# Validation and repair of whole data dirs
# ---------------------------------------------------------------------------------------------

def per_utterance_files(data_dir: str | Path) -> list[Path]:
    """The files of a data dir keyed by utterance: ``*.scp``, ``utt2*`` and ``text``, sorted by name."""
    d = Path(data_dir)
    files = [p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")
             and (p.suffix == ".scp" or p.name.startswith("utt2") or p.name == "text")]
    return sorted(files, key=lambda p: p.name.encode())


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, str]:
    """{utt: spk} -> {spk: "utt1 utt2 ..."}: speakers sorted (C locale), utterances in input order."""
    groups: dict[str, list[str]] = {}
    for utt, spk in utt2spk.items():
        groups.setdefault(spk, []).append(utt)
    return {s: " ".join(groups[s]) for s in sorted(groups, key=str.encode)}


def _scan(path: Path):
    """Lines of a key-value file as (line number, key, value), without judging order or duplicates."""
    rows = []
    with open(path, errors="surrogateescape") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split(maxsplit=1)
            value = parts[1].strip() if len(parts) > 1 else ""
            rows.append((n, parts[0], value))
    return rows


def _is_audio_list(name: str) -> bool:
    stem = name[:-4] if name.endswith(".scp") else ""
    return stem == "wav" or any(stem.startswith(p) and stem[len(p):].isdigit() for p in ("spk", "noise"))


def _scp_source_kind(value: str) -> str:
    """'pipe' for ``cmd |``, 'ark' for ``file.ark:offset``, else 'path'."""
    from csmvanet.audio import _is_ark_entry

    v = value.strip()
    if v.endswith("|"):
        return "pipe"
    return "ark" if _is_ark_entry(v) else "path"


class _Problems:
    """Problems found, at most ``cap`` shown per kind (the rest counted)."""

    def __init__(self, cap: int = 10):
        self.cap = cap
        self.shown: list[str] = []
        self.counts: dict[str, int] = {}

    def add(self, kind: str, message: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.counts[kind] <= self.cap:
            self.shown.append(message)

    def messages(self) -> list[str]:
        more = [f"... and {n - self.cap} more problem(s) of the kind '{kind}'"
                for kind, n in self.counts.items() if n > self.cap]
        return self.shown + more


class ValidationResult:
    """What :func:`validate_data_dir` found: ``problems`` (empty when valid) and a ``summary``."""

    def __init__(self, data_dir: Path, problems: list[str], summary: str, num_utts: int):
        self.data_dir = data_dir
        self.problems = problems
        self.summary = summary
        self.num_utts = num_utts

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_data_dir(data_dir: str | Path, *, fs: int | None = None, check_audio: bool = True,
                      check_pipes: bool = False, stft_cfg=None, required: Iterable[str] = ("wav.scp",),
                      max_per_kind: int = 10) -> ValidationResult:
    """Check a Kaldi-style data dir; every problem message names the file and the key.

    Checks: required files present; every key-value file (per-utterance files and spk2utt) sorted in C
    locale, without duplicate keys or keys without value; the same keys in every per-utterance file
    as in wav.scp; spk2utt consistent with utt2spk; audio entries of wav.scp / spkN.scp / noiseN.scp
    exist (plain paths and ark files always; pipes only with ``check_pipes``, by running them), and,
    unless ``check_audio`` is off, are readable, mono, at the sample rate ``fs`` (if given), at the same
    rate and length in wav.scp and spk1.scp, and as long as utt2num_samples says; VAD labels (vad.scp,
    int32 vectors of 0/1) have ``stft_cfg.num_frames(num_samples)`` frames (default STFTConfig()).
    """
    from csmvanet.audio import AudioError, audio_info

    d = Path(data_dir)
    P = _Problems(max_per_kind)
    if not d.is_dir():
        return ValidationResult(d, [f"{d}: no such data dir"], "", 0)
    for name in required:
        if not (d / name).is_file():
            P.add("missing file", f"{d / name}: required file is missing")

    files = per_utterance_files(d)
    tables: dict[str, dict[str, str]] = {}
    for path in files + ([d / "spk2utt"] if (d / "spk2utt").is_file() else []):
        rows = _scan(path)
        table: dict[str, str] = {}
        prev = None
        for n, key, value in rows:
            if not value and path.name != "text":
                P.add(f"empty value {path.name}", f"{path}:{n}: key '{key}' has no value")
            if key in table:
                P.add(f"duplicate {path.name}", f"{path}:{n}: duplicate key '{key}'")
                continue
            if prev is not None and key.encode() < prev.encode():
                P.add(f"unsorted {path.name}", f"{path}:{n}: not sorted (C locale): key '{key}' comes "
                      f"after '{prev}' (run utils/fix_data_dir.sh)")
            prev = key
            table[key] = value
        tables[path.name] = table

    wav = tables.get("wav.scp")
    # 1. The same utterances everywhere.
    if wav is not None:
        for name, table in tables.items():
            if name in ("wav.scp", "spk2utt"):
                continue
            for key in wav:
                if key not in table:
                    P.add(f"missing keys {name}", f"{d / name}: key '{key}' is missing (it is in {d / 'wav.scp'})")
            for key in table:
                if key not in wav:
                    P.add(f"extra keys {name}", f"{d / name}: key '{key}' is not in {d / 'wav.scp'}")

    # 2. Speakers.
    utt2spk, spk2utt = tables.get("utt2spk"), tables.get("spk2utt")
    if utt2spk is not None and spk2utt is None:
        P.add("spk2utt", f"{d / 'spk2utt'}: missing while utt2spk exists "
              f"(utils/utt2spk_to_spk2utt.pl {d / 'utt2spk'} > {d / 'spk2utt'})")
    if spk2utt is not None and utt2spk is None:
        P.add("spk2utt", f"{d / 'utt2spk'}: missing while spk2utt exists")
    if utt2spk is not None and spk2utt is not None:
        want = {s: set(u.split()) for s, u in utt2spk_to_spk2utt(utt2spk).items()}
        have = {s: u.split() for s, u in spk2utt.items()}
        for spk, utts in have.items():
            if spk not in want:
                P.add("spk2utt", f"{d / 'spk2utt'}: speaker '{spk}' has no utterance in utt2spk")
                continue
            for u in utts:
                if u not in want[spk]:
                    P.add("spk2utt", f"{d / 'spk2utt'}: key '{spk}' lists utterance '{u}', but utt2spk "
                          f"gives it speaker '{utt2spk.get(u, '(none)')}'")
            if len(set(utts)) != len(utts):
                P.add("spk2utt", f"{d / 'spk2utt'}: key '{spk}' lists an utterance twice")
        for spk, utts in want.items():
            missing = utts - set(have.get(spk, []))
            if spk not in have:
                P.add("spk2utt", f"{d / 'spk2utt'}: speaker '{spk}' of utt2spk is missing")
            elif missing:
                P.add("spk2utt", f"{d / 'spk2utt'}: key '{spk}' lacks utterance '{sorted(missing)[0]}' "
                      f"(utt2spk gives it this speaker)")

    # 3. Audio.
    num_samples: dict[str, int] = {}
    info: dict[str, dict[str, tuple[int, int, int]]] = {}
    pipes_skipped = 0
    audio_lists = [p.name for p in files if _is_audio_list(p.name)]
    for name in audio_lists:
        table = tables[name]
        info[name] = {}
        for key, value in table.items():
            kind = _scp_source_kind(value)
            if kind == "pipe" and not check_pipes:
                pipes_skipped += 1
                continue
            if kind == "path" and not Path(value).is_file():
                P.add(f"audio {name}", f"{d / name}: key '{key}': audio file {value} does not exist")
                continue
            if kind == "ark" and not Path(value.rpartition(":")[0]).is_file():
                P.add(f"audio {name}", f"{d / name}: key '{key}': ark file {value.rpartition(':')[0]} "
                      "does not exist")
                continue
            if not check_audio and kind != "pipe":
                continue
            try:
                sr, frames, channels = audio_info(value)
            except AudioError as e:
                P.add(f"audio {name}", f"{d / name}: key '{key}': {e}")
                continue
            info[name][key] = (sr, frames, channels)
            if channels != 1:
                P.add(f"channels {name}", f"{d / name}: key '{key}': {channels} channels, mono expected")
            if fs is not None and sr != fs:
                P.add(f"rate {name}", f"{d / name}: key '{key}': sample rate {sr} Hz, expected {fs} Hz")
    noisy, clean = info.get("wav.scp", {}), info.get("spk1.scp", {})
    for key in noisy.keys() & clean.keys():
        (sr1, n1, _), (sr2, n2, _) = noisy[key], clean[key]
        if sr1 != sr2:
            P.add("rate mismatch", f"{d / 'spk1.scp'}: key '{key}': sample rate {sr2} Hz, but {sr1} Hz in "
                  f"{d / 'wav.scp'}")
        elif n1 != n2:
            P.add("length mismatch", f"{d / 'spk1.scp'}: key '{key}': {n2} samples, but {n1} in "
                  f"{d / 'wav.scp'}")

    # 4. utt2num_samples.
    if "utt2num_samples" in tables:
        for key, value in tables["utt2num_samples"].items():
            try:
                n = int(value)
                if n < 0:
                    raise ValueError
            except ValueError:
                P.add("utt2num_samples", f"{d / 'utt2num_samples'}: key '{key}': '{value}' is not a "
                      "sample count")
                continue
            num_samples[key] = n
            if key in noisy and noisy[key][1] != n:
                P.add("utt2num_samples", f"{d / 'utt2num_samples'}: key '{key}': {n} samples, but the "
                      f"audio in {d / 'wav.scp'} has {noisy[key][1]}")
    for key, (_, n, _) in noisy.items():
        num_samples.setdefault(key, n)
    for key, (_, n, _) in clean.items():
        num_samples.setdefault(key, n)

    # 5. VAD labels.
    vad_checked = 0
    if "vad.scp" in tables:
        import kaldiio
        import numpy as np

        if stft_cfg is None:
            from csmvanet.features import STFTConfig  # imports torch: only when there are VAD labels

            stft_cfg = STFTConfig()
        cfg = stft_cfg
        for key, value in tables["vad.scp"].items():
            try:
                labels = np.asarray(kaldiio.load_mat(value))
            except Exception as e:  # kaldiio raises many types
                P.add("vad", f"{d / 'vad.scp'}: key '{key}': cannot read {value} ({type(e).__name__}: {e})")
                continue
            vad_checked += 1
            if labels.ndim != 1 or labels.dtype != np.int32:
                P.add("vad", f"{d / 'vad.scp'}: key '{key}': expected an int32 vector, got {labels.dtype} "
                      f"of shape {labels.shape}")
                continue
            if labels.size and not np.isin(labels, (0, 1)).all():
                P.add("vad", f"{d / 'vad.scp'}: key '{key}': labels other than 0/1")
            if key in num_samples:
                want = cfg.num_frames(num_samples[key])
                if labels.size != want:
                    P.add("vad length", f"{d / 'vad.scp'}: key '{key}': {labels.size} frames, expected "
                          f"{want} for {num_samples[key]} samples (hop {cfg.hop_length})")

    n_utts = len(wav) if wav is not None else 0
    parts = [f"{n_utts} utterances"]
    if utt2spk is not None:
        parts.append(f"{len(set(utt2spk.values()))} speakers")
    parts.append("files: " + " ".join(sorted(tables, key=str.encode)))
    if audio_lists:
        if check_audio:
            rates = sorted({v[0] for t in info.values() for v in t.values()})
            parts.append("audio read" + (f" ({'/'.join(map(str, rates))} Hz)" if rates else ""))
        else:
            parts.append("audio files present (not read)")
    if pipes_skipped:
        parts.append(f"{pipes_skipped} pipe entries not run (use --check-pipes)")
    if vad_checked:
        parts.append(f"{vad_checked} VAD label vectors checked")
    summary = f"{d}: valid data dir: " + ", ".join(parts)
    return ValidationResult(d, P.messages(), summary, n_utts)


class FixResult:
    """What :func:`fix_data_dir` did: utterance counts before/after and why utterances went."""

    def __init__(self, before: int, kept: int, reasons: list[str], backup: Path | None):
        self.before = before
        self.kept = kept
        self.reasons = reasons
        self.backup = backup

    @property
    def removed(self) -> int:
        return self.before - self.kept


def fix_data_dir(data_dir: str | Path, *, backup: bool = True) -> FixResult:
    """Repair a data dir in place: sort every per-utterance file (C locale), drop duplicate keys (the
    first line wins) and lines without a value, keep only the utterances present in every
    per-utterance file, and rebuild spk2utt from utt2spk (utt2spk from spk2utt if only that exists).
    The originals are copied to ``<data_dir>/.backup/`` first. Every file is replaced atomically.
    """
    import shutil

    d = Path(data_dir)
    if not (d / "wav.scp").is_file():
        raise DataDirError(f"{d / 'wav.scp'}: no such file")
    files = per_utterance_files(d)
    reasons: list[str] = []
    tables: dict[str, dict[str, str]] = {}
    for path in files:
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
        tables[path.name] = table
    if "utt2spk" not in tables and (d / "spk2utt").is_file():
        tables["utt2spk"] = {u: s for _, s, us in _scan(d / "spk2utt") for u in us.split()}
        reasons.append(f"{d / 'utt2spk'}: rebuilt from spk2utt")

    all_keys = set().union(*(t.keys() for t in tables.values()))
    keep = set(all_keys)
    for name, table in tables.items():
        lacking = keep - table.keys()
        if lacking:
            reasons.append(f"{d / name}: lacks {len(lacking)} utterance(s) of other files, e.g. "
                           f"'{sorted(lacking)[0]}'")
        keep &= table.keys()
    before = len(all_keys)

    backup_dir = None
    if backup:
        backup_dir = d / ".backup"
        backup_dir.mkdir(exist_ok=True)
        for path in files + ([d / "spk2utt"] if (d / "spk2utt").is_file() else []):
            shutil.copy2(path, backup_dir / path.name)
    for name, table in tables.items():
        write_scp(d / name, {k: v for k, v in table.items() if k in keep})
    if "utt2spk" in tables:
        kept_u2s = {k: v for k, v in sorted(tables["utt2spk"].items(), key=lambda kv: kv[0].encode())
                    if k in keep}
        write_scp(d / "spk2utt", utt2spk_to_spk2utt(kept_u2s))
    return FixResult(before, len(keep), reasons, backup_dir)
