"""Quiet in, quiet out (csmvanet.infer.output_level.bound_quiet) and the overlap a user did not give.

Issue 30: digital silence came out as noise and a lone click at -80 dBFS came out at -42 dBFS (the
level normalisation divides by an RMS clamped at 1e-5); ``--segment_seconds 1.5`` with the bundled
model failed on an overlap of 1 s the user never gave.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from csmvanet.audio.synthetic import noise, speech_like
from csmvanet.infer.enhancer import Enhancer
from csmvanet.infer.output_level import QUIET_RMS, bound_quiet
from csmvanet.nets import build_model

SR = 16000
MINI = {"model": {"channels": [8, 16], "num_conformers": 1, "heads": 2, "ff_mult": 2, "conv_kernel": 7}}


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _no_louder(y, x):
    """Peak and RMS of ``y`` at most those of ``x`` (to float32 rounding)."""
    return np.abs(y).max() <= np.abs(x).max() * (1 + 1e-5) and _rms(y) <= _rms(x) * (1 + 1e-5)


def _click(seconds=10.0, dbfs=-80.0):
    x = np.zeros(int(seconds * SR), np.float32)
    x[len(x) // 3] = 10 ** (dbfs / 20)
    return x


@pytest.fixture(scope="module")
def mini():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return Enhancer(build_model(MINI), MINI, segment_seconds=2.0, overlap_seconds=0.5)


def test_silence_and_a_click_are_never_made_louder(mini):
    zeros, _ = mini.enhance(np.zeros(10 * SR, np.float32), SR)
    assert not zeros.any()                                                 # all-zero in, all-zero out
    x = _click()
    y, _ = mini.enhance(x, SR)
    assert _no_louder(y, x), (np.abs(y).max(), _rms(y))                  # before: peak -15 dBFS here
    stereo = np.stack([x, np.zeros_like(x)], axis=1)                       # per channel
    y2, _ = mini.enhance(stereo, SR)
    assert _no_louder(y2[:, 0], x) and not y2[:, 1].any()


def test_normal_level_input_is_untouched(mini, monkeypatch):
    """The rule acts on near-silent chunks only: normal speech (also at -50 dBFS RMS, and with a
    stretch of digital silence shorter than a segment) comes out bit-identical to the network's output."""
    import csmvanet.infer.enhancer as enhance_mod

    s, _ = speech_like(1, seconds=6.0, sr=SR)
    n = noise("pink", 2, seconds=6.0, sr=SR)
    x = (s + n * np.std(s) / np.std(n) * 0.3).astype(np.float32)
    inputs = [0.3 * x / np.abs(x).max(), x / _rms(x) * 10 ** (-50 / 20)]
    gap = inputs[0].copy()
    gap[SR:SR + SR // 2] = 0.0
    inputs.append(gap)
    with_rule = [mini.enhance(v, SR)[0] for v in inputs]
    monkeypatch.setattr(enhance_mod, "bound_quiet", lambda out, inp: out)
    for v, y in zip(inputs, with_rule):
        assert np.array_equal(y, mini.enhance(v, SR)[0])


def test_bound_quiet_is_a_gain_of_at_most_one_on_quiet_channels_only():
    rng = np.random.default_rng(0)
    inp = np.stack([rng.standard_normal(1000) * 1e-4, rng.standard_normal(1000) * 0.1], axis=1)
    out = np.stack([rng.standard_normal(1000) * 1e-2, rng.standard_normal(1000) * 0.5], axis=1).astype(np.float32)
    y = bound_quiet(out, inp)
    assert _rms(inp[:, 0]) < QUIET_RMS < _rms(inp[:, 1])
    assert np.array_equal(y[:, 1], out[:, 1])                              # a normal channel: as it was
    g = y[:, 0] / out[:, 0]
    assert np.allclose(g, g[0]) and 0 < g[0] < 1                           # one gain per chunk and channel
    assert np.abs(y[:, 0]).max() <= np.abs(inp[:, 0]).max() * (1 + 1e-6)
    assert _rms(y[:, 0]) <= _rms(inp[:, 0]) * (1 + 1e-6)
    quiet_out = out * 1e-4
    assert np.array_equal(bound_quiet(quiet_out, inp)[:, 0], quiet_out[:, 0])   # already quieter: unchanged


def _cli(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "csmvanet.bin.enhance", *args, "--output_dir", str(tmp_path / "out"),
                           "--no_progress", "--num_threads", "1"], capture_output=True, text=True)


def test_cli_bundled_model_silence_click_and_a_short_segment(tmp_path):
    """Through csmvanet-enhance and the bundled model: an all-zero file comes out all zero, a click at
    -80 dBFS no louder (before: -42 dBFS), and --segment_seconds 1.5 alone takes the model's stored
    overlap (0.25 s) instead of failing on a default 1 s overlap the user never gave."""
    sf.write(tmp_path / "zeros.wav", np.zeros(10 * SR, np.float32), SR, subtype="PCM_16")
    x = _click()
    sf.write(tmp_path / "click.wav", x, SR, subtype="FLOAT")
    p = _cli(tmp_path, str(tmp_path / "zeros.wav"), str(tmp_path / "click.wav"), "--output_subtype", "FLOAT",
             "--segment_seconds", "1.5")
    assert p.returncode == 0, p.stderr
    assert "segments 1.5 s overlap 0.25 s" in p.stderr
    zeros, _ = sf.read(tmp_path / "out" / "zeros.wav", dtype="float32")
    click, _ = sf.read(tmp_path / "out" / "click.wav", dtype="float32")
    assert len(zeros) == 10 * SR and not zeros.any()
    assert len(click) == len(x) and _no_louder(click, x), (np.abs(click).max(), _rms(click))


def test_an_overlap_not_given_fits_the_segment():
    torch.manual_seed(0)
    model = build_model(MINI)
    enh = Enhancer(model, MINI, segment_seconds=1.5)                        # no stored settings: 1 s capped
    assert (enh.segment_seconds, enh.overlap_seconds) == (1.5, 0.75)
    enh = Enhancer(model, MINI, segment_seconds=0.4, metadata={"inference": {"overlap_seconds": 0.25}})
    assert enh.overlap_seconds == 0.2                                       # a stored overlap too
    enh = Enhancer(model, MINI, segment_seconds=4, metadata={"inference": {"overlap_seconds": 0.25}})
    assert enh.overlap_seconds == 0.25                                      # the stored one where it fits
    with pytest.raises(ValueError, match="overlap_seconds=1"):              # one given must fit
        Enhancer(model, MINI, segment_seconds=1.5, overlap_seconds=1.0)
