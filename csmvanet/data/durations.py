"""Durations of utterances in seconds (utils/data/get_utt2dur.sh; the segments combine_data.sh makes)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from csmvanet.data.datadir import DataDirError, read_scp, read_segments


def positive_number(value: str) -> bool:
    """One number > 0 (Kaldi's test for utt2dur and reco2dur values)."""
    try:
        return len(value.split()) == 1 and float(value) > 0
    except ValueError:
        return False


def audio_seconds(data_dir: Path, name: str, key: str, value: str) -> str:
    """Seconds of the audio of scp entry ``value`` (header; a pipe is run), exact for the sample count."""
    from csmvanet.audio.io import AudioError, audio_info

    try:
        sr, frames, _ = audio_info(value)
    except AudioError as e:
        raise DataDirError(f"{data_dir / name}: key '{key}': {e} (needed for its duration)") from None
    return repr(frames / sr)


def durations_without_segments(data_dir: Path, utts: Sequence[str], utt2dur: Mapping[str, str],
                               wav: Mapping[str, str]) -> dict[str, str]:
    """{utt: seconds} of a dir whose wav.scp is keyed by utterance: utt2dur's value when it is one
    positive number, else the length in wav.scp's header."""
    out: dict[str, str] = {}
    for u in utts:
        if positive_number(utt2dur.get(u, "")):
            out[u] = utt2dur[u]
        elif u in wav:
            out[u] = audio_seconds(data_dir, "wav.scp", u, wav[u])
        else:
            raise DataDirError(f"{data_dir / 'wav.scp'}: key '{u}' is missing (no utt2dur either): its "
                               "duration is unknown; nothing written")
    return out


def compute_utt2dur(data_dir: str | Path, frame_shift: float = 0.01) -> tuple[dict[str, str], str]:
    """utt2dur of a data dir as Kaldi's get_utt2dur.sh finds it: from segments (end - start), else
    from frame_shift and utt2num_frames ((frames + 1.5) * shift), else from wav.scp's headers.
    Returns ({utt: seconds}, where they came from)."""
    d = Path(data_dir)
    if (d / "segments").is_file() and (d / "segments").stat().st_size:
        segs = read_segments(d / "segments")
        wav = read_scp(d / "wav.scp") if any(e == -1 for _, _, e in segs.values()) else {}
        out = {}
        for u, (reco, start, end) in segs.items():
            if end == -1:
                end = float(audio_seconds(d, "wav.scp", reco, wav.get(reco, reco)))
            out[u] = f"{end - start:.6g}"
        return out, f"{d / 'segments'}"
    if (d / "frame_shift").is_file() and (d / "utt2num_frames").is_file():
        shift = float((d / "frame_shift").read_text().split()[0])
        return ({u: f"{(int(n) + 1.5) * shift:.6g}" for u, n in read_scp(d / "utt2num_frames").items()},
                f"{d / 'frame_shift'} and {d / 'utt2num_frames'}")
    if (d / "wav.scp").is_file():
        wav = read_scp(d / "wav.scp")
        return durations_without_segments(d, list(wav), {}, wav), f"the audio headers of {d / 'wav.scp'}"
    raise DataDirError(f"{d}: needs wav.scp, segments or utt2num_frames with frame_shift to find durations")
