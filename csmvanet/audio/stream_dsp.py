"""Torch-free streaming DSP of inference: chunked overlap-add, soft peak limiter, streaming resampler.

:class:`ChunkStitcher` runs a model chunk by chunk over a stream and cross-fades the chunks with
raised-cosine ramps that sum to one (see :mod:`csmvanet.infer.enhancer` for why 8 s segments and 1 s
overlaps); :func:`soft_limit` keeps enhanced audio below full scale without hard clipping;
:class:`StreamResampler` is soxr's ``ResampleStream`` with the VHQ filter of
:func:`csmvanet.audio.io.resample` (sample-identical to it). Only numpy (and soxr when rates differ).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

LIMIT_KNEE = 0.9
LIMIT_CEILING = 0.99


# --------------------------------------------------------------------------------------------------
# peak handling


def soft_limit(x: np.ndarray, knee: float = LIMIT_KNEE, ceiling: float = LIMIT_CEILING) -> np.ndarray:
    """Identity for ``|x| <= knee``; above, a tanh curve rising to ``ceiling`` (never above it)."""
    x = np.asarray(x, dtype=np.float32)
    mag = np.abs(x)
    over = mag > knee
    if not over.any():
        return x
    x = x.copy()
    room = ceiling - knee
    x[over] = np.sign(x[over]) * (knee + room * np.tanh((mag[over] - knee) / room))
    return x


# --------------------------------------------------------------------------------------------------
# chunked overlap-add at the model rate


def _fade_in(rel: np.ndarray, overlap: int) -> np.ndarray:
    """Raised-cosine ramp over ``[0, overlap)`` samples of ``rel`` (0 before, 1 after)."""
    if overlap <= 0:
        return (rel >= 0).astype(np.float64)
    t = np.clip((rel + 0.5) / overlap, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * t)


class ChunkStitcher:
    """Overlap-add of a model run chunk by chunk over a stream of ``[n, C]`` blocks (model rate).

    ``run(x [L, C]) -> (y [L, C], vad [T, C] or None)`` with ``T = L // hop + 1``. :meth:`push` takes
    input blocks and returns the output samples and VAD frames that are final; :meth:`finish` returns
    the rest. Chunks are ``segment`` long and start every ``step = segment - overlap`` samples (on the
    hop grid) while more than ``segment + step`` samples remain. The rest (``segment`` to
    ``segment + step`` samples) is covered by one more full segment and a last one that ends at the
    end of the input and starts on the hop grid, at least ``overlap`` after its predecessor's start
    (so that no three chunks overlap and the cross-fades sum to one): it is within one hop of a full
    segment, or, when the input ends less than ``overlap`` after that full segment, longer than
    ``segment - overlap`` (it overlaps its predecessor by more than ``overlap``; the cross-fade is
    still ``overlap`` long). Every chunk of an input longer than one segment thus has (nearly) the
    full context, and peak memory is that of one segment whatever the length. An input of at most
    one segment is one chunk.
    """

    def __init__(self, run: Callable, segment: int, overlap: int, hop: int, channels: int):
        if segment % hop or overlap % hop:
            raise ValueError(f"segment ({segment}) and overlap ({overlap}) must be multiples of hop ({hop})")
        if not 0 <= 2 * overlap <= segment:
            raise ValueError(f"overlap ({overlap}) must be between 0 and half the segment ({segment})")
        self.run, self.segment, self.overlap, self.hop = run, segment, overlap, hop
        self.step = segment - overlap
        self.channels = channels
        # Buffers allocated once and reused for every chunk (they grow only if a pushed block is
        # larger than they allow): the input from self.start on is self._in[self._off:self._off + self._n];
        # the output and VAD accumulators hold one segment from self.start on.
        self._in = np.zeros((2 * (segment + self.step), channels), np.float32)
        self._off = self._n = 0
        self.start = 0                                  # next chunk start (global sample index)
        self.total = 0                                  # input samples received
        self.first = True
        self.out = np.zeros((segment, channels), np.float64)
        self.vad = np.zeros((segment // hop + 1, channels), np.float64)
        self.has_vad = None
        self._w: dict = {}                              # cross-fade weights by (length, next, last, first)

    @property
    def buf(self) -> np.ndarray:
        """The input not yet consumed (from self.start on): a view into the reused buffer."""
        return self._in[self._off:self._off + self._n]

    def push(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        x = np.asarray(x, np.float32).reshape(len(x), self.channels)
        if self._off + self._n + len(x) > len(self._in):
            if self._n + len(x) > len(self._in):        # a block larger than the buffer allows: grow once
                grown = np.zeros((2 * (self._n + len(x)), self.channels), np.float32)
                grown[:self._n] = self.buf
                self._in = grown
            else:                                       # move the unconsumed input to the front
                self._in[:self._n] = self.buf.copy() if self._off < self._n else self.buf
            self._off = 0
        self._in[self._off + self._n:self._off + self._n + len(x)] = x
        self._n += len(x)
        self.total += len(x)
        waves, vads = [], []
        while self.total - self.start > self.segment + self.step:
            self._chunk(self.segment, self.step, False, waves, vads)
        return self._join(waves, vads)

    def finish(self) -> tuple[np.ndarray, np.ndarray | None]:
        waves, vads = [], []
        while self.total - self.start > self.segment + self.step:
            self._chunk(self.segment, self.step, False, waves, vads)
        rest = self.total - self.start
        if rest > self.segment:      # one more full segment, then the last segment of the input
            late = -(-(rest - self.segment) // self.hop) * self.hop      # on the hop grid, <= step
            self._chunk(self.segment, max(self.overlap, late), False, waves, vads)
        rest = self.total - self.start
        if rest > 0 or self.first:
            self._chunk(rest, rest, True, waves, vads)
        return self._join(waves, vads)

    def _join(self, waves, vads):
        wave = np.concatenate(waves).astype(np.float32) if waves else np.zeros((0, self.channels), np.float32)
        if self.has_vad is False:
            return wave, None
        vad = np.concatenate(vads).astype(np.float32) if vads else np.zeros((0, self.channels), np.float32)
        return wave, vad

    @staticmethod
    def _emit(acc: np.ndarray, done: int, used: int) -> np.ndarray:
        """The first ``done`` rows of ``acc`` (as float32); the rest of the ``used`` rows moves to the front."""
        head = acc[:done].astype(np.float32)
        rest = used - done
        if rest > 0:
            acc[:rest] = acc[done:used].copy() if done < rest else acc[done:used]
        acc[max(rest, 0):used] = 0.0
        return head

    def _chunk(self, length: int, nxt: int, last: bool, waves: list, vads: list) -> None:
        """Run a chunk of ``length`` samples from self.start; the next one starts ``nxt`` later."""
        hop = self.hop
        y, v = self.run(self.buf[:length])
        if self.has_vad is None:
            self.has_vad = v is not None
        w, wf = self._cached_weights(length, nxt, last)
        self.out[:length] += w[:, None] * y
        waves.append(self._emit(self.out, nxt, length))
        if v is not None:
            frames = len(v)
            if frames != length // hop + 1:
                raise RuntimeError(f"model returned {frames} VAD frames for {length} samples")
            self.vad[:frames] += wf[:, None] * v
            vads.append(self._emit(self.vad, frames if last else nxt // hop, frames))
        self._off += nxt
        self._n -= nxt
        self.start += nxt
        self.first = False

    def _cached_weights(self, length: int, nxt: int, last: bool) -> tuple[np.ndarray, np.ndarray]:
        key = (length, nxt, last, self.first)
        if key not in self._w:
            self._w[key] = (self._weights(np.arange(length, dtype=np.float64), nxt, last),
                            self._weights(np.arange(length // self.hop + 1, dtype=np.float64) * self.hop, nxt, last))
        return self._w[key]

    def _weights(self, rel: np.ndarray, nxt: int, last: bool) -> np.ndarray:
        """Cross-fade weights at positions ``rel`` of a chunk whose successor starts at ``nxt``."""
        w = np.ones_like(rel)
        if not self.first:
            w *= _fade_in(rel, self.overlap)
        if not last:
            w *= 1.0 - _fade_in(rel - nxt, self.overlap)
        return w


class StreamResampler:
    """Streaming soxr resampler (VHQ, as :func:`csmvanet.audio.io.resample`); identity when rates match."""

    def __init__(self, sr_in: int, sr_out: int, channels: int):
        self.stream = None
        if sr_in != sr_out:
            import soxr

            self.stream = soxr.ResampleStream(sr_in, sr_out, channels, dtype="float32", quality="VHQ")

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        if self.stream is None:
            return x
        return self.stream.resample_chunk(np.ascontiguousarray(x, dtype=np.float32), last=last)


__all__ = ["ChunkStitcher", "LIMIT_CEILING", "LIMIT_KNEE", "StreamResampler", "soft_limit"]
