"""Training speed on the CPU: one optimizer step of the paper config, and the data loader alone.

  python bench/bench_train.py [--config egs/voicebank/conf/train.yaml] [--steps 3] [--num_workers 0 2]
                              [--gpu_step 0.1 0.2 0.4] [--threads N]
  python bench/bench_train.py --checkpointing [--steps 2] [--threads 2]

1. Step: batch 4 x 2 s (train.batch_size x train.segment_seconds of the config), forward + loss +
   backward + gradient clipping + AdamW step, mean seconds over --steps after one warm-up step. The
   batches are prefetched, so this is compute only.
2. Loader: the training DataLoader (TrainSegments + GlobalBatchSampler + collate, as the trainer
   builds it) over a synthetic data dir of 16 kHz wav files (3 s utterances, int32 VAD labels) made
   in a temporary folder, for each --num_workers; segments/s after the first batch.
3. Keep-up: a GPU step of X s consumes batch_size / X segments/s; with one worker delivering what the
   main process measured (num_workers 0), ceil(that / rate) workers keep the GPU fed.
4. --checkpointing (instead of 1-3): the step of 1. without and with activation checkpointing of the
   Conformer blocks (train.grad_checkpoint), each in a fresh process: s/step, peak RSS (ru_maxrss of
   that process, model + data + optimizer included), and the ratios with/without.
Everything printed comes from this one run (machine load included: rerun on an idle machine).
"""
from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from csmvanet.audio.stft import STFTConfig  # noqa: E402
from csmvanet.base.config import load_config  # noqa: E402
from csmvanet.base.version import git_hash  # noqa: E402
from csmvanet.data.dataset import GlobalBatchSampler, TrainSegments, collate  # noqa: E402
from csmvanet.experiment.resolved_config import resolve_config  # noqa: E402
from csmvanet.nets.loss import fp32_outputs as _fp32  # noqa: E402


def make_data_dir(d: Path, n: int, seconds: float, cfg: STFTConfig) -> None:
    import kaldiio
    import soundfile as sf

    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    num = int(seconds * cfg.sample_rate)
    wav, spk1, nums, labels = [], [], [], {}
    for i in range(n):
        key = f"utt{i:04d}"
        clean = (0.1 * rng.standard_normal(num)).astype(np.float32)
        noisy = (clean + 0.05 * rng.standard_normal(num)).astype(np.float32)
        sf.write(d / f"{key}_noisy.wav", noisy, cfg.sample_rate)
        sf.write(d / f"{key}_clean.wav", clean, cfg.sample_rate)
        wav.append(f"{key} {d / f'{key}_noisy.wav'}\n")
        spk1.append(f"{key} {d / f'{key}_clean.wav'}\n")
        nums.append(f"{key} {num}\n")
        labels[key] = (rng.random(cfg.num_frames(num)) > 0.3).astype(np.int32)
    (d / "wav.scp").write_text("".join(wav))
    (d / "spk1.scp").write_text("".join(spk1))
    (d / "utt2num_samples").write_text("".join(nums))
    kaldiio.save_ark(str(d / "vad_labels.ark"), labels, scp=str(d / "vad_labels.scp"))


def bench_step(cfg: dict, batches: list[dict], steps: int) -> list[float]:
    from csmvanet.nets.loss import build_loss
    from csmvanet.nets import build_model

    torch.manual_seed(0)
    model, loss_fn = build_model(cfg).set_grad_checkpointing(bool(cfg["train"]["grad_checkpoint"])), build_loss(cfg)
    o = cfg["optim"]
    opt = torch.optim.AdamW(model.parameters(), lr=o["lr"], betas=tuple(o["betas"]), weight_decay=o["weight_decay"])
    model.train()
    times = []
    for i in range(steps + 1):
        b = batches[i % len(batches)]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        terms = loss_fn(_fp32(model(b["noisy"])), b["clean"], b.get("vad"))
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["train"]["grad_clip"] or float("inf"))
        opt.step()
        times.append(time.perf_counter() - t0)
    return times[1:]   # the first step warms up allocators and kernels


def bench_loader(ds: TrainSegments, batch: int, workers: int, n_batches: int) -> tuple[float, float]:
    sampler = GlobalBatchSampler(len(ds), batch, seed=0)
    sampler.set_epoch(1)
    ds.set_epoch(1)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=workers)
    t0 = time.perf_counter()
    it = iter(loader)
    next(it)
    t_first = time.perf_counter() - t0
    t1 = time.perf_counter()
    got = 0
    for _ in range(n_batches):
        try:
            next(it)
        except StopIteration:
            break
        got += 1
    dt = time.perf_counter() - t1
    del it
    return got * batch / dt, t_first


def _batches(cfg: dict, stft_cfg: STFTConfig, tmp: str, num_utts: int) -> tuple[TrainSegments, list[dict]]:
    t = cfg["train"]
    data = Path(tmp) / "train"
    make_data_dir(data, num_utts, 3.0, stft_cfg)
    ds = TrainSegments(data, stft_cfg, t["segment_seconds"], seed=0, use_vad=True)
    sampler = GlobalBatchSampler(len(ds), t["batch_size"], seed=0)
    sampler.set_epoch(1)
    return ds, [collate([ds[i] for i in b]) for _, b in zip(range(2), sampler)]


def checkpointing_child(cfg: dict, stft_cfg: STFTConfig, steps: int) -> None:
    """One configuration in this (fresh) process: JSON with s/step and peak RSS on stdout."""
    import json
    import resource

    with tempfile.TemporaryDirectory() as tmp:
        _, batches = _batches(cfg, stft_cfg, tmp, 8)
    times = bench_step(cfg, batches, steps)
    print(json.dumps({"s_per_step": float(np.mean(times)), "min": min(times), "max": max(times),
                      "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}))


def bench_checkpointing(args) -> None:
    import json
    import os
    import subprocess

    rows = {}
    for flag in (False, True):
        cmd = [sys.executable, __file__, "--config", args.config, "--steps", str(args.steps),
               "--checkpointing_child", "1" if flag else "0"] + (["--threads", str(args.threads)] if args.threads else [])
        env = dict(os.environ)
        if args.threads:
            env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            sys.exit(f"child failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
        rows[flag] = r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"train.grad_checkpoint {str(flag).lower():5s}: {r['s_per_step']:.3f} s/step (min {r['min']:.3f}, "
              f"max {r['max']:.3f}, {args.steps} steps), peak RSS {r['peak_rss_gib']:.2f} GiB", flush=True)
    off, on = rows[False], rows[True]
    print(f"with/without checkpointing: step time x{on['s_per_step'] / off['s_per_step']:.2f}, "
          f"peak RSS x{on['peak_rss_gib'] / off['peak_rss_gib']:.2f} "
          f"({off['peak_rss_gib']:.2f} -> {on['peak_rss_gib']:.2f} GiB)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(REPO / "egs" / "voicebank" / "conf" / "train.yaml"))
    p.add_argument("--steps", type=int, default=2, help="timed steps (after one warm-up; ~100 s each on 2 CPU cores)")
    p.add_argument("--num_workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--num_utts", type=int, default=160, help="synthetic utterances (3 s each)")
    p.add_argument("--loader_batches", type=int, default=30)
    p.add_argument("--gpu_step", type=float, nargs="+", default=[0.1, 0.2, 0.4],
                   help="GPU seconds per step to compare the loader with")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--checkpointing", action="store_true",
                   help="compare the step without and with train.grad_checkpoint (s/step, peak RSS) instead")
    p.add_argument("--checkpointing_child", choices=("0", "1"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = resolve_config(load_config(args.config))
    t = cfg["train"]
    stft_cfg = STFTConfig.from_dict(cfg.get("stft"))
    if args.checkpointing_child is not None:
        t["grad_checkpoint"] = args.checkpointing_child == "1"
        checkpointing_child(cfg, stft_cfg, args.steps)
        return 0
    from csmvanet.base.version import __version__
    print(f"csmvanet {__version__} (git {git_hash()}), torch {torch.__version__}, numpy {np.__version__}, "
          f"python {platform.python_version()}, {platform.machine()}, torch threads {torch.get_num_threads()}")
    print(f"config {args.config}: batch {t['batch_size']} x {t['segment_seconds']} s, model {cfg['model']}")
    if args.checkpointing:
        bench_checkpointing(args)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        ds, batches = _batches(cfg, stft_cfg, tmp, args.num_utts)
        loader_rates = {}
        for w in args.num_workers:
            rate, first = bench_loader(ds, t["batch_size"], w, args.loader_batches)
            loader_rates[w] = rate
            print(f"loader: num_workers {w}: {rate:8.1f} segments/s ({rate / t['batch_size']:.1f} batches/s; "
                  f"first batch after {first:.2f} s)")

    n_params = sum(p.numel() for p in __import__("csmvanet.nets", fromlist=["build_model"]).build_model(cfg).parameters())
    times = bench_step(cfg, batches, args.steps)
    step = float(np.mean(times))
    print(f"step (forward+loss+backward+clip+AdamW), {n_params / 1e6:.2f}M parameters, CPU: "
          f"{step:.3f} s/step (min {min(times):.3f}, max {max(times):.3f}, {len(times)} steps) = "
          f"{t['batch_size'] / step:.2f} segments/s")
    one = loader_rates.get(0)
    if one is None:
        one = loader_rates[min(loader_rates)] / max(1, min(loader_rates))
    print(f"one loader process: {one:.1f} segments/s = {one / (t['batch_size'] / step):.0f}x what this CPU's "
          "training step consumes")
    for x in args.gpu_step:
        need = t["batch_size"] / x
        print(f"GPU step {x:.3f} s needs {need:7.1f} segments/s -> {max(1, math.ceil(need / one))} loader "
              f"worker(s) at the measured rate (train.num_workers {t['num_workers']} in the config)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
