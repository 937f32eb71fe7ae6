"""Composite quality measures of Hu & Loizou (2008): LLR, WSS, segmental SNR and CSIG/CBAK/COVL.

Vectorised numpy implementation that follows the conventions of Loizou's MATLAB ``composite.m``
(the reference implementation of the paper) exactly, so that numbers agree with the MATLAB toolbox:

* Both signals are cut to the shorter length and ``eps`` (2.2e-16, MATLAB's ``eps``) is added to
  every sample, so exact digital silence does not give NaN.
* Framing (LLR, WSS and segSNR alike): window ``round(0.030 * fs)`` samples (480 at 16 kHz),
  hop ``floor(window / 4)`` (75 % overlap, 120 at 16 kHz), the "hanning" window
  ``0.5 * (1 - cos(2 pi n / (W + 1)))``, n = 1..W. The number of frames is
  ``floor(L / hop - W / hop)``: the last possible frame is skipped, as the MATLAB loop does.
* LLR: LPC order 10 below 10 kHz sampling, 16 otherwise; autocorrelation method with
  Levinson-Durbin (batched over frames here); per frame ``log(a_d' R_c a_d / a_c' R_c a_c)``
  with R_c the Toeplitz autocorrelation matrix of the clean frame. LLR is not clamped.
* WSS (Klatt 1982): power spectrum with an FFT of ``2^nextpow2(2W)`` points, 25 Gaussian critical
  band filters (zeroed below their -30 dB point), band energies floored at 1e-10 before the dB
  conversion, Kmax = 20, Klocmax = 1, the nearest-peak search of ``composite.m`` (including its
  off-by-one: searching right it takes the band before the peak), and the distortion normalised
  by the sum of the weights.
* segSNR: per frame ``10 log10(S / (N + eps) + eps)`` clamped to [-10, 35] dB, then the plain
  mean over all frames (not trimmed).
* 95 % rule: LLR and WSS average the ``round(0.95 * n_frames)`` smallest frame values, with
  MATLAB rounding (halves away from zero).
* CSIG = 3.093 - 1.029 LLR + 0.603 PESQ - 0.009 WSS,
  CBAK = 1.634 + 0.478 PESQ - 0.007 WSS + 0.063 segSNR,
  COVL = 1.594 + 0.805 PESQ - 0.512 LLR - 0.007 WSS; each clamped to [1, 5] per file.
  PESQ fed in: wide-band P.862.2 at 16 kHz, raw narrow-band P.862 at 8 kHz (see metrics.basic).

Numerics: everything runs in float64; the Levinson-Durbin recursion accumulates in the same order
as ``lpcoeff`` in composite.m. Frames where the clean signal is exact digital silence (only the
added eps) make the LPC problem ill-conditioned in composite.m itself: their LLR is rounding
noise (any value up to ~35), and two correct implementations may differ there by ~0.5 per frame
(~0.01 on an utterance that is half digital silence). On signals with any noise floor the
vectorised code matches a frame-by-frame transcription of composite.m to ~1e-12
(test/test_metrics.py, bench/bench_metrics.py).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

EPS = float(np.finfo(np.float64).eps)  # MATLAB eps, added to both signals
ALPHA = 0.95  # fraction of (best) frames kept for LLR and WSS
SEGSNR_MIN, SEGSNR_MAX = -10.0, 35.0
WSS_KMAX, WSS_KLOCMAX = 20.0, 1.0
WSS_ENERGY_FLOOR = 1e-10

# Critical band centre frequencies and bandwidths (Hz) of composite.m / Klatt.
_CENT_FREQ = np.array([
    50.0000, 120.000, 190.000, 260.000, 330.000, 400.000, 470.000, 540.000, 617.372, 703.378,
    798.717, 904.128, 1020.38, 1148.30, 1288.72, 1442.54, 1610.70, 1794.16, 1993.93, 2211.08,
    2446.71, 2701.97, 2978.04, 3276.17, 3597.63])
_BANDWIDTH = np.array([
    70.0000, 70.0000, 70.0000, 70.0000, 70.0000, 70.0000, 70.0000, 77.3724, 86.0056, 95.3398,
    105.411, 116.256, 127.914, 140.423, 153.823, 168.154, 183.457, 199.776, 217.153, 235.631,
    255.255, 276.072, 298.126, 321.465, 346.136])

__all__ = [
    "frame_params", "lpc_order", "llr_frames", "wss_frames", "segsnr_frames", "trimmed_mean",
    "matlab_round", "composite_from_parts", "composite_measures",
]


def frame_params(fs: int) -> tuple[int, int]:
    """(window, hop) in samples: 30 ms and a quarter of it (480, 120 at 16 kHz)."""
    win = matlab_round(30 * fs / 1000)
    return win, win // 4


def lpc_order(fs: int) -> int:
    return 10 if fs < 10000 else 16


def matlab_round(x: float) -> int:
    """Round halves away from zero (MATLAB ``round``), not to even as Python does."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def num_frames(length: int, fs: int) -> int:
    win, hop = frame_params(fs)
    return max(int(math.floor(length / hop - win / hop)), 0)


@lru_cache(maxsize=8)
def _window(win: int) -> np.ndarray:
    n = np.arange(1, win + 1, dtype=np.float64)
    return 0.5 * (1.0 - np.cos(2.0 * np.pi * n / (win + 1)))


@lru_cache(maxsize=8)
def _crit_filters(fs: int) -> tuple[np.ndarray, int]:
    """Critical band filters [bins, 25] (columns) and the FFT size, for sampling rate fs."""
    win, _ = frame_params(fs)
    n_fft = 1 << int(math.ceil(math.log2(2 * win)))
    half = n_fft // 2
    max_freq = fs / 2.0
    min_factor = math.exp(-30.0 / (2.0 * 2.303))  # -30 dB point of the filter
    j = np.arange(half, dtype=np.float64)[None, :]
    f0 = np.floor(_CENT_FREQ / max_freq * half)[:, None]
    bw = (_BANDWIDTH / max_freq * half)[:, None]
    norm = (np.log(_BANDWIDTH[0]) - np.log(_BANDWIDTH))[:, None]
    filt = np.exp(-11.0 * ((j - f0) / bw) ** 2 + norm)
    filt = filt * (filt > min_factor)
    # Bins above the highest non-zero filter weight never contribute: drop them (exact).
    top = int(np.nonzero(filt.any(axis=0))[0].max()) + 1
    return np.ascontiguousarray(filt[:, :top].T), n_fft


def _prepare(ref: np.ndarray, deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    deg = np.asarray(deg, dtype=np.float64).reshape(-1)
    n = min(ref.size, deg.size)
    return ref[:n] + EPS, deg[:n] + EPS


def _frames(x: np.ndarray, fs: int) -> np.ndarray:
    """Windowed frames [n_frames, win] (copy) of an already prepared signal."""
    win, hop = frame_params(fs)
    nf = num_frames(x.size, fs)
    if nf < 1:
        raise ValueError(f"signal of {x.size} samples is too short for the composite measures "
                         f"(at least {win + hop} samples at {fs} Hz)")
    view = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:nf]
    return view * _window(win)


# ---------------------------------------------------------------------------------------------
# Per-frame measures on windowed frames
# ---------------------------------------------------------------------------------------------

def _autocorr(frames: np.ndarray, order: int) -> np.ndarray:
    """Autocorrelation lags 0..order of each frame -> [n_frames, order + 1]."""
    w = frames.shape[1]
    out = np.empty((frames.shape[0], order + 1))
    for k in range(order + 1):
        out[:, k] = np.einsum("ij,ij->i", frames[:, : w - k], frames[:, k:])
    return out


def _levinson(r: np.ndarray) -> np.ndarray:
    """Batched Levinson-Durbin: lags [n, p+1] -> prediction polynomials [n, p+1] = [1, -a]."""
    n, p1 = r.shape
    p = p1 - 1
    a = np.zeros((n, p))
    err = r[:, 0].copy()
    for i in range(p):
        # reflection coefficient k_i = (R[i+1] - sum_j a_j R[i-j]) / E_i
        acc = np.zeros(n)
        for j in range(i):  # same summation order as composite.m's lpcoeff
            acc += a[:, j] * r[:, i - j]
        k = (r[:, i + 1] - acc) / err
        if i:
            a[:, :i] = a[:, :i] - k[:, None] * a[:, i - 1::-1]
        a[:, i] = k
        err = (1.0 - k * k) * err
    return np.concatenate([np.ones((n, 1)), -a], axis=1)


def _llr_from_frames(cf: np.ndarray, pf: np.ndarray, order: int) -> np.ndarray:
    rc = _autocorr(cf, order)
    rp = _autocorr(pf, order)
    ac = _levinson(rc)
    ap = _levinson(rp)
    idx = np.abs(np.arange(order + 1)[:, None] - np.arange(order + 1)[None, :])
    toe = rc[:, idx]  # [n, p+1, p+1] Toeplitz matrices of the clean lags
    num = np.sum(np.matmul(ap[:, None, :], toe)[:, 0, :] * ap, axis=1)
    den = np.sum(np.matmul(ac[:, None, :], toe)[:, 0, :] * ac, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(num / den)


def _wss_from_frames(cf: np.ndarray, pf: np.ndarray, fs: int) -> np.ndarray:
    filt, n_fft = _crit_filters(fs)
    both = np.concatenate([cf, pf], axis=0)
    spec = np.fft.rfft(both, n=n_fft, axis=1)[:, : filt.shape[0]]
    power = spec.real ** 2 + spec.imag ** 2
    energy = 10.0 * np.log10(np.maximum(power @ filt, WSS_ENERGY_FLOOR))  # [2n, 25]
    nb = energy.shape[1]
    slope = energy[:, 1:] - energy[:, :-1]  # [2n, 24]
    lo = energy[:, :-1]
    pos = np.arange(nb - 1)
    # Search right (slope > 0): first band k >= i with slope <= 0 (nb - 1 if none), peak E[k - 1].
    nxt = np.where(slope <= 0, pos, nb - 1)
    nxt = np.minimum.accumulate(nxt[:, ::-1], axis=1)[:, ::-1]
    # Search left (slope <= 0): last band k <= i with slope > 0 (-1 if none), peak E[k + 1].
    prv = np.maximum.accumulate(np.where(slope > 0, pos, -1), axis=1)
    peak_idx = np.where(slope > 0, nxt - 1, prv + 1)
    loc_peak = np.take_along_axis(energy, peak_idx, axis=1)
    w_max = WSS_KMAX / (WSS_KMAX + energy.max(axis=1, keepdims=True) - lo)
    w_loc = WSS_KLOCMAX / (WSS_KLOCMAX + loc_peak - lo)
    w_all = w_max * w_loc
    n = cf.shape[0]
    w = 0.5 * (w_all[:n] + w_all[n:])
    return np.sum(w * (slope[:n] - slope[n:]) ** 2, axis=1) / np.sum(w, axis=1)


def _segsnr_from_frames(cf: np.ndarray, pf: np.ndarray) -> np.ndarray:
    sig = np.einsum("ij,ij->i", cf, cf)
    diff = cf - pf
    noise = np.einsum("ij,ij->i", diff, diff)
    snr = 10.0 * np.log10(sig / (noise + EPS) + EPS)
    return np.clip(snr, SEGSNR_MIN, SEGSNR_MAX)


# ---------------------------------------------------------------------------------------------
# Public functions on signals
# ---------------------------------------------------------------------------------------------

def llr_frames(ref: np.ndarray, deg: np.ndarray, fs: int) -> np.ndarray:
    """Per-frame log-likelihood ratio (not sorted, not trimmed)."""
    r, d = _prepare(ref, deg)
    return _llr_from_frames(_frames(r, fs), _frames(d, fs), lpc_order(fs))


def wss_frames(ref: np.ndarray, deg: np.ndarray, fs: int) -> np.ndarray:
    """Per-frame weighted spectral slope distance (not sorted, not trimmed)."""
    r, d = _prepare(ref, deg)
    return _wss_from_frames(_frames(r, fs), _frames(d, fs), fs)


def segsnr_frames(ref: np.ndarray, deg: np.ndarray, fs: int) -> np.ndarray:
    """Per-frame segmental SNR in dB, clamped to [-10, 35]."""
    r, d = _prepare(ref, deg)
    return _segsnr_from_frames(_frames(r, fs), _frames(d, fs))


def trimmed_mean(values: np.ndarray, alpha: float = ALPHA) -> float:
    """Mean of the ``round(alpha * n)`` smallest values (MATLAB rounding): composite.m's 95 % rule."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    keep = matlab_round(v.size * alpha)
    return float(np.mean(v[:keep])) if keep > 0 else float("nan")


def composite_from_parts(pesq: float, llr: float, wss: float, segsnr: float) -> dict[str, float]:
    """CSIG, CBAK, COVL from PESQ and the (trimmed) LLR, WSS and segSNR; each clamped to [1, 5]."""
    csig = 3.093 - 1.029 * llr + 0.603 * pesq - 0.009 * wss
    cbak = 1.634 + 0.478 * pesq - 0.007 * wss + 0.063 * segsnr
    covl = 1.594 + 0.805 * pesq - 0.512 * llr - 0.007 * wss
    clamp = lambda x: float(min(5.0, max(1.0, x))) if np.isfinite(x) else float("nan")  # noqa: E731
    return {"csig": clamp(csig), "cbak": clamp(cbak), "covl": clamp(covl)}


def composite_measures(ref: np.ndarray, deg: np.ndarray, fs: int, pesq: float | None = None,
                       pesq_mode: str | None = None) -> dict[str, float]:
    """LLR, WSS, segSNR (utterance values) and CSIG, CBAK, COVL of one pair.

    ``pesq``: the PESQ score to combine; when None it is computed with the ``pesq`` package:
    wide-band P.862.2 at 16 kHz, raw narrow-band P.862 at 8 kHz (or ``pesq_mode``). A NaN PESQ (e.g. a
    silent reference) gives NaN composites; LLR, WSS and segSNR are still returned.
    """
    r, d = _prepare(ref, deg)
    cf, pf = _frames(r, fs), _frames(d, fs)
    llr = trimmed_mean(_llr_from_frames(cf, pf, lpc_order(fs)))
    wss = trimmed_mean(_wss_from_frames(cf, pf, fs))
    seg = float(np.mean(_segsnr_from_frames(cf, pf)))
    if pesq is None:
        from csmvanet.metrics.basic import pesq_for_composite, pesq_score

        pesq = pesq_for_composite(pesq_score(ref, deg, fs, mode=pesq_mode), fs, pesq_mode)
    out = {"llr": llr, "wss": wss, "segsnr": seg}
    out.update(composite_from_parts(pesq, llr, wss, seg))
    return out
