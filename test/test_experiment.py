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
