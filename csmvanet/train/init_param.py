"""Start a training from trained weights (fine-tuning): ``train.init_param``, ESPnet's ``--init_param``.

A spec is ``path[:src_key[:dst_key[:exclude_keys]]]``, several separated by spaces (applied in order):

- ``path``: a packed model (csmvanet-pack), an experiment dir (its decoding weights, as
  csmvanet-enhance picks them), a weights file (``exp/x/valid.loss.ave.pth``, ``checkpoint_last.pth``:
  its ``model`` entry) or a bundled model's name (``voiceprompts_small``).
- ``src_key``: take only the parameters under this module prefix (``encoder``; empty: all).
- ``dst_key``: put them under this prefix of the new model (empty: the same names as in the source,
  minus ``src_key`` when one is given -- ESPnet's rule).
- ``exclude_keys``: comma-separated prefixes (of the source names) left out.

Every taken parameter must exist in the new model with the same shape (else an error naming it);
parameters of the model that the source does not cover keep their random initialisation and are
counted in the log line. Only the weights are taken: the optimizer, scheduler and epoch count start
afresh (a resumed run, ``--resume``, restores its own state instead and ignores this).
Files load with ``weights_only=True``.
"""
from __future__ import annotations

import logging
from pathlib import Path

from csmvanet.base.errors import ModelFileError, TrainingError
from csmvanet.experiment.checkpoint import CheckpointError, load_model_state
from csmvanet.experiment.model_files import load_model_files

log = logging.getLogger(__name__)


def parse_init_param(spec: str) -> list[tuple[str, str, str, list[str]]]:
    """``[(path, src_key, dst_key, exclude prefixes)]`` of a spec; TrainingError when malformed."""
    out = []
    for item in str(spec).split():
        parts = item.split(":")
        if len(parts) > 4:
            raise TrainingError(f"train.init_param {item!r}: expected path[:src_key[:dst_key[:exclude_keys]]] "
                                "(a path with ':' in it is not supported)")
        path, src, dst, excl = (parts + ["", "", ""])[:4]
        if not path:
            raise TrainingError(f"train.init_param {item!r}: the path is empty")
        out.append((path, src, dst, [e for e in excl.split(",") if e]))
    return out


def _under(name: str, prefix: str) -> bool:
    return not prefix or name == prefix or name.startswith(prefix + ".")


def source_state(path: str) -> dict:
    """The weights of a packed model, an experiment dir, a weights file or a bundled model."""
    p = Path(path)
    try:
        if p.is_file() and not (p.parent / "config.yaml").is_file():
            try:
                return load_model_state(p)
            except CheckpointError:
                pass  # perhaps a packed model: load_model_files says what is wrong
        return load_model_files(path)[1]
    except (ModelFileError, CheckpointError) as e:
        raise TrainingError(f"train.init_param: {e}") from None


def init_params(model, spec: str | None):
    """``model`` with the weights named by ``spec`` copied in (see the module docstring); returned."""
    if not spec:
        return model
    own = model.state_dict()
    for path, src, dst, exclude in parse_init_param(spec):
        state = source_state(path)
        taken = {}
        for name, tensor in state.items():
            if not _under(name, src) or any(_under(name, e) for e in exclude):
                continue
            rest = name[len(src):].lstrip(".") if src else name
            new = f"{dst}.{rest}" if dst and rest else (dst or rest)
            if new not in own:
                raise TrainingError(f"train.init_param {path}: {name} has no place in this model ({new} is not "
                                    "one of its parameters; use src_key/dst_key/exclude_keys)")
            if tuple(tensor.shape) != tuple(own[new].shape):
                raise TrainingError(f"train.init_param {path}: {name} has shape {tuple(tensor.shape)}, the "
                                    f"model's {new} {tuple(own[new].shape)} (another model size?)")
            taken[new] = tensor
        if not taken:
            raise TrainingError(f"train.init_param {path}: no parameter{' under ' + src if src else ''} to take")
        own.update({k: v.to(own[k].dtype) for k, v in taken.items()})
        log.info("train.init_param: %d of %d parameters from %s%s", len(taken), len(own), path,
                 f" ({src or '<all>'} -> {dst or '<same>'})" if src or dst else "")
    model.load_state_dict(own)
    return model


__all__ = ["parse_init_param", "source_state", "init_params"]
