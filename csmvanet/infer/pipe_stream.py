"""``csmvanet-enhance --stream IN OUT``: a causal model between pipes, sample by sample as they come.

    arecord -f S16_LE -r 16000 -c 1 -t raw | csmvanet-enhance --model M --stream - - --raw_rate 16000 | aplay ...
    cat x.wav | csmvanet-enhance --model M --stream - - > y.wav
    sox x.flac -t wav - | csmvanet-enhance --model M --stream - - --vad_events vad.txt | sox -t wav - y.flac

Input: a WAV stream (``RIFF`` first; PCM 8/16/24/32 bit or 32/64-bit float, WAVE_FORMAT_EXTENSIBLE
too; a data size of 0 or 0xFFFFFFFF, as sox, ffmpeg and arecord write to pipes, means "until the
end") or raw PCM (``--raw_rate``, ``--raw_format`` s16le/s24le/s32le/f32le, ``--raw_channels``);
``--stream_format auto`` takes WAV when the input starts with ``RIFF``. Output: WAV in gives WAV out
(the header first, sizes 0xFFFFFFFF as pipes allow; a regular output file gets the real sizes at the
end); raw in gives raw out; the sample format and rate of the input. Samples are decoded and encoded
by libsndfile (soundfile), as file mode does, and go through
:meth:`csmvanet.infer.enhancer.Enhancer.enhance_stream` (resampling to the model's rate and back when
the rate differs, the soft limiter), so the output equals file mode of the same model sample for
sample. What is read is processed at once (``read1``): a live source gets its output after the
model's latency (:mod:`csmvanet.infer.streaming`).

VAD events (``--vad_events FILE`` or ``stderr``): a line ``speech_start T`` when a frame's speech
probability (the maximum over channels) reaches the threshold after frames below it, ``speech_end T``
when it falls below again or the input ends; ``T`` in seconds of the input (frame centres; a frame
per hop, 6.25 ms at 16 kHz with hop 100), written as each frame is computed. No smoothing (it would cost latency).
"""
from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf

from csmvanet.base.errors import EnhanceError

RAW_FORMATS = {"s16le": "PCM_16", "s24le": "PCM_24", "s32le": "PCM_32", "f32le": "FLOAT"}
_WIDTH = {"PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
_UNKNOWN = 0xFFFFFFFF
READ = 1 << 16


def _exact(inp, n: int, what: str) -> bytes:
    b = inp.read(n)
    if len(b) != n:
        raise EnhanceError(f"standard input: WAV header cut short ({what})")
    return b


def read_wav_header(inp, first: bytes = b"") -> tuple[int, int, str, int | None]:
    """(rate, channels, soundfile subtype, data bytes or None: until the end) of a WAV stream whose
    first bytes (``first``, already read) and the rest of the header come from ``inp``; afterwards
    ``inp`` is at the first sample."""
    head = first + _exact(inp, 12 - len(first), "RIFF")
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise EnhanceError("standard input: not a WAV stream (no RIFF/WAVE header)")
    fmt = None
    while True:
        cid, size = struct.unpack("<4sI", _exact(inp, 8, "chunk"))
        if cid == b"data":
            if fmt is None:
                raise EnhanceError("standard input: WAV data before its fmt chunk")
            return (*fmt, None if size in (0, _UNKNOWN) else size)
        if size == _UNKNOWN:
            raise EnhanceError(f"standard input: WAV chunk {cid!r} of unknown size before the data")
        body = _exact(inp, size + (size & 1), cid.decode("latin-1"))
        if cid == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == 0xFFFE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]          # the sub-format GUID's first field
            subtype = {(1, 8): "PCM_U8", (1, 16): "PCM_16", (1, 24): "PCM_24", (1, 32): "PCM_32",
                       (3, 32): "FLOAT", (3, 64): "DOUBLE"}.get((tag, bits))
            if subtype is None or channels < 1 or rate < 1:
                raise EnhanceError(f"standard input: unsupported WAV format (tag {tag}, {bits} bit, "
                                   f"{channels} channel(s), {rate} Hz)")
            fmt = (rate, channels, subtype)


def wav_header(rate: int, channels: int, subtype: str, data_bytes: int | None = None) -> bytes:
    """A 44-byte WAV header; ``data_bytes=None``: sizes 0xFFFFFFFF (unknown, a stream)."""
    width = _WIDTH[subtype]
    tag = 3 if subtype in ("FLOAT", "DOUBLE") else 1
    data = _UNKNOWN if data_bytes is None else data_bytes
    riff = _UNKNOWN if data_bytes is None else 36 + data_bytes
    return (struct.pack("<4sI4s", b"RIFF", riff, b"WAVE")
            + struct.pack("<4sIHHIIHH", b"fmt ", 16, tag, channels, rate, rate * channels * width,
                          channels * width, 8 * width)
            + struct.pack("<4sI", b"data", data))


class VadEvents:
    """speech_start / speech_end lines from VAD frames as they come (see the module doc)."""

    def __init__(self, write, threshold: float, frame_seconds: float):
        self.write, self.threshold, self.frame_seconds = write, threshold, frame_seconds
        self.frames, self.speech = 0, False

    def __call__(self, v: np.ndarray) -> None:
        for p in np.asarray(v).max(axis=1):
            speech = bool(p >= self.threshold)
            if speech != self.speech:
                self.write(f"speech_{'start' if speech else 'end'} {self.frames * self.frame_seconds:.3f}\n")
                self.speech = speech
            self.frames += 1

    def close(self) -> None:
        if self.speech:
            self.write(f"speech_end {self.frames * self.frame_seconds:.3f}\n")
            self.speech = False


def _blocks(inp, rate: int, channels: int, subtype: str, first: bytes, limit: int | None):
    """Float32 ``[n, channels]`` blocks decoded by libsndfile from what ``inp`` gives, as it gives it
    (``first``: bytes already read; ``limit``: bytes of the data, None: until the end). A partial
    sample frame at the end is dropped, as libsndfile drops it."""
    frame = channels * _WIDTH[subtype]

    def decode(data: bytes) -> np.ndarray:
        return sf.read(io.BytesIO(data), samplerate=rate, channels=channels, format="RAW", subtype=subtype,
                       dtype="float32", always_2d=True)[0]

    rest, left = first, limit
    while left is None or left > 0:
        want = READ if left is None else min(READ, left)
        data = inp.read1(want) if hasattr(inp, "read1") else inp.read(want)
        if not data:
            break
        if left is not None:
            left -= len(data)
        data = rest + data
        n = len(data) // frame * frame
        rest = data[n:]
        if n:
            yield decode(data[:n])
    n = len(rest) // frame * frame
    if n:
        yield decode(rest[:n])


def run_pipe(enh, inp, out, *, stream_format: str = "auto", raw_rate: int = 16000, raw_format: str = "s16le",
             raw_channels: int = 1, channels: str = "each", vad_events=None) -> int:
    """Enhance the audio of the binary stream ``inp`` into ``out`` as it comes; returns the number
    of input samples (per channel). ``vad_events``: a text writer for the VAD event lines, or None."""
    if not getattr(enh.model, "causal", False):
        raise EnhanceError(f"{enh.source or 'model'}: --stream needs a causal model (model.causal: true); "
                           "this one looks at whole segments")
    first = inp.read(4) if stream_format != "raw" else b""
    wav = stream_format == "wav" or (stream_format == "auto" and first == b"RIFF")
    if wav:
        rate, nch, subtype, size = read_wav_header(inp, first)
        first = b""
    else:
        rate, nch, subtype, size = raw_rate, raw_channels, RAW_FORMATS[raw_format], None
    c_out = 1 if channels == "mix" else nch
    seekable = False
    if wav:
        try:
            seekable = out.seekable()
        except (AttributeError, OSError, ValueError):
            pass
        start = out.tell() if seekable else 0
        out.write(wav_header(rate, c_out, subtype))
        out.flush()
    events = None
    if vad_events is not None and enh.model.vad is not None:
        def say(line):
            vad_events.write(line)
            vad_events.flush()
        events = VadEvents(say, enh.vad_threshold, enh.stft_cfg.hop_length / enh.sample_rate)
    written = 0
    blocks = _blocks(inp, rate, nch, subtype, first, size)
    for y in enh.enhance_stream(blocks, rate, channels=channels, name="standard input", on_vad=events):
        buf = io.BytesIO()
        sf.write(buf, y, rate, format="RAW", subtype=subtype)
        data = buf.getvalue()
        out.write(data)
        out.flush()
        written += len(data)
    if events is not None:
        events.close()
    if wav and seekable:
        out.seek(start)
        out.write(wav_header(rate, c_out, subtype, written))
        out.seek(start + 44 + written)
        out.flush()
    return written // (c_out * _WIDTH[subtype])


def stream_paths(enh, src: str, dst: str, *, vad_events: str | None = None, say=print, **options) -> int:
    """:func:`run_pipe` from ``src`` to ``dst`` (paths, ``-``: standard input/output), VAD events to
    the file ``vad_events`` (or ``stderr``); errors as one line through ``say``. Returns the exit
    status: 0, or 1 after an error (what was written stays: a pipe cannot take it back)."""
    import sys
    from contextlib import nullcontext

    def opened(path, mode, std):        # "-" (or "stderr", or no path): the standard stream given
        return nullcontext(std) if path in ("-", "stderr", None) else open(path, mode)

    try:
        with opened(src, "rb", sys.stdin.buffer) as inp, opened(dst, "wb", sys.stdout.buffer) as out, \
                opened(vad_events, "w", sys.stderr if vad_events in ("-", "stderr") else None) as events:
            n = run_pipe(enh, inp, out, vad_events=events, **options)
    except BrokenPipeError:
        say("the output pipe was closed; stopped")
        return 1
    except (EnhanceError, ValueError, OSError) as e:
        say(f"error: {e}")
        return 1
    say(f"streamed {n} samples")
    return 0
