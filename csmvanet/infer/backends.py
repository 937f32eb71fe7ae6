"""Network runners: one call ``runner(feats) -> (ri, vad_logits or None)`` over several backends.

The Enhancer computes the network input and turns the network output into audio in torch
(:meth:`CSMVANet.analysis`, :meth:`CSMVANet.synthesis`) and calls a runner in between, so the
chunking, VAD outputs and input checks are the same code whatever runs the network:

``torch``        the model itself (eager PyTorch, any device).
``onnxruntime``  an ONNX export of the network (:mod:`csmvanet.experiment.onnx_export`) in an onnxruntime session on
                 the CPU: exported in memory from the loaded weights, or read from a file written by
                 ``csmvanet-export`` (checked against the weights on a short probe input).
``torch-int8``   the model with the Conformer blocks' linear layers dynamically quantised to int8
                 (``torch.ao.quantization.quantize_dynamic``; CPU only). Weights in int8,
                 activations quantised per call; check its agreement with ``bench/bench_enhance.py``.
``torch-bf16``   the model under CPU autocast to bfloat16 (convolutions and matrix products in bf16,
                 norms and softmax in fp32; outputs back in fp32). Only where the CPU has native
                 bf16 (oneDNN: AVX512-BF16 or AMX); refused elsewhere, where it would be slower.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from csmvanet.base.errors import EnhanceError, ModelFileError, last_line
from csmvanet.experiment.inference_settings import BACKENDS

PROBE_FRAMES = 41           # time length of the probe that checks an ONNX file against the weights
PROBE_TOLERANCE = 1e-3      # max |difference| relative to the largest output magnitude


class TorchRunner:
    def __init__(self, model, name: str = "torch"):
        self.model, self.name = model, name

    def __call__(self, feats: torch.Tensor):
        return self.model.network(feats)


class OnnxRunner:
    """An onnxruntime CPU session of an exported network (bytes or a file path)."""

    name = "onnxruntime"

    def __init__(self, onnx, threads: int | None = None, source: str = "ONNX model"):
        try:
            import onnxruntime as ort
        except ImportError:
            raise EnhanceError("backend onnxruntime needs the onnxruntime package: pip install 'csmvanet[onnx]'") from None
        from csmvanet.experiment.onnx_export import INPUT_NAME

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(onnx if isinstance(onnx, bytes) else str(onnx), opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:   # onnxruntime raises its own exception types for unreadable files
            raise ModelFileError(f"{source}: not an ONNX model onnxruntime can load ({last_line(e)})") from None
        inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [INPUT_NAME] or self.outputs[:1] != ["ri"]:
            raise ModelFileError(f"{source}: not a csmvanet network export (inputs {inputs}, outputs "
                                 f"{self.outputs}; expected {INPUT_NAME} -> ri[, vad_logits]); write one with "
                                 "csmvanet-export")
        self.source = source
        shape = self.session.get_inputs()[0].shape     # [batch, 3, frames, bins]: names for dynamic axes
        self.bins = shape[-1] if shape and isinstance(shape[-1], int) else None

    def __call__(self, feats: torch.Tensor):
        from csmvanet.experiment.onnx_export import INPUT_NAME

        out = self.session.run(None, {INPUT_NAME: np.ascontiguousarray(feats.detach().cpu().numpy(), np.float32)})
        ri = torch.from_numpy(out[0])
        return ri, (torch.from_numpy(out[1]) if len(out) > 1 else None)


class AutocastRunner:
    """The model under CPU autocast to bfloat16; outputs as float32."""

    name = "torch-bf16"

    def __init__(self, model):
        self.model = model

    def __call__(self, feats: torch.Tensor):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ri, vad = self.model.network(feats)
        return ri.float(), (None if vad is None else vad.float())


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def quantize_conformers(model):
    """A copy of ``model`` whose Conformer linear layers are dynamically quantised to int8 (CPU)."""
    import warnings

    from torch.ao.quantization import quantize_dynamic

    model = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # quantized tensor creation is deprecated in recent torch
        model.bottleneck = quantize_dynamic(model.bottleneck, {nn.Linear}, dtype=torch.qint8)
        model.network(torch.zeros(1, 3, 5, model.bins[0]))   # first call inside the filter too
    return model


def check_matches(runner, model, source: str) -> float:
    """Probe ``runner`` against the torch model on random input; ModelFileError naming ``source`` if
    the outputs (or their presence) differ. Returns the relative max difference."""
    bins = getattr(runner, "bins", None)
    if bins is not None and bins != model.bins[0]:
        raise ModelFileError(f"{source}: does not fit the model (its input has {bins} frequency bins, the model's "
                             f"STFT gives {model.bins[0]}: exported from a model with another STFT size)")
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(1, 3, PROBE_FRAMES, model.bins[0], generator=g)
    with torch.inference_mode():
        ref_ri, ref_vad = model.network(feats.to(next(model.parameters()).device))
        try:
            ri, vad = runner(feats)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types for a graph of another shape
            msg = " ".join(str(e).split()) or type(e).__name__
            raise ModelFileError(f"{source}: does not fit the model (the probe input fails: {msg})") from None
    if (ref_vad is None) != (vad is None) or tuple(ri.shape) != tuple(ref_ri.shape):
        raise ModelFileError(f"{source}: does not fit the model (outputs ri{tuple(ri.shape)}"
                             f"{'' if vad is None else ' + vad_logits'}; the model gives ri{tuple(ref_ri.shape)}"
                             f"{'' if ref_vad is None else ' + vad_logits'})")
    pairs = [(ri, ref_ri)] + ([] if vad is None else [(vad, ref_vad)])
    rel = max(float((a.float().cpu() - b.float().cpu()).abs().max() / (b.abs().max() + 1e-6)) for a, b in pairs)
    if not rel <= PROBE_TOLERANCE:
        raise ModelFileError(f"{source}: was not exported from these weights (outputs differ by {rel:.2g} of "
                             f"their range on a probe input); export it again with csmvanet-export")
    return rel


def make_runner(model, backend: str = "torch", *, device: str = "cpu", onnx_path=None, threads: int | None = None):
    """The runner of ``backend`` for ``model`` (already on ``device`` and in eval mode)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if onnx_path is not None and backend != "onnxruntime":
        raise ValueError(f"an ONNX file ({onnx_path}) is used by backend onnxruntime only, not {backend}")
    if backend == "torch":
        return TorchRunner(model)
    if torch.device(device).type != "cpu":
        raise ValueError(f"backend {backend} runs on the CPU; use device cpu (or backend torch on {device})")
    if backend == "torch-int8":
        return TorchRunner(quantize_conformers(model), "torch-int8")
    if backend == "torch-bf16":
        if not cpu_has_bf16():
            raise EnhanceError("backend torch-bf16 needs a CPU with native bfloat16 (AVX512-BF16 or AMX); this one "
                               "has none (it would run slower than torch): use backend torch or onnxruntime")
        return AutocastRunner(model)
    from csmvanet.experiment.onnx_export import onnx_bytes

    if onnx_path is None:
        return OnnxRunner(onnx_bytes(model), threads, "the in-memory ONNX export")
    from pathlib import Path

    if not Path(onnx_path).is_file():
        raise ModelFileError(f"{onnx_path}: no such ONNX file")
    runner = OnnxRunner(onnx_path, threads, str(onnx_path))
    check_matches(runner, model, str(onnx_path))
    return runner


__all__ = ["AutocastRunner", "BACKENDS", "OnnxRunner", "TorchRunner", "check_matches", "cpu_has_bf16", "make_runner",
           "quantize_conformers"]
