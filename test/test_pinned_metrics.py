"""Pinned metric values for one fixed degraded pair, through the scoring entry point.

The pair is deterministic everywhere (``voiced`` and ``splitmix_noise`` of test_metrics: no RNG whose
stream could change between numpy versions): reference = voiced speech-like signal, degraded =
0.5 * reference + white noise (about 30 dB SI-SDR). The numbers were computed once (pesq 0.0.4,
pystoi 0.4.1) and catch a metric computed in the wrong mode (PESQ wb <-> nb, extended STOI) or on
swapped arguments (PESQ and STOI are not symmetric).

SI-SDR is symmetric in its two arguments wherever both are non-silent (it equals
10 log10(rho^2 / (1 - rho^2)) with rho their correlation), so its orientation is observable only
where one signal is silent: a silent *reference* is undefined (NaN), a silent estimate is not.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from csmvanet.metrics import pesq_score, si_sdr, stoi_score
from csmvanet.metrics.scoring import score_arrays
from test_metrics import splitmix_noise, voiced

FS = 16000


def fixed_pair(fs: int = FS) -> tuple[np.ndarray, np.ndarray]:
    n = 3 * 16000
    ref = voiced(n) + 1e-3 * splitmix_noise(n, 1)
    deg = 0.5 * ref + 0.006 * splitmix_noise(n, 7)
    if fs == 8000:
        return ref[::2].copy(), deg[::2].copy()
    return ref, deg


# computed once; see the module docstring
PESQ_WB_16K = 2.0875821113586426
PESQ_NB_16K = 3.255803346633911
PESQ_NB_8K = 3.2054266929626465
STOI_16K = 0.9301484229096504
ESTOI_16K = 0.8211269922098633
SI_SDR_16K = 29.565992911335822


def test_scoring_uses_wideband_pesq_and_classic_stoi_at_16k():
    ref, deg = fixed_pair()
    r = score_arrays(ref, deg, FS)
    assert r["pesq"] == pytest.approx(PESQ_WB_16K, abs=1e-3)
    assert r["stoi"] == pytest.approx(STOI_16K, abs=1e-5)
    assert r["si_sdr"] == pytest.approx(SI_SDR_16K, abs=1e-6)
    # the same pair scored in the other orientation gives other PESQ and STOI values
    swapped = score_arrays(deg, ref, FS)
    assert abs(swapped["pesq"] - PESQ_WB_16K) > 0.05 or abs(swapped["stoi"] - STOI_16K) > 1e-3


def test_scoring_uses_narrowband_pesq_at_8k():
    ref, deg = fixed_pair(8000)
    r = score_arrays(ref, deg, 8000)
    assert r["pesq"] == pytest.approx(PESQ_NB_8K, abs=1e-3)


def test_pesq_and_stoi_modes_when_asked():
    ref, deg = fixed_pair()
    assert pesq_score(ref, deg, FS, mode="nb") == pytest.approx(PESQ_NB_16K, abs=1e-3)
    assert pesq_score(ref, deg, FS, mode="wb") == pytest.approx(PESQ_WB_16K, abs=1e-3)
    assert pesq_score(ref, deg, FS) == pytest.approx(PESQ_WB_16K, abs=1e-3)
    assert stoi_score(ref, deg, FS) == pytest.approx(STOI_16K, abs=1e-5)
    assert stoi_score(ref, deg, FS, extended=True) == pytest.approx(ESTOI_16K, abs=1e-5)


def test_si_sdr_value_and_orientation():
    ref, deg = fixed_pair()
    assert si_sdr(ref, deg) == pytest.approx(SI_SDR_16K, abs=1e-6)
    # a silent reference is undefined; a silent estimate is not (it is the reference that is first)
    silent = np.zeros_like(ref)
    assert math.isnan(si_sdr(silent, deg)) and not math.isnan(si_sdr(deg, silent))
    # ... and the scorer passes the reference first
    assert math.isnan(score_arrays(silent, deg, FS)["si_sdr"])
