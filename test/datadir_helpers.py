"""Builds small Kaldi-style data dirs for the tests of utils/ and csmvanet.data.datadir."""
from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np
import soundfile as sf

from csmvanet.audio.stft import STFTConfig


def make_data_dir(root: Path, *, num_utts: int = 6, num_spk: int = 2, sample_rate: int = 16000,
                  seconds: float = 0.25, with_vad: bool = True) -> Path:
    """A valid data dir under ``root/data``: wav.scp, spk1.scp, utt2spk, spk2utt, utt2num_samples,
    utt2snr, and vad_labels.ark/vad_labels.scp (int32 labels, one per STFT frame) with frame_shift.
    Audio in ``root/audio``."""
    rng = np.random.default_rng(0)
    data, audio = root / "data", root / "audio"
    data.mkdir(parents=True)
    audio.mkdir()
    cfg = STFTConfig()
    wav, spk1, utt2spk, u2n, snr, vad = {}, {}, {}, {}, {}, {}
    for i in range(num_utts):
        spk = f"spk{i % num_spk}"
        utt = f"{spk}_utt{i:02d}"
        n = int(seconds * sample_rate) + 37 * i
        clean = 0.1 * rng.standard_normal(n).astype(np.float32)
        noisy = clean + 0.05 * rng.standard_normal(n).astype(np.float32)
        sf.write(audio / f"{utt}_noisy.wav", noisy, sample_rate)
        sf.write(audio / f"{utt}_clean.wav", clean, sample_rate)
        wav[utt] = str(audio / f"{utt}_noisy.wav")
        spk1[utt] = str(audio / f"{utt}_clean.wav")
        utt2spk[utt] = spk
        u2n[utt] = n
        snr[utt] = "6.0"
        vad[utt] = (np.arange(cfg.num_frames(n)) % 7 > 2).astype(np.int32)
    keys = sorted(wav)

    def write(name, mapping):
        (data / name).write_text("".join(f"{k} {mapping[k]}\n" for k in sorted(mapping)))

    write("wav.scp", wav)
    write("spk1.scp", spk1)
    write("utt2spk", utt2spk)
    write("utt2num_samples", u2n)
    write("utt2snr", snr)
    spk2utt = {}
    for k in keys:
        spk2utt.setdefault(utt2spk[k], []).append(k)
    write("spk2utt", {s: " ".join(u) for s, u in spk2utt.items()})
    if with_vad:
        kaldiio.save_ark(str(data / "vad_labels.ark"), {k: vad[k] for k in keys}, scp=str(data / "vad_labels.scp"))
        (data / "frame_shift").write_text(f"{cfg.hop_length / cfg.sample_rate:g}\n")
    return data


def read_lines(path: Path) -> list[str]:
    return Path(path).read_text().splitlines()


def write_lines(path: Path, lines: list[str]) -> None:
    Path(path).write_text("".join(line + "\n" for line in lines))
