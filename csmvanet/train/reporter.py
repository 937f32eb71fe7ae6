"""What a training run reports: train.log, the progress bar, running means, tensorboard, curves.png.

:class:`FileLogging` sends the ``csmvanet`` logger to stderr and E/train.log (rank 0; not twice when
stderr already is that file, as under run.pl). :class:`Reporter` keeps the epoch's running sums of
the loss terms (part of the resume state), writes the step and epoch lines and their tensorboard
points, and draws the train/valid curves of the history.
"""
from __future__ import annotations

import logging
import math
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from csmvanet.base.atomic_files import atomic_path
from csmvanet.base.version import __version__, git_hash
from csmvanet.nets.loss import TERMS
from csmvanet.train.distributed import DistInfo, all_reduce

log = logging.getLogger("csmvanet.train.trainer")


class _LogFile(logging.FileHandler):
    """E/train.log; a write that fails (a full disk) is said once on stderr, not as a traceback per line."""

    failed = False

    def handleError(self, record) -> None:
        e = sys.exc_info()[1]
        if not isinstance(e, OSError):
            super().handleError(record)
        elif not self.failed:
            self.failed = True
            print(f"{self.baseFilename}: cannot write ({e.strerror or e}): further log lines go to stderr only",
                  file=sys.stderr)

    def close(self) -> None:
        try:
            super().close()
        except OSError:    # what is still buffered cannot be written either (said once already)
            pass


class FileLogging:
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
            fh = _LogFile(log_path, mode="a")
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


class Reporter:
    """Running means of an epoch, step/epoch log lines, tensorboard and curves of one run."""

    def __init__(self, exp_dir: Path, dist: DistInfo, *, log_interval: int, tensorboard: bool,
                 progress_bar: bool | None, plot: bool):
        self.exp_dir, self.dist = exp_dir, dist
        self.log_interval, self.want_tb, self.show_bar, self.want_plot = log_interval, tensorboard, progress_bar, plot
        self.acc = self.zero_acc()
        self.tb = None
        self.bar = None
        self._t_last, self._since_log = time.time(), 0

    # ---- running sums (saved in checkpoint_last.pth for an exact resume)
    @staticmethod
    def zero_acc() -> dict:
        return {"n": 0, "sums": [0.0] * len(TERMS), "nonfinite": 0, "seconds": 0.0}

    def reset(self) -> None:
        self.acc = self.zero_acc()

    def running_means(self) -> dict:
        n = max(1, self.acc["n"])
        return {k: self.acc["sums"][i] / n for i, k in enumerate(TERMS)}

    def epoch_train_stats(self) -> dict:
        """``train.<term>`` means of the epoch over every rank, ``train.nonfinite`` steps."""
        v = torch.tensor([self.acc["n"], self.acc["nonfinite"]] + self.acc["sums"], dtype=torch.float64)
        v = all_reduce(v.to(self.dist.device), self.dist).cpu()
        n = max(1.0, float(v[0]))
        res = {f"train.{k}": float(v[2 + i] / n) for i, k in enumerate(TERMS)}
        res["train.nonfinite"] = int(v[1] / self.dist.world_size)
        return res

    # ---- the run
    def header(self, module, argv, *, train_dir, valid_dir, n_train, n_valid, steps_per_epoch, t, amp) -> None:
        n_params = sum(p.numel() for p in module.parameters())
        log.info("csmvanet %s (git %s), torch %s, python %s", __version__, git_hash(), torch.__version__,
                 sys.version.split()[0])
        log.info("command: %s", " ".join(shlex.quote(a) for a in [sys.argv[0]] + argv))
        log.info("exp dir %s; train %s (%d utterances, %d steps/epoch of %d x %.3g s); valid %s (%d utterances)",
                 self.exp_dir, train_dir, n_train, steps_per_epoch, t.batch_size, t.segment_seconds, valid_dir,
                 n_valid)
        log.info("model: %d parameters (%.2fM); device %s; processes %d; amp %s; accum_grad %d",
                 n_params, n_params / 1e6, self.dist.device, self.dist.world_size, amp, t.accum_grad)

    def open_tensorboard(self, global_step: int) -> None:
        if not (self.dist.is_main and self.want_tb):
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            log.warning("tensorboard not available (%s): no event files; pip install tensorboard", e)
            return
        self.tb = SummaryWriter(str(self.exp_dir / "tensorboard"), purge_step=global_step or None)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()

    # ---- one epoch
    def start_epoch(self, epoch: int, step: int, steps_per_epoch: int) -> None:
        show = self.show_bar
        if show is None:
            show = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
        show = bool(show) and self.dist.is_main
        from tqdm import tqdm
        self.bar = tqdm(total=steps_per_epoch, initial=step, desc=f"epoch {epoch}", disable=not show,
                        dynamic_ncols=True, leave=False)
        self._t_last, self._since_log = time.time(), 0

    def step(self, terms: dict, ok: bool, *, epoch: int, step: int, steps_per_epoch: int, global_step: int,
             lr: float) -> None:
        """Account one optimizer step (``ok``: not skipped) and report it."""
        self._since_log += 1
        if ok:
            self.acc["n"] += 1
            for i, k in enumerate(TERMS):
                self.acc["sums"][i] += terms[k]
        else:
            self.acc["nonfinite"] += 1
        means = self.running_means()
        self.bar.set_postfix({k: f"{means[k]:.4g}" for k in TERMS}, refresh=False)
        self.bar.update(1)
        if self.log_interval and step % self.log_interval == 0:
            dt = (time.time() - self._t_last) / self._since_log
            self._t_last, self._since_log = time.time(), 0
            log.info("epoch %d step %d/%d: %s; lr %.3g; %.3f s/step", epoch, step, steps_per_epoch,
                     " ".join(f"{k} {means[k]:.4f}" for k in TERMS), lr, dt)
            if self.tb is not None:
                for k in TERMS:
                    self.tb.add_scalar(f"train_step/{k}", means[k], global_step)

    def end_epoch_training(self, seconds: float) -> None:
        self.bar.close()
        self.acc["seconds"] += seconds

    def epoch_done(self, entry: dict) -> None:
        """The epoch line (every rank's log) and, on rank 0, its tensorboard points."""
        log.info("epoch %d done: %s", entry["epoch"], "; ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items() if k != "epoch"))

    def epoch_scalars(self, entry: dict) -> None:
        if self.tb is None:
            return
        for k, v in entry.items():
            if k.startswith(("train.", "valid.")) and isinstance(v, (int, float)):
                phase, name = k.split(".", 1)
                self.tb.add_scalar(f"{name}/{phase}", v, entry["epoch"])
        self.tb.add_scalar("lr", entry["lr"], entry["epoch"])
        self.tb.flush()

    def plot(self, history: list[dict]) -> Path | None:
        """Train/valid curves of every loss term (and PESQ/STOI, lr) -> E/curves.png."""
        if not self.want_plot:
            return None
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:
            log.warning("matplotlib not available (%s): no curves.png", e)
            return None
        hist = history
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
