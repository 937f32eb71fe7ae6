"""The multi-target loss of CSM-VANet (paper eq. 3-7).

L = a1 * L1(time) + a2 * MSE(compressed magnitude) + a3 * [MSE(real) + MSE(imag)] + a4 * BCE(VAD),
paper weights 0.2, 0.8, 0.2, 0.1. ``mag_asym`` (alpha, default 1: the paper's symmetric MSE) scales
the magnitude error where the estimate lies below the target, ``(alpha * (|S| - |S_hat|))^2`` there:
the asymmetric L2 of VoiceFilter-Lite (Wang et al., Interspeech 2020), which makes removing speech
(over-suppression) cost alpha^2 times more than leaving noise in. All terms are computed in fp32 in
the level-normalised domain of the model (clean speech scaled by the same factor as the noisy input), so the loss does not depend
on the recording level. Every term is returned on its own for logging, unweighted, beside the
weighted total ``loss``. A term whose weight is 0 is still reported (it costs little) but does not
contribute; the VAD term is 0 when the model has no VAD decoder or no labels are given.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from csmvanet.config import keyword_names, section_options
from csmvanet.errors import ConfigError
from csmvanet.features import STFTConfig, analyse

#: What the loss returns: the weighted total, then every term unweighted.
TERMS = ("loss", "time", "mag", "ri", "vad")


class CSMVANetLoss(nn.Module):
    def __init__(self, stft_cfg: STFTConfig, time: float = 0.2, mag: float = 0.8, ri: float = 0.2,
                 vad: float = 0.1, mag_asym: float = 1.0):
        super().__init__()
        self.stft_cfg = stft_cfg
        self.weights = {"time": float(time), "mag": float(mag), "ri": float(ri), "vad": float(vad)}
        self.mag_asym = _mag_asym_value(mag_asym)

    def forward(self, out: dict, clean: torch.Tensor, vad_labels: torch.Tensor | None = None) -> dict:
        with torch.autocast(device_type=clean.device.type, enabled=False):
            scale = out["scale"].float()[:, None]
            clean_n = clean.float() * scale
            est_n = out["wave"].float() * scale
            target = analyse(clean_n, self.stft_cfg)
            spec = out["spec"]
            if target.shape != spec.shape:
                raise ValueError(f"loss: spectrum shapes differ: estimate {tuple(spec.shape)}, "
                                 f"target {tuple(target.shape)}")
            terms = {
                "time": F.l1_loss(est_n, clean_n),
                "mag": self._mag(spec.abs(), target.abs()),
                "ri": F.mse_loss(spec.real, target.real) + F.mse_loss(spec.imag, target.imag),
            }
            logits = out.get("vad_logits")
            if logits is not None and vad_labels is not None:
                if vad_labels.shape != logits.shape:
                    raise ValueError(f"loss: VAD labels {tuple(vad_labels.shape)} do not match the "
                                     f"model's frames {tuple(logits.shape)}")
                terms["vad"] = F.binary_cross_entropy_with_logits(logits.float(), vad_labels.float())
            else:
                terms["vad"] = torch.zeros((), device=clean.device)
            total = sum(self.weights[k] * v for k, v in terms.items())
        return {"loss": total, **terms}

    def _mag(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        if self.mag_asym == 1.0:
            return F.mse_loss(est, ref)
        err = ref - est                                   # > 0: speech removed
        return torch.where(err > 0, err * self.mag_asym, err).square().mean()


def _mag_asym_value(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not v >= 1.0:
        raise ConfigError(f"loss mag_asym must be a number >= 1 (1: symmetric), got {value!r}")
    return v


def loss_weights(cfg: dict) -> dict:
    """The ``loss`` section of ``cfg`` (weights; the others keep CSMVANetLoss's defaults), checked:
    unknown keys and a bad ``mag_asym`` raise ConfigError when the config is read."""
    weights = section_options("loss", cfg.get("loss"), keyword_names(CSMVANetLoss), what="weight")
    if "mag_asym" in weights:
        _mag_asym_value(weights["mag_asym"])
    return weights


def build_loss(cfg: dict, stft: STFTConfig | None = None) -> CSMVANetLoss:
    """The loss of a config; ``stft``: its already parsed stft section (else parsed from ``cfg``)."""
    return CSMVANetLoss(stft or STFTConfig.from_dict(cfg.get("stft")), **loss_weights(cfg))


def fp32_outputs(out: dict) -> dict:
    """Network outputs in fp32 (complex64) for the loss, whatever autocast produced."""
    res = {}
    for k, v in out.items():
        if torch.is_tensor(v):
            if v.is_complex():
                v = v.to(torch.complex64)
            elif v.is_floating_point():
                v = v.float()
        res[k] = v
    return res


def autocast(amp: str):
    """The autocast context of ``train.amp`` (none | bf16 | fp16; CUDA) for running the network."""
    import contextlib

    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)
