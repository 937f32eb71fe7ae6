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
resumed run ends with the same weights as an uninterrupted one. A resume on other data or with another seed
mid-epoch is refused; a full disk stops the run in one line, checkpoint_last.pth kept (:mod:`csmvanet.train.resume`).

Mixed precision: ``train.amp: bf16|fp16`` autocasts the network on CUDA; STFT, compression and the
losses stay in fp32 (features.py / loss.py disable autocast; outputs are cast to fp32 here); fp16
uses a GradScaler. On CPU amp is ignored with a warning.

A non-finite loss (on any rank) or, without fp16 scaling, a non-finite gradient norm skips the step
and is counted; ``train.max_nonfinite`` in a row abort the run (TrainingError).

This module is the loop; the config and the exp-dir layout are :mod:`csmvanet.experiment.resolved_config`, the
processes :mod:`csmvanet.train.distributed`, logging/tensorboard/curves :mod:`csmvanet.train.reporter`,
validation :mod:`csmvanet.train.validation`, the RNG state :mod:`csmvanet.base.rng`.

Hooks: ``Trainer(..., hooks=[h])`` calls ``h.after_step(trainer)`` after every optimizer step has
been counted and reported, before that step's DDP rank check, checkpoint and SIGTERM check. The
tests use hooks to inject faults (kill a process, make ranks differ); the loop itself has no test
branches.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os
import signal
import threading
import time
from pathlib import Path

import torch

from csmvanet.base.atomic_files import remove_stale_temps
from csmvanet.base.errors import TrainingError
from csmvanet.base.rng import rng_state, seed_all, set_rng_state
from csmvanet.data.dataset import GlobalBatchSampler, TrainSegments, WholeUtterances, collate
from csmvanet.experiment import checkpoint as ckpt
from csmvanet.experiment.resolved_config import LAST_CHECKPOINT, Experiment, finished_run_files, write_run_files
from csmvanet.nets.loss import TERMS, autocast, fp32_outputs
from csmvanet.train.distributed import (DistInfo, all_ranks, any_rank, gather_objects, in_torchrun, ranks_identical,
                                        setup_distributed, spawn_local, teardown_distributed)
from csmvanet.train.init_param import init_params
from csmvanet.train.reporter import FileLogging, Reporter
from csmvanet.train.resume import DISK_ERRNOS, check_resume, data_fingerprint, write_failure
from csmvanet.train.validation import validate

log = logging.getLogger("csmvanet.train.trainer")


def _worker_ignores_sigterm(_worker_id: int) -> None:
    """DataLoader workers leave SIGTERM to the main process, which saves a checkpoint and stops them."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class Trainer:
    """The training loop of one process (one rank): epochs of optimizer steps, validation, checkpoints.

    ``cfg``: the :class:`Experiment` of the training (what :func:`train` resolved; a config dict is
    resolved here), its only source of settings; ``hooks``: objects with ``after_step(trainer)``.
    """

    def __init__(self, cfg: dict | Experiment, train_dir, valid_dir, exp_dir, *, dist: DistInfo | None = None,
                 resume: bool = False, argv: list[str] | None = None, hooks=()):
        self.experiment = cfg if isinstance(cfg, Experiment) else Experiment.from_config(cfg)
        self.cfg = self.experiment.config
        self.t = self.experiment.train
        self.dist = dist or DistInfo()
        self.device = self.dist.device
        self.exp_dir = Path(exp_dir)
        self.train_dir, self.valid_dir = Path(train_dir), Path(valid_dir)
        if self.train_dir.resolve() == self.valid_dir.resolve():
            raise TrainingError(f"--train_dir and --valid_dir are the same folder ({train_dir})")
        self.argv, self.hooks = list(argv or []), list(hooks)
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        self._logging = FileLogging(self.exp_dir, self.dist)
        try:
            self._setup(resume)
        except BaseException:
            self._logging.close()
            raise

    def _setup(self, resume: bool) -> None:
        last = self.exp_dir / LAST_CHECKPOINT
        if last.exists() and not resume:
            raise TrainingError(f"{last} exists: pass --resume to continue that run, or use a new --exp_dir")
        self.resume_from = last if (resume and last.exists()) else None
        if resume and self.resume_from is None:
            log.info("--resume: %s not found, starting from scratch", last)

        t = self.t
        seed = int(t.seed)
        if t.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        self.amp = t.amp
        if self.amp != "none" and self.device.type != "cuda":
            log.warning("train.amp %s ignored: mixed precision is used on CUDA only; training in fp32",
                        self.amp)
            self.amp = "none"
        if self.amp == "bf16" and not torch.cuda.is_bf16_supported():
            raise TrainingError("train.amp bf16: this GPU does not support bfloat16; use fp16 or none")

        # Same initial weights on every rank (DDP also broadcasts rank 0's), then per-rank streams.
        seed_all(seed)
        self.stft_cfg = self.experiment.stft
        model = init_params(self.experiment.build_model(), None if self.resume_from else t.init_param)
        self.module = model.to(self.device).set_grad_checkpointing(self.t.grad_checkpoint)
        self.loss_fn = self.experiment.build_loss().to(self.device)
        seed_all(seed + 1000003 * self.dist.rank)

        use_vad = self.module.vad is not None
        self.train_set = TrainSegments(self.train_dir, self.stft_cfg, t.segment_seconds, seed=seed,
                                       use_vad=use_vad)
        self.valid_set = WholeUtterances(self.valid_dir, self.stft_cfg, use_vad=use_vad,
                                         max_seconds=t.valid_max_seconds)
        try:
            self.sampler = GlobalBatchSampler(len(self.train_set), t.batch_size, seed=seed,
                                              rank=self.dist.rank, world_size=self.dist.world_size,
                                              accum_grad=t.accum_grad)
        except ValueError as e:
            raise TrainingError(str(e)) from None
        self.steps_per_epoch = self.sampler.steps_per_epoch
        self.data_fingerprints = {"train": data_fingerprint(self.train_set.data),   # checked on resume
                                  "valid": data_fingerprint(self.valid_set.data)}

        if self.dist.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self.model = DDP(self.module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                             find_unused_parameters=bool(t.find_unused_parameters))
        else:
            self.model = self.module
        self.optimizer = self.experiment.build_optimizer(self.module.parameters())
        self.scheduler = self.experiment.build_scheduler(self.optimizer)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == "fp16")

        # position and bookkeeping
        self.epoch, self.step, self.global_step = 1, 0, 0
        self.history: list[dict] = []
        self.nonfinite_total, self.nonfinite_in_row, self.saved_at = 0, 0, None  # saved_at: its (epoch, step)
        self.reporter = Reporter(self.exp_dir, self.dist, log_interval=t.log_interval, tensorboard=t.tensorboard,
                                 progress_bar=t.progress_bar, plot=t.plot)
        self._term = False

    # ------------------------------------------------------------------ state
    def _gather_local(self) -> list[dict]:
        return gather_objects({"rng": rng_state(self.device), "acc": copy.deepcopy(self.reporter.acc)}, self.dist)

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
            "data": self.data_fingerprints,
        }

    def save(self) -> None:
        state = self.state_dict()  # collective in DDP: every rank takes part
        if self.dist.is_main:
            ckpt.save_checkpoint(state, self.exp_dir / LAST_CHECKPOINT)
            self.saved_at = (self.epoch, self.step)
            log.info("saved %s (epoch %d, step %d/%d)", self.exp_dir / LAST_CHECKPOINT, self.epoch,
                     self.step, self.steps_per_epoch)

    def load(self, path: Path) -> None:
        state = ckpt.load_checkpoint(path, map_location="cpu")
        if state.get("format") != "csmvanet-train-state":
            raise ckpt.CheckpointError(f"{path}: not a training checkpoint (no 'format': csmvanet-train-state)")
        check_resume(state, path, self.cfg, self.data_fingerprints)
        try:
            self.module.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise ckpt.CheckpointError(f"{path}: does not fit this model/optimizer: {str(e).splitlines()[0]}") from None
        self.epoch, self.step, self.global_step = int(state["epoch"]), int(state["step"]), int(state["global_step"])
        self.saved_at = (self.epoch, self.step)
        self.history = list(state["history"])
        self.nonfinite_total = int(state["nonfinite"]["total"])
        self.nonfinite_in_row = int(state["nonfinite"]["in_row"])
        ranks = state["ranks"]
        if len(ranks) == self.dist.world_size:
            mine = ranks[self.dist.rank]
            set_rng_state(mine["rng"], self.device)
            self.reporter.acc = mine["acc"]
        else:
            log.warning("--resume: checkpoint written by %d process(es), now %d: RNG streams re-seeded, the "
                        "epoch's running train averages restart", len(ranks), self.dist.world_size)
            seed_all(int(self.t.seed) + 7919 * self.global_step + 1000003 * self.dist.rank)
            self.reporter.reset()
        log.info("resumed from %s: epoch %d, step %d/%d, global step %d", path, self.epoch, self.step,
                 self.steps_per_epoch, self.global_step)

    # ------------------------------------------------------------------ run
    def _on_sigterm(self, signum, frame) -> None:
        self._term = True

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
            if self.resume_from is not None and self.dist.is_main:
                remove_stale_temps(self.exp_dir, ".pth")   # a save killed by SIGKILL: ~100 MB each
            finished = self.resume_from is not None and finished_run_files(self.exp_dir, self.cfg, self.epoch)
            if self.dist.is_main and not finished:
                write_run_files(self.exp_dir, self.cfg, self.argv, self.dist.world_size)
            self.reporter.header(self.module, self.argv, train_dir=self.train_dir, valid_dir=self.valid_dir,
                                 n_train=len(self.train_set), n_valid=len(self.valid_set),
                                 steps_per_epoch=self.steps_per_epoch, t=self.t, amp=self.amp)
            self.reporter.open_tensorboard(self.global_step)
            epochs = int(self.t.epochs)
            if self.epoch > epochs:
                log.info("training already finished (%d epochs)", epochs)
            while self.epoch <= epochs:
                self._train_epoch()
                self._end_epoch()
            if self.dist.is_main and self.history:
                self._finalise()
            return self.history[-1] if self.history else {}
        except (ckpt.CheckpointWriteError, OSError) as e:   # a full disk: one line, the last good state kept
            if isinstance(e, OSError) and e.errno not in DISK_ERRNOS:
                raise
            raise write_failure(e, self.exp_dir, self.exp_dir / LAST_CHECKPOINT, (self.epoch, self.step),
                                self.saved_at) from None
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGTERM, old_handler)
            self.reporter.close()
            self._logging.close()

    # ------------------------------------------------------------------ one epoch
    def _loader(self):
        self.train_set.set_epoch(self.epoch)
        self.sampler.set_epoch(self.epoch, self.step)
        # own generator: creating the iterator must not consume the global torch RNG (exact resume)
        gen = torch.Generator().manual_seed(int(self.t.seed) * 100003 + self.epoch)
        return torch.utils.data.DataLoader(self.train_set, batch_sampler=self.sampler, collate_fn=collate,
                                           num_workers=self.t.num_workers, generator=gen,
                                           worker_init_fn=_worker_ignores_sigterm,
                                           pin_memory=self.device.type == "cuda")

    def _train_epoch(self) -> None:
        self.model.train()
        accum = int(self.t.accum_grad)
        it = iter(self._loader())
        self.reporter.start_epoch(self.epoch, self.step, self.steps_per_epoch)
        save_every = int(self.t.save_every_steps)
        t_epoch = time.time()
        while self.step < self.steps_per_epoch:
            terms, ok = self._train_step(it, accum)
            self.step += 1
            self.global_step += 1
            self.reporter.step(terms, ok, epoch=self.epoch, step=self.step, steps_per_epoch=self.steps_per_epoch,
                               global_step=self.global_step, lr=self.optimizer.param_groups[0]["lr"])
            for hook in self.hooks:
                hook.after_step(self)
            if self.t.ddp_check_every and self.dist.distributed and self.global_step % self.t.ddp_check_every == 0:
                self._check_ranks_identical()
            if save_every and self.step % save_every == 0 and self.step < self.steps_per_epoch:
                self.save()
            if any_rank(self._term, self.dist):
                self.save()
                raise TrainingError(f"stopped by SIGTERM after epoch {self.epoch} step {self.step}; "
                                    f"{self.exp_dir / LAST_CHECKPOINT} saved: continue with --resume")
        self.reporter.end_epoch_training(time.time() - t_epoch)
        if save_every and self.steps_per_epoch % save_every != 0:
            self.save()   # the epoch's training is not lost if validation gets killed

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
                with autocast(self.amp):
                    out = self.model(noisy)
                terms = self.loss_fn(fp32_outputs(out), clean, vad)
                loss = terms["loss"]
                local_ok = bool(torch.isfinite(loss))
                if not all_ranks(local_ok, self.dist):   # every rank skips together
                    finite = False
                    bad_keys = (f"batch {', '.join(batch['keys'])}" if not local_ok else "on another rank")
                    continue
                self.scaler.scale(loss / accum).backward()
            sums += torch.tensor([float(terms[k].detach()) for k in TERMS], dtype=torch.float64)
        if finite:
            if self.scaler.is_enabled():
                self.scaler.unscale_(self.optimizer)
            clip = self.t.grad_clip
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
            if self.nonfinite_in_row >= int(self.t.max_nonfinite):
                raise TrainingError(
                    f"{self.nonfinite_in_row} non-finite steps in a row (train.max_nonfinite "
                    f"{self.t.max_nonfinite}) at epoch {self.epoch} step {self.step + 1}: training diverged "
                    "or the data holds NaN/Inf; lower optim.lr, set train.grad_clip, try train.amp none, or check "
                    "the data. Last good state: checkpoint_last.pth")
            return {}, False
        self.nonfinite_in_row = 0
        sums /= accum
        return {k: float(sums[i]) for i, k in enumerate(TERMS)}, True

    def _check_ranks_identical(self) -> None:
        if not ranks_identical(self.module):
            raise TrainingError(f"DDP ranks hold different weights after step {self.global_step}")
        log.info("ddp check at step %d: weights identical on %d ranks", self.global_step, self.dist.world_size)

    def validate(self) -> dict:
        """Loss terms over the validation set (+ PESQ/STOI on a subset); identical on every rank."""
        return validate(self.module, self.loss_fn, self.valid_set, self.stft_cfg, self.dist, amp=self.amp,
                        num_workers=self.t.num_workers, metrics_subset=self.t.valid_metrics_subset)

    # ------------------------------------------------------------------ epoch end
    def _tracked_criteria(self) -> list[str]:
        crits = [self.t.best_criterion]
        extra = ["valid.loss"] + (["valid.pesq", "valid.stoi"] if self.t.valid_metrics_subset else [])
        return crits + [c for c in extra if c not in crits]

    def _end_epoch(self) -> None:
        train_stats = self.reporter.epoch_train_stats()
        t0 = time.time()
        valid = self.validate()
        entry = {"epoch": self.epoch, "global_step": self.global_step,
                 "lr": float(self.optimizer.param_groups[0]["lr"]), **train_stats, **valid,
                 "train.seconds": round(float(self.reporter.acc["seconds"]), 3),
                 "valid.seconds": round(time.time() - t0, 3)}
        self.history = [h for h in self.history if h["epoch"] != self.epoch] + [entry]
        self.reporter.epoch_done(entry)
        if self.dist.is_main:
            ckpt.save_checkpoint(self.module.state_dict(), ckpt.epoch_file(self.exp_dir, self.epoch))
            ckpt.write_history(self.exp_dir, self.history)
            crit = self.t.best_criterion
            if crit not in entry:
                raise TrainingError(f"train.best_criterion {crit!r} is not among the validation values "
                                    f"{sorted(k for k in entry if k.startswith('valid.'))}")
            ckpt.prune_epoch_files(self.exp_dir, self.history, self._tracked_criteria(), int(self.t.nbest))
            chosen = ckpt.update_best(self.exp_dir, self.history, crit, int(self.t.nbest))
            log.info("%s: best epochs %s -> %s", crit, [e for e, _ in chosen], self.exp_dir / f"{crit}.ave.pth")
            self.reporter.epoch_scalars(entry)
            self.reporter.plot(self.history)
        self.scheduler.step()
        self.epoch += 1
        self.step = 0
        self.reporter.reset()
        self.save()

    def _finalise(self) -> None:
        nbest = int(self.t.nbest)
        for crit in self._tracked_criteria():
            if ckpt.rank_epochs(self.history, crit):
                chosen = ckpt.update_best(self.exp_dir, self.history, crit, nbest)
                log.info("%s: averaged epochs %s into %s", crit, [e for e, _ in chosen],
                         self.exp_dir / f"{crit}.ave.pth")
        self.reporter.plot(self.history)
        log.info("training finished: %d epochs, %d steps, %d non-finite steps skipped; model for decoding: %s",
                 self.history[-1]["epoch"], self.global_step, self.nonfinite_total,
                 self.exp_dir / f"{self.t.best_criterion}.ave.pth")


# ------------------------------------------------------------------------------------ entry points

def train(cfg: dict, train_dir, valid_dir, exp_dir, *, resume: bool = False, seed: int | None = None,
          ngpu: int = 0, nproc: int | None = None, argv: list[str] | None = None, hooks=()) -> dict:
    """Resolve the config (once: every process gets this :class:`Experiment`), set up the processes and
    run the training; returns the last epoch's values.

    Under torchrun (WORLD_SIZE > 1 in the environment) this process is one rank. Otherwise ``nproc``
    local processes are spawned (default: ``ngpu`` when > 1, else 1); ``ngpu`` 0 with ``nproc`` > 1
    is DDP on the CPU (gloo). ``hooks`` go to every process's Trainer (picklable when spawned).
    """
    experiment = Experiment.from_config(cfg, seed)
    if nproc is None:
        nproc = ngpu if ngpu > 1 else 1
    if nproc > 1 and not in_torchrun():
        if ngpu > 0 and (not torch.cuda.is_available() or torch.cuda.device_count() < nproc):
            raise TrainingError(f"--ngpu {ngpu}: only {torch.cuda.device_count()} CUDA device(s) here")
        spawn_local(nproc, _train_process, experiment, train_dir, valid_dir, exp_dir, resume, ngpu, argv,
                    list(hooks))
        return ckpt.read_history(exp_dir)[-1]
    return _train_process(experiment, train_dir, valid_dir, exp_dir, resume, ngpu, argv, list(hooks))


def _train_process(experiment, train_dir, valid_dir, exp_dir, resume, ngpu, argv, hooks=()) -> dict:
    dist = setup_distributed(ngpu)
    try:
        return Trainer(experiment, train_dir, valid_dir, exp_dir, dist=dist, resume=resume, argv=argv, hooks=hooks).run()
    finally:
        teardown_distributed(dist)

