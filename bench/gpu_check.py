#!/usr/bin/env python
"""One check of everything GPU-related, prepared to run on the first CUDA machine at hand (<= 8 min).

    tools/venv/bin/python bench/gpu_check.py [--out gpu_check.json] [--cpu] [--workdir DIR]

On CUDA (paper config, egs/voicebank/conf/train.yaml, random weights):
  a) amp     20 training steps on one fixed batch of 4 x 2 s in each of fp32, bf16 autocast and fp16
             with a GradScaler (train.amp none|bf16|fp16), through the trainer's own step
             (clipping, scaler, non-finite handling): s/step, peak GPU memory, every loss finite, loss
             falling (mean of the last 5 steps below the first 5).
  b) ddp     10 steps of csmvanet-train under torchrun with nccl, one process per GPU (needs 2 GPUs;
             with one, reported as skipped).
  c) enhance a 60 s file through the Enhancer on the GPU: RTF, and SI-SDR of the chunked output
             against one whole-file pass.
  d) recipe  egs/mini stages 0-2 (data, CPU) then 3-5 with --ngpu 1 on a few clips, in a copy of the
             recipe under the work dir: RESULTS.md written.
  e) one JSON report (--out) with every figure, the versions and the device; exit status 1 if a part failed.
Without CUDA (or with --cpu) every part runs on the CPU at a tiny size (the tests' small model,
0.5 s segments, gloo instead of nccl, a 10 s file; amp is ignored on the CPU by the trainer, which
the report says), and the report says "mode": "cpu-tiny".
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_enhance import _noisy  # noqa: E402
from bench_train import make_data_dir  # noqa: E402

from csmvanet.audio.stft import STFTConfig  # noqa: E402
from csmvanet.base.config import load_config  # noqa: E402
from csmvanet.data.dataset import collate  # noqa: E402

TINY_MODEL = {"channels": [8, 16], "num_conformers": 1, "heads": 2, "ff_mult": 2, "conv_kernel": 7,
              "dropout": 0.0, "rel_pos_clamp": 50}


def sizes(cuda: bool) -> dict:
    if cuda:
        cfg = load_config(REPO / "egs" / "voicebank" / "conf" / "train.yaml")
        return {"cfg": cfg, "batch": 4, "segment": 2.0, "steps": 20, "ddp_steps": 10, "enhance_seconds": 60.0,
                "enhance_chunking": (None, None),
                "mini_args": ["--utts_per_speaker", "4", "--num_train", "64"], "mini_train": "--train.epochs 1"}
    cfg = {"model": dict(TINY_MODEL), "optim": {"lr": 2e-3}}
    return {"cfg": cfg, "batch": 2, "segment": 0.5, "steps": 20, "ddp_steps": 10, "enhance_seconds": 6.0,
            "enhance_chunking": (2.0, 0.5),
            "mini_args": ["--utts_per_speaker", "1", "--num_train", "8", "--nj", "1"],
            "mini_train": ("--model.channels [8,8] --model.num_conformers 1 --model.heads 1 --model.ff_mult 1 "
                           "--model.conv_kernel 3 --train.epochs 1 --train.batch_size 2 --train.nbest 1 "
                           "--train.plot false --train.tensorboard false")}


def train_cfg(base: dict, s: dict, **train) -> dict:
    cfg = json.loads(json.dumps(base))
    cfg.setdefault("train", {}).update({"batch_size": s["batch"], "segment_seconds": s["segment"], "num_workers": 0,
                                        "tensorboard": False, "plot": False, "epochs": 1, "nbest": 1,
                                        "valid_metrics_subset": 0, **train})
    return cfg


def part_amp(s: dict, work: Path, device: torch.device) -> dict:
    """20 steps of the trainer's own step on one fixed batch, per precision."""
    from csmvanet.experiment.resolved_config import resolve_config
    from csmvanet.train.distributed import DistInfo
    from csmvanet.train.trainer import Trainer

    stft_cfg = STFTConfig.from_dict(s["cfg"].get("stft"))
    tr, cv = work / "amp_data" / "tr", work / "amp_data" / "cv"
    make_data_dir(tr, s["batch"], s["segment"], stft_cfg)      # utterances = one segment: a fixed batch
    make_data_dir(cv, 1, s["segment"], stft_cfg)
    dist = DistInfo(0, 1, 0, device)
    rows = {}
    for amp in ("none", "bf16", "fp16"):
        cfg = resolve_config(train_cfg(s["cfg"], s, amp=amp))
        if device.type == "cuda":
            torch.cuda.set_device(device)
        trainer = Trainer(cfg, tr, cv, work / f"amp_{amp}", dist=dist)
        try:
            trainer.train_set.set_epoch(1)
            batch = collate([trainer.train_set[i] for i in range(s["batch"])])
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats(device)
            losses, times = [], []
            for _ in range(s["steps"]):
                t0 = time.perf_counter()
                terms, ok = trainer._train_step(iter([batch]), 1)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
                losses.append(terms.get("loss", float("nan")) if ok else float("nan"))
            peak = (torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda"
                    else __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss / 2 ** 20)
            finite = all(math.isfinite(x) for x in losses)
            rows[amp] = {"used_amp": trainer.amp, "s_per_step": float(np.mean(times[2:])),
                         "peak_memory_gib": round(peak, 3),
                         "peak_memory_kind": "cuda max_memory_allocated" if device.type == "cuda" else "process peak RSS",
                         "losses": [round(x, 5) for x in losses], "finite": finite,
                         "falling": finite and float(np.mean(losses[-5:])) < float(np.mean(losses[:5])),
                         "ok": finite and float(np.mean(losses[-5:])) < float(np.mean(losses[:5]))}
        finally:
            trainer._logging.close()
            del trainer
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return {"ok": all(r["ok"] for r in rows.values()), "modes": rows}


def part_ddp(s: dict, work: Path, cuda: bool, timeout: float) -> dict:
    """csmvanet-train under torchrun: nccl on GPUs (one process each), gloo on the CPU (2 processes)."""
    from csmvanet.experiment import checkpoint as ckpt

    nproc = torch.cuda.device_count() if cuda else 2
    if cuda and nproc < 2:
        return {"ok": True, "skipped": f"nccl DDP needs 2 GPUs; {nproc} visible"}
    nproc = min(nproc, 8)
    stft_cfg = STFTConfig.from_dict(s["cfg"].get("stft"))
    batch = max(s["batch"], nproc)
    tr, cv = work / "ddp_data" / "tr", work / "ddp_data" / "cv"
    make_data_dir(tr, s["ddp_steps"] * batch, s["segment"], stft_cfg)
    make_data_dir(cv, 2, s["segment"], stft_cfg)
    conf = work / "ddp.yaml"
    conf.write_text(yaml.safe_dump(train_cfg(s["cfg"], s, batch_size=batch)))
    exp = work / "ddp_exp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "csmvanet.bin.train", "--config", str(conf), "--train_dir", str(tr), "--valid_dir", str(cv),
           "--exp_dir", str(exp), "--ngpu", str(nproc if cuda else 0)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())
    out = {"backend": "nccl" if cuda else "gloo", "processes": nproc, "global_batch": batch,
           "steps": s["ddp_steps"], "seconds": round(time.perf_counter() - t0, 1), "returncode": p.returncode}
    if p.returncode != 0:
        return {**out, "ok": False, "error": (p.stderr or p.stdout)[-2000:]}
    last = ckpt.read_history(exp)[-1]
    out.update(history=last, global_step=last.get("global_step"), train_loss=last.get("train.loss"),
               ok=last.get("global_step") == s["ddp_steps"] and math.isfinite(float(last.get("train.loss", "nan")))
               and not last.get("train.nonfinite"))
    return out


def part_enhance(s: dict, device: torch.device) -> dict:
    from csmvanet.infer.enhancer import Enhancer
    from csmvanet.metrics import si_sdr
    from csmvanet.nets import build_model

    torch.manual_seed(0)
    seg, ov = s["enhance_chunking"]
    enh = Enhancer(build_model(s["cfg"]), s["cfg"], device=str(device), segment_seconds=seg, overlap_seconds=ov)
    x = _noisy(s["enhance_seconds"], enh.sample_rate)
    enh.enhance(x[: enh.segment], enh.sample_rate)                       # warm-up
    _sync(device)
    t0 = time.perf_counter()
    y, vad = enh.enhance(x, enh.sample_rate, limit=False)
    _sync(device)
    secs = time.perf_counter() - t0
    out = {"seconds_audio": s["enhance_seconds"], "rtf": round(secs / s["enhance_seconds"], 4),
           "segment_seconds": enh.segment_seconds, "overlap_seconds": enh.overlap_seconds,
           "finite": bool(np.isfinite(y).all()), "vad_frames": int(len(vad))}
    try:
        with torch.inference_mode():
            whole = enh.model(torch.from_numpy(x)[None].to(device))["wave"][0].float().cpu().numpy()
        out["chunked_vs_whole_si_sdr_db"] = round(float(si_sdr(whole, y)), 2)
    except torch.OutOfMemoryError as e:
        out["chunked_vs_whole_si_sdr_db"] = None
        out["whole_file_error"] = f"out of memory: {str(e).splitlines()[0]}"
    out["ok"] = out["finite"] and len(y) == len(x)
    return out


def part_recipe(s: dict, work: Path, cuda: bool, timeout: float) -> dict:
    """egs/mini in a copy under the work dir: stages 0-2 (data), then 3-5 with --ngpu 1 (CPU: 0)."""
    rec = work / "mini"
    src = REPO / "egs" / "mini"
    rec.mkdir()
    shutil.copy2(src / "run.sh", rec / "run.sh")
    shutil.copytree(src / "conf", rec / "conf")
    shutil.copytree(src / "local", rec / "local")
    for name in ("cmd.sh", "path.sh", "steps"):
        (rec / name).symlink_to(REPO / "egs" / "TEMPLATE" / name)
    (rec / "utils").symlink_to(REPO / "utils")
    env = _env(CSMVANET_ROOT=str(REPO))
    t0 = time.perf_counter()
    runs = []
    for stages, extra in ((["--stage", "0", "--stop_stage", "2"], []),
                          (["--stage", "3", "--stop_stage", "5"], ["--ngpu", "1" if cuda else "0",
                                                                   "--gpu_inference", "true" if cuda else "false",
                                                                   "--train_args", s["mini_train"]])):
        p = subprocess.run(["./run.sh", *stages, "--tag", "gpu_check", *s["mini_args"], *extra], cwd=rec, env=env, capture_output=True,
                           text=True, timeout=timeout)
        runs.append(p)
        if p.returncode != 0:
            return {"ok": False, "stages": " ".join(stages), "error": (p.stderr + p.stdout)[-2000:]}
    results = rec / "exp" / "gpu_check" / "RESULTS.md"
    return {"ok": results.is_file(), "ngpu": 1 if cuda else 0, "seconds": round(time.perf_counter() - t0, 1),
            "results": results.read_text()[:2000] if results.is_file() else None}


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="gpu_check.json", help="the JSON report")
    p.add_argument("--cpu", action="store_true", help="the tiny CPU run even where CUDA is available")
    p.add_argument("--workdir", default=None, help="keep the work files here (default: a temporary dir)")
    p.add_argument("--parts", nargs="+", default=["amp", "ddp", "enhance", "recipe"],
                   choices=["amp", "ddp", "enhance", "recipe"])
    args = p.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.cpu
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    s = sizes(cuda)
    import csmvanet
    from csmvanet.base.version import git_hash

    report = {"mode": "cuda" if cuda else "cpu-tiny",
              "note": None if cuda else ("no CUDA device (or --cpu): every part ran on the CPU at a tiny size, gloo "
                                         "instead of nccl; amp modes fall back to fp32 on the CPU"),
              "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or platform.machine(),
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "versions": {"csmvanet": csmvanet.__version__, "git": git_hash(), "torch": torch.__version__,
                           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None,
                           "python": platform.python_version()},
              "sizes": {k: v for k, v in s.items() if k != "cfg"}, "model": s["cfg"].get("model") or "paper config"}
    print(f"gpu_check: mode {report['mode']}" + ("" if cuda else f" ({report['note']})"), flush=True)
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in args.parts:
            t0 = time.perf_counter()
            try:
                if name == "amp":
                    res = part_amp(s, work, device)
                elif name == "ddp":
                    res = part_ddp(s, work, cuda, timeout=180)
                elif name == "enhance":
                    res = part_enhance(s, device)
                else:
                    res = part_recipe(s, work, cuda, timeout=240)
            except Exception as e:    # one part failing must not hide the others' figures
                res = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            res["part_seconds"] = round(time.perf_counter() - t0, 1)
            report[name] = res
            brief = {k: v for k, v in res.items() if k not in ("modes", "history", "results", "error")}
            if name == "amp" and "modes" in res:
                brief["modes"] = {m: {k: r[k] for k in ("used_amp", "s_per_step", "peak_memory_gib", "finite",
                                                         "falling")} for m, r in res["modes"].items()}
            print(f"gpu_check: {name}: {json.dumps(brief)}" + (f"\n  error: {res['error']}" if "error" in res else ""),
                  flush=True)
    report["total_seconds"] = round(time.perf_counter() - t_all, 1)
    report["ok"] = all(report[n]["ok"] for n in args.parts)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"gpu_check: {'all parts ok' if report['ok'] else 'FAILED'} in {report['total_seconds']} s; report {args.out}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
