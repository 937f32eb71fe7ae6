"""Inference: the Enhancer, audio of any length with bounded memory, VAD out.

The overlap-add, limiter and streaming resampler are in :mod:`csmvanet.audio.stream_dsp`, experiment dirs and
packed models in :mod:`csmvanet.experiment.model_files`, batch runs (csmvanet-enhance) in :mod:`csmvanet.infer.batch`.

Python API::

    from csmvanet import Enhancer
    enh = Enhancer.from_pretrained("exp/voicebank_csmvanet")        # experiment dir or packed .pth
    clean, vad = enh.enhance(wave, sr)       # wave [N] or [N, C] float; clean: same shape and rate
    enh.enhance_file("noisy.flac", "clean.flac")                     # streamed: file in, file out

Models
    ``from_pretrained(path)`` takes a packed model file (:func:`csmvanet.experiment.packing.pack_model`), an
    experiment dir (``config.yaml`` + weights, the first present of
    :data:`csmvanet.experiment.model_files.CHECKPOINT_ORDER`), or a weights file inside an experiment dir
    (``exp/x/valid.loss.best.pth``: the ``config.yaml`` beside it is used).

Chunked overlap-add
    The model runs on segments of ``segment_seconds`` (default 8 s; at least the 2 s training
    segments) that overlap by ``overlap_seconds`` (not given: the model's stored overlap, else 1 s, at
    most half the segment). Segment starts lie on the STFT hop
    grid, so every segment's frames are frames of the whole file's STFT. Neighbours are cross-faded
    over the overlap with raised-cosine (Hann) ramps ``f`` and ``1 - f``, which sum to one exactly;
    the VAD probabilities are cross-faded with the same weights taken at the frame centres. In a
    file longer than one segment every chunk is a full segment but the last, which ends at the end
    of the file, overlaps its predecessor by more than the overlap and is longer than one segment
    less the overlap (:class:`csmvanet.audio.stream_dsp.ChunkStitcher`), so peak memory is that of one
    segment, whatever the length, and every chunk has (nearly) the full context. Files up to one
    segment run in one piece. A causal model (``model.causal``) runs as one exact stream instead
    (:mod:`csmvanet.infer.streaming`): file mode gives the samples of the stream.

    Why 8 s / 1 s: the network normalises with statistics of its whole input (InstanceNorm) and its
    attention spans the whole input, so a chunk's output depends on how much context the chunk has;
    the seams themselves add nothing measurable (the error of chunked vs whole-file output is spread
    evenly, not at the seams; with a sample-local model chunking is exact). Measured chunked vs
    whole-file SI-SDR with random weights: tiny models on 30 s, 4 s segments 21-31 dB, 8 s 26-36 dB
    (by seed and signal); the paper config on 12 s of noisy speech (``bench/bench_enhance.py --only
    seams``), 4 s 20.7 dB, 6 s 26.8 dB, 8 s 30.2 dB; the overlap (0.5-2 s) changes it by under 1 dB.
    8 s keeps most VoiceBank test utterances in one piece (whole-utterance inference, as the paper
    evaluates), and its 1 s overlap costs 14 % extra compute on long files (4 s / 1 s: 33 %). The
    price is memory: about 1.7 GiB above the model for the paper config on CPU (4 s segments need
    about half); ``--segment_seconds`` trades it.

Bounded memory
    Files are read in blocks (soundfile), resampled in a stream (soxr ``ResampleStream``, the same
    VHQ filter as :func:`csmvanet.audio.io.resample` and sample-identical to it), enhanced chunk by
    chunk, resampled back and written in blocks to a temporary file that is renamed when complete.
    At any time only about one segment of audio is held, whatever the file length. Only the VAD
    probabilities (100 floats per second at 16 kHz) are kept for the whole file, off the malloc heap
    (:class:`csmvanet.base.memory.RowStore`; HeapGuard bounds heap fragmentation). The stitcher's
    input and output buffers are allocated once and reused for every segment; with
    ``retain_memory=True`` (csmvanet-enhance sets it) the network's own large tensors reuse the
    previous segment's memory too instead of being faulted in from the kernel again
    (:mod:`csmvanet.base.memory`: on a 13 s file in 4 s segments, paper config, minor page faults fell
    from 2.59 M to 24 k and system CPU time from 5.3 s to 0.05 s; peak RSS 969 -> 1,095 MiB).

Sample rate, channels, length
    Input at any rate is resampled to the model's rate and the output back to the input's rate; the
    output has exactly as many samples as the input. Multi-channel input: ``channels="each"``
    (default) enhances every channel on its own (the channels go through the model as one batch)
    and keeps the channel count; ``"mix"`` averages the channels and writes a mono output;
    ``"error"`` refuses multi-channel input.

Peak handling (no clipping)
    Enhanced audio can exceed full scale where the input nearly reached it. Rather than hard
    clipping (audible) or scaling the whole file (needs the whole file), a per-sample soft limiter
    :func:`csmvanet.audio.stream_dsp.soft_limit` is applied: samples with ``|x| <= 0.9`` are untouched; above, the magnitude
    follows ``0.9 + 0.09 * tanh((|x| - 0.9) / 0.09)`` (continuous slope at the knee), so the output
    never exceeds 0.99 and 16-bit files never clip. ``limit=False`` returns the raw model output.

    Input above full scale (float files, arrays with peak > 1.0) is divided by its peak before the
    network and the output multiplied by it after the limiter, so the level is kept rather than
    squashed by the limiter; a file output must then be ``FLOAT`` (PCM cannot hold it: refused
    with a message). Float files are read twice for this (once for the peak).

Quiet input
    A chunk whose input RMS is below -60 dBFS never comes out louder than it went in (peak or RMS):
    all-zero input gives all-zero output (:func:`csmvanet.infer.output_level.bound_quiet`).
"""
from __future__ import annotations

import errno
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import soundfile as sf

from csmvanet.audio.stream_dsp import ChunkStitcher, StreamResampler, soft_limit
from csmvanet.base.atomic_files import atomic_path
from csmvanet.base.errors import EnhanceError, last_line
from csmvanet.base.memory import HeapGuard, RowStore
from csmvanet.data.utt_audio import UttAudio
from csmvanet.experiment.inference_settings import DEFAULT_OVERLAP_SECONDS, InferenceSettings, check_setting
from csmvanet.experiment.model_files import load_model_files, model_with_weights, resolve_model
from csmvanet.infer.file_blocks import READ_BLOCK, FileBlocks, input_scale
from csmvanet.infer.output_level import bound_quiet, snr_limit_mix
from csmvanet.infer.streaming import stream_of, stream_stitcher

CHANNEL_MODES = ("each", "mix", "error")


# --------------------------------------------------------------------------------------------------
# the enhancer


@dataclass
class StreamResult:
    """What :meth:`Enhancer.enhance_stream` leaves behind once its output has been consumed."""

    num_samples: int = 0           # input samples (per channel)
    sample_rate: int = 0
    channels: int = 0              # input channels
    vad: np.ndarray | None = None  # [T, C] (C = 1 for channels="mix"), model frame rate
    vad_rows: RowStore | None = field(default=None, repr=False)   # the VAD while streaming (csmvanet.base.memory)


class Enhancer:
    """A CSM-VANet model ready for inference on arrays and files of any length (see the module doc)."""

    def __init__(self, model, config: dict, *, device: str = "cpu", metadata: dict | None = None, source: str = "",
                 onnx_path: str | Path | None = None, retain_memory: bool = False,
                 settings: InferenceSettings | None = None, **given):
        """``settings``: the inference settings to start from (default: those stored with the model,
        ``metadata["inference"]``, else the defaults); ``given``: settings by name
        (:data:`csmvanet.experiment.inference_settings.SETTINGS`: vad_floor, vad_threshold, input_mix,
        snr_limit, segment_seconds, overlap_seconds, backend), each overriding it when not None."""
        import torch

        from csmvanet.infer.backends import make_runner   # torch and onnx: loaded when a model is

        # retain_memory: freed memory reused by the next segment (process-wide), fragmentation bounded
        self.heap = HeapGuard() if retain_memory else None
        self.torch = torch
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config = config
        self.stft_cfg = model.stft_cfg
        self.sample_rate = int(self.stft_cfg.sample_rate)
        self.metadata = dict(metadata or {})
        self.source = source
        self.model_vad_floor = float(getattr(model, "vad_floor", 0.0))   # the config's: where vad_floor is not set
        if settings is None:
            settings = InferenceSettings.stored(self.metadata.get("inference") or {}, f"{source or 'model'}: "
                                                "metadata inference", required=())
        self.stored = settings              # its overlap is the default of set_chunking
        self.settings = settings.updated(**given)
        # what runs the network between analysis and synthesis (csmvanet.infer.backends): torch, onnxruntime, ...
        self.backend = self.settings.backend
        self.runner = make_runner(self.model, self.backend, device=str(self.device), onnx_path=onnx_path)
        self._apply()
        self.set_chunking(self.settings.segment_seconds, given.get("overlap_seconds"))

    # ---- construction
    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str = "cpu", *, checkpoint: str | None = None,
                        onnx_path: str | Path | None = None, retain_memory: bool = False,
                        settings: InferenceSettings | None = None, **given) -> "Enhancer":
        """Load a packed model file, an experiment dir or a weights file inside an experiment dir;
        ``path=None`` (or a bundled model's name) loads a model shipped with the package
        (:data:`csmvanet.experiment.model_files.BUNDLED_MODELS`; the first is the default).

        The inference settings (``settings`` and ``given`` by name, as for ``Enhancer(...)``;
        :mod:`csmvanet.experiment.inference_settings` says what each does) default to those chosen on
        validation and stored with the model (csmvanet-tune-inference), else the config's ``vad_floor``,
        threshold 0.5, no input mix, no SNR limit (``snr_limit=float("inf")`` switches a stored one off),
        8 s chunks with 1 s overlap and the torch backend. ``onnx_path``: an ONNX file written by
        csmvanet-export from the same weights for ``backend="onnxruntime"`` (else exported in memory).
        ``retain_memory=True`` keeps freed memory in the process for the next chunk instead of returning
        it to the kernel (:mod:`csmvanet.base.memory`; process-wide).
        """
        path = resolve_model(path)
        config, state, metadata = load_model_files(path, checkpoint)
        model = model_with_weights(config, state, str(path))
        return cls(model, config, device=device, metadata=metadata, source=str(path), onnx_path=onnx_path,
                   retain_memory=retain_memory, settings=settings, **given)

    # ---- settings
    def _apply(self) -> None:
        s = self.settings
        self.vad_floor = self.model_vad_floor if s.vad_floor is None else s.vad_floor
        self.model.vad_floor = self.vad_floor
        self.vad_threshold, self.input_mix, self.snr_limit = s.vad_threshold, s.input_mix, s.snr_limit

    def update(self, **given) -> None:
        """Change inference settings by name (None: unchanged); ValueError naming a bad one."""
        if "backend" in given and given["backend"] not in (None, self.backend):
            raise ValueError("backend is chosen when the Enhancer is made")
        chunking = {k: given.pop(k) for k in ("segment_seconds", "overlap_seconds") if k in given}
        self.settings = self.settings.updated(**given)
        self._apply()
        if any(v is not None for v in chunking.values()):
            self.set_chunking(chunking.get("segment_seconds") or self.segment_seconds, chunking.get("overlap_seconds"))

    def set_vad_floor(self, vad_floor: float) -> None:
        """Stage-2 gain ``floor + (1 - floor) * p_speech`` on the stage-1 spectrum: 0 is the paper's
        stage 2 (spectrum x VAD probability), 1 switches the gate off (stage 1 alone)."""
        self.update(vad_floor=check_setting("vad_floor", vad_floor))

    def set_input_mix(self, input_mix: float) -> None:
        """Output ``(1 - m) x enhanced + m x input``: ``m`` of the unprocessed input is kept (0: none;
        DeepFilterNet's attenuation limit of ``-20 log10(m)`` dB is the same idea)."""
        self.update(input_mix=check_setting("input_mix", input_mix))

    def set_snr_limit(self, snr_limit: float | None) -> None:
        """Per chunk, keep at least the share of the input that holds the output's estimated SNR
        at ``snr_limit`` dB (:func:`csmvanet.infer.output_level.snr_limit_mix`; never less than
        ``input_mix``): the cleaner the input already is, the more of it is kept, so the network's
        distortions replace less of a clean input. None or ``inf``: no limit."""
        self.settings = replace(self.settings, snr_limit=check_setting("snr_limit", snr_limit))
        self._apply()

    def set_chunking(self, segment_seconds: float, overlap_seconds: float | None = None) -> None:
        """Chunk and overlap lengths (rounded to the hop grid). ``overlap_seconds=None`` (not given):
        the model's stored overlap, else 1 s, at most half the chunk (whole hops); one given must fit."""
        segment_seconds = check_setting("segment_seconds", segment_seconds)
        hop = self.stft_cfg.hop_length
        seg = int(round(segment_seconds * self.sample_rate / hop)) * hop
        if seg < self.stft_cfg.win_length or seg < 2 * hop:
            raise ValueError(f"segment_seconds={segment_seconds} is shorter than one STFT frame")
        if overlap_seconds is None:
            default = self.stored.overlap_seconds
            default = DEFAULT_OVERLAP_SECONDS if default is None else default
            overlap_seconds = min(float(default), seg // (2 * hop) * hop / self.sample_rate)
        ov = int(round(check_setting("overlap_seconds", overlap_seconds) * self.sample_rate / hop)) * hop
        if 2 * ov > seg:
            raise ValueError(f"overlap_seconds={overlap_seconds} must be between 0 and half of "
                             f"segment_seconds={segment_seconds}")
        self.segment, self.overlap = seg, ov
        self.segment_seconds, self.overlap_seconds = seg / self.sample_rate, ov / self.sample_rate
        self.settings = replace(self.settings, segment_seconds=self.segment_seconds,
                                overlap_seconds=self.overlap_seconds)

    # ---- the model on one chunk
    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        torch = self.torch
        n = len(x)
        pad = max(0, self.stft_cfg.win_length - n)   # a last chunk shorter than one frame: zero-padded
        if pad:
            x = np.concatenate([x, np.zeros((pad, x.shape[1]), x.dtype)])
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(x.T)).to(self.device)   # [C, L]
            feats, scale = self.model.analysis(batch)
            ri, vad_logits = self.runner(feats)
            out = self.model.synthesis(ri.to(self.device),
                                       None if vad_logits is None else vad_logits.to(self.device),
                                       scale, batch.shape[1])
            wave = out["wave"].float().cpu().numpy().T[:n]                       # [L, C]
            mix = self.input_mix
            if self.snr_limit is not None:
                mix = max(mix, snr_limit_mix(wave, x[:n], self.snr_limit))
            if mix:
                wave = (1.0 - mix) * wave + mix * x[:n]
            wave = bound_quiet(wave, x[:n])      # near-silent input: output never louder (output_level)
            vad = out.get("vad")
            vad = None if vad is None else vad.float().cpu().numpy().T[:n // self.stft_cfg.hop_length + 1]
        if self.heap is not None:
            self.heap.check()
        return wave, vad

    # ---- streaming core
    def enhance_stream(self, blocks: Iterable[np.ndarray], sr: int, *, channels: str = "each",
                       limit: bool = True, name: str = "input", scale: float = 1.0,
                       result: StreamResult | None = None, on_vad=None) -> Iterator[np.ndarray]:
        """Enhance a stream of ``[n, C]`` float blocks at rate ``sr``; yield ``[m, C_out]`` blocks at ``sr``.

        Exactly as many samples come out as went in. ``scale`` (the input's peak when it exceeds
        full scale): the input is divided by it before the network and the output multiplied by it
        after the limiter, so the level is kept and nothing above 1.0 is squashed. ``result`` (a :class:`StreamResult`) receives the
        VAD and the counts once the generator is exhausted. Errors raise :class:`EnhanceError` naming
        ``name``. ``on_vad(v)``: called with each ``[k, C]`` block of VAD frames as it is computed.
        """
        if channels not in CHANNEL_MODES:
            raise ValueError(f"channels must be one of {CHANNEL_MODES}, got {channels!r}")
        if not isinstance(sr, (int, np.integer)) or sr <= 0:
            raise EnhanceError(f"{name}: invalid sample rate {sr!r}")
        result = result if result is not None else StreamResult()
        result.sample_rate = int(sr)

        def keep_vad(v) -> None:   # one off-heap store, not an array per chunk (csmvanet.base.memory.RowStore)
            if v is not None:
                if on_vad is not None:
                    on_vad(v)
                if result.vad_rows is None:
                    result.vad_rows = RowStore(v.shape[1])
                result.vad_rows.append(v)

        def finish(y: np.ndarray) -> np.ndarray:   # limiter at the network's level, then the input's level back
            y = soft_limit(y) if limit else y
            return y * np.float32(scale) if scale != 1.0 else y

        n_in = 0
        n_out = 0
        stitcher = res_in = res_out = None
        c_in = c_out = None
        for block in blocks:
            block = np.asarray(block, dtype=np.float32)
            if block.ndim == 1:
                block = block[:, None]
            if c_in is None:
                c_in = block.shape[1]
                result.channels = c_in
                if c_in < 1:
                    raise EnhanceError(f"{name}: no channels")
                if c_in > 1 and channels == "error":
                    raise EnhanceError(f"{name}: {c_in} channels; multi-channel input refused "
                                       "(channels='error'; use 'each' or 'mix')")
                c_out = 1 if channels == "mix" else c_in
                stitcher = (stream_stitcher(self, c_out) if getattr(self.model, "causal", False) else   # exact stream
                            ChunkStitcher(self._run, self.segment, self.overlap, self.stft_cfg.hop_length, c_out))
                res_in = StreamResampler(sr, self.sample_rate, c_out)
                res_out = StreamResampler(self.sample_rate, sr, c_out)
            elif block.shape[1] != c_in:
                raise EnhanceError(f"{name}: block with {block.shape[1]} channels after {c_in}")
            if len(block) == 0:
                continue
            bad = ~np.isfinite(block)
            if bad.any():
                i = int(np.argmax(bad.any(axis=1)))
                raise EnhanceError(f"{name}: NaN or Inf sample at sample {n_in + i} "
                                   f"({(n_in + i) / sr:.3f} s)")
            if scale != 1.0:
                block = block / np.float32(scale)
            n_in += len(block)
            if c_out == 1 and c_in > 1:
                block = block.mean(axis=1, keepdims=True)
            y, v = stitcher.push(res_in(block))
            keep_vad(v)
            y = res_out(y)
            if len(y):
                y = y[: max(0, n_in - n_out)]
                n_out += len(y)
                yield finish(y)
        result.num_samples = n_in
        if n_in == 0:
            raise EnhanceError(f"{name}: no samples")
        tail = res_in(np.zeros((0, c_out), np.float32), last=True)
        if len(tail):
            y, v = stitcher.push(tail)
            keep_vad(v)
            y = res_out(y)
            if len(y):
                y = y[: n_in - n_out]
                n_out += len(y)
                yield finish(y)
        if stitcher.total < self.stft_cfg.win_length:
            raise EnhanceError(f"{name}: too short: {n_in} samples at {sr} Hz ({n_in / sr * 1000:.1f} ms) is "
                               f"less than one {self.stft_cfg.win_length / self.sample_rate * 1000:.0f} ms "
                               "analysis frame")
        y, v = stitcher.finish()
        keep_vad(v)
        y = np.concatenate([res_out(y), res_out(np.zeros((0, c_out), np.float32), last=True)])
        y = y[: n_in - n_out]
        if n_out + len(y) < n_in:   # the resampler's last sample(s), if it rounded the length down
            y = np.concatenate([y, np.zeros((n_in - n_out - len(y), c_out), np.float32)])
        n_out += len(y)
        if len(y):
            yield finish(y)
        result.vad = None if result.vad_rows is None else result.vad_rows.array()
        result.vad_rows = None

    def stream(self, channels: int = 1):
        """A live stream of a causal model at its rate: ``process(chunk)`` / ``flush()``
        (:class:`csmvanet.infer.streaming.CausalStream`; ``[n]`` or ``[n, channels]`` samples)."""
        return stream_of(self, channels)

    # ---- arrays
    def enhance(self, wave: np.ndarray, sr: int, *, channels: str = "each",
                limit: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Enhance an array ``[N]`` or ``[N, C]`` at rate ``sr``.

        Returns ``(enhanced, vad)``: ``enhanced`` has the input's shape and rate (``[N]`` for
        ``channels="mix"``); ``vad`` holds frame probabilities at the model's frame rate
        (``sample_rate / hop`` per second of the resampled input): ``[T]`` for mono output,
        ``[T, C]`` per channel; None for a model without VAD decoder.
        """
        wave = np.asarray(wave)
        if wave.ndim not in (1, 2):
            raise EnhanceError(f"input: expected samples [N] or [N, C], got shape {wave.shape}")
        if not np.issubdtype(wave.dtype, np.floating):
            raise EnhanceError(f"input: expected floating-point samples, got {wave.dtype}")
        x = wave[:, None] if wave.ndim == 1 else wave
        if x.shape[1] == 0:
            raise EnhanceError("input: no channels")
        blocks = (x[i:i + READ_BLOCK] for i in range(0, len(x), READ_BLOCK))
        res = StreamResult()
        scale = input_scale(float(np.max(np.abs(x))) if x.size and np.isfinite(x).all() else 0.0)
        parts = list(self.enhance_stream(blocks, sr, channels=channels, limit=limit, scale=scale, result=res))
        out = np.concatenate(parts)
        vad = res.vad
        if out.shape[1] == 1 and (wave.ndim == 1 or channels == "mix"):
            out = out[:, 0]
            vad = None if vad is None else vad[:, 0]
        return out, vad

    # ---- files
    def enhance_file(self, source: str | Path | UttAudio, out_path: str | Path, *, channels: str = "each",
                     subtype: str = "PCM_16", limit: bool = True) -> StreamResult:
        """Enhance an audio file (or a Kaldi scp value: pipe, ark offset; or a
        :class:`csmvanet.data.utt_audio.UttAudio`, a segment of one) into ``out_path`` (wav or flac).

        Reads and writes in blocks (a segment is read whole: only its samples); the output appears
        only when complete (atomic rename).
        Raises :class:`EnhanceError` (or :class:`csmvanet.audio.io.AudioError`) naming the file.
        """
        out_path = Path(out_path)
        fmt = {".wav": "WAV", ".flac": "FLAC"}.get(out_path.suffix.lower())
        if fmt is None:
            raise EnhanceError(f"{out_path}: unsupported output format {out_path.suffix!r} (use .wav or .flac)")
        if not sf.check_format(fmt, subtype):
            raise EnhanceError(f"{out_path}: {fmt} cannot hold {subtype} samples (FLAC: PCM_16 or PCM_24; "
                               "or write .wav)")
        name = source.describe() if isinstance(source, UttAudio) else str(source).strip()
        res = StreamResult()
        opened = FileBlocks(source)
        with opened as (sr, nch, blocks):
            if nch > 1 and channels == "error":
                raise EnhanceError(f"{name}: {nch} channels; multi-channel input refused (--channels error)")
            c_out = 1 if channels == "mix" else nch
            if fmt == "FLAC" and sr > 655350:
                raise EnhanceError(f"{name}: sample rate {sr} Hz too high for FLAC output")
            scale = input_scale(opened.peak())
            if scale != 1.0 and subtype != "FLOAT":
                raise EnhanceError(f"{name}: peak {scale:.3g} is above full scale (1.0); a {subtype} output cannot "
                                   "keep that level: use --output_subtype FLOAT, or scale the input down")
            stream = self.enhance_stream(blocks, sr, channels=channels, limit=limit, name=name, scale=scale,
                                         result=res)
            with atomic_path(out_path) as tmp:
                try:
                    with sf.SoundFile(str(tmp).encode(errors="surrogateescape"), "w", samplerate=sr,
                                      channels=c_out, subtype=subtype, format=fmt) as f:
                        for y in stream:
                            f.write(y)
                except (sf.LibsndfileError, RuntimeError) as e:
                    # libsndfile says only "System error." when the disk is full: look before the
                    # temporary file is removed and the space is free again
                    if shutil.disk_usage(tmp.parent).free < (1 << 20):
                        raise OSError(errno.ENOSPC, "no space left on device", str(out_path)) from None
                    raise EnhanceError(f"{out_path}: cannot write ({last_line(e)})") from None
        return res


__all__ = ["CHANNEL_MODES", "Enhancer", "StreamResult"]
