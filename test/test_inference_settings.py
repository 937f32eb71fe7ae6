"""One set of inference settings, one rule per setting: the same value fails the same way wherever it comes
from (Enhancer, from_pretrained, a stored inference.yaml / packed metadata, the command lines), and what
is stored comes out of the Enhancer unchanged."""
from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import yaml

from csmvanet.base.errors import ModelFileError
from csmvanet.experiment.inference_settings import (SETTINGS, InferenceSettings, check_setting, check_stored,
                                                    parse_setting)
from csmvanet.infer.enhancer import Enhancer
from csmvanet.nets import build_model

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from test_enhance import make_exp, tiny_cfg  # noqa: E402

#: one bad value of each setting and the words of its rule
BAD = {"vad_floor": (1.5, "vad_floor must be a number from 0 to 1"),
       "vad_threshold": (-0.1, "vad_threshold must be a number from 0 to 1"),
       "input_mix": (2.0, "input_mix must be a number from 0 to 1"),
       "snr_limit": (500.0, "snr_limit must be None or a number of dB from -100 to 100"),
       "segment_seconds": (0.0, "segment_seconds must be a number of seconds above 0 and at most 3600"),
       "overlap_seconds": (-1.0, "overlap_seconds must be a number of seconds from 0 to half of segment_seconds"),
       "backend": ("tensorflow", "backend must be one of torch, onnxruntime, torch-int8, torch-bf16")}


def test_every_setting_has_one_rule():
    assert set(BAD) == set(SETTINGS)


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    return make_exp(tmp_path_factory.mktemp("exp") / "tiny", tiny_cfg())


@pytest.mark.parametrize("key", sorted(BAD))
def test_a_bad_value_fails_the_same_everywhere(key, exp):
    value, words = BAD[key]
    with pytest.raises(ValueError, match=words):
        check_setting(key, value)
    with pytest.raises(ValueError, match=words):                          # Python API, both doors
        Enhancer(build_model(tiny_cfg()), tiny_cfg(), **{key: value})
    with pytest.raises(ValueError, match=words):
        Enhancer.from_pretrained(exp, **{key: value})
    stored = {"vad_floor": 0.5, "vad_threshold": 0.5, key: value}
    with pytest.raises(ModelFileError, match=rf"^inference.yaml: {key} must be "):   # a stored file: file and key
        check_stored(stored, "inference.yaml")
    with pytest.raises(ValueError, match=r"^expected "):                  # a command line: argparse adds the option
        parse_setting(key, str(value))


def test_cli_and_stored_files_say_it_with_the_rule(exp, tmp_path):
    """csmvanet-enhance and csmvanet-tune-inference check their options with the settings' rule."""
    for cmd in (["-m", "csmvanet.bin.enhance", "--model", str(exp), "--output_dir", str(tmp_path), "x.wav",
                 "--snr_limit", "500"],
                ["-m", "csmvanet.bin.tune_inference", "--exp_dir", str(exp), "--data_dir", str(tmp_path),
                 "--snr_limits", "none,500"]):
        r = subprocess.run([sys.executable, *cmd], capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert "expected a number of dB from -100 to 100 or none, got '500'" in r.stderr, r.stderr
    (exp / "inference.yaml").write_text("vad_floor: 0.2\nvad_threshold: 0.4\nsnr_limit: loud\n")
    try:
        with pytest.raises(ModelFileError, match=r"inference.yaml: snr_limit must be a number of dB from -100 to "
                                                 r"100 or null, got 'loud'"):
            Enhancer.from_pretrained(exp)
    finally:
        (exp / "inference.yaml").unlink()


def test_no_snr_limit_has_one_meaning():
    """None in Python, null in files, none/inf on the command line: all the same 'no limit' (None)."""
    assert check_setting("snr_limit", None) is None and check_setting("snr_limit", math.inf) is None
    assert check_setting("snr_limit", parse_setting("snr_limit", "none")) is None
    assert check_setting("snr_limit", parse_setting("snr_limit", "INF")) is None
    assert InferenceSettings.stored(yaml.safe_load("vad_floor: 0\nvad_threshold: 0.5\nsnr_limit: null\n"),
                                    "f").snr_limit is None
    assert InferenceSettings().updated(snr_limit=12.0).updated(snr_limit=math.inf).snr_limit is None


def test_stored_settings_reach_the_enhancer_and_given_ones_win(exp):
    stored = {"vad_floor": 0.3, "vad_threshold": 0.6, "input_mix": 0.1, "snr_limit": 20.0, "segment_seconds": 1.024,
              "overlap_seconds": 0.256, "chosen_on": "data/valid"}
    (exp / "inference.yaml").write_text(yaml.safe_dump(stored))
    try:
        enh = Enhancer.from_pretrained(exp)
        got = {k: getattr(enh.settings, k) for k in stored if k in SETTINGS}
        assert got == {k: v for k, v in stored.items() if k in SETTINGS}
        assert (enh.vad_floor, enh.model.vad_floor, enh.vad_threshold, enh.input_mix, enh.snr_limit) == (
            0.3, 0.3, 0.6, 0.1, 20.0)
        assert (enh.segment_seconds, enh.overlap_seconds) == (1.024, 0.256)   # whole hops: as stored
        over = Enhancer.from_pretrained(exp, vad_floor=1.0, snr_limit=math.inf, input_mix=None)   # None: not given
        assert (over.vad_floor, over.model.vad_floor, over.snr_limit, over.input_mix) == (1.0, 1.0, None, 0.1)
        assert over.overlap_seconds == 0.256          # the stored overlap, not given
    finally:
        (exp / "inference.yaml").unlink()
    plain = Enhancer(build_model(tiny_cfg()), tiny_cfg())
    assert plain.settings == InferenceSettings(segment_seconds=8.0, overlap_seconds=plain.overlap_seconds)
    assert abs(plain.overlap_seconds - 1.0) < plain.stft_cfg.hop_length / plain.sample_rate   # 1 s on the hop grid
    assert plain.vad_floor == plain.model_vad_floor == 0.0       # not set: the config's own floor
    with pytest.raises(TypeError, match="unknown inference setting.*vad_flor.*known: vad_floor"):
        Enhancer(build_model(tiny_cfg()), tiny_cfg(), vad_flor=0.5)


def test_a_model_config_floor_is_the_default_floor():
    cfg = tiny_cfg()
    cfg["model"]["vad_floor"] = 0.25
    torch.manual_seed(0)
    enh = Enhancer(build_model(cfg), cfg)
    assert enh.vad_floor == 0.25 and enh.settings.vad_floor is None
    enh.set_vad_floor(0.5)
    assert enh.vad_floor == enh.model.vad_floor == 0.5
