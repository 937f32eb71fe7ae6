"""The inference settings a model carries: what they may be, checked wherever they are read.

A model's defaults for decoding are chosen on a validation set (csmvanet-tune-inference) and stored
in the experiment dir's ``inference.yaml``; packing copies them into the packed file's metadata
(``metadata["inference"]``). Both are checked on load by :func:`check_inference_settings`, so that a
damaged or edited value fails with one line naming the file and the key instead of doing something
else: ``input_mix`` 1 would output the input unchanged, a huge ``segment_seconds`` would allocate
gigabytes, a list would fail deep inside the enhancer.

Keys (``vad_floor`` and ``vad_threshold`` required, the others optional):
  vad_floor, vad_threshold   numbers from 0 to 1
  input_mix                  a number from 0 to below 1 (the share of the input kept in the output)
  snr_limit                  null (no limit) or dB within :data:`SNR_LIMIT_RANGE`
  segment_seconds            null or seconds, above 0 and at most :data:`MAX_SEGMENT_SECONDS`
  overlap_seconds            null or seconds from 0 to half of segment_seconds
Other keys (what they were chosen on, versions, ...) are provenance, not used by the enhancer.
"""
from __future__ import annotations

import math

from csmvanet.base.errors import ModelFileError

INFERENCE_FILE = "inference.yaml"   # exp dir: inference settings chosen on validation (csmvanet-tune-inference)
INFERENCE_KEYS = ("vad_floor", "vad_threshold")   # required
SNR_LIMIT_RANGE = (-100.0, 100.0)   # dB: the per-segment SNR limit (csmvanet.infer.enhancer.snr_limit_mix)
MAX_SEGMENT_SECONDS = 3600.0        # a chunk's memory grows with its length (the attention quadratically)


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


def _number(value) -> float | None:
    """``value`` as a finite float, None when it is not a plain number (bool, str, list, nan, inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def check_inference_settings(data, where: str) -> dict:
    """The settings of ``data`` (from ``where``: a file, or a file and the part of it) checked as the
    module doc says; ModelFileError naming ``where`` and the key otherwise. Returns the plain
    (non-list, non-mapping) entries."""
    if not isinstance(data, dict):
        raise ModelFileError(f"{where}: must be a mapping of keys to values, got {type(data).__name__}")

    def bad(key: str, what: str):
        return ModelFileError(f"{where}: {key} must be {what}, got {data.get(key)!r}")

    for key in INFERENCE_KEYS:
        v = _number(data.get(key))
        if v is None or not 0.0 <= v <= 1.0:
            raise bad(key, "a number from 0 to 1")
    if "input_mix" in data:
        v = _number(data["input_mix"])
        if v is None or not 0.0 <= v < 1.0:
            raise bad("input_mix", "a number from 0 to below 1 (1 would output the input unchanged)")
    try:
        snr_limit_value(data.get("snr_limit"))
    except ValueError:
        lo, hi = SNR_LIMIT_RANGE
        raise bad("snr_limit", f"a number of dB from {lo:g} to {hi:g} or null") from None
    seg = data.get("segment_seconds")
    if seg is not None:
        seg = _number(seg)
        if seg is None or not 0.0 < seg <= MAX_SEGMENT_SECONDS:
            raise bad("segment_seconds", f"a number of seconds above 0 and at most {MAX_SEGMENT_SECONDS:g}")
    if data.get("overlap_seconds") is not None:
        v = _number(data["overlap_seconds"])
        top = MAX_SEGMENT_SECONDS / 2 if seg is None else seg / 2
        if v is None or not 0.0 <= v <= top:
            raise bad("overlap_seconds", f"a number of seconds from 0 to half of segment_seconds ({top:g})")
    return {k: v for k, v in data.items() if not isinstance(v, (dict, list))}


__all__ = ["INFERENCE_FILE", "INFERENCE_KEYS", "MAX_SEGMENT_SECONDS", "SNR_LIMIT_RANGE", "check_inference_settings",
           "snr_limit_value"]
