#!/usr/bin/env python
"""Benchmark of the scoring metrics, and the frame-by-frame reference of Loizou's composite.m.

Run by hand (not a unit test)::

    tools/venv/bin/python bench/bench_metrics.py               # 824 pairs of 3 s, --nj 2
    tools/venv/bin/python bench/bench_metrics.py --num_pairs 40 # quick run

It prints pairs/s for each metric and for all together (scored with ``--nj`` processes, as
``csmvanet-score`` does), and the speed-up of our vectorised LLR+WSS+segSNR+CSIG/CBAK/COVL over
``loop_composite`` below, measured in the same run on the same pairs with the same processes,
with the largest value difference between the two. Exit status 1 if the speed-up is under 10x or
the values differ by more than 0.01. The machine may be shared: CPU time per pair (measured in
the workers) is printed beside the wall-clock rates, as it does not depend on other load.

``loop_composite`` is a straightforward frame-by-frame transcription of the algorithm of
Loizou's MATLAB ``composite.m`` (Hu & Loizou 2008): the same loops, written in Python from the
published description (framing, ``lpcoeff`` Levinson-Durbin, the Klatt WSS peak search, segSNR
clamps, the 95 % rule). It is deliberately naive; ``test/test_metrics.py`` uses it as the
reference for the agreement tests.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import sys
import time

import numpy as np

# ------------------------------------------------------------------------------------------------
# Reference: frame-by-frame transcription of composite.m (1-based MATLAB loops written 0-based)
# ------------------------------------------------------------------------------------------------
_CF = [50.0000, 120.000, 190.000, 260.000, 330.000, 400.000, 470.000, 540.000, 617.372, 703.378,
       798.717, 904.128, 1020.38, 1148.30, 1288.72, 1442.54, 1610.70, 1794.16, 1993.93, 2211.08,
       2446.71, 2701.97, 2978.04, 3276.17, 3597.63]
_BW = [70.0000, 70.0000, 70.0000, 70.0000, 70.0000, 70.0000, 70.0000, 77.3724, 86.0056, 95.3398,
       105.411, 116.256, 127.914, 140.423, 153.823, 168.154, 183.457, 199.776, 217.153, 235.631,
       255.255, 276.072, 298.126, 321.465, 346.136]
_MATLAB_EPS = 2.220446049250313e-16


def _mround(x):
    return int(math.floor(x + 0.5))  # MATLAB round for x >= 0


def _loop_setup(n, fs):
    winlength = _mround(30 * fs / 1000)
    skiprate = winlength // 4
    nframes = int(math.floor(n / skiprate - winlength / skiprate))
    window = np.array([0.5 * (1 - math.cos(2 * math.pi * k / (winlength + 1)))
                       for k in range(1, winlength + 1)])
    return winlength, skiprate, nframes, window


def loop_wss(clean, proc, fs):
    winlength, skiprate, nframes, window = _loop_setup(len(clean), fs)
    max_freq = fs / 2
    num_crit = 25
    n_fft = 2 ** int(math.ceil(math.log2(2 * winlength)))
    half = n_fft // 2
    kmax, klocmax = 20.0, 1.0
    min_factor = math.exp(-30.0 / (2.0 * 2.303))
    crit = np.zeros((num_crit, half))
    for i in range(num_crit):
        f0 = _CF[i] / max_freq * half
        bw = _BW[i] / max_freq * half
        norm = math.log(_BW[0]) - math.log(_BW[i])
        for j in range(half):
            v = math.exp(-11 * ((j - math.floor(f0)) / bw) ** 2 + norm)
            crit[i, j] = v if v > min_factor else 0.0
    dist = []
    start = 0
    for _ in range(nframes):
        cfr = clean[start:start + winlength] * window
        pfr = proc[start:start + winlength] * window
        cspec = np.abs(np.fft.fft(cfr, n_fft)) ** 2
        pspec = np.abs(np.fft.fft(pfr, n_fft)) ** 2
        ce = np.zeros(num_crit)
        pe = np.zeros(num_crit)
        for i in range(num_crit):
            ce[i] = np.sum(cspec[:half] * crit[i])
            pe[i] = np.sum(pspec[:half] * crit[i])
        ce = 10 * np.log10(np.maximum(ce, 1e-10))
        pe = 10 * np.log10(np.maximum(pe, 1e-10))
        cs = ce[1:] - ce[:-1]
        ps = pe[1:] - pe[:-1]

        def loc_peaks(energy, slope):
            peaks = np.zeros(num_crit - 1)
            for i in range(1, num_crit):  # MATLAB i = 1..num_crit-1
                if slope[i - 1] > 0:  # search to the right
                    n = i
                    while n < num_crit and slope[n - 1] > 0:
                        n += 1
                    peaks[i - 1] = energy[n - 2]  # energy(n-1)
                else:  # search to the left
                    n = i
                    while n > 0 and slope[n - 1] <= 0:
                        n -= 1
                    peaks[i - 1] = energy[n]  # energy(n+1)
            return peaks

        cpk = loc_peaks(ce, cs)
        ppk = loc_peaks(pe, ps)
        wc = (kmax / (kmax + ce.max() - ce[:-1])) * (klocmax / (klocmax + cpk - ce[:-1]))
        wp = (kmax / (kmax + pe.max() - pe[:-1])) * (klocmax / (klocmax + ppk - pe[:-1]))
        w = (wc + wp) / 2.0
        d = 0.0
        for i in range(num_crit - 1):
            d += w[i] * (cs[i] - ps[i]) ** 2
        dist.append(d / np.sum(w))
        start += skiprate
    return np.array(dist)


def _lpcoeff(frame, order):
    wl = len(frame)
    r = np.zeros(order + 1)
    for k in range(order + 1):
        r[k] = np.sum(frame[: wl - k] * frame[k:])
    a = np.ones(order)
    e = [r[0]]
    for i in range(1, order + 1):
        a_past = a[: i - 1].copy()
        s = 0.0
        for j in range(i - 1):  # sum(a_past(1:i-1) .* R(i:-1:2))
            s += a_past[j] * r[i - 1 - j]
        k = (r[i] - s) / e[i - 1]
        a[i - 1] = k
        for j in range(i - 1):
            a[j] = a_past[j] - k * a_past[i - 2 - j]
        e.append((1 - k * k) * e[i - 1])
    return r, np.concatenate([[1.0], -a])


def loop_llr(clean, proc, fs):
    winlength, skiprate, nframes, window = _loop_setup(len(clean), fs)
    order = 10 if fs < 10000 else 16
    dist = []
    start = 0
    for _ in range(nframes):
        cfr = clean[start:start + winlength] * window
        pfr = proc[start:start + winlength] * window
        rc, ac = _lpcoeff(cfr, order)
        _, ap = _lpcoeff(pfr, order)
        toe = np.array([[rc[abs(i - j)] for j in range(order + 1)] for i in range(order + 1)])
        dist.append(math.log((ap @ toe @ ap) / (ac @ toe @ ac)))
        start += skiprate
    return np.array(dist)


def loop_segsnr(clean, proc, fs):
    winlength, skiprate, nframes, window = _loop_setup(len(clean), fs)
    out = []
    start = 0
    for _ in range(nframes):
        cfr = clean[start:start + winlength] * window
        pfr = proc[start:start + winlength] * window
        s = np.sum(cfr ** 2)
        nz = np.sum((cfr - pfr) ** 2)
        v = 10 * math.log10(s / (nz + _MATLAB_EPS) + _MATLAB_EPS)
        out.append(min(max(v, -10.0), 35.0))
        start += skiprate
    return np.array(out)


def loop_composite(clean, proc, fs, pesq_value):
    """composite.m: returns llr, wss, segsnr (utterance values) and csig, cbak, covl."""
    n = min(len(clean), len(proc))
    clean = np.asarray(clean[:n], dtype=np.float64) + _MATLAB_EPS
    proc = np.asarray(proc[:n], dtype=np.float64) + _MATLAB_EPS
    alpha = 0.95
    wss_v = np.sort(loop_wss(clean, proc, fs))
    wss = float(np.mean(wss_v[: _mround(len(wss_v) * alpha)]))
    llr_v = np.sort(loop_llr(clean, proc, fs))
    llr = float(np.mean(llr_v[: _mround(len(llr_v) * alpha)]))
    seg = float(np.mean(loop_segsnr(clean, proc, fs)))
    csig = min(5.0, max(1.0, 3.093 - 1.029 * llr + 0.603 * pesq_value - 0.009 * wss))
    cbak = min(5.0, max(1.0, 1.634 + 0.478 * pesq_value - 0.007 * wss + 0.063 * seg))
    covl = min(5.0, max(1.0, 1.594 + 0.805 * pesq_value - 0.512 * llr - 0.007 * wss))
    return {"llr": llr, "wss": wss, "segsnr": seg, "csig": csig, "cbak": cbak, "covl": covl}


# ------------------------------------------------------------------------------------------------
# Benchmark
# ------------------------------------------------------------------------------------------------

def speech_like(seconds=3.0, fs=16000, seed=0):
    """Deterministic speech-like signal: voiced syllables (harmonics of a gliding F0 shaped by three
    formant resonances), a little breath noise, syllable-rate envelope and pauses (-60 dB floor)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fs))
    t = np.arange(n) / fs
    f0 = rng.uniform(100, 180) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t))
    phase = 2 * np.pi * np.cumsum(f0) / fs
    formants = [(rng.uniform(450, 800), 80.0), (rng.uniform(1100, 1900), 120.0),
                (rng.uniform(2300, 3000), 180.0)]
    x = np.zeros(n)
    for h in range(1, 40):
        fh = h * f0
        gain = sum(1.0 / (1.0 + ((fh - fc) / bw) ** 2) for fc, bw in formants) + 0.02
        x += gain * np.sin(h * phase) * (fh < fs / 2 - 200)
    x += 0.05 * rng.standard_normal(n)
    # syllables of 150-350 ms separated by pauses of 80-300 ms
    env = np.zeros(n)
    pos = int(0.15 * fs)
    while pos < n:
        length = int(rng.uniform(0.15, 0.35) * fs)
        seg = np.hanning(length) ** 0.5
        env[pos:pos + length] = seg[: max(0, min(length, n - pos))]
        pos += length + int(rng.uniform(0.08, 0.3) * fs)
    x = x * env + 1e-3 * rng.standard_normal(n) * 0.05
    return (0.3 * x / np.max(np.abs(x))).astype(np.float64)


def make_pairs(num_pairs, seconds=3.0, fs=16000, seed=0):
    """Deterministic speech-like clean signals and noisy/processed versions at random SNRs."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(num_pairs):
        clean = speech_like(seconds, fs, seed=seed * 100003 + i)
        noise = rng.standard_normal(clean.size)
        snr = rng.uniform(-5, 20)
        noise *= np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (snr / 10))
        pairs.append((clean.astype(np.float32), (clean + noise).astype(np.float32)))
    return pairs


_PAIRS = None


def _init(pairs):
    global _PAIRS
    _PAIRS = pairs


def _run_metric(args):
    t0 = time.process_time()
    value = _compute(*args)
    return value, time.process_time() - t0


def _compute(name, idx):
    from csmvanet.metrics.basic import pesq_score, si_sdr, stoi_score
    from csmvanet.metrics.composite import composite_measures
    from csmvanet.metrics.scoring import score_arrays

    ref, deg = _PAIRS[idx]
    fs = 16000
    if name == "pesq":
        return pesq_score(ref, deg, fs)
    if name == "stoi":
        return stoi_score(ref, deg, fs)
    if name == "si_sdr":
        return si_sdr(ref, deg)
    if name == COMPOSITE:
        return composite_measures(ref, deg, fs, pesq=3.0)
    if name == LOOP:
        return loop_composite(ref, deg, fs, 3.0)
    if name == ALL:
        return score_arrays(ref, deg, fs)
    raise ValueError(name)


COMPOSITE = "llr+wss+segsnr+composites (ours)"
LOOP = "llr+wss+segsnr+composites (frame loop)"
ALL = "all metrics (score_arrays)"


def _timed(pool, name, n):
    t0 = time.perf_counter()
    out = list(pool.imap(_run_metric, [(name, i) for i in range(n)], chunksize=4))
    return time.perf_counter() - t0, [v for v, _ in out], sum(c for _, c in out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--num_pairs", type=int, default=824)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--nj", type=int, default=2)
    args = ap.parse_args(argv)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = "1"  # one thread per process, as csmvanet-score's workers
    n = args.num_pairs
    pairs = make_pairs(n, args.seconds)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    print(f"{n} pairs of {args.seconds:g} s at 16 kHz, {args.nj} processes, "
          f"cpu_count {os.cpu_count()}, load average at start {load:.2f}")
    names = ["pesq", "stoi", COMPOSITE, "si_sdr", ALL, LOOP]
    rates, outputs, cpu = {}, {}, {}
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.nj, initializer=_init, initargs=(pairs,)) as pool:
        pool.map(_run_metric, [("si_sdr", 0)] * args.nj)  # warm up imports
        for name in names:
            dt, outputs[name], cpu[name] = _timed(pool, name, n)
            rates[name] = n / dt
            print(f"  {name:40s} {rates[name]:8.1f} pairs/s  ({dt:.1f} s wall, "
                  f"{1000 * cpu[name] / n:.1f} ms CPU per pair)", flush=True)
    ratio = rates[COMPOSITE] / rates[LOOP]
    cpu_ratio = cpu[LOOP] / cpu[COMPOSITE]
    diffs = {k: max(abs(a[k] - b[k]) for a, b in zip(outputs[COMPOSITE], outputs[LOOP]))
             for k in outputs[LOOP][0]}
    print(f"\ncomposite speed-up over the frame loop ({args.nj} processes, same pairs): "
          f"{ratio:.1f}x in pairs/s, {cpu_ratio:.1f}x in CPU time per pair "
          f"({'meets' if min(ratio, cpu_ratio) >= 10 else 'MISSES'} the >= 10x target)")
    print("largest |ours - loop| over all pairs: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))
    print(f"all metrics (noisy input not included) for {n} pairs: {n / rates[ALL]:.1f} s")
    return 0 if min(ratio, cpu_ratio) >= 10 and max(diffs.values()) <= 0.01 else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
