"""Issue 30 item 5 and a part of item 13: packed models carry their inference settings under the
checksum and checked on load; csmvanet-pack labels only the experiment's own weights and never
overwrites its files; the packed training time is the training's, not the time between runs."""
from __future__ import annotations

import contextlib
import copy
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from csmvanet.bin.pack import main as pack_main
from csmvanet.experiment.checkpoint import save_checkpoint
from csmvanet.experiment.model_files import PACK_VERSION, ModelFileError, load_model_files, weights_digest
from csmvanet.infer.enhancer import Enhancer
from csmvanet.nets import build_model

SETTINGS = {"vad_floor": 0.3, "vad_threshold": 0.4, "input_mix": 0.1, "snr_limit": None, "segment_seconds": 2.0,
            "overlap_seconds": 0.25, "checkpoint": "valid.loss.ave.pth"}


def make_exp(path: Path, seed: int) -> Path:
    from conftest import TINY_CONFIG

    path.mkdir(parents=True)
    torch.manual_seed(seed)
    (path / "config.yaml").write_text(yaml.safe_dump(TINY_CONFIG, sort_keys=False))
    save_checkpoint(build_model(TINY_CONFIG).state_dict(), path / "valid.loss.ave.pth")
    (path / "inference.yaml").write_text(yaml.safe_dump(SETTINGS, sort_keys=False))
    return path


def _pack(*args) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = pack_main([str(a) for a in args])
    return rc, err.getvalue()


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    root = tmp_path_factory.mktemp("pack")
    exp = make_exp(root / "exp", seed=1)
    rc, err = _pack("--exp_dir", exp, "--out", root / "model.pth")
    assert rc == 0, err
    return exp, root / "model.pth"


def _rewrite(obj: dict, path: Path, *, version: int, digest: bool = True) -> Path:
    """``obj`` saved to ``path`` as format ``version``, its sha256 made to match (``digest``) or not."""
    obj = copy.deepcopy(obj)
    obj["format_version"] = version
    if digest:
        obj["sha256"] = weights_digest(obj["state_dict"], obj["config"], obj["metadata"] if version >= 2 else None)
    torch.save(obj, str(path))
    return path


def test_packed_settings_are_under_the_checksum(packed, tmp_path):
    exp, model = packed
    obj = torch.load(str(model), weights_only=True)
    assert obj["format_version"] == PACK_VERSION == 2
    assert {k: obj["metadata"]["inference"][k] for k in SETTINGS} == SETTINGS
    enh = Enhancer.from_pretrained(model)
    assert (enh.vad_floor, enh.vad_threshold, enh.input_mix, enh.segment_seconds) == (0.3, 0.4, 0.1, 2.0)
    x = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    np.testing.assert_array_equal(enh.enhance(x, 16000)[0], Enhancer.from_pretrained(exp).enhance(x, 16000)[0])
    # an edited setting (input_mix 1: the output would be the input, bit for bit) breaks the checksum
    obj["metadata"]["inference"]["input_mix"] = 1
    edited = _rewrite(obj, tmp_path / "edited.pth", version=2, digest=False)
    with pytest.raises(ModelFileError, match="edited.pth: checksum mismatch"):
        Enhancer.from_pretrained(edited)
    obj["metadata"]["inference"]["input_mix"] = 0.1
    obj["metadata"]["scores"] = {"test": {"enhanced": {"pesq": 4.5}}}      # so do edited scores
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model_files(_rewrite(obj, tmp_path / "scores.pth", version=2, digest=False))


@pytest.mark.parametrize("key,value,needle", [
    ("input_mix", 1, "input_mix must be a number from 0 to below 1"),
    ("segment_seconds", 1e6, "segment_seconds must be a number of seconds above 0 and at most 3600"),
    ("segment_seconds", 0, "segment_seconds must be a number of seconds above 0"),
    ("vad_floor", [0.1, 0.2], "vad_floor must be a number from 0 to 1, got [0.1, 0.2]"),
    ("vad_threshold", "high", "vad_threshold must be a number from 0 to 1"),
    ("overlap_seconds", 1.5, "overlap_seconds must be a number of seconds from 0 to half of segment_seconds"),
    ("snr_limit", True, "snr_limit must be a number of dB"),
    ("inference", [1, 2], "metadata inference: must be a mapping"),
])
def test_packed_settings_are_checked_on_load_naming_file_and_key(packed, tmp_path, key, value, needle):
    """Also where no checksum covers them (format 1, as the bundled model) or the checksum was redone."""
    _, model = packed
    obj = torch.load(str(model), weights_only=True)
    if key == "inference":
        obj["metadata"]["inference"] = value
    else:
        obj["metadata"]["inference"][key] = value
    for version in (1, 2):
        bad = _rewrite(obj, tmp_path / f"v{version}.pth", version=version)
        with pytest.raises(ModelFileError) as e:
            load_model_files(bad)
        assert str(e.value).startswith(f"{bad}: metadata inference: ") and needle in str(e.value), str(e.value)
    if key in ("input_mix", "segment_seconds"):      # the CLI: one line, no traceback, nothing written
        import soundfile as sf

        sf.write(tmp_path / "in.wav", np.zeros(16000, np.float32), 16000)
        p = subprocess.run([sys.executable, "-m", "csmvanet.bin.enhance", "--model", str(bad), str(tmp_path / "in.wav"),
                            "--output_dir", str(tmp_path / "out"), "--no_progress"], capture_output=True, text=True)
        lines = [x for x in p.stderr.splitlines() if "error" in x]
        assert p.returncode != 0 and "Traceback" not in p.stderr and len(lines) == 1, p.stderr
        assert str(bad) in lines[0] and key in lines[0] and not list(tmp_path.glob("out/*.wav"))
        print(f"item 5 one-line ({key} {value}):", lines[0])


def test_pack_refuses_another_experiments_weights_and_the_experiments_own_files(packed, tmp_path):
    exp, _ = packed
    other = make_exp(tmp_path / "other", seed=2)
    rc, err = _pack("--exp_dir", exp, "--checkpoint", other / "valid.loss.ave.pth", "--out", tmp_path / "m.pth")
    lines = [x for x in err.splitlines() if "error" in x]
    assert rc == 1 and len(lines) == 1 and not (tmp_path / "m.pth").exists(), err
    assert f"{other / 'valid.loss.ave.pth'}: not a weights file of the experiment dir {exp}" in lines[0]
    assert f"--exp_dir {other}" in lines[0]
    print("item 5 one-line (foreign --checkpoint):", lines[0])
    own = {f: f.read_bytes() for f in exp.iterdir() if f.is_file()}
    for target in ("config.yaml", "valid.loss.best.pth", "valid.loss.ave.pth"):
        rc, err = _pack("--exp_dir", exp, "--out", exp / target)
        lines = [x for x in err.splitlines() if "error" in x]
        assert rc == 1 and len(lines) == 1 and "is one of the experiment dir's own files" in lines[0], err
        assert not (exp / "valid.loss.best.pth").exists()
    print("item 5 one-line (--out over the weights):", lines[0])
    assert {f: f.read_bytes() for f in exp.iterdir() if f.is_file()} == own
    notes = exp / "notes.pth"
    notes.write_bytes(b"mine")
    rc, err = _pack("--exp_dir", exp, "--out", notes)
    assert rc == 1 and "not a packed model" in err and notes.read_bytes() == b"mine"
    notes.unlink()
    for _ in range(2):                 # into a folder of the experiment: written, and re-packed over itself
        rc, err = _pack("--exp_dir", exp, "--out", exp / "packed" / "model.pth")
        assert rc == 0, err
    rc, err = _pack("--exp_dir", exp, "--checkpoint", exp / "valid.loss.ave.pth", "--out", tmp_path / "ok.pth")
    assert rc == 0, err                # a path to the experiment's own weights is fine


def test_packed_training_time_counts_training_not_the_time_between_runs(tmp_path):
    exp = make_exp(tmp_path / "exp", seed=3)
    # two runs an hour apart (killed, resumed later): 2 epochs of 100 s training + 10 s validation
    (exp / "train.log").write_text("2026-01-01 10:00:00 [INFO] command: ...\n2026-01-01 10:01:50 [INFO] epoch 1 done\n"
                                   "2026-01-01 11:00:00 [INFO] command: ... --resume\n"
                                   "2026-01-01 11:01:50 [INFO] epoch 2 done\n")
    (exp / "history.json").write_text(json.dumps([{"epoch": e, "train.seconds": 100.0, "valid.seconds": 10.0}
                                                  for e in (1, 2)]))
    rc, err = _pack("--exp_dir", exp, "--out", tmp_path / "m.pth")
    assert rc == 0, err
    meta = torch.load(str(tmp_path / "m.pth"), weights_only=True)["metadata"]
    assert meta["training_wall_seconds"] == 220.0          # not 3710 (first to last log line)
    (exp / "history.json").unlink()
    rc, err = _pack("--exp_dir", exp, "--out", tmp_path / "m2.pth")
    assert "training_wall_seconds" not in torch.load(str(tmp_path / "m2.pth"), weights_only=True)["metadata"]
