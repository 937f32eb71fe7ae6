"""csmvanet.data.clip_quality on synthetic clips whose noise floor, clipping and band limit are known."""
from __future__ import annotations

import numpy as np
import pytest

from csmvanet.data.clip_quality import QualityRule, measure

SR = 16000


def lowpass(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    spec = np.fft.rfft(x)
    spec[np.fft.rfftfreq(len(x), 1 / SR) > cutoff_hz] = 0
    return np.fft.irfft(spec, len(x))


def clean_clip(seed=0, seconds=3.0, level=0.1) -> np.ndarray:
    """Broadband bursts (0.3 s on, 0.2 s off) at ``level`` RMS over a -100 dBFS floor."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    gate = ((t % 0.5) < 0.3).astype(float)
    return level * gate * rng.standard_normal(n) + 1e-5 * rng.standard_normal(n)


def test_clean_clip_passes_with_its_measures():
    q = measure(clean_clip(), SR)
    assert q.duration_s == pytest.approx(3.0)
    assert q.clipped == 0.0
    assert q.loud_db == pytest.approx(-20.0, abs=1.0)        # 0.1 RMS
    assert q.floor_db == pytest.approx(-100.0, abs=2.0)
    assert q.range_db > 70
    assert q.bandwidth_hz > 7500
    assert QualityRule().failures(q) == []


def test_noise_floor_is_measured_and_rejected():
    x = clean_clip() + 0.1 * 10 ** (-25 / 20) * np.random.default_rng(1).standard_normal(3 * SR)  # 25 dB below
    q = measure(x, SR)
    assert q.floor_db == pytest.approx(-45.0, abs=1.5)
    assert q.range_db == pytest.approx(25.0, abs=2.0)
    assert QualityRule().failures(q) == ["noisy"]
    assert QualityRule(min_range_db=20, max_floor_db=-40).failures(q) == []


def test_clipping_share():
    x = np.clip(30 * clean_clip(), -1, 1)
    q = measure(x, SR)
    assert 0.2 < q.clipped < 0.6                               # 3.0 RMS: most burst samples beyond full scale
    assert "clipped" in QualityRule().failures(q)
    one_peak = clean_clip()
    one_peak /= np.abs(one_peak).max()                         # peak-normalised: one sample at 1.0 is no clipping
    assert "clipped" not in QualityRule().failures(measure(one_peak, SR))


@pytest.mark.parametrize("cutoff", [3400.0, 4000.0, 6000.0])
def test_bandwidth_of_a_band_limited_clip(cutoff):
    q = measure(lowpass(clean_clip(), cutoff), SR)
    assert q.bandwidth_hz == pytest.approx(cutoff, abs=300)
    assert ("narrowband" in QualityRule().failures(q)) == (cutoff < 5000)


def test_short_silent_and_bad_input():
    assert QualityRule().failures(measure(clean_clip(seconds=0.45), SR)) == ["short"]
    assert QualityRule().failures(measure(np.zeros(SR), SR)) == ["silent"]
    assert measure(np.zeros(0), SR).duration_s == 0.0
    with pytest.raises(ValueError, match="mono"):
        measure(np.zeros((SR, 2)), SR)
