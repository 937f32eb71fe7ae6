#!/usr/bin/env python
"""Benchmark of live enhancement (csmvanet.infer.streaming): latency and per-chunk compute time.

Run by hand (not a unit test)::

    tools/venv/bin/python bench/bench_stream.py                  # tiny causal config and the bundled model's, causal
    tools/venv/bin/python bench/bench_stream.py --configs bundled --seconds 20 --chunk_ms 10
    tools/venv/bin/python bench/bench_stream.py --configs egs/voicebank/conf/train.yaml
    tools/venv/bin/python bench/bench_stream.py --configs bundled --profile --seconds 3   # where the time goes

For every config (``tiny``: the test suite's tiny model; ``bundled``: the config of the first
bundled model; or a YAML file) the model is built with ``model.causal: true`` and RANDOM weights
(seed 0) -- the speed and latency do not depend on the weights -- and run on ``--seconds`` of
speech-like audio with babble noise (csmvanet.audio.synthetic), fed in chunks of ``--chunk_ms``
(default 10 ms) on ``--threads`` threads (default 1), after a warm-up of one second:

* algorithmic latency: the window (n_fft samples: the look-ahead of the causal model), and the
  largest delay of an output sample: input samples received when it was given out, counted from its
  own (window + chunk buffering; compute time not included), in ms;
* per-chunk compute time (wall clock around ``process``): median, 99th percentile and worst, in ms,
  beside the chunk length; and the real-time factor (compute time / audio time);
* the CPU time of the calling thread per chunk (median) and its RTF: less sensitive than the wall
  clock to other processes on a shared machine (onnxruntime's own threads are not counted: run it
  with one thread, the default);
* the same with the network as an ONNX streaming step in onnxruntime (``--backends``);
* for comparison, the RTF of the offline (non-causal) model of the same config through
  ``Enhancer.enhance`` (8 s segments, 1 s overlap).
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def config_of(name: str) -> dict:
    import yaml

    if name == "tiny":
        sys.path.insert(0, str(ROOT / "test"))
        from conftest import TINY_CONFIG

        return copy.deepcopy(TINY_CONFIG)
    if name == "bundled":
        from csmvanet.experiment.model_files import load_model_files, resolve_model

        return copy.deepcopy(load_model_files(resolve_model(None), None)[0])
    return yaml.safe_load(Path(name).read_text())


def audio(seconds: float, sr: int) -> np.ndarray:
    """Speech-like audio + babble at 5 dB SNR (bench_enhance's)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_enhance import _noisy

    return _noisy(seconds, sr)


def bench(name: str, seconds: float, chunk_ms: float, backends=("torch",)) -> dict:
    from csmvanet.infer.enhancer import Enhancer
    from csmvanet.infer.streaming import CausalStream
    from csmvanet.nets import build_model

    cfg = config_of(name)
    cfg.setdefault("model", {})
    offline_cfg = copy.deepcopy(cfg)
    cfg["model"]["causal"] = True
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    sr, n_fft = model.stft_cfg.sample_rate, model.stft_cfg.n_fft
    chunk = int(round(chunk_ms * sr / 1000))
    x = audio(seconds + 1.0, sr)
    rows = {}
    for backend in backends:
        step = None
        if backend == "onnxruntime":
            from csmvanet.infer.streaming import OnnxStep

            step = OnnxStep(model, threads=torch.get_num_threads())
        stream = CausalStream(model, step=step)
        warm = sr
        for i in range(0, warm, chunk):
            stream.process(x[i:i + chunk])
        times, cpu, pending = [], [], 0
        for i in range(warm, len(x) - chunk + 1, chunk):
            before = stream.n_out
            t, c = time.perf_counter(), time.thread_time()
            stream.process(x[i:i + chunk])
            times.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)
            if stream.n_out > before:      # the oldest sample given out waited this many input samples
                pending = max(pending, stream.n_in - before)
        times = np.array(times) * 1000
        rows[backend] = {"latency_ms": pending / sr * 1000, "median_ms": float(np.median(times)),
                         "p99_ms": float(np.percentile(times, 99)), "worst_ms": float(times.max()),
                         "rtf": float(times.sum() / 1000 / (len(times) * chunk / sr)),
                         "cpu_median_ms": float(np.median(cpu)) * 1000, "cpu_rtf": float(np.sum(cpu) / (len(cpu) * chunk / sr))}
    torch.manual_seed(0)
    offline = Enhancer(build_model(offline_cfg), offline_cfg)
    offline.enhance(x[:sr], sr)
    t = time.perf_counter()
    offline.enhance(x[:int(seconds * sr)], sr)
    offline_rtf = (time.perf_counter() - t) / seconds
    return {"config": name, "params": sum(p.numel() for p in model.parameters()), "window_ms": n_fft / sr * 1000,
            "chunk_ms": chunk / sr * 1000, "offline_rtf": offline_rtf, "left_context": model.left_context,
            "rows": rows}


def profile(name: str, seconds: float, chunk_ms: float) -> None:
    """Self CPU time of the torch stream by operator, and the share of the network call."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from csmvanet.infer.streaming import CausalStream
    from csmvanet.nets import build_model

    cfg = config_of(name)
    cfg.setdefault("model", {})["causal"] = True
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    sr = model.stft_cfg.sample_rate
    chunk = int(round(chunk_ms * sr / 1000))
    x = audio(seconds + 1.0, sr)
    stream = CausalStream(model)
    for i in range(0, sr, chunk):
        stream.process(x[i:i + chunk])
    net = [0.0]
    step = stream.step

    def timed(feats):
        t = time.perf_counter()
        out = step(feats)
        net[0] += time.perf_counter() - t
        return out

    stream.step = timed
    t = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(sr, len(x) - chunk + 1, chunk):
            stream.process(x[i:i + chunk])
    total = time.perf_counter() - t
    print(f"## {name}: network {net[0] / total:.0%} of the stream's time (profiled, {total:.1f} s)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=["tiny", "bundled"])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--chunk_ms", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--profile", action="store_true",
                   help="instead: where the time of the torch stream goes (torch.profiler, by operator and by module)")
    p.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"], choices=("torch", "onnxruntime"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.profile:
        for name in args.configs:
            profile(name, args.seconds, args.chunk_ms)
        return
    print(f"# {args.threads} thread(s), {args.chunk_ms:g} ms chunks, {args.seconds:g} s of audio, random weights")
    print("| config | params | left ctx | backend | window ms | latency ms (window + buffering) | chunk ms | "
          "median ms | p99 ms | worst ms | stream RTF | CPU median ms | CPU RTF | offline RTF (torch, 8 s segments) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.configs:
        r = bench(name, args.seconds, args.chunk_ms, args.backends)
        for backend, b in r["rows"].items():
            print(f"| {r['config']} | {r['params'] / 1e6:.3f}M | {r['left_context']} | {backend} | "
                  f"{r['window_ms']:.1f} | {b['latency_ms']:.1f} | {r['chunk_ms']:.1f} | {b['median_ms']:.2f} | "
                  f"{b['p99_ms']:.2f} | {b['worst_ms']:.2f} | {b['rtf']:.3f} | {b['cpu_median_ms']:.2f} | "
                  f"{b['cpu_rtf']:.3f} | {r['offline_rtf']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
