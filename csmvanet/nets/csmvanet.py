"""CSM-VANet: the two stages wired together.

noisy waveform [B, N]
  -> RMS level normalisation (each input scaled to unit RMS; undone on the output)
  -> STFT (n_fft 400, Hann 400, hop 100, centred) -> power compression 0.3 (phase kept)
  -> features [B, 3, T, F]: compressed magnitude, real, imag
  -> input conv (3 -> C0, Conv2d + InstanceNorm + PReLU)
  -> 4 encoder blocks (MSGC + stride-(1,2) conv), channels C = [24, 48, 96, 192] by default
  -> bottleneck: N TF-Conformer blocks at C[-1] channels
  -> 4 decoder blocks (skip added, MSGC, transposed conv), back to C0 channels and F bins
  -> output conv (Conv2d + InstanceNorm + PReLU, then a 1x1 conv to 2 channels)
  -> stage 1: compressed real and imaginary parts of the clean spectrum
  VAD decoder (encoder outputs + bottleneck) -> frame probabilities v [B, T]
  -> stage 2: the stage-1 spectrum multiplied frame-wise by v
  -> decompression -> inverse STFT -> exactly N samples -> level restored.

The output conv: the paper says it "has the same structure as the input convolution"; a
Conv2d + InstanceNorm + PReLU whose last step normalised the predicted spectrum would throw away its
level, so we keep that structure at C0 channels and add a 1x1 conv that maps to real/imag.

Relative positions in the Conformers' attention: CMGAN's table of 2 x 512 + 1 embeddings
(``rel_pos_max``), with distances clipped at ``rel_pos_clamp``. Training on 2 s segments (321 frames)
only ever updates distances up to 320, so the recipes set ``rel_pos_clamp: 320``: an 8 s inference
chunk then uses the embedding of the largest trained distance for farther frames, never a row that
kept its random initial value. Attention over frequency (at most 26 bins) is not affected.

``causal: true`` builds the causal variant for live audio (:mod:`csmvanet.nets.causal` says what
changes and why: zero-padded framing, a running level for the RMS normalisation, convolutions padded
on the past, FrameNorm for InstanceNorm, time attention over the last ``left_context`` frames).
``network(feats, state)`` then runs a piece of the frames with the past kept in ``state``
(:mod:`csmvanet.infer.streaming`). With ``causal: false`` (the default) nothing differs from the
paper's network: same parameters, same outputs.
"""
from __future__ import annotations

import inspect

import torch
from torch import nn

from csmvanet.audio.stft import STFTConfig, analyse, compress, decompress, synthesise
from csmvanet.base.errors import ConfigError
from csmvanet.nets.causal import analyse_frames, frames_of, level_alpha, overlap_add, running_level, synthesise_frames
from csmvanet.nets.conformer import TFConformer
from csmvanet.nets.msgc import DecoderBlock, EncoderBlock, conv_norm_act
from csmvanet.nets.vad_decoder import VADDecoder


def _halved(bins: int, times: int) -> list[int]:
    """Frequency sizes after each stride-2 conv with kernel 3 and padding 1: ceil(F/2)."""
    out = []
    for _ in range(times):
        bins = (bins + 1) // 2
        out.append(bins)
    return out


def _count(key: str, v, least: int = 1) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < least:
        raise ConfigError(f"model.{key}: {v!r} must be {'a positive' if least == 1 else 'a non-negative'} integer")


def _fraction(key: str, v, hi_open: bool = False) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"model.{key}: {v!r} is not a number")
    if not (0 <= v < 1 if hi_open else 0 <= v <= 1):      # NaN fails too
        raise ConfigError(f"model.{key}: {v!r} is outside [0, 1{')' if hi_open else ']'}")


def check_options(o: dict) -> None:
    """:class:`ConfigError` naming the first ``model.<key>`` of ``o`` (every constructor value of
    :class:`CSMVANet`) that the network cannot be built with, or would train with a meaningless value
    (``vad_floor`` 2)."""
    channels, kernel_size = o["channels"], o["kernel_size"]
    if (not isinstance(channels, (list, tuple)) or not channels
            or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in channels)):
        raise ConfigError(f"model.channels: {channels!r} must be a non-empty list of positive integers")
    for key in ("heads", "ff_mult", "conv_kernel", "conv_expansion", "vad_kernel", "rel_pos_max"):
        _count(key, o[key])
    _count("num_conformers", o["num_conformers"], least=0)
    if o["rel_pos_clamp"] is not None:
        _count("rel_pos_clamp", o["rel_pos_clamp"])
    if (not isinstance(kernel_size, (list, tuple)) or len(kernel_size) != 2
            or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in kernel_size)):
        raise ConfigError(f"model.kernel_size: {kernel_size!r} must be two positive integers (time, frequency)")
    _fraction("dropout", o["dropout"], hi_open=True)
    _fraction("vad_floor", o["vad_floor"])
    for key in ("msgc", "vad_decoder", "normalize_input", "causal"):
        if not isinstance(o[key], bool):
            raise ConfigError(f"model.{key}: {o[key]!r} must be true or false")
    _count("left_context", o["left_context"])
    lv = o["level_seconds"]
    if isinstance(lv, bool) or not isinstance(lv, (int, float)) or not lv > 0 or lv == float("inf"):
        raise ConfigError(f"model.level_seconds: {lv!r} must be a positive number of seconds")


class CSMVANet(nn.Module):
    """The network; every constructor value is checked first (:func:`check_options`)."""

    @classmethod
    def check_config(cls, options: dict) -> None:
        """Check ``model`` section ``options`` (its keys valid) as the constructor would, without
        building anything: the defaults of the constructor for the keys not given."""
        params = inspect.signature(cls.__init__).parameters.values()
        check_options({**{p.name: p.default for p in params if p.default is not p.empty}, **options})

    def __init__(self, stft_cfg: STFTConfig, channels=(24, 48, 96, 192), num_conformers: int = 4,
                 heads: int = 4, ff_mult: int = 4, conv_kernel: int = 31, conv_expansion: int = 2,
                 dropout: float = 0.2, kernel_size=(3, 3), msgc: bool = True, vad_decoder: bool = True,
                 vad_kernel: int = 3, vad_floor: float = 0.0, normalize_input: bool = True,
                 rel_pos_max: int = 512, rel_pos_clamp: int | None = None, causal: bool = False,
                 left_context: int = 100, level_seconds: float = 1.0):
        check_options(locals())
        super().__init__()
        # causal: the variant for live audio (csmvanet.nets.causal); left_context (frames) and
        # level_seconds only matter then
        self.causal = causal
        self.left_context = left_context
        self.level_alpha = level_alpha(stft_cfg, level_seconds)
        self.grad_checkpoint = False      # set_grad_checkpointing (train.grad_checkpoint), not a model option
        channels = list(channels)
        self.stft_cfg = stft_cfg
        self.normalize_input = normalize_input
        self.vad_floor = float(vad_floor)
        kernel_size = tuple(kernel_size)
        bins = stft_cfg.n_bins
        self.bins = [bins] + _halved(bins, len(channels))       # F at input and after each encoder
        c0 = channels[0]
        enc_in = [c0] + channels[:-1]
        self.input_conv = conv_norm_act(3, c0, causal=causal)
        self.encoder = nn.ModuleList(EncoderBlock(ci, co, kernel_size, msgc, causal=causal)
                                     for ci, co in zip(enc_in, channels))
        self.bottleneck = nn.Sequential(*[
            TFConformer(channels[-1], heads=heads, ff_mult=ff_mult, conv_kernel=conv_kernel,
                        conv_expansion=conv_expansion, dropout=dropout, max_pos=rel_pos_max,
                        pos_clamp=rel_pos_clamp, left_context=left_context if causal else None)
            for _ in range(num_conformers)])
        self.decoder = nn.ModuleList(DecoderBlock(co, ci, kernel_size, msgc, causal=causal)
                                     for ci, co in reversed(list(zip(enc_in, channels))))
        self.output_conv = nn.Sequential(conv_norm_act(c0, c0, causal=causal), nn.Conv2d(c0, 2, 1))
        self.vad = (VADDecoder(channels + [channels[-1]], self.bins[1:] + [self.bins[-1]], vad_kernel,
                               causal=causal) if vad_decoder else None)
        # channels-last feature maps: the (dilated) depthwise convs of MSGC run 1.3-3x faster on CPU
        # (oneDNN), and it is the layout GPUs prefer under mixed precision.
        self.to(memory_format=torch.channels_last)

    @staticmethod
    def check_input(noisy: torch.Tensor, min_samples: int) -> None:
        if not torch.is_tensor(noisy):
            raise ValueError(f"expected a torch.Tensor waveform batch [B, N], got {type(noisy).__name__}")
        if noisy.dim() != 2:
            raise ValueError(f"expected a waveform batch of shape [B, N], got {noisy.dim()} dimension(s) "
                             f"{tuple(noisy.shape)}")
        if noisy.shape[1] < min_samples:
            raise ValueError(f"input has {noisy.shape[1]} samples; at least one frame ({min_samples} samples) "
                             "is needed")
        if not noisy.is_floating_point():
            raise ValueError(f"expected a floating-point waveform, got {noisy.dtype}")
        if not bool(torch.isfinite(noisy).all()):
            raise ValueError("input contains NaN or Inf samples")

    def set_grad_checkpointing(self, enabled: bool = True) -> "CSMVANet":
        """Activation checkpointing of the bottleneck's TF-Conformer blocks while training.

        Each block's activations are dropped after the forward pass and recomputed during backward
        (``torch.utils.checkpoint``, non-reentrant, RNG state preserved so dropout draws the same
        masks): less memory for about one more forward of the bottleneck per step. The recomputation
        leaves the BatchNorm running statistics alone, so weights and buffers after a step are those
        of a run without checkpointing. Ignored in eval mode and under ``torch.no_grad``.
        """
        self.grad_checkpoint = bool(enabled)
        return self

    def _bottleneck(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.grad_checkpoint and self.training and torch.is_grad_enabled()):
            return self.bottleneck(x)
        from torch.utils.checkpoint import checkpoint

        for block in self.bottleneck:
            x = checkpoint(_once_tracking_stats(block), x, use_reentrant=False, preserve_rng_state=True)
        return x

    def analysis(self, noisy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveforms [B, N] -> (network input [B, 3, T, F] in fp32, level scale [B]; for a causal
        model the running level of every frame [B, T] instead, which :meth:`synthesis` takes back)."""
        self.check_input(noisy, self.stft_cfg.win_length)
        noisy = noisy.float()
        if self.causal:         # per-frame running level [B, T] (csmvanet.nets.causal)
            frames = frames_of(noisy, self.stft_cfg)
            levels = self.frame_levels(frames.pow(2).mean(dim=-1), noisy.new_zeros(noisy.shape[0]), 0)[0]
            return analyse_frames(frames, levels, self.stft_cfg), levels
        if self.normalize_input:
            rms = noisy.pow(2).mean(dim=1).sqrt()
            scale = 1.0 / rms.clamp_min(1e-5)
        else:
            scale = torch.ones(noisy.shape[0], device=noisy.device)
        spec = analyse(noisy * scale[:, None], self.stft_cfg)               # b f t, compressed, fp32
        feats = torch.stack([spec.abs(), spec.real, spec.imag], dim=1)    # b 3 f t
        return feats.transpose(2, 3), scale                               # b 3 t f

    def frame_levels(self, power: torch.Tensor, ema: torch.Tensor, count: int):
        """Causal model: (levels [B, n], new average) of frames with mean squares ``power`` [B, n]
        after ``count`` frames of average ``ema`` [B] (ones with ``normalize_input: false``)."""
        if not self.normalize_input:
            return torch.ones_like(power), ema
        return running_level(power, ema, count, self.level_alpha)

    def network(self, feats: torch.Tensor, state: dict | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Input conv to output conv and the VAD head: [B, 3, T, F] -> (real/imag [B, 2, T, F],
        VAD logits [B, T] or None). What ``csmvanet.experiment.onnx_export`` writes to ONNX.
        ``state`` (causal model only): the past of earlier calls, updated in place."""
        if self.causal:
            return self._causal_network(feats, state)
        x = self.input_conv(feats)                                        # b c t f
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        x = self._bottleneck(x)
        vad_logits = self.vad(skips + [x]) if self.vad is not None else None
        for block, skip, out_bins in zip(self.decoder, reversed(skips), reversed(self.bins[:-1])):
            x = block(x, skip, out_bins)
        return self.output_conv(x), vad_logits

    def _causal_network(self, feats, state):
        x = self.input_conv(feats)                                        # 1x1 convs: frame by frame
        skips = []
        for i, block in enumerate(self.encoder):
            x = block(x, state, f"enc{i}.")
            skips.append(x)
        if state is None:
            x = self._bottleneck(x)
        else:
            for i, block in enumerate(self.bottleneck):
                x = block(x, state, f"tf{i}.")
        vad_logits = self.vad(skips + [x], state, "vad.") if self.vad is not None else None
        for i, (block, skip, out_bins) in enumerate(zip(self.decoder, reversed(skips), reversed(self.bins[:-1]))):
            x = block(x, skip, out_bins, state, f"dec{i}.")
        if state is not None:
            state["t0"] = state.get("t0", 0) + feats.shape[2]
        return self.output_conv(x), vad_logits

    def synthesis(self, ri: torch.Tensor, vad_logits: torch.Tensor | None, scale: torch.Tensor,
                  num_samples: int) -> dict:
        """Network outputs -> stage-2 spectrum, waveform of ``num_samples`` at the input's level."""
        ri = ri.float()
        spec1 = torch.complex(ri[:, 0], ri[:, 1]).transpose(1, 2)         # b f t
        if vad_logits is not None:
            vad_logits = vad_logits.float()
            vad = torch.sigmoid(vad_logits)
            gain = self.vad_floor + (1.0 - self.vad_floor) * vad
            spec_out = spec1 * gain[:, None, :]
        else:
            vad, spec_out = None, spec1
        if scale.dim() == 2:        # causal: the frames' running levels [B, T]
            cfg = self.stft_cfg
            lin = decompress(spec_out, cfg) * scale[:, None, :]
            wave = overlap_add(synthesise_frames(spec_out, scale, cfg), cfg, num_samples)
            # for the loss: one scale per item, and the spectrum at that level (csmvanet.nets.loss)
            scale = 1.0 / scale.mean(dim=1)
            spec_out = compress(lin * scale[:, None, None], cfg)
        else:
            wave = synthesise(spec_out, self.stft_cfg, num_samples) / scale[:, None]
        return {"wave": wave, "spec": spec_out, "spec1": spec1, "vad": vad, "vad_logits": vad_logits,
                "scale": scale}

    def forward(self, noisy: torch.Tensor) -> dict:
        feats, scale = self.analysis(noisy)
        ri, vad_logits = self.network(feats)
        return self.synthesis(ri, vad_logits, scale, noisy.shape[1])


class _once_tracking_stats:
    """``block(x)`` for torch.utils.checkpoint: the first call (the forward pass) updates the
    BatchNorm running statistics as usual; later calls (the recomputation in backward) leave them
    as they are (momentum 0, batch counter restored), so checkpointing does not count a batch twice."""

    def __init__(self, block: nn.Module):
        self.block, self.calls = block, 0

    def __call__(self, x):
        self.calls += 1
        if self.calls == 1:
            return self.block(x)
        norms = [m for m in self.block.modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        saved = [(m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone())
                 for m in norms]
        for m in norms:
            m.momentum = 0.0
        try:
            return self.block(x)
        finally:
            for m, (momentum, count) in zip(norms, saved):
                m.momentum = momentum
                if count is not None:
                    m.num_batches_tracked.copy_(count)
