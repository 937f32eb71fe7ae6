"""Mixture simulation: readable mixture specifications, and mixing speech with noise at an exact SNR.

Two steps, usable separately (``csmvanet-simulate`` exposes both):

1. :func:`make_specs` turns a speech list, a noise list and an SNR spec into mixture
   specifications, deterministically: every random choice of mixture ``utt_id`` comes from a numpy
   Generator seeded with ``(seed, crc32(utt_id))``; which speech utterance a mixture uses comes from
   seeded permutations of the speech list. The result depends only on the inputs and the seed.
2. :func:`mix` realises one specification; :func:`simulate` realises a list of them into wav files
   and a Kaldi data dir, in ``nj`` processes. Mixing involves no randomness, so the bytes written do
   not depend on ``nj`` or on the order of work.

The spec file and :func:`make_specs` live in :mod:`csmvanet.data.mixspec` (re-exported here).

Mixing (:func:`mix`): ``s`` = speech samples ``[speech_offset, speech_offset + length)`` times the
speech gain, zero padded at the end when the utterance is shorter; ``n`` = noise samples from
``noise_offset``, wrapping to the start of the noise file as often as needed. Both are read with
partial reads (soundfile seek + read), so a long noise file is never loaded whole.

SNR definition: ``10 log10(sum s^2 / sum (g n)^2)`` over the whole mixture segment (silences in
the speech included; no active-speech weighting), computed in float64. The noise gain ``g`` is
solved so that this equals ``snr_db`` exactly (up to float rounding; the 16-bit files quantise
each signal separately, which moves the SNR by far less than 0.01 dB at normal levels).

Peak handling: when ``max|s + g n| > max_peak`` (0.99), the mixture, the speech and the noise are
all multiplied by ``max_peak / max|s + g n|``; the SNR is unchanged and the factor is recorded
(``peak_scale`` in ``mixtures.tsv``).

Outputs of :func:`simulate`: ``<out_wav_dir>/noisy/<utt>.wav``, ``clean/<utt>.wav`` (``.flac`` with
``audio_format='flac'``) (the speech
segment actually used, same length) and optionally ``noise/<utt>.wav`` (the scaled noise), each
written atomically; in ``data_dir``: wav.scp (noisy), spk1.scp (clean), noise1.scp (if noise was
written), utt2spk, spk2utt, utt2noise, utt2snr, utt2num_samples and ``mixtures.tsv`` (the spec
columns plus the realised ``speech_gain``, ``noise_gain`` and ``peak_scale`` factors).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from csmvanet.audio.io import AudioError, check_complete, read_audio, unreadable_error, write_audio
from csmvanet.base.atomic_files import remove_stale_temps
from csmvanet.base.interrupts import Interrupted
from csmvanet.base.process_pool import run_jobs
from csmvanet.data.datadir import write_scp
from csmvanet.data.mixspec import (SPEC_COLUMNS, MixSpec, Source, SpecError, ValueSpec, fmt_num, load_sources, make_specs,
                                   mixture_rng, read_spec, stable_hash, write_spec)


# ----------------------------------------------------------------------------------------------
# mixing

def _is_plain_path(value: str) -> bool:
    v = value.strip()
    if v.endswith("|"):
        return False
    head, sep, tail = v.rpartition(":")
    return not (sep and tail.isdigit() and head.endswith(".ark"))


def _check_source(name: str, rate: int, channels: int, total: int, offset: int, sr: int) -> None:
    """AudioError naming ``name`` unless it is mono at ``sr`` with samples past ``offset``."""
    if rate != sr:
        raise AudioError(f"{name}: sample rate {rate} Hz, expected {sr} Hz")
    if channels != 1:
        raise AudioError(f"{name}: {channels} channels, expected mono")
    if total <= 0:
        raise AudioError(f"{name}: zero samples")
    if offset >= total:
        raise AudioError(f"{name}: offset {offset} is past the end ({total} samples)")


def _spans(offset: int, length: int, total: int, tile: bool):
    """(source start, output start, count) of ``length`` samples read from ``offset`` of a ``total``-sample
    source: wrapping around to its start (``tile``) or stopping at its end (the rest stays zero)."""
    pos, off = 0, offset
    while pos < length:
        take = min(length - pos, total - off)
        yield off, pos, take
        pos += take
        if not tile:
            break
        off = 0


def read_segment(value: str, offset: int, length: int, sr: int, *, tile: bool) -> np.ndarray:
    """``length`` float64 samples from ``offset``; past the end: wrap around (tile) or zeros.

    Plain files are read partially (seek + read); pipes and ark entries are read whole.
    """
    out = np.zeros(length, dtype=np.float64)
    if _is_plain_path(value):
        path = value.strip()
        if not os.path.isfile(path):
            raise AudioError(f"{path}: no such file")
        check_complete(path)
        try:
            with sf.SoundFile(path) as f:
                _check_source(path, f.samplerate, f.channels, f.frames, offset, sr)
                for off, pos, take in _spans(offset, length, f.frames, tile):
                    f.seek(off)
                    chunk = f.read(take, dtype="float64", always_2d=True)
                    if chunk.shape[0] != take:
                        raise AudioError(f"{path}: truncated (read {chunk.shape[0]} of {take} samples at {off})")
                    out[pos:pos + take] = chunk[:, 0]
        except (sf.LibsndfileError, RuntimeError, TypeError) as e:
            raise unreadable_error(path, e) from None
        return out
    data, rate = read_audio(value)
    _check_source(value, rate, 1 if data.ndim == 1 else data.shape[1], data.shape[0], offset, sr)
    for off, pos, take in _spans(offset, length, data.shape[0], tile):
        out[pos:pos + take] = data[off:off + take]
    return out


@dataclass
class Mixture:
    noisy: np.ndarray
    clean: np.ndarray
    noise: np.ndarray
    speech_gain: float
    noise_gain: float
    peak_scale: float


def mix(spec: MixSpec, sr: int = 16000, max_peak: float = 0.99) -> Mixture:
    """Realise one mixture (float64 arrays); see the module docstring for the SNR and peak rules."""
    speech_gain = 10.0 ** (spec.speech_gain_db / 20.0)
    try:
        s = read_segment(spec.speech, spec.speech_offset, spec.length, sr, tile=False) * speech_gain
    except AudioError as e:
        raise AudioError(f"speech '{spec.speech_id}': {e}") from None
    try:
        n = read_segment(spec.noise, spec.noise_offset, spec.length, sr, tile=True)
    except AudioError as e:
        raise AudioError(f"noise '{spec.noise_id}': {e}") from None
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(n))):
        raise AudioError(f"{spec.utt_id}: NaN or Inf samples in the speech or noise")
    es, en = _energy(s), _energy(n)
    if es <= 0.0:
        raise AudioError(f"{spec.utt_id}: the speech segment of {spec.speech} is silent (SNR undefined)")
    if en <= 0.0:
        raise AudioError(f"{spec.utt_id}: the noise segment of {spec.noise} is silent (SNR undefined)")
    noise_gain = math.sqrt(es / (en * 10.0 ** (spec.snr_db / 10.0)))
    n *= noise_gain
    y = s + n
    peak = float(np.max(np.abs(y)))
    scale = 1.0
    if peak > max_peak:
        scale = max_peak / peak
        y *= scale
        s *= scale
        n *= scale
    return Mixture(noisy=y, clean=s, noise=n, speech_gain=speech_gain, noise_gain=noise_gain, peak_scale=scale)


def _energy(x: np.ndarray) -> float:
    """sum x^2 in float64 (pairwise summation; avoids BLAS, whose threads stall on busy machines)."""
    return float(np.sum(np.square(x, dtype=np.float64)))


def realised_snr(clean: np.ndarray, noise: np.ndarray) -> float:
    """10 log10(sum clean^2 / sum noise^2) in float64."""
    c = np.asarray(clean, dtype=np.float64)
    n = np.asarray(noise, dtype=np.float64)
    return 10.0 * math.log10(_energy(c) / _energy(n))


# ----------------------------------------------------------------------------------------------
# batch simulation

@dataclass(frozen=True)
class _Job:
    out_wav_dir: str
    sr: int
    subtype: str
    write_noise: bool
    max_peak: float
    audio_format: str = "wav"


def _mix_and_write(spec: MixSpec, job: _Job) -> dict:
    m = mix(spec, job.sr, job.max_peak)
    paths = {}
    kinds = [("noisy", m.noisy), ("clean", m.clean)] + ([("noise", m.noise)] if job.write_noise else [])
    for kind, wave in kinds:
        p = os.path.join(job.out_wav_dir, kind, f"{spec.utt_id}.{job.audio_format}")
        write_audio(p, wave.astype(np.float32) if job.subtype == "FLOAT" else wave, job.sr, subtype=job.subtype)
        paths[kind] = p
    return {"paths": paths, "speech_gain": m.speech_gain, "noise_gain": m.noise_gain, "peak_scale": m.peak_scale}


def _work(args) -> list[tuple[str, dict | None, str | None]]:
    chunk, job = args
    out = []
    for spec in chunk:
        try:
            out.append((spec.utt_id, _mix_and_write(spec, job), None))
        except Exception as e:  # noqa: BLE001 - one bad mixture must not stop the batch
            msg = str(e) if isinstance(e, (AudioError, OSError, ValueError)) else f"{type(e).__name__}: {e}"
            out.append((spec.utt_id, None, f"{spec.utt_id}: {msg}"))
    return out


def simulate(specs: Sequence[MixSpec], out_wav_dir: str | Path, data_dir: str | Path, *, nj: int = 1,
             sr: int = 16000, subtype: str = "PCM_16", write_noise: bool = False, max_peak: float = 0.99,
             progress: bool = True, audio_format: str = "wav") -> list[str]:
    """Mix ``specs`` into wav files and a data dir; returns the failures (one line each).

    Failed mixtures are left out of the data dir; the others are complete. Output bytes are the
    same for any ``nj``.
    """
    if subtype not in ("PCM_16", "FLOAT"):
        raise ValueError(f"subtype must be PCM_16 or FLOAT, got {subtype!r}")
    if audio_format not in ("wav", "flac") or (audio_format == "flac" and subtype == "FLOAT"):
        raise ValueError(f"audio format {audio_format!r} with {subtype}: wav (PCM_16 or FLOAT) or flac (PCM_16)")
    if not 0 < max_peak <= 1:
        raise ValueError(f"max_peak must be in (0, 1], got {max_peak}")
    ids = [s.utt_id for s in specs]
    if len(set(ids)) != len(ids):
        raise SpecError("duplicate utt_id in the mixture specifications")
    job = _Job(os.path.abspath(out_wav_dir), int(sr), subtype, bool(write_noise), float(max_peak), audio_format)
    for kind in ("noisy", "clean") + (("noise",) if write_noise else ()):
        os.makedirs(os.path.join(job.out_wav_dir, kind), exist_ok=True)
        remove_stale_temps(os.path.join(job.out_wav_dir, kind))  # left by a killed earlier run
    nj = max(1, min(int(nj), len(specs) or 1))
    csize = max(1, min(32, len(specs) // (nj * 4) or 1))
    chunks = [(list(specs[i:i + csize]), job) for i in range(0, len(specs), csize)]
    from tqdm import tqdm

    bar = tqdm(total=len(specs), desc="mixing", unit="mix", disable=not progress)
    results: dict[str, dict] = {}
    failures: list[str] = []

    def collect(res):
        for utt, info, err in res:
            if err is None:
                results[utt] = info
            else:
                failures.append(err)
        bar.update(len(res))

    try:
        if nj == 1:
            for c in chunks:
                collect(_work(c))
        else:
            name = lambda c: f"mixture {c[0][0].utt_id}" + (f" .. {c[0][-1].utt_id}" if len(c[0]) > 1 else "")  # noqa: E731
            for res in run_jobs(_work, chunks, nj, describe=name):
                collect(res)
    except Interrupted as e:
        for kind in ("noisy", "clean", "noise"):  # what killed workers left
            remove_stale_temps(os.path.join(job.out_wav_dir, kind))
        e.finished = e.finished or f"mixed {len(results)} of {len(specs)} mixtures (data dir not written)"
        raise
    finally:
        bar.close()

    ok = [s for s in specs if s.utt_id in results]
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    write_scp(data_dir / "wav.scp", {s.utt_id: results[s.utt_id]["paths"]["noisy"] for s in ok})
    write_scp(data_dir / "spk1.scp", {s.utt_id: results[s.utt_id]["paths"]["clean"] for s in ok})
    if write_noise:
        write_scp(data_dir / "noise1.scp", {s.utt_id: results[s.utt_id]["paths"]["noise"] for s in ok})
    elif (data_dir / "noise1.scp").exists():
        (data_dir / "noise1.scp").unlink()  # a stale list from an earlier run would not match
    write_scp(data_dir / "utt2spk", {s.utt_id: s.spk for s in ok})
    spk2utt: dict[str, list[str]] = {}
    for s in sorted(ok, key=lambda s: s.utt_id.encode()):
        spk2utt.setdefault(s.spk, []).append(s.utt_id)
    write_scp(data_dir / "spk2utt", {k: " ".join(v) for k, v in spk2utt.items()})
    write_scp(data_dir / "utt2noise", {s.utt_id: s.noise_type for s in ok})
    write_scp(data_dir / "utt2snr", {s.utt_id: fmt_num(s.snr_db) for s in ok})
    write_scp(data_dir / "utt2num_samples", {s.utt_id: s.length for s in ok})
    extra = {s.utt_id: {k: float(results[s.utt_id][k]) for k in ("speech_gain", "noise_gain", "peak_scale")}
             for s in ok}
    write_spec(data_dir / "mixtures.tsv", sorted(ok, key=lambda s: s.utt_id.encode()),
               comments=["realised mixtures: spec columns + speech_gain, noise_gain, peak_scale (linear factors;",
                         "clean = speech * speech_gain * peak_scale, noise = noise * noise_gain * peak_scale)"],
               extra={k: {c: f"{v:.6g}" for c, v in row.items()} for k, row in extra.items()})
    return failures


# the spec names, re-exported (they were defined here before mixspec.py was split off)
__all__ = ["MixSpec", "Mixture", "SPEC_COLUMNS", "Source", "SpecError", "ValueSpec", "fmt_num", "load_sources",
           "make_specs", "mix", "mixture_rng", "read_segment", "read_spec", "realised_snr", "simulate", "stable_hash",
           "write_spec"]
