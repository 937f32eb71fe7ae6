"""The model shipped with the package (csmvanet/pretrained/): checked sha256, the default of
csmvanet-enhance and Enhancer.from_pretrained(), listed by --list_models, its model card honest."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from csmvanet.audio.synthetic import noise, speech_like
from csmvanet.experiment import model_files
from csmvanet.experiment.model_files import BUNDLED_MODELS, PRETRAINED_DIR, ModelFileError, bundled_model
from csmvanet.infer.enhancer import Enhancer

NAME = "voiceprompts_small"
# the sha256 of the shipped file's bytes; rebuilding it (egs/voiceprompts) means updating it here,
# in csmvanet/experiment/model_files.py (BUNDLED_MODELS) and in the model card
SHA256 = "ebe11dbbdb64fc94ad9599ab7019ae79d8e854eef921685c94ffb00bf87f64d9"


def test_the_shipped_file_is_the_one_recorded():
    assert next(iter(BUNDLED_MODELS)) == NAME                 # the default
    path = PRETRAINED_DIR / BUNDLED_MODELS[NAME]["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHA256 == BUNDLED_MODELS[NAME]["sha256"]
    assert path.stat().st_size < 5e6                           # small: a few MB at most
    card = (PRETRAINED_DIR / "README.md").read_text()
    assert SHA256 in card and BUNDLED_MODELS[NAME]["file"] in card


def test_a_corrupt_or_missing_bundled_file_is_refused_naming_it(tmp_path, monkeypatch):
    src = PRETRAINED_DIR / BUNDLED_MODELS[NAME]["file"]
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / src.name).write_bytes(bytes(data))
    monkeypatch.setattr(model_files, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(ModelFileError, match=rf"{src.name}: sha256 .* is not the .* of bundled model {NAME}"):
        bundled_model()
    (tmp_path / src.name).unlink()
    with pytest.raises(ModelFileError, match=f"bundled model {NAME} is missing"):
        Enhancer.from_pretrained()
    with pytest.raises(ModelFileError, match="no-such-model: no such bundled model"):
        bundled_model("no-such-model")


def test_from_pretrained_without_a_path_is_the_bundled_model_with_its_card_values():
    enh = Enhancer.from_pretrained()
    meta = enh.metadata
    assert Path(enh.source) == PRETRAINED_DIR / BUNDLED_MODELS[NAME]["file"]
    chosen = meta["inference"]
    assert (enh.vad_floor, enh.vad_threshold) == (chosen["vad_floor"], chosen["vad_threshold"])
    assert chosen["chosen_on"].endswith("dump/valid")
    test = meta["scores"]["test"]
    card = (PRETRAINED_DIR / "README.md").read_text()
    for system in ("noisy", "enhanced"):                       # the card quotes the packed scores
        assert f"{test[system]['pesq']:.2f}" in card and f"{test[system]['stoi']:.3f}" in card
    assert f"{test['enhanced']['vad_f1']:.3f}" in card
    assert test["enhanced"]["pesq"] >= test["noisy"]["pesq"] + 0.2   # what it was shipped for
    assert sum(p.numel() for p in enh.model.parameters()) == meta["num_parameters"]


def test_the_bundled_model_still_enhances():
    """End to end through the shipped weights: features, network, stage 2 and synthesis must be the
    ones it was trained with. Speech-like signals in pink, white and brown noise at 0 dB gain 7-12 dB
    SI-SDR (input_mix 0); swapping the real and imaginary input channels gives -22 to -60 dB, and a
    reversed VAD gate fails it too."""
    from csmvanet.metrics import si_sdr

    enh = Enhancer.from_pretrained(input_mix=0.0)
    gains = []
    for seed, kind in enumerate(("pink", "white", "brown", "pink")):
        s, _ = speech_like(seed, seconds=3.0, sr=16000)
        s = 0.3 * s / np.abs(s).max()
        n = noise(kind, seed + 10, seconds=3.0, sr=16000)
        x = (s + n * np.sqrt(np.mean(s ** 2) / np.mean(n ** 2))).astype(np.float32)
        y, vad = enh.enhance(x, 16000)
        gains.append(si_sdr(y, s) - si_sdr(x, s))
    assert min(gains) > 5.0, gains


def test_cli_enhances_with_no_model_and_lists_the_bundled_ones(tmp_path):
    s, _ = speech_like(3, seconds=2.0, sr=22050)
    x = 0.3 * s / np.abs(s).max() + 0.05 * noise("pink", 4, seconds=2.0, sr=22050)
    sf.write(tmp_path / "noisy.wav", x.astype(np.float32), 22050)
    p = subprocess.run([sys.executable, "-m", "csmvanet.bin.enhance", str(tmp_path / "noisy.wav"),
                        "--output_dir", str(tmp_path / "out"), "--no_progress"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert f"model {PRETRAINED_DIR / BUNDLED_MODELS[NAME]['file']}" in p.stderr
    y, sr = sf.read(tmp_path / "out" / "noisy.wav")
    assert sr == 22050 and len(y) == len(x) and np.isfinite(y).all() and np.abs(y).max() > 1e-3
    p = subprocess.run([sys.executable, "-m", "csmvanet.bin.enhance", "--list_models"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith(f"{NAME} (default): ")
    assert str(PRETRAINED_DIR / BUNDLED_MODELS[NAME]["file"]) in p.stdout


def test_a_bundled_name_is_a_model_argument_unless_a_file_of_that_name_exists(tmp_path, monkeypatch):
    assert Enhancer.from_pretrained(NAME).source == str(PRETRAINED_DIR / BUNDLED_MODELS[NAME]["file"])
    monkeypatch.chdir(tmp_path)
    shutil.copy(PRETRAINED_DIR / BUNDLED_MODELS[NAME]["file"], tmp_path / NAME)
    assert Enhancer.from_pretrained(NAME).source == NAME        # the local file wins, as a path


def test_list_models_marks_a_corrupt_or_missing_bundled_model(tmp_path, monkeypatch, capsys):
    """Issue 30 item 13: --list_models checks each file's sha256: a corrupt one is listed as unusable,
    with the reason, and the exit status is 1 (it was listed as normal, exit 0)."""
    from csmvanet.bin.enhance import main as enhance_main

    src = PRETRAINED_DIR / BUNDLED_MODELS[NAME]["file"]
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / src.name).write_bytes(bytes(data))
    monkeypatch.setattr(model_files, "PRETRAINED_DIR", tmp_path)
    assert enhance_main(["--list_models"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{NAME} (default): {tmp_path / src.name}") and out.count("\n") == len(BUNDLED_MODELS)
    assert f"UNUSABLE: sha256 {hashlib.sha256(bytes(data)).hexdigest()[:12]}... is not the {SHA256[:12]}..." in out
    with capsys.disabled():
        print("item 13 (--list_models):", out.strip())
    (tmp_path / src.name).unlink()
    assert enhance_main(["--list_models"]) == 1
    assert "(MISSING)" in capsys.readouterr().out
    monkeypatch.setattr(model_files, "PRETRAINED_DIR", PRETRAINED_DIR)
    assert enhance_main(["--list_models"]) == 0 and "UNUSABLE" not in capsys.readouterr().out
