#!/usr/bin/env python
"""Quality of every network backend on a scored data dir (run by hand, not a unit test)::

    tools/venv/bin/python bench/bench_backend_quality.py --data_dir egs/voiceprompts/dump/test \\
        [--model voiceprompts_small] [--backends torch torch-bf16 torch-int8 onnxruntime] [--threads 2]

Enhances every utterance of ``--data_dir`` (wav.scp, spk1.scp) with each backend, as decoding does
(the model's chunking and stored inference settings), and prints per backend: mean PESQ and STOI
against the references, the difference from torch's PESQ (the issue's bound for a quantised path:
within 0.02), and the agreement with torch's output (SI-SDR of the backend's output against torch's,
mean and worst utterance; bound: >= 30 dB), plus the network's wall time.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", required=True)
    p.add_argument("--model", default=None, help="model (default: the bundled one)")
    p.add_argument("--backends", nargs="+", default=None, help="default: every backend")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    import torch

    import csmvanet
    from csmvanet.infer.enhancer import Enhancer
    from csmvanet.metrics.basic import pesq_or_reason, si_sdr, stoi_or_reason
    from csmvanet.infer.backends import BACKENDS
    from csmvanet.data.utt_audio import read_utterance, utterance_audio
    from csmvanet.base.version import git_hash

    torch.set_num_threads(args.threads)
    backends = args.backends or list(BACKENDS)
    if backends[0] != "torch":
        backends = ["torch"] + [b for b in backends if b != "torch"]
    noisy, clean = utterance_audio(args.data_dir, "wav.scp"), utterance_audio(args.data_dir, "spk1.scp")
    utts = sorted(noisy)
    print(f"# bench_backend_quality: csmvanet {csmvanet.__version__} git {git_hash()}, torch {torch.__version__}; "
          f"{args.data_dir} ({len(utts)} utterances), model {args.model or 'bundled default'}, {args.threads} thread(s)")
    ref_out, rows = {}, []
    for backend in backends:
        enh = Enhancer.from_pretrained(args.model, backend=backend)
        pesq, stoi, agree, secs = [], [], [], 0.0
        for u in utts:
            x, sr = read_utterance(noisy[u])
            r, _ = read_utterance(clean[u])
            t = time.perf_counter()
            y = enh.enhance(x, sr)[0]
            secs += time.perf_counter() - t
            pesq.append(pesq_or_reason(r, y, sr)[0])
            stoi.append(stoi_or_reason(r, y, sr)[0])
            if backend == "torch":
                ref_out[u] = y
            else:
                agree.append(si_sdr(ref_out[u], y))
        rows.append((backend, float(np.nanmean(pesq)), float(np.nanmean(stoi)), agree, secs))
        print(f"  {backend:12s} PESQ {rows[-1][1]:.4f} STOI {rows[-1][2]:.4f}  enhance {secs:.1f} s", flush=True)
    base = rows[0][1]
    print(f"\n  {'backend':12s} {'PESQ':>7s} {'dPESQ':>7s} {'STOI':>7s} {'SI-SDR vs torch: mean / worst':>30s} {'time':>8s}")
    for backend, pq, st, agree, secs in rows:
        a = "(reference)" if not agree else f"{np.mean(agree):6.1f} / {np.min(agree):6.1f} dB"
        print(f"  {backend:12s} {pq:7.4f} {pq - base:+7.4f} {st:7.4f} {a:>30s} {secs:7.1f}s")


if __name__ == "__main__":
    main()
