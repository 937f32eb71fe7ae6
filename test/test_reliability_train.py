"""Issue 13 item 8 and the checkpoint half of item 10: a finished training's provenance is kept;
temporary checkpoint files of a killed save are removed by the next save or resume."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))
from test_train import TINY, make_data_dir, run_recipe_stage  # noqa: E402

from csmvanet.checkpoint import save_checkpoint  # noqa: E402


def test_finished_training_keeps_its_config_and_run_sh(tmp_path):
    tr = make_data_dir(tmp_path / "tr", 4, [0.5, 0.8], seed=1)
    cv = make_data_dir(tmp_path / "cv", 2, [0.6], seed=2)
    conf = tmp_path / "tiny.yaml"
    conf.write_text(TINY.replace("epochs: 2", "epochs: 1"))
    exp = tmp_path / "exp"
    p = run_recipe_stage(tmp_path, "--ngpu", "0", str(conf), str(tr), str(cv), str(exp))
    assert p.returncode == 0, p.stdout + p.stderr
    before = {f: (exp / f).read_bytes() for f in ("config.yaml", "run.sh")}
    stale = exp / ".checkpoint_last.k2j4h5l6.tmp.pth"   # a save killed by SIGKILL
    stale.write_bytes(b"\0" * 1000)
    p = run_recipe_stage(tmp_path, "--ngpu", "0", "--train_args", "--optim.lr 0.5 --train.batch_size 1",
                         str(conf), str(tr), str(cv), str(exp))
    out = p.stdout + p.stderr + (exp / "train.log").read_text()
    assert p.returncode != 0, out
    line = [x for x in out.splitlines() if "training already finished" in x and "differing keys" in x]
    assert line and str(exp) in line[0] and "optim.lr" in line[0] and "train.batch_size" in line[0], out
    assert "Traceback" not in p.stderr
    assert {f: (exp / f).read_bytes() for f in before} == before
    assert not stale.exists()   # removed by the resume
    print("item 8 one-line:", line[0].split("\r")[-1])


def test_next_save_removes_temp_checkpoints(tmp_path):
    stale = tmp_path / ".3epoch.abcdefgh.tmp.pth"
    stale.write_bytes(b"\0" * 1000)
    other = tmp_path / ".notes.abcdefgh.tmp.txt"
    other.write_text("x")
    save_checkpoint({"w": torch.zeros(2)}, tmp_path / "4epoch.pth")
    assert not stale.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.abcdefgh.tmp.txt", "4epoch.pth"]
