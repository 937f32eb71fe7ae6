"""What a resumed training must match, and what a stopped one leaves to resume from.

``--resume`` continues ``E/checkpoint_last.pth`` exactly only on the data and order it was written
with. The checkpoint records each data dir (:func:`data_fingerprint`: the resolved folder, the
number of utterances and a sha256 over the utterance keys and lengths, the order the dataset and
the batch sampler index them by); :func:`check_resume` refuses a resume whose ``--train_dir`` or
``--valid_dir`` holds other data (a moved or copied folder with the same utterances is accepted),
one with another model or STFT config, and one mid-epoch with another ``train.batch_size`` or
``train.seed``: the rest of the epoch would be drawn from another order, repeating some items and
skipping others. At an epoch boundary a new seed or batch size only changes the epochs to come (a
warning says so). Checkpoints written before the data were recorded are resumed unchecked, with a
notice.

:func:`write_failure` turns a failed write of the experiment dir (full disk, quota, read-only) into
one line naming the file and the last good state kept, which ``--resume`` continues from.
"""
from __future__ import annotations

import errno
import hashlib
import logging
from pathlib import Path

from csmvanet.base.errors import TrainingError

log = logging.getLogger("csmvanet.train.trainer")

#: errno values of a write that no retry will fix while the disk stays as it is
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def data_fingerprint(data) -> dict:
    """``{"dir", "utterances", "sha256"}`` of a :class:`csmvanet.data.dataset.DataDir` (keys in the order
    the dataset indexes them, with their lengths in samples)."""
    h = hashlib.sha256()
    for k in data.keys:
        h.update(f"{k} {int(data.num_samples[k])}\n".encode("utf-8", "surrogateescape"))
    return {"dir": str(Path(data.path).resolve()), "utterances": len(data.keys), "sha256": h.hexdigest()[:16]}


def _check_data(old: dict | None, new: dict, option: str, path: Path) -> None:
    if not old:
        log.info("--resume: %s records no %s data (written by an older csmvanet): not checked", path, option)
        return
    if old.get("sha256") == new["sha256"]:
        if old.get("dir") != new["dir"]:
            log.info("--resume: %s %s holds the same utterances as %s, where the checkpoint was trained",
                     option, new["dir"], old.get("dir"))
        return
    now = f"{new['utterances']} utterances, fingerprint {new['sha256']}"
    then = f"{old.get('utterances')} utterances, fingerprint {old.get('sha256')}"
    if old.get("dir") == new["dir"]:
        what = f"the data of {option} {new['dir']} changed since {path} was written (now {now}; then {then})"
    else:
        what = f"{path} was trained on {option} {old.get('dir')} ({then}), not on {new['dir']} ({now})"
    raise TrainingError(f"--resume: {what}: resume with the data it was trained on, or train into a new --exp_dir")


def check_resume(state: dict, path: Path, cfg: dict, data: dict) -> None:
    """Refuse (TrainingError, one line) a resume of checkpoint ``state`` (from ``path``) that would not
    continue it: another model/stft config, other data (``data``: {"train"|"valid": fingerprint}),
    another batch size or seed mid-epoch; warn about other changed config sections."""
    old = state.get("config") or {}
    for sec in ("model", "stft"):
        if old.get(sec) != cfg.get(sec):
            raise TrainingError(f"--resume: the {sec} section of the config differs from the one in {path}; "
                                "resume with the same model, or start a new exp dir")
    recorded = state.get("data") or {}
    for which, option in (("train", "--train_dir"), ("valid", "--valid_dir")):
        _check_data(recorded.get(which), data[which], option, path)
    old_t, new_t = old.get("train") or {}, cfg.get("train") or {}
    mid_epoch = int(state.get("step", 0)) > 0
    for key, what in (("batch_size", "repeat or skip data"),
                      ("seed", "draw the rest of the epoch in another order, repeating some utterances and "
                               "skipping others")):
        was, now = old_t.get(key), new_t.get(key)
        if was is None or was == now:
            continue
        if mid_epoch:
            raise TrainingError(
                f"--resume mid-epoch (epoch {state.get('epoch')}, step {state.get('step')}) with train.{key} {now} "
                f"instead of the checkpoint's {was} would {what}; resume with train.{key} {was} (the new value "
                "may take over at an epoch boundary), or train into a new --exp_dir")
        log.warning("--resume: train.%s changed from %s to %s: epochs from %s on use the new value", key, was,
                    now, state.get("epoch"))
    for sec in ("train", "optim", "scheduler", "loss"):
        if old.get(sec) != cfg.get(sec):
            log.warning("--resume: config section %s differs from the checkpoint's; using the new one", sec)


def write_failure(e: OSError | Exception, exp_dir: Path, last: Path, position: tuple,
                  saved: tuple | None) -> TrainingError:
    """The one-line error of a write that failed at ``position`` (epoch, step): the file and reason
    (``e``: a CheckpointWriteError, or an OSError of :data:`DISK_ERRNOS`), and ``last`` with the
    position ``saved`` it holds (None: no state saved, start again)."""
    if isinstance(e, OSError):
        what = f"{e.filename or f'a file in {exp_dir}'}: cannot write ({e.strerror or e})"
    else:
        what = str(e)
    if saved is None:
        kept = f"no training state was saved yet ({last} does not exist): free space and train again"
    else:
        kept = (f"the last good state, {last} (epoch {saved[0]}, step {saved[1]}), is kept: free space and "
                "continue with --resume")
    return TrainingError(f"{what} at epoch {position[0]} step {position[1]}; {kept}")


__all__ = ["DISK_ERRNOS", "check_resume", "data_fingerprint", "write_failure"]
