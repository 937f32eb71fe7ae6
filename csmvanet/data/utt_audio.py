"""Per-utterance audio of a data dir, through Kaldi ``segments`` when there are any.

Without ``segments`` an audio list (wav.scp, spk1.scp, ...) is keyed by utterance and each value is
the whole utterance. With ``segments`` (``utt reco start end``, seconds, end -1 = to the end) the
audio lists are keyed by recording and an utterance is the samples ``round(start*sr)`` to
``round(end*sr)`` of its recording; an end up to 0.5 s past the recording is cut at its end (as
Kaldi's extract-segments allows), further is an error.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, NamedTuple

import numpy as np

from csmvanet.audio.io import AudioError, _is_ark_entry, audio_info, read_audio
from csmvanet.data.datadir import DataDirError, read_scp, read_segments

MAX_OVERSHOOT = 0.5  # seconds a segment may end past its recording


class UttAudio(NamedTuple):
    """One utterance's audio: an scp value and the part of it (seconds; end -1 = to the end)."""
    source: str
    start: float = 0.0
    end: float = -1.0

    @property
    def whole(self) -> bool:
        return self.start == 0.0 and self.end == -1.0

    def describe(self) -> str:
        return self.source if self.whole else f"{self.source} [{self.start:g}s, {self.end:g}s]"


def utterance_audio(data_dir: str | Path, name: str = "wav.scp") -> dict[str, UttAudio]:
    """{utterance: UttAudio} of the audio list ``name`` of a data dir, through its segments file."""
    d = Path(data_dir)
    table = read_scp(d / name)
    if not (d / "segments").is_file():
        return {k: UttAudio(v) for k, v in table.items()}
    out, problems = segment_audio(table, read_segments(d / "segments"), d / "segments", d / name)
    if problems:
        raise DataDirError(next(iter(problems.values())))
    return out


def segment_audio(table: Mapping[str, str], segments: Mapping[str, tuple[str, float, float]],
                  segments_name: str | Path = "segments", table_name: str | Path = "wav.scp",
                  ) -> tuple[dict[str, UttAudio], dict[str, str]]:
    """Audio list keyed by recording + segments -> ({utterance: UttAudio}, {utterance: problem}).

    An utterance whose recording is not in ``table`` is left out of the first dict and gets a
    one-line problem naming it, the recording and both files."""
    out: dict[str, UttAudio] = {}
    problems: dict[str, str] = {}
    for utt, (reco, start, end) in segments.items():
        if reco in table:
            out[utt] = UttAudio(table[reco], start, end)
        else:
            problems[utt] = f"{segments_name}: utterance '{utt}': recording '{reco}' is not in {table_name}"
    return out, problems


def _span(audio: UttAudio, sr: int, total: int) -> tuple[int, int]:
    first = int(round(audio.start * sr))
    last = total if audio.end == -1 else int(round(audio.end * sr))
    if last > total:
        if last - total > MAX_OVERSHOOT * sr:
            raise AudioError(f"{audio.describe()}: segment ends {(last - total) / sr:.3f} s after the "
                             f"recording ({total / sr:.3f} s)")
        last = total
    if first >= last:
        raise AudioError(f"{audio.describe()}: segment is empty (recording has {total / sr:.3f} s)")
    return first, last


def read_utterance(audio: UttAudio, *, always_2d: bool = False) -> tuple[np.ndarray, int]:
    """(samples, sample rate) of one utterance; reads only the segment from plain files."""
    if audio.whole:
        return read_audio(audio.source, always_2d=always_2d)
    src = audio.source.strip()
    if src.endswith("|") or _is_ark_entry(src):
        wave, sr = read_audio(src, always_2d=True)
        first, last = _span(audio, sr, wave.shape[0])
        wave = wave[first:last]
    else:
        import soundfile as sf

        sr, total, _ = audio_info(src)
        first, last = _span(audio, sr, total)
        try:
            wave, _ = sf.read(os.fsencode(src), start=first, stop=last, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AudioError(f"{audio.describe()}: cannot read audio ({e})") from None
    if not always_2d and wave.shape[1] == 1:
        wave = wave[:, 0]
    return np.ascontiguousarray(wave, dtype=np.float32), int(sr)


def utterance_info(audio: UttAudio) -> tuple[int, int, int]:
    """(sample rate, samples, channels) of one utterance without reading plain files."""
    sr, total, channels = audio_info(audio.source)
    if audio.whole:
        return sr, total, channels
    first, last = _span(audio, sr, total)
    return sr, last - first, channels
