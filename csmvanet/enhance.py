"""Inference: enhance audio of any length with bounded memory, VAD out, packed models, batch runs.

Python API::

    from csmvanet import Enhancer
    enh = Enhancer.from_pretrained("exp/voicebank_csmvanet")        # experiment dir or packed .pth
    clean, vad = enh.enhance(wave, sr)       # wave [N] or [N, C] float; clean: same shape and rate
    enh.enhance_file("noisy.flac", "clean.flac")                     # streamed: file in, file out

Models
    ``from_pretrained(path)`` takes a packed model file (:func:`pack_model`), an experiment dir
    (``config.yaml`` + weights, the first present of :data:`CHECKPOINT_ORDER`), or a weights file
    inside an experiment dir (``exp/x/valid.loss.best.pth``: the ``config.yaml`` beside it is used).

Chunked overlap-add
    The model runs on segments of ``segment_seconds`` (default 8 s; at least the 2 s training
    segments) that overlap by ``overlap_seconds`` (default 1 s). Segment starts lie on the STFT hop
    grid, so every segment's frames are frames of the whole file's STFT. Neighbours are cross-faded
    over the overlap with raised-cosine (Hann) ramps ``f`` and ``1 - f``, which sum to one exactly;
    the VAD probabilities are cross-faded with the same weights taken at the frame centres. In a
    file longer than one segment every chunk is a full segment (the last one ends at the end of the
    file and overlaps its predecessor by more than the overlap), so peak memory is that of one
    segment, whatever the length, and every chunk has the full context. Files up to one segment
    run in one piece.

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
    VHQ filter as :func:`csmvanet.audio.resample` and sample-identical to it), enhanced chunk by
    chunk, resampled back and written in blocks to a temporary file that is renamed when complete.
    At any time only about one segment of audio is held, whatever the file length. Only the VAD
    probabilities (100 floats per second at 16 kHz) are kept for the whole file.

Sample rate, channels, length
    Input at any rate is resampled to the model's rate and the output back to the input's rate; the
    output has exactly as many samples as the input. Multi-channel input: ``channels="each"``
    (default) enhances every channel on its own (the channels go through the model as one batch)
    and keeps the channel count; ``"mix"`` averages the channels and writes a mono output;
    ``"error"`` refuses multi-channel input.

Peak handling (no clipping)
    Enhanced audio can exceed full scale where the input nearly reached it. Rather than hard
    clipping (audible) or scaling the whole file (needs the whole file), a per-sample soft limiter
    :func:`soft_limit` is applied: samples with ``|x| <= 0.9`` are untouched; above, the magnitude
    follows ``0.9 + 0.09 * tanh((|x| - 0.9) / 0.09)`` (continuous slope at the knee), so the output
    never exceeds 0.99 and 16-bit files never clip. ``limit=False`` returns the raw model output.
"""
from __future__ import annotations

import datetime
import hashlib
import platform
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import soundfile as sf
import yaml

from csmvanet.audio import AudioError, _is_ark_entry, read_audio
from csmvanet.fileio import atomic_path

#: Weights looked for in an experiment dir, in this order (glob patterns; sorted within a pattern).
#: The averaged model is what the recipes decode with; the others are fall-backs (with a warning).
CHECKPOINT_ORDER = ("valid.loss.ave.pth", "valid.*.ave.pth", "valid.loss.best.pth", "valid.*.best.pth",
                    "checkpoint_last.pth")

PACK_FORMAT = "csmvanet-packed-model"
PACK_VERSION = 1

DEFAULT_SEGMENT_SECONDS = 8.0
DEFAULT_OVERLAP_SECONDS = 1.0
READ_BLOCK = 65536            # samples per read/resample block
LIMIT_KNEE = 0.9
LIMIT_CEILING = 0.99
CHANNEL_MODES = ("each", "mix", "error")
AUDIO_SUFFIXES = (".wav", ".flac")


class EnhanceError(ValueError):
    """Input that cannot be enhanced; the message names the file (or key) and the problem."""


class ModelFileError(EnhanceError):
    """A model path that cannot be used: missing files, not a model, checksum mismatch, ..."""


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
    end of the input and starts on the hop grid, so it is within one hop of a full segment (it
    overlaps its predecessor by more than ``overlap``; the cross-fade is still ``overlap`` long).
    Every chunk of an input longer than one segment is thus a full segment: peak memory is that of
    one segment whatever the length, and every chunk has the full context. An input of at most one
    segment is one chunk.
    """

    def __init__(self, run: Callable, segment: int, overlap: int, hop: int, channels: int):
        if segment % hop or overlap % hop:
            raise ValueError(f"segment ({segment}) and overlap ({overlap}) must be multiples of hop ({hop})")
        if not 0 <= 2 * overlap <= segment:
            raise ValueError(f"overlap ({overlap}) must be between 0 and half the segment ({segment})")
        self.run, self.segment, self.overlap, self.hop = run, segment, overlap, hop
        self.step = segment - overlap
        self.channels = channels
        self.buf = np.zeros((0, channels), np.float32)  # input from self.start on
        self.start = 0                                  # next chunk start (global sample index)
        self.total = 0                                  # input samples received
        self.first = True
        self.out = np.zeros((0, channels), np.float64)  # output accumulator from self.start on
        self.vad = np.zeros((0, channels), np.float64)  # VAD accumulator from frame self.start // hop
        self.has_vad = None

    def push(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        x = np.asarray(x, np.float32).reshape(len(x), self.channels)
        self.buf = np.concatenate([self.buf, x]) if len(self.buf) else x
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

    def _chunk(self, length: int, nxt: int, last: bool, waves: list, vads: list) -> None:
        """Run a chunk of ``length`` samples from self.start; the next one starts ``nxt`` later."""
        hop = self.hop
        y, v = self.run(self.buf[:length])
        if self.has_vad is None:
            self.has_vad = v is not None
        w = self._weights(np.arange(length, dtype=np.float64), nxt, last)
        if len(self.out) < length:
            self.out = np.concatenate([self.out, np.zeros((length - len(self.out), self.channels))])
        self.out[:length] += w[:, None] * y
        waves.append(self.out[:nxt])
        self.out = self.out[nxt:]
        if v is not None:
            frames = len(v)
            if frames != length // hop + 1:
                raise RuntimeError(f"model returned {frames} VAD frames for {length} samples")
            wf = self._weights(np.arange(frames, dtype=np.float64) * hop, nxt, last)
            if len(self.vad) < frames:
                self.vad = np.concatenate([self.vad, np.zeros((frames - len(self.vad), self.channels))])
            self.vad[:frames] += wf[:, None] * v
            done = frames if last else nxt // hop
            vads.append(self.vad[:done])
            self.vad = self.vad[done:]
        self.buf = self.buf[nxt:]
        self.start += nxt
        self.first = False

    def _weights(self, rel: np.ndarray, nxt: int, last: bool) -> np.ndarray:
        """Cross-fade weights at positions ``rel`` of a chunk whose successor starts at ``nxt``."""
        w = np.ones_like(rel)
        if not self.first:
            w *= _fade_in(rel, self.overlap)
        if not last:
            w *= 1.0 - _fade_in(rel - nxt, self.overlap)
        return w


class _Resampler:
    """Streaming soxr resampler (VHQ, as :func:`csmvanet.audio.resample`); identity when rates match."""

    def __init__(self, sr_in: int, sr_out: int, channels: int):
        self.stream = None
        if sr_in != sr_out:
            import soxr

            self.stream = soxr.ResampleStream(sr_in, sr_out, channels, dtype="float32", quality="VHQ")

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        if self.stream is None:
            return x
        return self.stream.resample_chunk(np.ascontiguousarray(x, dtype=np.float32), last=last)


# --------------------------------------------------------------------------------------------------
# the enhancer


@dataclass
class StreamResult:
    """What :meth:`Enhancer.enhance_stream` leaves behind once its output has been consumed."""

    num_samples: int = 0           # input samples (per channel)
    sample_rate: int = 0
    channels: int = 0              # input channels
    vad: np.ndarray | None = None  # [T, C] (C = 1 for channels="mix"), model frame rate
    vad_parts: list = field(default_factory=list, repr=False)


class Enhancer:
    """A CSM-VANet model ready for inference on arrays and files of any length (see the module doc)."""

    def __init__(self, model, config: dict, *, device: str = "cpu", segment_seconds: float | None = None,
                 overlap_seconds: float | None = None, metadata: dict | None = None, source: str = ""):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config = config
        self.stft_cfg = model.stft_cfg
        self.sample_rate = int(self.stft_cfg.sample_rate)
        self.metadata = dict(metadata or {})
        self.source = source
        self.set_chunking(DEFAULT_SEGMENT_SECONDS if segment_seconds is None else segment_seconds,
                          DEFAULT_OVERLAP_SECONDS if overlap_seconds is None else overlap_seconds)

    # ---- construction
    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu", *, checkpoint: str | None = None,
                        segment_seconds: float | None = None, overlap_seconds: float | None = None) -> "Enhancer":
        """Load a packed model file, an experiment dir or a weights file inside an experiment dir."""
        config, state, metadata = load_model_files(path, checkpoint)
        from csmvanet.nets import build_model

        try:
            model = build_model(config)
        except (ValueError, TypeError) as e:
            raise ModelFileError(f"{path}: cannot build the model from its config ({e})") from None
        missing, unexpected = _match_state(model, state)
        if missing or unexpected:
            raise ModelFileError(f"{path}: weights do not fit the config: missing or of another shape "
                                 f"{_few(missing)}; unexpected {_few(unexpected)}")
        model.load_state_dict(state)
        return cls(model, config, device=device, segment_seconds=segment_seconds,
                   overlap_seconds=overlap_seconds, metadata=metadata, source=str(path))

    def set_chunking(self, segment_seconds: float, overlap_seconds: float) -> None:
        """Segment and overlap lengths (rounded to the hop grid)."""
        hop = self.stft_cfg.hop_length
        seg = int(round(segment_seconds * self.sample_rate / hop)) * hop
        ov = int(round(overlap_seconds * self.sample_rate / hop)) * hop
        if seg < self.stft_cfg.win_length or seg < 2 * hop:
            raise ValueError(f"segment_seconds={segment_seconds} is shorter than one STFT frame")
        if ov < 0 or 2 * ov > seg:
            raise ValueError(f"overlap_seconds={overlap_seconds} must be between 0 and half of "
                             f"segment_seconds={segment_seconds}")
        self.segment, self.overlap = seg, ov
        self.segment_seconds, self.overlap_seconds = seg / self.sample_rate, ov / self.sample_rate

    # ---- the model on one chunk
    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        torch = self.torch
        n = len(x)
        pad = max(0, self.stft_cfg.win_length - n)   # a last chunk shorter than one frame: zero-padded
        if pad:
            x = np.concatenate([x, np.zeros((pad, x.shape[1]), x.dtype)])
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(x.T)).to(self.device)   # [C, L]
            out = self.model(batch)
            wave = out["wave"].float().cpu().numpy().T[:n]                       # [L, C]
            vad = out.get("vad")
            vad = None if vad is None else vad.float().cpu().numpy().T[:n // self.stft_cfg.hop_length + 1]
        return wave, vad

    # ---- streaming core
    def enhance_stream(self, blocks: Iterable[np.ndarray], sr: int, *, channels: str = "each",
                       limit: bool = True, name: str = "input",
                       result: StreamResult | None = None) -> Iterator[np.ndarray]:
        """Enhance a stream of ``[n, C]`` float blocks at rate ``sr``; yield ``[m, C_out]`` blocks at ``sr``.

        Exactly as many samples come out as went in. ``result`` (a :class:`StreamResult`) receives the
        VAD and the counts once the generator is exhausted. Errors raise :class:`EnhanceError` naming
        ``name``.
        """
        if channels not in CHANNEL_MODES:
            raise ValueError(f"channels must be one of {CHANNEL_MODES}, got {channels!r}")
        if not isinstance(sr, (int, np.integer)) or sr <= 0:
            raise EnhanceError(f"{name}: invalid sample rate {sr!r}")
        result = result if result is not None else StreamResult()
        result.sample_rate = int(sr)
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
                stitcher = ChunkStitcher(self._run, self.segment, self.overlap, self.stft_cfg.hop_length, c_out)
                res_in = _Resampler(sr, self.sample_rate, c_out)
                res_out = _Resampler(self.sample_rate, sr, c_out)
            elif block.shape[1] != c_in:
                raise EnhanceError(f"{name}: block with {block.shape[1]} channels after {c_in}")
            if len(block) == 0:
                continue
            bad = ~np.isfinite(block)
            if bad.any():
                i = int(np.argmax(bad.any(axis=1)))
                raise EnhanceError(f"{name}: NaN or Inf sample at sample {n_in + i} "
                                   f"({(n_in + i) / sr:.3f} s)")
            n_in += len(block)
            if c_out == 1 and c_in > 1:
                block = block.mean(axis=1, keepdims=True)
            y, v = stitcher.push(res_in(block))
            if v is not None:
                result.vad_parts.append(v)
            y = res_out(y)
            if len(y):
                y = y[: max(0, n_in - n_out)]
                n_out += len(y)
                yield soft_limit(y) if limit else y
        result.num_samples = n_in
        if n_in == 0:
            raise EnhanceError(f"{name}: no samples")
        tail = res_in(np.zeros((0, c_out), np.float32), last=True)
        if len(tail):
            y, v = stitcher.push(tail)
            if v is not None:
                result.vad_parts.append(v)
            y = res_out(y)
            if len(y):
                y = y[: n_in - n_out]
                n_out += len(y)
                yield soft_limit(y) if limit else y
        if stitcher.total < self.stft_cfg.win_length:
            raise EnhanceError(f"{name}: too short: {n_in} samples at {sr} Hz ({n_in / sr * 1000:.1f} ms) is "
                               f"less than one {self.stft_cfg.win_length / self.sample_rate * 1000:.0f} ms "
                               "analysis frame")
        y, v = stitcher.finish()
        if v is not None:
            result.vad_parts.append(v)
        y = np.concatenate([res_out(y), res_out(np.zeros((0, c_out), np.float32), last=True)])
        y = y[: n_in - n_out]
        if n_out + len(y) < n_in:   # the resampler's last sample(s), if it rounded the length down
            y = np.concatenate([y, np.zeros((n_in - n_out - len(y), c_out), np.float32)])
        n_out += len(y)
        if len(y):
            yield soft_limit(y) if limit else y
        result.vad = (np.concatenate(result.vad_parts) if result.vad_parts else None)
        result.vad_parts = []

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
        parts = list(self.enhance_stream(blocks, sr, channels=channels, limit=limit, result=res))
        out = np.concatenate(parts)
        vad = res.vad
        if out.shape[1] == 1 and (wave.ndim == 1 or channels == "mix"):
            out = out[:, 0]
            vad = None if vad is None else vad[:, 0]
        return out, vad

    # ---- files
    def enhance_file(self, source: str | Path, out_path: str | Path, *, channels: str = "each",
                     subtype: str = "PCM_16", limit: bool = True) -> StreamResult:
        """Enhance an audio file (or a Kaldi scp value: pipe, ark offset) into ``out_path`` (wav or flac).

        Reads and writes in blocks; the output appears only when complete (atomic rename).
        Raises :class:`EnhanceError` (or :class:`csmvanet.audio.AudioError`) naming the file.
        """
        out_path = Path(out_path)
        fmt = {".wav": "WAV", ".flac": "FLAC"}.get(out_path.suffix.lower())
        if fmt is None:
            raise EnhanceError(f"{out_path}: unsupported output format {out_path.suffix!r} (use .wav or .flac)")
        name = str(source).strip()
        res = StreamResult()
        with _open_blocks(source) as (sr, nch, blocks):
            if nch > 1 and channels == "error":
                raise EnhanceError(f"{name}: {nch} channels; multi-channel input refused (--channels error)")
            c_out = 1 if channels == "mix" else nch
            if fmt == "FLAC" and sr > 655350:
                raise EnhanceError(f"{name}: sample rate {sr} Hz too high for FLAC output")
            stream = self.enhance_stream(blocks, sr, channels=channels, limit=limit, name=name, result=res)
            with atomic_path(out_path) as tmp:
                with sf.SoundFile(str(tmp), "w", samplerate=sr, channels=c_out, subtype=subtype,
                                  format=fmt) as f:
                    for y in stream:
                        f.write(y)
        return res


class _open_blocks:
    """Context manager: (sample rate, channels, iterator of [n, C] float32 blocks) of a path or scp value."""

    def __init__(self, source):
        self.src = str(source).strip()
        self.file = None

    def __enter__(self):
        src = self.src
        if src.endswith("|") or _is_ark_entry(src):
            data, sr = read_audio(src, always_2d=True)           # pipes and ark entries: in memory
            return sr, data.shape[1], (data[i:i + READ_BLOCK] for i in range(0, max(len(data), 1), READ_BLOCK))
        path = Path(src)
        if not path.exists():
            raise AudioError(f"{src}: no such file")
        if path.is_dir():
            raise AudioError(f"{src}: is a folder, not an audio file")
        try:
            size = path.stat().st_size
        except OSError as e:
            raise AudioError(f"{src}: cannot access ({e.strerror})") from None
        if size == 0:
            raise AudioError(f"{src}: empty file (0 bytes)")
        try:
            self.file = sf.SoundFile(str(path), "r")
        except (sf.LibsndfileError, RuntimeError, TypeError, OSError) as e:
            raise AudioError(f"{src}: cannot read audio ({_short(e)})") from None
        if self.file.frames == 0:
            raise AudioError(f"{src}: no samples (the audio holds 0 frames)")
        return self.file.samplerate, self.file.channels, self._blocks()

    def _blocks(self):
        while True:
            try:
                block = self.file.read(READ_BLOCK, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as e:
                raise AudioError(f"{self.src}: read error ({_short(e)})") from None
            if len(block) == 0:
                return
            yield block

    def __exit__(self, *exc):
        if self.file is not None:
            self.file.close()
        return False


# --------------------------------------------------------------------------------------------------
# model files: experiment dirs and packed models


def find_checkpoint(exp_dir: Path, checkpoint: str | None = None) -> Path:
    """The weights file of an experiment dir: ``checkpoint`` if given, else the first of CHECKPOINT_ORDER."""
    if checkpoint:
        p = Path(checkpoint)
        p = p if p.is_absolute() or p.parent != Path(".") else exp_dir / p
        if not p.is_file():
            raise ModelFileError(f"{p}: no such checkpoint")
        return p
    for i, pattern in enumerate(CHECKPOINT_ORDER):
        hits = sorted(exp_dir.glob(pattern))
        if hits:
            if i > 0:
                warnings.warn(f"{exp_dir}: no {CHECKPOINT_ORDER[0]}; using {hits[0].name}", stacklevel=3)
            return hits[0]
    raise ModelFileError(f"{exp_dir}: no model weights (looked for {', '.join(CHECKPOINT_ORDER)})")


def _load_file(path: Path) -> dict:
    """Load a torch file (weights_only=True, CRC-checked) through csmvanet.checkpoint."""
    from csmvanet.checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path)
    except CheckpointError as e:
        raise ModelFileError(str(e)) from None


def _weights_of(obj: dict, path: Path) -> dict:
    """A plain state_dict, or the 'model' entry of a training checkpoint."""
    from csmvanet.checkpoint import CheckpointError, model_state

    try:
        return model_state(obj, path)
    except CheckpointError as e:
        raise ModelFileError(str(e)) from None


def load_model_files(path: str | Path, checkpoint: str | None = None) -> tuple[dict, dict, dict]:
    """(config, state_dict, metadata) of a packed model file, an experiment dir or a weights file."""
    path = Path(path)
    if path.is_dir():
        cfg_path = path / "config.yaml"
        if not cfg_path.is_file():
            raise ModelFileError(f"{path}: not an experiment dir (no config.yaml)")
        ckpt = find_checkpoint(path, checkpoint)
        config_text = cfg_path.read_text()
        state = _weights_of(_load_file(ckpt), ckpt)
        return _parse_config(config_text, cfg_path), state, {"exp_dir": str(path), "checkpoint": ckpt.name}
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file or experiment dir")
    obj = _load_file(path)
    if obj.get("format") == PACK_FORMAT:
        return _unpack(obj, path)
    cfg_path = path.parent / "config.yaml"
    if cfg_path.is_file():     # a weights file inside an experiment dir
        state = _weights_of(obj, path)
        return (_parse_config(cfg_path.read_text(), cfg_path), state,
                {"exp_dir": str(path.parent), "checkpoint": path.name})
    raise ModelFileError(f"{path}: neither a packed csmvanet model nor weights beside a config.yaml")


def _parse_config(text: str, where) -> dict:
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ModelFileError(f"{where}: config is not valid YAML ({_short(e)})") from None
    if not isinstance(cfg, dict):
        raise ModelFileError(f"{where}: config is not a mapping")
    return cfg


def _match_state(model, state: dict) -> tuple[list, list]:
    """(missing or mis-shaped names, unexpected names) of ``state`` for ``model``."""
    own = model.state_dict()
    bad = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
    return sorted(bad), sorted(set(state) - set(own))


def _few(names: list, n: int = 3) -> str:
    if not names:
        return "none"
    return ", ".join(names[:n]) + (f" (+{len(names) - n} more)" if len(names) > n else "")


def weights_digest(state: dict, config_text: str) -> str:
    """sha256 over the weights (sorted by name: name, dtype, shape, raw bytes) and the config text."""
    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(name.encode() + b"\0" + str(t.dtype).encode() + b"\0" + repr(tuple(t.shape)).encode() + b"\0")
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    h.update(config_text.encode())
    return h.hexdigest()


def _unpack(obj: dict, path: Path) -> tuple[dict, dict, dict]:
    version = obj.get("format_version")
    if version != PACK_VERSION:
        raise ModelFileError(f"{path}: packed model format version {version!r}; this csmvanet reads "
                             f"version {PACK_VERSION}")
    state, config_text, digest = obj.get("state_dict"), obj.get("config"), obj.get("sha256")
    if not isinstance(state, dict) or not isinstance(config_text, str) or not isinstance(digest, str):
        raise ModelFileError(f"{path}: packed model lacks state_dict, config or sha256")
    actual = weights_digest(state, config_text)
    if actual != digest:
        raise ModelFileError(f"{path}: checksum mismatch (stored sha256 {digest[:12]}..., computed "
                             f"{actual[:12]}...): the file is corrupt or was modified")
    return _parse_config(config_text, path), state, dict(obj.get("metadata") or {})


def _training_data(exp_dir: Path, cfg: dict) -> dict:
    """Training/validation data dirs as far as the experiment dir records them."""
    found: dict = {}
    for section in (cfg, cfg.get("data") if isinstance(cfg.get("data"), dict) else {}):
        for k, v in section.items():
            if isinstance(v, (str, int, float)) and ("train" in k or "valid" in k) and ("dir" in k or "scp" in k):
                found[k] = str(v)
    run_sh = exp_dir / "run.sh"
    if run_sh.is_file():
        toks = run_sh.read_text().replace("\\\n", " ").split()
        for i, tok in enumerate(toks[:-1]):
            if tok == "cd":
                found.setdefault("cwd", toks[i + 1].strip("'\""))
            elif tok in ("--train_dir", "--valid_dir"):
                found.setdefault(tok[2:], toks[i + 1].strip("'\""))
            elif tok.startswith(("--train_dir=", "--valid_dir=")):
                k, v = tok[2:].split("=", 1)
                found.setdefault(k, v.strip("'\""))
    return found


def _plain(obj):
    """Builtin str/int/float/bool/None, lists and dicts only (what weights_only=True loads without
    allow-listing; str subclasses such as torch's version string are turned into str)."""
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if isinstance(obj, (list, tuple)):
        return [_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    return str(obj)


def pack_model(exp_dir: str | Path, out_path: str | Path, checkpoint: str | None = None,
               extra_metadata: dict | None = None) -> dict:
    """Write one file holding config, weights, metadata and a sha256; returns the metadata.

    The file is ``torch.save`` of a dict of tensors and plain Python types (loads with
    ``weights_only=True``)::

        {"format": "csmvanet-packed-model", "format_version": 1,
         "config": <config.yaml text>, "state_dict": {name: tensor},
         "sha256": weights_digest(state_dict, config),
         "metadata": {sample_rate, num_parameters, csmvanet/torch/numpy/python versions, git_hash,
                      git_dirty, created (UTC ISO), exp_dir, checkpoint, training_data, ...}}
    """
    import torch

    import csmvanet

    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise ModelFileError(f"{exp_dir}: no such experiment dir")
    cfg_path = exp_dir / "config.yaml"
    if not cfg_path.is_file():
        raise ModelFileError(f"{exp_dir}: not an experiment dir (no config.yaml)")
    config_text = cfg_path.read_text()
    cfg = _parse_config(config_text, cfg_path)
    ckpt = find_checkpoint(exp_dir, checkpoint)
    raw = _load_file(ckpt)
    state = {k: v.detach().to("cpu").contiguous() for k, v in _weights_of(raw, ckpt).items()}
    from csmvanet.nets import build_model

    model = build_model(cfg)
    missing, unexpected = _match_state(model, state)
    if missing or unexpected:
        raise ModelFileError(f"{ckpt}: weights do not fit {cfg_path}: missing or of another shape "
                             f"{_few(missing)}; unexpected {_few(unexpected)}")
    from csmvanet.metrics.report import git_hash

    meta = {
        "sample_rate": int(model.stft_cfg.sample_rate),
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "csmvanet_version": csmvanet.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "git_hash": git_hash(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "exp_dir": str(exp_dir.resolve()),
        "checkpoint": ckpt.name,
        "training_data": _training_data(exp_dir, cfg),
    }
    info = {k: v for k, v in raw.items()       # what a wrapped checkpoint says about itself
            if isinstance(v, (str, int, float, bool)) and not isinstance(v, torch.Tensor)}
    if info:
        meta["checkpoint_info"] = _plain(info)
    meta.update(extra_metadata or {})
    packed = {"format": PACK_FORMAT, "format_version": PACK_VERSION, "config": config_text,
              "state_dict": state, "sha256": weights_digest(state, config_text), "metadata": _plain(meta)}
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        torch.save(packed, str(tmp))
    return meta


# --------------------------------------------------------------------------------------------------
# batches (csmvanet-enhance)


@dataclass
class BatchItem:
    key: str                 # utterance id (scp key, or the input's relative path without suffix)
    source: str              # path or scp value
    out_rel: str = ""        # output path relative to the output dir
    error: str | None = None  # a problem found while collecting the inputs


def _key_of(rel: Path) -> str:
    return "_".join(str(rel.with_suffix("")).split())


def collect_inputs(inputs: Iterable[str], wav_scp: str | None = None,
                   output_format: str | None = None) -> list[BatchItem]:
    """Inputs -> items with output names mirroring them.

    A file gives ``<name>``; a directory gives every ``*.wav``/``*.flac`` below it (recursive, sorted)
    as ``<path relative to the directory>``; ``wav_scp`` gives ``<utt>.wav``. The suffix becomes
    ``output_format`` if given, else stays ``.wav``/``.flac`` (other input suffixes give ``.wav``).
    Inputs that do not exist or clash with an earlier output name are items with ``error`` set.
    """
    from csmvanet.datadir import DataDirError, read_scp

    def out_name(rel: Path, default: str | None = None) -> str:
        suffix = rel.suffix.lower()
        fmt = output_format or default or (suffix[1:] if suffix in AUDIO_SUFFIXES else "wav")
        return str(rel.with_suffix(f".{fmt}") if rel.suffix else Path(f"{rel}.{fmt}"))

    items: list[BatchItem] = []
    for inp in inputs:
        p = Path(inp)
        if p.is_dir():
            found = sorted((f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES and not f.is_dir()),
                           key=lambda f: str(f))
            if not found:
                items.append(BatchItem(str(p), str(p), error=f"{p}: folder holds no .wav or .flac files"))
            for f in found:
                rel = f.relative_to(p)
                items.append(BatchItem(_key_of(rel), str(f), out_name(rel)))
        elif p.exists() or p.is_symlink():
            items.append(BatchItem(_key_of(Path(p.name)), str(p), out_name(Path(p.name))))
        else:
            items.append(BatchItem(str(p), str(p), error=f"{p}: no such file or folder"))
    if wav_scp:
        try:
            entries = read_scp(wav_scp)
        except (DataDirError, OSError) as e:
            items.append(BatchItem(str(wav_scp), str(wav_scp), error=str(e)))
            entries = {}
        for key, value in entries.items():
            items.append(BatchItem(key, value, out_name(Path(key), "wav") if not output_format
                                   else f"{key}.{output_format}"))
    seen_out: dict[str, str] = {}
    seen_key: dict[str, str] = {}
    for it in items:
        if it.error:
            continue
        if it.out_rel in seen_out:
            it.error = f"{it.source}: output name {it.out_rel} already used by {seen_out[it.out_rel]}"
        elif it.key in seen_key:
            it.error = f"{it.source}: utterance id {it.key} already used by {seen_key[it.key]}"
        else:
            seen_out[it.out_rel] = it.source
            seen_key[it.key] = it.source
    return items


@dataclass
class BatchReport:
    done: list = field(default_factory=list)      # (key, output path)
    failed: list = field(default_factory=list)    # one-line messages, each naming its input
    audio_seconds: float = 0.0
    seconds: float = 0.0


def _one_line(source: str, e: BaseException) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    if not isinstance(e, (EnhanceError, AudioError)):
        msg = f"{type(e).__name__}: {msg}"
    return msg if source in msg else f"{source}: {msg}"


def enhance_batch(enhancer: Enhancer, items: list[BatchItem], output_dir: str | Path, *,
                  out_scp: str | Path | None = None, vad_dir: str | Path | None = None,
                  channels: str = "each", subtype: str = "PCM_16", vad_threshold: float = 0.5,
                  min_speech: float = 0.25, min_silence: float = 0.1, progress: bool = True,
                  report: Callable[[str], None] | None = None) -> BatchReport:
    """Enhance every item into ``output_dir``; a failing item is reported in one line and skipped.

    ``vad_dir`` receives ``vad_prob.ark``/``vad_prob.scp`` (kaldiio float32 vector per utterance, at
    the model's frame rate; multi-channel: the maximum over channels), ``segments`` (Kaldi) and
    ``vad.rttm``. ``out_scp`` lists ``key path`` of the outputs written. Every file appears complete
    or not at all.
    """
    import contextlib
    import time

    import kaldiio
    from tqdm import tqdm

    from csmvanet.datadir import write_scp
    from csmvanet.vad import probs_to_segments, write_rttm, write_segments

    output_dir = Path(output_dir)
    rep = BatchReport()
    say = report or (lambda line: tqdm.write(line, file=sys.stderr))
    t0 = time.perf_counter()
    segments: dict[str, list] = {}
    vad_index: dict[str, str] = {}
    no_vad_said = False
    with contextlib.ExitStack() as stack:
        ark = None
        if vad_dir is not None:
            vad_dir = Path(vad_dir)
            ark_path = vad_dir / "vad_prob.ark"
            ark = stack.enter_context(open(stack.enter_context(atomic_path(ark_path)), "wb"))
        bar = tqdm(items, desc="enhance", unit="file", file=sys.stderr, disable=not progress,
                   dynamic_ncols=True)
        for it in bar:
            if it.error:
                rep.failed.append(it.error)
                say(f"ERROR {it.error}")
                continue
            out_path = output_dir / it.out_rel
            try:
                if Path(it.source).exists() and out_path.resolve() == Path(it.source).resolve():
                    raise EnhanceError(f"{it.source}: output would overwrite the input")
                res = enhancer.enhance_file(it.source, out_path, channels=channels, subtype=subtype)
            except KeyboardInterrupt:
                raise
            except Exception as e:   # one line per bad input; the batch goes on
                rep.failed.append(_one_line(it.source, e))
                say(f"ERROR {rep.failed[-1]}")
                continue
            rep.done.append((it.key, str(out_path)))
            rep.audio_seconds += res.num_samples / res.sample_rate
            if ark is not None:
                if res.vad is None:
                    if not no_vad_said:
                        say("WARNING: the model has no VAD decoder; no VAD outputs")
                        no_vad_said = True
                    continue
                vad = res.vad.max(axis=1).astype(np.float32)
                pos = ark.tell()
                kaldiio.save_ark(ark, {it.key: vad})
                vad_index[it.key] = f"{ark_path}:{pos + len(it.key.encode()) + 1}"
                num_model = int(round(res.num_samples * enhancer.sample_rate / res.sample_rate))
                segments[it.key] = probs_to_segments(vad, enhancer.stft_cfg, threshold=vad_threshold,
                                                     min_speech=min_speech, min_silence=min_silence,
                                                     num_samples=num_model)
    if vad_dir is not None:
        write_scp(vad_dir / "vad_prob.scp", vad_index)
        write_segments(vad_dir / "segments", segments)
        write_rttm(vad_dir / "vad.rttm", segments)
    if out_scp is not None:
        write_scp(out_scp, dict(rep.done))
    rep.seconds = time.perf_counter() - t0
    return rep


def _short(e: Exception) -> str:
    s = str(e).strip()
    return s.splitlines()[-1] if s else type(e).__name__


__all__ = ["BatchItem", "BatchReport", "CHECKPOINT_ORDER", "ChunkStitcher", "EnhanceError", "Enhancer",
           "ModelFileError", "StreamResult", "collect_inputs", "enhance_batch", "find_checkpoint", "load_model_files",
           "pack_model", "soft_limit", "weights_digest"]
