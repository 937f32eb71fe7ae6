"""Measured quality of one recorded clip, and the rule that says whether it may serve as a clean target.

Volunteer recordings carry their own noise floor, clipping and band limits. :func:`measure` reads them
off the samples (numpy only):

- ``duration_s``: length in seconds.
- ``clipped``: share of samples at or near full scale (``|x| >= clip_level``, 0.99 by default).
- ``floor_db`` / ``loud_db``: the ``floor_pct`` (10th) and ``loud_pct`` (95th) percentiles of the
  energies of non-overlapping 20 ms frames, dB re full scale; ``range_db`` is their difference: a clean
  clip with pauses has its quiet frames far below its loud ones, a clip over a noise floor does not.
- ``bandwidth_hz``: the highest frequency at which the long-term spectrum of the loud frames (those
  within 20 dB of ``loud_db``; Hann frames of 32 ms, hop 16 ms, smoothed over 250 Hz) is still within
  ``band_floor_db`` (50 dB) of its maximum. A clip recorded or coded at 8 kHz shows about 4000.

:class:`QualityRule` turns the measures into a decision: :meth:`QualityRule.failures` lists why a clip
is not clean (empty list: clean). Frame energies are mean squares; a digital-zero frame counts as
-120 dB.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

SILENT_DB = -120.0


@dataclass(frozen=True)
class ClipQuality:
    duration_s: float
    clipped: float          # share of samples at/near full scale
    floor_db: float         # quiet frames (10th percentile of 20 ms frame energies), dBFS
    loud_db: float          # loud frames (95th percentile), dBFS
    range_db: float         # loud_db - floor_db
    bandwidth_hz: float     # where the long-term spectrum of the loud frames falls below its floor

    def to_dict(self) -> dict:
        return asdict(self)


def frame_energies_db(x: np.ndarray, frame: int) -> np.ndarray:
    """Energy (mean square, dB re full scale) of each whole non-overlapping frame of ``frame`` samples;
    a clip shorter than one frame gives one value for the whole clip."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x) // frame
    if n == 0:
        return np.array([max(SILENT_DB, 10 * np.log10(np.mean(x ** 2) + 1e-30))]) if len(x) else np.array([SILENT_DB])
    e = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    return np.maximum(SILENT_DB, 10 * np.log10(e + 1e-30))


def bandwidth_hz(x: np.ndarray, sr: int, loud_db: float, band_floor_db: float = 50.0) -> float:
    """Highest frequency where the long-term spectrum of the loud frames is within ``band_floor_db``
    of its maximum (0 for a silent clip)."""
    x = np.asarray(x, dtype=np.float64)
    n_fft = max(64, int(round(0.032 * sr)))
    hop = n_fft // 2
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    n = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    frames = x[idx]
    e = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-30)
    keep = e >= loud_db - 20.0
    if not np.any(keep) or np.max(e) <= SILENT_DB:
        return 0.0
    spec = np.mean(np.abs(np.fft.rfft(frames[keep] * np.hanning(n_fft), axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    width = max(1, int(round(250.0 / (freqs[1] - freqs[0]))))
    smooth = np.convolve(spec, np.ones(width) / width, mode="same")
    db = 10 * np.log10(smooth + 1e-30)
    above = np.flatnonzero(db >= db.max() - band_floor_db)
    return float(freqs[above[-1]])


def measure(x: np.ndarray, sr: int, *, frame_s: float = 0.02, floor_pct: float = 10.0, loud_pct: float = 95.0,
            clip_level: float = 0.99, band_floor_db: float = 50.0) -> ClipQuality:
    """The measures of a mono clip ``x`` (floats, full scale 1) sampled at ``sr`` Hz."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"expected a mono clip (1-D samples), got shape {x.shape}")
    if sr <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    e = frame_energies_db(x, max(1, int(round(frame_s * sr))))
    floor, loud = float(np.percentile(e, floor_pct)), float(np.percentile(e, loud_pct))
    clipped = float(np.mean(np.abs(x) >= clip_level)) if len(x) else 0.0
    return ClipQuality(duration_s=len(x) / sr, clipped=clipped, floor_db=floor, loud_db=loud,
                       range_db=loud - floor, bandwidth_hz=bandwidth_hz(x, sr, loud, band_floor_db))


@dataclass(frozen=True)
class QualityRule:
    """A clip is a clean target when every limit holds (see the recipe README for the numbers chosen)."""
    min_clip_seconds: float = 0.5   # shorter clips say too little to judge or to learn from
    max_clip_seconds: float = 30.0  # longer ones are not single prompts
    max_clipped: float = 0.001      # share of samples at/near full scale
    min_range_db: float = 30.0      # loud_db - floor_db
    max_floor_db: float = -45.0     # quiet frames above this are a noise floor, not a pause
    min_loud_db: float = -40.0      # speech this weak is mostly its recording's noise
    min_bandwidth_hz: float = 5000.0

    def failures(self, q: ClipQuality) -> list[str]:
        """Why ``q`` is not a clean target (short names, in a fixed order); empty when it is."""
        out = []
        if q.loud_db <= SILENT_DB + 1:
            return ["silent"]
        if q.duration_s < self.min_clip_seconds:
            out.append("short")
        if q.duration_s > self.max_clip_seconds:
            out.append("long")
        if q.clipped > self.max_clipped:
            out.append("clipped")
        if q.range_db < self.min_range_db or q.floor_db > self.max_floor_db:
            out.append("noisy")
        if q.loud_db < self.min_loud_db:
            out.append("quiet")
        if q.bandwidth_hz < self.min_bandwidth_hz:
            out.append("narrowband")
        return out
