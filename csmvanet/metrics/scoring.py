"""Scoring a list of (reference, enhanced[, noisy]) utterances, in parallel, into a scoring folder.

:func:`score_lists` scores the lists (or a split job's share) and writes the folder;
:func:`merge_dirs` joins the folders of split jobs. The folder's files, and the metrics per
utterance, are described in :mod:`csmvanet.metrics.results`.
"""
from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from csmvanet.audio.io import AudioError, read_audio
from csmvanet.base.interrupts import say_when_interrupted
from csmvanet.base.process_pool import run_jobs
from csmvanet.data.datadir import DataDirError, read_scp, read_segments
from csmvanet.data.utt_audio import UttAudio, read_utterance, segment_audio
from csmvanet.metrics.basic import pesq_for_composite, pesq_or_reason, si_sdr, stoi_or_reason, vad_metrics
from csmvanet.metrics.composite import composite_from_parts, composite_measures
from csmvanet.metrics.results import VAD_METRICS, UttResult, read_results, write_results

log = logging.getLogger(__name__)


LENGTH_TOLERANCE = 0.02   # seconds an enhanced/noisy file may differ from its reference (docs/scoring-inputs.md)


@dataclass
class ScoreOptions:
    pesq_mode: str | None = None  # None: wb at 16 kHz, nb at 8 kHz
    vad_threshold: float = 0.5
    length_tolerance: float = LENGTH_TOLERANCE  # larger differences are errors, not trimmed


def score_arrays(ref: np.ndarray, deg: np.ndarray, fs: int, pesq_mode: str | None = None,
                 notes: list[str] | None = None, failures: list[str] | None = None) -> dict[str, float]:
    """All quality metrics of one pair (equal lengths expected; trimmed to the shorter).

    Each metric is computed on its own: one that raises gets NaN and a line in ``failures``
    (``notes`` holds the expected NaN reasons: silent reference, too short, ...); the others
    are still computed."""
    n = min(len(ref), len(deg))
    ref, deg = ref[:n], deg[:n]
    notes = notes if notes is not None else []
    failures = failures if failures is not None else []

    def isolated(names, fn, fallback):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - one metric must not lose the others
            failures.append(f"{'/'.join(names)} failed ({type(e).__name__}: {e}); "
                            f"{'it is' if len(names) == 1 else 'they are'} NaN")
            return fallback

    def pesq():
        value, reason = pesq_or_reason(ref, deg, fs, pesq_mode)
        if reason:
            notes.append(reason + "; PESQ and CSIG/CBAK/COVL are NaN")
        return value

    def stoi():
        value, reason = stoi_or_reason(ref, deg, fs)
        if reason:
            notes.append(reason + "; STOI is NaN")
        return value

    def composite():
        try:
            return composite_measures(ref, deg, fs, pesq=pesq_for_composite(out["pesq"], fs, pesq_mode))
        except ValueError as e:  # too short to frame
            notes.append(f"composite: {e}")
            return composite_nan

    composite_nan = {"llr": math.nan, "wss": math.nan, "segsnr": math.nan}
    composite_nan.update(composite_from_parts(math.nan, math.nan, math.nan, math.nan))
    out = {"pesq": isolated(["pesq"], pesq, math.nan),
           "stoi": isolated(["stoi"], stoi, math.nan),
           "si_sdr": isolated(["si_sdr"], lambda: si_sdr(ref, deg), math.nan)}
    out.update(isolated(["llr", "wss", "segsnr", "csig", "cbak", "covl"], composite, composite_nan))
    return out


def nonfinite_problem(wave: np.ndarray, what: str) -> str | None:
    """'<what>: 3 NaN and 1 Inf samples (first at sample 100)', or None when every sample is finite."""
    bad = ~np.isfinite(wave)
    if not bad.any():
        return None
    n_nan = int(np.isnan(wave).sum())
    n_inf = int(bad.sum()) - n_nan
    parts = [f"{n} {name} sample{'s' if n != 1 else ''}" for n, name in ((n_nan, "NaN"), (n_inf, "Inf")) if n]
    first = int(np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[0])
    return f"{what}: {' and '.join(parts)} (first at sample {first}); not scored"


def length_problem(n_ref: int, n: int, fs: int, what: str, tolerance: float = LENGTH_TOLERANCE) -> str | None:
    """None when ``n`` samples are within ``tolerance`` seconds of the reference's ``n_ref`` (the pair
    is then trimmed to the shorter), else the error: '<what>: 800 samples (0.050 s) but the reference
    has 48000 (3.000 s); ...'."""
    if abs(n - n_ref) <= round(tolerance * fs):
        return None
    return (f"{what}: {n} samples ({n / fs:.3f} s) but the reference has {n_ref} ({n_ref / fs:.3f} s); "
            f"lengths more than {tolerance * 1000:g} ms apart are not scored (--length_tolerance)")


def _name(src) -> str:
    return src.describe() if isinstance(src, UttAudio) else str(src)


def _read_mono(src: str | UttAudio, what: str) -> tuple[np.ndarray, int]:
    """A scp value, or an utterance (a segment of a recording) of a data dir with ``segments``."""
    try:
        wave, sr = read_utterance(src) if isinstance(src, UttAudio) else read_audio(src)
    except AudioError as e:
        raise AudioError(f"{what} {e}") from None
    if wave.ndim != 1:
        raise AudioError(f"{what} {_name(src)}: {wave.shape[1]} channels, expected one")
    return wave, sr


def score_utterance(utt: str, ref_src: str | UttAudio, enh_src: str, noisy_src: str | UttAudio | None = None,
                    vad_ref_src: str | None = None, vad_hyp_src: str | None = None,
                    opts: ScoreOptions | None = None, with_vad: bool | None = None) -> UttResult:
    """Score one utterance; never raises for bad data: the problem goes to ``error``/``warnings``.

    ``with_vad``: score VAD (NaN + warning where a label or prediction entry is missing); by
    default when either VAD source is given. ``ref_src``/``noisy_src`` may be segments of
    recordings (:class:`csmvanet.data.utt_audio.UttAudio`)."""
    opts = opts or ScoreOptions()
    res = UttResult(utt)
    try:
        ref, fs = _read_mono(ref_src, "reference")
        enh, fs_e = _read_mono(enh_src, "enhanced")
        if fs_e != fs:
            raise AudioError(f"enhanced {enh_src}: {fs_e} Hz but the reference is {fs} Hz")
        noisy = None
        if noisy_src is not None:
            noisy, fs_n = _read_mono(noisy_src, "noisy")
            if fs_n != fs:
                raise AudioError(f"noisy {_name(noisy_src)}: {fs_n} Hz but the reference is {fs} Hz")
    except (AudioError, OSError, ValueError) as e:
        res.error = str(e)
        return res
    bad = [p for p in (nonfinite_problem(ref, f"reference {_name(ref_src)}"),
                       nonfinite_problem(enh, f"enhanced {enh_src}"),
                       None if noisy is None else nonfinite_problem(noisy, f"noisy {_name(noisy_src)}"),
                       length_problem(len(ref), len(enh), fs, f"enhanced {enh_src}", opts.length_tolerance),
                       None if noisy is None else length_problem(len(ref), len(noisy), fs, f"noisy {_name(noisy_src)}",
                                                                 opts.length_tolerance)) if p]
    if bad:
        res.error = "; ".join(bad)
        return res
    failures: list[str] = []
    if len(enh) != len(ref):
        res.warnings.append(f"length mismatch: reference {len(ref)} samples, enhanced {len(enh)}; "
                            f"trimmed to {min(len(ref), len(enh))}")
    notes: list[str] = []
    fails: list[str] = []
    res.scores["enhanced"] = score_arrays(ref, enh, fs, opts.pesq_mode, notes, fails)
    res.warnings += [f"enhanced: {m}" for m in notes]
    failures += [f"enhanced: {m}" for m in fails]
    if noisy is not None:
        if len(noisy) != len(ref):
            res.warnings.append(f"length mismatch: reference {len(ref)} samples, noisy {len(noisy)}; "
                                f"trimmed to {min(len(ref), len(noisy))}")
        notes = []
        fails = []
        res.scores["noisy"] = score_arrays(ref, noisy, fs, opts.pesq_mode, notes, fails)
        res.warnings += [f"noisy: {m}" for m in notes]
        failures += [f"noisy: {m}" for m in fails]
    if with_vad is None:
        with_vad = vad_ref_src is not None or vad_hyp_src is not None
    if with_vad:
        try:
            res.scores["enhanced"].update(_score_vad(res, vad_ref_src, vad_hyp_src, opts))
        except Exception as e:  # noqa: BLE001 - the quality metrics stay
            failures.append(f"VAD metrics failed ({type(e).__name__}: {e}); they are NaN")
            res.scores["enhanced"].update({k: math.nan for k in VAD_METRICS})
    if failures:  # the values that could be computed are kept; the utterance is not averaged
        res.error = "; ".join(failures)
    return res


def _score_vad(res: UttResult, ref_src: str | None, hyp_src: str | None,
               opts: ScoreOptions) -> dict[str, float]:
    nan = {k: math.nan for k in VAD_METRICS}
    if ref_src is None or hyp_src is None:
        res.warnings.append("VAD: " + ("no reference labels" if ref_src is None else "no prediction")
                            + " for this utterance; VAD metrics are NaN")
        return nan
    import kaldiio

    try:
        labels = np.asarray(kaldiio.load_mat(ref_src)).ravel()
        probs = np.asarray(kaldiio.load_mat(hyp_src), dtype=np.float64).ravel()
    except Exception as e:  # kaldiio raises many types
        res.warnings.append(f"VAD: cannot read labels/predictions ({e}); VAD metrics are NaN")
        return nan
    if labels.size != probs.size:
        n = min(labels.size, probs.size)
        res.warnings.append(f"VAD length mismatch: {labels.size} label frames, {probs.size} predicted; "
                            f"trimmed to {n}")
        labels, probs = labels[:n], probs[:n]
    if labels.size == 0:
        res.warnings.append("VAD: no frames; VAD metrics are NaN")
        return nan
    return vad_metrics(labels, probs, opts.vad_threshold)


# ---------------------------------------------------------------------------------------------
# Lists, jobs and folders
# ---------------------------------------------------------------------------------------------

@dataclass
class ScoreInputs:
    ref_scp: Path
    enh_scp: Path
    noisy_scp: Path | None = None
    vad_ref_scp: Path | None = None
    vad_hyp_scp: Path | None = None
    segments: Path | None = None  # Kaldi segments: ref_scp and noisy_scp are keyed by recording


def job_keys(keys: list[str], job: int, num_jobs: int) -> list[str]:
    """Contiguous share ``job`` (1-based) of ``num_jobs`` of the sorted keys."""
    if not 1 <= job <= num_jobs:
        raise ValueError(f"job index {job} outside 1..{num_jobs}")
    keys = sorted(keys, key=lambda k: k.encode())
    n = len(keys)
    return keys[(job - 1) * n // num_jobs: job * n // num_jobs]


def _task(args):
    try:
        return score_utterance(*args)
    except Exception as e:  # noqa: BLE001 - one utterance must not stop the batch
        return UttResult(args[0], error=f"scoring failed ({type(e).__name__}: {e})")


def _describe_task(task) -> str:
    return f"utterance {task[0]} (reference {task[1]}, enhanced {task[2]})"


def _init_worker():
    import warnings

    warnings.simplefilter("ignore", RuntimeWarning)


def _pool_context():
    # spawn: fresh interpreters that read the single-thread settings below (no BLAS oversubscription)
    return mp.get_context("spawn")


def run_scoring(tasks: list[tuple], nj: int = 1, progress: bool = True):
    """Yield :class:`UttResult` for each task tuple (arguments of :func:`score_utterance`)."""
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="scoring", unit="utt", disable=not progress, dynamic_ncols=True)
    try:
        if nj <= 1 or len(tasks) <= 1:
            for t in tasks:
                yield _task(t)
                bar.update()
            return
        one_thread = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        jobs = run_jobs(_task, tasks, nj, ordered=False, chunksize=2, describe=_describe_task,
                        initializer=_init_worker, context=_pool_context(), env=one_thread)
        with contextlib.closing(jobs):
            for r in jobs:
                yield r
                bar.update()
    finally:
        bar.close()


def plan(inputs: ScoreInputs, job: int | None = None, num_jobs: int | None = None):
    """-> (tasks keys, ref, enh, noisy, vad_ref, vad_hyp, missing, extra) for a scoring run."""
    ref = read_scp(inputs.ref_scp)
    enh = read_scp(inputs.enh_scp)
    noisy = read_scp(inputs.noisy_scp) if inputs.noisy_scp else None
    if inputs.segments:   # {utt: UttAudio}: each utterance is its segment of the recording
        segments = read_segments(inputs.segments)
        ref, problems = segment_audio(ref, segments, inputs.segments, inputs.ref_scp)
        if problems:   # the data dir is broken (the validator refuses it): say so before scoring
            raise DataDirError(f"{next(iter(problems.values()))} ({len(problems)} utterance(s) without a "
                               "reference recording)")
        if noisy is not None:   # an utterance without its noisy recording gets no noisy row (warned)
            noisy = segment_audio(noisy, segments, inputs.segments, inputs.noisy_scp)[0]
    vref = read_scp(inputs.vad_ref_scp) if inputs.vad_ref_scp else None
    vhyp = read_scp(inputs.vad_hyp_scp) if inputs.vad_hyp_scp else None
    missing = sorted((k for k in ref if k not in enh), key=lambda k: k.encode())
    extra = sorted((k for k in enh if k not in ref), key=lambda k: k.encode())
    keys = [k for k in ref if k in enh]
    if not keys:   # nothing to score is an input error, not an empty report
        raise DataDirError(no_common_keys(inputs, ref, enh))
    if job is not None:
        keys = job_keys(keys, job, num_jobs or 1)
    return keys, ref, enh, noisy, vref, vhyp, missing, extra


def no_common_keys(inputs: ScoreInputs, ref: dict, enh: dict) -> str:
    """The one-line error for lists without a common utterance."""
    def side(path, d, what):
        return f"{what} {path} is empty" if not d else f"{what} {path} has {len(d)} keys (e.g. {next(iter(d))})"
    if not ref:
        return f"nothing to score: the reference list {inputs.ref_scp} is empty"
    return ("nothing to score: no utterance is in both lists (" + side(inputs.ref_scp, ref, "reference")
            + ", " + side(inputs.enh_scp, enh, "enhanced") + ")")


def score_lists(inputs: ScoreInputs, out_dir: Path, *, nj: int = 1, job: int | None = None,
                num_jobs: int | None = None, opts: ScoreOptions | None = None,
                progress: bool = True) -> tuple[list[UttResult], list[str], list[str]]:
    """Score the utterances of the lists (or a job's share) and write ``out_dir``.

    Returns (results, missing, extra). Split jobs (``job`` given) do not write missing/extra:
    the merge checks the full lists.
    """
    keys, ref, enh, noisy, vref, vhyp, missing, extra = plan(inputs, job, num_jobs)
    opts = opts or ScoreOptions()
    tasks = []
    results: list[UttResult] = []
    for k in keys:
        noisy_src = None
        if noisy is not None:
            noisy_src = noisy.get(k)
            if noisy_src is None:
                log.warning("%s: not in the noisy list %s; no noisy row for it", k, inputs.noisy_scp)
        vr = vref.get(k) if vref is not None else None
        vh = vhyp.get(k) if vhyp is not None else None
        with_vad = vref is not None and vhyp is not None
        # with VAD lists, an utterance lacking labels or a prediction gets NaN VAD and a warning
        tasks.append((k, ref[k], enh[k], noisy_src, vr, vh, opts, with_vad))
    with say_when_interrupted(lambda: f"scored {len(results)} of {len(tasks)} utterances (nothing written "
                                      f"to {out_dir})"):
        for r in run_scoring(tasks, nj=nj, progress=progress):
            results.append(r)
    is_job = job is not None
    write_results(out_dir, results, missing=None if is_job else missing,
                  extra=None if is_job else extra)
    return results, missing, extra


def merge_dirs(split_dirs: list[Path], out_dir: Path, inputs: ScoreInputs) -> tuple[list[UttResult], list[str], list[str], list[str]]:
    """Join split job folders into ``out_dir``. Returns (results, missing, extra, unscored).

    ``unscored``: keys in both lists that no job scored nor reported (a job that died).
    """
    results: dict[str, UttResult] = {}
    for d in split_dirs:
        d = Path(d)
        if not (d / "done").is_file():
            log.error("%s: job output incomplete (no 'done' file); its utterances count as not scored", d)
            continue
        for r in read_results(d):
            if r.utt in results:
                raise ValueError(f"{d}: utterance {r.utt!r} also scored in another job folder")
            results[r.utt] = r
    keys, *_rest, missing, extra = plan(inputs)
    unscored = [k for k in keys if k not in results]
    out = [results[k] for k in keys if k in results]
    for k in unscored:
        out.append(UttResult(k, error="not scored (its scoring job failed or did not run)"))
    foreign = sorted(set(results) - set(keys))
    if foreign:
        log.warning("merge: %d scored utterances are not in both lists and are ignored (e.g. %s)",
                    len(foreign), foreign[0])
    write_results(out_dir, out, missing=missing, extra=extra)
    return out, missing, extra, unscored


def frame_hop_seconds(config: dict | None, fs: int) -> float:
    """Seconds per VAD frame: the STFT hop of the model config (default STFTConfig)."""
    from csmvanet.audio.stft import STFTConfig

    hop = STFTConfig().hop_length
    if config and isinstance(config.get("stft"), dict) and "hop_length" in config["stft"]:
        hop = int(config["stft"]["hop_length"])
    return hop / fs


__all__ = ["LENGTH_TOLERANCE", "ScoreOptions", "ScoreInputs", "length_problem", "score_arrays", "score_utterance",
           "score_lists", "merge_dirs", "job_keys", "run_scoring", "frame_hop_seconds"]
