"""Validation of whole Kaldi-style data dirs (utils/validate_data_dir.sh)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from csmvanet.base.keys import RULE, key_problem
from csmvanet.data.datadir import (FRAME_SHIFT, _scan, c_order, is_audio_list, per_recording_files, per_speaker_files,
                                   per_utterance_files, read_segments, utt2spk_to_spk2utt, vad_labels_file,
                                   DataDirError)


def _scp_source_kind(value: str) -> str:
    """'pipe' for ``cmd |``, 'ark' for ``file.ark:offset``, else 'path'."""
    from csmvanet.audio.io import _is_ark_entry

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
    """What :func:`validate_data_dir` found: ``problems`` (empty when valid), a ``summary`` and
    ``notices`` (one-line remarks that do not make the dir invalid)."""

    def __init__(self, data_dir: Path, problems: list[str], summary: str, num_utts: int,
                 notices: list[str] | None = None):
        self.data_dir = data_dir
        self.problems = problems
        self.summary = summary
        self.num_utts = num_utts
        self.notices = notices or []

    @property
    def ok(self) -> bool:
        return not self.problems


def _read_tables(paths, P: _Problems) -> dict[str, dict[str, str]]:
    """Every key-value file as a table; unsorted (C locale), duplicate and empty lines are problems."""
    tables: dict[str, dict[str, str]] = {}
    for path in paths:
        with open(path, "rb") as f:
            f.seek(0, 2)
            if f.tell():
                f.seek(-1, 2)
                if f.read(1) != b"\n":
                    P.add("newline", f"{path}: the last line has no newline at its end (Kaldi rejects it)")
        table: dict[str, str] = {}
        prev = None
        for n, key, value in _scan(path):
            if not value and path.name != "text":
                P.add(f"empty value {path.name}", f"{path}:{n}: key '{key}' has no value")
            if key in table:
                P.add(f"duplicate {path.name}", f"{path}:{n}: duplicate key '{key}'")
                continue
            if prev is not None and c_order(key) < c_order(prev):
                P.add(f"unsorted {path.name}", f"{path}:{n}: not sorted (C locale): key '{key}' comes "
                      f"after '{prev}' (run utils/fix_data_dir.sh)")
            prev = key
            table[key] = value
        tables[path.name] = table
    return tables


def validate_data_dir(data_dir: str | Path, *, fs: int | None = None, check_audio: bool = True,
                      check_pipes: bool = False, stft_cfg=None, required: Iterable[str] = ("wav.scp",),
                      max_per_kind: int = 10, spk_sort: bool = False) -> ValidationResult:
    """Check a Kaldi-style data dir; every problem message names the file and the key.

    The utterances are the keys of ``segments`` if present, else of wav.scp (else of utt2spk).
    Checks: at least one utterance; utterance ids follow csmvanet.base.keys (no '/', no leading '.', ...);
    required files present; every key-value file sorted in C locale, without duplicate keys or keys
    without value; the same utterances in every per-utterance file; with segments, every segment's
    recording in every per-recording file (wav.scp, spk1.scp, reco2*); spk2utt consistent with
    utt2spk; audio entries exist (plain paths and ark files always; pipes only with ``check_pipes``),
    and, unless ``check_audio`` is off, are readable, mono, at the rate ``fs`` (if given), segments
    inside their recording, wav.scp and spk1.scp alike in rate and length, utt2num_samples equal to
    the utterance's samples; VAD labels (vad_labels.scp, or vad.scp of older dirs with a notice):
    int32 vectors of 0/1 with ``stft_cfg.num_frames(num_samples)`` frames; frame_shift a number.
    Kaldi's content checks (utils/validate_data_dir.sh): a newline at the end of every file; segments
    end > start (no -1) and every recording used by a segment; utt2spk one speaker per line (sorted by
    speaker too with ``spk_sort``); spk2gender m/f, spk2warp and utt2warp in (0.5, 1.5), cmvn.scp,
    spk2gender and spk2warp covering every speaker; utt2dur and reco2dur one positive number,
    utt2num_frames one positive integer; reco2file_and_channel '<file> <A|B>' (1: a notice); no '~'
    path in wav.scp; text without CR, control characters or white space other than space and tab.
    """
    d = Path(data_dir)
    P = _Problems(max_per_kind)
    notices: list[str] = []
    if not d.is_dir():
        return ValidationResult(d, [f"{d}: no such data dir"], "", 0)
    for name in required:
        if not (d / name).is_file():
            P.add("missing file", f"{d / name}: required file is missing")

    utt_files = per_utterance_files(d)
    reco_files = per_recording_files(d)
    spk_files = per_speaker_files(d)
    tables = _read_tables(utt_files + ([d / "spk2utt"] if (d / "spk2utt").is_file() else []), P)
    reco_tables = _read_tables(reco_files, P)
    spk_tables = _read_tables(spk_files, P)
    has_segments = "segments" in tables

    master = next((n for n in ("segments", "wav.scp", "utt2spk") if n in tables), None)
    utts = tables.get(master, {}) if master else {}
    if master is None:
        P.add("no utterances", f"{d}: no utterance list (segments, wav.scp or utt2spk)")
    elif not utts:
        P.add("no utterances", f"{d / master}: no utterances (an empty data dir is not valid)")
    for key in utts:
        problem = key_problem(key)
        if problem:
            P.add("bad id", f"{d / master}: {problem} (utterance ids must have {RULE})")

    # 1. The same utterances everywhere.
    for name, table in tables.items():
        if name in (master, "spk2utt"):
            continue
        for key in utts:
            if key not in table:
                P.add(f"missing keys {name}", f"{d / name}: key '{key}' is missing (it is in {d / master})")
        for key in table:
            if key not in utts:
                P.add(f"extra keys {name}", f"{d / name}: key '{key}' is not in {d / master}")

    # 1b. Segments and recordings.
    segs: dict[str, tuple[str, float, float]] = {}
    if has_segments:
        try:
            segs = read_segments(d / "segments")
        except DataDirError as e:   # the recordings cannot be matched to segments: no notice about them
            P.add("segments", str(e))
        for utt, (reco, start, end) in segs.items():
            if end == -1:
                P.add("segment end", f"{d / 'segments'}: utterance '{utt}': end time -1 (Kaldi's validator "
                      "needs end > start: write the recording's duration)")
        used = {reco for reco, _, _ in segs.values()}
        for name, table in reco_tables.items() if segs else ():
            for utt, (reco, _, _) in segs.items():
                if reco not in table:
                    P.add(f"recording {name}", f"{d / 'segments'}: utterance '{utt}': recording '{reco}' is "
                          f"not in {d / name}")
            for r in table:
                if r not in used:
                    P.add(f"unused {name}", f"{d / name}: recording '{r}' has no segment in {d / 'segments'} "
                          "(Kaldi needs the same recordings in both; run utils/fix_data_dir.sh)")

    _check_values(d, {**tables, **reco_tables, **spk_tables}, P, notices)
    if spk_sort and "utt2spk" in tables:
        _check_spk_sort(d, tables["utt2spk"], P)

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
        for spk, us in have.items():
            if spk not in want:
                P.add("spk2utt", f"{d / 'spk2utt'}: speaker '{spk}' has no utterance in utt2spk")
                continue
            for u in us:
                if u not in want[spk]:
                    P.add("spk2utt", f"{d / 'spk2utt'}: key '{spk}' lists utterance '{u}', but utt2spk "
                          f"gives it speaker '{utt2spk.get(u, '(none)')}'")
            if len(set(us)) != len(us):
                P.add("spk2utt", f"{d / 'spk2utt'}: key '{spk}' lists an utterance twice")
        for spk, us in want.items():
            missing = us - set(have.get(spk, []))
            if spk not in have:
                P.add("spk2utt", f"{d / 'spk2utt'}: speaker '{spk}' of utt2spk is missing")
            elif missing:
                P.add("spk2utt", f"{d / 'spk2utt'}: key '{spk}' lacks utterance '{sorted(missing)[0]}' "
                      f"(utt2spk gives it this speaker)")
        for name, table in spk_tables.items():
            for spk in table:
                if spk not in want:
                    P.add(f"speakers {name}", f"{d / name}: speaker '{spk}' is not in {d / 'utt2spk'}")
            for spk in want:
                if spk not in table:
                    P.add(f"speakers {name}", f"{d / name}: speaker '{spk}' of {d / 'utt2spk'} is missing "
                          "(Kaldi needs every speaker; utils/fix_data_dir.sh drops its utterances)")

    # 3. Audio: per recording (with segments) or per utterance.
    audio_tables = reco_tables if has_segments else tables
    audio_lists = [n for n in audio_tables if is_audio_list(n)]
    info, pipes_skipped = _check_audio(d, audio_tables, audio_lists, fs, check_audio, check_pipes, P)
    num_samples = _utterance_lengths(d, info, segs, has_segments, P)

    # 4. utt2num_samples.
    noisy = num_samples.get("wav.scp", {})
    lengths: dict[str, int] = {}
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
            lengths[key] = n
            if key in noisy and noisy[key] != n:
                P.add("utt2num_samples", f"{d / 'utt2num_samples'}: key '{key}': {n} samples, but the "
                      f"audio in {d / 'wav.scp'} has {noisy[key]}")
    for name in ("wav.scp", "spk1.scp"):
        for key, n in num_samples.get(name, {}).items():
            lengths.setdefault(key, n)

    # 5. VAD labels and their frame shift.
    vad_path, notice = vad_labels_file(d)
    if notice:
        notices.append(notice)
    vad_checked = _check_vad(d, vad_path, tables, lengths, stft_cfg, P) if vad_path else 0
    if (d / FRAME_SHIFT).is_file():
        text = (d / FRAME_SHIFT).read_text().strip()
        try:
            if float(text) <= 0:
                raise ValueError
        except ValueError:
            P.add("frame_shift", f"{d / FRAME_SHIFT}: '{text}' is not a frame shift in seconds")

    n_utts = len(utts)
    parts = [f"{n_utts} utterances"]
    if has_segments:
        parts.append(f"{len({r for r, _, _ in segs.values()})} recordings (segments)")
    if utt2spk is not None:
        parts.append(f"{len(set(utt2spk.values()))} speakers")
    names = list(tables) + list(reco_tables) + list(spk_tables)
    parts.append("files: " + " ".join(sorted(names, key=c_order)))
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
    return ValidationResult(d, P.messages(), summary, n_utts, notices)


def _number(value: str, integer: bool = False) -> float | None:
    """The one positive number ``value`` holds, else None."""
    try:
        x = int(value) if integer else float(value)
    except ValueError:
        return None
    return x if x > 0 else None


def _check_values(d: Path, tables: dict[str, dict[str, str]], P: _Problems, notices: list[str]) -> None:
    """The content rules of Kaldi's validate_data_dir.sh for the files it knows."""
    for key, value in tables.get("utt2spk", {}).items():
        if len(value.split()) != 1:
            P.add("utt2spk", f"{d / 'utt2spk'}: key '{key}': '{value}' is not one speaker id")
    for name, what in (("utt2dur", "a duration in seconds"), ("reco2dur", "a duration in seconds"),
                       ("utt2num_frames", "a frame count")):
        for key, value in tables.get(name, {}).items():
            if _number(value, integer=name == "utt2num_frames") is None:
                P.add(name, f"{d / name}: key '{key}': '{value}' is not {what} (one positive "
                      f"{'integer' if name == 'utt2num_frames' else 'number'})")
    for name in ("spk2warp", "utt2warp"):
        for key, value in tables.get(name, {}).items():
            x = _number(value)
            if x is None or not 0.5 < x < 1.5:
                P.add(name, f"{d / name}: key '{key}': '{value}' is not a warp factor in (0.5, 1.5)")
    for key, value in tables.get("spk2gender", {}).items():
        if value not in ("m", "f"):
            P.add("spk2gender", f"{d / 'spk2gender'}: speaker '{key}': '{value}' is not m or f")
    channel_one = 0
    for key, value in tables.get("reco2file_and_channel", {}).items():
        parts = value.split()
        if len(parts) == 2 and parts[1] == "1":
            channel_one += 1
        elif len(parts) != 2 or parts[1] not in ("A", "B"):
            P.add("reco2file_and_channel", f"{d / 'reco2file_and_channel'}: recording '{key}': '{value}' is "
                  "not '<file> <channel A or B>'")
    if channel_one:
        notices.append(f"{d / 'reco2file_and_channel'}: {channel_one} channel(s) marked 1; Kaldi wants A or B")
    for key, value in tables.get("wav.scp", {}).items():
        if value.startswith("~"):
            P.add("tilde", f"{d / 'wav.scp'}: key '{key}': '~' is not expanded in a file name; write the "
                  "full path")
    for key, value in tables.get("text", {}).items():
        bad = [c for c in value if c not in " \t" and (c.isspace() or not c.isprintable())
               and not 0xDC80 <= ord(c) <= 0xDCFF]
        if bad:
            P.add("text", f"{d / 'text'}: key '{key}': holds {ascii(bad[0])} (CR, control characters and "
                  "white space other than space and tab are not allowed)")


def _check_spk_sort(d: Path, utt2spk: dict[str, str], P: _Problems) -> None:
    """Kaldi (without --no-spk-sort): utt2spk sorted by speaker as well (`sort -k2 -C`)."""
    prev = None
    for key, spk in utt2spk.items():
        cur = (f" {spk}".encode(errors="surrogateescape"), f"{key} {spk}".encode(errors="surrogateescape"))
        if prev is not None and cur < prev:
            P.add("spk sort", f"{d / 'utt2spk'}: key '{key}': not sorted by speaker (speaker '{spk}' after "
                  f"'{prev[0][1:].decode(errors='replace')}'); make speaker ids prefixes of utterance ids, "
                  "or pass --no-spk-sort")
            return
        prev = cur


def _check_audio(d, tables, audio_lists, fs, check_audio, check_pipes, P):
    """Existence, readability, channels and rate of every audio entry -> ({list: {key: (sr, n, ch)}},
    number of pipe entries not run)."""
    from csmvanet.audio.io import AudioError, audio_info

    info: dict[str, dict[str, tuple[int, int, int]]] = {}
    pipes_skipped = 0
    for name in audio_lists:
        info[name] = {}
        for key, value in tables[name].items():
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
    return info, pipes_skipped


def _utterance_lengths(d, info, segs, has_segments, P) -> dict[str, dict[str, int]]:
    """{audio list: {utterance: samples}}; with segments, each segment checked against its recording."""
    from csmvanet.audio.io import AudioError
    from csmvanet.data.utt_audio import UttAudio, _span

    if not has_segments:
        return {name: {k: v[1] for k, v in table.items()} for name, table in info.items()}
    out: dict[str, dict[str, int]] = {}
    for name, table in info.items():
        out[name] = {}
        for utt, (reco, start, end) in segs.items():
            if reco not in table:
                continue
            sr, total, _ = table[reco]
            try:
                first, last = _span(UttAudio(reco, start, end), sr, total)
            except AudioError as e:
                P.add(f"segment {name}", f"{d / 'segments'}: utterance '{utt}' in {d / name}: {e}")
                continue
            out[name][utt] = last - first
    return out


def _check_vad(d, path, tables, lengths, stft_cfg, P) -> int:
    import kaldiio
    import numpy as np

    if stft_cfg is None:
        from csmvanet.audio.stft import STFTConfig  # imports torch: only when there are VAD labels

        stft_cfg = STFTConfig()
    checked = 0
    name = path.name
    for key, value in tables.get(name, {}).items():
        try:
            labels = np.asarray(kaldiio.load_mat(value))
        except Exception as e:  # kaldiio raises many types
            P.add("vad", f"{path}: key '{key}': cannot read {value} ({type(e).__name__}: {e})")
            continue
        checked += 1
        if labels.ndim != 1 or labels.dtype != np.int32:
            P.add("vad", f"{path}: key '{key}': expected an int32 vector, got {labels.dtype} "
                  f"of shape {labels.shape}")
            continue
        if labels.size and not np.isin(labels, (0, 1)).all():
            P.add("vad", f"{path}: key '{key}': labels other than 0/1")
        if key in lengths:
            want = stft_cfg.num_frames(lengths[key])
            if labels.size != want:
                P.add("vad length", f"{path}: key '{key}': {labels.size} frames, expected "
                      f"{want} for {lengths[key]} samples (hop {stft_cfg.hop_length})")
    if checked and (d / FRAME_SHIFT).is_file():
        want = stft_cfg.hop_length / stft_cfg.sample_rate
        try:
            have = float((d / FRAME_SHIFT).read_text().strip())
        except ValueError:
            return checked
        if abs(have - want) > 1e-9:
            P.add("frame_shift", f"{d / FRAME_SHIFT}: {have:g} s, but the VAD labels' STFT has "
                  f"{want:g} s (hop {stft_cfg.hop_length} at {stft_cfg.sample_rate} Hz)")
    return checked
