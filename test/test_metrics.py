"""Metrics: identity, agreement with Loizou's composite.m, monotonic behaviour, VAD and SI-SDR.

Reference values for LLR, WSS, segSNR and CSIG/CBAK/COVL come from ``loop_composite`` in
``bench/bench_metrics.py``: a plain frame-by-frame transcription of Loizou's MATLAB
``composite.m`` (the published reference implementation of Hu & Loizou 2008), written
independently of the vectorised code in ``csmvanet/metrics/composite.py``. The tests compare the
two on deterministic signals, and ``PINNED`` holds numbers computed once by that loop (numpy 2.4,
x86_64) so that a change to both implementations at once is caught as well.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from csmvanet.metrics import composite as C
from csmvanet.metrics.basic import (binary_auc, nb_raw_from_lqo, pesq_or_reason, si_sdr,
                                    stoi_or_reason, vad_metrics)
from csmvanet.metrics.scoring import score_arrays

FS = 16000


def _load_bench():
    path = Path(__file__).resolve().parents[1] / "bench" / "bench_metrics.py"
    spec = importlib.util.spec_from_file_location("bench_metrics", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bench = _load_bench()


# ---------------------------------------------------------------------------------------------
# Deterministic test signals (no RNG whose stream could change between numpy versions)
# ---------------------------------------------------------------------------------------------

def splitmix_noise(n: int, seed: int) -> np.ndarray:
    """White noise in [-0.5, 0.5) from the splitmix64 hash of a counter: identical everywhere."""
    with np.errstate(over="ignore"):
        z = (np.arange(n, dtype=np.uint64) + np.uint64(seed) * np.uint64(1000003)) \
            * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / 2.0 ** 53 - 0.5


def voiced(n: int, f0: float = 140.0, rate: float = 2.5, n_harm: int = 20) -> np.ndarray:
    """Harmonics of a gliding F0 under a syllable envelope that is exactly zero half of the time."""
    t = np.arange(n) / FS
    phase = 2 * np.pi * np.cumsum(f0 + 20 * np.sin(2 * np.pi * 1.3 * t)) / FS
    x = sum(np.sin(h * phase) / h for h in range(1, n_harm + 1))
    env = np.sqrt(np.maximum(0.0, np.sin(2 * np.pi * rate * t)))
    return 0.2 * x * env


def cases(n: int):
    """Reference (voiced + -60 dB broadband floor) and four degraded versions with the PESQ value
    fed to the composite formulas. Together they hit: segSNR frames clamped at -10 dB (pauses under
    noise) and +35 dB (identical first half of 'partial'), CBAK clamped at 5 ('partial'), all three
    composites clamped at 1 ('unrelated'), and LLR/WSS where dropping the worst 5 % matters."""
    ref = voiced(n) + 1e-3 * splitmix_noise(n, 1)
    half = n // 2
    part = ref.copy()
    part[half:] += 0.05 * splitmix_noise(n - half, 3)
    return ref, {
        "noise": (ref + 0.05 * splitmix_noise(n, 2), 2.0),
        "lowpass": (np.convolve(ref, np.ones(8) / 8, mode="full")[:n], 3.0),
        "partial": (part, 4.5),
        "unrelated": (voiced(n, 230.0, 1.7, 6) + 1e-3 * splitmix_noise(n, 4), 1.0),
    }


# Computed once with bench_metrics.loop_composite (frame-by-frame composite.m) on cases(n).
# 16000 samples -> 129 frames (best 123 kept); 4080 samples -> 30 frames, round(28.5) = 29 kept.
PINNED = {
    (16000, "noise"): {"llr": 2.2411, "wss": 19.0952, "segsnr": 7.4626, "csig": 1.8211, "cbak": 2.9265, "covl": 1.9229},
    (16000, "lowpass"): {"llr": 0.8637, "wss": 8.1019, "segsnr": 4.6752, "csig": 3.9404, "cbak": 3.3058, "covl": 3.5101},
    (16000, "partial"): {"llr": 1.0256, "wss": 9.0673, "segsnr": 21.2819, "csig": 4.6696, "cbak": 5.0000, "covl": 4.6279},
    (16000, "unrelated"): {"llr": 4.6295, "wss": 286.0924, "segsnr": -4.3535, "csig": 1.0000, "cbak": 1.0000, "covl": 1.0000},
    (4080, "noise"): {"llr": 3.0882, "wss": 13.0036, "segsnr": 15.0097, "csig": 1.0043, "cbak": 3.4446, "covl": 1.5318},
    (4080, "partial"): {"llr": 1.2941, "wss": 6.5075, "segsnr": 22.4299, "csig": 4.4163, "cbak": 5.0000, "covl": 4.5084},
}


@pytest.fixture(scope="module")
def speech3s():
    return bench.speech_like(3.0, FS, seed=7)


# ---------------------------------------------------------------------------------------------
# Must show 1: identity
# ---------------------------------------------------------------------------------------------

def test_identity_gives_the_maxima(speech3s):
    r = score_arrays(speech3s, speech3s.copy(), FS)
    assert r["pesq"] == pytest.approx(4.64, abs=0.005)
    assert r["stoi"] == pytest.approx(1.0, abs=1e-9)
    assert r["csig"] == r["cbak"] == r["covl"] == 5.0
    assert r["llr"] == 0.0 and r["wss"] == 0.0 and r["segsnr"] == 35.0
    # the formulas exceed 5 before the clamp (so the clamp is what gives 5)
    raw_csig = 3.093 - 1.029 * r["llr"] + 0.603 * r["pesq"] - 0.009 * r["wss"]
    assert raw_csig > 5.0
    assert r["si_sdr"] > 100


def test_identity_with_digital_silence_counts_silent_frames_at_minus_10():
    x = voiced(16000)  # exact zeros in the pauses
    seg = C.segsnr_frames(x, x, FS)
    assert set(np.unique(seg)) == {-10.0, 35.0}
    out = C.composite_measures(x, x, FS, pesq=4.64)
    assert out["segsnr"] == pytest.approx(np.mean(seg))
    assert out["llr"] == 0.0 and out["wss"] == 0.0


# ---------------------------------------------------------------------------------------------
# Must show 2: agreement with the published algorithm
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [16000, 4080])
def test_vectorised_agrees_with_frame_loop(n):
    ref, degs = cases(n)
    for name, (deg, pesq) in degs.items():
        ours = C.composite_measures(ref, deg, FS, pesq=pesq)
        loop = bench.loop_composite(ref, deg, FS, pesq)
        for k in ("llr", "wss", "segsnr", "csig", "cbak", "covl"):
            assert ours[k] == pytest.approx(loop[k], abs=1e-6), (name, k)
        if n == 16000:  # per-frame values too
            r, d = ref + C.EPS, deg + C.EPS
            np.testing.assert_allclose(C.llr_frames(ref, deg, FS), bench.loop_llr(r, d, FS), atol=1e-6)
            np.testing.assert_allclose(C.wss_frames(ref, deg, FS), bench.loop_wss(r, d, FS), atol=1e-6)
            np.testing.assert_allclose(C.segsnr_frames(ref, deg, FS), bench.loop_segsnr(r, d, FS), atol=1e-9)


@pytest.mark.parametrize("key", sorted(PINNED))
def test_pinned_reference_values(key):
    n, name = key
    ref, degs = cases(n)
    deg, pesq = degs[name]
    ours = C.composite_measures(ref, deg, FS, pesq=pesq)
    for k, v in PINNED[key].items():
        assert ours[k] == pytest.approx(v, abs=0.01), k
        assert ours[k] == pytest.approx(v, abs=2e-4), k  # printed with 4 decimals


def test_cases_exercise_clamps_and_95_percent_rule():
    ref, degs = cases(16000)
    seg_partial = C.segsnr_frames(ref, degs["partial"][0], FS)
    assert (seg_partial == 35.0).sum() > 10 and (seg_partial == -10.0).sum() > 10
    llr = C.llr_frames(ref, degs["noise"][0], FS)
    assert llr.size == 129
    out = C.composite_measures(ref, degs["noise"][0], FS, pesq=2.0)
    assert out["llr"] == pytest.approx(np.mean(np.sort(llr)[:123]))
    assert out["llr"] < np.mean(llr) - 0.05  # trimming the worst 5 % changes the value
    # CBAK of 'partial' and everything of 'unrelated' are clamped
    assert PINNED[(16000, "partial")]["cbak"] == 5.0
    unrel = C.composite_measures(ref, degs["unrelated"][0], FS, pesq=1.0)
    assert 3.093 - 1.029 * unrel["llr"] + 1.0 * 0.603 - 0.009 * unrel["wss"] < 1.0
    assert unrel["csig"] == unrel["cbak"] == unrel["covl"] == 1.0


def test_95_percent_rule_rounds_halves_up():
    ref, degs = cases(4080)
    deg = degs["noise"][0]
    wss = C.wss_frames(ref, deg, FS)
    assert wss.size == 30  # 0.95 * 30 = 28.5 -> MATLAB keeps 29 (Python's round would keep 28)
    ours = C.composite_measures(ref, deg, FS, pesq=2.0)["wss"]
    assert ours == pytest.approx(np.mean(np.sort(wss)[:29]))
    assert ours != pytest.approx(np.mean(np.sort(wss)[:28]))
    assert C.matlab_round(28.5) == 29 and C.matlab_round(2.5) == 3


def test_frame_parameters():
    assert C.frame_params(16000) == (480, 120)
    assert C.frame_params(8000) == (240, 60)
    assert C.lpc_order(16000) == 16 and C.lpc_order(8000) == 10
    assert C.num_frames(48000, 16000) == 396  # floor(48000/120 - 4): the last frame is skipped
    with pytest.raises(ValueError, match="too short"):
        C.composite_measures(np.ones(500), np.ones(500), FS, pesq=3.0)


def test_8khz_agrees_with_frame_loop():
    ref = voiced(8000)[::2].copy() + 1e-3 * splitmix_noise(4000, 5)
    deg = ref + 0.02 * splitmix_noise(4000, 6)
    ours = C.composite_measures(ref, deg, 8000, pesq=2.5)
    loop = bench.loop_composite(ref, deg, 8000, 2.5)
    for k in loop:
        assert ours[k] == pytest.approx(loop[k], abs=1e-6), k


# ---------------------------------------------------------------------------------------------
# Must show 3: monotonic in SNR
# ---------------------------------------------------------------------------------------------

def test_every_metric_rises_with_snr(speech3s):
    noise = splitmix_noise(speech3s.size, 11)
    rows = []
    for snr in (-5, 0, 5, 10, 15, 20):
        g = np.sqrt(np.mean(speech3s ** 2) / np.mean(noise ** 2) / 10 ** (snr / 10))
        rows.append(score_arrays(speech3s, speech3s + g * noise, FS))
    for k in ("pesq", "stoi", "csig", "cbak", "covl", "segsnr", "si_sdr"):
        vals = [r[k] for r in rows]
        assert all(np.isfinite(vals)), k
        assert all(b > a for a, b in zip(vals, vals[1:])), (k, vals)
    assert rows[-1]["si_sdr"] == pytest.approx(20.0, abs=0.3)  # white noise: SI-SDR ~ SNR
    for k in ("llr", "wss"):  # distances fall
        vals = [r[k] for r in rows]
        assert all(b < a for a, b in zip(vals, vals[1:])), (k, vals)


# ---------------------------------------------------------------------------------------------
# PESQ / STOI edge cases, SI-SDR, VAD
# ---------------------------------------------------------------------------------------------

def test_silent_reference_gives_nan_not_a_crash():
    z = np.zeros(FS)
    deg = 0.01 * splitmix_noise(FS, 9)
    value, reason = pesq_or_reason(z, deg, FS)
    assert math.isnan(value) and "NoUtterances" in reason
    value, reason = stoi_or_reason(z, deg, FS)
    assert math.isnan(value) and "silence" in reason
    notes: list[str] = []
    r = score_arrays(z, deg, FS, notes=notes)
    assert math.isnan(r["pesq"]) and math.isnan(r["csig"]) and math.isnan(r["cbak"])
    assert r["segsnr"] == -10.0  # still defined
    assert len(notes) == 2


def test_narrowband_pesq_and_raw_mapping(speech3s):
    x8 = speech3s[::2].copy()
    value, reason = pesq_or_reason(x8, x8 + 0.01 * splitmix_noise(x8.size, 3), 8000)
    assert reason is None and 1.0 < value < 4.6
    with pytest.raises(ValueError, match="wide-band"):
        pesq_or_reason(x8, x8, 8000, mode="wb")
    for raw in (1.0, 2.3, 4.0):
        lqo = 0.999 + 4.0 / (1.0 + math.exp(-1.4945 * raw + 4.6607))
        assert nb_raw_from_lqo(lqo) == pytest.approx(raw, abs=1e-9)


def test_si_sdr_definition():
    r = voiced(8000) + 1e-3 * splitmix_noise(8000, 1)
    r = r - r.mean()
    n = splitmix_noise(8000, 2)
    n = n - n.mean()
    n -= np.dot(n, r) / np.dot(r, r) * r  # orthogonal to the reference
    n *= np.sqrt(np.dot(r, r) / np.dot(n, n) / 10)  # 10 dB
    assert si_sdr(r, r + n) == pytest.approx(10.0, abs=1e-6)
    assert si_sdr(r, 0.3 * (r + n)) == pytest.approx(10.0, abs=1e-6)  # scale invariant
    assert math.isnan(si_sdr(np.zeros(100), np.ones(100)))


def test_vad_metrics_small_example():
    labels = np.array([1, 1, 0, 0, 1, 0], dtype=np.int32)
    probs = np.array([0.9, 0.4, 0.6, 0.1, 0.7, 0.2], dtype=np.float32)
    m = vad_metrics(labels, probs)
    assert (m["vad_tp"], m["vad_fp"], m["vad_fn"], m["vad_tn"]) == (2, 1, 1, 2)
    assert m["vad_acc"] == pytest.approx(4 / 6)
    assert m["vad_precision"] == pytest.approx(2 / 3)
    assert m["vad_recall"] == pytest.approx(2 / 3)
    assert m["vad_f1"] == pytest.approx(2 / 3)
    assert m["vad_auc"] == pytest.approx(8 / 9)  # 8 of 9 (speech, non-speech) pairs ranked right
    m = vad_metrics(labels, np.array([0.9, 0.4, 0.6, 0.1, 0.7, 0.7]))   # precision != recall
    assert (m["vad_tp"], m["vad_fp"], m["vad_fn"], m["vad_tn"]) == (2, 2, 1, 1)
    assert (m["vad_precision"], m["vad_recall"]) == (pytest.approx(2 / 4), pytest.approx(2 / 3))
    assert (m["vad_f1"], m["vad_acc"]) == (pytest.approx(4 / 7), pytest.approx(3 / 6))
    assert m["vad_auc"] == pytest.approx(6.5 / 9)   # the 0.7 / 0.7 pair is a tie
    assert vad_metrics(labels, (labels == 1).astype(float))["vad_f1"] == 1.0
    assert vad_metrics(labels, np.full(6, 0.5))["vad_auc"] == 0.5  # ties count half
    assert vad_metrics(np.array([0, 0]), np.array([0.1, 0.9]))["vad_precision"] == 0.0
    assert math.isnan(binary_auc(np.ones(4), np.arange(4)))
    with pytest.raises(ValueError, match="length"):
        vad_metrics(labels, probs[:5])
