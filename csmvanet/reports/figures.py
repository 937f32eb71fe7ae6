"""Example figures of a scoring folder: spectrograms (and VAD) of the worst, median and best PESQ gain.

Written by :func:`make_figures` into ``<scoring folder>/figures/`` for RESULTS.md
(:mod:`csmvanet.reports.results_md`); needs matplotlib (``pip install 'csmvanet[report]'``).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from csmvanet.base.atomic_files import atomic_path
from csmvanet.metrics.results import UttResult
from csmvanet.metrics.scoring import ScoreInputs

log = logging.getLogger(__name__)



def pesq_gains(results: list[UttResult]) -> list[tuple[float, str]]:
    """[(PESQ gain, utt)], ascending: enhanced - noisy PESQ (the enhanced PESQ itself when there is
    no noisy row); utterances without a finite PESQ are left out."""
    gains = []
    for r in results:
        if r.error or "enhanced" not in r.scores:
            continue
        e = r.scores["enhanced"].get("pesq", math.nan)
        n = r.scores.get("noisy", {}).get("pesq", 0.0) if "noisy" in r.scores else 0.0
        if math.isfinite(e) and math.isfinite(n):
            gains.append((e - n, r.utt))
    return sorted(gains)


def pick_examples(results: list[UttResult]) -> list[tuple[str, str, float]]:
    """[(label, utt, PESQ gain)] for the worst, median and best PESQ gain (:func:`pesq_gains`)."""
    gains = pesq_gains(results)
    if not gains:
        return []
    picks = [("worst", gains[0]), ("median", gains[(len(gains) - 1) // 2]), ("best", gains[-1])]
    seen, out = set(), []
    for label, (g, u) in picks:
        if u not in seen:
            seen.add(u)
            out.append((label, u, g))
    return out


def _spectrogram_db(x: np.ndarray, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), n_fft)[::hop]
    spec = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    return 10 * np.log10(spec.T + 1e-10)


def make_figure(path: Path, utt: str, title: str, waves: list[tuple[str, np.ndarray]], fs: int,
                vad_ref: np.ndarray | None, vad_hyp: np.ndarray | None, frame_s: float, *,
                threshold: float = 0.5, ref_label: str = "label",
                marks: list[tuple[float, float]] | None = None, marks_label: str = "") -> None:
    """Spectrograms of ``waves`` (one row each) and a VAD row (``vad_ref`` 0/1 per frame drawn as
    ``ref_label``, ``vad_hyp`` the probability); ``marks`` (seconds) are shaded on every row.
    Long signals get a coarser spectrogram hop (at most about 4000 columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows = len(waves) + (1 if vad_ref is not None or vad_hyp is not None else 0)
    fig, axes = plt.subplots(n_rows, 1, figsize=(9, 1.9 * n_rows + 0.6), sharex=True, squeeze=False)
    axes = axes[:, 0]
    hop = max(128, max(len(w) for _, w in waves) // 4000)
    specs = [_spectrogram_db(w, hop=hop) for _, w in waves]
    vmax = max(s.max() for s in specs)
    for ax, (name, w), s in zip(axes, waves, specs):
        ax.imshow(s, origin="lower", aspect="auto", cmap="magma", vmin=vmax - 80, vmax=vmax,
                  extent=[0, len(w) / fs, 0, fs / 2000], interpolation="nearest")
        ax.set_ylabel("kHz")
        ax.set_title(name, fontsize=9, loc="left")
    if n_rows > len(waves):
        ax = axes[-1]
        if vad_ref is not None:
            t = np.arange(len(vad_ref)) * frame_s
            ax.fill_between(t, 0, np.asarray(vad_ref, float), step="mid", color="0.8", label=ref_label)
        if vad_hyp is not None:
            t = np.arange(len(vad_hyp)) * frame_s
            ax.plot(t, vad_hyp, color="C0", lw=1, label="predicted probability")
            ax.axhline(threshold, color="C3", lw=0.6, ls="--", label=f"threshold {threshold:g}")
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel("VAD")
        ax.legend(loc="upper right", fontsize=7)
    for i, (a, b) in enumerate(marks or []):
        for ax in axes:
            ax.axvspan(a, b, color="C2", alpha=0.25, lw=0,
                       label=marks_label if (i == 0 and ax is axes[-1] and marks_label) else None)
    if marks and n_rows > len(waves):
        axes[-1].legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(f"{utt}: {title}", fontsize=10)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.6 / fig.get_figheight(),
                        top=1 - 0.45 / fig.get_figheight(), hspace=0.35)
    jpeg = Path(path).suffix.lower() in (".jpg", ".jpeg")   # spectrograms: a quarter of the PNG's size
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=72, format="jpeg" if jpeg else "png", **({"pil_kwargs": {"quality": 85}} if jpeg else {}))
    plt.close(fig)


def make_figures(out_dir: Path, results: list[UttResult], inputs: ScoreInputs,
                 config: dict | None) -> list[tuple[str, str, float, str]]:
    """Write figures/<label>_<utt>.png for the picked examples; -> [(label, utt, gain, relpath)]."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log.warning("matplotlib is not installed: no figures (pip install 'csmvanet[report]')")
        return []
    import kaldiio

    from csmvanet.audio.io import read_audio
    from csmvanet.data.datadir import read_scp
    from csmvanet.metrics.scoring import frame_hop_seconds

    picks = pick_examples(results)
    if not picks:
        return []
    ref, enh = read_scp(inputs.ref_scp), read_scp(inputs.enh_scp)
    noisy = read_scp(inputs.noisy_scp) if inputs.noisy_scp else {}
    vref = read_scp(inputs.vad_ref_scp) if inputs.vad_ref_scp else {}
    vhyp = read_scp(inputs.vad_hyp_scp) if inputs.vad_hyp_scp else {}
    by_utt = {r.utt: r for r in results}
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for old in fig_dir.glob("*.png"):  # examples of an earlier run
        old.unlink()
    out = []
    for label, utt, gain in picks:
        try:
            waves = []
            if utt in noisy:
                waves.append(("noisy", read_audio(noisy[utt])[0]))
            e, fs = read_audio(enh[utt])
            waves.append(("enhanced", e))
            waves.append(("clean", read_audio(ref[utt])[0]))
            waves = [(n, w if w.ndim == 1 else w[:, 0]) for n, w in waves]
            vr = np.asarray(kaldiio.load_mat(vref[utt])).ravel() if utt in vref else None
            vh = np.asarray(kaldiio.load_mat(vhyp[utt])).ravel() if utt in vhyp else None
            sc = by_utt[utt].scores
            desc = f"{label} PESQ gain {gain:+.2f} (enhanced PESQ {sc['enhanced'].get('pesq', math.nan):.2f})"
            name = f"{label}_{utt}.png"
            make_figure(fig_dir / name, utt, desc, waves, fs, vr, vh, frame_hop_seconds(config, fs))
            out.append((label, utt, gain, f"figures/{name}"))
        except Exception as e:  # a figure must not sink the report
            log.warning("figure for %s failed: %s", utt, e)
    return out
