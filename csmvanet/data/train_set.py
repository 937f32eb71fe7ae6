"""The training set as ESPnet's enh.sh makes it: speed perturbation and a length filter.

:func:`make_train_dir` writes a new data dir from a training data dir:

- speed perturbation (``--speed_perturb_factors "0.9 1.0 1.1"``, as Kaldi's
  ``perturb_data_dir_speed.sh`` with sox's ``speed``): for each factor f other than 1, a copy of every
  utterance with key ``sp<f>-<utt>`` and speaker ``sp<f>-<spk>``, its audio played f times faster
  (pitch and tempo change together: the samples resampled from f x fs to fs with soxr, so the copy
  has about n / f samples). Factor 1 keeps the original keys and files. The mixture (wav.scp), the
  clean speech (spk1.scp) and the noise (noise1.scp, when present) get the same resampling, so the
  mixture stays the sum of its parts (a resampler is linear); where the result would clip the 16-bit
  range, all three are scaled by the same gain.
- a length filter (``--min_wav_duration``/``--max_wav_duration`` in seconds, enh.sh stage 4):
  utterances kept when min x fs < samples < max x fs (strict, as enh.sh), from utt2num_samples.

Per-utterance text files (utt2spk, utt2noise, utt2snr, utt2category, ...) are carried with the new
keys; spk2utt and utt2num_samples are rebuilt. Lists describing how the originals were mixed
(spec.tsv, mixtures.tsv) and files keyed by frames (vad_labels.scp, feats.scp) are not carried: the
caller recomputes the VAD labels of the new clean speech. A data dir with segments is refused.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from csmvanet.audio.io import audio_info, read_audio, resample, write_audio
from csmvanet.base.process_pool import run_jobs
from csmvanet.data.datadir import DataDirError, read_scp, utt2spk_to_spk2utt, write_scp

AUDIO_LISTS = ("wav.scp", "spk1.scp", "noise1.scp")   # resampled together
NOT_CARRIED = ("spk2utt", "utt2num_samples", "utt2dur", "vad_labels.scp", "vad.scp", "frame_shift",
               "feats.scp", "spec.tsv", "mixtures.tsv", "segments", "cmvn.scp", "reco2dur")


def parse_factors(text: str) -> list[float]:
    """``"0.9 1.0 1.1"`` -> [0.9, 1.0, 1.1]; ValueError for a non-number, a factor <= 0 or a repeat."""
    out = []
    for word in str(text).split():
        try:
            f = float(word)
        except ValueError:
            raise ValueError(f"speed perturbation factor {word!r} is not a number") from None
        if not 0.1 <= f <= 10:
            raise ValueError(f"speed perturbation factor {word} is out of range (0.1-10)")
        if f in out:
            raise ValueError(f"speed perturbation factor {word} is given twice")
        out.append(f)
    return out


def prefix(factor: float) -> str:
    """Kaldi's key prefix: ``sp0.9-``, ``sp1.1-`` (the factor as written by %g)."""
    return f"sp{factor:g}-"


def _perturb_one(job):
    """Resample one utterance's audio lists by ``factor``; returns (key, num_samples, error)."""
    key, factor, srcs, dsts, fs, subtype = job
    try:
        waves = []
        for src in srcs:
            wave, sr = read_audio(src)
            if sr != fs:
                raise DataDirError(f"{src}: sample rate {sr}, expected {fs}")
            waves.append(resample(wave, fs * factor, fs))
        n = min(len(w) for w in waves)
        waves = [w[:n] for w in waves]
        peak = max(float(np.max(np.abs(w))) if n else 0.0 for w in waves)
        gain = 0.999 / peak if subtype.startswith("PCM") and peak > 0.999 else 1.0
        for w, dst in zip(waves, dsts):
            write_audio(dst, w * gain, fs, subtype=subtype)
        return key, n, None
    except (OSError, ValueError) as e:
        return key, 0, f"{key}: {e}"


def make_train_dir(src: str | Path, dst: str | Path, *, factors: list[float] | None = None, fs: int,
                   audio_format: str = "wav", min_seconds: float | None = None,
                   max_seconds: float | None = None, nj: int = 1, audio_dir: str | Path | None = None,
                   progress=None) -> tuple[int, list[str]]:
    """Write the data dir ``dst`` from ``src`` (see the module docstring); the audio of perturbed
    copies goes to ``<audio_dir>/sp<f>/<list>/<key>.<audio_format>`` (default ``audio_dir``:
    ``dst/data``). Returns (utterances written, failures)."""
    src, dst = Path(src), Path(dst)
    audio_dir = Path(audio_dir) if audio_dir else dst / "data"
    if (src / "segments").is_file():
        raise DataDirError(f"{src}/segments: speed perturbation of segmented dirs is not supported")
    if audio_format not in ("wav", "flac"):
        raise ValueError(f"audio format {audio_format!r}: wav or flac")
    factors = factors or [1.0]
    lists = {name: read_scp(src / name) for name in AUDIO_LISTS if (src / name).is_file()}
    if "wav.scp" not in lists or "spk1.scp" not in lists:
        raise DataDirError(f"{src}: needs wav.scp and spk1.scp")
    keys = list(lists["wav.scp"])
    for name, items in lists.items():
        if set(items) != set(keys):
            raise DataDirError(f"{src}/{name}: its keys differ from wav.scp's (run utils/fix_data_dir.sh)")
    lengths = _lengths(src, lists["wav.scp"])
    texts = {f.name: read_scp(f, allow_empty_value=True) for f in sorted(src.iterdir())
             if f.is_file() and f.name not in NOT_CARRIED and f.name not in AUDIO_LISTS
             and f.name.startswith("utt2")}
    dst.mkdir(parents=True, exist_ok=True)
    out_lists = {name: {} for name in lists}
    out_lengths, jobs, failures = {}, [], []
    subtype = "PCM_16"
    for factor in factors:
        for key in keys:
            if factor == 1.0:
                for name in lists:
                    out_lists[name][key] = lists[name][key]
                out_lengths[key] = lengths[key]
                continue
            new = prefix(factor) + key
            dsts = [audio_dir / f"sp{factor:g}" / name.split(".")[0] / f"{new}.{audio_format}" for name in lists]
            jobs.append((new, factor, [lists[name][key] for name in lists], dsts, fs, subtype))
            for name, d in zip(lists, dsts):
                out_lists[name][new] = str(d.resolve())
    for key, n, err in run_jobs(_perturb_one, jobs, nj, chunksize=8):
        if progress:
            progress()
        if err:
            failures.append(err)
        else:
            out_lengths[key] = n
    lo = None if min_seconds is None else min_seconds * fs
    hi = None if max_seconds is None else max_seconds * fs
    kept = [k for k, n in out_lengths.items() if (lo is None or n > lo) and (hi is None or n < hi)]
    kept_set = set(kept)
    for name, items in out_lists.items():
        write_scp(dst / name, {k: v for k, v in items.items() if k in kept_set})
    write_scp(dst / "utt2num_samples", {k: out_lengths[k] for k in kept})
    for name, items in texts.items():
        out = {}
        for factor in factors:
            for key, value in items.items():
                new = key if factor == 1.0 else prefix(factor) + key
                if new in kept_set:
                    out[new] = prefix(factor) + value if name == "utt2spk" and factor != 1.0 else value
        write_scp(dst / name, out)
    if "utt2spk" in texts:
        write_scp(dst / "spk2utt", utt2spk_to_spk2utt(read_scp(dst / "utt2spk")))
    return len(kept), failures


def _lengths(src: Path, wavs: dict[str, str]) -> dict[str, int]:
    """utt2num_samples of ``src`` when it covers every key, else the audio headers."""
    f = src / "utt2num_samples"
    known = {k: int(v) for k, v in read_scp(f).items()} if f.is_file() else {}
    return {k: known[k] if k in known else audio_info(p)[1] for k, p in wavs.items()}


__all__ = ["AUDIO_LISTS", "parse_factors", "prefix", "make_train_dir"]
