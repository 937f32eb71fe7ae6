"""Inference settings chosen on a validation set: the stage-2 gain floor, the input mix, the
per-segment SNR limit (:func:`csmvanet.infer.output_level.snr_limit_mix`) and the VAD threshold.

CSM-VANet's stage 2 multiplies the stage-1 spectrum by ``floor + (1 - floor) * p`` per frame
(``p`` the VAD's speech probability). The paper uses floor 0; a model whose VAD is unsure on unseen
speech loses more on speech frames than it gains on silence, so the floor is worth choosing per model.
The gain acts on the compressed spectrum, so the waveform is not linear in the floor: every floor of
the grid is one enhancement of every utterance, as decoding does it (chunking, limiter), with the
network's output of each chunk computed once and reused for every floor (:class:`_OncePerChunk`).

:func:`choose_settings` scores every floor of a grid (mean PESQ, STOI, SI-SDR over the utterances)
and picks the best by ``criterion``, and picks the VAD threshold of a grid with the highest frame F1
(frames pooled over the utterances) against the data dir's VAD labels. ``write_settings`` stores
them as ``<exp_dir>/inference.yaml``, which loading the experiment dir and packing it
(:mod:`csmvanet.experiment.model_files`) turn into the model's defaults.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from csmvanet.audio.io import AudioError
from csmvanet.base.atomic_files import atomic_write_text
from csmvanet.base.version import __version__, git_hash
from csmvanet.data.datadir import VAD_LABELS, DataDirError, read_scp, vad_labels_file
from csmvanet.data.utt_audio import read_utterance, utterance_audio
from csmvanet.experiment.inference_settings import INFERENCE_FILE, check_setting
from csmvanet.infer.enhancer import EnhanceError, Enhancer
from csmvanet.metrics.basic import pesq_or_reason, si_sdr, stoi_or_reason, vad_from_counts

DEFAULT_FLOORS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
DEFAULT_MIXES = (0.0,)
DEFAULT_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))
CRITERIA = ("pesq", "stoi", "si_sdr")


@dataclass
class Settings:
    """What :func:`choose_settings` found. Scores are keyed by (vad_floor, input_mix)."""

    vad_floor: float
    vad_threshold: float
    criterion: str
    input_mix: float = 0.0
    snr_limit: float | None = None
    grid: dict = field(default_factory=dict)          # (floor, mix, snr_limit) -> {pesq, stoi, si_sdr: mean}
    thresholds: dict = field(default_factory=dict)    # threshold -> pooled frame F1
    num_utts: int = 0
    failed: list = field(default_factory=list)        # "utt: reason"
    noisy: dict = field(default_factory=dict)         # {pesq, stoi, si_sdr: mean} of the unprocessed input
    by_snr: dict = field(default_factory=dict)        # snr -> {"n": count, "noisy" | setting: scores}
    keep_stoi: bool = False                           # chosen among the settings that keep STOI ...
    kept_stoi: bool = True                            # ... and one of them did
    stoi_se: float = 0.0                              # ... by this many standard errors
    threshold_note: str = ""                          # why vad_threshold was not chosen (then 0.5)


class _OncePerChunk:
    """A runner that runs the wrapped one once per distinct input (one utterance's chunks): the floors
    change only the synthesis, so every floor after the first reuses the network's outputs."""

    def __init__(self, runner):
        self.runner, self.outputs = runner, {}

    def __call__(self, feats):
        import hashlib

        key = (tuple(feats.shape), hashlib.sha1(feats.detach().cpu().numpy().tobytes()).digest())
        if key not in self.outputs:
            self.outputs[key] = self.runner(feats)
        return self.outputs[key]


def _scores(ref: np.ndarray, y: np.ndarray, sr: int) -> dict:
    return {"pesq": pesq_or_reason(ref, y, sr)[0], "stoi": stoi_or_reason(ref, y, sr)[0], "si_sdr": si_sdr(ref, y)}


def _grid_scores(enhancer: Enhancer, x: np.ndarray, ref: np.ndarray, sr: int, grid) -> tuple[dict, np.ndarray]:
    """({"noisy" | (floor, mix, snr_limit): {pesq, stoi, si_sdr}}, VAD probabilities) of one utterance."""
    out, vad = {"noisy": _scores(ref, x, sr)}, None
    enhancer.runner.outputs.clear()
    for f, m, lim in grid:
        enhancer.set_vad_floor(f)
        enhancer.set_input_mix(m)
        enhancer.set_snr_limit(lim)
        y, vad = enhancer.enhance(x, sr)
        out[(f, m, lim)] = _scores(ref, y, sr)
    return out, vad


def _mean(rows: list[dict]) -> dict:
    return {k: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan
            for k, v in ((k, np.array([r[k] for r in rows], dtype=np.float64)) for k in CRITERIA)}


def _counts(labels: np.ndarray, probs: np.ndarray, thresholds) -> np.ndarray:
    """[len(thresholds), 4] frame counts (tp, fp, fn, tn) of ``probs >= threshold``."""
    n = min(labels.size, probs.size)
    y, p = labels[:n] > 0, probs[:n]
    rows = []
    for t in thresholds:
        d = p >= t
        rows.append((np.sum(d & y), np.sum(d & ~y), np.sum(~d & y), np.sum(~d & ~y)))
    return np.asarray(rows, dtype=np.int64)


def _values(values, key: str) -> list:
    """The distinct values of setting ``key``, checked by its rule (ValueError naming the key), sorted;
    SNR limits from none (no limit) down to the lowest."""
    values = {check_setting(key, v) for v in values}
    if not values:
        raise ValueError(f"no {key} given")
    return sorted(values, key=_limit_key, reverse=True) if key == "snr_limit" else sorted(values)


def _grid_of(floors, mixes, limits=(None,)) -> list[tuple[float, float, float | None]]:
    floors, mixes = _values(floors, "vad_floor"), _values(mixes, "input_mix")
    return [(f, m, lim) for lim in _values(limits, "snr_limit") for m in mixes for f in floors]


def _limit_key(lim: float | None) -> float:
    return math.inf if lim is None else lim


def _keeps_stoi(part: dict, c, stoi_se: float) -> bool:
    """Mean STOI of setting ``c`` not below the noisy input's, by ``stoi_se`` standard errors of the
    per-utterance difference (``part``: one SNR's {"noisy", c: means, "stoi_diffs": {c: diffs}})."""
    d = np.asarray(part["stoi_diffs"][c], dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return False
    se = float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0
    return float(d.mean()) - stoi_se * se >= 0.0


def choose_settings(enhancer: Enhancer, data_dir: str | Path, *, floors=DEFAULT_FLOORS, mixes=(0.0,),
                    snr_limits=(None,), thresholds=DEFAULT_THRESHOLDS, criterion: str = "pesq",
                    keep_stoi: bool = False, stoi_se: float = 0.0, progress: bool = True,
                    say: Callable[[str], None] = print) -> Settings:
    """Score every (floor, input_mix, snr_limit) of the grid and every threshold on ``data_dir``
    (wav.scp, spk1.scp, vad_labels.scp; utt2snr if there). The setting of the highest mean
    ``criterion`` is chosen (ties: the larger floor, the smaller mix, the higher limit); with
    ``keep_stoi`` only among the settings whose mean STOI is not below the noisy input's at any SNR
    (utt2snr; without it, overall), with a margin of ``stoi_se`` standard errors of the per-utterance
    STOI difference (0: the means alone), and if none is, among all (``kept_stoi`` False, said through
    ``say``). The threshold of the highest pooled F1 is chosen (ties: the one nearest 0.5). An
    utterance that cannot be read or enhanced is named through ``say`` and left out; none left raises
    ValueError."""
    import kaldiio
    from tqdm import tqdm

    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    grid = _grid_of(floors, mixes, snr_limits)
    if not stoi_se >= 0.0:
        raise ValueError(f"stoi_se must be a number >= 0, got {stoi_se!r}")
    thresholds = _values(thresholds, "vad_threshold")
    data_dir = Path(data_dir)
    try:
        noisy, clean = utterance_audio(data_dir, "wav.scp"), utterance_audio(data_dir, "spk1.scp")
    except (DataDirError, OSError) as e:
        raise ValueError(f"{data_dir}: {e}") from None
    labels_path, _ = vad_labels_file(data_dir)
    labels = {}
    if labels_path is not None and enhancer.model.vad is not None:
        labels = read_scp(labels_path)
    utt2snr = read_scp(data_dir / "utt2snr") if (data_dir / "utt2snr").is_file() else {}
    rows: dict = {}                                     # utt -> {"noisy" | setting: scores}
    counts = np.zeros((len(thresholds), 4), dtype=np.int64)
    failed = []
    keep = enhancer.vad_floor, enhancer.input_mix, enhancer.runner, enhancer.snr_limit
    enhancer.runner = _OncePerChunk(keep[2])
    try:
        for utt in tqdm(sorted(noisy), desc="tune", disable=not progress):
            try:
                if utt not in clean:
                    raise ValueError(f"not in {data_dir / 'spk1.scp'}")
                x, sr = read_utterance(noisy[utt])
                ref, sr_ref = read_utterance(clean[utt])
                if x.ndim != 1 or ref.ndim != 1 or sr != sr_ref:
                    raise ValueError(f"noisy and reference must be mono at one rate ({x.shape} at {sr} Hz, "
                                     f"{ref.shape} at {sr_ref} Hz)")
                scores, vad = _grid_scores(enhancer, x, ref, sr, grid)
                if utt in labels and vad is not None:
                    lab = np.asarray(kaldiio.load_mat(labels[utt])).ravel()
                    counts += _counts(lab, np.asarray(vad, dtype=np.float64), thresholds)
            except (EnhanceError, AudioError, ValueError, OSError) as e:
                failed.append(f"{utt}: {e}")
                say(f"WARNING {utt}: left out of the choice ({e})")
                continue
            rows[utt] = scores
    finally:
        enhancer.set_vad_floor(keep[0])
        enhancer.set_input_mix(keep[1])
        enhancer.runner = keep[2]
        enhancer.set_snr_limit(keep[3])
    used = len(noisy) - len(failed)
    if used == 0:
        raise ValueError(f"{data_dir}: no utterance could be scored ({failed[0] if failed else 'empty'})")
    means = {c: _mean([r[c] for r in rows.values()]) for c in grid}
    noisy_mean = _mean([r["noisy"] for r in rows.values()])
    def part(sel: list[dict]) -> dict:
        return {"n": len(sel), **{c: _mean([r[c] for r in sel]) for c in ["noisy", *grid]},
                "stoi_diffs": {c: [r[c]["stoi"] - r["noisy"]["stoi"] for r in sel] for c in grid}}

    by_snr = {}
    for snr in sorted({utt2snr[u] for u in rows if u in utt2snr}, key=float):
        by_snr[float(snr)] = part([r for u, r in rows.items() if utt2snr.get(u) == snr])
    # input_mix 1 is the input itself: compared, never chosen while the grid holds a smaller mix
    allowed, kept = [c for c in grid if c[1] < 1.0] or grid, True
    if keep_stoi:
        parts = list(by_snr.values()) or [part(list(rows.values()))]
        stoi_ok = [c for c in allowed if all(_keeps_stoi(p, c, stoi_se) for p in parts)]
        allowed, kept = stoi_ok or allowed, bool(stoi_ok)
        if not kept:
            say("WARNING no setting of the grid keeps STOI at the noisy input's at every SNR; "
                f"the best {criterion} of all is chosen")
    best = max(allowed, key=lambda c: (np.nan_to_num(means[c][criterion], nan=-np.inf), c[0], -c[1],
                                       _limit_key(c[2])))
    f1 = {t: vad_from_counts(*map(int, c))["vad_f1"] for t, c in zip(thresholds, counts)}
    note = ""
    if counts.sum():
        best_t = max(thresholds, key=lambda t: (np.nan_to_num(f1[t], nan=-1.0), -abs(t - 0.5)))
    else:   # no labels (or no VAD decoder): the usual 0.5, and why
        best_t, f1 = 0.5, {}
        note = ("the model has no VAD decoder" if enhancer.model.vad is None else
                f"no {VAD_LABELS} in {data_dir}" if labels_path is None else
                f"no utterance of {data_dir} with VAD labels in {labels_path.name} was scored")
    for p in by_snr.values():
        del p["stoi_diffs"]
    return Settings(vad_floor=best[0], input_mix=best[1], snr_limit=best[2], vad_threshold=best_t,
                    criterion=criterion, grid=means, thresholds=f1, num_utts=used, failed=failed,
                    noisy=noisy_mean, by_snr=by_snr, keep_stoi=keep_stoi, kept_stoi=kept, stoi_se=stoi_se,
                    threshold_note=note)


def _label(c: tuple, mixes: bool, limits: bool) -> str:
    return (f"{c[0]:g}" + (f" / {c[1]:g}" if mixes or limits else "")
            + (f" / {'none' if c[2] is None else format(c[2], 'g')}" if limits else ""))


def settings_table(s: Settings, chosen: bool = True) -> str:
    """Markdown: the settings with their mean scores (the chosen one marked unless ``chosen=False``),
    PESQ / STOI by SNR where known, the thresholds' F1."""
    mixes = any(c[1] for c in s.grid)
    limits = any(c[2] is not None for c in s.grid)
    head = ("vad_floor / input_mix / snr_limit (dB)" if limits else
            "vad_floor / input_mix" if mixes else "vad_floor")
    pick = (s.vad_floor, s.input_mix, s.snr_limit)
    rows = [f"| {head} | PESQ | STOI | SI-SDR (dB) |", "|---|---:|---:|---:|"]
    if s.noisy:
        m = s.noisy
        rows.append(f"| noisy input | {m['pesq']:.3f} | {m['stoi']:.4f} | {m['si_sdr']:.2f} |")
    for c, m in s.grid.items():
        mark = " (chosen)" if chosen and c == pick else ""
        rows.append(f"| {_label(c, mixes, limits)}{mark} | {m['pesq']:.3f} | {m['stoi']:.4f} | {m['si_sdr']:.2f} |")
    if s.by_snr:
        cols = ["noisy", *s.grid]
        rows += ["", f"PESQ / STOI by SNR ({head}):", "",
                 "| SNR (dB) | utterances | " + " | ".join(c if c == "noisy" else _label(c, mixes, limits) for c in cols) + " |",
                 "|---:|---:|" + "---:|" * len(cols)]
        for snr, d in s.by_snr.items():
            rows.append(f"| {snr:g} | {d['n']} | " + " | ".join(f"{d[c]['pesq']:.2f} / {d[c]['stoi']:.3f}"
                                                              for c in cols) + " |")
    if chosen and s.keep_stoi:
        margin = f" by {s.stoi_se:g} standard errors" if s.stoi_se else ""
        rows += ["", f"Chosen among the settings whose STOI is not below the noisy input's at any SNR{margin}"
                 + ("." if s.kept_stoi else ": none was, so among all.")]
    if s.thresholds:
        rows += ["", "| VAD threshold | frame F1 |", "|---:|---:|"]
        rows += [f"| {t:g}{' (chosen)' if chosen and t == s.vad_threshold else ''} | {v:.4f} |"
                 for t, v in s.thresholds.items()]
    return "\n".join(rows)


def write_settings(exp_dir: str | Path, s: Settings, *, checkpoint: str, data_dir: str | Path,
                   segment: tuple[float, float] | None = None) -> Path:
    """``<exp_dir>/inference.yaml``: the chosen values, what they were chosen for and on, the grid;
    ``segment`` (segment_seconds, overlap_seconds): the chunking they were chosen with, stored too.
    ValueError for an input_mix of 1 (the input itself, which the model would then output)."""
    if not s.input_mix < 1.0:
        raise ValueError(f"input_mix {s.input_mix:g} would make the model output its input unchanged: not stored; "
                         "choose among mixes below 1")
    threshold_from = f"default 0.5, not chosen: {s.threshold_note}" if s.threshold_note else "best frame F1"
    doc = {"vad_floor": s.vad_floor, "vad_threshold": s.vad_threshold, "input_mix": s.input_mix,
           "snr_limit": s.snr_limit}
    if segment is not None:
        doc.update(segment_seconds=float(segment[0]), overlap_seconds=float(segment[1]))
    doc.update({"checkpoint": checkpoint, "chosen_on": str(data_dir), "num_utts": s.num_utts,
                "criterion": s.criterion, "keep_stoi": s.keep_stoi, "stoi_se": s.stoi_se,
                "kept_stoi": s.kept_stoi, "vad_threshold_from": threshold_from,
                "csmvanet_version": __version__, "git_hash": git_hash(),
                "noisy": {k: round(v, 4) for k, v in s.noisy.items()},
                "grid": [{"vad_floor": f, "input_mix": m, "snr_limit": lim, **{k: round(v, 4) for k, v in sc.items()}}
                         for (f, m, lim), sc in s.grid.items()],
                "thresholds": {float(t): round(v, 4) for t, v in s.thresholds.items()}})
    path = Path(exp_dir) / INFERENCE_FILE
    head = (f"# Inference settings of {checkpoint}, chosen by csmvanet-tune-inference on {data_dir}: the "
            f"floor and input mix of the best mean {s.criterion}"
            + (" among those keeping STOI at every SNR" if s.keep_stoi else "")
            + (f" (by {s.stoi_se:g} standard errors)" if s.keep_stoi and s.stoi_se else "")
            + (f", the VAD threshold {s.vad_threshold:g} by default (not chosen: {s.threshold_note}).\n"
               if s.threshold_note else ", the VAD threshold of the best frame F1.\n"))
    atomic_write_text(path, head + yaml.safe_dump(doc, sort_keys=False))
    return path


__all__ = ["CRITERIA", "DEFAULT_FLOORS", "DEFAULT_MIXES", "DEFAULT_THRESHOLDS", "Settings", "choose_settings",
           "settings_table", "write_settings"]
