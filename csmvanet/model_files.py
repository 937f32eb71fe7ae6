"""Model files: experiment dirs and packed models (finding weights, loading, packing, checksums).

``load_model_files(path)`` reads a packed model file (:func:`pack_model`), an experiment dir
(``config.yaml`` + weights, the first present of :data:`CHECKPOINT_ORDER`), or a weights file
inside an experiment dir (``exp/x/valid.loss.best.pth``: the ``config.yaml`` beside it is used).
A packed model is one ``torch.save`` file of plain types and tensors (loads with
``weights_only=True``) holding the config text, the weights, provenance metadata and a sha256 over
both, verified on load.
"""
from __future__ import annotations

import datetime
import hashlib
import platform
import warnings
from pathlib import Path

import numpy as np
import yaml

from csmvanet.errors import ModelFileError, last_line
from csmvanet.experiment import CHECKPOINT_ORDER, CONFIG_FILE
from csmvanet.fileio import atomic_path
from csmvanet.version import __version__, git_hash

PACK_FORMAT = "csmvanet-packed-model"
PACK_VERSION = 1


def find_checkpoint(exp_dir: Path, checkpoint: str | None = None) -> Path:
    """The weights file of an experiment dir: ``checkpoint`` if given, else the first of CHECKPOINT_ORDER."""
    if checkpoint:
        p = Path(checkpoint)
        p = p if p.is_absolute() or p.parent != Path(".") else exp_dir / p
        if not p.is_file():
            raise ModelFileError(f"{p}: no such checkpoint")
        return p
    for i, pattern in enumerate(CHECKPOINT_ORDER):
        hits = sorted(exp_dir.glob(pattern))
        if hits:
            if i > 0:
                warnings.warn(f"{exp_dir}: no {CHECKPOINT_ORDER[0]}; using {hits[0].name}", stacklevel=3)
            return hits[0]
    raise ModelFileError(f"{exp_dir}: no model weights (looked for {', '.join(CHECKPOINT_ORDER)})")


def _load_file(path: Path) -> dict:
    """Load a torch file (weights_only=True, CRC-checked) through csmvanet.checkpoint."""
    from csmvanet.checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path)
    except CheckpointError as e:
        raise ModelFileError(str(e)) from None


def _weights_of(obj: dict, path: Path) -> dict:
    """A plain state_dict, or the 'model' entry of a training checkpoint."""
    from csmvanet.checkpoint import CheckpointError, model_state

    try:
        return model_state(obj, path)
    except CheckpointError as e:
        raise ModelFileError(str(e)) from None


def load_model_files(path: str | Path, checkpoint: str | None = None) -> tuple[dict, dict, dict]:
    """(config, state_dict, metadata) of a packed model file, an experiment dir or a weights file."""
    path = Path(path)
    if path.is_dir():
        cfg_path = path / CONFIG_FILE
        if not cfg_path.is_file():
            raise ModelFileError(f"{path}: not an experiment dir (no config.yaml)")
        ckpt = find_checkpoint(path, checkpoint)
        config_text = cfg_path.read_text()
        state = _weights_of(_load_file(ckpt), ckpt)
        return _parse_config(config_text, cfg_path), state, {"exp_dir": str(path), "checkpoint": ckpt.name}
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file or experiment dir")
    obj = _load_file(path)
    if obj.get("format") == PACK_FORMAT:
        return _unpack(obj, path)
    cfg_path = path.parent / CONFIG_FILE
    if cfg_path.is_file():     # a weights file inside an experiment dir
        state = _weights_of(obj, path)
        return (_parse_config(cfg_path.read_text(), cfg_path), state,
                {"exp_dir": str(path.parent), "checkpoint": path.name})
    raise ModelFileError(f"{path}: neither a packed csmvanet model nor weights beside a config.yaml")


def _parse_config(text: str, where) -> dict:
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ModelFileError(f"{where}: config is not valid YAML ({last_line(e)})") from None
    if not isinstance(cfg, dict):
        raise ModelFileError(f"{where}: config is not a mapping")
    return cfg


def _match_state(model, state: dict) -> tuple[list, list]:
    """(missing or mis-shaped names, unexpected names) of ``state`` for ``model``."""
    own = model.state_dict()
    bad = [k for k in own if k not in state or tuple(state[k].shape) != tuple(own[k].shape)]
    return sorted(bad), sorted(set(state) - set(own))


def model_with_weights(cfg: dict, state: dict, where: str):
    """The model of ``cfg`` holding ``state``; ModelFileError naming ``where`` if they do not fit."""
    from csmvanet.nets import build_model

    try:
        model = build_model(cfg)
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{where}: cannot build the model from its config ({e})") from None
    missing, unexpected = _match_state(model, state)
    if missing or unexpected:
        raise ModelFileError(f"{where}: weights do not fit the config: missing or of another shape "
                             f"{_few(missing)}; unexpected {_few(unexpected)}")
    model.load_state_dict(state)
    return model


def _few(names: list, n: int = 3) -> str:
    if not names:
        return "none"
    return ", ".join(names[:n]) + (f" (+{len(names) - n} more)" if len(names) > n else "")


def weights_digest(state: dict, config_text: str) -> str:
    """sha256 over the weights (sorted by name: name, dtype, shape, raw bytes) and the config text."""
    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(name.encode() + b"\0" + str(t.dtype).encode() + b"\0" + repr(tuple(t.shape)).encode() + b"\0")
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    h.update(config_text.encode())
    return h.hexdigest()


def _unpack(obj: dict, path: Path) -> tuple[dict, dict, dict]:
    version = obj.get("format_version")
    if version != PACK_VERSION:
        raise ModelFileError(f"{path}: packed model format version {version!r}; this csmvanet reads "
                             f"version {PACK_VERSION}")
    state, config_text, digest = obj.get("state_dict"), obj.get("config"), obj.get("sha256")
    if not isinstance(state, dict) or not isinstance(config_text, str) or not isinstance(digest, str):
        raise ModelFileError(f"{path}: packed model lacks state_dict, config or sha256")
    actual = weights_digest(state, config_text)
    if actual != digest:
        raise ModelFileError(f"{path}: checksum mismatch (stored sha256 {digest[:12]}..., computed "
                             f"{actual[:12]}...): the file is corrupt or was modified")
    return _parse_config(config_text, path), state, dict(obj.get("metadata") or {})


def _training_data(exp_dir: Path, cfg: dict) -> dict:
    """Training/validation data dirs as far as the experiment dir records them."""
    found: dict = {}
    for section in (cfg, cfg.get("data") if isinstance(cfg.get("data"), dict) else {}):
        for k, v in section.items():
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

        {"format": "csmvanet-packed-model", "format_version": 1,
         "config": <config.yaml text>, "state_dict": {name: tensor},
         "sha256": weights_digest(state_dict, config),
         "metadata": {sample_rate, num_parameters, csmvanet/torch/numpy/python versions, git_hash,
                      git_dirty, created (UTC ISO), exp_dir, checkpoint, training_data, ...}}
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
    meta.update(extra_metadata or {})
    packed = {"format": PACK_FORMAT, "format_version": PACK_VERSION, "config": config_text,
              "state_dict": state, "sha256": weights_digest(state, config_text), "metadata": _plain(meta)}
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        torch.save(packed, str(tmp))
    return meta


__all__ = ["CHECKPOINT_ORDER", "ModelFileError", "PACK_FORMAT", "PACK_VERSION", "find_checkpoint",
           "load_model_files", "model_with_weights", "pack_model", "weights_digest"]
