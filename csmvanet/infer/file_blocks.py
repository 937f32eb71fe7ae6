"""Audio files read in blocks for the Enhancer: a path, a Kaldi scp value (pipe, ark offset) or a segment.

:class:`FileBlocks` opens the source and yields ``[n, C]`` float32 blocks of :data:`READ_BLOCK` samples
(a Kaldi segment or an scp entry that is not a plain file is read whole: only its samples);
:func:`input_scale` is the factor an input above full scale is divided by before the network.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from csmvanet.audio.io import AudioError, _is_ark_entry, check_complete, read_audio, unreadable_error
from csmvanet.base.errors import last_line
from csmvanet.data.utt_audio import UttAudio, read_utterance

READ_BLOCK = 65536            # samples per read/resample block


class FileBlocks:
    """Context manager: (sample rate, channels, iterator of [n, C] float32 blocks) of a path or scp value."""

    def __init__(self, source):
        self.segment = source if isinstance(source, UttAudio) and not source.whole else None
        self.src = str(source.source if isinstance(source, UttAudio) else source).strip()
        self.file = None
        self.data = None

    def peak(self) -> float:
        """Largest |sample| (0 where NaN/Inf are present: the stream reports those). Only float
        files can exceed full scale, so only those are read twice."""
        if self.data is None and self.file.subtype not in ("FLOAT", "DOUBLE", "VORBIS", "OPUS", "MPEG_LAYER_III"):
            return 0.0
        blocks = [self.data] if self.data is not None else self._blocks()
        peak = 0.0
        for b in blocks:
            if b.size:
                m = float(np.max(np.abs(b)))
                if not np.isfinite(m):
                    peak = 0.0
                    break
                peak = max(peak, m)
        if self.file is not None:
            self.file.seek(0)
        return peak

    def __enter__(self):
        src = self.src
        if self.segment is not None:                              # a segment: only its samples, in memory
            data, sr = read_utterance(self.segment, always_2d=True)
            self.data = data
            return sr, data.shape[1], (data[i:i + READ_BLOCK] for i in range(0, max(len(data), 1), READ_BLOCK))
        if src.endswith("|") or _is_ark_entry(src):
            data, sr = read_audio(src, always_2d=True)           # pipes and ark entries: in memory
            self.data = data
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
        check_complete(path)
        try:
            self.file = sf.SoundFile(str(path).encode(errors="surrogateescape"), "r")
        except (sf.LibsndfileError, RuntimeError, TypeError, OSError) as e:
            raise unreadable_error(src, e) from None
        if self.file.frames == 0:
            raise AudioError(f"{src}: no samples (the audio holds 0 frames)")
        return self.file.samplerate, self.file.channels, self._blocks()

    def _blocks(self):
        while True:
            try:
                block = self.file.read(READ_BLOCK, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as e:
                raise AudioError(f"{self.src}: read error ({last_line(e)})") from None
            if len(block) == 0:
                return
            yield block

    def __exit__(self, *exc):
        if self.file is not None:
            self.file.close()
        return False


def input_scale(peak: float) -> float:
    """The factor an input is divided by before the network: its peak when above full scale, else 1."""
    return peak if peak > 1.0 else 1.0


__all__ = ["READ_BLOCK", "FileBlocks", "input_scale"]
