"""The level of each enhanced chunk against its input: the SNR limit and the quiet-input bound.

Both act on one chunk of the Enhancer (:mod:`csmvanet.infer.enhancer`) at the model's rate, per channel,
after the network and before the cross-fade. Only numpy.

:func:`snr_limit_mix`
    How much of the input a chunk keeps so that its estimated SNR stays at or below a limit.

:func:`bound_quiet`
    Quiet in, quiet out. The network normalises each chunk to unit RMS (with the RMS clamped at
    1e-5) and its InstanceNorms normalise again inside, so what it returns for digital silence or a
    lone click is at a level of its own, unrelated to the input: 10 s of zeros with one sample at
    -80 dBFS came out peaking at -42 dBFS, all-zero input as low-level noise. The rule: a chunk whose
    input RMS is below :data:`QUIET_RMS` (-60 dBFS, per channel) is *near-silent*, and its output is
    multiplied by the largest gain <= 1 that makes neither its peak nor its RMS exceed the input's.
    All-zero input therefore gives all-zero output, and near-silent input is never made louder. A
    gain, not a gate: a quiet chunk that the network already returns below its input's level is
    unchanged; chunks at or above -60 dBFS (any normal recording: even a quiet room's noise floor is
    above it) are not touched, so their output is bit-identical to the network's.
"""
from __future__ import annotations

import numpy as np

QUIET_DBFS = -60.0
QUIET_RMS = 10.0 ** (QUIET_DBFS / 20.0)


def snr_limit_mix(enhanced: np.ndarray, noisy: np.ndarray, snr_limit: float) -> float:
    """The share ``m`` of the input to keep so that ``(1 - m) x enhanced + m x noisy`` is no cleaner
    than ``snr_limit`` dB, measured against the model's own estimate: with ``e = enhanced`` as the
    speech and ``noisy - e`` as the noise it removed, the input's estimated SNR is
    ``s = 10 log10(|e|^2 / |noisy - e|^2)`` and the output ``e + m (noisy - e)`` has ``s - 20 log10(m)``,
    so ``m = 10^((s - snr_limit) / 20)``: an input already at or above the limit is kept as it is
    (``m = 1``), a noisier one is enhanced up to the limit. 0 where nothing was removed or ``e`` is
    silent."""
    removed = float(np.sum(np.square(noisy - enhanced, dtype=np.float64)))
    speech = float(np.sum(np.square(enhanced, dtype=np.float64)))
    if removed <= 0.0 or speech <= 0.0:
        return 0.0
    est = 10.0 * np.log10(speech / removed)
    return float(10.0 ** ((est - snr_limit) / 20.0)) if est < snr_limit else 1.0


def bound_quiet(out: np.ndarray, inp: np.ndarray, floor: float = QUIET_RMS) -> np.ndarray:
    """``out`` ``[L, C]`` with each near-silent channel (input RMS below ``floor``) scaled so that
    neither its peak nor its RMS exceeds the input's ``inp`` ``[L, C]``; the other channels as they
    are (``out`` itself is returned when no channel is near-silent)."""
    inp64 = np.asarray(inp, np.float64)
    rms_in = np.sqrt(np.mean(np.square(inp64), axis=0))
    quiet = rms_in < floor
    if not quiet.any():
        return out
    out64 = np.asarray(out, np.float64)
    peak_in, peak_out = np.max(np.abs(inp64), axis=0), np.max(np.abs(out64), axis=0)
    rms_out = np.sqrt(np.mean(np.square(out64), axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.minimum.reduce([np.ones_like(rms_in),
                                  np.where(peak_out > 0, peak_in / peak_out, 1.0),
                                  np.where(rms_out > 0, rms_in / rms_out, 1.0)])
    gain = np.where(quiet, gain, 1.0)
    return (out64 * gain).astype(np.asarray(out).dtype)


__all__ = ["QUIET_DBFS", "QUIET_RMS", "bound_quiet", "snr_limit_mix"]
