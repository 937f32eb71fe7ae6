"""RESULTS.md of a scoring folder: environment, config, Table I / Table II layouts, figures.

Means are taken over the utterances where a metric is defined (NaN values, e.g. PESQ of a silent
reference, are excluded and counted). VAD accuracy, precision, recall and F1 are pooled over all
frames of all utterances (from the per-utterance counts); VAD AUC is the mean of the per-utterance
AUCs (utterances with both classes).
"""
from __future__ import annotations

import datetime as _dt
import math
import platform
from pathlib import Path

import numpy as np
import yaml

from csmvanet.base.atomic_files import atomic_write_text
from csmvanet.base.config import parse_yaml
from csmvanet.base.version import __version__, git_hash
from csmvanet.metrics.basic import STOI_IMPL, pesq_impl, vad_from_counts
from csmvanet.metrics.results import UttResult
from csmvanet.metrics.scoring import ScoreInputs
from csmvanet.reports.figures import make_figures
from csmvanet.reports.scoring_page import group_order

# Table I of the paper, then our extra columns: (label, metric key, decimals)
TABLE1 = [("PESQ", "pesq", 2), ("STOI", "stoi", 3), ("CSIG", "csig", 2), ("CBAK", "cbak", 2),
          ("COVL", "covl", 2), ("segSNR", "segsnr", 2), ("SI-SDR", "si_sdr", 2), ("VAD F1", "vad_f1", 3)]
VAD_COLS = [("Accuracy", "vad_acc"), ("Precision", "vad_precision"), ("Recall", "vad_recall"),
            ("F1", "vad_f1"), ("AUC", "vad_auc")]
COMPOSITE_IMPL = ("csmvanet composite (Loizou composite.m conventions: 30 ms Hann frames, 75 % "
                  "overlap, LPC order 16 at 16 kHz, 25-band WSS, segSNR clamped to [-10, 35] dB, "
                  "best 95 % of frames for LLR/WSS, CSIG/CBAK/COVL clamped to [1, 5])")
SISDR_IMPL = "csmvanet SI-SDR (zero-mean signals, Le Roux et al. 2019)"


# ---------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------

def system_means(results: list[UttResult], system: str) -> tuple[dict[str, float], dict[str, int]]:
    """(mean per metric over defined values, number of NaN per metric) of one system."""
    rows = [r.scores[system] for r in results if r.error is None and system in r.scores]
    keys = sorted({k for row in rows for k in row})
    means, nans = {}, {}
    for k in keys:
        vals = np.array([row.get(k, math.nan) for row in rows], dtype=np.float64)
        ok = np.isfinite(vals)
        nans[k] = int((~ok).sum())
        means[k] = float(vals[ok].mean()) if ok.any() else math.nan
    if rows and "vad_tp" in keys:
        tot = {c: sum(row.get(f"vad_{c}", 0) for row in rows
                      if np.isfinite(row.get(f"vad_{c}", math.nan))) for c in ("tp", "fp", "fn", "tn")}
        means.update(vad_from_counts(tot["tp"], tot["fp"], tot["fn"], tot["tn"]))
        for c, v in tot.items():
            means[f"vad_{c}"] = v
    means["num_utts"] = len(rows)
    return means, nans


def _all_speech(means: dict) -> list[float]:
    """VAD_COLS values of the baseline deciding 'speech' for every frame (pooled counts of ``means``)."""
    pos = means["vad_tp"] + means["vad_fn"]
    neg = means["vad_fp"] + means["vad_tn"]
    base = vad_from_counts(pos, neg, 0, 0)
    return [base.get(k, math.nan) for _, k in VAD_COLS]


def _fmt(v, dec: int) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{float(v):.{dec}f}"


def _norm(s: str) -> str:
    return "".join(c for c in str(s).lower() if c.isalnum())


def load_published(path: Path) -> list[dict]:
    """Published rows from YAML (a mapping, a list of mappings, or {rows: [...]}) or TSV (header
    row; a ``name`` column). Keys are matched to the Table I labels ignoring case and punctuation."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"published results file not found: {path}")
    text = path.read_text()
    if path.suffix.lower() in (".tsv", ".txt"):
        lines = [ln.split("\t") for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        if len(lines) < 2:
            raise ValueError(f"{path}: a TSV needs a header line and at least one row")
        head = [h.strip() for h in lines[0]]
        rows = [dict(zip(head, (c.strip() for c in ln))) for ln in lines[1:]]
    else:
        data = parse_yaml(text, path)
        if isinstance(data, dict) and "rows" in data:
            data = data["rows"]
        rows = data if isinstance(data, list) else [data]
    out = []
    labels = {_norm(lab): key for lab, key, _ in TABLE1}
    labels.update({_norm(key): key for _, key, _ in TABLE1})
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"{path}: row {i + 1} is not a mapping")
        name = str(row.get("name", row.get("system", f"row {i + 1}")))
        vals = {}
        for k, v in row.items():
            key = labels.get(_norm(k))
            if key is not None and v not in (None, "", "-"):
                try:
                    vals[key] = float(v)
                except (TypeError, ValueError):
                    raise ValueError(f"{path}: row {name!r}: {k} = {v!r} is not a number") from None
        unknown = [k for k in row if _norm(k) not in labels and _norm(k) not in ("name", "system", "source", "note")]
        if unknown:
            raise ValueError(f"{path}: row {name!r}: unknown column(s) {unknown}; "
                             f"use {[lab for lab, _, _ in TABLE1]}")
        vals["name"] = name
        if row.get("source"):
            vals["source"] = str(row["source"])
        out.append(vals)
    return out


def table1(results: list[UttResult], title: str, published: list[dict] | None = None) -> str:
    head = "| System | " + " | ".join(lab for lab, _, _ in TABLE1) + " |"
    sep = "|---|" + "---:|" * len(TABLE1)
    lines = [head, sep]
    for system, label in (("noisy", "Noisy"), ("enhanced", title)):
        if not any(system in r.scores for r in results):
            continue
        means, _ = system_means(results, system)
        cells = [_fmt(means.get(key), dec) if not (system == "noisy" and key.startswith("vad"))
                 else "n/a" for _, key, dec in TABLE1]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for row in published or []:
        cells = [_fmt(row.get(key), dec) for _, key, dec in TABLE1]
        lines.append(f"| *{row['name']} (published)* | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table2(results: list[UttResult], utt2noise: dict[str, str] | None,
           utt2snr: dict[str, str] | None, title: str) -> str:
    """Rows: SNR x {Noisy, Enhanced}; columns: noise type (PESQ, STOI) and the average."""
    ok = [r for r in results if r.error is None]
    noise_of = (lambda u: utt2noise.get(u, "unknown")) if utt2noise else (lambda u: "all")
    snr_of = (lambda u: utt2snr.get(u, "unknown")) if utt2snr else (lambda u: "all")
    noises = sorted({noise_of(r.utt) for r in ok})
    snrs = sorted({snr_of(r.utt) for r in ok}, key=group_order)
    systems = [(s, lab) for s, lab in (("noisy", "Noisy"), ("enhanced", title))
               if any(s in r.scores for r in ok)]

    def mean(rows, system, key):
        vals = [r.scores[system].get(key, math.nan) for r in rows if system in r.scores]
        vals = [v for v in vals if math.isfinite(v)]
        return (sum(vals) / len(vals), len(vals)) if vals else (math.nan, 0)

    head = "| SNR (dB) | System | " + " | ".join(f"{n} PESQ | {n} STOI" for n in noises + ["Average"]) + " |"
    sep = "|---|---|" + "---:|---:|" * (len(noises) + 1)
    lines = [head, sep]
    for snr in snrs + ["Average"]:
        for system, label in systems:
            cells = []
            for noise in noises + ["Average"]:
                rows = [r for r in ok if (snr == "Average" or snr_of(r.utt) == snr)
                        and (noise == "Average" or noise_of(r.utt) == noise)]
                cells += [_fmt(mean(rows, system, "pesq")[0], 2), _fmt(mean(rows, system, "stoi")[0], 3)]
            lines.append(f"| {snr} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------

def _pkg_version(pkg: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"


def environment(pesq_mode: str | None) -> dict[str, str]:
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "host": platform.node() or "unknown",
        "python": platform.python_version(),
        "csmvanet": __version__,
        "git": git_hash(),
        "numpy": _pkg_version("numpy"),
        "torch": _pkg_version("torch"),
        "pesq": _pkg_version("pesq"),
        "pystoi": _pkg_version("pystoi"),
        "kaldiio": _pkg_version("kaldiio"),
        "PESQ implementation": pesq_impl(pesq_mode),
        "STOI implementation": STOI_IMPL,
        "CSIG/CBAK/COVL, LLR, WSS, segSNR": COMPOSITE_IMPL,
        "SI-SDR": SISDR_IMPL,
    }


# ---------------------------------------------------------------------------------------------
# RESULTS.md
# ---------------------------------------------------------------------------------------------

def _key_list(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(f"`{k}`" for k in keys[:limit])
    return shown + (f" ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def write_report(out_dir: Path, results: list[UttResult], inputs: ScoreInputs, *,
                 missing: list[str], extra: list[str], title: str = "Enhanced",
                 config_file: Path | None = None, published: Path | None = None,
                 utt2noise: Path | None = None, utt2snr: Path | None = None,
                 pesq_mode: str | None = None, figures: bool = True, vad_threshold: float = 0.5,
                 html: bool = False) -> Path:
    """Write out_dir/RESULTS.md (+ summary.yaml, figures/). Returns the RESULTS.md path.
    ``vad_threshold``: the decision threshold the VAD metrics were computed with (named in the report).
    ``html``: also out_dir/report.html, the listening report (:mod:`csmvanet.reports.scoring_page`)."""
    from csmvanet.base.config import load_config
    from csmvanet.data.datadir import read_scp
    out_dir = Path(out_dir)
    config = load_config(config_file) if config_file else None
    pub_rows = load_published(published) if published else []
    u2n = read_scp(utt2noise) if utt2noise else None
    u2s = read_scp(utt2snr) if utt2snr else None
    mode = pesq_mode  # None: wb at 16 kHz, nb at 8 kHz
    env = environment(mode)
    errors = [(r.utt, r.error) for r in results if r.error]
    scored = [r for r in results if r.error is None]

    md = [f"# {title}: scoring results", ""]
    md += ["## Environment", ""] + [f"- {k}: {v}" for k, v in env.items()] + [""]
    md += [f"- reference list: `{inputs.ref_scp}`", f"- enhanced list: `{inputs.enh_scp}`"]
    if inputs.noisy_scp:
        md.append(f"- noisy list: `{inputs.noisy_scp}`")
    if inputs.vad_ref_scp:
        md += [f"- VAD labels: `{inputs.vad_ref_scp}`", f"- VAD predictions: `{inputs.vad_hyp_scp}` "
               f"(speech when probability >= {vad_threshold:g})"]
    md.append("")

    md += ["## Utterances", ""]
    n_pesq_nan = {s: system_means(results, s)[1].get("pesq", 0) for s in ("noisy", "enhanced")}
    md.append(f"- scored: {len(scored)}")
    md.append(f"- not scored (errors, listed in `errors`): {len(errors)}"
              + (": " + _key_list([u for u, _ in errors]) if errors else ""))
    md.append(f"- in the reference list but not enhanced (`missing`): {len(missing)}"
              + (": " + _key_list(missing) if missing else ""))
    md.append(f"- enhanced but not in the reference list, ignored (`extra`): {len(extra)}"
              + (": " + _key_list(extra) if extra else ""))
    md.append(f"- PESQ undefined (e.g. no utterance in the reference; NaN, excluded from the means): "
              f"enhanced {n_pesq_nan['enhanced']}, noisy {n_pesq_nan['noisy']}")
    n_warn = sum(len(r.warnings) for r in results)
    md.append(f"- warnings (trimmed lengths, ...; listed in `warnings`): {n_warn}")
    md.append("")

    t1 = table1(results, title, pub_rows)
    md += ["## Table I layout (mean over utterances)", "", t1, ""]
    md.append("Columns: PESQ (" + {"wb": "wide-band P.862.2", "nb": "narrow-band P.862"}.get(
        mode, "wide-band P.862.2 at 16 kHz, narrow-band P.862 at 8 kHz") + "), STOI, CSIG/CBAK/COVL (Hu & Loizou 2008), segSNR (dB), SI-SDR (dB), "
              "VAD F1 (frames pooled over utterances). Rows in italics are published numbers copied "
              "from the file given with --published, not measured here.")
    for row in pub_rows:
        if row.get("source"):
            md.append(f"- {row['name']}: {row['source']}")
    md.append("")
    ens, ens_nan = system_means(results, "enhanced")
    if "vad_tp" in ens:
        md += ["## VAD", "", "| " + " | ".join(lab for lab, _ in VAD_COLS) + " | Decision |",
               "|" + "---:|" * len(VAD_COLS) + "---|",
               "| " + " | ".join(_fmt(ens.get(k), 3) for _, k in VAD_COLS) + " | model |",
               "| " + " | ".join(_fmt(v, 3) for v in _all_speech(ens)) + " | every frame speech |", "",
               f"Accuracy, precision, recall and F1 pool the frames of all utterances "
               f"(tp {ens['vad_tp']}, fp {ens['vad_fp']}, fn {ens['vad_fn']}, tn {ens['vad_tn']}); "
               f"AUC is the mean of per-utterance AUCs ({ens_nan.get('vad_auc', 0)} utterances "
               f"without both classes excluded). The second row is the baseline that calls every frame "
               f"speech (recall 1; AUC undefined).", ""]
    t2 = table2(results, u2n, u2s, title) if (u2n or u2s) else None
    if t2:
        md += ["## Table II layout (PESQ / STOI by noise type and SNR)", "", t2, ""]
    others = {s: system_means(results, s)[0] for s in ("noisy", "enhanced")
              if any(s in r.scores for r in results)}
    md += ["## Other measures (mean)", "", "| System | LLR | WSS |", "|---|---:|---:|"]
    for s, m in others.items():
        md.append(f"| {'Noisy' if s == 'noisy' else title} | {_fmt(m.get('llr'), 3)} | {_fmt(m.get('wss'), 2)} |")
    md.append("")

    figs = make_figures(out_dir, results, inputs, config) if figures else []
    if figs:
        md += ["## Examples (worst, median and best PESQ gain)", ""]
        for label, utt, gain, rel in figs:
            md += [f"### {label}: {utt} (PESQ gain {gain:+.2f})", "", f"![{label} {utt}]({rel})", ""]
    if config is not None:
        md += ["## Config", "", f"From `{config_file}`:", "", "```yaml",
               Path(config_file).read_text().rstrip(), "```", ""]
    md += ["Per-utterance scores: `enhanced/<metric>` and `noisy/<metric>` (`utt value`, Kaldi style).", ""]

    summary = {"title": title, "num_scored": len(scored), "num_errors": len(errors),
               "num_missing": len(missing), "num_extra": len(extra),
               "means": {s: {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                             for k, v in m.items()} for s, m in others.items()},
               "environment": env}
    atomic_write_text(out_dir / "summary.yaml", yaml.safe_dump(summary, sort_keys=False))
    path = out_dir / "RESULTS.md"
    atomic_write_text(path, "\n".join(md))
    if html and figures:
        _html_report(out_dir, results, inputs, title=title, config=config, utt2noise=u2n, utt2snr=u2s, table1_md=t1,
                     table2_md=t2, md=md, vad_threshold=vad_threshold,
                     summary=[("scored", len(scored)), ("errors", len(errors)), ("missing", len(missing)),
                              ("extra", len(extra)), ("date", env["date"]), ("csmvanet", f"{env['csmvanet']} "
                              f"({env['git']})"), ("PESQ", env["PESQ implementation"])])
    return path


def _html_report(out_dir: Path, results, inputs, *, md: list[str], **kw) -> None:
    """report.html beside RESULTS.md; a failure (no matplotlib, ...) is logged, RESULTS.md stands."""
    import logging

    try:
        from csmvanet.reports.scoring_page import write_listening_report

        vad = []
        if "## VAD" in md:   # the table right under the heading
            for ln in md[md.index("## VAD") + 2:]:
                if not ln.startswith("|"):
                    break
                vad.append(ln)
        path = write_listening_report(out_dir, results, inputs, vad_md="\n".join(vad) or None, **kw)
        logging.getLogger(__name__).info("wrote %s", path)
    except ImportError as e:
        logging.getLogger(__name__).warning("no report.html: %s (pip install 'csmvanet[report]')", e)
    except Exception as e:  # noqa: BLE001 - the listening page is an extra: RESULTS.md and the scores stand
        logging.getLogger(__name__).error("no report.html: %s: %s", type(e).__name__, e)


def write_sets_report(out_dir: Path, sets: list[tuple[str, Path]], title: str) -> Path:
    """out_dir/RESULTS.md for several scored sets (``[(set name, scoring folder)]``, in order): a
    summary table (Table I columns, the Noisy and the enhanced row of every set), then each set's
    own RESULTS.md with its figure links made relative to out_dir. A set whose folder holds no
    report (scoring failed before writing it) is named in the summary as not scored."""
    import os

    out_dir = Path(out_dir)
    head = "| Set | System | Utterances | " + " | ".join(lab for lab, _, _ in TABLE1) + " |"
    rows = [head, "|---|---|---:|" + "---:|" * len(TABLE1)]
    sections = []
    for name, folder in sets:
        folder = Path(folder)
        summary_file, report_file = folder / "summary.yaml", folder / "RESULTS.md"
        if not (summary_file.is_file() and report_file.is_file()):
            rows.append(f"| {name} | not scored: no {report_file} | | " + " | ".join("-" for _ in TABLE1) + " |")
            continue
        summary = parse_yaml(summary_file.read_text(), summary_file) or {}
        means = summary.get("means") or {}
        for system, label in (("noisy", "Noisy"), ("enhanced", summary.get("title", title))):
            if system not in means:
                continue
            m = means[system] or {}
            cells = ["n/a" if system == "noisy" and key.startswith("vad") else
                     _fmt(m.get(key), dec) for _, key, dec in TABLE1]
            rows.append(f"| {name} | {label} | {m.get('num_utts', '-')} | " + " | ".join(cells) + " |")
        rel = Path(os.path.relpath(folder, out_dir)).as_posix()
        text = report_file.read_text().replace("](figures/", f"]({rel}/figures/")
        lines = text.splitlines()
        if lines and lines[0].startswith("# "):
            lines[0] = f"# Set {name}: {lines[0][2:]} (`{rel}/`)"
        sections.append("\n".join(lines).rstrip())
    names = ", ".join(name for name, _ in sets)
    md = [f"# {title}: results on {names}", "",
          "## Summary (mean over the utterances of each set)", "", "\n".join(rows), "",
          "Each set's full report follows (environment, utterance counts, Table I/II layouts, VAD, "
          "figures, config); per-utterance scores are in its scoring folder.", ""]
    path = out_dir / "RESULTS.md"
    atomic_write_text(path, "\n".join(md + ["\n\n".join(sections), ""]))
    return path
