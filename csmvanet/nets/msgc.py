"""Multi-scale gated convolution (MSGC) and the encoder/decoder blocks built from it.

MSGC follows MogaNet's multi-order gated aggregation, applied to [B, C, T, F] feature maps:

* gate branch: 1x1 conv + SiLU;
* context branch: a depthwise 5x5 conv (dilation 1) over all channels, whose output is split by
  channel in the ratio 1:3:4; the 3/8 part goes through a depthwise 5x5 conv with dilation 2, the
  4/8 part through a depthwise 7x7 conv with dilation 3, the 1/8 part passes unchanged; the three
  parts are concatenated and mixed by a 1x1 conv, then SiLU;
* output = gate * context, followed by a 1x1 projection and a residual connection.

We chose MogaNet's chained form (the small-scale conv feeds the larger ones) on purpose: it is what
the paper cites for MSGC ([12]) and gives the larger kernels an even larger receptive field at no
cost. ``multi_scale=False`` gives the "w/o MSGC" ablation of Table I: a regular gated convolution in
which the context branch is one depthwise 3x3 conv; everything else is the same.

``causal=True`` (``model.causal``, :mod:`csmvanet.nets.causal`): every convolution is padded on the
past only along time, and InstanceNorm becomes :class:`csmvanet.nets.causal.FrameNorm`; the forward
passes then take an optional streaming ``state`` dict and a ``key`` naming their entries.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from csmvanet.nets.causal import FrameNorm, time_conv


class MSGC(nn.Module):
    def __init__(self, channels: int, multi_scale: bool = True, split=(1, 3, 4),
                 kernels=(5, 5, 7), dilations=(1, 2, 3), causal: bool = False):
        super().__init__()
        self.multi_scale, self.causal = multi_scale, causal
        self.past = []      # causal: frames of the past each depthwise conv needs (dw0, dw1, dw2)
        self.gate = nn.Conv2d(channels, channels, 1)
        if multi_scale:
            total = sum(split)
            if channels % total:
                raise ValueError(f"MSGC: channels ({channels}) must be divisible by {total} (split {split})")
            self.sizes = [channels * s // total for s in split]
            k0, k1, k2 = kernels
            d0, d1, d2 = dilations
            tp = (lambda k, d: 0) if causal else (lambda k, d: d * (k // 2))   # time padding
            self.dw0 = nn.Conv2d(channels, channels, k0, padding=(tp(k0, d0), d0 * (k0 // 2)), dilation=d0,
                                 groups=channels)
            self.dw1 = nn.Conv2d(self.sizes[1], self.sizes[1], k1, padding=(tp(k1, d1), d1 * (k1 // 2)),
                                 dilation=d1, groups=self.sizes[1])
            self.dw2 = nn.Conv2d(self.sizes[2], self.sizes[2], k2, padding=(tp(k2, d2), d2 * (k2 // 2)),
                                 dilation=d2, groups=self.sizes[2])
            self.past = [d * (k - 1) for k, d in zip(kernels, dilations)]
        else:
            self.dw0 = nn.Conv2d(channels, channels, 3, padding=(0 if causal else 1, 1), groups=channels)
            self.past = [2]
        self.mix = nn.Conv2d(channels, channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        self.act = nn.SiLU()

    def context(self, x, state=None, key=""):
        if self.causal:
            return self._causal_context(x, state, key)
        y = self.dw0(x)
        if self.multi_scale:
            y0, y1, y2 = torch.split(y, self.sizes, dim=1)
            y = torch.cat([y0, self.dw1(y1), self.dw2(y2)], dim=1)
        return self.act(self.mix(y))

    def _causal_context(self, x, state, key):
        y = time_conv(self.dw0, x, self.past[0], state, key + "dw0")
        if self.multi_scale:
            y0, y1, y2 = torch.split(y, self.sizes, dim=1)
            y = torch.cat([y0, time_conv(self.dw1, y1, self.past[1], state, key + "dw1"),
                           time_conv(self.dw2, y2, self.past[2], state, key + "dw2")], dim=1)
        return self.act(self.mix(y))

    def forward(self, x, state=None, key=""):
        if self.causal:
            return x + self.proj(self.act(self.gate(x)) * self.context(x, state, key))
        return x + self.proj(self.act(self.gate(x)) * self.context(x))


def conv_norm_act(cin: int, cout: int, kernel=(1, 1), stride=(1, 1), padding=(0, 0),
                  causal: bool = False) -> nn.Sequential:
    """Conv2d + InstanceNorm (affine) + PReLU: the input/output conv and the resampling layers.
    ``causal``: no time padding (the caller pads the past, :func:`csmvanet.nets.causal.time_conv`),
    FrameNorm for InstanceNorm."""
    if causal:
        return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (0, padding[1])), FrameNorm(cout), nn.PReLU(cout))
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding),
                         nn.InstanceNorm2d(cout, affine=True), nn.PReLU(cout))


def causal_conv_norm_act(seq: nn.Sequential, x, state=None, key=""):
    """A causal :func:`conv_norm_act` over ``x`` with the past of ``state`` (or zeros)."""
    conv = seq[0]
    x = time_conv(conv, x, conv.kernel_size[0] - 1, state, key + "conv")
    return seq[2](seq[1](x))


class EncoderBlock(nn.Module):
    """MSGC, then a (3,3) conv with stride (1,2) halving the frequency axis."""

    def __init__(self, cin: int, cout: int, kernel=(3, 3), multi_scale: bool = True, causal: bool = False):
        super().__init__()
        self.causal = causal
        self.msgc = MSGC(cin, multi_scale, causal=causal)
        self.down = conv_norm_act(cin, cout, kernel, (1, 2), (kernel[0] // 2, kernel[1] // 2), causal=causal)

    def forward(self, x, state=None, key=""):
        if self.causal:
            return causal_conv_norm_act(self.down, self.msgc(x, state, key + "msgc."), state, key + "down.")
        return self.down(self.msgc(x))


class DecoderBlock(nn.Module):
    """Skip connection (added), MSGC, then a transposed (3,3) conv with stride (1,2) doubling frequency.

    The transposed conv gives 2F-1 bins; the output is padded or cropped to the encoder's size at that
    level (``out_bins``), so every odd/even bin count comes back exactly.
    """

    def __init__(self, cin: int, cout: int, kernel=(3, 3), multi_scale: bool = True, causal: bool = False):
        super().__init__()
        self.causal = causal
        self.msgc = MSGC(cin, multi_scale, causal=causal)
        self.up = nn.ConvTranspose2d(cin, cout, kernel, (1, 2), (0 if causal else kernel[0] // 2, kernel[1] // 2))
        self.norm = FrameNorm(cout) if causal else nn.InstanceNorm2d(cout, affine=True)
        self.act = nn.PReLU(cout)

    def forward(self, x, skip, out_bins: int, state=None, key=""):
        if self.causal:
            # without time padding the transposed conv's output frame j + past sees input frames
            # j, j-1, ..., j-past of what it was given: frames t..t-past after the past frames
            past = self.up.kernel_size[0] - 1
            n = x.shape[2]
            y = time_conv(self.up, self.msgc(x + skip, state, key + "msgc."), past, state, key + "up")
            y = y[:, :, past:past + n]
        else:
            y = self.up(self.msgc(x + skip))
        diff = out_bins - y.shape[-1]
        if diff > 0:
            y = F.pad(y, (0, diff))
        elif diff < 0:
            y = y[..., :out_bins]
        return self.act(self.norm(y))
