"""Training engine: exact resume after SIGKILL, DDP equivalence, best-N averaging, safe checkpoints,
data segments aligned with VAD frames, no checkpoint selection on a test set.

Tiny model (channels [8, 8], one TF-Conformer block, no dropout) on tiny synthetic data dirs; every
training run is a subprocess of the real CLI (or of the recipe stage steps/train.sh).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf
import torch

from csmvanet.audio.stft import STFTConfig, stft
from csmvanet.base.config import load_config
from csmvanet.data.dataset import GlobalBatchSampler, TrainSegments, segment_labels
from csmvanet.experiment import checkpoint as ckpt
from csmvanet.nets import build_model
from csmvanet.train.trainer import train
from fault_hooks import DesyncRank

REPO = Path(__file__).resolve().parents[1]
# csmvanet-train with the fault-injection hooks of test/fault_hooks.py
FAULTS = [sys.executable, str(Path(__file__).resolve().parent / "fault_hooks.py")]
VENV_BIN = Path(sys.executable).parent
TINY = """\
model:
  channels: [8, 8]
  num_conformers: 1
  heads: 1
  ff_mult: 1
  conv_kernel: 3
  conv_expansion: 1
  dropout: 0.0
train:
  epochs: 2
  batch_size: 2
  segment_seconds: 0.3
  num_workers: 0
  save_every_steps: 2
  log_interval: 1
  nbest: 2
  deterministic: true
  tensorboard: false
  plot: false
"""


def make_data_dir(d: Path, n: int, seconds: list[float], seed: int, *, nan_clean: bool = False) -> Path:
    """n utterances (a gated tone + noise), 16 kHz, with utt2num_samples and int32 VAD labels."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cfg = STFTConfig()
    wav, spk1, nums, labels = [], [], [], {}
    for i in range(n):
        key = f"u{i:02d}"
        num = int(seconds[i % len(seconds)] * 16000)
        t = np.arange(num) / 16000
        gate = np.sin(2 * np.pi * 2 * t) > 0
        clean = (0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) * gate).astype(np.float32)
        noisy = (clean + 0.05 * rng.standard_normal(num)).astype(np.float32)
        if nan_clean:
            clean[::7] = np.nan
        sf.write(d / f"{key}_n.wav", noisy, 16000)
        sf.write(d / f"{key}_c.wav", clean, 16000, subtype="FLOAT" if nan_clean else "PCM_16")
        wav.append(f"{key} {d / f'{key}_n.wav'}\n")
        spk1.append(f"{key} {d / f'{key}_c.wav'}\n")
        nums.append(f"{key} {num}\n")
        centres = np.minimum(np.arange(cfg.num_frames(num)) * cfg.hop_length, num - 1)
        labels[key] = gate[centres].astype(np.int32)
    (d / "wav.scp").write_text("".join(wav))
    (d / "spk1.scp").write_text("".join(spk1))
    (d / "utt2num_samples").write_text("".join(nums))
    kaldiio.save_ark(str(d / "vad_labels.ark"), labels, scp=str(d / "vad_labels.scp"))
    return d


def _env(**extra) -> dict:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_train(conf: Path, tr: Path, cv: Path, exp: Path, *extra: str, env=None, launcher=None, check=True):
    cmd = (launcher or [sys.executable, "-m", "csmvanet.bin.train"]) + [
        "--config", str(conf), "--train_dir", str(tr), "--valid_dir", str(cv), "--exp_dir", str(exp), *extra]
    p = subprocess.run(cmd, env=env or _env(), capture_output=True, text=True, timeout=240)
    if check and p.returncode != 0:
        raise AssertionError(f"training failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def run_recipe_stage(workdir: Path, *args: str, env=None):
    """egs/TEMPLATE/steps/train.sh from a recipe-like dir (utils/ and steps/ symlinked)."""
    for name, target in (("utils", REPO / "utils"), ("steps", REPO / "egs" / "TEMPLATE" / "steps")):
        if not (workdir / name).exists():
            (workdir / name).symlink_to(target)
    # one thread, as run_train: bit-identical results need the same thread count in every run
    return subprocess.run(["bash", "steps/train.sh", "--num_threads", "1", *args], cwd=workdir, env=env or _env(),
                          capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    tr = make_data_dir(root / "tr", 8, [0.5, 0.8, 1.0, 0.2], seed=1)   # 0.2 s < segment: padded
    cv = make_data_dir(root / "cv", 2, [0.6, 1.0], seed=2)
    conf = root / "tiny.yaml"
    conf.write_text(TINY)
    return root, conf, tr, cv


@pytest.fixture(scope="module")
def full_run(data):
    """An uninterrupted 2-epoch run through the recipe stage (run.pl writes exp/train.log)."""
    root, conf, tr, cv = data
    exp = root / "exp_full"
    p = run_recipe_stage(root, "--ngpu", "0", "--train_args", "--train.tensorboard true --train.plot true",
                         str(conf), str(tr), str(cv), str(exp))
    assert p.returncode == 0, p.stdout + p.stderr + (exp / "train.log").read_text()
    return exp


def _model(path: Path) -> dict:
    return ckpt.load_checkpoint(path)["model"]


def _max_diff(a: dict, b: dict, names=None) -> float:
    keys = names if names is not None else a.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in keys if a[k].is_floating_point())


# ------------------------------------------------------------------------------------------- (1)

def test_sigkill_mid_epoch_then_resume_gives_identical_weights(data, full_run):
    root, conf, tr, cv = data
    exp = root / "exp_killed"
    # 4 steps/epoch, checkpoints at steps 2 (mid-epoch) and 4 (epoch end); global step 7 = epoch 2 step 3,
    # one step after the mid-epoch checkpoint (epoch 2, step 2): that step is lost and must be redone.
    p = run_train(conf, tr, cv, exp, launcher=FAULTS + ["--kill_after_step", "7"], check=False)
    assert p.returncode == -signal.SIGKILL, p.stderr[-2000:]
    state = ckpt.load_checkpoint(exp / "checkpoint_last.pth")
    assert (state["epoch"], state["step"], state["global_step"]) == (2, 2, 6)
    killed_weights = state["model"]

    # the recipe stage sees checkpoint_last.pth and resumes by itself
    p = run_recipe_stage(root, "--ngpu", "0", str(conf), str(tr), str(cv), str(exp))
    assert p.returncode == 0, p.stdout + p.stderr
    log = (exp / "train.log").read_text()
    assert "resumed from" in log and "epoch 2, step 2/4" in log
    assert (exp / "train.log.1").is_file()          # the killed attempt's log is kept

    final_full = ckpt.load_checkpoint(full_run / "checkpoint_last.pth")
    final_resumed = ckpt.load_checkpoint(exp / "checkpoint_last.pth")
    assert final_resumed["global_step"] == final_full["global_step"] == 8
    diff = _max_diff(final_full["model"], final_resumed["model"])
    print(f"\nresume vs uninterrupted: max |weight difference| = {diff:.3g}")
    assert diff <= 1e-6
    assert _max_diff(killed_weights, final_resumed["model"]) > 1e-6   # it did train after the resume
    h_full = json.loads((full_run / "history.json").read_text())
    h_res = json.loads((exp / "history.json").read_text())
    assert [h["valid.loss"] for h in h_full] == pytest.approx([h["valid.loss"] for h in h_res], abs=1e-6)
    assert [h["train.loss"] for h in h_full] == pytest.approx([h["train.loss"] for h in h_res], abs=1e-6)


def test_experiment_dir_contents(full_run):
    exp = full_run
    for name in ("config.yaml", "run.sh", "train.log", "checkpoint_last.pth", "history.json", "curves.png",
                 "valid.loss.best.txt", "valid.loss.best.pth", "valid.loss.ave.pth"):
        assert (exp / name).is_file(), name
    assert list((exp / "tensorboard").glob("events.out.tfevents.*"))
    cfg = load_config(exp / "config.yaml")
    assert cfg["optim"]["lr"] == 5e-4 and cfg["scheduler"] == {"name": "steplr", "step_size": 30, "gamma": 0.5}
    assert cfg["train"]["batch_size"] == 2 and cfg["train"]["plot"] is True   # override recorded
    run_sh = (exp / "run.sh").read_text()
    assert "--train.tensorboard true" in run_sh and "--valid_dir" in run_sh and os.access(exp / "run.sh", os.X_OK)
    log = (exp / "train.log").read_text()
    assert "git " in log and "torch " in log and "epoch 2 done" in log
    assert log.count("epoch 2 done") == 1          # not logged twice (stderr is already the run.pl log)
    # ranking: by valid.loss, best first; the kept epoch files are exactly the N=2 best
    hist = json.loads((exp / "history.json").read_text())
    rows = [line.split() for line in (exp / "valid.loss.best.txt").read_text().splitlines()]
    want = sorted(hist, key=lambda h: h["valid.loss"])[:2]
    assert [int(r[1]) for r in rows] == [h["epoch"] for h in want]


# ------------------------------------------------------------------------------------------- (3)

def test_best_n_average_loads_and_decodes(full_run, tmp_path):
    exp = full_run
    rows = [line.split() for line in (exp / "valid.loss.best.txt").read_text().splitlines()]
    epochs = [int(r[1]) for r in rows]
    assert len(epochs) == 2
    states = [ckpt.load_model_state(ckpt.epoch_file(exp, e)) for e in epochs]
    ave = ckpt.load_model_state(exp / "valid.loss.ave.pth")
    for k, v in ave.items():
        if v.is_floating_point():
            torch.testing.assert_close(v, (states[0][k] + states[1][k]) / 2, rtol=0, atol=1e-7)
    assert _max_diff(states[0], states[1]) > 0     # averaging two different models
    assert _max_diff(ckpt.load_model_state(exp / "valid.loss.best.pth"), states[0]) == 0   # the best epoch's

    model = build_model(load_config(exp / "config.yaml"))
    model.load_state_dict(ave, strict=True)
    model.eval()
    x = torch.from_numpy(sf.read(str(exp.parent / "cv" / "u01_n.wav"), dtype="float32")[0])[None]
    with torch.no_grad():
        out = model(x)
    assert out["wave"].shape == x.shape and torch.isfinite(out["wave"]).all()
    assert out["vad"].shape == (1, STFTConfig().num_frames(x.shape[1]))

    # csmvanet-average re-averages: N=1 gives exactly the best epoch's weights
    work = tmp_path / "exp"
    work.mkdir()
    for f in ["history.json", "config.yaml"] + [ckpt.epoch_file(exp, e).name for e in epochs]:
        (work / f).write_bytes((exp / f).read_bytes())
    from csmvanet.bin.average import main as average_main
    assert average_main(["--exp_dir", str(work), "--nbest", "1"]) == 0
    best = ckpt.load_model_state(work / "valid.loss.ave.pth")
    assert _max_diff(best, states[0]) == 0


def test_rank_epochs_best_first_ties_to_the_earlier_epoch():
    hist = [{"epoch": 1, "valid.loss": 0.5, "valid.pesq": 2.0}, {"epoch": 2, "valid.loss": 0.3, "valid.pesq": 2.5},
            {"epoch": 3, "valid.loss": 0.3, "valid.pesq": 2.5}, {"epoch": 4, "valid.loss": float("nan")}, {"epoch": 5}]
    assert ckpt.rank_epochs(hist, "valid.loss") == [(2, 0.3), (3, 0.3), (1, 0.5)]   # NaN / missing left out
    assert ckpt.rank_epochs(hist, "valid.pesq", 2) == [(2, 2.5), (3, 2.5)]            # higher is better


# ------------------------------------------------------------------------------------------- (2)

def test_ddp_two_ranks_match_single_process(data, tmp_path, monkeypatch):
    root, conf, tr, cv = data
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = load_config(conf)
    cfg["train"].update({"epochs": 1, "batch_size": 4, "save_every_steps": 0, "deterministic": False,
                         "ddp_check_every": 1})
    ddp_exp, single_exp = tmp_path / "ddp", tmp_path / "single"
    # 2 processes (gloo, CPU), started like torchrun would (RANK, WORLD_SIZE, MASTER_ADDR ...)
    train(cfg, tr, cv, ddp_exp, ngpu=0, nproc=2)
    # one process, the same global batches of 4 as 2 micro-batches of 2 (what each rank computes), with
    # the ranks' thread count: AdamW turns any rounding difference of a near-zero gradient into an
    # lr-sized step, so the comparison needs the same arithmetic, not a loose tolerance
    cfg["train"]["accum_grad"] = 2
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg, tr, cv, single_exp, ngpu=0)
    finally:
        torch.set_num_threads(threads)
    log = (ddp_exp / "train.log").read_text()
    assert "processes 2" in log
    for step in (1, 2):                            # 8 utterances / 4 = 2 steps
        assert f"ddp check at step {step}: weights identical on 2 ranks" in log
    a, b = _model(ddp_exp / "checkpoint_last.pth"), _model(single_exp / "checkpoint_last.pth")
    params = [n for n, _ in build_model(cfg).named_parameters()]
    assert _max_diff(a, ckpt.load_model_state(ddp_exp / "epoch1.pth")) == 0
    diff = _max_diff(a, b, names=params)
    print(f"\nDDP (2 ranks x 2) vs 1 process (2 micro-batches x 2): max |weight difference| = {diff:.3g}")
    assert diff < 1e-5
    ha = json.loads((ddp_exp / "history.json").read_text())[-1]
    hb = json.loads((single_exp / "history.json").read_text())[-1]
    assert ha["train.loss"] == pytest.approx(hb["train.loss"], abs=1e-5)
    assert ha["valid.loss"] == pytest.approx(hb["valid.loss"], abs=1e-4)


def test_ddp_rank_check_detects_divergence(data, tmp_path, monkeypatch):
    """The per-step check is real: ranks made to differ (rank 1 skips a step) are reported."""
    root, conf, tr, cv = data
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = load_config(conf)
    cfg["train"].update({"epochs": 1, "batch_size": 4, "deterministic": False, "ddp_check_every": 1})
    with pytest.raises(Exception, match="DDP ranks hold different weights after step 1"):
        train(cfg, tr, cv, tmp_path / "exp", ngpu=0, nproc=2, hooks=[DesyncRank(1)])


# ------------------------------------------------------------------------------------------- (4)

def test_bad_checkpoints_give_clear_errors(tmp_path):
    good = tmp_path / "good.pth"
    ckpt.save_checkpoint({"model": {"w": torch.randn(300, 100)}, "epoch": 3}, good)
    assert ckpt.load_checkpoint(good)["epoch"] == 3
    raw = good.read_bytes()
    cases = {
        "truncated.pth": raw[: len(raw) // 2],
        "corrupted.pth": raw[:60000] + bytes(b ^ 0xFF for b in raw[60000:60016]) + raw[60016:],
        "garbage.pth": b"this is not a checkpoint at all" * 10,
        "empty.pth": b"",
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(ckpt.CheckpointError) as e:
            ckpt.load_checkpoint(tmp_path / name)
        msg = str(e.value)
        assert str(tmp_path / name) in msg, msg
        assert "Traceback" not in msg and "Weights only load failed" not in msg and len(msg) < 300
    assert "CRC" in str(pytest.raises(ckpt.CheckpointError, ckpt.load_checkpoint, tmp_path / "corrupted.pth").value)
    with pytest.raises(ckpt.CheckpointError, match="no such"):
        ckpt.load_checkpoint(tmp_path / "missing.pth")

    # objects that weights_only refuses: a clear error, never unpickled
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    torch.save({"x": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ckpt.CheckpointError, match="evil.pth.*refused"):
        ckpt.load_checkpoint(tmp_path / "evil.pth")


def test_resume_from_truncated_checkpoint_names_the_file(data, tmp_path):
    root, conf, tr, cv = data
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "checkpoint_last.pth").write_bytes(b"PK\x03\x04 half a zip")
    from csmvanet.bin.train import main as train_main
    import contextlib
    import io
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = train_main(["--config", str(conf), "--train_dir", str(tr), "--valid_dir", str(cv), "--exp_dir", str(exp),
                         "--resume", "--train.deterministic", "false"])
    assert rc == 1
    assert f"{exp / 'checkpoint_last.pth'}: truncated or not a torch checkpoint" in err.getvalue()


def test_atomic_save_keeps_old_file_on_crash(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint_last.pth"
    ckpt.save_checkpoint({"epoch": 1}, path)

    def crash(obj, f, *a, **k):
        f.write(b"partial")
        raise KeyboardInterrupt("killed while writing")
    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_last.pth"]


def test_lint_every_torch_load_uses_weights_only():
    calls = 0
    for f in (REPO / "csmvanet").rglob("*.py"):
        text = f.read_text()
        for m in re.finditer(r"torch\.load\(", text):
            depth, i = 1, m.end()
            while depth and i < len(text):
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            args = text[m.end():i - 1]
            calls += 1
            assert re.search(r"weights_only\s*=\s*True", args), f"{f}: torch.load({args}) lacks weights_only=True"
    assert calls >= 1


# ------------------------------------------------------------------------------- non-finite steps

def test_nonfinite_losses_are_skipped_then_abort(data, tmp_path, capsys):
    root, conf, _, cv = data
    bad = make_data_dir(tmp_path / "nan_tr", 4, [0.5], seed=3, nan_clean=True)
    from csmvanet.bin.train import main as train_main
    rc = train_main(["--config", str(conf), "--train_dir", str(bad), "--valid_dir", str(cv), "--exp_dir",
                     str(tmp_path / "exp"), "--train.max_nonfinite", "2", "--train.deterministic", "false"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "non-finite loss (batch" in err and "1 in a row" in err
    assert "2 non-finite steps in a row (train.max_nonfinite 2)" in err


# ------------------------------------------------------------------------------------------- data

def test_segments_align_with_stft_frames_and_labels(data):
    root, conf, tr, cv = data
    cfg = STFTConfig()
    ds = TrainSegments(tr, cfg, segment_seconds=0.3, seed=5)
    ds.set_epoch(3)
    seen_starts = set()
    for idx, key in enumerate(ds.keys):
        noisy_full = torch.from_numpy(sf.read(str(tr / f"{key}_n.wav"), dtype="float32")[0])
        clean_full = torch.from_numpy(sf.read(str(tr / f"{key}_c.wav"), dtype="float32")[0])
        labels_full = kaldiio.load_scp(str(tr / "vad_labels.scp"))[key]
        item = ds[idx]
        n, seg = noisy_full.shape[0], ds.seg_len
        start = ds.segment_start(idx, n)
        assert start % cfg.hop_length == 0
        assert item["vad"].shape[0] == cfg.num_frames(seg)
        if n >= seg:
            seen_starts.add(start)
            assert torch.equal(item["noisy"], noisy_full[start:start + seg])
            assert torch.equal(item["clean"], clean_full[start:start + seg])      # the same samples
            assert torch.equal(item["vad"], torch.from_numpy(labels_full[start // 100: start // 100 + 49]).float())
            # interior frames of the segment are exactly the utterance's frames start/hop + j
            s_seg, s_utt = stft(item["noisy"][None], cfg)[0], stft(noisy_full[None], cfg)[0]
            j = torch.arange(2, cfg.num_frames(seg) - 2)
            torch.testing.assert_close(s_seg[:, j], s_utt[:, start // 100 + j], atol=1e-4, rtol=1e-4)
        else:   # 0.2 s utterance: zero padded, frames past the utterance's last one labelled 0
            assert start == 0 and torch.equal(item["noisy"][:n], noisy_full) and item["noisy"][n:].abs().max() == 0
            assert torch.equal(item["clean"][:n], clean_full) and item["clean"][n:].abs().max() == 0
            last = cfg.num_frames(n)
            assert torch.equal(item["vad"][:last], torch.from_numpy(labels_full).float())
            assert item["vad"][last:].abs().max() == 0
        # deterministic: the same (seed, epoch, index) gives the same segment
        assert torch.equal(_at_epoch(tr, 3)[idx]["noisy"], item["noisy"])
    assert len(seen_starts) > 1
    # other epochs draw other starts
    starts = {e: [_at_epoch(tr, e).segment_start(i, 16000) for i in range(8)] for e in (1, 2)}
    assert starts[1] != starts[2]
    # every hop-grid start that fits is drawn, the last one too (slack of one hop: 0 and 100)
    ds = _at_epoch(tr, 0)
    assert {ds.segment_start(i, ds.seg_len + 100) for i in range(40)} == {0, 100}
    assert segment_labels(np.ones(5, np.int32), 300, 800, cfg).tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0]


def _at_epoch(tr, epoch):
    ds = TrainSegments(tr, STFTConfig(), 0.3, seed=5)
    ds.set_epoch(epoch)
    return ds


def test_global_batches_do_not_depend_on_world_size():
    def steps(world, accum):
        out = []
        per_rank = []
        for r in range(world):
            s = GlobalBatchSampler(10, 4, seed=7, rank=r, world_size=world, accum_grad=accum)
            s.set_epoch(2)
            per_rank.append(list(s))
        for step in range(2):
            out.append(sorted(i for r in range(world) for mb in per_rank[r][step * accum:(step + 1) * accum]
                              for i in mb))
        return out
    ref = steps(1, 1)
    assert steps(2, 1) == ref == steps(1, 2) == steps(2, 2) == steps(4, 1)
    s = GlobalBatchSampler(10, 4, seed=7)
    s.set_epoch(2, start_step=1)
    assert [sorted(b) for b in s] == [ref[1]]
    s.set_epoch(3)
    assert [sorted(b) for b in s] != ref


# ------------------------------------------------------------------------------------------- (6)

def test_lint_recipes_never_pass_a_test_set_to_training():
    runs = sorted((REPO / "egs").glob("*/run.sh"))
    if not runs:
        pytest.skip("no recipe run.sh yet")
    n = 0
    for run in runs:
        text = re.sub(r"\\\n", " ", run.read_text())       # join continuation lines
        assigned = dict(re.findall(r"^\s*([A-Za-z_]\w*)=(\S*)", text, re.M))
        for line in text.splitlines():
            if "steps/train.sh" in line and not line.lstrip().startswith("#"):
                n += 1
                assert not re.search(r"test", line, re.I), f"{run}: training sees a test set: {line.strip()}"
                # the shell variables it uses (train_set=..., valid_set=...) do not name a test set either
                for var in re.findall(r"\$\{?([A-Za-z_]\w*)", line):
                    value = assigned.get(var, "")
                    assert "test" not in value.lower(), f"{run}: {var}={value} is passed to steps/train.sh"
    assert n >= 1, "no recipe calls steps/train.sh"


def test_recipe_stage_launches_torchrun_and_srun(data, tmp_path):
    """The multi-GPU / multi-node command lines (fake torchrun, srun and scontrol record their argv)."""
    root, conf, tr, cv = data
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("torchrun", "srun"):
        (fake / name).write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/{name}.args\n')
        (fake / name).chmod(0o755)
    (fake / "scontrol").write_text("#!/bin/sh\nprintf 'node7\\nnode8\\n'\n")
    (fake / "scontrol").chmod(0o755)
    env = _env(PATH=f"{fake}:{VENV_BIN}:{os.environ['PATH']}", SLURM_JOB_ID="4242", SLURM_JOB_NODELIST="node[7-8]")
    p = run_recipe_stage(tmp_path, "--ngpu", "4", "--train_args", "--train.epochs 3", str(conf), str(tr), str(cv),
                         str(tmp_path / "exp1"), env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    args = (tmp_path / "torchrun.args").read_text().split()
    assert args[:7] == ["--standalone", "--nnodes", "1", "--nproc_per_node", "4", "-m", "csmvanet.bin.train"]
    assert args[args.index("--ngpu") + 1] == "4" and args[-2:] == ["--train.epochs", "3"]
    assert args[args.index("--valid_dir") + 1] == str(cv)

    p = run_recipe_stage(tmp_path, "--ngpu", "4", "--num_nodes", "2", str(conf), str(tr), str(cv),
                         str(tmp_path / "exp2"), env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    args = (tmp_path / "srun.args").read_text().split()
    assert args[:7] == ["--nodes", "2", "--ntasks", "2", "--ntasks-per-node", "1", "torchrun"]
    assert " ".join(args[7:21]) == ("--nnodes 2 --nproc_per_node 4 --rdzv_id 4242 --rdzv_backend c10d "
                                    "--rdzv_endpoint node7:29500 -m csmvanet.bin.train --config " + str(conf))
