"""Audio I/O (soundfile), resampling (soxr) and Kaldi scp entries (paths, pipes, ark offsets)."""
from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from csmvanet.base.atomic_files import atomic_path, remove_stale_temps
from csmvanet.base.interrupts import Interrupted, signals_deferred
from csmvanet.base.keys import RULE as KEY_RULE, key_problem
from csmvanet.base.pipes import PipeError, run_pipe
from csmvanet.base.process_pool import run_jobs


class AudioError(ValueError):
    """An audio file or scp entry that cannot be used; the message names it and the problem."""


def read_audio(source: str | Path, *, always_2d: bool = False) -> tuple[np.ndarray, int]:
    """Read a file path or a Kaldi scp value -> (float32 samples [N] or [N, C], sample rate).

    Accepted scp values: a path (any format soundfile reads: wav, flac, ...), a command ending with
    ``|`` whose standard output is an audio file (``sox x.wav -t wav - |``), and ``file.ark:offset``.
    """
    src = str(source).strip()
    if src.endswith("|"):
        data, sr = _read_pipe(src[:-1].strip())
    elif _is_ark_entry(src):
        data, sr = _read_ark(src)
    else:
        path = Path(src)
        if not path.exists():
            raise AudioError(f"{src}: no such file")
        if path.is_dir():
            raise AudioError(f"{src}: is a folder, not an audio file")
        if path.stat().st_size == 0:
            raise AudioError(f"{src}: empty file")
        check_complete(path)
        try:
            data, sr = sf.read(os.fsencode(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError) as e:
            raise unreadable_error(src, e) from None
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    if not always_2d and data.shape[1] == 1:
        data = data[:, 0]
    return data, int(sr)


def audio_info(source: str | Path) -> tuple[int, int, int]:
    """(sample rate, frames, channels) of a path without reading the samples; scp pipes are read."""
    src = str(source).strip()
    if src.endswith("|") or _is_ark_entry(src):
        data, sr = read_audio(src, always_2d=True)
        return sr, data.shape[0], data.shape[1]
    try:
        info = sf.info(os.fsencode(src))  # bytes: names that are not UTF-8 open too, as in Kaldi
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        if not Path(src).exists():
            raise AudioError(f"{src}: no such file") from None
        raise unreadable_error(src, e) from None
    check_complete(src)
    return int(info.samplerate), int(info.frames), int(info.channels)


_UNKNOWN_DATA_SIZES = (0, 0xFFFFFFFF, 0x7FFFF000)  # streamed WAVs (sox/ffmpeg to a pipe) leave the size open


def wav_shortfall(path: str | Path) -> tuple[int, int] | None:
    """(frames the header announces, frames the file holds) of a RIFF/WAVE file cut short, else None.

    libsndfile reads such a file without complaint and returns the shorter audio; this checks the
    data chunk's declared size against the bytes present. Not a WAV, or a size left open by a
    streaming writer: None."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            size = os.fstat(f.fileno()).st_size
            pos, block_align = 12, 0
            while pos + 8 <= size:
                f.seek(pos)
                cid, clen = struct.unpack("<4sI", f.read(8))
                if cid == b"fmt " and clen >= 14:
                    block_align = struct.unpack("<H", f.read(14)[12:14])[0]
                elif cid == b"data":
                    have = size - pos - 8
                    if clen in _UNKNOWN_DATA_SIZES or have >= clen or block_align <= 0:
                        return None
                    return clen // block_align, have // block_align
                pos += 8 + clen + (clen & 1)
    except (OSError, struct.error):
        return None
    return None


def check_complete(path: str | Path) -> None:
    """Raise :class:`AudioError` when ``path`` is a WAV whose data chunk is cut short."""
    short = wav_shortfall(path)
    if short is not None:
        raise AudioError(f"{path}: truncated WAV: the header announces {short[0]} samples, the file "
                         f"holds {short[1]} (an interrupted copy or download?)")


def write_audio(path: str | Path, wave: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
    """Write [N] or [N, C] samples atomically (temporary name, then rename). Format from the suffix."""
    path = Path(path)
    fmt = {".wav": "WAV", ".flac": "FLAC"}.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path}: unsupported output format {path.suffix!r} (use .wav or .flac)")
    if subtype is None:
        subtype = "PCM_16"
    wave = np.asarray(wave)
    # Encode in memory, then write the bytes: soundfile's close() forces each file to disk
    # (sf_write_sync), which costs more than the encoding itself when writing many small files.
    buf = io.BytesIO()
    with signals_deferred():  # libsndfile calls back into Python to write to buf
        sf.write(buf, wave, int(sample_rate), subtype=subtype, format=fmt)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(buf.getvalue())


def resample(wave: np.ndarray, sr_in: int, sr_out: int, quality: str = "VHQ") -> np.ndarray:
    """Resample along the first axis with soxr (very high quality by default)."""
    if sr_in == sr_out:
        return np.asarray(wave, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(wave, dtype=np.float32), sr_in, sr_out, quality=quality).astype(np.float32)


def _is_ark_entry(src: str) -> bool:
    head, sep, tail = src.rpartition(":")
    return bool(sep) and tail.isdigit() and head.endswith(".ark")


def _read_pipe(cmd: str) -> tuple[np.ndarray, int]:
    try:
        stdout = run_pipe(cmd)
    except PipeError as e:
        raise AudioError(f"'{cmd} |': {e}") from None
    try:
        with signals_deferred():  # libsndfile calls back into Python to read the bytes
            return sf.read(io.BytesIO(stdout), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(f"'{cmd} |': output is not readable audio ({_short(e)})") from None


def _read_ark(src: str) -> tuple[np.ndarray, int]:
    import kaldiio

    try:
        obj = kaldiio.load_mat(src)
    except Exception as e:  # kaldiio raises many types
        raise AudioError(f"{src}: cannot read ark entry ({_short(e)})") from None
    if isinstance(obj, tuple):
        sr, data = obj
        data = np.asarray(data)
        if data.dtype == np.int16:
            data = data.astype(np.float32) / 32768.0
        return data.astype(np.float32), int(sr)
    raise AudioError(f"{src}: ark entry holds a matrix, not audio with a sample rate")


def unreadable_error(src: str, e: Exception) -> AudioError:
    """The error for a file libsndfile cannot open: the system's reason when the file cannot be opened
    at all (permission denied, ...; libsndfile says only "System error."), else libsndfile's words."""
    try:
        with open(src, "rb"):
            pass
    except OSError as oe:
        return AudioError(f"{src}: cannot open the file ({(oe.strerror or type(oe).__name__).lower()})")
    return AudioError(f"{src}: cannot read audio ({_short(e)})")


def _short(e: Exception) -> str:
    return str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__


# ---------------------------------------------------------------------------------------------
# Batch resampling of an scp list (csmvanet-resample)
# ---------------------------------------------------------------------------------------------

_PCM16_MAX = 32767.0 / 32768.0


def _resample_one(args) -> tuple[str, str | None, int, bool, str | None]:
    """(key, output path or None, output samples, clipped?, error or None) for one scp entry."""
    key, value, out_dir, sr_out, subtype, list_name, fmt = args
    try:
        problem = key_problem(key)
        if problem is not None:
            raise AudioError(f"invalid key for a file name: {problem} (ids must have {KEY_RULE})")
        wave, sr = read_audio(value)
        if wave.shape[0] == 0:
            raise AudioError(f"{value}: zero samples")
        out = resample(wave, sr, sr_out)
        clipped = False
        if subtype == "PCM_16":
            peak = float(np.max(np.abs(out))) if out.size else 0.0
            if peak > _PCM16_MAX:  # soxr's filter can overshoot; never let 16-bit samples wrap
                np.clip(out, -1.0, _PCM16_MAX, out=out)
                clipped = True
        path = str(Path(out_dir) / f"{key}.{fmt}")
        write_audio(path, out, sr_out, subtype=subtype)
        return key, path, int(out.shape[0]), clipped, None
    except (AudioError, OSError, ValueError) as e:
        return key, None, 0, False, f"{list_name}: key '{key}': {e}" if list_name else f"{key}: {e}"


def resample_scp(entries, out_dir: str | Path, sr_out: int, *, nj: int = 1, subtype: str = "PCM_16",
                 progress: bool = True, list_name: str | None = None, audio_format: str = "wav"):
    """Resample every entry of an scp mapping ``{key: scp value}`` to ``sr_out`` (soxr VHQ) into
    ``out_dir/<key>.<audio_format>`` (wav, or flac with PCM_16; written atomically), in ``nj`` processes.

    Returns ``(paths, num_samples, failures, clipped)``: ``{key: output path}`` and ``{key: samples}``
    for the entries that worked, one line per failed entry (naming key and file; with ``list_name``
    the list too), and the keys whose
    resampled samples exceeded the 16-bit range and were clipped. Output bytes do not depend on ``nj``.
    """
    from tqdm import tqdm

    if subtype not in ("PCM_16", "FLOAT"):
        raise ValueError(f"subtype must be PCM_16 or FLOAT, got {subtype!r}")
    if audio_format not in ("wav", "flac") or (audio_format == "flac" and subtype == "FLOAT"):
        raise ValueError(f"audio format {audio_format!r} with {subtype}: wav (PCM_16 or FLOAT) or flac (PCM_16)")
    if int(sr_out) <= 0:
        raise ValueError(f"target sample rate must be positive, got {sr_out}")
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(k, v, str(out_dir), int(sr_out), subtype, list_name, audio_format) for k, v in entries.items()]
    paths: dict[str, str] = {}
    num_samples: dict[str, int] = {}
    failures: list[str] = []
    clipped: list[str] = []
    nj = max(1, min(int(nj), len(jobs) or 1))
    bar = tqdm(total=len(jobs), desc=f"resampling to {sr_out} Hz", unit="file", disable=not progress)
    results = run_jobs(_resample_one, jobs, nj, chunksize=max(1, min(32, len(jobs) // (4 * nj) or 1)),
                       describe=lambda job: f"entry {job[0]} ({job[1]})")
    try:
        for key, path, n, clip, err in results:
            if err is not None:
                failures.append(err)
            else:
                paths[key], num_samples[key] = path, n
                if clip:
                    clipped.append(key)
            bar.update(1)
    except Interrupted as e:
        results.close()              # workers stopped (they remove their own temporary files)
        remove_stale_temps(out_dir)  # and whatever a worker killed harder left
        e.finished = e.finished or f"resampled {len(paths)} of {len(jobs)} entries into {out_dir}"
        raise
    finally:
        results.close()
        bar.close()
    return paths, num_samples, failures, clipped
