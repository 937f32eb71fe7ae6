"""The multi-target loss of CSM-VANet (paper eq. 3-7).

L = a1 * L1(time) + a2 * MSE(compressed magnitude) + a3 * [MSE(real) + MSE(imag)] + a4 * BCE(VAD),
paper weights 0.2, 0.8, 0.2, 0.1. Not in the paper, off by default: ``env`` weights 1 - the
band-envelope correlation of :func:`envelope_correlation`, the quantity STOI averages (an
intelligibility term, as in Kolbaek et al., IEEE/ACM TASLP 2018); ``env_form: log`` weights
``log(1 - d + 0.01)`` per item instead (batch mean), whose gradient is that of ``1 - d`` divided
by ``1 - d + 0.01``: the items the model already gets nearly right, mostly the high-SNR ones where
any distortion lowers STOI below the input's, count up to 100 times more. ``mag_asym`` (alpha, default 1:
the paper's symmetric MSE) scales the magnitude error where the estimate lies below the target,
``(alpha * (|S| - |S_hat|))^2`` there: the asymmetric L2 of VoiceFilter-Lite (Wang et al.,
Interspeech 2020), which makes removing speech (over-suppression) cost alpha^2 times more than
leaving noise in. All terms are computed in fp32 in the level-normalised domain of the model (clean
speech scaled by the same factor as the noisy input), so the loss does not depend on the recording
level. Every term is returned on its own for logging, unweighted, beside the
weighted total ``loss``. A term whose weight is 0 is still reported (it costs little) but does not
contribute (``env`` is then computed without gradient); the VAD term is 0 when the model has no
VAD decoder or no labels are given.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from csmvanet.audio.stft import STFTConfig, analyse
from csmvanet.base.config import keyword_names, section_options
from csmvanet.base.errors import ConfigError

#: What the loss returns: the weighted total, then every term unweighted.
TERMS = ("loss", "time", "mag", "ri", "vad", "env")
#: Offset of the log form of the env term: caps its emphasis at 1 / ENV_LOG_EPS.
ENV_LOG_EPS = 0.01
ENV_FORMS = ("linear", "log")


class CSMVANetLoss(nn.Module):
    def __init__(self, stft_cfg: STFTConfig, time: float = 0.2, mag: float = 0.8, ri: float = 0.2,
                 vad: float = 0.1, mag_asym: float = 1.0, env: float = 0.0, env_form: str = "linear"):
        super().__init__()
        self.stft_cfg = stft_cfg
        self.weights = {"time": float(time), "mag": float(mag), "ri": float(ri), "vad": float(vad),
                        "env": float(env)}
        self.mag_asym = _mag_asym_value(mag_asym)
        self.env_form = _env_form_value(env_form)

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
            terms["env"], env_loss = self._env(est_n, clean_n)
            total = sum(self.weights[k] * (env_loss if k == "env" else v) for k, v in terms.items())
        return {"loss": total, **terms}

    def _env(self, est: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1 - mean correlation, the term the weight multiplies: that, or the log form's)."""
        sr = self.stft_cfg.sample_rate
        if self.weights["env"] > 0:
            if self.env_form == "linear":
                report = 1.0 - envelope_correlation(est, ref, sr)
                return report, report
            dist = 1.0 - envelope_correlation(est, ref, sr, reduction="none")
            return dist.mean(), torch.log(dist + ENV_LOG_EPS).mean()
        if ref.shape[-1] < envelope_frame(sr)[0]:
            zero = torch.zeros((), device=ref.device)     # only reported: too short to say
            return zero, zero
        with torch.no_grad():
            report = 1.0 - envelope_correlation(est, ref, sr)
        return report, report

    def _mag(self, est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        if self.mag_asym == 1.0:
            return F.mse_loss(est, ref)
        err = ref - est                                   # > 0: speech removed
        return torch.where(err > 0, err * self.mag_asym, err).square().mean()


def third_octave_bands(sample_rate: int, n_fft: int, num_bands: int = 15, low: float = 150.0) -> torch.Tensor:
    """[num_bands, n_fft // 2 + 1] 0/1 matrix summing FFT power into one-third octave bands whose
    centres are ``low * 2 ** (k / 3)`` (STOI's 15 bands from 150 Hz, edges a sixth of an octave away)."""
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
    centres = low * 2.0 ** (torch.arange(num_bands, dtype=torch.float64) / 3)
    lo, hi = centres * 2.0 ** (-1 / 6), centres * 2.0 ** (1 / 6)
    return ((freqs[None] >= lo[:, None]) & (freqs[None] < hi[:, None])).float()


def envelope_frame(sample_rate: int) -> tuple[int, int, int]:
    """(FFT size, window, hop) in samples of :func:`envelope_correlation`: 25 ms every 12.5 ms."""
    win, hop = round(0.025 * sample_rate), round(0.0125 * sample_rate)
    return 1 << (win - 1).bit_length(), win, hop


def envelope_correlation(est: torch.Tensor, ref: torch.Tensor, sample_rate: int, *, frames: int = 30,
                         clip_db: float = -15.0, silence_db: float = 40.0, reduction: str = "mean") -> torch.Tensor:
    """Mean correlation of the one-third octave band envelopes of ``est`` and ``ref`` [B, N] over
    windows of ``frames`` frames (about 384 ms), as STOI computes it (Taal et al., 2011) but at the
    signals' own rate and differentiable: 25 ms Hann frames every 12.5 ms, the estimate's envelope
    scaled to the reference's norm per band and window and clipped at ``clip_db`` SDR, after
    dropping the frames more than ``silence_db`` below the loudest reference frame. Averaged over
    bands and windows per signal, then over the batch (``reduction="none"``: one value per signal,
    [B]); 1 means equal envelopes. A signal with fewer kept frames than ``frames`` is one window of
    all of them."""
    n_fft, win, hop = envelope_frame(sample_rate)
    if ref.shape[-1] < n_fft:
        raise ValueError(f"envelope_correlation: {ref.shape[-1]} samples, fewer than one frame ({n_fft})")
    window = F.pad(torch.hann_window(win, device=est.device), ((n_fft - win) // 2, (n_fft - win + 1) // 2))
    bands = third_octave_bands(sample_rate, n_fft).to(est.device)

    def envelopes(x):
        spec = torch.stft(x.float(), n_fft, hop, n_fft, window, center=False, return_complex=True)
        return (bands @ spec.abs().square()).clamp_min(1e-10).sqrt()       # [B, bands, T]

    x, y = envelopes(ref), envelopes(est)
    energy = 10 * torch.log10(ref.float().unfold(-1, n_fft, hop).mul(window).square().sum(-1) + 1e-10)
    keep = energy > energy.amax(-1, keepdim=True) - silence_db                # [B, T]
    corrs = []
    for xb, yb, kb in zip(x, y, keep):
        xb, yb = xb[:, kb], yb[:, kb]                                         # STOI drops silent frames
        size = min(frames, xb.shape[-1])
        xb, yb = xb.unfold(-1, size, 1), yb.unfold(-1, size, 1)               # [bands, windows, size]
        yb = yb * (xb.norm(dim=-1, keepdim=True) / (yb.norm(dim=-1, keepdim=True) + 1e-8))
        yb = torch.minimum(yb, xb * (1 + 10 ** (-clip_db / 20)))
        xb, yb = xb - xb.mean(-1, keepdim=True), yb - yb.mean(-1, keepdim=True)
        corrs.append(((xb * yb).sum(-1) / (xb.norm(dim=-1) * yb.norm(dim=-1) + 1e-8)).mean())
    corrs = torch.stack(corrs)
    return corrs if reduction == "none" else corrs.mean()


def _mag_asym_value(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not v >= 1.0:
        raise ConfigError(f"loss mag_asym must be a number >= 1 (1: symmetric), got {value!r}")
    return v


def _env_form_value(value) -> str:
    if value not in ENV_FORMS:
        raise ConfigError(f"loss env_form must be one of {', '.join(ENV_FORMS)}, got {value!r}")
    return value


def loss_weights(cfg: dict) -> dict:
    """The ``loss`` section of ``cfg`` (weights; the others keep CSMVANetLoss's defaults), checked:
    unknown keys and a bad ``mag_asym`` or ``env_form`` raise ConfigError when the config is read."""
    weights = section_options("loss", cfg.get("loss"), keyword_names(CSMVANetLoss), what="weight")
    if "mag_asym" in weights:
        _mag_asym_value(weights["mag_asym"])
    if "env_form" in weights:
        _env_form_value(weights["env_form"])
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
