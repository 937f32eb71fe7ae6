"""Forward + backward of CSM-VANet on CPU: seconds per step, peak memory, FLOP utilisation.

    tools/venv/bin/python bench/bench_model.py [--config egs/voicebank/conf/train.yaml] [--batch 4]
        [--seconds 2] [--steps 3] [--threads N]

Utilisation = the model's FLOPs per step (torch's FLOP counter; backward counted by the counter too)
divided by seconds/step, as a fraction of the fp32 matmul FLOP/s measured on this machine in the same
run (a 2048x2048 matmul loop, best of three). The counter counts what the graph computes: a depthwise
convolution counts every tap, padding included, a banded matrix every entry, so two graphs of one
model count differently; ``--flops`` gives the utilisation against a fixed count as well. Peak
memory is the process's peak RSS (ru_maxrss).
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch

from csmvanet.base.config import load_config
from csmvanet.nets import build_model
from csmvanet.nets.loss import build_loss
from csmvanet.nets.summary import count_parameters

ROOT = Path(__file__).resolve().parents[1]


def matmul_flops(n: int = 2048, seconds: float = 3.0) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "egs/voicebank/conf/train.yaml"))
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--flops", type=float, default=None,
                   help="also give the utilisation against this many GFLOP per step, e.g. another graph's "
                        "count, so that two implementations of one model compare on the same work")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    torch.manual_seed(0)
    model = build_model(cfg).train()
    loss_fn = build_loss(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    n = int(args.seconds * model.stft_cfg.sample_rate)
    noisy, clean = torch.randn(args.batch, n) * 0.1, torch.randn(args.batch, n) * 0.1
    labels = (torch.rand(args.batch, model.stft_cfg.num_frames(n)) > 0.5).float()

    def step():
        terms = loss_fn(model(noisy), clean, labels)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()

    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:   # also the warm-up step
        step()
    flops = float(fc.get_total_flops())
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    sec = min(times)
    # the peak of a shared VM moves between runs (182-258 GFLOP/s measured on the 2-core machine):
    # measured three times after the steps, the best one counts, all are printed
    peaks = [matmul_flops(seconds=2.0) for _ in range(3)]
    peak = max(peaks)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"config: {args.config}  params: {count_parameters(model):,}  torch {torch.__version__}  "
          f"threads: {torch.get_num_threads()}")
    print(f"batch {args.batch} x {args.seconds:g} s: {sec:.2f} s/step (min of {args.steps}; "
          f"all: {', '.join(f'{t:.2f}' for t in times)})")
    print(f"peak RSS: {rss:.0f} MiB")
    print(f"model FLOPs/step (fwd+bwd): {flops / 1e9:.1f} GFLOP -> {flops / sec / 1e9:.1f} GFLOP/s")
    print(f"fp32 matmul peak measured: {peak / 1e9:.1f} GFLOP/s (best of "
          f"{', '.join(f'{q / 1e9:.1f}' for q in peaks)}) -> utilisation {flops / sec / peak:.1%}")
    if args.flops:
        print(f"against {args.flops:g} GFLOP/step (--flops): utilisation {args.flops * 1e9 / sec / peak:.1%}")


if __name__ == "__main__":
    main()
