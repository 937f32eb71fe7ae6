"""Networks. ``build_model(cfg)`` builds CSM-VANet from a whole config (sections ``model``, ``stft``).

The valid ``model`` keys are the keyword parameters of :class:`CSMVANet` (read from its signature).
"""
from __future__ import annotations

from csmvanet.audio.stft import STFTConfig
from csmvanet.base.config import keyword_names, section_options
from csmvanet.nets.csmvanet import CSMVANet


def model_options(cfg: dict) -> dict:
    """The ``model`` section of ``cfg``, checked against CSMVANet's keyword parameters."""
    return section_options("model", cfg.get("model"), keyword_names(CSMVANet))


def build_model(cfg: dict, stft: STFTConfig | None = None) -> CSMVANet:
    """CSM-VANet of a config; ``stft``: its already parsed stft section (else parsed from ``cfg``)."""
    return CSMVANet(stft or STFTConfig.from_dict(cfg.get("stft")), **model_options(cfg))


__all__ = ["CSMVANet", "build_model", "model_options"]
