"""Live enhancement with a causal CSM-VANet (``model.causal: true``): any number of samples in, the
enhanced samples that are final and the VAD of the frames completed out.

Python API::

    enh = Enhancer.from_pretrained("exp/x_causal")
    stream = enh.stream()                    # model rate (16 kHz), one channel; channels=C for [n, C]
    for chunk in microphone():               # float samples, any length (1 sample, 10 ms, ...)
        clean, vad = stream.process(chunk)   # clean: the samples final so far; vad: one per frame done
        ...
    clean, vad = stream.flush()              # the rest: as many samples out as went in

Nothing is recomputed from the start: the state is a few tensors, bounded whatever the length:
the input not yet framed (less than one window), the running level (an average and a frame count),
each causal convolution's last ``k - 1`` inputs, the time attention's keys and values of the last
``model.left_context`` frames, and the overlap-add sums of the frames not yet final (one window).
The output of any chunking equals the causal model run on the whole signal (``model(x)["wave"]``,
float rounding apart; test/test_streaming.py).

Latency: frame ``t`` covers samples ``[t*hop - n_fft/2, t*hop + n_fft/2)``; it is computed when its
last sample arrives, and an output sample is final once the last frame covering it is computed:
each output sample is given out between ``n_fft - hop`` and ``n_fft - 1`` samples after the input
sample of the same time arrived (300-399 samples, 18.8-24.9 ms at 16 kHz: the algorithmic latency of
one 25 ms window), plus the wait for the chunk to fill and the compute time.

Settings: ``vad_floor`` (the model's) and ``input_mix`` (the input sample of the same time) apply per
sample, so they keep the stream exact. The per-chunk ``snr_limit`` and the quiet-input bound of
offline inference (:mod:`csmvanet.infer.output_level`) need a whole chunk and are not applied.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from csmvanet.nets.causal import analyse_frames, frame_window, synthesise_frames


#: Frames through the network in one call at most (a long chunk is split: bounded memory).
MAX_FRAMES = 256


class CausalStream:
    """The streaming state machine of one causal model over ``channels`` channels (a batch)."""

    def __init__(self, model, channels: int = 1, *, input_mix: float = 0.0, step=None):
        """``step``: what runs the network on new frames, ``step(feats) -> (ri, vad_logits)`` keeping
        its own state (:class:`OnnxStep`); default ``model.network`` with :attr:`state`."""
        if not getattr(model, "causal", False):
            raise ValueError("streaming needs a causal model (model.causal: true); this one looks at "
                             "whole segments")
        self.model = model.eval()
        self.cfg = cfg = model.stft_cfg
        self.channels = int(channels)
        self.input_mix = float(input_mix)
        self.n_fft, self.hop, self.half = cfg.n_fft, cfg.hop_length, cfg.n_fft // 2
        dev = next(model.parameters()).device
        self.device = dev
        self.win2 = frame_window(cfg, dev).pow(2)
        self.buf = torch.zeros(self.channels, self.half, device=dev)      # padded input not yet framed
        self.state: dict = {}                                             # the network's past
        self.step = step or (lambda feats: model.network(feats, self.state))
        self.ema = torch.zeros(self.channels, device=dev)                 # running level
        self.frames = 0                                                   # frames computed
        self.ola = torch.zeros(self.channels, self.n_fft, device=dev)     # from padded position frames*hop
        self.env = torch.zeros(self.n_fft, device=dev)
        self.n_in = 0                   # input samples received
        self.n_out = 0                  # output samples given out
        self.pending = np.zeros((0, self.channels), np.float32)          # input samples not yet given out
        self.done = False

    # ---- public
    def process(self, chunk) -> tuple[np.ndarray, np.ndarray | None]:
        """Take ``[n]`` (one channel) or ``[n, C]`` float samples; return (enhanced samples final so
        far, ``[m]`` or ``[m, C]``; VAD probabilities of the frames completed, ``[k]`` or ``[k, C]``,
        None for a model without VAD decoder)."""
        if self.done:
            raise RuntimeError("the stream was flushed; start a new one")
        x = np.asarray(chunk, dtype=np.float32)
        mono = x.ndim == 1
        x2 = x[:, None] if mono else x
        if x2.ndim != 2 or x2.shape[1] != self.channels:
            raise ValueError(f"expected [n] or [n, {self.channels}] samples, got shape {x.shape}")
        if not np.isfinite(x2).all():
            raise ValueError("input contains NaN or Inf samples")
        self.n_in += len(x2)
        if self.input_mix:
            self.pending = np.concatenate([self.pending, x2])
        self.buf = torch.cat([self.buf, torch.from_numpy(np.ascontiguousarray(x2.T)).to(self.device)], dim=1)
        y, v = self._all_frames()
        return self._shape(y, v, mono)

    def flush(self, mono: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """The end of the input: the last frames (zero-padded as the whole-file model pads) and the
        rest of the output, so that exactly as many samples came out as went in."""
        if self.done:
            raise RuntimeError("the stream was flushed already")
        self.done = True
        self.buf = F.pad(self.buf, (0, self.half))
        y, v = self._all_frames()
        start = self.frames * self.hop                  # padded position of ola[0]
        skip, end = max(0, self.half - start), max(0, self.half + self.n_in - start)
        tail = (self.ola[:, skip:end] / self.env[skip:end].clamp_min(1e-11)).T.cpu().numpy()
        y = np.concatenate([y, self._mixed(tail)]) if len(tail) else y
        return self._shape(y, v, mono and self.channels == 1)

    # ---- inside
    def _shape(self, y, v, mono):
        if mono and self.channels == 1:
            return y[:, 0], None if v is None else v[:, 0]
        return y, v

    def _mixed(self, y: np.ndarray) -> np.ndarray:
        """``y`` (the next output samples, final) with the input mix, counted out."""
        y = y[: max(0, self.n_in - self.n_out)]
        if self.input_mix:
            x, self.pending = self.pending[: len(y)], self.pending[len(y):]
            y = (1.0 - self.input_mix) * y + self.input_mix * x
        self.n_out += len(y)
        return np.ascontiguousarray(y, dtype=np.float32)

    def _all_frames(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Every complete frame of the buffer, at most :data:`MAX_FRAMES` through the network at a
        time (the time attention's memory grows with the frames of one call)."""
        parts = [self._run_frames()]
        while self.buf.shape[1] >= self.n_fft:
            parts.append(self._run_frames())
        if len(parts) == 1:
            return parts[0]
        vads = [v for _, v in parts]
        return (np.concatenate([y for y, _ in parts]),
                None if vads[0] is None else np.concatenate(vads))

    @torch.inference_mode()
    def _run_frames(self) -> tuple[np.ndarray, np.ndarray | None]:
        n_fft, hop, c = self.n_fft, self.hop, self.channels
        k = min(MAX_FRAMES, (self.buf.shape[1] - n_fft) // hop + 1) if self.buf.shape[1] >= n_fft else 0
        if k <= 0:
            return np.zeros((0, c), np.float32), (None if self.model.vad is None else np.zeros((0, c), np.float32))
        frames = self.buf.unfold(1, n_fft, hop)[:, :k]                     # c k n_fft
        self.buf = self.buf[:, k * hop:]
        model, cfg = self.model, self.cfg
        levels, self.ema = model.frame_levels(frames.pow(2).mean(dim=-1), self.ema, self.frames)
        ri, logits = self.step(analyse_frames(frames, levels, cfg))
        spec = torch.complex(ri[:, 0].float(), ri[:, 1].float()).transpose(1, 2)   # c f k
        vad = None
        if logits is not None:
            vad = torch.sigmoid(logits.float())
            spec = spec * (model.vad_floor + (1.0 - model.vad_floor) * vad)[:, None, :]
        tframes = synthesise_frames(spec, levels, cfg)                    # c k n_fft
        span = (k - 1) * hop + n_fft
        ola = F.pad(self.ola, (0, span - self.ola.shape[1]))
        env = F.pad(self.env, (0, span - self.env.shape[0]))
        ola = ola + F.fold(tframes.transpose(1, 2), (1, span), (1, n_fft), stride=(1, hop)).view(c, span)
        env = env + F.fold(self.win2[None, :, None].expand(1, n_fft, k), (1, span), (1, n_fft),
                           stride=(1, hop)).view(span)
        start = self.frames * hop                # padded position of ola[0]
        self.frames += k
        final = k * hop                          # no later frame reaches before frames * hop
        out = (ola[:, :final] / env[:final].clamp_min(1e-11))
        self.ola, self.env = ola[:, final:], env[final:]
        skip = max(0, self.half - start)         # the zero padding before the first sample
        y = self._mixed(out[:, skip:].T.cpu().numpy())
        return y, None if vad is None else vad.T.cpu().numpy()


class OnnxStep:
    """The network of a causal model as an ONNX streaming step run by onnxruntime, one frame at a
    time, its state in numpy arrays (:func:`csmvanet.experiment.onnx_export.export_stream_step`;
    one channel)."""

    def __init__(self, model, onnx_path=None, threads: int | None = 1):
        import io

        import onnxruntime as ort

        from csmvanet.experiment.onnx_export import export_stream_step, stream_state_shapes

        if onnx_path is None:
            buf = io.BytesIO()
            self.keys = export_stream_step(model, buf)
            data = buf.getvalue()
        else:
            self.keys, data = sorted(stream_state_shapes(model)), str(onnx_path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = opts.inter_op_num_threads = threads
        self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        shapes = stream_state_shapes(model)
        self.state = {k: np.zeros(shapes[k], np.float32) for k in self.keys}
        self.t0 = np.array(0, np.int64)

    def __call__(self, feats: torch.Tensor):
        if feats.shape[0] != 1:
            raise ValueError("the ONNX streaming step runs one channel")
        ris, vads = [], []
        for t in range(feats.shape[2]):
            outs = self.session.run(None, {"feats": feats[:, :, t:t + 1].cpu().numpy(), "t0": self.t0, **self.state})
            ris.append(outs[0])
            vads.append(outs[1])
            self.t0 = outs[2]
            self.state = dict(zip(self.keys, outs[3:]))
        return torch.from_numpy(np.concatenate(ris, axis=2)), torch.from_numpy(np.concatenate(vads, axis=1))


def stream_of(enhancer, channels: int = 1) -> CausalStream:
    """The stream of an Enhancer's causal model: its ``input_mix``, and its backend (torch, or an
    ONNX streaming step for ``onnxruntime``, one channel)."""
    step = None
    if enhancer.backend == "onnxruntime":
        if channels != 1:
            raise ValueError("the onnxruntime stream runs one channel (use --channels mix, or backend torch)")
        step = OnnxStep(enhancer.model)
    elif enhancer.backend != "torch":
        raise ValueError(f"a causal model streams with backend torch or onnxruntime, not {enhancer.backend}")
    return CausalStream(enhancer.model, channels, input_mix=enhancer.input_mix, step=step)


def stream_stitcher(enhancer, channels: int) -> "StreamStitcher":
    """The stitcher of :meth:`csmvanet.infer.enhancer.Enhancer.enhance_stream` for a causal model."""
    if enhancer.snr_limit is not None:
        import warnings

        warnings.warn("snr_limit is not applied to a causal model's stream (it needs a whole chunk)", stacklevel=3)
    return StreamStitcher(stream_of(enhancer, channels))


class StreamStitcher:
    """A causal stream in the place of :class:`csmvanet.audio.stream_dsp.ChunkStitcher` (``push`` /
    ``finish`` / ``total``): file mode of a causal model gives the samples of the stream."""

    def __init__(self, stream: CausalStream):
        self.stream = stream

    @property
    def total(self) -> int:
        return self.stream.n_in

    def push(self, x: np.ndarray):
        return self.stream.process(x)

    def finish(self):
        return self.stream.flush(mono=False)
