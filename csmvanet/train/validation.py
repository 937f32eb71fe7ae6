"""Validation of a training run: loss terms over the validation set, PESQ/STOI on a subset.

Each rank takes a shard of the utterances (whole utterances, batch 1); the sums are reduced over the
ranks, so every rank returns the same values.
"""
from __future__ import annotations

import logging

import torch

from csmvanet.audio.stft import STFTConfig
from csmvanet.data.dataset import ShardSampler, collate
from csmvanet.nets.loss import TERMS, autocast, fp32_outputs
from csmvanet.train.distributed import DistInfo, all_reduce

log = logging.getLogger("csmvanet.train.trainer")


@torch.no_grad()
def validate(model: torch.nn.Module, loss_fn, valid_set, stft_cfg: STFTConfig, dist: DistInfo, *,
             amp: str = "none", num_workers: int = 0, metrics_subset: int = 0) -> dict:
    """``valid.<term>`` means over the validation set (+ ``valid.pesq``/``valid.stoi`` on the first
    ``metrics_subset`` utterances); identical on every rank."""
    device = dist.device
    was_training = model.training
    model.eval()
    n_metrics = int(metrics_subset)
    indices = range(len(valid_set))
    loader = torch.utils.data.DataLoader(
        valid_set, batch_size=1, sampler=ShardSampler(indices, dist.rank, dist.world_size),
        collate_fn=collate, num_workers=num_workers, generator=torch.Generator().manual_seed(0))
    position = {k: i for i, k in enumerate(valid_set.keys)}
    sums = torch.zeros(len(TERMS) + 5, dtype=torch.float64)   # terms, n, pesq, n_pesq, stoi, n_stoi
    win = stft_cfg.win_length
    failures = []
    for batch in loader:
        noisy, clean, vad = batch["noisy"], batch["clean"], batch.get("vad")
        if noisy.shape[1] < win:   # shorter than one window: pad with silence
            pad = win - noisy.shape[1]
            noisy = torch.nn.functional.pad(noisy, (0, pad))
            clean = torch.nn.functional.pad(clean, (0, pad))
            if vad is not None:
                vad = torch.nn.functional.pad(vad, (0, stft_cfg.num_frames(win) - vad.shape[1]))
        noisy, clean = noisy.to(device), clean.to(device)
        vad = vad.to(device) if vad is not None else None
        with autocast(amp):
            out = model(noisy)
        out = fp32_outputs(out)
        terms = loss_fn(out, clean, vad)
        for i, k in enumerate(TERMS):
            sums[i] += float(terms[k])
        sums[len(TERMS)] += 1
        key = batch["keys"][0]
        if position[key] < n_metrics:
            from csmvanet.metrics.basic import pesq_score, stoi_score
            n = batch["noisy"].shape[1]
            ref = clean[0, :n].cpu().numpy()
            deg = out["wave"][0, :n].cpu().numpy()
            sr = stft_cfg.sample_rate
            p, s = pesq_score(ref, deg, sr), stoi_score(ref, deg, sr)
            if p == p:
                sums[len(TERMS) + 1] += p
                sums[len(TERMS) + 2] += 1
            else:
                failures.append(key)
            if s == s:
                sums[len(TERMS) + 3] += s
                sums[len(TERMS) + 4] += 1
    if failures:
        log.warning("validation: PESQ failed on %d utterance(s): %s", len(failures), ", ".join(failures[:5]))
    sums = all_reduce(sums.to(device), dist).cpu()
    nt = len(TERMS)
    res = {f"valid.{k}": float(sums[i] / max(1.0, float(sums[nt]))) for i, k in enumerate(TERMS)}
    if n_metrics:
        if sums[nt + 2] > 0:
            res["valid.pesq"] = float(sums[nt + 1] / sums[nt + 2])
        if sums[nt + 4] > 0:
            res["valid.stoi"] = float(sums[nt + 3] / sums[nt + 4])
    model.train(was_training)
    return res
