"""The training engine: the paper's schedule, validation, best-N averaging, exact resume, DDP, AMP.

One optimizer step consumes one *global* batch of ``train.batch_size`` segments (the paper: 4 x 2 s)
whatever the number of processes: with W processes and ``train.accum_grad`` A, each process
computes A micro-batches of batch_size / (W*A) segments (see dataset.GlobalBatchSampler), so a run
on 2 GPUs follows the same trajectory as one on 1 GPU (up to float summation order and BatchNorm
statistics, which are per micro-batch).

Each epoch: train on ``train_dir`` (random 2 s segments), then validate on ``valid_dir`` only (whole
utterances: loss terms; PESQ/STOI on the first ``train.valid_metrics_subset`` utterances), then
write ``epoch<N>.pth`` (weights), ``history.json``, the ranking, best and average of the N best by
``train.best_criterion`` (checkpoint.update_best), the curves PNG, and ``checkpoint_last.pth``.
``checkpoint_last.pth`` is also written every ``train.save_every_steps`` steps inside an epoch.

Resume is exact: the checkpoint holds the model, optimizer, scheduler, GradScaler, the position
(epoch, step in epoch), every rank's RNG states (python, numpy, torch, CUDA) and running epoch
sums, the non-finite counters and the history. Segments are a pure function of (seed, epoch, item)
and the batch order of (seed, epoch), so the data after a resume is the same as without the kill;
with ``train.deterministic: true`` (and num_workers 0 or not, it does not matter) a killed and
resumed run ends with the same weights as an uninterrupted one.

Mixed precision: ``train.amp: bf16|fp16`` autocasts the network on CUDA; STFT, compression and the
losses stay in fp32 (features.py / loss.py disable autocast; outputs are cast to fp32 here); fp16
uses a GradScaler. On CPU amp is ignored with a warning.

A non-finite loss (on any rank) or, without fp16 scaling, a non-finite gradient norm skips the step
and is counted; ``train.max_nonfinite`` in a row abort the run (TrainingError).
"""
from __future__ import annotations

import contextlib
import copy
import datetime
import logging
import math
import os
import random
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from csmvanet import checkpoint as ckpt
from csmvanet.config import dump_config
from csmvanet.dataset import GlobalBatchSampler, ShardSampler, TrainSegments, WholeUtterances, collate
from csmvanet.features import STFTConfig
from csmvanet.fileio import atomic_path, atomic_write_text

log = logging.getLogger("csmvanet.trainer")

TRAIN_DEFAULTS = {
    "epochs": 100,
    "batch_size": 4,               # global batch per optimizer step (all processes together)
    "segment_seconds": 2.0,
    "num_workers": 2,              # DataLoader workers per process
    "seed": 0,
    "accum_grad": 1,
    "grad_clip": 5.0,              # max gradient norm; 0 or null: no clipping
    "amp": "none",                 # none | bf16 | fp16 (CUDA only)
    "grad_checkpoint": False,      # recompute the Conformer blocks in backward (less memory, slower)
    "max_nonfinite": 10,           # abort after this many non-finite steps in a row
    "save_every_steps": 500,       # mid-epoch checkpoint_last.pth; 0: only at epoch ends
    "best_criterion": "valid.loss",
    "nbest": 5,
    "valid_metrics_subset": 0,     # PESQ/STOI on the first N validation utterances; 0: off
    "valid_max_seconds": None,     # crop validation utterances (memory bound); null: whole
    "log_interval": 50,            # steps between log lines / tensorboard points
    "deterministic": False,
    "ddp_check_every": 0,          # every N steps verify all ranks hold bit-identical weights
    "find_unused_parameters": False,
    "tensorboard": True,
    "progress_bar": None,          # null: a tqdm bar when stderr is a terminal
    "plot": True,
}
OPTIM_DEFAULTS = {"name": "adamw", "lr": 5e-4, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01}
SCHED_DEFAULTS = {"name": "steplr", "step_size": 30, "gamma": 0.5}
TERMS = ("loss", "time", "mag", "ri", "vad")
# Fault injection for tests: SIGKILL this process right after global step k; make rank r's weights
# differ from the others after the first step (to show that train.ddp_check_every catches it).
KILL_ENV = "CSMVANET_FAULT_KILL_AFTER_STEP"
DESYNC_ENV = "CSMVANET_FAULT_DESYNC_RANK"


class TrainingError(RuntimeError):
    """Training cannot go on (bad config, diverged, ...); the message says why."""


# ------------------------------------------------------------------------------------------ config

def _merge_section(cfg: dict, name: str, defaults: dict) -> None:
    given = cfg.get(name) or {}
    if not isinstance(given, dict):
        raise TrainingError(f"config section {name!r} must be a mapping")
    unknown = set(given) - set(defaults)
    if unknown:
        raise TrainingError(f"unknown {name} option(s): {sorted(unknown)}; known: {sorted(defaults)}")
    merged = dict(defaults)
    merged.update(given)
    cfg[name] = merged


def resolve_config(cfg: dict, seed: int | None = None) -> dict:
    """The config with every training default filled in (the exp dir's config.yaml), checked."""
    cfg = copy.deepcopy(cfg)
    _merge_section(cfg, "train", TRAIN_DEFAULTS)
    _merge_section(cfg, "optim", OPTIM_DEFAULTS)
    _merge_section(cfg, "scheduler", SCHED_DEFAULTS)
    t = cfg["train"]
    if seed is not None:
        t["seed"] = int(seed)
    for key in ("epochs", "batch_size", "accum_grad", "max_nonfinite", "nbest"):
        if not isinstance(t[key], int) or t[key] < 1:
            raise TrainingError(f"train.{key} must be a positive integer, got {t[key]!r}")
    for key in ("num_workers", "save_every_steps", "valid_metrics_subset", "ddp_check_every", "log_interval"):
        if not isinstance(t[key], int) or t[key] < 0:
            raise TrainingError(f"train.{key} must be a non-negative integer, got {t[key]!r}")
    if t["amp"] not in ("none", "bf16", "fp16"):
        raise TrainingError(f"train.amp must be none, bf16 or fp16, got {t['amp']!r}")
    crit = t["best_criterion"]
    try:
        ckpt.criterion_mode(crit)
    except ValueError as e:
        raise TrainingError(f"train.best_criterion: {e}") from None
    if not crit.startswith("valid."):
        raise TrainingError(f"train.best_criterion {crit!r}: checkpoints are selected on the validation set "
                            "(valid.<value>)")
    if crit in ("valid.pesq", "valid.stoi") and t["valid_metrics_subset"] == 0:
        raise TrainingError(f"train.best_criterion {crit} needs PESQ/STOI during validation: set "
                            "train.valid_metrics_subset to the number of utterances to score")
    if str(cfg["optim"]["name"]).lower() != "adamw":
        raise TrainingError(f"optim.name {cfg['optim']['name']!r}: only adamw is implemented")
    if str(cfg["scheduler"]["name"]).lower() not in ("steplr", "none"):
        raise TrainingError(f"scheduler.name {cfg['scheduler']['name']!r}: use steplr or none")
    return cfg


# ------------------------------------------------------------------------------------ distribution

@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(ngpu: int) -> DistInfo:
    """Device and process group from torchrun's env (RANK, WORLD_SIZE, LOCAL_RANK) or a single process.

    ``ngpu`` 0: CPU (gloo when distributed); otherwise CUDA device LOCAL_RANK (nccl).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if ngpu > 0:
        if not torch.cuda.is_available():
            raise TrainingError(f"--ngpu {ngpu}: CUDA is not available here (use --ngpu 0 for CPU)")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    info = DistInfo(rank, world, local, device)
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return info


def _spawn_worker(local_rank: int, world: int, port: int, fn, args, kwargs):
    os.environ.update({"RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    fn(*args, **kwargs)


def spawn_local(nproc: int, fn, *args, **kwargs) -> None:
    """Run ``fn`` in ``nproc`` local processes set up like torchrun would (single node)."""
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_spawn_worker, args=(nproc, port, fn, args, kwargs), nprocs=nproc, join=True)


def _all_reduce(t: torch.Tensor, dist: DistInfo, op=None) -> torch.Tensor:
    if dist.distributed:
        torch.distributed.all_reduce(t, op=op or torch.distributed.ReduceOp.SUM)
    return t


# --------------------------------------------------------------------------------------- utilities

def git_hash() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _rng_state(device: torch.device) -> dict:
    name, key, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": [name, torch.from_numpy(np.asarray(key, dtype=np.int64)), int(pos), int(has_gauss),
                       float(gauss)],
             "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device: torch.device) -> None:
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    name, key, pos, has_gauss, g = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), pos, has_gauss, g))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _fp32(out: dict) -> dict:
    """Network outputs in fp32 (complex64) for the loss, whatever autocast produced."""
    res = {}
    for k, v in out.items():
        if torch.is_tensor(v):
            if v.is_complex():
                v = v.to(torch.complex64)
            elif v.is_floating_point():
                v = v.float()
        res[k] = v
    return res


def _worker_ignores_sigterm(_worker_id: int) -> None:
    """DataLoader workers leave SIGTERM to the main process, which saves a checkpoint and stops them."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class _FileLogging:
    """Log to E/train.log (rank 0), unless stderr already goes to that file (run.pl's log)."""

    def __init__(self, exp_dir: Path, dist: DistInfo):
        self.handlers = []
        root = logging.getLogger("csmvanet")
        root.setLevel(logging.INFO if dist.is_main else logging.WARNING)
        fmt = logging.Formatter(f"%(asctime)s [{'rank%d ' % dist.rank if dist.distributed else ''}"
                                "%(levelname)s] %(message)s", "%Y-%m-%d %H:%M:%S")
        if not any(getattr(h, "_csmvanet", False) for h in root.handlers):
            h = logging.StreamHandler(sys.stderr)
            h._csmvanet = True
            h.setFormatter(fmt)
            root.addHandler(h)
            self.handlers.append(h)
        log_path = exp_dir / "train.log"
        if dist.is_main and not self._stderr_is(log_path):
            fh = logging.FileHandler(log_path, mode="a")
            fh.setFormatter(fmt)
            root.addHandler(fh)
            self.handlers.append(fh)

    @staticmethod
    def _stderr_is(path: Path) -> bool:
        try:
            a, b = os.fstat(sys.stderr.fileno()), os.stat(path)
        except (OSError, ValueError, AttributeError):
            return False
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

    def close(self) -> None:
        root = logging.getLogger("csmvanet")
        for h in self.handlers:
            root.removeHandler(h)
            h.close()


# ------------------------------------------------------------------------------------------ trainer

class Trainer:
    def __init__(self, cfg: dict, train_dir, valid_dir, exp_dir, *, dist: DistInfo | None = None,
                 resume: bool = False, argv: list[str] | None = None):
        from csmvanet.loss import build_loss
        from csmvanet.nets import build_model

        self.cfg = cfg
        self.t = cfg["train"]
        self.dist = dist or DistInfo()
        self.device = self.dist.device
        self.exp_dir = Path(exp_dir)
        self.train_dir, self.valid_dir = Path(train_dir), Path(valid_dir)
        if self.train_dir.resolve() == self.valid_dir.resolve():
            raise TrainingError(f"--train_dir and --valid_dir are the same folder ({train_dir})")
        self.argv = list(argv or [])
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        self._logging = _FileLogging(self.exp_dir, self.dist)
        try:
            self._setup(cfg, resume, build_model, build_loss)
        except BaseException:
            self._logging.close()
            raise

    def _setup(self, cfg: dict, resume: bool, build_model, build_loss) -> None:
        last = self.exp_dir / "checkpoint_last.pth"
        if last.exists() and not resume:
            raise TrainingError(f"{last} exists: pass --resume to continue that run, or use a new --exp_dir")
        self.resume_from = last if (resume and last.exists()) else None
        if resume and self.resume_from is None:
            log.info("--resume: %s not found, starting from scratch", last)

        seed = int(self.t["seed"])
        if self.t["deterministic"]:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        self.amp = self.t["amp"]
        if self.amp != "none" and self.device.type != "cuda":
            log.warning("train.amp %s ignored: mixed precision is used on CUDA only; training in fp32",
                        self.amp)
            self.amp = "none"
        if self.amp == "bf16" and not torch.cuda.is_bf16_supported():
            raise TrainingError("train.amp bf16: this GPU does not support bfloat16; use fp16 or none")

        # Same initial weights on every rank (DDP also broadcasts rank 0's), then per-rank streams.
        _seed_all(seed)
        self.stft_cfg = STFTConfig.from_dict(cfg.get("stft"))
        self.module = build_model(cfg).to(self.device).set_grad_checkpointing(bool(self.t["grad_checkpoint"]))
        self.loss_fn = build_loss(cfg).to(self.device)
        _seed_all(seed + 1000003 * self.dist.rank)

        use_vad = self.module.vad is not None
        self.train_set = TrainSegments(self.train_dir, self.stft_cfg, self.t["segment_seconds"], seed=seed,
                                       use_vad=use_vad)
        self.valid_set = WholeUtterances(self.valid_dir, self.stft_cfg, use_vad=use_vad,
                                         max_seconds=self.t["valid_max_seconds"])
        try:
            self.sampler = GlobalBatchSampler(len(self.train_set), self.t["batch_size"], seed=seed,
                                              rank=self.dist.rank, world_size=self.dist.world_size,
                                              accum_grad=self.t["accum_grad"])
        except ValueError as e:
            raise TrainingError(str(e)) from None
        self.steps_per_epoch = self.sampler.steps_per_epoch

        if self.dist.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self.model = DDP(self.module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                             find_unused_parameters=bool(self.t["find_unused_parameters"]))
        else:
            self.model = self.module
        o = cfg["optim"]
        self.optimizer = torch.optim.AdamW(self.module.parameters(), lr=float(o["lr"]),
                                           betas=tuple(float(b) for b in o["betas"]), eps=float(o["eps"]),
                                           weight_decay=float(o["weight_decay"]))
        s = cfg["scheduler"]
        if str(s["name"]).lower() == "steplr":
            self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=int(s["step_size"]),
                                                             gamma=float(s["gamma"]))
        else:
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: 1.0)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == "fp16")

        # position and bookkeeping
        self.epoch, self.step, self.global_step = 1, 0, 0
        self.history: list[dict] = []
        self.nonfinite_total, self.nonfinite_in_row = 0, 0
        self._acc = self._zero_acc()
        self.tb = None
        kill = os.environ.get(KILL_ENV)
        self._kill_after = int(kill) if kill else None
        desync = os.environ.get(DESYNC_ENV)
        self._desync = desync is not None and int(desync) == self.dist.rank
        self._term = False

    # ------------------------------------------------------------------ state
    @staticmethod
    def _zero_acc() -> dict:
        return {"n": 0, "sums": [0.0] * len(TERMS), "nonfinite": 0, "seconds": 0.0}

    def _gather_local(self) -> list[dict]:
        local = {"rng": _rng_state(self.device), "acc": copy.deepcopy(self._acc)}
        if not self.dist.distributed:
            return [local]
        out = [None] * self.dist.world_size
        torch.distributed.all_gather_object(out, local)
        return out

    def state_dict(self) -> dict:
        return {
            "format": "csmvanet-train-state", "version": 1,
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch, "step": self.step, "global_step": self.global_step,
            "sampler": self.sampler.state_dict(),
            "history": self.history,
            "nonfinite": {"total": self.nonfinite_total, "in_row": self.nonfinite_in_row},
            "world_size": self.dist.world_size,
            "ranks": self._gather_local(),
            "config": self.cfg,
        }

    def save(self) -> None:
        state = self.state_dict()  # collective in DDP: every rank takes part
        if self.dist.is_main:
            ckpt.save_checkpoint(state, self.exp_dir / "checkpoint_last.pth")
            log.info("saved %s (epoch %d, step %d/%d)", self.exp_dir / "checkpoint_last.pth", self.epoch,
                     self.step, self.steps_per_epoch)

    def load(self, path: Path) -> None:
        state = ckpt.load_checkpoint(path, map_location="cpu")
        if state.get("format") != "csmvanet-train-state":
            raise ckpt.CheckpointError(f"{path}: not a training checkpoint (no 'format': csmvanet-train-state)")
        old = state.get("config") or {}
        for sec in ("model", "stft"):
            if old.get(sec) != self.cfg.get(sec):
                raise TrainingError(f"--resume: the {sec} section of the config differs from the one in {path}; "
                                    "resume with the same model, or start a new exp dir")
        for sec in ("train", "optim", "scheduler", "loss"):
            if old.get(sec) != self.cfg.get(sec):
                log.warning("--resume: config section %s differs from the checkpoint's; using the new one", sec)
        if (old.get("train") or {}).get("batch_size") not in (None, self.t["batch_size"]) and state["step"] > 0:
            raise TrainingError("--resume mid-epoch with another train.batch_size would repeat or skip data; "
                                "resume with the batch size of the checkpoint")
        try:
            self.module.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise ckpt.CheckpointError(f"{path}: does not fit this model/optimizer: {str(e).splitlines()[0]}") from None
        self.epoch, self.step, self.global_step = int(state["epoch"]), int(state["step"]), int(state["global_step"])
        self.history = list(state["history"])
        self.nonfinite_total = int(state["nonfinite"]["total"])
        self.nonfinite_in_row = int(state["nonfinite"]["in_row"])
        ranks = state["ranks"]
        if len(ranks) == self.dist.world_size:
            mine = ranks[self.dist.rank]
            _set_rng_state(mine["rng"], self.device)
            self._acc = mine["acc"]
        else:
            log.warning("--resume: checkpoint written by %d process(es), now %d: RNG streams re-seeded, the "
                        "epoch's running train averages restart", len(ranks), self.dist.world_size)
            _seed_all(int(self.t["seed"]) + 7919 * self.global_step + 1000003 * self.dist.rank)
            self._acc = self._zero_acc()
        log.info("resumed from %s: epoch %d, step %d/%d, global step %d", path, self.epoch, self.step,
                 self.steps_per_epoch, self.global_step)

    # ------------------------------------------------------------------ run
    def _write_run_files(self) -> None:
        if not self.dist.is_main:
            return
        atomic_write_text(self.exp_dir / "config.yaml", dump_config(self.cfg))
        args = " ".join(shlex.quote(a) for a in self.argv)
        if "LOCAL_WORLD_SIZE" in os.environ and "TORCHELASTIC_RUN_ID" in os.environ:
            nnodes = self.dist.world_size // max(1, int(os.environ["LOCAL_WORLD_SIZE"]))
            launcher = (f"torchrun --nnodes {nnodes} --nproc_per_node {os.environ['LOCAL_WORLD_SIZE']} "
                        f"-m csmvanet.bin.train")
            if nnodes > 1:
                launcher += " --rdzv_backend c10d --rdzv_endpoint \"$MASTER_ADDR:$MASTER_PORT\""
        else:
            launcher = f"{shlex.quote(sys.executable)} -m csmvanet.bin.train"
        from csmvanet.version import __version__
        text = ("#!/usr/bin/env bash\n"
                f"# Re-runs this training (csmvanet {__version__}, git {git_hash()}, "
                f"{datetime.datetime.now().isoformat(timespec='seconds')}). Extra arguments are appended.\n"
                f"cd {shlex.quote(os.getcwd())}\n"
                f"exec {launcher} {args} \"$@\"\n")
        atomic_write_text(self.exp_dir / "run.sh", text)
        mode = os.stat(self.exp_dir / "run.sh").st_mode
        os.chmod(self.exp_dir / "run.sh", mode | (mode & 0o444) >> 2)   # +x where readable

    def _log_header(self) -> None:
        from csmvanet.version import __version__
        n_params = sum(p.numel() for p in self.module.parameters())
        log.info("csmvanet %s (git %s), torch %s, python %s", __version__, git_hash(), torch.__version__,
                 sys.version.split()[0])
        log.info("command: %s", " ".join(shlex.quote(a) for a in [sys.argv[0]] + self.argv))
        log.info("exp dir %s; train %s (%d utterances, %d steps/epoch of %d x %.3g s); valid %s (%d utterances)",
                 self.exp_dir, self.train_dir, len(self.train_set), self.steps_per_epoch, self.t["batch_size"],
                 self.t["segment_seconds"], self.valid_dir, len(self.valid_set))
        log.info("model: %d parameters (%.2fM); device %s; processes %d; amp %s; accum_grad %d",
                 n_params, n_params / 1e6, self.device, self.dist.world_size, self.amp, self.t["accum_grad"])

    def _open_tensorboard(self) -> None:
        if not (self.dist.is_main and self.t["tensorboard"]):
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            log.warning("tensorboard not available (%s): no event files; pip install tensorboard", e)
            return
        self.tb = SummaryWriter(str(self.exp_dir / "tensorboard"), purge_step=self.global_step or None)

    def _on_sigterm(self, signum, frame) -> None:
        self._term = True

    def _stop_requested(self) -> bool:
        if not self.dist.distributed:
            return self._term
        flag = torch.tensor([1.0 if self._term else 0.0], device=self.device)
        if self.dist.distributed:
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return flag.item() > 0

    def run(self) -> dict:
        """Train to ``train.epochs``; returns the last history entry (or {} if nothing ran).

        SIGTERM (a cluster's time limit, run.pl/slurm.pl being killed) finishes the current step,
        saves checkpoint_last.pth and raises TrainingError; ``--resume`` continues from there.
        """
        old_handler = None
        if threading.current_thread() is threading.main_thread():
            old_handler = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            if self.resume_from is not None:
                self.load(self.resume_from)
            self._write_run_files()
            self._log_header()
            self._open_tensorboard()
            epochs = int(self.t["epochs"])
            if self.epoch > epochs:
                log.info("training already finished (%d epochs)", epochs)
            while self.epoch <= epochs:
                self._train_epoch()
                self._end_epoch()
            if self.dist.is_main and self.history:
                self._finalise()
            return self.history[-1] if self.history else {}
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGTERM, old_handler)
            if self.tb is not None:
                self.tb.close()
            self._logging.close()

    # ------------------------------------------------------------------ one epoch
    def _loader(self):
        self.train_set.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch, self.step)
        # own generator: creating the iterator must not consume the global torch RNG (exact resume)
        gen = torch.Generator().manual_seed(int(self.t["seed"]) * 100003 + self.epoch)
        return torch.utils.data.DataLoader(self.train_set, batch_sampler=self.sampler, collate_fn=collate,
                                           num_workers=self.t["num_workers"], generator=gen,
                                           worker_init_fn=_worker_ignores_sigterm,
                                           pin_memory=self.device.type == "cuda")

    def _autocast(self):
        if self.amp == "none":
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16 if self.amp == "bf16" else torch.float16)

    def _progress(self):
        show = self.t["progress_bar"]
        if show is None:
            show = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        show = bool(show) and self.dist.is_main
        from tqdm import tqdm
        return tqdm(total=self.steps_per_epoch, initial=self.step, desc=f"epoch {self.epoch}",
                    disable=not show, dynamic_ncols=True, leave=False)

    def _train_epoch(self) -> None:
        self.model.train()
        accum = int(self.t["accum_grad"])
        it = iter(self._loader())
        bar = self._progress()
        save_every = int(self.t["save_every_steps"])
        t_epoch = time.time()
        t_last, steps_since_log = time.time(), 0
        while self.step < self.steps_per_epoch:
            terms, ok = self._train_step(it, accum)
            self.step += 1
            self.global_step += 1
            steps_since_log += 1
            if ok:
                self._acc["n"] += 1
                for i, k in enumerate(TERMS):
                    self._acc["sums"][i] += terms[k]
            else:
                self._acc["nonfinite"] += 1
            means = self._running_means()
            bar.set_postfix({k: f"{means[k]:.4g}" for k in TERMS}, refresh=False)
            bar.update(1)
            if self.t["log_interval"] and self.step % self.t["log_interval"] == 0:
                dt = (time.time() - t_last) / steps_since_log
                t_last, steps_since_log = time.time(), 0
                log.info("epoch %d step %d/%d: %s; lr %.3g; %.3f s/step", self.epoch, self.step,
                         self.steps_per_epoch, " ".join(f"{k} {means[k]:.4f}" for k in TERMS),
                         self.optimizer.param_groups[0]["lr"], dt)
                if self.tb is not None:
                    for k in TERMS:
                        self.tb.add_scalar(f"train_step/{k}", means[k], self.global_step)
            if self._desync and self.global_step == 1:
                with torch.no_grad():
                    next(self.module.parameters()).add_(1e-3)
            if self.t["ddp_check_every"] and self.dist.distributed and self.global_step % self.t["ddp_check_every"] == 0:
                self._check_ranks_identical()
            if save_every and self.step % save_every == 0 and self.step < self.steps_per_epoch:
                self.save()
            if self._stop_requested():
                self.save()
                raise TrainingError(f"stopped by SIGTERM after epoch {self.epoch} step {self.step}; "
                                    f"{self.exp_dir / 'checkpoint_last.pth'} saved: continue with --resume")
            if self._kill_after is not None and self.global_step == self._kill_after:
                if self.dist.is_main:
                    log.warning("%s=%d: killing this process with SIGKILL (fault injection)", KILL_ENV,
                                self._kill_after)
                    for h in logging.getLogger("csmvanet").handlers:
                        h.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        bar.close()
        self._acc["seconds"] += time.time() - t_epoch
        if save_every and self.steps_per_epoch % save_every != 0:
            self.save()   # the epoch's training is not lost if validation gets killed

    def _running_means(self) -> dict:
        n = max(1, self._acc["n"])
        return {k: self._acc["sums"][i] / n for i, k in enumerate(TERMS)}

    def _train_step(self, it, accum: int) -> tuple[dict, bool]:
        """One optimizer step over ``accum`` micro-batches; returns (mean terms, done?)."""
        self.optimizer.zero_grad(set_to_none=True)
        sums = torch.zeros(len(TERMS), dtype=torch.float64)
        finite, bad_keys = True, None
        for a in range(accum):
            batch = next(it)
            if not finite:
                continue   # keep the loader in step; the update is skipped anyway
            noisy = batch["noisy"].to(self.device, non_blocking=True)
            clean = batch["clean"].to(self.device, non_blocking=True)
            vad = batch.get("vad")
            vad = vad.to(self.device, non_blocking=True) if vad is not None else None
            sync = (self.model.no_sync() if self.dist.distributed and a < accum - 1
                    else contextlib.nullcontext())
            with sync:
                with self._autocast():
                    out = self.model(noisy)
                terms = self.loss_fn(_fp32(out), clean, vad)
                loss = terms["loss"]
                local_ok = bool(torch.isfinite(loss))
                flag = torch.tensor([1.0 if local_ok else 0.0], device=self.device)
                _all_reduce(flag, self.dist, torch.distributed.ReduceOp.MIN if self.dist.distributed else None)
                if flag.item() < 1.0:   # every rank skips together
                    finite = False
                    bad_keys = (f"batch {', '.join(batch['keys'])}" if not local_ok else "on another rank")
                    continue
                self.scaler.scale(loss / accum).backward()
            sums += torch.tensor([float(terms[k].detach()) for k in TERMS], dtype=torch.float64)
        if finite:
            if self.scaler.is_enabled():
                self.scaler.unscale_(self.optimizer)
            clip = self.t["grad_clip"]
            gnorm = torch.nn.utils.clip_grad_norm_(self.module.parameters(),
                                                   float(clip) if clip else float("inf"))
            if not self.scaler.is_enabled() and not bool(torch.isfinite(gnorm)):
                finite = False
            else:
                self.scaler.step(self.optimizer)
                self.scaler.update()
        if not finite:
            self.optimizer.zero_grad(set_to_none=True)
            self.nonfinite_total += 1
            self.nonfinite_in_row += 1
            what = f"loss ({bad_keys})" if bad_keys else "gradient norm"
            log.warning("epoch %d step %d: non-finite %s; step skipped (%d in a row, %d in total)", self.epoch,
                        self.step + 1, what, self.nonfinite_in_row, self.nonfinite_total)
            if self.nonfinite_in_row >= int(self.t["max_nonfinite"]):
                raise TrainingError(
                    f"{self.nonfinite_in_row} non-finite steps in a row (train.max_nonfinite "
                    f"{self.t['max_nonfinite']}) at epoch {self.epoch} step {self.step + 1}: training diverged "
                    "or the data holds NaN/Inf; lower optim.lr, set train.grad_clip, try train.amp none, or check "
                    "the data. Last good state: checkpoint_last.pth")
            return {}, False
        self.nonfinite_in_row = 0
        sums /= accum
        return {k: float(sums[i]) for i, k in enumerate(TERMS)}, True

    def _check_ranks_identical(self) -> None:
        flat = torch.cat([p.detach().reshape(-1).float() for p in self.module.parameters()])
        ref = flat.clone()
        torch.distributed.broadcast(ref, src=0)
        bad = torch.tensor([0.0 if torch.equal(ref, flat) else 1.0], device=flat.device)
        torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
        if bad.item() > 0:
            raise TrainingError(f"DDP ranks hold different weights after step {self.global_step}")
        log.info("ddp check at step %d: weights identical on %d ranks", self.global_step, self.dist.world_size)

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> dict:
        """Loss terms over the validation set (+ PESQ/STOI on a subset); identical on every rank."""
        model = self.module
        was_training = model.training
        model.eval()
        n_metrics = int(self.t["valid_metrics_subset"])
        indices = range(len(self.valid_set))
        loader = torch.utils.data.DataLoader(
            self.valid_set, batch_size=1, sampler=ShardSampler(indices, self.dist.rank, self.dist.world_size),
            collate_fn=collate, num_workers=self.t["num_workers"],
            generator=torch.Generator().manual_seed(0))
        position = {k: i for i, k in enumerate(self.valid_set.keys)}
        sums = torch.zeros(len(TERMS) + 5, dtype=torch.float64)   # terms, n, pesq, n_pesq, stoi, n_stoi
        win = self.stft_cfg.win_length
        failures = []
        for batch in loader:
            noisy, clean, vad = batch["noisy"], batch["clean"], batch.get("vad")
            if noisy.shape[1] < win:   # shorter than one window: pad with silence
                pad = win - noisy.shape[1]
                noisy = torch.nn.functional.pad(noisy, (0, pad))
                clean = torch.nn.functional.pad(clean, (0, pad))
                if vad is not None:
                    vad = torch.nn.functional.pad(vad, (0, self.stft_cfg.num_frames(win) - vad.shape[1]))
            noisy, clean = noisy.to(self.device), clean.to(self.device)
            vad = vad.to(self.device) if vad is not None else None
            with self._autocast():
                out = model(noisy)
            out = _fp32(out)
            terms = self.loss_fn(out, clean, vad)
            for i, k in enumerate(TERMS):
                sums[i] += float(terms[k])
            sums[len(TERMS)] += 1
            key = batch["keys"][0]
            if position[key] < n_metrics:
                from csmvanet.metrics.basic import pesq_score, stoi_score
                n = batch["noisy"].shape[1]
                ref = clean[0, :n].cpu().numpy()
                deg = out["wave"][0, :n].cpu().numpy()
                sr = self.stft_cfg.sample_rate
                p, s = pesq_score(ref, deg, sr), stoi_score(ref, deg, sr)
                if p == p:
                    sums[len(TERMS) + 1] += p
                    sums[len(TERMS) + 2] += 1
                else:
                    failures.append(key)
                if s == s:
                    sums[len(TERMS) + 3] += s
                    sums[len(TERMS) + 4] += 1
        if failures:
            log.warning("validation: PESQ failed on %d utterance(s): %s", len(failures), ", ".join(failures[:5]))
        sums = _all_reduce(sums.to(self.device), self.dist).cpu()
        nt = len(TERMS)
        res = {f"valid.{k}": float(sums[i] / max(1.0, float(sums[nt]))) for i, k in enumerate(TERMS)}
        if n_metrics:
            if sums[nt + 2] > 0:
                res["valid.pesq"] = float(sums[nt + 1] / sums[nt + 2])
            if sums[nt + 4] > 0:
                res["valid.stoi"] = float(sums[nt + 3] / sums[nt + 4])
        model.train(was_training)
        return res

    # ------------------------------------------------------------------ epoch end
    def _epoch_train_stats(self) -> dict:
        v = torch.tensor([self._acc["n"], self._acc["nonfinite"]] + self._acc["sums"], dtype=torch.float64)
        v = _all_reduce(v.to(self.device), self.dist).cpu()
        n = max(1.0, float(v[0]))
        res = {f"train.{k}": float(v[2 + i] / n) for i, k in enumerate(TERMS)}
        res["train.nonfinite"] = int(v[1] / self.dist.world_size)
        return res

    def _tracked_criteria(self) -> list[str]:
        crits = [self.t["best_criterion"]]
        extra = ["valid.loss"] + (["valid.pesq", "valid.stoi"] if self.t["valid_metrics_subset"] else [])
        return crits + [c for c in extra if c not in crits]

    def _end_epoch(self) -> None:
        train_stats = self._epoch_train_stats()
        t0 = time.time()
        valid = self.validate()
        entry = {"epoch": self.epoch, "global_step": self.global_step,
                 "lr": float(self.optimizer.param_groups[0]["lr"]), **train_stats, **valid,
                 "train.seconds": round(float(self._acc["seconds"]), 3), "valid.seconds": round(time.time() - t0, 3)}
        self.history = [h for h in self.history if h["epoch"] != self.epoch] + [entry]
        log.info("epoch %d done: %s", self.epoch, "; ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items() if k != "epoch"))
        if self.dist.is_main:
            ckpt.save_checkpoint(self.module.state_dict(), ckpt.epoch_file(self.exp_dir, self.epoch))
            ckpt.write_history(self.exp_dir, self.history)
            crit = self.t["best_criterion"]
            if crit not in entry:
                raise TrainingError(f"train.best_criterion {crit!r} is not among the validation values "
                                    f"{sorted(k for k in entry if k.startswith('valid.'))}")
            ckpt.prune_epoch_files(self.exp_dir, self.history, self._tracked_criteria(), int(self.t["nbest"]))
            chosen = ckpt.update_best(self.exp_dir, self.history, crit, int(self.t["nbest"]))
            log.info("%s: best epochs %s -> %s", crit, [e for e, _ in chosen], self.exp_dir / f"{crit}.ave.pth")
            if self.tb is not None:
                for k, v in entry.items():
                    if k.startswith(("train.", "valid.")) and isinstance(v, (int, float)):
                        phase, name = k.split(".", 1)
                        self.tb.add_scalar(f"{name}/{phase}", v, self.epoch)
                self.tb.add_scalar("lr", entry["lr"], self.epoch)
                self.tb.flush()
            if self.t["plot"]:
                self.plot()
        self.scheduler.step()
        self.epoch += 1
        self.step = 0
        self._acc = self._zero_acc()
        self.save()

    def _finalise(self) -> None:
        nbest = int(self.t["nbest"])
        for crit in self._tracked_criteria():
            if ckpt.rank_epochs(self.history, crit):
                chosen = ckpt.update_best(self.exp_dir, self.history, crit, nbest)
                log.info("%s: averaged epochs %s into %s", crit, [e for e, _ in chosen],
                         self.exp_dir / f"{crit}.ave.pth")
        if self.t["plot"]:
            self.plot()
        log.info("training finished: %d epochs, %d steps, %d non-finite steps skipped; model for decoding: %s",
                 self.history[-1]["epoch"], self.global_step, self.nonfinite_total,
                 self.exp_dir / f"{self.t['best_criterion']}.ave.pth")

    def plot(self) -> Path | None:
        """Train/valid curves of every loss term (and PESQ/STOI, lr) -> E/curves.png."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:
            log.warning("matplotlib not available (%s): no curves.png", e)
            return None
        hist = self.history
        panels = list(TERMS) + [k for k in ("pesq", "stoi") if any(f"valid.{k}" in h for h in hist)] + ["lr"]
        cols = 4
        rows = math.ceil(len(panels) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
        ep = [h["epoch"] for h in hist]
        for ax, name in zip(axes.flat, panels):
            if name == "lr":
                ax.plot(ep, [h["lr"] for h in hist], marker=".")
            else:
                for phase in ("train", "valid"):
                    pts = [(h["epoch"], h[f"{phase}.{name}"]) for h in hist if f"{phase}.{name}" in h]
                    if pts:
                        ax.plot(*zip(*pts), marker=".", label=phase)
                ax.legend(fontsize=8)
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        fig.suptitle(f"{self.exp_dir.name}: train/valid curves")
        fig.tight_layout()
        out = self.exp_dir / "curves.png"
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=80)
        plt.close(fig)
        return out


# ------------------------------------------------------------------------------------ entry points

def train(cfg: dict, train_dir, valid_dir, exp_dir, *, resume: bool = False, seed: int | None = None,
          ngpu: int = 0, nproc: int | None = None, argv: list[str] | None = None) -> dict:
    """Resolve the config, set up the processes and run the training; returns the last epoch's values.

    Under torchrun (WORLD_SIZE > 1 in the environment) this process is one rank. Otherwise ``nproc``
    local processes are spawned (default: ``ngpu`` when > 1, else 1); ``ngpu`` 0 with ``nproc`` > 1
    is DDP on the CPU (gloo).
    """
    cfg = resolve_config(cfg, seed)
    in_torchrun = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if nproc is None:
        nproc = ngpu if ngpu > 1 else 1
    if nproc > 1 and not in_torchrun:
        if ngpu > 0 and (not torch.cuda.is_available() or torch.cuda.device_count() < nproc):
            raise TrainingError(f"--ngpu {ngpu}: only {torch.cuda.device_count()} CUDA device(s) here")
        spawn_local(nproc, _train_process, cfg, train_dir, valid_dir, exp_dir, resume, ngpu, argv)
        return ckpt.read_history(exp_dir)[-1]
    return _train_process(cfg, train_dir, valid_dir, exp_dir, resume, ngpu, argv)


def _train_process(cfg, train_dir, valid_dir, exp_dir, resume, ngpu, argv) -> dict:
    dist = setup_distributed(ngpu)
    try:
        return Trainer(cfg, train_dir, valid_dir, exp_dir, dist=dist, resume=resume, argv=argv).run()
    finally:
        if dist.distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def average(exp_dir, criterion: str = "valid.loss", nbest: int | None = None) -> list[tuple[int, float]]:
    """(Re-)average the N best epochs of ``exp_dir`` by ``criterion``; N defaults to config train.nbest."""
    exp_dir = Path(exp_dir)
    if nbest is None:
        from csmvanet.config import load_config
        conf = exp_dir / "config.yaml"
        nbest = int(((load_config(conf) if conf.is_file() else {}).get("train") or {}).get("nbest", TRAIN_DEFAULTS["nbest"]))
    try:
        ckpt.criterion_mode(criterion)
    except ValueError as e:
        raise TrainingError(str(e)) from None
    return ckpt.update_best(exp_dir, ckpt.read_history(exp_dir), criterion, nbest)
