"""ESPnet's training-set switches: speed perturbation (Kaldi's sp<f>- ids, soxr resampling, mixture,
clean and noise consistent) and the length filter (enh.sh stage 4), csmvanet-perturb end to end."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from csmvanet.data.datadir import read_scp

FS = 16000
ROOT = Path(__file__).resolve().parents[1]
TONE = 400.0


def perturb(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "csmvanet.bin.perturb", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})


@pytest.fixture
def train_dir(tmp_path):
    """u1 (speaker a, 1.0 s) and u2 (speaker b, 0.5 s): a 400 Hz tone + white noise, with noise1.scp."""
    d = tmp_path / "train"
    d.mkdir()
    rng = np.random.default_rng(0)
    lists = {"wav.scp": [], "spk1.scp": [], "noise1.scp": []}
    for key, seconds in (("a-u1", 1.0), ("b-u2", 0.5)):
        t = np.arange(int(seconds * FS)) / FS
        clean = 0.4 * np.sin(2 * np.pi * TONE * t)
        noise = 0.05 * rng.standard_normal(t.size)
        for name, x, tag in (("wav.scp", clean + noise, "n"), ("spk1.scp", clean, "c"), ("noise1.scp", noise, "z")):
            sf.write(d / f"{key}_{tag}.wav", x, FS, subtype="FLOAT")
            lists[name].append(f"{key} {d / f'{key}_{tag}.wav'}\n")
    for name, lines in lists.items():
        (d / name).write_text("".join(lines))
    (d / "utt2spk").write_text("a-u1 a\nb-u2 b\n")
    (d / "spk2utt").write_text("a a-u1\nb b-u2\n")
    (d / "utt2noise").write_text("a-u1 white\nb-u2 white\n")
    (d / "utt2snr").write_text("a-u1 5\nb-u2 0\n")
    (d / "utt2num_samples").write_text(f"a-u1 {FS}\nb-u2 {FS // 2}\n")
    (d / "spec.tsv").write_text("describes the original mixtures\n")
    return d


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spec) * FS / x.size)


def test_speed_perturbation_writes_kaldi_ids_and_consistent_audio(train_dir, tmp_path):
    dst = tmp_path / "train_sp"
    r = perturb("--src", train_dir, "--dst", dst, "--fs", FS, "--speed_perturb_factors", "0.9 1.0 1.1")
    assert r.returncode == 0, r.stderr
    keys = ["a-u1", "b-u2", "sp0.9-a-u1", "sp0.9-b-u2", "sp1.1-a-u1", "sp1.1-b-u2"]
    for name in ("wav.scp", "spk1.scp", "noise1.scp", "utt2spk", "utt2noise", "utt2snr", "utt2num_samples"):
        assert list(read_scp(dst / name)) == keys, name
    assert read_scp(dst / "utt2spk") == {"a-u1": "a", "b-u2": "b", "sp0.9-a-u1": "sp0.9-a", "sp0.9-b-u2": "sp0.9-b",
                                         "sp1.1-a-u1": "sp1.1-a", "sp1.1-b-u2": "sp1.1-b"}
    assert read_scp(dst / "spk2utt")["sp1.1-a"] == "sp1.1-a-u1"
    assert read_scp(dst / "utt2snr")["sp0.9-b-u2"] == "0"
    assert not (dst / "spec.tsv").exists() and not (dst / "vad_labels.scp").exists()
    src = {n: read_scp(train_dir / n) for n in ("wav.scp", "spk1.scp", "noise1.scp")}
    out = {n: read_scp(dst / n) for n in ("wav.scp", "spk1.scp", "noise1.scp")}
    for n in out:  # factor 1: the original files, untouched
        assert out[n]["a-u1"] == src[n]["a-u1"]
    lengths = {k: int(v) for k, v in read_scp(dst / "utt2num_samples").items()}
    for f in (0.9, 1.1):
        key = f"sp{f:g}-a-u1"
        noisy, clean, noise = (sf.read(out[n][key])[0] for n in ("wav.scp", "spk1.scp", "noise1.scp"))
        assert noisy.size == clean.size == noise.size == lengths[key]
        assert abs(lengths[key] - FS / f) <= 2                      # played f times faster
        assert peak_hz(clean) == pytest.approx(TONE * f, abs=3)     # pitch moves with the tempo (sox speed)
        assert np.max(np.abs(noisy - (clean + noise))) < 3e-4      # the mixture stays the sum of its parts
        assert sf.info(out["wav.scp"][key]).samplerate == FS


def test_length_filter_keeps_what_enh_sh_keeps(train_dir, tmp_path):
    """min x fs < samples < max x fs, strict as enh.sh: b-u2 (exactly 0.5 s) goes with --min 0.5."""
    dst = tmp_path / "train_sp"
    r = perturb("--src", train_dir, "--dst", dst, "--fs", FS, "--speed_perturb_factors", "0.9 1.0 1.1",
                "--min_wav_duration", "0.5", "--max_wav_duration", "1.05", "--audio_format", "flac")
    assert r.returncode == 0, r.stderr
    # lengths: a-u1 1.0, sp0.9-a-u1 1.11, sp1.1-a-u1 0.91, b-u2 0.5, sp0.9-b-u2 0.56, sp1.1-b-u2 0.45 s
    kept = ["a-u1", "sp0.9-b-u2", "sp1.1-a-u1"]
    for name in ("wav.scp", "spk1.scp", "noise1.scp", "utt2spk", "utt2num_samples"):
        assert list(read_scp(dst / name)) == kept, name
    assert read_scp(dst / "spk1.scp")["sp1.1-a-u1"].endswith("/sp1.1-a-u1.flac")
    assert sorted(read_scp(dst / "spk2utt")) == ["a", "sp0.9-b", "sp1.1-a"]
    r = perturb("--src", train_dir, "--dst", tmp_path / "only_filter", "--fs", FS, "--max_wav_duration", "0.75")
    assert r.returncode == 0, r.stderr
    assert list(read_scp(tmp_path / "only_filter" / "wav.scp")) == ["b-u2"]


@pytest.mark.parametrize("change,message", [
    (lambda d: None, "--speed_perturb_factors"),                       # filled in below
    (lambda d: (d / "segments").write_text("a-u1 a 0 1\n"), "segments: speed perturbation of segmented dirs"),
    (lambda d: (d / "noise1.scp").write_text((d / "noise1.scp").read_text().splitlines()[0] + "\n"),
     "noise1.scp: its keys differ from wav.scp's"),
])
def test_bad_input_is_one_line_naming_the_problem(train_dir, tmp_path, change, message):
    change(train_dir)
    factors = "0.9 x" if message == "--speed_perturb_factors" else "0.9 1.0"
    r = perturb("--src", train_dir, "--dst", tmp_path / "out", "--fs", FS, "--speed_perturb_factors", factors)
    assert r.returncode == 1
    expected = "speed perturbation factor 'x' is not a number" if message == "--speed_perturb_factors" else message
    assert expected in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "out" / "wav.scp").exists()
