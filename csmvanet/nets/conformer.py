"""Conformer blocks (Gulati et al. 2020) in the configuration CMGAN uses, and the TF-Conformer.

A block is: half-step feed-forward -> multi-head self-attention with Shaw-style relative position
embeddings -> convolution module -> half-step feed-forward -> LayerNorm. Defaults follow CMGAN:
4 heads of width d/4, feed-forward expansion 4, conv expansion 2 with GLU, depthwise kernel 31,
BatchNorm, Swish (SiLU), dropout 0.2, relative distances clipped at 512.

``causal=True`` (the time Conformer of ``model.causal``, :mod:`csmvanet.nets.causal`): frame ``t``
attends to frames ``t - left_context .. t`` only, and the depthwise convolution is padded on the past
only. With a streaming ``state`` dict the keys and values of the last ``left_context`` frames and the
convolution's last ``kernel - 1`` inputs are kept there (``state["t0"]``: frames before this call).
"""
from __future__ import annotations

import torch
from torch import nn

from csmvanet.nets.causal import time_conv


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, dim * mult), nn.SiLU(), nn.Dropout(dropout),
            nn.Linear(dim * mult, dim), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class RelPosSelfAttention(nn.Module):
    """Multi-head self-attention with learned relative position embeddings added to the logits."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float, max_pos: int = 512,
                 clamp: int | None = None, left_context: int | None = None):
        super().__init__()
        self.left_context = left_context     # causal: frames of the past attended to (None: all, both ways)
        inner = heads * dim_head
        self.heads, self.dim_head, self.max_pos = heads, dim_head, max_pos
        # Distances are clipped at ``clamp`` (<= max_pos). Set it to the largest distance seen in
        # training (frames of a training segment - 1): longer inputs then re-use the embedding of the
        # largest trained distance instead of rows that training never updated.
        self.clamp = min(clamp, max_pos) if clamp else max_pos
        self.scale = dim_head ** -0.5
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim)
        self.rel_pos = nn.Embedding(2 * max_pos + 1, dim_head)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, state=None, key=""):
        if self.left_context is not None:
            return self._causal(x, state, key)
        if not self.training:
            return self._inference(x)
        b, n, _ = x.shape
        q, k, v = self._qkv(x)
        logits = torch.matmul(q, k.transpose(-1, -2))                   # b h n n
        rel = self._rel_table(n, q.dtype)                               # n n d
        logits = (logits + torch.einsum("bhnd,nrd->bhnr", q, rel)) * self.scale
        attn = self.drop(logits.softmax(dim=-1))
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, n, self.heads * self.dim_head)
        return self.drop(self.to_out(out))

    def _qkv(self, x):
        """Queries, keys and values ``b h n d`` of the normalised input."""
        b, n, _ = x.shape
        h, dh = self.heads, self.dim_head
        x = self.norm(x)
        q = self.to_q(x).view(b, n, h, dh).transpose(1, 2)
        k, v = self.to_kv(x).view(b, n, 2, h, dh).permute(2, 0, 3, 1, 4)
        return q, k, v

    def _rel_table(self, n: int, dtype) -> torch.Tensor:
        """The ``n n d`` relative-position embeddings; under inference_mode kept for the next call of
        the same length (every chunk of a file), keyed on the table's version so new weights count."""
        weight = self.rel_pos.weight
        key = (n, dtype, weight.device, weight._version)
        cached = getattr(self, "_rel_cache", None)
        if cached is not None and cached[0] == key and torch.is_inference_mode_enabled():
            return cached[1]
        pos = torch.arange(n, device=weight.device)
        dist = (pos[:, None] - pos[None, :]).clamp(-self.clamp, self.clamp) + self.max_pos
        rel = self.rel_pos(dist).to(dtype)
        self._rel_cache = (key, rel) if torch.is_inference_mode_enabled() else None
        return rel

    def _inference(self, x):
        """The same function in eval mode with fewer passes over the ``b h n n`` logits: the scale is
        applied to ``q`` once, and the relative-position term goes to
        ``F.scaled_dot_product_attention`` as an additive mask, which fuses the product with the keys,
        the softmax and the product with the values."""
        import torch.nn.functional as F

        b, n, _ = x.shape
        q, k, v = self._qkv(x)
        bias = torch.einsum("bhnd,nrd->bhnr", q * self.scale, self._rel_table(n, q.dtype))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        return self.to_out(out.transpose(1, 2).reshape(b, n, self.heads * self.dim_head))


    def _causal(self, x, state, key):
        """Attention to the last ``left_context`` frames and the frame itself. The keys and values
        before ``x`` (zeros when ``state`` is None: masked out) and their count ``state["t0"]``
        come from ``state``; the last ``left_context`` are written back."""
        import torch.nn.functional as F

        b, n, _ = x.shape
        ctx = self.left_context
        q, k, v = self._qkv(x)
        prev = None if state is None else state.get(key + "kv")
        if prev is None:
            prev = k.new_zeros(2, b, self.heads, ctx, self.dim_head)
        t0 = 0 if state is None else state.get("t0", 0)
        keys = torch.cat([prev[0], k], dim=2)                           # b h (ctx + n) d
        values = torch.cat([prev[1], v], dim=2)
        if state is not None:
            state[key + "kv"] = torch.stack([keys[:, :, n:], values[:, :, n:]])
        pos_q = torch.arange(n, device=x.device)[:, None] + ctx          # positions relative to t0 - ctx
        pos_k = torch.arange(ctx + n, device=x.device)[None, :]
        dist = pos_q - pos_k                                            # n (ctx + n)
        allowed = (dist >= 0) & (dist <= ctx) & (pos_k + t0 >= ctx)     # past only, within reach, seen
        rel = self.rel_pos(dist.clamp(-self.clamp, self.clamp) + self.max_pos).to(q.dtype)
        bias = torch.einsum("bhnd,nrd->bhnr", q * self.scale, rel)
        bias = bias.masked_fill(~allowed, float("-inf"))
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=bias, scale=self.scale,
                                             dropout_p=self.drop.p if self.training else 0.0)
        return self.drop(self.to_out(out.transpose(1, 2).reshape(b, n, self.heads * self.dim_head)))


class ConvModule(nn.Module):
    def __init__(self, dim: int, expansion: int, kernel_size: int, dropout: float, causal: bool = False):
        super().__init__()
        inner = dim * expansion
        self.causal = causal
        self.norm = nn.LayerNorm(dim)
        self.pw1 = nn.Conv1d(dim, 2 * inner, 1)
        self.glu = nn.GLU(dim=1)
        self.dw = nn.Conv1d(inner, inner, kernel_size, padding=0 if causal else kernel_size // 2, groups=inner)
        self.bn = nn.BatchNorm1d(inner)
        self.act = nn.SiLU()
        self.pw2 = nn.Conv1d(inner, dim, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, state=None, key=""):               # x: b n c
        if self.causal:
            y = self.glu(self.pw1(self.norm(x).transpose(1, 2)))
            y = self.act(self.bn(time_conv(self.dw, y, self.dw.kernel_size[0] - 1, state, key + "dw")))
            return self.drop(self.pw2(y)).transpose(1, 2)
        if not self.training:
            return self._inference(x)
        y = self.norm(x).transpose(1, 2)
        y = self.act(self.bn(self.dw(self.glu(self.pw1(y)))))
        return self.drop(self.pw2(y)).transpose(1, 2)

    def _inference(self, x):
        """The same function in eval mode, faster on CPU (2.8x for this module, paper config): the
        1x1 convolutions as linear layers on ``b n c`` (no transposes), BatchNorm folded into the
        depthwise convolution, which runs as a 2-D convolution on channels-last data (oneDNN
        vectorises a depthwise kernel over channels; over time, as Conv1d on ``b c n`` runs it, it is
        about 15x slower). Equal to the training-mode graph in eval to float rounding (1e-6)."""
        import torch.nn.functional as F

        y = F.glu(F.linear(self.norm(x), self.pw1.weight.squeeze(-1), self.pw1.bias), dim=-1)   # b n i
        scale = self.bn.weight * torch.rsqrt(self.bn.running_var + self.bn.eps)
        weight = (self.dw.weight * scale[:, None, None]).unsqueeze(2)                            # i 1 1 k
        bias = (self.dw.bias - self.bn.running_mean) * scale + self.bn.bias
        y = F.conv2d(y.transpose(1, 2).unsqueeze(2), weight, bias, padding=(0, self.dw.padding[0]),
                     groups=self.dw.groups)                                                       # b i 1 n
        y = self.act(y.squeeze(2).transpose(1, 2))
        return F.linear(y, self.pw2.weight.squeeze(-1), self.pw2.bias)


class ConformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int = 4, dim_head: int | None = None, ff_mult: int = 4,
                 conv_expansion: int = 2, conv_kernel: int = 31, dropout: float = 0.2,
                 max_pos: int = 512, pos_clamp: int | None = None, left_context: int | None = None):
        super().__init__()
        dim_head = dim_head or dim // heads
        causal = left_context is not None
        self.ff1 = FeedForward(dim, ff_mult, dropout)
        self.attn = RelPosSelfAttention(dim, heads, dim_head, dropout, max_pos, pos_clamp, left_context)
        self.conv = ConvModule(dim, conv_expansion, conv_kernel, dropout, causal=causal)
        self.ff2 = FeedForward(dim, ff_mult, dropout)
        self.post_norm = nn.LayerNorm(dim)

    def forward(self, x, state=None, key=""):               # x: b n c
        x = x + 0.5 * self.ff1(x)
        if state is None:
            x = x + self.attn(x)
            x = x + self.conv(x)
        else:
            x = x + self.attn(x, state, key + "attn.")
            x = x + self.conv(x, state, key + "conv.")
        x = x + 0.5 * self.ff2(x)
        return self.post_norm(x)


class TFConformer(nn.Module):
    """A time Conformer over (B*F, T, C), residual add, then a frequency Conformer over (B*T, F, C).
    ``left_context`` (causal): the time Conformer's reach into the past; the frequency one is as ever."""

    def __init__(self, dim: int, left_context: int | None = None, **kw):
        super().__init__()
        self.time = ConformerBlock(dim, left_context=left_context, **kw)
        self.freq = ConformerBlock(dim, **kw)

    def forward(self, x, state=None, key=""):               # x: b c t f
        b, c, t, f = x.shape
        y = x.permute(0, 3, 2, 1).reshape(b * f, t, c)
        y = (self.time(y) if state is None else self.time(y, state, key + "time.")) + y
        y = y.view(b, f, t, c).permute(0, 2, 1, 3).reshape(b * t, f, c)
        y = self.freq(y) + y
        return y.view(b, t, f, c).permute(0, 3, 1, 2).contiguous()
