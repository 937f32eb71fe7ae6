"""The inference settings: what each may be, checked in this one place wherever a value comes from.

One :class:`InferenceSettings` travels from where a value is set to the Enhancer that uses it:
chosen on a validation set (csmvanet-tune-inference) and written to the experiment dir's
``inference.yaml``; copied into a packed model's metadata (``metadata["inference"]``); given on the
command line (csmvanet-enhance, csmvanet-tune-inference's grids) or to ``Enhancer(...)`` /
``Enhancer.from_pretrained(...)`` by name. Every value passes :func:`check_setting`, so that a damaged
file or a typo fails with one line naming the file or option and the key (``input_mix`` 1 stored would
output the input unchanged, a huge ``segment_seconds`` would allocate gigabytes).

Settings (:data:`SETTINGS`; ``vad_floor`` and ``vad_threshold`` required in a stored file):
  vad_floor        stage-2 gain floor, 0 (the paper: spectrum x VAD probability) ... 1 (stage 1 alone);
                   not set: the model config's own ``model.vad_floor``
  vad_threshold    VAD decision threshold of segments / RTTM, 0 ... 1 (default 0.5)
  input_mix        share of the unprocessed input kept in the output, 0 ... 1 (stored: below 1; default 0)
  snr_limit        dB within :data:`SNR_LIMIT_RANGE`: per chunk, keep enough input that the output's
                   estimated SNR is not above it; no limit: None in Python, null in files, ``none`` on
                   the command line (the default)
  segment_seconds  chunk length, above 0 and at most :data:`MAX_SEGMENT_SECONDS` (default 8)
  overlap_seconds  chunk overlap, 0 ... half the chunk (not set: 1 s, at most half the chunk)
  backend          what runs the network, one of :data:`BACKENDS` (default torch)
Other keys of a stored file (what they were chosen on, versions, ...) are provenance, not settings.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from csmvanet.base.errors import ModelFileError

INFERENCE_FILE = "inference.yaml"   # exp dir: inference settings chosen on validation (csmvanet-tune-inference)
INFERENCE_KEYS = ("vad_floor", "vad_threshold")   # required in a stored file
SNR_LIMIT_RANGE = (-100.0, 100.0)   # dB: the per-chunk SNR limit (csmvanet.infer.output_level.snr_limit_mix)
MAX_SEGMENT_SECONDS = 3600.0        # a chunk's memory grows with its length (the attention quadratically)
DEFAULT_SEGMENT_SECONDS = 8.0
DEFAULT_OVERLAP_SECONDS = 1.0
BACKENDS = ("torch", "onnxruntime", "torch-int8", "torch-bf16")   # csmvanet.infer.backends
NO_LIMIT = ("none", "inf")          # the command line's words for "no SNR limit"


@dataclass(frozen=True)
class InferenceSettings:
    """The settings of one Enhancer (see the module doc); None: not set (the documented default applies)."""

    vad_floor: float | None = None
    vad_threshold: float = 0.5
    input_mix: float = 0.0
    snr_limit: float | None = None
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS
    overlap_seconds: float | None = None
    backend: str = "torch"

    @classmethod
    def stored(cls, data, where: str, required=INFERENCE_KEYS) -> "InferenceSettings":
        """The settings of a stored mapping (``where``: the file, or the file and its part), checked as a
        stored file must be (:func:`check_stored`); keys not given keep their defaults."""
        data = check_stored(data, where, required)
        return cls(**{k: check_setting(k, data[k]) for k in SETTINGS if data.get(k) is not None})

    def updated(self, **given) -> "InferenceSettings":
        """A copy with the ``given`` settings (None: not given, the current value stays; ``snr_limit``
        ``inf``: no limit). ValueError naming the key for a bad value, TypeError for an unknown key."""
        unknown = sorted(set(given) - set(SETTINGS))
        if unknown:
            raise TypeError(f"unknown inference setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
        new = {k: check_setting(k, v) for k, v in given.items() if v is not None}
        return replace(self, **new)

    def as_dict(self) -> dict:
        return asdict(self)


SETTINGS = tuple(f.name for f in fields(InferenceSettings))


def _number(value) -> float:
    """``value`` as a float; nan for what is not a plain number (bool, str, list, None)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def _snr_limit(value) -> float | None:
    v = _number(value)
    if v == math.inf:
        return None
    lo, hi = SNR_LIMIT_RANGE
    if not lo <= v <= hi:
        raise ValueError
    return v


def _in(lo: float, hi: float, low_open: bool = False):
    def check(value) -> float:
        v = _number(value)
        if not (lo < v <= hi if low_open else lo <= v <= hi):
            raise ValueError
        return v
    return check


def _backend(value) -> str:
    if value not in BACKENDS:
        raise ValueError
    return value


#: key -> (check: value -> normalised value, ValueError if bad; what a good value is)
RULES = {
    "vad_floor": (_in(0.0, 1.0), "a number from 0 to 1"),
    "vad_threshold": (_in(0.0, 1.0), "a number from 0 to 1"),
    "input_mix": (_in(0.0, 1.0), "a number from 0 to 1"),
    "snr_limit": (_snr_limit, ""),   # words: describe()
    "segment_seconds": (_in(0.0, MAX_SEGMENT_SECONDS, low_open=True),
                        f"a number of seconds above 0 and at most {MAX_SEGMENT_SECONDS:g}"),
    "overlap_seconds": (_in(0.0, MAX_SEGMENT_SECONDS / 2), "a number of seconds from 0 to half of segment_seconds"),
    "backend": (_backend, "one of " + ", ".join(BACKENDS)),
}


def describe(key: str, none_word: str = "None") -> str:
    """What a good value of ``key`` is, in words (``none_word``: how "no SNR limit" is spelled there)."""
    if key == "snr_limit":
        lo, hi = SNR_LIMIT_RANGE
        dbs = f"a number of dB from {lo:g} to {hi:g}"
        return f"None or {dbs}" if none_word == "None" else f"{dbs} or {none_word}"
    return RULES[key][1]


def check_setting(key: str, value):
    """``value`` of setting ``key`` checked and normalised (``snr_limit``: None or inf -> None);
    ValueError ``"<key> must be <what>, got <value>"`` otherwise."""
    if key == "snr_limit" and value is None:
        return None
    try:
        return RULES[key][0](value)
    except ValueError:
        raise ValueError(f"{key} must be {describe(key)}, got {value!r}") from None


def parse_setting(key: str, text: str):
    """A command-line value of setting ``key`` (``none``/``inf`` for no SNR limit); ValueError
    ``"expected <what>, got '<text>'"`` (argparse prefixes the option)."""
    word = text.strip().lower()
    if key == "snr_limit" and word in NO_LIMIT:
        return math.inf
    try:
        value = text.strip() if key == "backend" else float(text)
        return check_setting(key, value)
    except ValueError:
        raise ValueError(f"expected {describe(key, 'none')}, got {text!r}") from None


def check_stored(data, where: str, required=INFERENCE_KEYS) -> dict:
    """The settings of a stored mapping ``data`` (inference.yaml, a packed model's metadata) checked:
    ``required`` keys present, every setting by :func:`check_setting`, ``input_mix`` below 1 and
    ``overlap_seconds`` at most half of the stored ``segment_seconds``; ModelFileError naming ``where``
    and the key otherwise. Returns the plain (non-list, non-mapping) entries, provenance included."""
    if not isinstance(data, dict):
        raise ModelFileError(f"{where}: must be a mapping of keys to values, got {type(data).__name__}")

    def bad(key: str, what: str):
        return ModelFileError(f"{where}: {key} must be {what}, got {data.get(key)!r}")

    seg = data.get("segment_seconds")
    top = (MAX_SEGMENT_SECONDS if seg is None else _number(seg)) / 2
    stored_words = {"input_mix": "a number from 0 to below 1 (1 would output the input unchanged)",
                    "overlap_seconds": f"a number of seconds from 0 to half of segment_seconds ({top:g})"}
    for key in SETTINGS:
        value = data.get(key)
        if value is None and key not in required:
            continue
        try:
            if value is None:
                raise ValueError
            v = check_setting(key, value)
            if (key == "input_mix" and not v < 1.0) or (key == "overlap_seconds" and not v <= top):
                raise ValueError
        except ValueError:
            raise bad(key, stored_words.get(key) or describe(key, "null")) from None
    return {k: v for k, v in data.items() if not isinstance(v, (dict, list))}


__all__ = ["BACKENDS", "DEFAULT_OVERLAP_SECONDS", "DEFAULT_SEGMENT_SECONDS", "INFERENCE_FILE", "INFERENCE_KEYS",
           "InferenceSettings", "MAX_SEGMENT_SECONDS", "NO_LIMIT", "RULES", "SETTINGS", "SNR_LIMIT_RANGE",
           "check_setting", "check_stored", "describe", "parse_setting"]
