"""Networks. ``build_model(cfg)`` builds CSM-VANet from a whole config (sections ``model``, ``stft``)."""
from __future__ import annotations

from csmvanet.features import STFTConfig
from csmvanet.nets.csmvanet import CSMVANet

_MODEL_KEYS = {"channels", "num_conformers", "heads", "ff_mult", "conv_kernel", "conv_expansion", "dropout",
               "kernel_size", "msgc", "vad_decoder", "vad_kernel", "vad_floor", "normalize_input",
               "rel_pos_max", "rel_pos_clamp"}


def build_model(cfg: dict) -> CSMVANet:
    model_cfg = dict(cfg.get("model") or {})
    unknown = set(model_cfg) - _MODEL_KEYS
    if unknown:
        raise ValueError(f"unknown model option(s): {sorted(unknown)}; known: {sorted(_MODEL_KEYS)}")
    return CSMVANet(STFTConfig.from_dict(cfg.get("stft")), **model_cfg)


__all__ = ["CSMVANet", "build_model"]
