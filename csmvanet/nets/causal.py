"""The causal variant of CSM-VANet (``model.causal: true``): the pieces it changes, and why.

The paper's network looks at its whole input: centred convolutions see future frames, the time
attention spans the segment, InstanceNorm takes statistics over all frames, and the input is scaled
to unit RMS of the whole segment. With ``causal: true`` the output of frame ``t`` depends on input
frames ``<= t`` only, so it can run live, frame by frame (:mod:`csmvanet.infer.streaming`):

* **Framing** (:func:`frames_of`, :func:`overlap_add`): the STFT is framed as ``torch.stft(center=True)``
  but padded with zeros, not a reflection of the signal (a reflection at the start would read
  samples ahead of the first frame). Frame ``t`` covers samples ``[t*hop - n_fft/2, t*hop + n_fft/2)``;
  the inverse divides the overlap-add by the sum of squared windows, as ``torch.istft``. An output
  sample is final once every frame covering it is computed: the look-ahead is one window
  (n_fft - 1 samples, 25 ms at 16 kHz), nothing more.
* **Level** (:func:`running_level`): instead of one RMS of the whole segment, each frame is scaled by
  a running level: an exponential average (time constant ``model.level_seconds``) of the frames'
  mean square, bias-corrected for the first frames (as Adam's moments), so frame ``t`` only uses
  samples of frames ``<= t``. The enhanced frame is multiplied back by the same level.
* **Convolutions over time** (:func:`time_conv`): padded on the past only (``k - 1`` frames, times the
  dilation), never on the future. Frequency padding is unchanged. The decoder's transposed
  convolution takes frames ``t, t-1, t-2`` instead of ``t+1, t, t-1``.
* **Normalisation** (:class:`FrameNorm`): InstanceNorm over (time, frequency) becomes a norm over
  (channels, frequency) of each frame, with the same per-channel affine parameters: no statistics
  over time. The Conformers' LayerNorms are per frame already; their BatchNorm uses its running
  statistics at inference (a fixed affine map).
* **Time attention**: frame ``t`` attends to frames ``t - left_context .. t`` (``model.left_context``
  frames); the frequency attention (within one frame) is unchanged. The VAD head's Conv1d is causal.

Every causal module takes an optional ``state`` dict: with ``None`` it runs on a whole input from
silence (zeros in the past); with a dict it reads the past it needs (last frames of each
convolution's input, keys and values of the last ``left_context`` frames, the frame counter ``t0``)
and writes it back, so running the frames in pieces gives the same result as running them at once.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FrameNorm(nn.Module):
    """Normalisation of each frame over (channels, frequency) of ``[B, C, T, F]`` maps, per-channel
    affine (the parameters InstanceNorm2d(affine=True) has): causal, no statistics over time."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        mean = x.mean(dim=(1, 3), keepdim=True)
        var = (x - mean).pow(2).mean(dim=(1, 3), keepdim=True)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        return y * self.weight[None, :, None, None] + self.bias[None, :, None, None]


def time_conv(conv, x: torch.Tensor, past: int, state: dict | None, key: str) -> torch.Tensor:
    """``conv`` (no time padding of its own) over ``x`` ``[B, C, T(, F)]`` with ``past`` frames
    before it: zeros when ``state`` is None or holds no ``key`` yet, else the frames stored there;
    the last ``past`` frames of the input are stored under ``key``."""
    if past == 0:
        return conv(x)
    prev = None if state is None else state.get(key)
    if prev is None:
        pad = [0, 0] * (x.dim() - 3) + [past, 0]
        z = F.pad(x, pad)
    else:
        z = torch.cat([prev, x], dim=2)
    if state is not None:
        state[key] = z[:, :, z.shape[2] - past:]
    return conv(z)


def frame_window(cfg, device=None) -> torch.Tensor:
    """The analysis/synthesis window, ``n_fft`` long (a shorter Hann window centred in it, as torch.stft)."""
    win = torch.hann_window(cfg.win_length, periodic=True, device=device, dtype=torch.float32)
    left = (cfg.n_fft - cfg.win_length) // 2
    return F.pad(win, (left, cfg.n_fft - cfg.win_length - left))


def frames_of(wave: torch.Tensor, cfg) -> torch.Tensor:
    """Whole waveforms ``[B, N]`` -> frames ``[B, T, n_fft]`` of the zero-padded signal, T = N // hop + 1."""
    half = cfg.n_fft // 2
    return F.pad(wave.float(), (half, half)).unfold(1, cfg.n_fft, cfg.hop_length)


def running_level(power: torch.Tensor, ema: torch.Tensor, count: int, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Levels ``[B, n]`` of ``n`` frames with mean squares ``power [B, n]``, after ``count`` frames
    whose average was ``ema [B]``; returns (levels, the average after them). One frame at a time, so
    any split of the frames gives the same numbers."""
    levels = []
    for i in range(power.shape[1]):
        ema = alpha * ema + (1.0 - alpha) * power[:, i]
        levels.append((ema / (1.0 - alpha ** (count + i + 1))).sqrt().clamp_min(1e-5))
    if not levels:
        return power.new_zeros(power.shape[0], 0), ema
    return torch.stack(levels, dim=1), ema


def level_alpha(cfg, level_seconds: float) -> float:
    return math.exp(-cfg.hop_length / (cfg.sample_rate * level_seconds))


def analyse_frames(frames: torch.Tensor, levels: torch.Tensor, cfg) -> torch.Tensor:
    """Frames ``[B, n, n_fft]`` and their levels ``[B, n]`` -> network input ``[B, 3, n, F]``."""
    from csmvanet.audio.stft import compress

    spec = torch.fft.rfft(frames * frame_window(cfg, frames.device), dim=-1) / levels[..., None]
    spec = compress(spec, cfg)                                                  # b n f
    return torch.stack([spec.abs(), spec.real, spec.imag], dim=1)


def synthesise_frames(spec_c: torch.Tensor, levels: torch.Tensor, cfg) -> torch.Tensor:
    """Compressed output spectra ``[B, F, n]`` -> windowed time frames ``[B, n, n_fft]`` at the input's level."""
    from csmvanet.audio.stft import decompress

    spec = decompress(spec_c, cfg).transpose(1, 2) * levels[..., None]         # b n f
    return torch.fft.irfft(spec, n=cfg.n_fft, dim=-1) * frame_window(cfg, spec_c.device)


def overlap_add(frames: torch.Tensor, cfg, length: int) -> torch.Tensor:
    """Windowed frames ``[B, T, n_fft]`` of a whole signal -> its ``length`` samples (the inverse of
    :func:`frames_of` followed by the window; divided by the sum of squared windows)."""
    b, t, n = frames.shape
    total = (t - 1) * cfg.hop_length + n
    out = F.fold(frames.transpose(1, 2), (1, total), (1, n), stride=(1, cfg.hop_length)).view(b, total)
    win2 = frame_window(cfg, frames.device).pow(2)[None, :, None].expand(1, n, t)
    env = F.fold(win2, (1, total), (1, n), stride=(1, cfg.hop_length)).view(total)
    half = cfg.n_fft // 2
    return (out / env.clamp_min(1e-11))[:, half:half + length]
