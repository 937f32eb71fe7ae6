"""The experiment layer: a config resolved once into typed sections, the model and loss built from
them, and the layout of an experiment dir.

A training config has the sections :data:`CONFIG_SECTIONS`; another top-level key fails naming it
(:func:`read_training_config` names the file or the override). ``Experiment.from_config(cfg)``
checks every section once (``stft``, ``model``, ``loss``, ``optim``, ``scheduler``, ``train``; an
unknown key fails naming it and listing the valid ones; the model's values are checked by
:meth:`CSMVANet.check_config`), fills in the training defaults and keeps the resolved dict as
``config``: what ``E/config.yaml`` holds and what a resume compares with. The model and loss are
built from the parsed sections (the stft section is parsed once and handed to both). The trainer
(one ``Experiment`` per training, handed to every process), csmvanet-average and csmvanet-pack
consume it; the Enhancer builds its model from a model file's config with
:func:`csmvanet.nets.build_model` (:mod:`csmvanet.experiment.model_files`), not through this layer.

Experiment dir ``E``: ``config.yaml`` (resolved config), ``run.sh`` (re-runs the training),
``train.log``, ``checkpoint_last.pth`` (resume state), ``epoch<N>.pth``, ``history.json``,
``<criterion>.best.txt|best.pth|ave.pth`` (see :mod:`csmvanet.experiment.checkpoint`), ``curves.png``,
``tensorboard/``. Decoding uses the first present of :data:`CHECKPOINT_ORDER`.
"""
from __future__ import annotations

import copy
import datetime
import os
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from csmvanet.audio.stft import STFTConfig
from csmvanet.base.atomic_files import atomic_write_text
from csmvanet.base.config import apply_overrides, check_sections, dump_config, load_config, section_options
from csmvanet.base.errors import ConfigError, TrainingError
from csmvanet.base.version import __version__, git_hash
from csmvanet.experiment import checkpoint as ckpt
from csmvanet.nets import CSMVANet, model_options
from csmvanet.nets.loss import CSMVANetLoss, loss_weights

CONFIG_FILE = "config.yaml"
LAST_CHECKPOINT = "checkpoint_last.pth"
RUN_SCRIPT = "run.sh"
#: Weights looked for in an experiment dir, in this order (glob patterns; sorted within a pattern).
#: The averaged model is what the recipes decode with; the others are fall-backs (with a warning).
CHECKPOINT_ORDER = ("valid.loss.ave.pth", "valid.*.ave.pth", "valid.loss.best.pth", "valid.*.best.pth",
                    LAST_CHECKPOINT)


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 100
    batch_size: int = 4               # global batch per optimizer step (all processes together)
    segment_seconds: float = 2.0
    num_workers: int = 2              # DataLoader workers per process
    seed: int = 0
    accum_grad: int = 1
    grad_clip: float | None = 5.0     # max gradient norm; 0 or null: no clipping
    amp: str = "none"                 # none | bf16 | fp16 (CUDA only)
    grad_checkpoint: bool = False     # recompute the Conformer blocks in backward (less memory, slower)
    max_nonfinite: int = 10           # abort after this many non-finite steps in a row
    save_every_steps: int = 500       # mid-epoch checkpoint_last.pth; 0: only at epoch ends
    best_criterion: str = "valid.loss"
    nbest: int = 5
    valid_metrics_subset: int = 0     # PESQ/STOI on the first N validation utterances; 0: off
    valid_max_seconds: float | None = None   # crop validation utterances (memory bound); null: whole
    log_interval: int = 50            # steps between log lines / tensorboard points
    deterministic: bool = False
    ddp_check_every: int = 0          # every N steps verify all ranks hold bit-identical weights
    find_unused_parameters: bool = False
    tensorboard: bool = True
    progress_bar: bool | None = None  # null: a tqdm bar when stderr is a terminal
    plot: bool = True
    init_param: str | None = None     # start from these weights (fine-tuning): path[:src_key[:dst_key[:exclude]]]


@dataclass(frozen=True)
class OptimOptions:
    name: str = "adamw"
    lr: float = 5e-4
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.01


@dataclass(frozen=True)
class SchedulerOptions:
    name: str = "steplr"
    step_size: int = 30
    gamma: float = 0.5


def _defaults(cls) -> dict:
    return asdict(cls())


TRAIN_DEFAULTS = _defaults(TrainOptions)
OPTIM_DEFAULTS = _defaults(OptimOptions)
SCHED_DEFAULTS = _defaults(SchedulerOptions)
_SECTIONS = (("train", TrainOptions), ("optim", OptimOptions), ("scheduler", SchedulerOptions))
#: The sections of a training config. ``config`` (:data:`PROVENANCE_KEYS`): the config file a
#: training was started with, written first into E/config.yaml (ESPnet's show_enh_score.sh greps it).
CONFIG_SECTIONS = ("stft", "model", "loss", "optim", "scheduler", "train")
PROVENANCE_KEYS = ("config",)


def read_training_config(path: str | Path, overrides: list[str] = ()) -> dict:
    """The config of ``path`` with command-line ``overrides`` (``--train.epochs 10``) applied and the
    file's name as its ``config`` key; a section not in :data:`CONFIG_SECTIONS` fails naming the file
    or the override and listing the known ones (the sections' keys and values: :meth:`Experiment.from_config`)."""
    cfg = load_config(path)
    check_sections(cfg, CONFIG_SECTIONS, path, PROVENANCE_KEYS)
    cfg = apply_overrides(cfg, list(overrides), sections=CONFIG_SECTIONS)
    return {"config": str(path), **{k: v for k, v in cfg.items() if k != "config"}}


def resolve_config(cfg: dict, seed: int | None = None) -> dict:
    """The config with every training default filled in (the exp dir's config.yaml), checked."""
    return Experiment.from_config(cfg, seed).config


def _check_train(t: TrainOptions) -> None:
    for key in ("epochs", "batch_size", "accum_grad", "max_nonfinite", "nbest"):
        v = getattr(t, key)
        if not isinstance(v, int) or v < 1:
            raise ConfigError(f"train.{key} must be a positive integer, got {v!r}")
    for key in ("num_workers", "save_every_steps", "valid_metrics_subset", "ddp_check_every", "log_interval"):
        v = getattr(t, key)
        if not isinstance(v, int) or v < 0:
            raise ConfigError(f"train.{key} must be a non-negative integer, got {v!r}")
    if t.amp not in ("none", "bf16", "fp16"):
        raise ConfigError(f"train.amp must be none, bf16 or fp16, got {t.amp!r}")
    crit = t.best_criterion
    try:
        ckpt.criterion_mode(crit)
    except ValueError as e:
        raise ConfigError(f"train.best_criterion: {e}") from None
    if not crit.startswith("valid."):
        raise ConfigError(f"train.best_criterion {crit!r}: checkpoints are selected on the validation set "
                          "(valid.<value>)")
    if crit in ("valid.pesq", "valid.stoi") and t.valid_metrics_subset == 0:
        raise ConfigError(f"train.best_criterion {crit} needs PESQ/STOI during validation: set "
                          "train.valid_metrics_subset to the number of utterances to score")


@dataclass(frozen=True)
class Experiment:
    """A resolved config: ``config`` (the dict written to config.yaml) and its typed sections."""

    config: dict
    stft: STFTConfig
    model: dict                 # CSMVANet keyword options as given
    loss: dict                  # loss weights as given (the others: CSMVANetLoss's defaults)
    train: TrainOptions
    optim: OptimOptions
    scheduler: SchedulerOptions

    @classmethod
    def from_config(cls, cfg: dict, seed: int | None = None) -> "Experiment":
        """Check every section, fill in the training defaults; ``seed`` overrides train.seed."""
        check_sections(cfg, CONFIG_SECTIONS, "config", PROVENANCE_KEYS)
        cfg = copy.deepcopy(cfg)
        typed = {}
        for name, kind in _SECTIONS:
            merged = _defaults(kind)
            merged.update(section_options(name, cfg.get(name) or {}, merged))
            if name == "train" and seed is not None:
                merged["seed"] = int(seed)
            cfg[name] = merged
            typed[name] = kind(**merged)
        _check_train(typed["train"])
        if str(typed["optim"].name).lower() != "adamw":
            raise ConfigError(f"optim.name {typed['optim'].name!r}: only adamw is implemented")
        if str(typed["scheduler"].name).lower() not in ("steplr", "none"):
            raise ConfigError(f"scheduler.name {typed['scheduler'].name!r}: use steplr or none")
        model = model_options(cfg)
        CSMVANet.check_config(model)
        return cls(cfg, STFTConfig.from_dict(cfg.get("stft")), model, loss_weights(cfg), **typed)

    @classmethod
    def from_dir(cls, exp_dir: str | Path) -> "Experiment":
        """The experiment of ``exp_dir/config.yaml``."""
        return cls.from_config(load_config(Path(exp_dir) / CONFIG_FILE))

    def build_model(self) -> CSMVANet:
        return CSMVANet(self.stft, **self.model)

    def build_loss(self) -> CSMVANetLoss:
        return CSMVANetLoss(self.stft, **self.loss)

    def build_optimizer(self, params):
        import torch

        o = self.optim
        return torch.optim.AdamW(params, lr=float(o.lr), betas=tuple(float(b) for b in o.betas), eps=float(o.eps),
                                 weight_decay=float(o.weight_decay))

    def build_scheduler(self, optimizer):
        import torch

        s = self.scheduler
        if str(s.name).lower() == "steplr":
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(s.step_size), gamma=float(s.gamma))
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


# ------------------------------------------------------------------------------ experiment dir

def _differences(old, new, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            out += _differences(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [f"{prefix[:-1]} ({old!r} -> {new!r})"]


def finished_run_files(exp_dir: Path, cfg: dict, next_epoch: int) -> bool:
    """True when ``exp_dir`` holds a finished training (``next_epoch`` past its config's epochs) with
    the same config: its config.yaml and run.sh stay as they are. A finished training with another
    config raises :class:`TrainingError` naming the exp dir and the keys that differ, so that
    RESULTS.md and packed models never describe weights with a config they were not trained with."""
    conf = Path(exp_dir) / CONFIG_FILE
    if not conf.is_file():
        return False
    old = load_config(conf)
    old.pop("config", None)  # the config file's name (provenance), not a setting
    cfg = {k: v for k, v in cfg.items() if k != "config"}
    old_epochs = int((old.get("train") or {}).get("epochs", TRAIN_DEFAULTS["epochs"]))
    if next_epoch <= old_epochs:
        return False
    new_epochs = int((cfg.get("train") or {}).get("epochs", old_epochs))
    diff = _differences(old, cfg)
    if new_epochs > old_epochs and all(d.startswith("train.epochs ") for d in diff):
        return False   # more epochs: the training goes on, the run files say so
    if diff:
        raise TrainingError(f"{exp_dir}: training already finished ({old_epochs} epochs) with another config; "
                            f"differing keys: {'; '.join(diff)}. Its config.yaml and run.sh are kept: train into "
                            "a new experiment dir (another --tag) or remove this one to retrain")
    return True


def write_run_files(exp_dir: Path, cfg: dict, argv: list[str], world_size: int) -> None:
    """E/config.yaml (the resolved config) and E/run.sh (re-runs this training; extra arguments appended)."""
    with ckpt.writing(exp_dir / CONFIG_FILE):
        atomic_write_text(exp_dir / CONFIG_FILE, dump_config(cfg))
    args = " ".join(shlex.quote(a) for a in argv)
    if "LOCAL_WORLD_SIZE" in os.environ and "TORCHELASTIC_RUN_ID" in os.environ:
        nnodes = world_size // max(1, int(os.environ["LOCAL_WORLD_SIZE"]))
        launcher = (f"torchrun --nnodes {nnodes} --nproc_per_node {os.environ['LOCAL_WORLD_SIZE']} "
                    f"-m csmvanet.bin.train")
        if nnodes > 1:
            launcher += " --rdzv_backend c10d --rdzv_endpoint \"$MASTER_ADDR:$MASTER_PORT\""
    else:
        launcher = f"{shlex.quote(sys.executable)} -m csmvanet.bin.train"
    text = ("#!/usr/bin/env bash\n"
            f"# Re-runs this training (csmvanet {__version__}, git {git_hash()}, "
            f"{datetime.datetime.now().isoformat(timespec='seconds')}). Extra arguments are appended.\n"
            f"cd {shlex.quote(os.getcwd())}\n"
            f"exec {launcher} {args} \"$@\"\n")
    run_sh = exp_dir / RUN_SCRIPT
    with ckpt.writing(run_sh):
        atomic_write_text(run_sh, text)
    mode = os.stat(run_sh).st_mode
    os.chmod(run_sh, mode | (mode & 0o444) >> 2)   # +x where readable


def average(exp_dir, criterion: str = "valid.loss", nbest: int | None = None) -> list[tuple[int, float]]:
    """(Re-)average the N best epochs of ``exp_dir`` by ``criterion``; N defaults to config train.nbest."""
    exp_dir = Path(exp_dir)
    if nbest is None:
        conf = exp_dir / CONFIG_FILE
        nbest = int(((load_config(conf) if conf.is_file() else {}).get("train") or {}).get("nbest", TRAIN_DEFAULTS["nbest"]))
    try:
        ckpt.criterion_mode(criterion)
    except ValueError as e:
        raise TrainingError(str(e)) from None
    return ckpt.update_best(exp_dir, ckpt.read_history(exp_dir), criterion, nbest)


__all__ = ["CHECKPOINT_ORDER", "CONFIG_FILE", "CONFIG_SECTIONS", "Experiment", "LAST_CHECKPOINT", "OPTIM_DEFAULTS",
           "OptimOptions", "SCHED_DEFAULTS", "SchedulerOptions", "TRAIN_DEFAULTS", "TrainOptions", "average",
           "read_training_config", "resolve_config", "write_run_files"]
