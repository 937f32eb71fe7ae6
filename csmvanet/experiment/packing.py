"""Packing a trained model into one file (csmvanet-pack): config, weights, provenance metadata and
a sha256 over the three, read back by :func:`csmvanet.experiment.model_files.load_model_files`.

The metadata say where the weights come from (experiment dir, checkpoint, training data, git hash,
versions), how well they do (the scored sets of the experiment dir), how long they trained (the train
and valid seconds of history.json) and the inference settings chosen for them (inference.yaml). So
that they describe the weights packed, the weights must be a file of the experiment dir, and the
packed file must not replace one of the experiment's own files.
"""
from __future__ import annotations

import datetime
import fnmatch
import math
import platform
from pathlib import Path

import numpy as np
import yaml

from csmvanet.base.atomic_files import atomic_path
from csmvanet.base.errors import ModelFileError
from csmvanet.base.version import __version__, git_hash
from csmvanet.experiment.inference_settings import INFERENCE_FILE
from csmvanet.experiment.model_files import (PACK_FORMAT, PACK_VERSION, _load_file, _parse_config, _weights_of, _with_inference,
                                             find_checkpoint, model_with_weights, weights_digest)
from csmvanet.experiment.resolved_config import CHECKPOINT_ORDER, CONFIG_FILE


def _training_data(exp_dir: Path, cfg: dict) -> dict:
    """Training/validation data dirs as far as the experiment dir records them."""
    found: dict = {}
    for k, v in cfg.items():
        if isinstance(v, (str, int, float)) and ("train" in k or "valid" in k) and ("dir" in k or "scp" in k):
            found[k] = str(v)
    run_sh = exp_dir / "run.sh"
    if run_sh.is_file():
        toks = run_sh.read_text().replace("\\\n", " ").split()
        for i, tok in enumerate(toks[:-1]):
            if tok == "cd":
                found.setdefault("cwd", toks[i + 1].strip("'\""))
            elif tok in ("--train_dir", "--valid_dir"):
                found.setdefault(tok[2:], toks[i + 1].strip("'\""))
            elif tok.startswith(("--train_dir=", "--valid_dir=")):
                k, v = tok[2:].split("=", 1)
                found.setdefault(k, v.strip("'\""))
    return found


SCORE_KEYS = ("pesq", "stoi", "csig", "cbak", "covl", "si_sdr", "vad_f1", "num_utts")


def _scored_sets(exp_dir: Path) -> dict:
    """{set: {noisy|enhanced: {metric: mean}}} of the scored sets of an experiment dir
    (``enhanced_<set>/scoring/summary.yaml``, written by csmvanet-score)."""
    out = {}
    for summary in sorted(exp_dir.glob("enhanced_*/scoring/summary.yaml")):
        try:
            means = (yaml.safe_load(summary.read_text()) or {}).get("means") or {}
        except yaml.YAMLError:
            continue
        name = summary.parent.parent.name[len("enhanced_"):]
        out[name] = {system: {k: m[k] for k in SCORE_KEYS if isinstance(m, dict) and m.get(k) is not None}
                     for system, m in means.items()}
    return out


def _training_seconds(exp_dir: Path) -> float | None:
    """Seconds spent training and validating, summed over the epochs of history.json (train.seconds +
    valid.seconds; a resumed epoch counts the steps it kept): time between runs (idle, waiting in a
    queue, killed and resumed later) is not training time. None without them."""
    from csmvanet.experiment.checkpoint import CheckpointError, read_history

    try:
        history = read_history(exp_dir)
    except CheckpointError:
        return None
    parts = [h.get(k) for h in history if isinstance(h, dict) for k in ("train.seconds", "valid.seconds")]
    parts = [float(v) for v in parts if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return round(sum(parts), 1) if parts else None


#: the names of an experiment dir's own files (weights, state, config, settings): never a packed model's --out
_EXP_FILES = (*CHECKPOINT_ORDER, "*.ave.pth", "*.best.pth", "epoch*.pth", CONFIG_FILE, INFERENCE_FILE,
              "history.json", "*.best.txt", "train.log", "run.sh")


def _check_pack_paths(exp_dir: Path, ckpt: Path, out_path: Path) -> None:
    """Refuse weights from outside ``exp_dir`` (its config, scores and data would label them) and an
    ``out_path`` that would overwrite one of the experiment's own files."""
    home = exp_dir.resolve()
    if home not in ckpt.resolve().parents:
        raise ModelFileError(f"{ckpt}: not a weights file of the experiment dir {exp_dir}: packed with it, it would "
                             "carry that experiment's config, scores and training data; pack it from its own "
                             f"experiment dir (--exp_dir {ckpt.parent}, --checkpoint {ckpt.name})")
    out = out_path.resolve()
    if home not in out.parents:
        return
    if out == ckpt.resolve() or (out.parent == home and any(fnmatch.fnmatch(out.name, pat) for pat in _EXP_FILES)):
        what = "is one of the experiment dir's own files (weights, training state, config, logs)"
    elif out.is_file() and not _is_packed(out):
        what = "would overwrite a file of the experiment dir that is not a packed model"
    else:
        return
    raise ModelFileError(f"{out_path}: {what}: write the packed model elsewhere (e.g. "
                         f"{exp_dir / 'packed' / 'model.pth'})")


def _is_packed(path: Path) -> bool:
    try:
        return _load_file(path).get("format") == PACK_FORMAT
    except ModelFileError:
        return False


def _plain(obj):
    """Builtin str/int/float/bool/None, lists and dicts only (what weights_only=True loads without
    allow-listing; str subclasses such as torch's version string are turned into str)."""
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if isinstance(obj, (list, tuple)):
        return [_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    return str(obj)


def pack_model(exp_dir: str | Path, out_path: str | Path, checkpoint: str | None = None,
               extra_metadata: dict | None = None) -> dict:
    """Write one file holding config, weights, metadata and a sha256; returns the metadata.

    The file is ``torch.save`` of a dict of tensors and plain Python types (loads with
    ``weights_only=True``)::

        {"format": "csmvanet-packed-model", "format_version": 2,
         "config": <config.yaml text>, "state_dict": {name: tensor},
         "sha256": weights_digest(state_dict, config, metadata),
         "metadata": {sample_rate, num_parameters, csmvanet/torch/numpy/python versions, git_hash,
                      git_dirty, created (UTC ISO), exp_dir, checkpoint, training_data, inference,
                      scores, training_wall_seconds (train + valid seconds of history.json), ...}}

    ``checkpoint`` must be a file of ``exp_dir`` (ModelFileError otherwise: the metadata would describe
    another experiment's weights), and ``out_path`` none of its own files (weights, state, config).
    """
    import torch

    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise ModelFileError(f"{exp_dir}: no such experiment dir")
    cfg_path = exp_dir / CONFIG_FILE
    if not cfg_path.is_file():
        raise ModelFileError(f"{exp_dir}: not an experiment dir (no config.yaml)")
    config_text = cfg_path.read_text()
    cfg = _parse_config(config_text, cfg_path)
    ckpt = find_checkpoint(exp_dir, checkpoint)
    out_path = Path(out_path)
    _check_pack_paths(exp_dir, ckpt, out_path)
    raw = _load_file(ckpt)
    state = {k: v.detach().to("cpu").contiguous() for k, v in _weights_of(raw, ckpt).items()}
    model = model_with_weights(cfg, state, f"{ckpt} (config {cfg_path})")
    meta = {
        "sample_rate": int(model.stft_cfg.sample_rate),
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "csmvanet_version": __version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "git_hash": git_hash(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "exp_dir": str(exp_dir.resolve()),
        "checkpoint": ckpt.name,
        "training_data": _training_data(exp_dir, cfg),
    }
    info = {k: v for k, v in raw.items()       # what a wrapped checkpoint says about itself
            if isinstance(v, (str, int, float, bool)) and not isinstance(v, torch.Tensor)}
    if info:
        meta["checkpoint_info"] = _plain(info)
    _with_inference(meta, exp_dir, ckpt.name)     # vad_floor / vad_threshold chosen on validation
    scores = _scored_sets(exp_dir)
    if scores:
        meta["scores"] = scores
    seconds = _training_seconds(exp_dir)
    if seconds is not None:
        meta["training_wall_seconds"] = seconds
    meta.update(extra_metadata or {})
    meta = _plain(meta)
    packed = {"format": PACK_FORMAT, "format_version": PACK_VERSION, "config": config_text,
              "state_dict": state, "sha256": weights_digest(state, config_text, meta), "metadata": meta}
    with atomic_path(out_path) as tmp:
        torch.save(packed, str(tmp))
    return meta


__all__ = ["SCORE_KEYS", "pack_model"]
