"""Batch enhancement (csmvanet-enhance): inputs to output names, one Enhancer over many files, a report.

:func:`collect_inputs` turns files, folders and a wav.scp into items with output names mirroring
them; :func:`enhance_batch` enhances every item (a failing one is reported in one line and
skipped), writes the optional VAD outputs and the output scp, and returns a :class:`BatchReport`.
"""
from __future__ import annotations

import errno
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from csmvanet.audio.io import AudioError
from csmvanet.base.atomic_files import atomic_path, remove_temps_of
from csmvanet.base.errors import EnhanceError
from csmvanet.base.interrupts import say_when_interrupted as _say_when_interrupted
from csmvanet.base.outdirs import output_dir_problem, unwritable
from csmvanet.data.utt_audio import UttAudio, segment_audio

if TYPE_CHECKING:   # annotation only: the batch driver is handed an Enhancer, it does not build one
    from csmvanet.infer.enhancer import Enhancer

OUTPUT_SUFFIXES = (".wav", ".flac")   # formats written; other inputs give .wav

# File name suffixes of the audio formats libsndfile reads, by its major format name. Header-less
# RAW and the MATLAB/HTK containers (not audio in general) are left out of folder searches.
_SUFFIXES_OF_FORMAT = {
    "WAV": ("wav",), "WAVEX": ("wav",), "FLAC": ("flac",), "OGG": ("ogg", "oga", "opus"), "MP3": ("mp3",),
    "AIFF": ("aiff", "aif", "aifc"), "AU": ("au", "snd"), "CAF": ("caf",), "W64": ("w64",), "RF64": ("rf64",),
    "NIST": ("sph", "nist"), "IRCAM": ("sf", "ircam"), "VOC": ("voc",), "AVR": ("avr",), "SVX": ("iff", "svx"),
    "PAF": ("paf",), "PVF": ("pvf",), "SD2": ("sd2",), "SDS": ("sds",), "WVE": ("wve",), "XI": ("xi",),
    "MPC2K": ("mpc",),
}


def readable_suffixes() -> tuple[str, ...]:
    """Suffixes (with the dot) of the formats this libsndfile reads: wav, flac, ogg/opus, mp3 (1.1+), ..."""
    import soundfile as sf

    have = sf.available_formats()
    return tuple(sorted({f".{s}" for fmt, sfx in _SUFFIXES_OF_FORMAT.items() if fmt in have for s in sfx}))


AUDIO_SUFFIXES = readable_suffixes()


@dataclass
class BatchItem:
    key: str                 # utterance id (scp key, or the input's relative path without suffix)
    source: str              # path or scp value
    out_rel: str = ""        # output path relative to the output dir
    error: str | None = None  # a problem found while collecting the inputs
    skipped: str | None = None  # a file of an input folder that is not enhanced, and why
    audio: UttAudio | None = None  # with segments: the utterance's part of its recording
    where: str = ""          # the list and utterance it came from ("data/wav.scp: utterance 'u1'")


def _key_of(rel: Path) -> str:
    return "_".join(str(rel.with_suffix("")).split())


def _unlistable(folder: Path) -> str | None:
    """Why the files of ``folder`` cannot be listed (permission denied, ...), or None when they can."""
    try:
        with os.scandir(folder):
            return None
    except OSError as e:
        return (e.strerror or type(e).__name__).lower()


def _skip_reason(rel: Path) -> str | None:
    """Why a file found in an input folder is not an input, or None when it is."""
    if any(part.startswith(".") for part in rel.parts):
        return "its name starts with '.' (hidden, or a temporary file of an interrupted run)"
    if rel.suffix.lower() not in AUDIO_SUFFIXES:
        kind = f"'{rel.suffix}' is not" if rel.suffix else "no suffix:"
        return (f"{kind} an audio format this libsndfile reads "
                f"({' '.join(s[1:] for s in AUDIO_SUFFIXES)})")
    return None


def collect_inputs(inputs: Iterable[str], wav_scp: str | None = None,
                   output_format: str | None = None, segments: str | None = None) -> list[BatchItem]:
    """Inputs -> items with output names mirroring them.

    A file gives ``<name>``; a directory gives every audio file below it that libsndfile reads
    (:data:`AUDIO_SUFFIXES`; recursive, sorted) as ``<path relative to the directory>``; the other
    files below it, and names starting with '.', are items with ``skipped`` set (the reason).
    ``wav_scp`` gives ``<utt>.<fmt>`` exactly (:func:`csmvanet.base.keys.output_name`: dots in a key stay;
    a key that could leave the folder is an item with ``error`` set). The suffix becomes
    ``output_format`` if given, else stays ``.wav``/``.flac`` (other input suffixes give ``.wav``).
    Inputs that do not exist or clash with an earlier output name are items with ``error`` set.
    With ``segments`` (Kaldi ``utt reco start end``; ``wav_scp`` keyed by recording) every
    utterance of it is an item keyed by the utterance, its ``audio`` the segment; an utterance
    whose recording is not in ``wav_scp`` is an item with ``error`` naming it.
    """
    from csmvanet.data.datadir import DataDirError, read_scp, read_segments
    from csmvanet.base.keys import check_key, output_name

    def out_name(rel: Path, default: str | None = None) -> str:
        suffix = rel.suffix.lower()
        fmt = output_format or default or (suffix[1:] if suffix in OUTPUT_SUFFIXES else "wav")
        return str(rel.with_suffix(f".{fmt}") if rel.suffix else Path(f"{rel}.{fmt}"))

    items: list[BatchItem] = []
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():
            below = sorted(p.rglob("*"), key=lambda f: str(f))
            closed = [(f, why) for f in [p] + [f for f in below if f.is_dir()] if (why := _unlistable(f))]
            items += [BatchItem(str(f), str(f), error=f"{f}: cannot read the folder ({why})") for f, why in closed]
            files = [f for f in below if not f.is_dir()]
            found = 0
            for f in files:
                rel = f.relative_to(p)
                reason = _skip_reason(rel)
                if reason is not None:
                    items.append(BatchItem(str(f), str(f), skipped=f"{f}: {reason}"))
                    continue
                found += 1
                items.append(BatchItem(_key_of(rel), str(f), out_name(rel)))
            if not found and not closed:
                items.append(BatchItem(str(p), str(p), error=f"{p}: folder holds no audio files that "
                                                             "libsndfile reads"))
        elif p.exists() or p.is_symlink():
            items.append(BatchItem(_key_of(Path(p.name)), str(p), out_name(Path(p.name))))
        else:
            items.append(BatchItem(str(p), str(p), error=f"{p}: no such file or folder"))
    if wav_scp:
        try:
            entries = read_scp(wav_scp)
        except (DataDirError, OSError) as e:
            items.append(BatchItem(str(wav_scp), str(wav_scp), error=str(e)))
            entries = {}
        audio: dict[str, UttAudio] = {}
        if segments:
            try:
                audio, problems = segment_audio(entries, read_segments(segments), segments, wav_scp)
            except (DataDirError, OSError) as e:
                items.append(BatchItem(str(segments), str(segments), error=str(e)))
                audio, problems = {}, {}
            items += [BatchItem(utt, str(segments), error=f"{msg}; not enhanced") for utt, msg in problems.items()]
            entries = {utt: f"utterance {utt} ({a.describe()})" for utt, a in audio.items()}
        keys_from = str(segments or wav_scp)
        for key, value in entries.items():
            try:
                check_key(key, keys_from)
            except ValueError as e:   # '../x', '/abs/x', '.hidden': the output would leave --output_dir
                items.append(BatchItem(key, value, error=f"{e}; not enhanced"))
                continue
            where = str(wav_scp) if segments else f"{wav_scp}: utterance '{key}'"   # segments: in the value
            items.append(BatchItem(key, value, output_name(key, output_format or "wav"), audio=audio.get(key),
                                   where=where))
    seen_out: dict[str, str] = {}
    seen_key: dict[str, str] = {}
    for it in items:
        if it.error or it.skipped:
            continue
        if it.out_rel in seen_out:
            it.error = f"{it.source}: output name {it.out_rel} already used by {seen_out[it.out_rel]}"
        elif it.key in seen_key:
            it.error = f"{it.source}: utterance id {it.key} already used by {seen_key[it.key]}"
        else:
            seen_out[it.out_rel] = it.source
            seen_key[it.key] = it.source
    return items


@dataclass
class BatchReport:
    done: list = field(default_factory=list)      # (key, output path)
    failed: list = field(default_factory=list)    # one-line messages, each naming its input
    skipped: list = field(default_factory=list)   # files of input folders left alone, with the reason
    audio_seconds: float = 0.0
    seconds: float = 0.0
    item_seconds: dict = field(default_factory=dict)  # key -> seconds spent enhancing it


def _one_line(it: BatchItem, e: BaseException) -> str:
    """'<list>: utterance '<key>': <input>: <problem>' (the list part for wav.scp entries only)."""
    msg = " ".join(str(e).split()) or type(e).__name__
    if not isinstance(e, (EnhanceError, AudioError)):
        msg = f"{type(e).__name__}: {msg}"
    msg = msg if it.source in msg else f"{it.source}: {msg}"
    return f"{it.where}: {msg}" if it.where else msg


def enhance_batch(enhancer: Enhancer, items: list[BatchItem], output_dir: str | Path, *,
                  out_scp: str | Path | None = None, vad_dir: str | Path | None = None,
                  channels: str = "each", subtype: str = "PCM_16", vad_threshold: float | None = None,
                  min_speech: float = 0.25, min_silence: float = 0.1, progress: bool = True,
                  report: Callable[[str], None] | None = None) -> BatchReport:
    """Enhance every item into ``output_dir``; a failing item is reported in one line and skipped.

    ``vad_dir`` receives ``vad_prob.ark``/``vad_prob.scp`` (kaldiio float32 vector per utterance, at
    the model's frame rate; multi-channel: the maximum over channels), ``segments`` (Kaldi) and
    ``vad.rttm``. ``out_scp`` lists ``key path`` of the outputs written. Every file appears complete
    or not at all.
    """
    import contextlib
    import time

    import kaldiio
    from tqdm import tqdm

    from csmvanet.data.datadir import write_scp
    from csmvanet.data.vad import probs_to_segments, write_rttm, write_segments

    output_dir = Path(output_dir)
    rep = BatchReport()
    say = report or (lambda line: tqdm.write(line, file=sys.stderr))
    check_outputs(output_dir, out_scp, vad_dir)
    for it in items:   # temporary files of these outputs left by a run killed with SIGKILL
        if it.out_rel:   # (only our own: parallel jobs may be writing other files into the folder)
            remove_temps_of(output_dir / it.out_rel)
    if vad_dir is not None:
        remove_temps_of(Path(vad_dir) / "vad_prob.ark")
    t0 = time.perf_counter()
    segments: dict[str, list] = {}
    vad_index: dict[str, str] = {}
    no_vad_said = False
    with contextlib.ExitStack() as stack:
        ark = None
        if vad_dir is not None:
            vad_dir = Path(vad_dir)
            ark_path = vad_dir / "vad_prob.ark"
            ark = stack.enter_context(open(stack.enter_context(atomic_path(ark_path)), "wb"))
        bar = tqdm(items, desc="enhance", unit="file", file=sys.stderr, disable=not progress,
                   dynamic_ncols=True)
        stack.callback(bar.close)
        stack.enter_context(_say_when_interrupted(
            lambda: f"enhanced {len(rep.done)} of {sum(not it.skipped for it in items)} input(s) into "
                    f"{output_dir} (complete files only" + (f"; {out_scp} not written)" if out_scp else ")")))
        for it in bar:
            if it.skipped:
                rep.skipped.append(it.skipped)
                say(f"skipped {it.skipped}")
                continue
            if it.error:
                rep.failed.append(it.error)
                say(f"ERROR {it.error}")
                continue
            out_path = output_dir / it.out_rel
            try:
                src = it.audio.source if it.audio is not None else it.source
                if Path(src).exists() and out_path.resolve() == Path(src).resolve():
                    raise EnhanceError(f"{it.source}: output would overwrite the input")
                t_item = time.perf_counter()
                res = enhancer.enhance_file(it.audio if it.audio is not None else it.source, out_path,
                                            channels=channels, subtype=subtype)
                rep.item_seconds[it.key] = time.perf_counter() - t_item
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):   # every later file would fail too
                    raise EnhanceError(f"{out_path}: cannot write: {e.strerror} (free space or choose another "
                                       f"--output_dir); {len(rep.done)} of {len(items)} input(s) were "
                                       "enhanced before") from None
                rep.failed.append(_one_line(it, e))
                say(f"ERROR {rep.failed[-1]}")
                continue
            except Exception as e:   # one line per bad input; the batch goes on
                rep.failed.append(_one_line(it, e))
                say(f"ERROR {rep.failed[-1]}")
                continue
            rep.done.append((it.key, str(out_path)))
            rep.audio_seconds += res.num_samples / res.sample_rate
            if ark is not None:
                if res.vad is None:
                    if not no_vad_said:
                        say("WARNING: the model has no VAD decoder; no VAD outputs")
                        no_vad_said = True
                    continue
                vad = res.vad.max(axis=1).astype(np.float32)
                pos = ark.tell()
                try:
                    kaldiio.save_ark(ark, {it.key: vad})
                except OSError as e:
                    raise EnhanceError(f"{ark_path}: cannot write: {e.strerror}; {len(rep.done)} of "
                                       f"{len(items)} input(s) were enhanced before") from None
                vad_index[it.key] = f"{ark_path}:{pos + len(it.key.encode()) + 1}"
                num_model = int(round(res.num_samples * enhancer.sample_rate / res.sample_rate))
                segments[it.key] = probs_to_segments(vad, enhancer.stft_cfg, threshold=enhancer.vad_threshold if vad_threshold is None else vad_threshold,
                                                     min_speech=min_speech, min_silence=min_silence,
                                                     num_samples=num_model)
    lists = [] if vad_dir is None else [(vad_dir / "vad_prob.scp", write_scp, vad_index),
                                        (vad_dir / "segments", write_segments, segments),
                                        (vad_dir / "vad.rttm", write_rttm, segments)]
    for target, write, what in lists + ([(Path(out_scp), write_scp, dict(rep.done))] if out_scp else []):
        try:
            write(target, what)
        except OSError as e:   # a full disk: name the file (the enhanced files are complete)
            raise EnhanceError(f"{target}: cannot write: {e.strerror or e}; the {len(rep.done)} enhanced "
                               f"file(s) are complete in {output_dir}") from None
    rep.seconds = time.perf_counter() - t0
    return rep


def check_outputs(output_dir: str | Path, out_scp: str | Path | None = None,
                  vad_dir: str | Path | None = None) -> None:
    """Before a batch: the output folders can be made and written, and so can --out_scp (EnhanceError)."""
    for opt, d in (("--output_dir", output_dir), ("--vad_dir", vad_dir)):
        problem = output_dir_problem(d) if d is not None else None
        if problem:
            raise EnhanceError(f"{opt} {d}: {problem}")
    if out_scp is not None:
        f = Path(out_scp)
        if f.is_dir():
            raise EnhanceError(f"--out_scp {f}: is a folder; give a file name such as {f / 'enhanced.scp'}")
        if f.parent.exists() and not f.parent.is_dir():
            raise EnhanceError(f"--out_scp {f}: {f.parent} is a file, not a folder")
        why = unwritable(f.parent) if f.parent.is_dir() else None
        if why:
            raise EnhanceError(f"--out_scp {f}: cannot write into its folder {f.parent} ({why})")


__all__ = ["AUDIO_SUFFIXES", "OUTPUT_SUFFIXES", "readable_suffixes", "BatchItem", "BatchReport", "collect_inputs", "enhance_batch"]
