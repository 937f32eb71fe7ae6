"""Issue 13 item 8 and the checkpoint half of item 10: a finished training's provenance is kept;
temporary checkpoint files of a killed save are removed by the next save or resume. Issue 30 items
4 and 12: --resume refuses other data and a new seed mid-epoch; a full disk stops training with one
line, the last good checkpoint kept."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))
from test_train import FAULTS, TINY, make_data_dir, run_recipe_stage, run_train  # noqa: E402

from csmvanet.experiment.checkpoint import save_checkpoint  # noqa: E402


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


# ---------------------------------------------------------------------------------------------
# issue 30 item 4: --resume on other data, or with another seed mid-epoch, is refused
# ---------------------------------------------------------------------------------------------

def _train_in_process(*args: str) -> tuple[int, str]:
    import contextlib
    import io

    from csmvanet.bin.train import main as train_main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = train_main([str(a) for a in args])
    return rc, err.getvalue()


def test_resume_refuses_other_data_and_another_seed_mid_epoch(tmp_path):
    tr = make_data_dir(tmp_path / "tr", 8, [0.5, 0.8], seed=1)
    cv = make_data_dir(tmp_path / "cv", 2, [0.6], seed=2)
    te = make_data_dir(tmp_path / "te", 8, [0.7, 0.9], seed=5)     # a test set: same size, other utterances
    conf = tmp_path / "tiny.yaml"
    conf.write_text(TINY.replace("deterministic: true", "deterministic: false"))
    exp = tmp_path / "exp"
    # killed after step 3: checkpoint_last.pth holds epoch 1 step 2 (mid-epoch)
    p = run_train(conf, tr, cv, exp, launcher=FAULTS + ["--kill_after_step", "3"], check=False)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    last = exp / "checkpoint_last.pth"
    before = last.read_bytes()
    common = ["--config", conf, "--exp_dir", exp, "--resume"]
    cases = {"--train_dir": (["--train_dir", te, "--valid_dir", cv], [str(tr), str(te), "--train_dir"]),
             "--valid_dir": (["--train_dir", tr, "--valid_dir", te], [str(cv), str(te), "--valid_dir"]),
             "--seed": (["--train_dir", tr, "--valid_dir", cv, "--seed", "5"], ["train.seed 5", "mid-epoch"])}
    for case, (args, needles) in cases.items():
        rc, err = _train_in_process(*common, *args)
        lines = [x for x in err.splitlines() if "error:" in x]
        assert rc == 1 and len(lines) == 1 and "Traceback" not in err, err
        assert all(n in lines[0] for n in needles), lines[0]
        assert last.read_bytes() == before                         # nothing trained, nothing written
        print(f"item 4 one-line ({case}):", lines[0])
    # the same utterances in a moved copy of the data dir: resumed, and trained to the end
    moved = tmp_path / "moved_tr"
    tr.rename(moved)
    for scp in ("wav.scp", "spk1.scp", "vad_labels.scp"):
        (moved / scp).write_text((moved / scp).read_text().replace(str(tr), str(moved)))
    p = run_train(conf, moved, cv, exp, "--resume")
    log = (exp / "train.log").read_text()
    assert "holds the same utterances" in log and "resumed from" in log and "epoch 1, step 2/4" in log
    assert torch.load(last, weights_only=True)["global_step"] == 8


def test_a_new_seed_or_batch_size_at_an_epoch_boundary_only_warns(caplog):
    from csmvanet.base.errors import TrainingError
    from csmvanet.train.resume import check_resume

    fp = {"dir": "/d/tr", "utterances": 8, "sha256": "ab"}
    data = {"train": fp, "valid": {**fp, "dir": "/d/cv"}}
    cfg = {"model": {}, "stft": {}, "train": {"seed": 0, "batch_size": 2}}
    state = {"config": cfg, "data": data, "epoch": 3, "step": 0}
    new = {**cfg, "train": {"seed": 7, "batch_size": 4}}
    with caplog.at_level("WARNING", logger="csmvanet.train.trainer"):
        check_resume(state, Path("/e/checkpoint_last.pth"), new, data)
    assert "train.seed changed from 0 to 7: epochs from 3 on use the new value" in caplog.text
    assert "train.batch_size changed from 2 to 4" in caplog.text
    with pytest.raises(TrainingError, match=r"mid-epoch \(epoch 3, step 1\) with train.seed 7 instead of"):
        check_resume({**state, "step": 1}, Path("/e/checkpoint_last.pth"), {**cfg, "train": {"seed": 7, "batch_size": 2}},
                     data)
    moved = {**data, "train": {**fp, "dir": "/elsewhere/tr"}}
    check_resume(state, Path("/e/checkpoint_last.pth"), cfg, moved)                  # same utterances: fine
    changed = {**data, "train": {**fp, "sha256": "cd", "utterances": 9}}
    with pytest.raises(TrainingError, match="the data of --train_dir /d/tr changed since /e/checkpoint_last.pth"):
        check_resume(state, Path("/e/checkpoint_last.pth"), cfg, changed)
    check_resume({**state, "data": None}, Path("/e/checkpoint_last.pth"), cfg, changed)   # older checkpoint


# ---------------------------------------------------------------------------------------------
# issue 30 item 12: a full disk during training: one line, the last good checkpoint kept
# ---------------------------------------------------------------------------------------------

@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full to simulate a full disk")
def test_full_disk_during_training_gives_one_line_and_keeps_the_last_checkpoint(tmp_path):
    tr = make_data_dir(tmp_path / "tr", 8, [0.5, 0.8], seed=1)
    cv = make_data_dir(tmp_path / "cv", 2, [0.6], seed=2)
    conf = tmp_path / "tiny.yaml"
    conf.write_text(TINY)
    exp = tmp_path / "exp"
    # 4 steps per epoch, a checkpoint every 2: the disk is full after global step 5 (epoch 2 step 1), so
    # the save after epoch 2 step 2 fails; checkpoint_last.pth holds the end of epoch 1 (epoch 2, step 0)
    p = run_train(conf, tr, cv, exp, launcher=FAULTS + ["--disk_full_after_step", "5"], check=False)
    assert p.returncode == 1, p.stderr[-3000:]
    assert "Traceback" not in p.stderr and "Logging error" not in p.stderr, p.stderr
    said = [x for x in p.stderr.splitlines() if not x.startswith("20")]   # not the log lines
    errors = [x for x in said if "error:" in x]
    assert len(errors) == 1, p.stderr
    last = exp / "checkpoint_last.pth"
    assert errors[0] == (f"csmvanet-train: error: {last}: cannot write (No space left on device) at epoch 2 step 2; "
                         f"the last good state, {last} (epoch 2, step 0), is kept: free space and continue with "
                         "--resume")
    assert said == [f"{exp / 'train.log'}: cannot write (No space left on device): further log lines go to "
                    "stderr only", errors[0]]
    state = torch.load(last, weights_only=True)
    assert (state["epoch"], state["step"], state["global_step"]) == (2, 0, 4)
    assert not [f for f in exp.iterdir() if ".tmp" in f.name]        # no half-written temporary file
    print("item 12 one-line:", errors[0])
    # space freed: the run continues from there to the end
    run_train(conf, tr, cv, exp, "--resume")
    assert torch.load(last, weights_only=True)["global_step"] == 8
