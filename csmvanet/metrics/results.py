"""Per-utterance scoring results (:class:`UttResult`) and the Kaldi-style files of a scoring folder.

Layout of a scoring folder ``D`` (written by :func:`write_results` for
:func:`csmvanet.metrics.scoring.score_lists` and :func:`csmvanet.metrics.scoring.merge_dirs`; read
back by :func:`read_results`)::

    D/enhanced/<metric>   `utt value` per line (value `nan` where the metric is undefined)
    D/noisy/<metric>      the same for the noisy input (when a noisy list is given)
    D/errors              `utt message`: utterances not scored (unreadable audio, rate mismatch...)
    D/warnings            `utt message`: trimmed lengths, PESQ finding no utterance (NaN), ...
    D/missing             reference keys without an enhanced file (not written by split jobs)
    D/extra               enhanced keys without a reference (not written by split jobs)
    D/done                written last by every scoring run (merge checks it)

Metrics per utterance: pesq, stoi, csig, cbak, covl, segsnr, si_sdr, llr, wss and, with VAD
labels and predictions, vad_acc, vad_precision, vad_recall, vad_f1, vad_auc, vad_tp/fp/fn/tn.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from csmvanet.base.atomic_files import atomic_write_text
from csmvanet.data.datadir import read_scp

SYSTEMS = ("noisy", "enhanced")
QUALITY_METRICS = ("pesq", "stoi", "csig", "cbak", "covl", "segsnr", "si_sdr", "llr", "wss")
VAD_METRICS = ("vad_acc", "vad_precision", "vad_recall", "vad_f1", "vad_auc",
               "vad_tp", "vad_fp", "vad_fn", "vad_tn")
ALL_METRICS = QUALITY_METRICS + VAD_METRICS


@dataclass
class UttResult:
    utt: str
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # system -> metric -> value
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


def fmt_value(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{float(v):.6f}"


def write_results(out_dir: Path, results: list[UttResult], *, missing: list[str] | None = None,
                  extra: list[str] | None = None) -> None:
    """Write the per-utterance files of a scoring folder (see the module docstring)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "done").unlink(missing_ok=True)
    for system in SYSTEMS:
        present = [r for r in results if system in r.scores]
        sysdir = out_dir / system
        if not present:
            if sysdir.is_dir():
                for f in sysdir.iterdir():
                    f.unlink()
            continue
        sysdir.mkdir(exist_ok=True)
        metrics = [m for m in ALL_METRICS if any(m in r.scores[system] for r in present)]
        for f in sysdir.iterdir():  # files of an earlier run with other inputs
            if f.name not in metrics:
                f.unlink()
        for m in metrics:
            lines = sorted(((r.utt, r.scores[system].get(m, math.nan)) for r in present),
                           key=lambda kv: kv[0].encode())
            atomic_write_text(sysdir / m, "".join(f"{u} {fmt_value(v)}\n" for u, v in lines))
    errs = sorted(((r.utt, r.error) for r in results if r.error), key=lambda kv: kv[0].encode())
    atomic_write_text(out_dir / "errors", "".join(f"{u} {_one_line(e)}\n" for u, e in errs))
    warns = [(r.utt, w) for r in sorted(results, key=lambda r: r.utt.encode()) for w in r.warnings]
    atomic_write_text(out_dir / "warnings", "".join(f"{u} {_one_line(w)}\n" for u, w in warns))
    for name, keys in (("missing", missing), ("extra", extra)):
        if keys is not None:
            atomic_write_text(out_dir / name, "".join(f"{k}\n" for k in keys))
    atomic_write_text(out_dir / "done", f"{len(results)}\n")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def read_results(score_dir: Path) -> list[UttResult]:
    """Read a scoring folder back into :class:`UttResult` objects (used by the merge)."""
    score_dir = Path(score_dir)
    by_utt: dict[str, UttResult] = {}

    def get(u):
        return by_utt.setdefault(u, UttResult(u))

    for system in SYSTEMS:
        sysdir = score_dir / system
        if not sysdir.is_dir():
            continue
        for m in ALL_METRICS:
            f = sysdir / m
            if not f.is_file():
                continue
            for u, v in read_scp(f).items():
                try:
                    val = float(v)
                except ValueError:
                    raise ValueError(f"{f}: key {u!r}: value {v!r} is not a number") from None
                if m in ("vad_tp", "vad_fp", "vad_fn", "vad_tn") and not math.isnan(val):
                    val = int(val)
                get(u).scores.setdefault(system, {})[m] = val
    for u, e in _read_pairs(score_dir / "errors"):
        get(u).error = e
    for u, w in _read_pairs(score_dir / "warnings"):
        get(u).warnings.append(w)
    return list(by_utt.values())


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            k, _, v = line.partition(" ")
            out.append((k, v.strip()))
    return out


__all__ = ["SYSTEMS", "QUALITY_METRICS", "VAD_METRICS", "ALL_METRICS", "UttResult", "fmt_value",
           "write_results", "read_results"]
