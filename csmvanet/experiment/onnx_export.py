"""ONNX export of a trained CSM-VANet's network (input conv to output conv, VAD head included).

The graph maps the network input ``feats`` [B, 3, T, F] (compressed magnitude, real, imaginary part,
fp32) to ``ri`` [B, 2, T, F] (stage-1 compressed real/imaginary spectrum) and, for models with a VAD
decoder, ``vad_logits`` [B, T]. Batch and time axes are dynamic; F is the model's frequency bins.
Level normalisation, STFT, stage 2 (the VAD gain) and the inverse STFT stay outside, in torch
(:meth:`CSMVANet.analysis` / :meth:`CSMVANet.synthesis`), so an ONNX network and the torch one go
through the very same chunking and signal processing (:mod:`csmvanet.infer.backends`).

A causal model (``model.causal: true``) also exports one streaming step (:func:`export_stream_step`):
one frame ``feats`` [1, 3, 1, F] and the frame counter ``t0`` plus every state tensor of
:meth:`CSMVANet.network` as explicit inputs; ``ri``, ``vad_logits``, the next ``t0`` and the next
state (``next.<name>``) as outputs (:class:`csmvanet.infer.streaming.OnnxStep` runs it).

Written with ``torch.onnx.export(dynamo=False)`` (the TorchScript exporter: it needs the ``onnx``
package but not ``onnxscript``) at opset :data:`OPSET`. ``pip install 'csmvanet[onnx]'`` installs
onnx and onnxruntime.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from csmvanet.base.atomic_files import atomic_path
from csmvanet.base.errors import ModelFileError

OPSET = 17
MIN_OPSET = 14   # the attention (scaled_dot_product_attention) has no ONNX form below 14 (einsum: 12)
MAX_OPSET = 20   # the TorchScript exporter's newest: above it, torch labels opset-20 output with the newer number
INPUT_NAME = "feats"
OUTPUT_NAMES = ("ri", "vad_logits")
EXAMPLE_FRAMES = 101            # the trace's time length (1 s at hop 100); the axis is dynamic


class NetworkGraph(nn.Module):
    """``model.network`` as a module with tensor outputs only (what the exporter traces)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, feats):
        ri, vad_logits = self.model.network(feats)
        return (ri,) if vad_logits is None else (ri, vad_logits)


class StreamStepGraph(nn.Module):
    """One streaming step of a causal ``model.network`` with its state as tensors in ``keys`` order."""

    def __init__(self, model, keys: list[str]):
        super().__init__()
        self.model, self.keys = model, list(keys)

    def forward(self, feats, t0, *states):
        state = dict(zip(self.keys, states))
        state["t0"] = t0
        ri, vad_logits = self.model.network(feats, state)
        return (ri, vad_logits, state["t0"], *[state[k] for k in self.keys])


def stream_state_shapes(model) -> dict[str, tuple]:
    """Name -> shape of every state tensor of a causal model's network over one channel (a step on
    an empty state: the shapes it leaves)."""
    state: dict = {}
    with torch.no_grad():
        model.network(torch.zeros(1, 3, 1, model.bins[0]), state)
    return {k: tuple(v.shape) for k, v in state.items() if k != "t0"}


def export_stream_step(model, out, *, opset: int = OPSET) -> list[str]:
    """Write one streaming step of a causal ``model`` as ONNX to ``out`` (path or binary file);
    returns the state names in input order (inputs ``feats``, ``t0``, then these; outputs ``ri``,
    ``vad_logits`` (if any), ``next.t0``, then ``next.<name>``)."""
    import copy
    import warnings

    check_opset(opset)
    if not getattr(model, "causal", False):
        raise ModelFileError("a streaming step needs a causal model (model.causal: true)")
    model = copy.deepcopy(model).cpu().eval()
    keys = sorted(stream_state_shapes(model))
    shapes = stream_state_shapes(model)
    args = (torch.zeros(1, 3, 1, model.bins[0]), torch.tensor(0, dtype=torch.int64),
            *[torch.zeros(shapes[k]) for k in keys])
    outs = output_names(model) + ["next.t0"] + [f"next.{k}" for k in keys]
    graph = StreamStepGraph(model, keys)
    if model.vad is None:
        raise ModelFileError("a streaming step is exported for models with a VAD decoder")

    def write(f):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, args, f, input_names=[INPUT_NAME, "t0", *keys], output_names=outs,
                              opset_version=opset, do_constant_folding=True, dynamo=False)

    if isinstance(out, (str, Path)):
        with atomic_path(Path(out)) as tmp:
            write(str(tmp))
    else:
        write(out)
    return keys


def output_names(model) -> list[str]:
    return list(OUTPUT_NAMES if model.vad is not None else OUTPUT_NAMES[:1])


def supported_opsets() -> range:
    """The opsets export_onnx writes: MIN_OPSET to MAX_OPSET, or less where this torch's exporter stops earlier."""
    try:
        from torch.onnx import _constants
        top = int(getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", _constants.ONNX_MAX_OPSET))
    except (ImportError, AttributeError, TypeError, ValueError):   # private module: if it moves, trust ours
        top = MAX_OPSET
    return range(MIN_OPSET, min(MAX_OPSET, top) + 1)


def check_opset(opset) -> int:
    """``opset`` if export_onnx supports it, else ValueError naming the supported range."""
    ok = supported_opsets()
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in ok:
        raise ValueError(f"opset {opset} is not supported: use {ok.start} to {ok.stop - 1} (default {OPSET}; the "
                         f"network's attention needs {MIN_OPSET}, torch's TorchScript exporter stops at {ok.stop - 1})")
    return opset


def export_onnx(model, out, *, opset: int = OPSET) -> None:
    """Write ``model``'s network as ONNX to ``out`` (a path, written atomically, or a binary file object)."""
    import copy
    import warnings

    check_opset(opset)

    model = copy.deepcopy(model).cpu().eval().set_grad_checkpointing(False)
    feats = torch.zeros(1, 3, EXAMPLE_FRAMES, model.bins[0])
    names = output_names(model)
    axes = {INPUT_NAME: {0: "batch", 2: "frames"}, "ri": {0: "batch", 2: "frames"}, "vad_logits": {0: "batch", 1: "frames"}}

    try:
        import onnx  # noqa: F401  (the exporter imports it; say what to install instead of its traceback)
    except ImportError:
        raise ModelFileError("ONNX export needs the onnx package: pip install 'csmvanet[onnx]'") from None

    def write(f):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # tracer and deprecation warnings of the exporter
            torch.onnx.export(NetworkGraph(model), (feats,), f, input_names=[INPUT_NAME], output_names=names,
                              dynamic_axes={k: axes[k] for k in [INPUT_NAME] + names}, opset_version=opset,
                              do_constant_folding=True, dynamo=False)

    if isinstance(out, (str, Path)):
        with atomic_path(Path(out)) as tmp:
            write(str(tmp))
    else:
        write(out)


def onnx_bytes(model, *, opset: int = OPSET) -> bytes:
    buf = io.BytesIO()
    export_onnx(model, buf, opset=opset)
    return buf.getvalue()


def export_model(model_path, out_path, *, checkpoint: str | None = None, opset: int = OPSET) -> dict:
    """Export the network of a packed model, experiment dir or weights file to ``out_path``; returns a summary."""
    from csmvanet.experiment.model_files import load_model_files, model_with_weights

    out_path = Path(out_path)
    check_opset(opset)
    if out_path.suffix.lower() != ".onnx":
        raise ModelFileError(f"{out_path}: the output name must end in .onnx")
    if out_path.is_dir():
        raise ModelFileError(f"{out_path}: is a folder; give the ONNX file's name (e.g. {out_path / 'model.onnx'})")
    config, state, _ = load_model_files(model_path, checkpoint)
    model = model_with_weights(config, state, str(model_path))
    export_onnx(model, out_path, opset=opset)
    return {"out": str(out_path), "bytes": out_path.stat().st_size, "opset": opset,
            "inputs": [INPUT_NAME], "outputs": output_names(model), "bins": model.bins[0],
            "sample_rate": int(model.stft_cfg.sample_rate)}


__all__ = ["INPUT_NAME", "MAX_OPSET", "MIN_OPSET", "NetworkGraph", "OPSET", "OUTPUT_NAMES", "StreamStepGraph",
           "check_opset", "export_model", "export_onnx", "export_stream_step", "onnx_bytes", "output_names",
           "stream_state_shapes", "supported_opsets"]
