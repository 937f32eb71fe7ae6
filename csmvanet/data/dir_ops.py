"""Kaldi's data-dir tools on whole data dirs: split, subset, copy, combine and fix (utils/*.sh).

A data dir is read into :class:`Tables`: the per-utterance files (utt2spk, segments, text, utt2*,
*.scp such as spk1.scp and vad_labels.scp, and without segments the audio lists), the per-recording
files (with segments: wav.scp, spkN.scp, noiseN.scp, reco2*), the per-speaker files (spk2gender,
cmvn.scp) and plain copied files (frame_shift). Every tool selects utterances and keeps the rest
consistent: a recording stays while a kept segment uses it, a speaker file keeps the kept speakers,
spk2utt is rebuilt from utt2spk. Every tool computes its whole result before it writes anything and
fails (DataDirError, nothing changed) when the result would hold no utterance.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from csmvanet.base.keys import RULE, key_problem
from csmvanet.data.datadir import (COPIED_FILES, DataDirError, _scan, c_order, per_recording_files, per_speaker_files,
                                   per_utterance_files, raw_lines, read_scp, read_segments, utt2spk_to_spk2utt,
                                   write_scp)
from csmvanet.data.durations import durations_without_segments


def _c_sorted(keys: Iterable[str]) -> list[str]:
    return sorted(keys, key=c_order)


@dataclass
class Tables:
    """The key-value files of one data dir, by what they are keyed by."""
    path: Path
    utt: dict[str, dict[str, str]] = field(default_factory=dict)
    reco: dict[str, dict[str, str]] = field(default_factory=dict)
    spk: dict[str, dict[str, str]] = field(default_factory=dict)
    copied: dict[str, str] = field(default_factory=dict)
    raw: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> key -> line as read

    @property
    def has_segments(self) -> bool:
        return "segments" in self.utt

    @property
    def master(self) -> str:
        """The file whose keys are the utterances: utt2spk (as in Kaldi), else segments, else wav.scp."""
        for name in ("utt2spk", "segments", "wav.scp"):
            if name in self.utt:
                return name
        raise DataDirError(f"{self.path}: no utt2spk, segments or wav.scp: no utterances to work on")

    def utterances(self) -> list[str]:
        return _c_sorted(self.utt[self.master])

    def recording_of(self, utt: str) -> str:
        return self.utt["segments"][utt].split()[0]

    def select(self, utts: Iterable[str]) -> "Tables":
        """The same data dir with only ``utts`` (and the recordings and speakers they use)."""
        keep = set(utts)
        out = Tables(self.path, copied=dict(self.copied), raw=self.raw)
        out.utt = {n: {k: v for k, v in t.items() if k in keep} for n, t in self.utt.items()}
        if self.has_segments:
            recos = {v.split()[0] for v in out.utt["segments"].values()}
            out.reco = {n: {k: v for k, v in t.items() if k in recos} for n, t in self.reco.items()}
        if "utt2spk" in out.utt:
            spks = set(out.utt["utt2spk"].values())
            out.spk = {n: {k: v for k, v in t.items() if k in spks} for n, t in self.spk.items()}
        return out

    def num_utts(self) -> int:
        return len(self.utt[self.master]) if self.utt else 0


def load_tables(data_dir: str | Path, extra: Iterable[str] = ()) -> Tables:
    """Read a data dir strictly (a duplicate key or a line without value is an error naming it)."""
    d = Path(data_dir)
    if not d.is_dir():
        raise DataDirError(f"{d}: no such data dir")
    t = Tables(d)
    for p in per_utterance_files(d, extra):
        t.utt[p.name] = read_scp(p, allow_empty_value=p.name == "text")
    for p in per_recording_files(d):
        t.reco[p.name] = read_scp(p)
    for p in per_speaker_files(d):
        t.spk[p.name] = read_scp(p)
    for p in per_utterance_files(d, extra) + per_recording_files(d) + per_speaker_files(d):
        t.raw[p.name] = raw_lines(p)
    for name in COPIED_FILES:
        if (d / name).is_file():
            t.copied[name] = (d / name).read_text(errors="surrogateescape")
    if t.has_segments:
        read_segments(d / "segments")  # checks the format
    return t


def _line(t: Tables, name: str, key: str, value: str) -> str:
    """The line of ``key`` in file ``name``: as it was read when its value is unchanged (Kaldi's
    tools filter and sort lines without rewriting them: tabs and spaces inside values stay)."""
    raw = t.raw.get(name, {}).get(key)
    if raw is not None:
        parts = raw.split(maxsplit=1)
        if parts[0] == key and (parts[1].strip() if len(parts) > 1 else "") == value:
            return raw + "\n"
    return f"{key} {value}\n".replace(" \n", "\n")


def _file_texts(t: Tables) -> dict[str, str]:
    """File name -> content of the data dir ``t`` (sorted in C locale; spk2utt rebuilt; lines whose
    key and value did not change are written as they were read)."""
    out: dict[str, str] = {}
    for group in (t.utt, t.reco, t.spk):
        for name, table in group.items():
            out[name] = "".join(_line(t, name, k, table[k]) for k in _c_sorted(table))
    if "utt2spk" in t.utt:
        s2u = utt2spk_to_spk2utt({k: t.utt["utt2spk"][k] for k in _c_sorted(t.utt["utt2spk"])})
        out["spk2utt"] = "".join(f"{k} {v}\n" for k, v in s2u.items())
    out.update(t.copied)
    return out


def _data_file_names(d: Path) -> set[str]:
    """Names of the data files a tool would write in ``d`` (stale ones are removed on rewrite)."""
    if not d.is_dir():
        return set()
    names = {p.name for p in per_utterance_files(d) + per_recording_files(d) + per_speaker_files(d)}
    names |= {n for n in ("spk2utt", "wav.scp", *COPIED_FILES) if (d / n).is_file()}
    return names


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_folder(final: Path) -> Path:
    """A temporary folder beside ``final``, to be renamed to it: with the mode ``mkdir`` gives under
    the current umask (0755 under umask 022), not mkdtemp's 0700."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def write_tables(t: Tables, dest: str | Path) -> None:
    """Write ``t`` as the data dir ``dest``: the files go to a temporary folder first, then replace
    the data files of ``dest`` (data files of ``dest`` that ``t`` lacks are removed; other files,
    e.g. logs, stay)."""
    if t.num_utts() == 0:
        raise DataDirError(f"{dest}: refusing to write a data dir without utterances")
    dest = Path(dest)
    texts = _file_texts(t)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_folder(dest)
    try:
        for name, text in texts.items():
            (tmp / name).write_text(text, errors="surrogateescape")
        if not dest.exists():
            os.replace(tmp, dest)
            return
        for name in _data_file_names(dest) - set(texts):
            (dest / name).unlink()
        for name in texts:
            os.replace(tmp / name, dest / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# split (utils/split_data.sh, utils/split_scp.pl)
# ---------------------------------------------------------------------------------------------

def split_even(n_items: int, n_parts: int) -> list[int]:
    """Part sizes of Kaldi's split_scp.pl without --utt2spk: n // k each, the first n % k one more."""
    if n_parts < 1:
        raise DataDirError(f"number of parts must be positive, not {n_parts}")
    if n_items < n_parts:
        raise DataDirError(f"cannot split into {n_parts} parts: only {n_items} lines (reduce --nj)")
    base, rem = divmod(n_items, n_parts)
    return [base + (1 if i < rem else 0) for i in range(n_parts)]


def split_by_speaker(speakers: Sequence[str], counts: dict[str, int], n_parts: int) -> list[list[str]]:
    """Speakers (in order) -> n_parts runs, as Kaldi's split_scp.pl --utt2spk does it: speaker i goes
    to part i*n/num_speakers, then the first/last speaker of neighbouring parts moves while that
    makes the two parts' utterance counts closer."""
    ns = len(speakers)
    if ns < n_parts:
        raise DataDirError(f"cannot split into {n_parts} parts: only {ns} speakers (reduce --nj, or "
                           "split per utterance)")
    parts: list[list[str]] = [[] for _ in range(n_parts)]
    sizes = [0] * n_parts
    for i, s in enumerate(speakers):
        parts[i * n_parts // ns].append(s)
        sizes[i * n_parts // ns] += counts[s]
    changed = True
    while changed:
        changed = False
        for i in range(n_parts):
            if i < n_parts - 1 and parts[i]:
                c = counts[parts[i][-1]]
                if abs((sizes[i + 1] + c) - (sizes[i] - c)) < abs(sizes[i + 1] - sizes[i]):
                    parts[i + 1].insert(0, parts[i].pop())
                    sizes[i + 1] += c
                    sizes[i] -= c
                    changed = True
            if i > 0 and parts[i]:
                c = counts[parts[i][0]]
                if abs((sizes[i] - c) - (sizes[i - 1] + c)) < abs(sizes[i] - sizes[i - 1]):
                    parts[i - 1].append(parts[i].pop(0))
                    sizes[i - 1] += c
                    sizes[i] -= c
                    changed = True
    if any(not p for p in parts):
        raise DataDirError(f"cannot split {ns} speakers into {n_parts} non-empty parts")
    return parts


def split_keys(keys: Sequence[str], n_parts: int, utt2spk: dict[str, str] | None = None) -> list[list[str]]:
    """Keys in order -> n_parts lists (Kaldi split_scp.pl semantics, with or without utt2spk)."""
    if utt2spk is None:
        out, pos = [], 0
        for size in split_even(len(keys), n_parts):
            out.append(list(keys[pos:pos + size]))
            pos += size
        return out
    by_spk: dict[str, list[str]] = {}
    for k in keys:
        if k not in utt2spk:
            raise DataDirError(f"key '{k}' has no speaker in utt2spk")
        by_spk.setdefault(utt2spk[k], []).append(k)
    parts = split_by_speaker(list(by_spk), {s: len(u) for s, u in by_spk.items()}, n_parts)
    return [[k for s in p for k in by_spk[s]] for p in parts]


def split_data(data_dir: str | Path, n_parts: int, *, per_utt: bool = False) -> Path:
    """data/x -> data/x/split<N>/{1..N} (per speaker) or data/x/split<N>utt/{1..N} (``per_utt``).
    Built under a temporary name, then renamed over the old split."""
    d = Path(data_dir)
    t = load_tables(d)
    keys = t.utterances()
    if not per_utt and "utt2spk" not in t.utt:
        raise DataDirError(f"{d / 'utt2spk'}: no such file (needed to split per speaker; use --per-utt)")
    try:
        parts = split_keys(keys, n_parts, None if per_utt else t.utt["utt2spk"])
    except DataDirError as e:
        raise DataDirError(f"{d}: {e}") from None
    final = d / f"split{n_parts}{'utt' if per_utt else ''}"
    tmp = _new_folder(final)
    try:
        for i, part in enumerate(parts, 1):
            write_tables(t.select(part), tmp / str(i))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# ---------------------------------------------------------------------------------------------
# subset (utils/subset_data_dir.sh)
# ---------------------------------------------------------------------------------------------

def spread_select(items: Sequence[str], n: int) -> list[str]:
    """``n`` items spread evenly over ``items`` (Kaldi subset_scp.pl without --first/--last: halve the
    range and the count recursively, the first half gets the smaller count)."""
    out: list[str] = []

    def pick(start: int, end: int, need: int) -> None:
        if end - start == 1:
            if need > 0:
                out.append(items[start])
            return
        half = (end - start) // 2
        pick(start, start + half, need // 2)
        pick(start + half, end, need - need // 2)

    if n > 0:
        pick(0, len(items), n)
    return out


def per_speaker_select(utts: Sequence[str], n: int) -> list[str]:
    """Kaldi subset_data_dir.sh --per-spk: at most ``n`` of one speaker's utterances, every
    ``skip``-th from the first, ``skip`` the largest step with n*skip <= len(utts)."""
    skip = 1
    while n * (skip + 1) <= len(utts):
        skip += 1
    return [utts[i] for i in range(0, min(len(utts), n * skip), skip)]


def _id_list(path: str | Path) -> set[str]:
    return {key for _, key, _ in _scan(Path(path))} if Path(path).is_file() else _missing(path)


def _missing(path):
    raise DataDirError(f"{path}: no such file")


def subset_utterances(t: Tables, *, num: int | None = None, first: bool = False, last: bool = False,
                      utt_list: str | None = None, spk_list: str | None = None,
                      per_spk: bool = False) -> list[str]:
    keys = t.utterances()
    if spk_list or per_spk:
        if "utt2spk" not in t.utt:
            raise DataDirError(f"{t.path / 'utt2spk'}: no such file (needed for --spk-list/--per-spk)")
        s2u: dict[str, list[str]] = {}
        for k in keys:
            s2u.setdefault(t.utt["utt2spk"][k], []).append(k)
    if utt_list:
        want = _id_list(utt_list)
        return [k for k in keys if k in want]
    if spk_list:
        want = _id_list(spk_list)
        return [u for s in _c_sorted(s2u) if s in want for u in s2u[s]]
    if num is None or num < 1:
        raise DataDirError(f"the number of utterances must be a positive integer, not {num}")
    if per_spk:
        return [u for s in _c_sorted(s2u) for u in per_speaker_select(s2u[s], num)]
    if num > len(keys):
        raise DataDirError(f"{t.path}: cannot subset to {num} utterances, it has only {len(keys)}")
    if first:
        return keys[:num]
    if last:
        return keys[len(keys) - num:]
    return spread_select(keys, num)


def subset_data_dir(src: str | Path, dest: str | Path, **how) -> tuple[int, int]:
    """Write the subset of ``src`` chosen by :func:`subset_utterances` to ``dest``; (before, after)."""
    t = load_tables(src)
    utts = subset_utterances(t, **how)
    if not utts:
        raise DataDirError(f"{dest}: the subset of {src} would hold no utterance; nothing written")
    _check_not_same(src, dest)
    write_tables(t.select(utts), dest)
    return t.num_utts(), len(utts)


def _check_not_same(src, dest) -> None:
    if Path(dest).exists() and Path(src).resolve() == Path(dest).resolve():
        raise DataDirError(f"{dest}: the destination must differ from the source {src}")


# ---------------------------------------------------------------------------------------------
# copy (utils/copy_data_dir.sh) and combine (utils/combine_data.sh)
# ---------------------------------------------------------------------------------------------

def copy_data_dir(src: str | Path, dest: str | Path, *, utt_prefix: str = "", utt_suffix: str = "",
                  spk_prefix: str = "", spk_suffix: str = "") -> int:
    """Copy ``src`` to ``dest`` with utterance and speaker ids renamed ``prefix + id + suffix`` in
    every file keyed by them (and the speaker column of utt2spk); recordings keep their ids (wav.scp
    with segments is copied as is). With a new utterance prefix/suffix and no utt2uniq, utt2uniq
    (new id -> old id) is written, as Kaldi does. Returns the number of utterances."""
    _check_not_same(src, dest)
    t = load_tables(src)
    umap = {u: f"{utt_prefix}{u}{utt_suffix}" for u in t.utterances()}
    for new in umap.values():
        problem = key_problem(new)
        if problem:
            raise DataDirError(f"new utterance id: {problem} (ids must have {RULE}); nothing written")
    smap = lambda s: f"{spk_prefix}{s}{spk_suffix}"  # noqa: E731
    out = Tables(Path(dest), reco={n: dict(tb) for n, tb in t.reco.items()}, copied=dict(t.copied))
    for name, table in t.utt.items():
        out.utt[name] = {umap.get(k, f"{utt_prefix}{k}{utt_suffix}"): (smap(v) if name == "utt2spk" else v)
                         for k, v in table.items()}
    if "utt2uniq" not in t.utt and (utt_prefix or utt_suffix):
        out.utt["utt2uniq"] = {new: old for old, new in umap.items()}
    out.spk = {n: {smap(k): v for k, v in tb.items()} for n, tb in t.spk.items()}
    write_tables(out, dest)
    return out.num_utts()


def combine_data(dest: str | Path, srcs: Sequence[str | Path], extra: Iterable[str] = ()) -> tuple[int, list[str]]:
    """Combine data dirs into ``dest`` (replaced). A file is combined when every source has it
    (segments and utt2uniq are made where missing, as Kaldi does: ``utt utt 0 <duration>`` and
    ``utt utt``; the duration from utt2dur, else from the audio's header);
    the others are left out and named in the returned notices. The same utterance in two sources,
    or the same recording or speaker with different values, is an error (nothing written).
    Returns (utterances, notices)."""
    if not srcs:
        raise DataDirError("combine_data: no source data dirs")
    dest = Path(dest)
    for s in srcs:
        _check_not_same(s, dest)
    tabs = [load_tables(s, extra) for s in srcs]
    notices: list[str] = []
    if any(t.has_segments for t in tabs):
        for t in tabs:
            if not t.has_segments:
                durs = durations_without_segments(t.path, t.utterances(), t.utt.get("utt2dur", {}),
                                                  t.utt.get("wav.scp", {}))
                t.utt["segments"] = {u: f"{u} 0 {dur}" for u, dur in durs.items()}
                for name in [n for n in t.utt if n in {n2 for t2 in tabs for n2 in t2.reco}]:
                    t.reco[name] = t.utt.pop(name)
    if any("utt2uniq" in t.utt for t in tabs):
        for t in tabs:
            t.utt.setdefault("utt2uniq", {u: u for u in t.utterances()})
    out = Tables(dest)
    for t in tabs:  # lines are written as they were read (Kaldi's combine cats and sorts them)
        for name, lines in t.raw.items():
            out.raw.setdefault(name, {}).update(lines)
    for group in ("utt", "reco", "spk"):
        names = set().union(*(getattr(t, group).keys() for t in tabs))
        for name in _c_sorted(names):
            lacking = [str(t.path) for t in tabs if name not in getattr(t, group)]
            if lacking:
                notices.append(f"{name}: not combined, it is missing in {', '.join(lacking)}")
                continue
            merged: dict[str, str] = {}
            where: dict[str, Path] = {}
            for t in tabs:
                for k, v in getattr(t, group)[name].items():
                    if k in merged and (group == "utt" or merged[k] != v):
                        raise DataDirError(f"{t.path / name}: key '{k}' is also in {where[k] / name}"
                                           + ("" if group == "utt" else " with another value")
                                           + "; nothing written (rename with utils/copy_data_dir.sh "
                                             "--utt-prefix)")
                    merged[k] = v
                    where[k] = t.path
            getattr(out, group)[name] = merged
    for name in COPIED_FILES:
        values = {t.copied.get(name) for t in tabs}
        if len(values) == 1 and None not in values:
            out.copied[name] = values.pop()
        elif values != {None}:
            notices.append(f"{name}: not combined, it differs between the sources or is missing in some")
    if out.utt and "utt2spk" not in out.utt and any("utt2spk" in t.utt for t in tabs):
        raise DataDirError(f"{dest}: utt2spk is missing in some sources; nothing written")
    write_tables(out, dest)
    return out.num_utts(), notices
