"""Training paths the other training tests do not reach: SIGTERM stop + resume with DataLoader workers,
gradient clipping, the learning-rate schedule, checkpoint choice by a validation metric that is
maximised (PESQ).

Same tiny model and data as test_train. Runs in this process through ``csmvanet.train.trainer.train``
except the SIGTERM test, which signals a real ``csmvanet.bin.train`` process.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from csmvanet.base.config import load_config
from csmvanet.experiment import checkpoint as ckpt
from csmvanet.train.trainer import train
from test_train import TINY, _env, _max_diff, make_data_dir, run_train


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_paths")
    tr = make_data_dir(root / "tr", 8, [0.5, 0.8, 1.0, 0.6], seed=1)
    cv = make_data_dir(root / "cv", 2, [1.5, 2.0], seed=2)     # long enough for PESQ
    conf = root / "tiny.yaml"
    conf.write_text(TINY)
    return root, conf, tr, cv


def _cfg(conf: Path, **train_opts) -> dict:
    cfg = load_config(conf)
    cfg["train"].update({"deterministic": False, "save_every_steps": 0, **train_opts})
    return cfg


def _one_thread(fn, *args, **kwargs):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)


def test_sigterm_stops_saves_and_resume_with_workers_is_exact(tiny_data, tmp_path):
    """SIGTERM (a cluster time limit) mid-training: the step finishes, checkpoint_last.pth is saved, the
    run exits 1 naming --resume; resuming with 2 DataLoader workers ends bit-identical to an
    uninterrupted run with 2 workers."""
    root, conf, tr, cv = tiny_data
    opts = ["--train.num_workers", "2", "--train.epochs", "3", "--train.save_every_steps", "0"]
    full = tmp_path / "full"
    run_train(conf, tr, cv, full, *opts)

    exp = tmp_path / "term"
    cmd = [sys.executable, "-m", "csmvanet.bin.train", "--config", str(conf), "--train_dir", str(tr),
           "--valid_dir", str(cv), "--exp_dir", str(exp), *opts]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        log = exp / "train.log"
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if log.is_file() and "epoch 1 step 2/4" in log.read_text():
                break
            time.sleep(0.05)
        assert proc.poll() is None, "training ended before it could be signalled"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err[-2000:]
    assert "stopped by SIGTERM after epoch" in err and "--resume" in err
    state = ckpt.load_checkpoint(exp / "checkpoint_last.pth")
    assert (state["epoch"], state["global_step"]) < (3, 12)
    assert state["step"] >= 2 or state["epoch"] > 1

    run_train(conf, tr, cv, exp, "--resume", *opts)
    a = ckpt.load_checkpoint(full / "checkpoint_last.pth")
    b = ckpt.load_checkpoint(exp / "checkpoint_last.pth")
    assert a["global_step"] == b["global_step"] == 12
    assert _max_diff(a["model"], b["model"]) <= 1e-6
    ha = json.loads((full / "history.json").read_text())
    hb = json.loads((exp / "history.json").read_text())
    assert [h["valid.loss"] for h in ha] == pytest.approx([h["valid.loss"] for h in hb], abs=1e-6)


def _weights_after_one_step(cfg, tr, cv, exp) -> dict:
    _one_thread(train, cfg, tr, cv, exp, ngpu=0)
    return ckpt.load_checkpoint(exp / "checkpoint_last.pth")["model"]


def test_gradient_clipping_limits_the_update(tiny_data, tmp_path):
    """AdamW normalises the gradient, so clipping shows where the clipped gradient meets Adam's eps:
    clipped to norm 1e-9 the first step barely moves the weights; unclipped it moves them by ~lr."""
    root, conf, tr, cv = tiny_data
    common = {"epochs": 1, "batch_size": 8, "seed": 3}
    cfg = _cfg(conf, **common)
    lr = 5e-4
    runs = {}
    for name, clip, rate in (("init", 0, 0.0), ("free", 0, lr), ("clip", 1e-9, lr)):
        c = {**cfg, "train": {**cfg["train"], "grad_clip": clip}, "optim": {"lr": rate, "weight_decay": 0.0}}
        runs[name] = _weights_after_one_step(c, tr, cv, tmp_path / name)
    free = _max_diff(runs["init"], runs["free"])
    clipped = _max_diff(runs["init"], runs["clip"])
    assert 0.5 * lr < free < 2 * lr, free
    assert clipped < 0.05 * free, (clipped, free)


def test_learning_rate_schedule_is_steplr(tiny_data, tmp_path):
    root, conf, tr, cv = tiny_data
    cfg = _cfg(conf, epochs=4, batch_size=8)
    cfg["optim"] = {"lr": 1e-3}
    cfg["scheduler"] = {"name": "steplr", "step_size": 2, "gamma": 0.25}
    _one_thread(train, cfg, tr, cv, tmp_path / "exp", ngpu=0)
    hist = json.loads((tmp_path / "exp" / "history.json").read_text())
    assert [h["lr"] for h in hist] == pytest.approx([1e-3, 1e-3, 2.5e-4, 2.5e-4], rel=1e-9)
    state = ckpt.load_checkpoint(tmp_path / "exp" / "checkpoint_last.pth")
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(6.25e-5, rel=1e-9)


def test_best_checkpoints_by_pesq_are_the_highest(tiny_data, tmp_path):
    """train.best_criterion valid.pesq keeps and averages the epochs with the HIGHEST PESQ."""
    root, conf, tr, cv = tiny_data
    cfg = _cfg(conf, epochs=3, batch_size=4, nbest=2, best_criterion="valid.pesq", valid_metrics_subset=2)
    cfg["optim"] = {"lr": 3e-3}
    exp = tmp_path / "exp"
    _one_thread(train, cfg, tr, cv, exp, ngpu=0)
    hist = json.loads((exp / "history.json").read_text())
    pesq = {h["epoch"]: h["valid.pesq"] for h in hist}
    assert len(set(pesq.values())) == 3, pesq          # distinct: the choice matters
    want = sorted(pesq, key=lambda e: -pesq[e])[:2]
    rows = [line.split() for line in (exp / "valid.pesq.best.txt").read_text().splitlines()]
    assert [int(r[1]) for r in rows] == want
    ave = ckpt.load_model_state(exp / "valid.pesq.ave.pth")
    states = [ckpt.load_model_state(ckpt.epoch_file(exp, e)) for e in want]
    for k, v in ave.items():
        if v.is_floating_point():
            torch.testing.assert_close(v, (states[0][k] + states[1][k]) / 2, rtol=0, atol=1e-7)
