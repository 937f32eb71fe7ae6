"""Model files: experiment dirs and packed models (finding weights, loading, checksums).

``load_model_files(path)`` reads a packed model file (:func:`csmvanet.experiment.packing.pack_model`), an experiment dir
(``config.yaml`` + weights, the first present of :data:`CHECKPOINT_ORDER`), or a weights file
inside an experiment dir (``exp/x/valid.loss.best.pth``: the ``config.yaml`` beside it is used).
A packed model is one ``torch.save`` file of plain types and tensors (loads with
``weights_only=True``) holding the config text, the weights, provenance metadata and a sha256 over
the three (format version 2; version 1 files: over weights and config), verified on load; the
inference settings it carries are checked on load too (:mod:`csmvanet.experiment.inference_settings`).
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import yaml

from csmvanet.base.config import yaml_problem
from csmvanet.base.errors import ModelFileError, last_line
from csmvanet.experiment.inference_settings import INFERENCE_FILE, check_stored
from csmvanet.experiment.resolved_config import CHECKPOINT_ORDER, CONFIG_FILE

PACK_FORMAT = "csmvanet-packed-model"
# 2: the sha256 covers the metadata too (the inference settings the model decodes with); files of
# version 1 (sha256 over weights and config only) are still read, their settings checked all the same
PACK_VERSION = 2
READ_VERSIONS = (1, 2)

# Models shipped inside the package (csmvanet/pretrained/, package data): name -> file, sha256 of the
# file's bytes (checked on every load), what it is. The first is the default of csmvanet-enhance and
# Enhancer.from_pretrained(). Model cards: csmvanet/pretrained/README.md.
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"   # csmvanet/pretrained
BUNDLED_MODELS = {
    "voiceprompts_small": {
        "file": "voiceprompts_small.pth",
        "sha256": "ebe11dbbdb64fc94ad9599ab7019ae79d8e854eef921685c94ffb00bf87f64d9",
        "description": "small CSM-VANet (0.1 M parameters) trained on one CPU thread by egs/voiceprompts on real "
                       "speech and noise from Debian packages; not the paper's 8.8 M model",
    },
}


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
    """Load a torch file (weights_only=True, CRC-checked) through csmvanet.experiment.checkpoint."""
    from csmvanet.experiment.checkpoint import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path)
    except CheckpointError as e:
        raise ModelFileError(str(e)) from None


def _weights_of(obj: dict, path: Path) -> dict:
    """A plain state_dict, or the 'model' entry of a training checkpoint."""
    from csmvanet.experiment.checkpoint import CheckpointError, model_state

    try:
        return model_state(obj, path)
    except CheckpointError as e:
        raise ModelFileError(str(e)) from None


def bundled_model(name: str | None = None) -> Path:
    """The file of a model shipped with the package (default: the first of BUNDLED_MODELS), its
    sha256 checked."""
    if not BUNDLED_MODELS:
        raise ModelFileError("this csmvanet ships no pretrained model: give a model (--model)")
    name = name or next(iter(BUNDLED_MODELS))
    if name not in BUNDLED_MODELS:
        raise ModelFileError(f"{name}: no such bundled model (bundled: {', '.join(BUNDLED_MODELS)})")
    problem = bundled_model_problem(name)
    if problem:
        raise ModelFileError(problem)
    return PRETRAINED_DIR / BUNDLED_MODELS[name]["file"]


def bundled_model_problem(name: str) -> str | None:
    """Why bundled model ``name`` cannot be used (its file missing, or not the sha256 recorded for it),
    naming the file; None when it can."""
    entry = BUNDLED_MODELS[name]
    path = PRETRAINED_DIR / entry["file"]
    if not path.is_file():
        return f"{path}: bundled model {name} is missing from this installation (package data not installed?)"
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != entry["sha256"]:
        return (f"{path}: sha256 {actual[:12]}... is not the {entry['sha256'][:12]}... of bundled model {name}: "
                "the file is corrupt or was replaced")
    return None


def list_bundled_models() -> tuple[str, bool]:
    """(one line per bundled model: name, file, size, what it is, the first being the default; a
    model whose file is missing or corrupt is marked so with the reason, True when none is)."""
    if not BUNDLED_MODELS:
        return "no bundled models", True
    lines, ok = [], True
    for i, (name, entry) in enumerate(BUNDLED_MODELS.items()):
        path = PRETRAINED_DIR / entry["file"]
        problem = bundled_model_problem(name)
        ok = ok and problem is None
        size = f"{path.stat().st_size / 1e6:.2f} MB" if path.is_file() else "MISSING"
        state = f"; UNUSABLE: {problem.split(': ', 1)[1]}" if problem else ""
        lines.append(f"{name}{' (default)' if i == 0 else ''}: {path} ({size}); {entry['description']}{state}")
    return "\n".join(lines), ok


def resolve_model(path: str | Path | None) -> Path:
    """A model argument as a path: None is the default bundled model; a bundled model's name (when no
    file or folder of that name exists) is that model."""
    if path is None:
        return bundled_model()
    p = Path(path)
    if not p.exists() and str(path) in BUNDLED_MODELS:
        return bundled_model(str(path))
    return p


def read_inference_settings(exp_dir: Path, checkpoint: str) -> dict | None:
    """The settings of ``exp_dir/inference.yaml`` (vad_floor, vad_threshold, chosen on validation) when
    they were chosen for ``checkpoint``; None (with a warning naming both) when for another one."""
    path = Path(exp_dir) / INFERENCE_FILE
    if not path.is_file():
        return None
    data = check_stored(_parse_config(path.read_text(), path), str(path))
    if data.get("checkpoint") not in (None, checkpoint):
        warnings.warn(f"{path} was chosen for {data['checkpoint']}, not {checkpoint}: not used "
                      "(the config's vad_floor and threshold 0.5 apply)", stacklevel=3)
        return None
    return data


def load_model_files(path: str | Path | None, checkpoint: str | None = None) -> tuple[dict, dict, dict]:
    """(config, state_dict, metadata) of a packed model file, an experiment dir or a weights file
    (None or a bundled model's name: that bundled model). An experiment dir's inference.yaml is
    metadata["inference"]."""
    path = resolve_model(path)
    if path.is_dir():
        cfg_path = path / CONFIG_FILE
        if not cfg_path.is_file():
            raise ModelFileError(f"{path}: not an experiment dir (no config.yaml)")
        ckpt = find_checkpoint(path, checkpoint)
        config_text = cfg_path.read_text()
        state = _weights_of(_load_file(ckpt), ckpt)
        meta = {"exp_dir": str(path), "checkpoint": ckpt.name}
        return _parse_config(config_text, cfg_path), state, _with_inference(meta, path, ckpt.name)
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file or experiment dir")
    obj = _load_file(path)
    if obj.get("format") == PACK_FORMAT:
        return _unpack(obj, path)
    cfg_path = path.parent / CONFIG_FILE
    if cfg_path.is_file():     # a weights file inside an experiment dir
        state = _weights_of(obj, path)
        meta = {"exp_dir": str(path.parent), "checkpoint": path.name}
        return _parse_config(cfg_path.read_text(), cfg_path), state, _with_inference(meta, path.parent, path.name)
    raise ModelFileError(f"{path}: neither a packed csmvanet model nor weights beside a config.yaml")


def _with_inference(meta: dict, exp_dir: Path, checkpoint: str) -> dict:
    chosen = read_inference_settings(exp_dir, checkpoint)
    if chosen:
        meta["inference"] = chosen
    return meta


def _parse_config(text: str, where) -> dict:
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ModelFileError(yaml_problem(where, e, text)) from None
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


def weights_digest(state: dict, config_text: str, metadata: dict | None = None) -> str:
    """sha256 over the weights (sorted by name: name, dtype, shape, raw bytes) and the config text,
    and with ``metadata`` (format version 2) its canonical JSON (sorted keys, no spaces) after them.
    TypeError if the metadata holds anything but plain types."""
    import json

    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(name.encode() + b"\0" + str(t.dtype).encode() + b"\0" + repr(tuple(t.shape)).encode() + b"\0")
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    h.update(config_text.encode())
    if metadata is not None:
        h.update(b"\0" + json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


def _unpack(obj: dict, path: Path) -> tuple[dict, dict, dict]:
    version = obj.get("format_version")
    if version not in READ_VERSIONS:
        raise ModelFileError(f"{path}: packed model format version {version!r}; this csmvanet reads "
                             f"version {' and '.join(map(str, READ_VERSIONS))}")
    state, config_text, digest = obj.get("state_dict"), obj.get("config"), obj.get("sha256")
    if not isinstance(state, dict) or not isinstance(config_text, str) or not isinstance(digest, str):
        raise ModelFileError(f"{path}: packed model lacks state_dict, config or sha256")
    meta = obj.get("metadata") if obj.get("metadata") is not None else {}
    if not isinstance(meta, dict):
        raise ModelFileError(f"{path}: packed model metadata must be a mapping, got {type(meta).__name__}")
    try:
        actual = weights_digest(state, config_text, meta if version >= 2 else None)
    except (TypeError, AttributeError):
        raise ModelFileError(f"{path}: packed model holds values other than tensors and plain data: the file is "
                             "corrupt or was modified") from None
    if actual != digest:
        raise ModelFileError(f"{path}: checksum mismatch (stored sha256 {digest[:12]}..., computed "
                             f"{actual[:12]}...): the file is corrupt or was modified")
    if "inference" in meta:     # what the enhancer decodes with: checked also where no checksum covers it (v1)
        meta = {**meta, "inference": check_stored(meta["inference"], f"{path}: metadata inference")}
    return _parse_config(config_text, path), state, dict(meta)


__all__ = ["BUNDLED_MODELS", "PACK_FORMAT", "PACK_VERSION", "READ_VERSIONS", "bundled_model", "bundled_model_problem",
           "find_checkpoint", "list_bundled_models", "load_model_files", "model_with_weights", "read_inference_settings",
           "resolve_model", "weights_digest"]
