"""Fine-tuning from trained weights: train.init_param (ESPnet's --init_param,
path[:src_key[:dst_key[:exclude_keys]]]), in csmvanet/train/init_param.py and through csmvanet-train."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from csmvanet.base.errors import TrainingError
from csmvanet.nets import build_model
from csmvanet.train.init_param import init_params, parse_init_param

TINY = {"model": {"channels": [8, 8], "num_conformers": 1, "heads": 1, "ff_mult": 1, "conv_kernel": 3,
                  "conv_expansion": 1, "dropout": 0.0}}


def model(seed: int, channels=(8, 8)):
    torch.manual_seed(seed)
    cfg = {"model": {**TINY["model"], "channels": list(channels)}}
    return build_model(cfg)


@pytest.fixture
def trained(tmp_path):
    """An exp dir (config.yaml + valid.loss.ave.pth) of a model with seed 1, and a bare weights file."""
    exp = tmp_path / "exp"
    exp.mkdir()
    src = model(1)
    (exp / "config.yaml").write_text(yaml.safe_dump(TINY))
    torch.save(src.state_dict(), exp / "valid.loss.ave.pth")
    torch.save({"model": src.state_dict(), "epoch": 3}, tmp_path / "checkpoint_last.pth")
    return exp, src.state_dict()


def same(a: dict, b: dict, names) -> bool:
    return all(torch.equal(a[n], b[n]) for n in names)


def test_whole_model_from_an_exp_dir_and_from_a_checkpoint(trained, tmp_path):
    exp, want = trained
    for path in (exp, exp / "valid.loss.ave.pth", tmp_path / "checkpoint_last.pth"):
        got = init_params(model(2), str(path)).state_dict()
        assert same(got, want, want), path
    assert not same(model(2).state_dict(), want, want)  # the seeds differ: the copy is what made them equal


def test_src_dst_and_exclude_keys(trained):
    exp, want = trained
    first = next(iter(want)).split(".")[0]                 # a top-level module, e.g. the encoder
    under = [n for n in want if n.startswith(first + ".")]
    others = [n for n in want if n not in under]
    fresh = model(2).state_dict()
    got = init_params(model(2), f"{exp}:{first}:{first}").state_dict()
    assert same(got, want, under) and same(got, fresh, others)
    excluded = under[0]
    got = init_params(model(2), f"{exp}:{first}:{first}:{excluded}").state_dict()
    assert same(got, want, under[1:]) and torch.equal(got[excluded], fresh[excluded])


@pytest.mark.parametrize("spec,message", [
    ("{exp}:nosuchmodule", "no parameter under nosuchmodule to take"),
    ("{exp}:{first}:nosuchplace", "has no place in this model"),
    ("{tmp}/missing.pth", "no such model file or experiment dir"),
    ("{exp}:a:b:c:d", "expected path[:src_key[:dst_key[:exclude_keys]]]"),
])
def test_bad_specs_name_the_problem(trained, tmp_path, spec, message):
    exp, want = trained
    first = next(iter(want)).split(".")[0]
    with pytest.raises(TrainingError, match=None) as e:
        init_params(model(2), spec.format(exp=exp, first=first, tmp=tmp_path))
    assert message in str(e.value)


def test_another_model_size_is_refused_naming_the_parameter(trained):
    exp, _ = trained
    with pytest.raises(TrainingError) as e:
        init_params(model(2, channels=(8, 16)), str(exp))
    assert "has shape" in str(e.value) and "another model size?" in str(e.value)


def test_parse_init_param_takes_several_specs():
    assert parse_init_param("a.pth b:enc:dec:enc.x,enc.y") == [("a.pth", "", "", []),
                                                              ("b", "enc", "dec", ["enc.x", "enc.y"])]


def test_csmvanet_train_starts_from_the_given_weights(trained, tmp_path, monkeypatch):
    """With a learning rate of 0 the trained parameters are the initial ones: they must be the given
    weights (normalisation statistics, buffers, do move during training)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    from test_train import TINY as TRAIN_TINY, make_data_dir, run_train

    exp, want = trained
    conf = tmp_path / "tiny.yaml"
    conf.write_text(TRAIN_TINY)
    tr = make_data_dir(tmp_path / "tr", 4, [0.5], seed=1)
    cv = make_data_dir(tmp_path / "cv", 2, [0.5], seed=2)
    out = tmp_path / "ft"
    p = run_train(conf, tr, cv, out, "--train.epochs", "1", "--optim.lr", "0", "--optim.weight_decay", "0",
                  "--train.init_param", str(exp))
    assert "train.init_param:" in p.stderr + (out / "train.log").read_text()
    state = torch.load(out / "checkpoint_last.pth", map_location="cpu", weights_only=True)["model"]
    params = [n for n, _ in model(1).named_parameters()]
    assert same(state, want, params)
    assert not same(model(2).state_dict(), want, params)
    text = (out / "config.yaml").read_text()
    assert yaml.safe_load(text)["train"]["init_param"] == str(exp)
    # ESPnet's config.yaml names the config file on a `config:` line; its show_enh_score.sh runs
    # `grep ^config <exp>/config.yaml` under `set -e` and stops without one
    assert f"config: {conf}\n" in text.splitlines(keepends=True)[0]
    p = run_train(conf, tr, cv, tmp_path / "bad", "--train.init_param", str(tmp_path / "none.pth"), check=False)
    assert p.returncode == 1 and "train.init_param" in p.stderr and "Traceback" not in p.stderr
