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
import math
import platform
import warnings
from pathlib import Path

import numpy as np
import yaml

from csmvanet.config import yaml_problem
from csmvanet.errors import ModelFileError, last_line
from csmvanet.experiment import CHECKPOINT_ORDER, CONFIG_FILE
from csmvanet.fileio import atomic_path
from csmvanet.version import __version__, git_hash

PACK_FORMAT = "csmvanet-packed-model"
PACK_VERSION = 1
INFERENCE_FILE = "inference.yaml"   # exp dir: inference settings chosen on validation (csmvanet-tune-inference)
# (vad_floor and vad_threshold required; input_mix, snr_limit, segment_seconds and overlap_seconds optional)
INFERENCE_KEYS = ("vad_floor", "vad_threshold")
SNR_LIMIT_RANGE = (-100.0, 100.0)   # dB: the per-segment SNR limit (csmvanet.enhance.snr_limit_mix)


def snr_limit_value(value) -> float | None:
    """The per-segment SNR limit ``value`` checked: None or ``inf`` (no limit) -> None; a number of dB
    within :data:`SNR_LIMIT_RANGE` -> float; ValueError otherwise (booleans too)."""
    if value is None:
        return None
    try:
        v = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        v = math.nan
    if v == math.inf:
        return None
    lo, hi = SNR_LIMIT_RANGE
    if not lo <= v <= hi:
        raise ValueError(f"snr_limit must be None or a number of dB from {lo:g} to {hi:g}, got {value!r}")
    return v

# Models shipped inside the package (csmvanet/pretrained/, package data): name -> file, sha256 of the
# file's bytes (checked on every load), what it is. The first is the default of csmvanet-enhance and
# Enhancer.from_pretrained(). Model cards: csmvanet/pretrained/README.md.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
BUNDLED_MODELS = {
    "voiceprompts_small": {
        "file": "voiceprompts_small.pth",
        "sha256": "ebe11dbbdb64fc94ad9599ab7019ae79d8e854eef921685c94ffb00bf87f64d9",
        "description": "small CSM-VANet (0.1 M parameters) trained on 2 CPU cores by egs/voiceprompts on real "
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


def bundled_model(name: str | None = None) -> Path:
    """The file of a model shipped with the package (default: the first of BUNDLED_MODELS), its
    sha256 checked."""
    if not BUNDLED_MODELS:
        raise ModelFileError("this csmvanet ships no pretrained model: give a model (--model)")
    name = name or next(iter(BUNDLED_MODELS))
    if name not in BUNDLED_MODELS:
        raise ModelFileError(f"{name}: no such bundled model (bundled: {', '.join(BUNDLED_MODELS)})")
    entry = BUNDLED_MODELS[name]
    path = PRETRAINED_DIR / entry["file"]
    if not path.is_file():
        raise ModelFileError(f"{path}: bundled model {name} is missing from this installation "
                             "(package data not installed?)")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != entry["sha256"]:
        raise ModelFileError(f"{path}: sha256 {actual[:12]}... is not the {entry['sha256'][:12]}... of "
                             f"bundled model {name}: the file is corrupt or was replaced")
    return path


def list_bundled_models() -> str:
    """One line per bundled model: name, file, size, what it is (the first is the default)."""
    if not BUNDLED_MODELS:
        return "no bundled models"
    lines = []
    for i, (name, entry) in enumerate(BUNDLED_MODELS.items()):
        path = PRETRAINED_DIR / entry["file"]
        size = f"{path.stat().st_size / 1e6:.2f} MB" if path.is_file() else "MISSING"
        lines.append(f"{name}{' (default)' if i == 0 else ''}: {path} ({size}); {entry['description']}")
    return "\n".join(lines)


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
    data = _parse_config(path.read_text(), path)
    # required and optional keys: (name, upper bound, what it must be)
    checks = [(k, 1.0, "a number from 0 to 1") for k in INFERENCE_KEYS]
    checks += [(k, 1.0, "a number from 0 to 1") for k in ("input_mix",) if k in data]
    checks += [(k, 3600.0, "a number of seconds") for k in ("segment_seconds", "overlap_seconds")
               if data.get(k) is not None]
    for k, top, what in checks:
        v = data.get(k)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= float(v) <= top:
            raise ModelFileError(f"{path}: {k} must be {what}, got {v!r}")
    seg, ov = data.get("segment_seconds"), data.get("overlap_seconds")
    if seg is not None and seg <= 0:
        raise ModelFileError(f"{path}: segment_seconds must be a positive number of seconds, got {seg!r}")
    if seg is not None and ov is not None and 2 * ov > seg:
        raise ModelFileError(f"{path}: overlap_seconds must be at most half of segment_seconds ({seg!r}), "
                             f"got {ov!r}")
    try:                        # dB, or null: no limit
        snr_limit_value(data.get("snr_limit"))
    except ValueError:
        lo, hi = SNR_LIMIT_RANGE
        raise ModelFileError(f"{path}: snr_limit must be a number of dB from {lo:g} to {hi:g} or null, "
                             f"got {data.get('snr_limit')!r}") from None
    if data.get("checkpoint") not in (None, checkpoint):
        warnings.warn(f"{path} was chosen for {data['checkpoint']}, not {checkpoint}: not used "
                      "(the config's vad_floor and threshold 0.5 apply)", stacklevel=3)
        return None
    return {k: data[k] for k in data if not isinstance(data[k], (dict, list))}


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


def _training_seconds(log: Path) -> float | None:
    """Seconds from the first to the last time stamp of a train.log (None without one)."""
    if not log.is_file():
        return None
    stamps = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            stamps.append(datetime.datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
    return (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else None


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
    _with_inference(meta, exp_dir, ckpt.name)     # vad_floor / vad_threshold chosen on validation
    scores = _scored_sets(exp_dir)
    if scores:
        meta["scores"] = scores
    seconds = _training_seconds(exp_dir / "train.log")
    if seconds is not None:
        meta["training_wall_seconds"] = seconds
    meta.update(extra_metadata or {})
    packed = {"format": PACK_FORMAT, "format_version": PACK_VERSION, "config": config_text,
              "state_dict": state, "sha256": weights_digest(state, config_text), "metadata": _plain(meta)}
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        torch.save(packed, str(tmp))
    return meta


__all__ = ["BUNDLED_MODELS", "CHECKPOINT_ORDER", "INFERENCE_FILE", "ModelFileError", "PACK_FORMAT",
           "PACK_VERSION", "bundled_model", "find_checkpoint", "load_model_files", "model_with_weights",
           "SNR_LIMIT_RANGE", "pack_model", "read_inference_settings", "resolve_model", "snr_limit_value",
           "weights_digest"]
