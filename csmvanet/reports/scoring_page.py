"""report.html of a scoring folder: the tables, per-SNR / per-noise plots and utterances to listen to.

Written by :func:`write_listening_report` beside RESULTS.md (``csmvanet-score --html_report true``;
stage 5 of the recipes). The page is offline and self-contained with its folder: the sampled
utterances are copied as FLAC into ``listen/<NNNN_utt>/`` (noisy, enhanced, clean and the residual
noisy - enhanced, i.e. what the enhancement removed) with a figure of their spectrograms and VAD;
the plots go to ``listen/``. Sample: the worst, median and best PESQ gain, then ``per_snr``
utterances of every SNR (evenly spaced in that SNR's PESQ-gain order).
"""
from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import numpy as np

from csmvanet.base.atomic_files import atomic_path, atomic_write_text
from csmvanet.base.version import __version__
from csmvanet.metrics.results import UttResult
from csmvanet.metrics.scoring import ScoreInputs, frame_hop_seconds
from csmvanet.reports.figures import make_figure, pesq_gains, pick_examples
from csmvanet.reports.html_page import esc, image, kv_list, md_table, page, players, safe_name

log = logging.getLogger(__name__)

LISTEN_DIR = "listen"


def group_order(value: str) -> tuple:
    """Sort key of SNR / noise labels: numbers by value first, then the other labels."""
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def sample_utterances(results: list[UttResult], utt2snr: dict[str, str] | None,
                      per_snr: int = 2) -> list[tuple[str, str, float]]:
    """[(label, utt, PESQ gain)]: worst, median, best, then ``per_snr`` of every SNR (no repeats)."""
    out = list(pick_examples(results))
    seen = {u for _, u, _ in out}
    gains = pesq_gains(results)
    if utt2snr and per_snr > 0:
        for snr in sorted({utt2snr.get(u, "unknown") for _, u in gains}, key=group_order):
            group = [(g, u) for g, u in gains if utt2snr.get(u, "unknown") == snr and u not in seen]
            if not group:
                continue
            idx = sorted({int(round((i + 1) * (len(group) - 1) / (per_snr + 1))) for i in range(per_snr)})
            for i in idx:
                g, u = group[i]
                seen.add(u)
                out.append((f"SNR {snr} dB", u, g))
    return out


def _group_means(results, key_of, metric: str) -> dict[str, dict[str, float]]:
    """{group: {system: mean metric}} over the scored utterances."""
    acc: dict[str, dict[str, list[float]]] = {}
    for r in results:
        if r.error:
            continue
        for system, vals in r.scores.items():
            v = vals.get(metric, math.nan)
            if math.isfinite(v):
                acc.setdefault(key_of(r.utt), {}).setdefault(system, []).append(v)
    return {g: {s: float(np.mean(v)) for s, v in d.items()} for g, d in acc.items()}


def group_plot(path: Path, results: list[UttResult], key_of, what: str, title: str) -> bool:
    """PESQ and STOI means of Noisy and enhanced per group (``key_of(utt)``); False without data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(m, _group_means(results, key_of, m)) for m in ("pesq", "stoi")]
    groups = sorted(panels[0][1], key=group_order)
    if not groups:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    x = np.arange(len(groups))
    for ax, (metric, means) in zip(axes, panels):
        for k, (system, label) in enumerate((("noisy", "Noisy"), ("enhanced", title))):
            ys = [means.get(g, {}).get(system, math.nan) for g in groups]
            if all(not math.isfinite(y) for y in ys):
                continue
            ax.bar(x + (k - 0.5) * 0.38, ys, width=0.38, label=label, color=("0.6", "C0")[k])
        ax.set_xticks(x, groups, rotation=30 if len(groups) > 6 else 0, fontsize=8)
        ax.set_xlabel(what)
        ax.set_title(metric.upper(), fontsize=10)
        ax.grid(axis="y", lw=0.3)
        if metric == "pesq":
            ax.set_ylim(1, 4.6)
            ax.legend(fontsize=8)
        else:
            ax.set_ylim(0, 1)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=72, format="png")
    plt.close(fig)
    return True


def _write_clip(path: Path, wave: np.ndarray, fs: int) -> str:
    """FLAC, 16 bit; a wave peaking above 1 (a residual can) is scaled down: -> a note or ''."""
    from csmvanet.audio.io import write_audio

    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    note = ""
    if peak > 0.999:
        wave = wave * (0.999 / peak)
        note = f" (scaled by {0.999 / peak:.2f}: it peaked at {peak:.2f})"
    write_audio(path, wave.astype(np.float32), fs, "PCM_16")
    return note


def _utterance_section(out_dir: Path, index: int, label: str, utt: str, gain: float, res: UttResult,
                       tables: dict, fs_frame, vad_threshold: float) -> str:
    import kaldiio

    from csmvanet.metrics.scoring import _read_mono

    name = safe_name(utt, index)
    folder = out_dir / LISTEN_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    waves = {}
    src = tables["noisy"].get(utt)
    if src is not None:
        waves["noisy"] = _read_mono(src, "noisy")
    waves["enhanced"] = _read_mono(tables["enh"][utt], "enhanced")
    waves["clean"] = _read_mono(tables["ref"][utt], "reference")
    fs = waves["enhanced"][1]
    n = min(len(w) for w, _ in waves.values())
    sig = {k: w[:n] for k, (w, _) in waves.items()}
    if "noisy" in sig:
        sig["residual"] = sig["noisy"] - sig["enhanced"]
    captions = {"noisy": "noisy (input)", "enhanced": "enhanced", "clean": "clean (reference)",
                "residual": "residual: noisy - enhanced (what was removed)"}
    audio, notes = [], []
    for k in ("noisy", "enhanced", "clean", "residual"):
        if k in sig:
            note = _write_clip(folder / f"{k}.flac", sig[k], fs)
            audio.append((f"{LISTEN_DIR}/{name}/{k}.flac", f"{captions[k]}: {utt}"))
            if note:
                notes.append(f"{k}{note}")
    vr = vh = None
    if utt in tables["vref"]:
        vr = np.asarray(kaldiio.load_mat(tables["vref"][utt])).ravel()
    if utt in tables["vhyp"]:
        vh = np.asarray(kaldiio.load_mat(tables["vhyp"][utt])).ravel()
    fig_rel = f"{LISTEN_DIR}/{name}/spectrogram.jpg"
    make_figure(out_dir / fig_rel, utt, f"{label}, PESQ gain {gain:+.2f}",
                [(captions[k], sig[k]) for k in ("noisy", "enhanced", "clean", "residual") if k in sig],
                fs, vr, vh, fs_frame(fs), threshold=vad_threshold)
    sc = res.scores
    cells = []
    for key, lab, dec in (("pesq", "PESQ", 2), ("stoi", "STOI", 3), ("si_sdr", "SI-SDR", 1), ("vad_f1", "VAD F1", 3)):
        e = sc.get("enhanced", {}).get(key, math.nan)
        nz = sc.get("noisy", {}).get(key, math.nan)
        if math.isfinite(e):
            cells.append(f"{lab} {e:.{dec}f}" + (f" (noisy {nz:.{dec}f})" if math.isfinite(nz) else ""))
    alt = (f"Spectrograms of {', '.join(k for k in sig)} for {utt}"
           + (" and its VAD probability against the labels" if vh is not None else ""))
    return (f'<section class="utt" aria-labelledby="u{index}"><h3 id="u{index}">{esc(label)}: {esc(utt)} '
            f'(PESQ gain {gain:+.2f})</h3><p class="note">{esc("; ".join(cells))}, {n / fs:.2f} s'
            + (f'; {esc("; ".join(notes))}' if notes else "") + "</p>"
            + players(audio) + image(fig_rel, alt) + "</section>")


def write_listening_report(out_dir: Path, results: list[UttResult], inputs: ScoreInputs, *,
                           title: str, config: dict | None, utt2noise: dict | None, utt2snr: dict | None,
                           summary: list[tuple[str, object]], table1_md: str, table2_md: str | None,
                           vad_md: str | None, vad_threshold: float = 0.5, per_snr: int = 2) -> Path:
    """Write out_dir/report.html (+ listen/). Returns its path. Needs matplotlib."""
    from csmvanet.data.datadir import read_scp

    out_dir = Path(out_dir)
    listen = out_dir / LISTEN_DIR
    if listen.exists():   # an earlier run's sample
        shutil.rmtree(listen)
    listen.mkdir(parents=True)
    body = [f"<h1>{esc(title)}: listening report</h1>",
            '<nav aria-label="sections"><a href="#summary">Summary</a><a href="#tables">Tables</a>'
            '<a href="#plots">Plots</a><a href="#listen">Listen</a></nav>',
            '<h2 id="summary">Summary</h2>', kv_list(summary),
            '<p class="note">Full tables, environment and config: <a href="RESULTS.md">RESULTS.md</a>; '
            "per-utterance scores: <code>enhanced/&lt;metric&gt;</code>, <code>noisy/&lt;metric&gt;</code>.</p>",
            '<h2 id="tables">Table I layout (mean over utterances)</h2>', md_table(table1_md)]
    if vad_md:
        body += ["<h2>VAD</h2>", md_table(vad_md)]
    if table2_md:
        body += ["<h2>Table II layout (PESQ / STOI by noise type and SNR)</h2>", md_table(table2_md)]
    body.append('<h2 id="plots">By SNR and by noise type</h2>')
    plots = 0
    for name, table, what in (("by_snr", utt2snr, "SNR (dB)"), ("by_noise", utt2noise, "noise type")):
        if table and group_plot(listen / f"{name}.png", results, lambda u, t=table: t.get(u, "unknown"), what, title):
            body.append(image(f"{LISTEN_DIR}/{name}.png", f"Bar chart: mean PESQ and STOI of Noisy and "
                                                          f"{title} by {what}"))
            plots += 1
    if not plots:
        body.append('<p class="note">No utt2snr / utt2noise given: no plots.</p>')

    ref, enh = read_scp(inputs.ref_scp), read_scp(inputs.enh_scp)
    tables = {"ref": ref, "enh": enh, "noisy": read_scp(inputs.noisy_scp) if inputs.noisy_scp else {},
              "vref": read_scp(inputs.vad_ref_scp) if inputs.vad_ref_scp else {},
              "vhyp": read_scp(inputs.vad_hyp_scp) if inputs.vad_hyp_scp else {}}
    if inputs.segments:
        from csmvanet.data.datadir import read_segments
        from csmvanet.data.utt_audio import segment_audio

        segs = read_segments(inputs.segments)
        tables["ref"] = segment_audio(ref, segs)[0]
        tables["noisy"] = segment_audio(tables["noisy"], segs)[0] if tables["noisy"] else {}
    picks = sample_utterances(results, utt2snr, per_snr)
    by_utt = {r.utt: r for r in results}
    body += ['<h2 id="listen">Listen</h2>',
             f'<p class="note">{len(picks)} utterances: the worst, median and best PESQ gain'
             + (f", then {per_snr} per SNR" if utt2snr else "") + ". Residual = noisy - enhanced: what the "
             "enhancement removed (speech heard in it was lost). Figures: spectrograms (dB) and the VAD "
             f"probability (line) against the labels (grey), threshold {vad_threshold:g}.</p>"]
    frame = (lambda fs: frame_hop_seconds(config, fs))
    for i, (label, utt, gain) in enumerate(picks):
        try:
            body.append(_utterance_section(out_dir, i, label, utt, gain, by_utt[utt], tables, frame, vad_threshold))
        except Exception as e:  # noqa: BLE001 - one utterance must not sink the report
            log.warning("listening report: %s left out: %s", utt, e)
            body.append(f'<p class="warn">{esc(utt)}: left out ({esc(e)})</p>')
    path = out_dir / "report.html"
    atomic_write_text(path, page(f"{title}: listening report", "\n".join(body), __version__))
    return path


__all__ = ["write_listening_report", "sample_utterances", "group_plot", "LISTEN_DIR"]
