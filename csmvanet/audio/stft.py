"""STFT features of CSM-VANet: power-compressed complex spectra and their exact inverse.

One place holds the STFT settings (n_fft 400, Hann 400, hop 100, centred) so that training,
inference and VAD labelling always produce the same frames. Everything here runs in fp32, also
when called inside ``torch.autocast``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from csmvanet.base.config import section_options


@dataclass(frozen=True)
class STFTConfig:
    n_fft: int = 400
    win_length: int = 400
    hop_length: int = 100
    compress: float = 0.3  # magnitude power-compression exponent; the phase is kept
    sample_rate: int = 16000

    @classmethod
    def from_dict(cls, d: dict | None) -> "STFTConfig":
        return cls(**section_options("stft", d, cls.__dataclass_fields__))

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, num_samples: int) -> int:
        """Frames of a centred STFT of ``num_samples`` samples."""
        return num_samples // self.hop_length + 1


_EPS = 1e-12


def _window(cfg: STFTConfig, device) -> torch.Tensor:
    return torch.hann_window(cfg.win_length, periodic=True, device=device, dtype=torch.float32)


def stft(wave: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """[B, N] waveform -> [B, F, T] complex64 spectrum (centred, reflect padding)."""
    with torch.autocast(device_type=wave.device.type, enabled=False):
        return torch.stft(wave.float(), cfg.n_fft, cfg.hop_length, cfg.win_length,
                          window=_window(cfg, wave.device), center=True, pad_mode="reflect",
                          return_complex=True)


def istft(spec: torch.Tensor, cfg: STFTConfig, length: int) -> torch.Tensor:
    """[B, F, T] complex spectrum -> [B, length] waveform."""
    with torch.autocast(device_type=spec.device.type, enabled=False):
        return torch.istft(spec.to(torch.complex64), cfg.n_fft, cfg.hop_length, cfg.win_length,
                           window=_window(cfg, spec.device), center=True, length=length)


def compress(spec: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """|S|^c * exp(j angle S): power-compress the magnitude, keep the phase."""
    with torch.autocast(device_type=spec.device.type, enabled=False):
        spec = spec.to(torch.complex64)
        mag = spec.abs()
        # scale = |S|^(c-1); guarded so that S = 0 maps to 0 without NaN in value or gradient.
        scale = torch.where(mag > _EPS, mag.clamp_min(_EPS).pow(cfg.compress - 1.0), torch.zeros_like(mag))
        return spec * scale


def decompress(spec: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """Inverse of :func:`compress`: |C|^(1/c) * exp(j angle C)."""
    with torch.autocast(device_type=spec.device.type, enabled=False):
        spec = spec.to(torch.complex64)
        mag = spec.abs()
        scale = torch.where(mag > _EPS, mag.clamp_min(_EPS).pow(1.0 / cfg.compress - 1.0), torch.zeros_like(mag))
        return spec * scale


def analyse(wave: torch.Tensor, cfg: STFTConfig) -> torch.Tensor:
    """Waveform [B, N] -> compressed complex spectrum [B, F, T]."""
    return compress(stft(wave, cfg), cfg)


def synthesise(spec_c: torch.Tensor, cfg: STFTConfig, length: int) -> torch.Tensor:
    """Compressed complex spectrum [B, F, T] -> waveform [B, length]."""
    return istft(decompress(spec_c, cfg), cfg, length)
