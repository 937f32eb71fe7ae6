"""The VAD decoder: frame-level speech probability from the encoder outputs and the bottleneck.

For each input map [B, C_i, T, F_i] a 1x1 conv maps channels to 1 and a linear layer maps the F_i
frequency bins to 1, giving [B, 1, T]; the maps are concatenated along channels and a Conv1d
(kernel 3, padding 1) maps them to one channel of logits [B, T]. The sigmoid is applied by the caller
(the loss uses the logits, numerically stable BCE). ``causal``: the Conv1d is padded on the past
only (:func:`csmvanet.nets.causal.time_conv`), so frame ``t``'s logit needs no later frame.
"""
from __future__ import annotations

import torch
from torch import nn

from csmvanet.nets.causal import time_conv


class VADDecoder(nn.Module):
    def __init__(self, channels: list[int], bins: list[int], kernel_size: int = 3, causal: bool = False):
        super().__init__()
        self.causal = causal
        if len(channels) != len(bins):
            raise ValueError("VADDecoder: one channel count per frequency size expected")
        self.convs = nn.ModuleList(nn.Conv2d(c, 1, 1) for c in channels)
        self.linears = nn.ModuleList(nn.Linear(f, 1) for f in bins)
        self.out = nn.Conv1d(len(channels), 1, kernel_size, padding=0 if causal else kernel_size // 2)

    def forward(self, maps: list[torch.Tensor], state=None, key="") -> torch.Tensor:
        frames = [lin(conv(m)).squeeze(-1) for m, conv, lin in zip(maps, self.convs, self.linears)]  # b 1 t
        if self.causal:
            return time_conv(self.out, torch.cat(frames, dim=1), self.out.kernel_size[0] - 1, state,
                             key + "out").squeeze(1)
        return self.out(torch.cat(frames, dim=1)).squeeze(1)                                        # b t
