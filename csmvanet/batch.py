"""Batch enhancement (csmvanet-enhance): inputs to output names, one Enhancer over many files, a report.

:func:`collect_inputs` turns files, folders and a wav.scp into items with output names mirroring
them; :func:`enhance_batch` enhances every item (a failing one is reported in one line and
skipped), writes the optional VAD outputs and the output scp, and returns a :class:`BatchReport`.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import numpy as np

from csmvanet.audio import AudioError
from csmvanet.errors import EnhanceError
from csmvanet.fileio import atomic_path

if TYPE_CHECKING:   # annotation only: the batch driver is handed an Enhancer, it does not build one
    from csmvanet.enhance import Enhancer

AUDIO_SUFFIXES = (".wav", ".flac")


@dataclass
class BatchItem:
    key: str                 # utterance id (scp key, or the input's relative path without suffix)
    source: str              # path or scp value
    out_rel: str = ""        # output path relative to the output dir
    error: str | None = None  # a problem found while collecting the inputs


def _key_of(rel: Path) -> str:
    return "_".join(str(rel.with_suffix("")).split())


def collect_inputs(inputs: Iterable[str], wav_scp: str | None = None,
                   output_format: str | None = None) -> list[BatchItem]:
    """Inputs -> items with output names mirroring them.

    A file gives ``<name>``; a directory gives every ``*.wav``/``*.flac`` below it (recursive, sorted)
    as ``<path relative to the directory>``; ``wav_scp`` gives ``<utt>.wav``. The suffix becomes
    ``output_format`` if given, else stays ``.wav``/``.flac`` (other input suffixes give ``.wav``).
    Inputs that do not exist or clash with an earlier output name are items with ``error`` set.
    """
    from csmvanet.datadir import DataDirError, read_scp

    def out_name(rel: Path, default: str | None = None) -> str:
        suffix = rel.suffix.lower()
        fmt = output_format or default or (suffix[1:] if suffix in AUDIO_SUFFIXES else "wav")
        return str(rel.with_suffix(f".{fmt}") if rel.suffix else Path(f"{rel}.{fmt}"))

    items: list[BatchItem] = []
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():
            found = sorted((f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES and not f.is_dir()),
                           key=lambda f: str(f))
            if not found:
                items.append(BatchItem(str(p), str(p), error=f"{p}: folder holds no .wav or .flac files"))
            for f in found:
                rel = f.relative_to(p)
                items.append(BatchItem(_key_of(rel), str(f), out_name(rel)))
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
        for key, value in entries.items():
            items.append(BatchItem(key, value, out_name(Path(key), "wav") if not output_format
                                   else f"{key}.{output_format}"))
    seen_out: dict[str, str] = {}
    seen_key: dict[str, str] = {}
    for it in items:
        if it.error:
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
    audio_seconds: float = 0.0
    seconds: float = 0.0


def _one_line(source: str, e: BaseException) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    if not isinstance(e, (EnhanceError, AudioError)):
        msg = f"{type(e).__name__}: {msg}"
    return msg if source in msg else f"{source}: {msg}"


def enhance_batch(enhancer: Enhancer, items: list[BatchItem], output_dir: str | Path, *,
                  out_scp: str | Path | None = None, vad_dir: str | Path | None = None,
                  channels: str = "each", subtype: str = "PCM_16", vad_threshold: float = 0.5,
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

    from csmvanet.datadir import write_scp
    from csmvanet.vad import probs_to_segments, write_rttm, write_segments

    output_dir = Path(output_dir)
    rep = BatchReport()
    say = report or (lambda line: tqdm.write(line, file=sys.stderr))
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
        for it in bar:
            if it.error:
                rep.failed.append(it.error)
                say(f"ERROR {it.error}")
                continue
            out_path = output_dir / it.out_rel
            try:
                if Path(it.source).exists() and out_path.resolve() == Path(it.source).resolve():
                    raise EnhanceError(f"{it.source}: output would overwrite the input")
                res = enhancer.enhance_file(it.source, out_path, channels=channels, subtype=subtype)
            except KeyboardInterrupt:
                raise
            except Exception as e:   # one line per bad input; the batch goes on
                rep.failed.append(_one_line(it.source, e))
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
                kaldiio.save_ark(ark, {it.key: vad})
                vad_index[it.key] = f"{ark_path}:{pos + len(it.key.encode()) + 1}"
                num_model = int(round(res.num_samples * enhancer.sample_rate / res.sample_rate))
                segments[it.key] = probs_to_segments(vad, enhancer.stft_cfg, threshold=vad_threshold,
                                                     min_speech=min_speech, min_silence=min_silence,
                                                     num_samples=num_model)
    if vad_dir is not None:
        write_scp(vad_dir / "vad_prob.scp", vad_index)
        write_segments(vad_dir / "segments", segments)
        write_rttm(vad_dir / "vad.rttm", segments)
    if out_scp is not None:
        write_scp(out_scp, dict(rep.done))
    rep.seconds = time.perf_counter() - t0
    return rep


__all__ = ["AUDIO_SUFFIXES", "BatchItem", "BatchReport", "collect_inputs", "enhance_batch"]
