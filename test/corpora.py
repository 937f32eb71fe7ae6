"""Small corpus trees in the exact official layouts, for testing the recipes' data preparation.

The audio is synthetic (csmvanet.audio.synthetic), short, and deterministic by seed; folder and file names,
sample rates and side files follow the released corpora (see shared/spec/corpora.md):

- VoiceBank+DEMAND (:func:`make_voicebank`): the unpacked zips ``clean_trainset_28spk_wav/``,
  ``noisy_trainset_28spk_wav/``, ``clean_testset_wav/``, ``noisy_testset_wav/`` (``pNNN_MMM.wav``,
  48 kHz, 16-bit, mono), ``trainset_28spk_txt/``, ``testset_txt/`` (``pNNN_MMM.txt``) and
  ``logfiles/log_trainset_28spk.txt``, ``logfiles/log_testset.txt`` (``<utt> <noise> <snr>``).
- LibriSpeech (:func:`make_librispeech`): ``LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<NNNN>.flac``
  (16 kHz) with ``<spk>-<chapter>.trans.txt``, and the top-level ``BOOKS.TXT CHAPTERS.TXT LICENSE.TXT
  README.TXT SPEAKERS.TXT``.
- DEMAND (:func:`make_demand`): all 18 environments, ``<ENV>/ch01.wav .. ch16.wav`` (16 kHz, as the
  ``_16k`` zips unpack; SCAFE as after resampling its 48 kHz zip).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from csmvanet.audio.io import resample, write_audio
from csmvanet.audio.synthetic import noise, speech_like

VB_TRAIN_SPEAKERS_28 = ("p226", "p227", "p228", "p230", "p231", "p233", "p236", "p239", "p243", "p244",
                        "p250", "p254", "p256", "p258", "p259", "p267", "p268", "p269", "p270", "p273",
                        "p274", "p276", "p277", "p278", "p279", "p282", "p286", "p287")
VB_TEST_SPEAKERS = ("p232", "p257")
VB_VALID_SPEAKERS = ("p226", "p287")
VB_TRAIN_NOISES = ("babble", "cafeteria", "car", "kitchen", "meeting", "metro", "restaurant", "ssn",
                   "station", "traffic")
VB_TEST_NOISES = ("bus", "cafe", "living", "office", "psquare")
VB_TRAIN_SNRS = (0.0, 5.0, 10.0, 15.0)
VB_TEST_SNRS = (2.5, 7.5, 12.5, 17.5)

DEMAND_ENVS = ("DKITCHEN", "DLIVING", "DWASHING", "NFIELD", "NPARK", "NRIVER", "OHALLWAY", "OMEETING",
               "OOFFICE", "PCAFETER", "PRESTO", "PSTATION", "SCAFE", "SPSQUARE", "STRAFFIC", "TBUS", "TCAR",
               "TMETRO")
LIBRI_TOP_FILES = ("BOOKS.TXT", "CHAPTERS.TXT", "LICENSE.TXT", "README.TXT", "SPEAKERS.TXT")
_CHEAP_NOISES = ("white", "pink", "brown", "hum", "car", "clatter")
_WORDS = ("the", "of", "and", "a", "to", "in", "he", "was", "that", "it", "his", "her", "with", "as", "had",
          "for", "you", "she", "not", "but", "at", "on", "him", "is", "they", "be", "this", "by", "all")


def _sentence(rng: np.random.Generator, n_words: int) -> list[str]:
    return [_WORDS[int(i)] for i in rng.integers(len(_WORDS), size=n_words)]


def _fmt_snr(x: float) -> str:
    return f"{x:g}"


def make_voicebank(root: str | Path, *, train_speakers=("p226", "p227", "p228", "p287"),
                   test_speakers=VB_TEST_SPEAKERS, utts_per_speaker: int = 3, seconds=(1.0, 1.6),
                   logfiles: bool = True, seed: int = 0) -> dict[str, list[str]]:
    """Write a VoiceBank+DEMAND tree under ``root``; returns ``{"train": [utt...], "test": [utt...]}``.

    Noisy files are the clean file plus a synthetic noise at an SNR from the official grid
    (0/5/10/15 dB training, 2.5/7.5/12.5/17.5 dB test), recorded in the log files.
    Speech is synthesised at 16 kHz and upsampled to the corpus rate of 48 kHz.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {"train": [], "test": []}
    for part, speakers, wav_suffix, txt_dir, log_name, noises, snrs in (
            ("train", train_speakers, "trainset_28spk_wav", "trainset_28spk_txt", "log_trainset_28spk.txt",
             VB_TRAIN_NOISES, VB_TRAIN_SNRS),
            ("test", test_speakers, "testset_wav", "testset_txt", "log_testset.txt", VB_TEST_NOISES, VB_TEST_SNRS)):
        log_lines = []
        for spk in speakers:
            for i in range(1, utts_per_speaker + 1):
                utt = f"{spk}_{i:03d}"
                sec = float(rng.uniform(*seconds))
                clean16, _ = speech_like(int(rng.integers(1 << 31)), sec, 16000)
                clean = resample(clean16, 16000, 48000)
                noise_name = noises[int(rng.integers(len(noises)))]
                kind = _CHEAP_NOISES[noises.index(noise_name) % len(_CHEAP_NOISES)]
                nz = resample(noise(kind, int(rng.integers(1 << 31)), sec, 16000), 16000, 48000)[:len(clean)]
                snr = float(snrs[int(rng.integers(len(snrs)))])
                es = float(np.sum(clean.astype(np.float64) ** 2))
                en = float(np.sum(nz.astype(np.float64) ** 2))
                noisy = clean + nz * np.sqrt(es / (en * 10 ** (snr / 10)))
                peak = max(float(np.max(np.abs(noisy))), 1e-9)
                if peak > 0.95:
                    noisy *= 0.95 / peak
                    clean = clean * (0.95 / peak)
                write_audio(root / f"clean_{wav_suffix}" / f"{utt}.wav", clean, 48000)
                write_audio(root / f"noisy_{wav_suffix}" / f"{utt}.wav", noisy, 48000)
                txt = root / txt_dir / f"{utt}.txt"
                txt.parent.mkdir(parents=True, exist_ok=True)
                words = _sentence(rng, 5)
                txt.write_text(" ".join(words).capitalize() + ".\n")
                log_lines.append(f"{utt} {noise_name} {_fmt_snr(snr)}")
                out[part].append(utt)
        if logfiles:
            log = root / "logfiles" / log_name
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text("\n".join(log_lines) + "\n")
    return out


def make_librispeech(root: str | Path, subsets: dict[str, tuple[tuple[int, int, int], ...]] | None = None,
                     seconds=(2.0, 3.5), seed: int = 0) -> dict[str, list[str]]:
    """Write ``root/LibriSpeech/...`` (16 kHz flac); returns ``{subset: [utt ids]}``.

    ``subsets``: ``{name: ((speaker, chapter, num_utts), ...)}``; the default has two speakers per
    subset for train-clean-100, dev-clean and test-clean, with disjoint speaker ids.
    """
    if subsets is None:
        subsets = {"train-clean-100": ((103, 1240, 3), (1034, 121119, 3), (1040, 133433, 2)),
                   "dev-clean": ((84, 121123, 2), (174, 50561, 2)),
                   "test-clean": ((61, 70968, 3), (121, 121726, 3))}
    base = Path(root) / "LibriSpeech"
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {}
    speakers_txt, chapters_txt = [], []
    for subset, entries in subsets.items():
        out[subset] = []
        for spk, chap, n in entries:
            d = base / subset / str(spk) / str(chap)
            d.mkdir(parents=True, exist_ok=True)
            trans = []
            for k in range(n):
                utt = f"{spk}-{chap}-{k:04d}"
                wave, _ = speech_like(int(rng.integers(1 << 31)), float(rng.uniform(*seconds)), 16000)
                write_audio(d / f"{utt}.flac", wave, 16000)
                trans.append(f"{utt} " + " ".join(_sentence(rng, 6)).upper())
                out[subset].append(utt)
            (d / f"{spk}-{chap}.trans.txt").write_text("\n".join(trans) + "\n")
            speakers_txt.append(f"{spk:<5}| {'F' if spk % 2 else 'M'} | {subset:<16}| 1.00 | Speaker {spk}")
            chapters_txt.append(f"{chap:<7}| {spk:<5}| 1.00 | {subset:<16}| 1    | Book {chap} | Chapter | Project")
    (base / "SPEAKERS.TXT").write_text(";ID  |SEX| SUBSET           |MINUTES| NAME\n" + "\n".join(speakers_txt) + "\n")
    (base / "CHAPTERS.TXT").write_text(";ID     |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE\n"
                                       + "\n".join(chapters_txt) + "\n")
    (base / "BOOKS.TXT").write_text(";ID     |BOOK TITLE\n1      | A synthetic book\n")
    (base / "LICENSE.TXT").write_text("Synthetic test data in the LibriSpeech layout (CC BY 4.0 in the original).\n")
    (base / "README.TXT").write_text("LibriSpeech-layout test corpus generated by test/corpora.py.\n")
    return out


def make_demand(root: str | Path, envs=DEMAND_ENVS, channels: int = 16, seconds: float = 2.5,
                sr: int = 16000, seed: int = 0) -> dict[str, list[Path]]:
    """Write ``root/<ENV>/ch01.wav .. chNN.wav`` for every environment; returns ``{env: [paths]}``.

    Each environment gets its own noise kind and seeds, so noises of different environments differ.
    """
    root = Path(root)
    out: dict[str, list[Path]] = {}
    for e, env in enumerate(envs):
        kind = _CHEAP_NOISES[e % len(_CHEAP_NOISES)]
        out[env] = []
        for ch in range(1, channels + 1):
            wave = noise(kind, seed * 100003 + e * 101 + ch, seconds, sr)
            p = root / env / f"ch{ch:02d}.wav"
            write_audio(p, wave, sr)
            out[env].append(p)
    return out
