"""The random number generators of a process (python, numpy, torch, CUDA): seeding, saving, restoring.

Exact resume stores every rank's state in checkpoint_last.pth; the numpy key is kept as an int64
tensor so the checkpoint loads with ``weights_only=True``.
"""
from __future__ import annotations

import random

import numpy as np
import torch


def rng_state(device: torch.device) -> dict:
    name, key, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": [name, torch.from_numpy(np.asarray(key, dtype=np.int64)), int(pos), int(has_gauss),
                       float(gauss)],
             "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    name, key, pos, has_gauss, g = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), pos, has_gauss, g))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
