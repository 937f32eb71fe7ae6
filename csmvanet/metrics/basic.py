"""Single-pair metrics: PESQ (``pesq`` package), STOI (``pystoi``), SI-SDR and VAD frame metrics."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["pesq_score", "pesq_or_reason", "pesq_mode_for", "pesq_for_composite", "nb_raw_from_lqo",
           "stoi_or_reason", "stoi_score", "si_sdr", "vad_metrics", "binary_auc",
           "PESQ_IMPL", "STOI_IMPL"]

PESQ_SAMPLE_RATES = (8000, 16000)


def _version(pkg: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"


def pesq_mode_for(fs: int, mode: str | None = None) -> str:
    """'wb' (P.862.2) at 16 kHz unless told otherwise; 'nb' (P.862) at 8 kHz."""
    if mode is None:
        return "nb" if fs == 8000 else "wb"
    if mode not in ("wb", "nb"):
        raise ValueError(f"PESQ mode must be 'wb' or 'nb', got {mode!r}")
    if mode == "wb" and fs == 8000:
        raise ValueError("wide-band PESQ needs 16 kHz audio; use narrow-band at 8 kHz")
    return mode


def pesq_impl(mode: str | None = "wb") -> str:
    desc = {"wb": "P.862.2 wb", "nb": "P.862 nb, MOS-LQO"}.get(
        mode, "P.862.2 wb at 16 kHz, P.862 nb MOS-LQO at 8 kHz")
    return f"pesq {_version('pesq')} ({desc})"


PESQ_IMPL = pesq_impl("wb")
STOI_IMPL = f"pystoi {_version('pystoi')} (classic STOI)"


def pesq_score(ref: np.ndarray, deg: np.ndarray, fs: int, mode: str | None = None) -> float:
    """PESQ of one pair; NaN when the ``pesq`` package finds no utterance or the clip is too short.

    Audio at other rates than 8/16 kHz is resampled to 16 kHz (soxr). See :func:`pesq_or_reason`
    for the reason of a NaN.
    """
    value, _ = pesq_or_reason(ref, deg, fs, mode)
    return value


def pesq_or_reason(ref: np.ndarray, deg: np.ndarray, fs: int,
                   mode: str | None = None) -> tuple[float, str | None]:
    """(PESQ, None) or (NaN, reason) for the failures ``pesq`` reports per utterance."""
    from pesq import PesqError, pesq

    if fs not in PESQ_SAMPLE_RATES:
        from csmvanet.audio.io import resample

        ref, deg, fs = resample(ref, fs, 16000), resample(deg, fs, 16000), 16000
    mode = pesq_mode_for(fs, mode)
    n = min(len(ref), len(deg))
    ref = np.asarray(ref[:n], dtype=np.float64)
    deg = np.asarray(deg[:n], dtype=np.float64)
    try:
        return float(pesq(fs, ref, deg, mode)), None
    except PesqError as e:  # NoUtterancesError, BufferTooShortError, ...
        msg = e.args[0] if e.args else ""
        msg = msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)
        return float("nan"), f"PESQ: {type(e).__name__}" + (f" ({msg})" if msg else "")


def nb_raw_from_lqo(mos_lqo: float) -> float:
    """Raw P.862 score from the narrow-band MOS-LQO the ``pesq`` package returns (inverse of the
    P.862.1 mapping 0.999 + 4 / (1 + exp(-1.4945 x + 4.6607))). composite.m combines raw PESQ at 8 kHz."""
    if not math.isfinite(mos_lqo):
        return float("nan")
    y = min(max(mos_lqo, 0.999 + 1e-6), 4.999 - 1e-6)
    return (4.6607 - math.log(4.0 / (y - 0.999) - 1.0)) / 1.4945


def pesq_for_composite(value: float, fs: int, mode: str | None = None) -> float:
    """The PESQ that enters CSIG/CBAK/COVL: wide-band as is at 16 kHz, raw narrow-band at 8 kHz."""
    if fs not in PESQ_SAMPLE_RATES:
        return value  # resampled to 16 kHz wide-band
    return nb_raw_from_lqo(value) if pesq_mode_for(fs, mode) == "nb" else value


def stoi_score(ref: np.ndarray, deg: np.ndarray, fs: int, extended: bool = False) -> float:
    """STOI (pystoi; resamples to 10 kHz internally). NaN if pystoi cannot score the pair."""
    return stoi_or_reason(ref, deg, fs, extended)[0]


def stoi_or_reason(ref: np.ndarray, deg: np.ndarray, fs: int,
                   extended: bool = False) -> tuple[float, str | None]:
    """(STOI, None) or (NaN, reason): too short, or no speech frames left in the reference
    (pystoi would return a placeholder 1e-5 with a warning; we return NaN instead)."""
    import warnings

    from pystoi import stoi

    n = min(len(ref), len(deg))
    if not np.any(ref[:n]):
        return float("nan"), "STOI: the reference is digital silence"
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        try:
            value = float(stoi(np.asarray(ref[:n], np.float64), np.asarray(deg[:n], np.float64), fs,
                               extended=extended))
        except Exception as e:  # pystoi raises plain exceptions for very short input
            return float("nan"), f"STOI: {e}"
    for w in caught:
        if "Not enough STFT frames" in str(w.message):
            return float("nan"), "STOI: no speech frames in the reference"
    return value, None


def si_sdr(ref: np.ndarray, est: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), both signals made zero-mean first.
    NaN for a constant (silent) reference."""
    n = min(len(ref), len(est))
    r = np.asarray(ref[:n], dtype=np.float64)
    e = np.asarray(est[:n], dtype=np.float64)
    r = r - r.mean()
    e = e - e.mean()
    eps = np.finfo(np.float64).eps
    if not np.any(r):
        return float("nan")  # undefined for a silent (constant) reference
    alpha = np.dot(e, r) / (np.dot(r, r) + eps)
    target = alpha * r
    noise = e - target
    return float(10.0 * np.log10((np.dot(target, target) + eps) / (np.dot(noise, noise) + eps)))


def binary_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula with ties counted half; NaN if one class."""
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    s_sorted = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # average ranks over ties
    _, first, counts = np.unique(s_sorted, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def vad_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Frame-level VAD metrics of one utterance: accuracy, precision, recall, F1, AUC + counts.

    ``labels``: 0/1 per frame; ``probs``: speech probabilities per frame (decision ``>= threshold``).
    Both must have the same length (callers trim). Precision/recall/F1 are NaN when undefined
    (no predicted / no true speech frames); the counts (tp, fp, fn, tn) allow pooled values.
    """
    y = np.asarray(labels).ravel() > 0
    p = np.asarray(probs, dtype=np.float64).ravel()
    if y.size != p.size:
        raise ValueError(f"VAD labels ({y.size} frames) and predictions ({p.size}) differ in length")
    pred = p >= threshold
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    tn = int(np.sum(~pred & ~y))
    out = {"vad_tp": tp, "vad_fp": fp, "vad_fn": fn, "vad_tn": tn}
    out.update(vad_from_counts(tp, fp, fn, tn))
    out["vad_auc"] = binary_auc(y, p)
    return out


def vad_from_counts(tp: float, fp: float, fn: float, tn: float) -> dict[str, float]:
    nan = float("nan")
    total = tp + fp + fn + tn
    prec = tp / (tp + fp) if tp + fp else nan
    rec = tp / (tp + fn) if tp + fn else nan
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else nan
    return {"vad_acc": (tp + tn) / total if total else nan, "vad_precision": prec,
            "vad_recall": rec, "vad_f1": f1}
