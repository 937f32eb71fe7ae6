#!/usr/bin/env python
"""Benchmark of inference (csmvanet.infer.enhancer): bounded memory, real-time factor, seam quality.

Run by hand (not a unit test)::

    tools/venv/bin/python bench/bench_enhance.py                       # all three, paper config
    tools/venv/bin/python bench/bench_enhance.py --long_seconds 120    # shorter long file
    tools/venv/bin/python bench/bench_enhance.py --only seams --seam_seconds 20
    tools/venv/bin/python bench/bench_enhance.py --only backends               # RTF table of every backend
    tools/venv/bin/python bench/bench_enhance.py --only long --long_seconds 3600   # user vs sys time
    tools/venv/bin/python bench/bench_enhance.py --only curve --memory_threads 1   # peak RSS: 1 min ... 3 h

Every measurement uses the config given (default: the paper's, egs/voicebank/conf/train.yaml) with
random weights (seed 0), on speech-like audio from csmvanet.audio.synthetic mixed with babble noise.

memory  Peak RSS (ru_maxrss) of enhancing a ``--long_seconds`` file (default 600 s) and a
        ``--short_seconds`` file (default 10 s) file-to-file (Enhancer.enhance_file, as the CLI does),
        each in a fresh subprocess; prints both, the ratio (the target: <= 1.5) and the RSS after
        loading the model (what is not audio-dependent).
rtf     Real-time factor (wall time / audio duration) of enhance_file on a ``--rtf_seconds`` file
        (default 30 s) on CPU with each of ``--threads`` (default 1 and 2), in subprocesses, after
        one warm-up segment.
backends  Every network backend (csmvanet.infer.backends.BACKENDS: torch eager, onnxruntime, torch-int8) on
        the same ``--rtf_seconds`` file with each of ``--threads`` (1 and 2), each run in a fresh
        subprocess after one warm-up segment: RTF table, speed-up over torch eager at the same thread
        count, and agreement of each backend's output with torch's (SI-SDR in dB, VAD max |diff|).
long    A ``--long_seconds`` file (default 600 s; the issue's figure is for 3600) enhanced file to
        file with ``--memory_threads`` threads, once as before (freed memory returned to the kernel)
        and once with ``retain_memory`` (what csmvanet-enhance does; ``--long_retain on|off`` for one of
        them, ``--backend`` for another backend), each in a fresh subprocess:
        user and system CPU seconds (getrusage, as /usr/bin/time -v reports them), system share,
        minor page faults, peak RSS, RTF.
curve   Peak RSS of ``csmvanet-enhance`` (``--model``, default the bundled model) on files of
        ``--curve_minutes`` (default 1, 10, 60 and 180 minutes) with ``--memory_threads`` threads, each
        in a fresh process (os.wait4: that process's ru_maxrss); the files (speech-like + babble, 16 kHz
        PCM_16) are written to a temporary folder one at a time (3 h: 346 MB in, 346 MB out).
seams   Chunked vs whole-file output of the same model on a ``--seam_seconds`` input (default 20 s;
        the whole-file pass needs memory quadratic in the length): SI-SDR (dB) for a grid of
        segment/overlap settings, and the same for the frame VAD (max abs difference).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PAPER_CONFIG = ROOT / "egs" / "voicebank" / "conf" / "train.yaml"


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _enhancer(config: str, threads: int, segment: float | None, overlap: float | None, backend: str = "torch",
              retain_memory: bool = False):
    import torch

    from csmvanet.base.config import load_config
    from csmvanet.infer.enhancer import Enhancer
    from csmvanet.nets import build_model

    torch.set_num_threads(threads)
    cfg = load_config(config)
    torch.manual_seed(0)
    return Enhancer(build_model(cfg), cfg, segment_seconds=segment, overlap_seconds=overlap, backend=backend,
                    retain_memory=retain_memory)


def _noisy(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Speech-like audio + babble at 5 dB SNR; long signals tile a 30 s piece (generation is slow)."""
    from csmvanet.audio.synthetic import noise, speech_like

    piece = min(seconds, 30.0)
    s, _ = speech_like(seed, seconds=piece, sr=sr)
    n = noise("babble", seed + 1, seconds=piece, sr=sr)
    x = s + n * (np.std(s) / np.std(n)) * 10 ** (-5 / 20)
    x = (0.3 * x / np.max(np.abs(x))).astype(np.float32)
    reps = int(np.ceil(seconds / piece))
    return np.tile(x, reps)[: int(round(seconds * sr))]


def _write_long(path: Path, seconds: float, sr: int = 16000) -> None:
    import soundfile as sf

    x = _noisy(min(seconds, 30.0), sr)
    n = int(round(seconds * sr))
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        done = 0
        while done < n:
            k = min(len(x), n - done)
            f.write(x[:k])
            done += k


# ------------------------------------------------------------------------------------------ children

def child(args) -> None:
    from csmvanet.base.memory import cpu_usage

    t0 = time.perf_counter()
    enh = _enhancer(args.config, args.threads, args.segment_seconds, args.overlap_seconds, args.backend,
                    args.retain_memory)
    import soundfile as sf

    warm = np.zeros(enh.segment, np.float32)
    if args.warmup:
        enh.enhance(warm, enh.sample_rate)
    loaded_rss = _rss_mb()
    loaded_peak = _peak_mb()
    t1 = time.perf_counter()
    u1 = cpu_usage()
    res = enh.enhance_file(args.child, args.child_out)
    t2 = time.perf_counter()
    u2 = cpu_usage()
    print(json.dumps({**{k: u2[k] - u1[k] for k in ("user_s", "sys_s", "minor_faults")}, "peak_rss_mb": _peak_mb(), "rss_after_load_mb": loaded_rss, "peak_after_load_mb": loaded_peak,
                      "seconds": t2 - t1, "load_seconds": t1 - t0,
                      "audio_seconds": res.num_samples / res.sample_rate,
                      "frames": sf.info(args.child_out).frames}))


def run_child(args, wav: Path, threads: int, warmup: bool, backend: str = "torch", retain_memory: bool = False,
              keep: Path | None = None) -> dict:
    out = keep or wav.with_name(wav.stem + ".enh.wav")
    cmd = [sys.executable, __file__, "--child", str(wav), "--child_out", str(out), "--config", args.config,
           "--threads", str(threads), "--backend", backend] + (["--retain_memory"] if retain_memory else [])
    if args.segment_seconds is not None:
        cmd += ["--segment_seconds", str(args.segment_seconds)]
    if args.overlap_seconds is not None:
        cmd += ["--overlap_seconds", str(args.overlap_seconds)]
    if warmup:
        cmd.append("--warmup")
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
    if proc.returncode != 0:
        sys.exit(f"child failed: {' '.join(cmd)}\n{proc.stderr}")
    if keep is None:
        out.unlink(missing_ok=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------ benches

def bench_memory(args, tmp: Path) -> None:
    rows = {}
    for name, sec in (("short", args.short_seconds), ("long", args.long_seconds)):
        wav = tmp / f"{name}.wav"
        _write_long(wav, sec)
        rows[name] = r = run_child(args, wav, args.memory_threads, warmup=False)
        wav.unlink()
        print(f"  {name:5s} {sec:7.1f} s: peak RSS {r['peak_rss_mb']:8.1f} MiB (after model load "
              f"{r['rss_after_load_mb']:.1f} MiB), {r['seconds']:.1f} s, RTF {r['seconds'] / sec:.3f}", flush=True)
    ratio = rows["long"]["peak_rss_mb"] / rows["short"]["peak_rss_mb"]
    grow = rows["long"]["peak_rss_mb"] - rows["short"]["peak_rss_mb"]
    print(f"  peak RSS ratio long/short = {ratio:.3f} (target <= 1.5); difference {grow:+.1f} MiB")


def bench_rtf(args, tmp: Path) -> None:
    wav = tmp / "rtf.wav"
    _write_long(wav, args.rtf_seconds)
    for th in args.threads:
        r = run_child(args, wav, th, warmup=True)
        print(f"  {th} thread(s): {r['seconds']:.1f} s for {r['audio_seconds']:.1f} s of audio: "
              f"RTF {r['seconds'] / r['audio_seconds']:.3f}", flush=True)
    wav.unlink()


def bench_backends(args, tmp: Path) -> None:
    import soundfile as sf

    from csmvanet.metrics import si_sdr
    from csmvanet.infer.backends import BACKENDS

    wav = tmp / "rtf.wav"
    _write_long(wav, args.rtf_seconds)
    rows = []
    for th in args.threads:
        for backend in args.backends or BACKENDS:
            out = tmp / f"out_{backend}_{th}.wav"
            r = run_child(args, wav, th, warmup=True, backend=backend, keep=out)
            rows.append((th, backend, r["seconds"] / r["audio_seconds"], out))
            print(f"  {backend:12s} {th} thread(s): RTF {rows[-1][2]:.3f}", flush=True)
    print(f"\n  {'backend':12s} {'threads':>7s} {'RTF':>7s} {'speed-up':>9s} {'SI-SDR vs torch':>16s}")
    for th, backend, rtf, out in rows:
        ref = next((r for r in rows if r[0] == th and r[1] == "torch"), None)
        if ref is None:
            print(f"  {backend:12s} {th:7d} {rtf:7.3f}")
            continue
        y, yr = sf.read(out, dtype="float32")[0], sf.read(ref[3], dtype="float32")[0]
        agree = "(reference)" if backend == "torch" else f"{si_sdr(yr, y):13.1f} dB"
        print(f"  {backend:12s} {th:7d} {rtf:7.3f} {ref[2] / rtf:8.2f}x {agree:>16s}")
    x = _noisy(min(args.rtf_seconds, 30.0))
    outs = {}
    for backend in args.backends or BACKENDS:
        enh = _enhancer(args.config, max(args.threads), None, None, backend)
        outs[backend] = enh.enhance(x, enh.sample_rate, limit=False)
    yr, vr = outs.get("torch", (None, None))
    if yr is not None:
        print("  agreement without the 16-bit output files (float, no limiter), "
              f"{len(x) / 16000:g} s:")
        for backend, (y, v) in outs.items():
            if backend != "torch":
                dv = float(np.max(np.abs(v - vr))) if v is not None else float("nan")
                print(f"    {backend:12s} SI-SDR {si_sdr(yr, y):6.1f} dB, VAD max |diff| {dv:.2e}")


def bench_long(args, tmp: Path) -> None:
    wav = tmp / "long.wav"
    _write_long(wav, args.long_seconds)
    rows = {}
    for retain in {"both": (False, True), "off": (False,), "on": (True,)}[args.long_retain]:
        r = rows[retain] = run_child(args, wav, args.memory_threads, warmup=True, backend=args.backend,
                                     retain_memory=retain)
        cpu = r["user_s"] + r["sys_s"]
        print(f"  retain_memory {str(retain):5s}: user {r['user_s']:8.1f} s, sys {r['sys_s']:7.1f} s "
              f"({100 * r['sys_s'] / cpu:4.1f} % of CPU time), minor page faults {r['minor_faults']:,}, "
              f"peak RSS {r['peak_rss_mb']:,.0f} MiB, RTF {r['seconds'] / r['audio_seconds']:.3f}", flush=True)
    if len(rows) < 2:
        wav.unlink()
        return
    a, b = rows[False], rows[True]
    print(f"  with/without retain_memory: sys time x{b['sys_s'] / max(a['sys_s'], 1e-9):.3f}, page faults "
          f"x{b['minor_faults'] / max(a['minor_faults'], 1):.3f}, wall time x{b['seconds'] / a['seconds']:.2f}, "
          f"peak RSS x{b['peak_rss_mb'] / a['peak_rss_mb']:.2f}")
    wav.unlink()


def bench_curve(args, tmp: Path) -> None:
    rows = []
    for minutes in args.curve_minutes:
        wav, out = tmp / f"curve{minutes:g}.wav", tmp / "curve_out"
        _write_long(wav, minutes * 60.0)
        cmd = [sys.executable, "-m", "csmvanet.bin.enhance", str(wav), "--output_dir", str(out), "--no_progress",
               "--num_threads", str(args.memory_threads)] + (["--model", args.model] if args.model else [])
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={
            **os.environ, "OMP_NUM_THREADS": str(args.memory_threads), "MKL_NUM_THREADS": str(args.memory_threads)})
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wav.unlink()
        if proc.returncode != 0:
            sys.exit(f"csmvanet-enhance failed: {' '.join(cmd)}\n{err}")
        for f in out.iterdir():
            f.unlink()
        rows.append((minutes, usage.ru_maxrss / 1024, time.perf_counter() - t))
        print(f"  {minutes:6g} min: peak RSS {rows[-1][1]:7.1f} MiB, {rows[-1][2]:7.1f} s "
              f"(RTF {rows[-1][2] / (60 * minutes):.3f})", flush=True)
    if len(rows) > 1:
        (m0, r0, _), (m1, r1, _) = rows[0], rows[-1]
        print(f"  {m1:g} min vs {m0:g} min: {r1 - r0:+.1f} MiB ({(r1 - r0) / (m1 - m0):+.3f} MiB per minute of audio)")


def bench_seams(args) -> None:
    import torch

    from csmvanet.metrics import si_sdr

    enh = _enhancer(args.config, max(args.threads), None, None)
    x = _noisy(args.seam_seconds, enh.sample_rate)
    t = time.perf_counter()
    with torch.inference_mode():
        out = enh.model(torch.from_numpy(x)[None])
    ref, vref = out["wave"][0].numpy(), out["vad"]
    vref = None if vref is None else vref[0].numpy()
    print(f"  whole-file pass: {time.perf_counter() - t:.1f} s")
    del out
    for seg, ov in args.grid:
        enh.set_chunking(seg, ov)
        t = time.perf_counter()
        y, v = enh.enhance(x, enh.sample_rate, limit=False)
        dv = float(np.max(np.abs(v - vref))) if v is not None else float("nan")
        print(f"  segment {seg:4.1f} s overlap {ov:3.1f} s: SI-SDR {si_sdr(ref, y):6.2f} dB, "
              f"VAD max |diff| {dv:.4f}, {time.perf_counter() - t:.1f} s", flush=True)


def header(args) -> None:
    import torch

    import csmvanet
    from csmvanet.base.version import git_hash

    print(f"# bench_enhance {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"# csmvanet {csmvanet.__version__} git {git_hash()}, torch {torch.__version__}, numpy {np.__version__}, "
          f"python {platform.python_version()}")
    print(f"# config {args.config}; {os.cpu_count()} CPU(s) {platform.processor() or platform.machine()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    seg = args.segment_seconds if args.segment_seconds is not None else "default"
    ov = args.overlap_seconds if args.overlap_seconds is not None else "default"
    print(f"# segment {seg}, overlap {ov}; random weights (seed 0)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(PAPER_CONFIG))
    p.add_argument("--only", choices=("memory", "rtf", "seams", "backends", "long", "curve"), action="append",
                   default=None, help="default: memory, rtf, seams, backends (long, curve: on request)")
    p.add_argument("--backends", nargs="+", default=None, help="backends for --only backends (default: all)")
    p.add_argument("--backend", default="torch", help="backend of --only long (default torch)")
    p.add_argument("--long_retain", choices=("both", "off", "on"), default="both",
                   help="--only long: without retain_memory (off), with it (on) or both")
    p.add_argument("--retain_memory", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--long_seconds", type=float, default=600.0)
    p.add_argument("--curve_minutes", type=float, nargs="+", default=[1, 10, 60, 180])
    p.add_argument("--model", default=None, help="--only curve: csmvanet-enhance --model (default: the bundled one)")
    p.add_argument("--short_seconds", type=float, default=10.0)
    p.add_argument("--memory_threads", type=int, default=2)
    p.add_argument("--rtf_seconds", type=float, default=30.0)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--seam_seconds", type=float, default=20.0)
    p.add_argument("--grid", type=lambda s: tuple(float(v) for v in s.split("/")), nargs="+",
                   default=[(2, 0.5), (4, 1), (6, 1), (8, 1), (8, 2)], help="SEG/OVERLAP pairs in seconds")
    p.add_argument("--segment_seconds", type=float, default=None)
    p.add_argument("--overlap_seconds", type=float, default=None)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child_out", help=argparse.SUPPRESS)
    p.add_argument("--warmup", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.threads = args.threads[0]
        child(args)
        return
    header(args)
    todo = args.only or ["memory", "rtf", "seams", "backends"]
    with tempfile.TemporaryDirectory() as tmp:
        if "seams" in todo:
            print(f"seams: chunked vs whole file, {args.seam_seconds:g} s input")
            bench_seams(args)
        if "rtf" in todo:
            print(f"rtf: {args.rtf_seconds:g} s file, enhance_file on CPU")
            bench_rtf(args, Path(tmp))
        if "backends" in todo:
            print(f"backends: {args.rtf_seconds:g} s file, enhance_file on CPU, each backend in a fresh process")
            bench_backends(args, Path(tmp))
        if "long" in todo:
            print(f"long: {args.long_seconds:g} s file, {args.memory_threads} thread(s), backend {args.backend}, "
                  "user vs sys time")
            bench_long(args, Path(tmp))
        if "curve" in todo:
            print(f"curve: peak RSS of csmvanet-enhance ({args.model or 'bundled model'}), {args.memory_threads} "
                  "thread(s), files of " + ", ".join(f"{m:g}" for m in args.curve_minutes) + " min")
            bench_curve(args, Path(tmp))
        if "memory" in todo:
            print(f"memory: {args.long_seconds:g} s vs {args.short_seconds:g} s file, {args.memory_threads} thread(s)")
            bench_memory(args, Path(tmp))


if __name__ == "__main__":
    main()
