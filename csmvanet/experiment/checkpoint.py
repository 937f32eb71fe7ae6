"""Checkpoint files: atomic saving, safe loading, best-N bookkeeping and weight averaging.

Files are torch zip archives. Saving writes a temporary file beside the target, fsyncs it, renames
it over the target and fsyncs the folder, so a crash (even SIGKILL or power loss after the rename)
leaves either the old or the new file, never a half-written one.

Loading always uses ``torch.load(..., weights_only=True)`` (no arbitrary unpickling), after checking
the archive's CRC-32 of every record: torch itself does not verify them, so a flipped byte inside a
tensor would otherwise load silently as wrong weights. Every problem is a :class:`CheckpointError`
that names the file and says what is wrong; a write that fails (a full disk) is one
:class:`CheckpointWriteError` naming the file and the system's reason, the old file left in place.

Experiment-dir layout written by the trainer (ESPnet style):
  checkpoint_last.pth            full training state (model, optimizer, scheduler, RNG, position ...)
  epoch<N>.pth                   model weights after epoch N (kept while among the N best by a
                                 tracked criterion)
  <criterion>.best.txt           ranking: ``rank epoch value`` lines, best first
  <criterion>.best.pth           weights of the best epoch
  <criterion>.ave.pth            weights averaged over the N best epochs (the model for decoding)
  history.json                   per-epoch train/valid values (the source of every ranking)
Model-weight files are plain ``state_dict``s, loadable by ``model.load_state_dict``.
"""
from __future__ import annotations

import contextlib
import json
import os
import zipfile
from pathlib import Path

import torch

from csmvanet.base.atomic_files import atomic_path, atomic_write_text, remove_stale_temps


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


class CheckpointWriteError(CheckpointError):
    """A file of the experiment dir that could not be written (full disk, quota, read-only, ...); the
    message names the file and the system's reason; the file as it was before is left in place."""

    def __init__(self, path, cause: OSError):
        reason = cause.strerror or str(cause) or type(cause).__name__
        super().__init__(f"{path}: cannot write ({reason})")
        self.path, self.errno = Path(path), cause.errno


def _os_error_in(e: BaseException) -> OSError | None:
    """The first OSError of an exception's chain (torch's zip writer reports a failed write as a
    RuntimeError raised while handling it), or None."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


@contextlib.contextmanager
def writing(path: str | os.PathLike):
    """Around the writing of ``path``: an OSError (anywhere in the exception's chain) becomes one
    :class:`CheckpointWriteError` naming ``path`` instead of a chain of tracebacks."""
    try:
        yield
    except CheckpointWriteError:
        raise
    except (OSError, RuntimeError) as e:
        cause = _os_error_in(e)
        if cause is None:
            raise
        raise CheckpointWriteError(path, cause) from None


# ---------------------------------------------------------------------------------------------- I/O

def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write ``state`` to ``path`` atomically and durably (temporary file, fsync, rename, fsync dir)."""
    path = Path(path)
    remove_stale_temps(path.parent, ".pth")   # a save killed by SIGKILL leaves ~100 MB behind; one writer here
    with writing(path), atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
    _fsync_dir(path.parent)


def verify_archive(path: str | os.PathLike) -> None:
    """Check that ``path`` is a complete torch archive whose records match their CRC-32."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: empty file (0 bytes)")
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except zipfile.BadZipFile as e:
        raise CheckpointError(f"{path}: truncated or not a torch checkpoint ({size} bytes; {e})") from None
    except (OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as e:
        raise CheckpointError(f"{path}: unreadable archive ({type(e).__name__}: {e})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: corrupted: record {bad!r} does not match its CRC-32 checksum")


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True``; any problem -> :class:`CheckpointError`."""
    path = Path(path)
    verify_archive(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch/pickle raise many types; the user needs the file and the gist
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Weights only load failed" in msg or type(e).__name__ == "UnpicklingError":
            msg = ("it holds objects other than tensors and plain containers, which are refused "
                   "(weights_only=True), or its data is damaged")
        raise CheckpointError(f"{path}: cannot load checkpoint: {msg}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict of states, found {type(state).__name__}")
    return state


def model_state(state: dict, path: str | os.PathLike = "<state>") -> dict:
    """The model weights of a loaded file: a plain state_dict, or the ``model`` entry of a checkpoint."""
    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not state or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: no model weights found (neither a state_dict nor a checkpoint "
                              "with a 'model' entry)")
    return state


def load_model_state(path: str | os.PathLike, map_location="cpu") -> dict:
    return model_state(load_checkpoint(path, map_location), path)


# ---------------------------------------------------------------------------------------- averaging

def average_state_dicts(states: list[dict]) -> dict:
    """Element-wise mean of state dicts with the same keys and shapes (accumulated in float64).

    Floating tensors are averaged; integer buffers (BatchNorm's ``num_batches_tracked``) are taken
    from the first state.
    """
    if not states:
        raise ValueError("average_state_dicts: no state dicts given")
    keys = list(states[0])
    for i, s in enumerate(states[1:], 1):
        if list(s) != keys:
            diff = sorted(set(s) ^ set(keys))[:3]
            raise ValueError(f"average_state_dicts: state {i} has other keys than state 0 (e.g. {diff})")
    out = {}
    for k in keys:
        first = states[0][k]
        if not first.is_floating_point() and not first.is_complex():
            out[k] = first.clone()
            continue
        acc = torch.zeros_like(first, dtype=torch.complex128 if first.is_complex() else torch.float64)
        for i, s in enumerate(states):
            if s[k].shape != first.shape:
                raise ValueError(f"average_state_dicts: {k}: shape {tuple(s[k].shape)} in state {i}, "
                                 f"{tuple(first.shape)} in state 0")
            acc += s[k].to(acc.dtype)
        out[k] = (acc / len(states)).to(first.dtype)
    return out


# ------------------------------------------------------------------------------- best-N bookkeeping

_MAXIMISED = {"pesq", "stoi", "estoi", "csig", "cbak", "covl", "sisnr", "si_snr", "snr", "ssnr", "acc",
              "accuracy", "f1"}


def criterion_mode(criterion: str) -> str:
    """'min' or 'max' for a criterion name like ``valid.loss`` or ``valid.pesq``."""
    if "." not in criterion:
        raise ValueError(f"criterion {criterion!r}: expected <phase>.<value>, e.g. valid.loss or valid.pesq")
    return "max" if criterion.split(".", 1)[1].lower() in _MAXIMISED else "min"


def epoch_file(exp_dir: str | os.PathLike, epoch: int) -> Path:
    return Path(exp_dir) / f"epoch{int(epoch)}.pth"


def read_history(exp_dir: str | os.PathLike) -> list[dict]:
    path = Path(exp_dir) / "history.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file (no epoch has finished in this experiment dir)")
    try:
        hist = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(hist, list):
        raise CheckpointError(f"{path}: expected a list of epochs")
    return hist


def write_history(exp_dir: str | os.PathLike, history: list[dict]) -> None:
    path = Path(exp_dir) / "history.json"
    with writing(path):
        atomic_write_text(path, json.dumps(history, indent=1) + "\n")


def rank_epochs(history: list[dict], criterion: str, nbest: int | None = None) -> list[tuple[int, float]]:
    """``[(epoch, value), ...]`` best first by ``criterion`` (ties: the earlier epoch first)."""
    sign = -1.0 if criterion_mode(criterion) == "max" else 1.0
    rows = []
    for h in history:
        v = h.get(criterion)
        if v is None or not isinstance(v, (int, float)) or v != v:  # missing or NaN
            continue
        rows.append((int(h["epoch"]), float(v)))
    rows.sort(key=lambda r: (sign * r[1], r[0]))
    return rows if nbest is None else rows[:nbest]


def update_best(exp_dir: str | os.PathLike, history: list[dict], criterion: str, nbest: int,
                *, require_all: bool = False) -> list[tuple[int, float]]:
    """Write ``<criterion>.best.txt``, ``.best.pth`` and ``.ave.pth`` from the N best epoch files.

    Epochs whose weight file is gone are left out (with ``require_all``: an error). Returns the
    epochs used.
    """
    exp_dir = Path(exp_dir)
    ranked = rank_epochs(history, criterion)
    if not ranked:
        raise CheckpointError(f"{exp_dir / 'history.json'}: no epoch has a value for {criterion!r}")
    chosen, missing = [], []
    for ep, v in ranked:
        if len(chosen) == nbest:
            break
        if epoch_file(exp_dir, ep).is_file():
            chosen.append((ep, v))
        else:
            missing.append(ep)
    if require_all and missing:
        raise CheckpointError(f"{exp_dir}: epoch file(s) of the {nbest} best by {criterion} are gone: "
                              + ", ".join(epoch_file(exp_dir, e).name for e in missing))
    if not chosen:
        raise CheckpointError(f"{exp_dir}: no epoch<N>.pth file left for the best epochs by {criterion}")
    lines = "".join(f"{i} {ep} {v:.6g} {epoch_file(exp_dir, ep).name}\n" for i, (ep, v) in enumerate(chosen, 1))
    with writing(exp_dir / f"{criterion}.best.txt"):
        atomic_write_text(exp_dir / f"{criterion}.best.txt", lines)
    states = [load_model_state(epoch_file(exp_dir, ep)) for ep, _ in chosen]
    save_checkpoint(states[0], exp_dir / f"{criterion}.best.pth")
    save_checkpoint(average_state_dicts(states), exp_dir / f"{criterion}.ave.pth")
    return chosen


def prune_epoch_files(exp_dir: str | os.PathLike, history: list[dict], criteria: list[str], nbest: int) -> list[int]:
    """Delete epoch<N>.pth files that are not among the N best by any of ``criteria``; returns kept epochs."""
    exp_dir = Path(exp_dir)
    keep = set()
    for c in criteria:
        keep.update(ep for ep, _ in rank_epochs(history, c, nbest))
    for h in history:
        ep = int(h["epoch"])
        f = epoch_file(exp_dir, ep)
        if ep not in keep and f.is_file():
            f.unlink()
    return sorted(keep)
