"""Human-readable summaries of a model: parameters per module, feature shapes."""
from __future__ import annotations

import torch

from csmvanet.nets import build_model


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe(cfg: dict, seconds: float = 2.0) -> str:
    """Parameter count per top-level module and in total, and the feature shapes for ``seconds`` of
    input. The last line is exactly ``params: <integer>``."""
    model = build_model(cfg)
    s = model.stft_cfg
    n = int(round(seconds * s.sample_rate))
    t = s.num_frames(n)
    lines = ["module            parameters"]
    for name, child in model.named_children():
        lines.append(f"{name:<17} {count_parameters(child):>11,}")
    total = count_parameters(model)
    lines.append(f"{'total':<17} {total:>11,}  ({total / 1e6:.2f}M)")
    lines.append(f"input {seconds:g} s at {s.sample_rate} Hz: {n} samples -> spectrogram [F={s.n_bins}, T={t}] "
                 f"(n_fft {s.n_fft}, hop {s.hop_length}, centred); features [B, 3, {t}, {s.n_bins}]")
    lines.append("frequency bins per encoder level: " + " -> ".join(str(b) for b in model.bins))
    lines.append(f"params: {total}")
    return "\n".join(lines)
