"""The experiment layer: one resolution of the config into typed sections, one provenance string."""
from __future__ import annotations

import re

import pytest
import torch

from csmvanet.base.errors import ConfigError
from csmvanet.experiment.resolved_config import TRAIN_DEFAULTS, Experiment, resolve_config
from csmvanet.nets import build_model

SECTIONS = {"stft": "hop_length", "model": "num_conformers", "loss": "mag", "optim": "lr",
            "scheduler": "step_size", "train": "batch_size"}


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_unknown_key_names_it_and_the_valid_ones(section, tiny_config):
    cfg = dict(tiny_config, **{section: dict(tiny_config.get(section) or {}, bogus_key=1)})
    with pytest.raises(ConfigError) as e:
        Experiment.from_config(cfg)
    msg = str(e.value)
    assert "bogus_key" in msg and section in msg and SECTIONS[section] in msg, msg
    assert isinstance(e.value, ValueError)       # entry points report it as a user error


def test_sections_are_typed_and_the_dict_is_what_config_yaml_holds(tiny_config):
    exp = Experiment.from_config(dict(tiny_config, train={"epochs": 3}), seed=7)
    assert exp.train.epochs == 3 and exp.train.seed == 7 and exp.train.nbest == TRAIN_DEFAULTS["nbest"]
    assert exp.optim.lr == 5e-4 and exp.scheduler.step_size == 30 and exp.stft.hop_length == 100
    assert exp.config["train"] == dict(TRAIN_DEFAULTS, epochs=3, seed=7)
    assert list(exp.config) == ["stft", "model", "loss", "train", "optim", "scheduler"]
    assert resolve_config(exp.config) == exp.config               # resolving twice changes nothing
    torch.manual_seed(0)
    a = exp.build_model().state_dict()
    torch.manual_seed(0)
    b = build_model(tiny_config).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_one_git_hash_format():
    from csmvanet.reports.results_md import environment
    from csmvanet.base.version import git_hash

    h = git_hash()
    assert h == "unknown" or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", h), h
    assert environment(None)["git"] == h


# ------------------------------------------------------------------ unknown sections, bad model values
KNOWN = ("loss", "model", "optim", "scheduler", "stft", "train")


def _train_cli(tmp_path, conf_text: str, *overrides: str):
    """csmvanet-train (a subprocess) on config ``conf_text``; data dirs that do not exist: a config
    error must come before any data is read or any file written."""
    import os
    import subprocess
    import sys

    conf = tmp_path / "conf.yaml"
    conf.write_text(conf_text)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "csmvanet.bin.train", "--config", str(conf), "--train_dir",
                        str(tmp_path / "tr"), "--valid_dir", str(tmp_path / "cv"), "--exp_dir", str(tmp_path / "exp"),
                        *overrides], capture_output=True, text=True, env=env, timeout=120)
    return r, conf


def _one_error_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("csmvanet-train: error: "), lines
    return lines[0]


def test_unknown_section_in_the_config_file_fails_naming_file_section_and_known_ones(tmp_path):
    r, conf = _train_cli(tmp_path, "model:\n  channels: [8, 8]\ntrian:\n  epochs: 10\n")
    line = _one_error_line(r)
    assert str(conf) in line and "'trian'" in line, line
    assert all(s in line for s in KNOWN), line
    assert not (tmp_path / "exp").exists()


@pytest.mark.parametrize("override", [["--trian.epochs", "10"], ["--trian.epochs=10"], ["trian.epochs=10"],
                                      ["--epochs", "10"]])
def test_unknown_section_in_an_override_fails_naming_the_override(tmp_path, override):
    r, _ = _train_cli(tmp_path, "model:\n  channels: [8, 8]\n", *override)
    line = _one_error_line(r)
    name = override[0].lstrip("-").split("=")[0]
    assert f"override --{name}" in line and f"'{name.split('.')[0]}'" in line, line
    assert all(s in line for s in KNOWN), line
    assert not (tmp_path / "exp").exists()


def test_unknown_section_fails_in_the_resolution_too(tiny_config):
    with pytest.raises(ConfigError) as e:
        Experiment.from_config(dict(tiny_config, trian={"epochs": 10}))
    assert "'trian'" in str(e.value) and all(s in str(e.value) for s in KNOWN), e.value
    Experiment.from_config(dict(tiny_config, config="conf/train.yaml"))   # the provenance key of config.yaml


def test_model_vad_floor_out_of_range_fails_at_csmvanet_train_in_one_line(tmp_path):
    r, _ = _train_cli(tmp_path, "model:\n  channels: [8, 8]\n  vad_floor: 2\n")
    assert _one_error_line(r) == "csmvanet-train: error: model.vad_floor: 2 is outside [0, 1]"
    assert not (tmp_path / "exp").exists()


@pytest.mark.parametrize("key, value, needle", [
    ("vad_floor", -0.1, "model.vad_floor: -0.1 is outside [0, 1]"),
    ("vad_floor", "high", "model.vad_floor: 'high' is not a number"),
    ("dropout", 1.0, "model.dropout: 1.0 is outside [0, 1)"),
    ("channels", [8, 0], "model.channels: [8, 0]"),
    ("channels", [], "model.channels"),
    ("heads", 0, "model.heads: 0"),
    ("num_conformers", -1, "model.num_conformers: -1"),
    ("conv_kernel", 0, "model.conv_kernel: 0"),
    ("kernel_size", [3], "model.kernel_size: [3]"),
    ("vad_kernel", 2.5, "model.vad_kernel: 2.5"),
    ("rel_pos_clamp", 0, "model.rel_pos_clamp: 0"),
    ("msgc", "yes", "model.msgc: 'yes'"),
])
def test_the_network_checks_its_config_values(tiny_config, key, value, needle):
    cfg = dict(tiny_config, model=dict(tiny_config["model"], **{key: value}))
    for build in (lambda: Experiment.from_config(cfg), lambda: build_model(cfg)):
        with pytest.raises(ConfigError) as e:
            build()
        assert str(e.value).startswith(needle), e.value


def test_the_training_config_is_resolved_once_and_that_experiment_is_what_the_trainer_uses(tiny_config, tmp_path,
                                                                                            monkeypatch):
    from test_train import make_data_dir

    from csmvanet.train import trainer

    tr, cv = make_data_dir(tmp_path / "tr", 2, [0.5], seed=1), make_data_dir(tmp_path / "cv", 1, [0.5], seed=2)
    resolved, used = [], []
    real = Experiment.from_config.__func__
    monkeypatch.setattr(Experiment, "from_config",
                        classmethod(lambda cls, cfg, seed=None: resolved.append(real(cls, cfg, seed)) or resolved[-1]))

    def run(self):     # stands in for the loop: what the trainer was set up with
        used.append(self.experiment)
        self.reporter.close()
        self._logging.close()
        return {}

    monkeypatch.setattr(trainer.Trainer, "run", run)
    trainer.train(dict(tiny_config, train={"epochs": 1, "batch_size": 2, "num_workers": 0, "tensorboard": False}), tr, cv,
                  tmp_path / "exp", seed=5)
    assert len(resolved) == 1 and used == resolved and used[0].train.seed == 5
