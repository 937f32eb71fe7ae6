"""Listening report and residual files for a user's own files (csmvanet-enhance --report / --residual_dir).

No clean reference exists, so the page shows what can be judged without one: players for the input,
the output and the **residual** (input - output: what the enhancement removed), spectrograms, the
VAD probability with the speech segments, the settings used, the real-time factor, and a
"speech removed?" list.

Speech removed? (:func:`removed_stretches`): at every VAD frame the energies of input and output
(within the model's band: signals above the model's rate are resampled to it first) are summed over
``window`` seconds (default 0.1 s) around it; a frame is flagged where the VAD probability is at or above the VAD threshold, the output lost at least ``removed_share`` of the
input's energy (default 0.9: the output is 10 dB or more below the input) and the input is not
near silence (within 60 dB of its loudest window). Flagged frames less than 0.1 s apart are joined
and stretches shorter than 0.2 s dropped. Removing noise takes away a large share only when the
noise dominates (at 0 dB SNR removing all the noise removes 50 % of the energy, at -10 dB 90 %), so
a flagged stretch is either very noisy or speech the model suppressed: listen to it.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from csmvanet.audio.io import read_audio, write_audio
from csmvanet.audio.stft import STFTConfig
from csmvanet.base.atomic_files import atomic_write_text
from csmvanet.base.version import __version__
from csmvanet.data.utt_audio import UttAudio, read_utterance
from csmvanet.data.vad import probs_to_segments
from csmvanet.reports.figures import make_figure
from csmvanet.reports.html_page import esc, fmt_seconds, image, kv_list, page, players, safe_name, table

log = logging.getLogger(__name__)

REMOVED_SHARE = 0.9      # default --removed_share
SILENCE_DB = 60.0        # windows more than this far below the loudest one are not judged


@dataclass
class Stretch:
    start: float          # seconds
    end: float
    removed: float        # share of the input's energy removed over the stretch (0..1)
    vad: float            # mean VAD probability


@dataclass
class InputPage:
    key: str
    source: str
    output: str
    duration: float = 0.0
    seconds: float = math.nan          # processing time of this input
    speech: list = field(default_factory=list)      # VAD segments (s)
    stretches: list = field(default_factory=list)   # Stretch
    page: str = ""                      # relative path of its page
    removed_all: float = math.nan       # share of the input's energy removed, whole file
    removed_speech: float = math.nan    # ... within the VAD's speech segments


def read_input(source: str | UttAudio) -> tuple[np.ndarray, int]:
    """Samples [N, C] and rate of an input (a path, scp value or segment)."""
    if isinstance(source, UttAudio):
        return read_utterance(source, always_2d=True)
    return read_audio(source, always_2d=True)


def residual_of(inp: np.ndarray, out: np.ndarray) -> np.ndarray:
    """input - output, both [N, C]; a mono output of a multi-channel input (--channels mix) is
    compared with the channel average."""
    n = min(len(inp), len(out))
    if out.shape[1] != inp.shape[1]:
        inp = inp.mean(axis=1, keepdims=True)
    return inp[:n] - out[:n]


def in_model_band(x: np.ndarray, fs: int, model_rate: int) -> tuple[np.ndarray, int]:
    """x [N, C] at ``fs`` resampled to the model's rate when above it: the energy comparisons judge
    only the band the model works in (above its Nyquist the output holds nothing of the input)."""
    from csmvanet.audio.io import resample

    if fs <= model_rate:
        return x, fs
    return resample(np.ascontiguousarray(x, dtype=np.float32), fs, model_rate), model_rate


def removed_share_of(inp: np.ndarray, out: np.ndarray, fs: int, spans: list | None = None) -> float:
    """Share of the input's energy the output removed (1 - E_out / E_in; [N, C] both), over the whole
    signal or over ``spans`` (seconds); NaN where the input has no energy there."""
    if out.shape[1] != inp.shape[1]:
        inp = inp.mean(axis=1, keepdims=True)
    n = min(len(inp), len(out))
    keep = np.ones(n, bool) if spans is None else np.zeros(n, bool)
    for a, b in spans or []:
        keep[int(a * fs):int(b * fs)] = True
    e_in = float(np.sum(inp[:n][keep].astype(np.float64) ** 2))
    e_out = float(np.sum(out[:n][keep].astype(np.float64) ** 2))
    return 1.0 - e_out / e_in if e_in > 0 else math.nan


def _window_energy(x: np.ndarray, centres: np.ndarray, half: int) -> np.ndarray:
    """Energy (summed over channels) of x [N, C] in [c - half, c + half) around each centre."""
    e = np.concatenate([[0.0], np.cumsum(np.sum(x.astype(np.float64) ** 2, axis=1))])
    lo = np.clip(centres - half, 0, len(x))
    hi = np.clip(centres + half, 0, len(x))
    return e[hi] - e[lo]


def removed_stretches(inp: np.ndarray, out: np.ndarray, fs: int, vad: np.ndarray, stft_cfg: STFTConfig,
                      *, vad_threshold: float = 0.5, removed_share: float = REMOVED_SHARE,
                      window: float = 0.1, min_len: float = 0.2, min_gap: float = 0.1) -> list[Stretch]:
    """Stretches where the VAD says speech and the output removed >= ``removed_share`` of the input's
    energy (module docstring). ``inp``/``out`` [N, C] at ``fs``; ``vad`` per frame of ``stft_cfg``."""
    inp = inp if inp.ndim == 2 else inp[:, None]
    out = out if out.ndim == 2 else out[:, None]
    if out.shape[1] != inp.shape[1]:
        inp = inp.mean(axis=1, keepdims=True)
    inp, _ = in_model_band(inp, fs, stft_cfg.sample_rate)
    out, fs = in_model_band(out, fs, stft_cfg.sample_rate)
    n = min(len(inp), len(out))
    vad = np.asarray(vad, dtype=np.float64).ravel()
    if n == 0 or vad.size == 0:
        return []
    frame_s = stft_cfg.hop_length / stft_cfg.sample_rate
    centres = np.round(np.arange(vad.size) * frame_s * fs).astype(np.int64)
    half = max(1, int(round(window * fs / 2)))
    e_in = _window_energy(inp[:n], centres, half)
    e_out = _window_energy(out[:n], centres, half)
    loud = e_in > (e_in.max() * 10 ** (-SILENCE_DB / 10)) if e_in.max() > 0 else np.zeros_like(e_in, bool)
    lost = e_out <= (1.0 - removed_share) * e_in
    flag = (vad >= vad_threshold) & lost & loud & (centres < n)
    segs = probs_to_segments(flag.astype(np.float64), stft_cfg, threshold=0.5, min_speech=min_len,
                             min_silence=min_gap, num_samples=int(round(n / fs * stft_cfg.sample_rate)))
    out_list = []
    for a, b in segs:
        i0, i1 = int(math.floor(a / frame_s + 0.5)), int(math.ceil(b / frame_s + 0.5))
        s0, s1 = int(a * fs), int(b * fs)
        ein = float(np.sum(inp[s0:s1].astype(np.float64) ** 2))
        eout = float(np.sum(out[s0:s1].astype(np.float64) ** 2))
        sel = flag[i0:i1] if flag[i0:i1].any() else np.ones(len(vad[i0:i1]), bool)
        out_list.append(Stretch(a, b, 1.0 - eout / ein if ein > 0 else 0.0, float(np.mean(vad[i0:i1][sel]))))
    return out_list


def _pct(v: float, long: bool = False) -> str:
    """A removed share as text: '36% (-2.0 dB)' (long: '36% of the energy removed (-2.0 dB)');
    a negative share means the output is louder: '+2.2 dB louder'."""
    if not math.isfinite(v):
        return "-"
    db = 10 * math.log10(max(1.0 - v, 1e-12))
    if v < 0:
        return f"{db:+.1f} dB louder" + (" (nothing removed)" if long else "")
    return f"{v:.0%}" + (" of the energy removed" if long else "") + f" ({db:+.1f} dB)"


SEEK_JS = """<script>
document.addEventListener("click",function(e){var b=e.target.closest("[data-seek]");if(!b)return;
 var a=document.getElementById(b.getAttribute("data-player"));a.currentTime=parseFloat(b.getAttribute("data-seek"));
 a.play();});
</script>"""


def _input_page(rep_dir: Path, index: int, item: InputPage, src, vad: np.ndarray | None, stft_cfg: STFTConfig,
                vad_threshold: float, removed_share: float, settings: list, residual: np.ndarray | None) -> None:
    name = safe_name(item.key, index)
    folder = rep_dir / "files" / name
    inp, fs = read_input(src)
    out, fs_out = read_audio(item.output, always_2d=True)
    res = residual if residual is not None else residual_of(inp, out)
    item.duration = len(inp) / fs
    band_in, _ = in_model_band(inp if out.shape[1] == inp.shape[1] else inp.mean(axis=1, keepdims=True), fs,
                               stft_cfg.sample_rate)
    band_out, band_fs = in_model_band(out, fs, stft_cfg.sample_rate)
    item.removed_all = removed_share_of(band_in, band_out, band_fs)
    if item.speech:
        item.removed_speech = removed_share_of(band_in, band_out, band_fs, item.speech)
    audio = []
    for k, w, cap in (("input", inp, "input"), ("output", out, "output (enhanced)"),
                      ("residual", res, "residual: input - output (what was removed)")):
        peak = float(np.max(np.abs(w))) if w.size else 0.0
        write_audio(folder / f"{k}.flac", (w / peak * 0.999 if peak > 0.999 else w).astype(np.float32), fs, "PCM_16")
        audio.append((f"files/{name}/{k}.flac", f"{cap}: {item.key}"))
    frame_s = stft_cfg.hop_length / stft_cfg.sample_rate
    seg_mask = None
    if vad is not None:
        item.stretches = removed_stretches(inp, out, fs, vad, stft_cfg, vad_threshold=vad_threshold,
                                           removed_share=removed_share)
        t = np.arange(vad.size) * frame_s
        seg_mask = np.zeros(vad.size)
        for a, b in item.speech:
            seg_mask[(t >= a) & (t < b)] = 1.0
    mono = (lambda w: w.mean(axis=1))
    fig = f"files/{name}/spectrogram.jpg"
    make_figure(rep_dir / fig, item.key, f"{item.duration:.1f} s", [("input", mono(inp)), ("output", mono(out)),
                ("residual (removed)", mono(res))], fs, seg_mask, vad, frame_s, threshold=vad_threshold,
                ref_label="speech segments", marks=[(s.start, s.end) for s in item.stretches],
                marks_label="speech removed?")
    ids = ["p-input", "p-output", "p-residual"]
    player_html = players(audio)
    for pid, (src_rel, _) in zip(ids, audio):
        player_html = player_html.replace(f'src="{esc(src_rel)}"', f'id="{pid}" src="{esc(src_rel)}"', 1)
    body = [f'<p><a href="index.html">&larr; all inputs</a></p><h1>{esc(item.key)}</h1>',
            f'<p class="note">{esc(item.source)} &rarr; {esc(item.output)}; {item.duration:.2f} s, {fs} Hz, '
            f'{inp.shape[1]} channel(s); processed in {item.seconds:.2f} s (real-time factor '
            f'{item.seconds / item.duration if item.duration else math.nan:.3f}). Output against input below '
            f'{stft_cfg.sample_rate / 2000:g} kHz: {_pct(item.removed_all, True)} over the whole file, '
            f'{_pct(item.removed_speech, True)} within the speech segments.</p>',
            "<h2>Listen</h2>", player_html,
            "<h2>Spectrograms and VAD</h2>",
            image(fig, f"Spectrograms of input, output and residual of {item.key}"
                  + (", VAD probability with speech segments and the stretches flagged as speech removed"
                     if vad is not None else "")),
            "<h2>Speech removed?</h2>"]
    if vad is None:
        body.append('<p class="note">The model has no VAD decoder: no check.</p>')
    elif not item.stretches:
        body.append(f'<p>None: nowhere did the VAD say speech while the output removed {removed_share:.0%} '
                    "or more of the input's energy.</p>")
    else:
        rows = "".join(
            f"<tr><td>{fmt_seconds(s.start)}</td><td>{fmt_seconds(s.end)}</td><td>{s.end - s.start:.2f}</td>"
            f"<td>{s.removed:.0%}</td><td>{s.vad:.2f}</td><td>"
            + "".join(f'<button type="button" data-seek="{max(0.0, s.start - 0.5):.2f}" data-player="{pid}">'
                      f'{lab}</button> ' for pid, lab in (("p-input", "input"), ("p-output", "output"),
                                                          ("p-residual", "residual")))
            + "</td></tr>" for s in item.stretches)
        body.append(f'<p>{len(item.stretches)} stretch(es) where the VAD says speech (probability &ge; '
                    f'{vad_threshold:g}) and the output removed &ge; {removed_share:.0%} of the input\'s energy '
                    f"below {stft_cfg.sample_rate / 2000:g} kHz (threshold: --removed_share). Play from half a "
                    "second before:</p>"
                    '<table><thead><tr><th scope="col">start</th><th scope="col">end</th>'
                    '<th scope="col">seconds</th><th scope="col">energy removed</th>'
                    '<th scope="col">mean VAD</th><th scope="col">play</th></tr></thead>'
                    f"<tbody>{rows}</tbody></table>")
    if vad is not None:
        shown = item.speech[:200]
        body += ["<h2>Speech segments (VAD)</h2>",
                 f'<p class="note">{len(item.speech)} segment(s), {sum(b - a for a, b in item.speech):.1f} s of speech'
                 + (" (first 200 listed)" if len(item.speech) > 200 else "") + "</p>",
                 table(["start", "end", "seconds"], [[fmt_seconds(a), fmt_seconds(b), f"{b - a:.2f}"]
                                                     for a, b in shown])]
    body += ["<h2>Settings</h2>", kv_list(settings), SEEK_JS]
    item.page = f"{name}.html"
    atomic_write_text(rep_dir / item.page, page(f"{item.key}: listening report", "\n".join(body), __version__))


def write_enhance_report(rep_dir: str | Path | None, done: list[tuple[str, str]], sources: dict, *,
                         settings: list[tuple[str, object]], stft_cfg: STFTConfig, vad_dir: str | Path | None,
                         vad_threshold: float, removed_share: float = REMOVED_SHARE,
                         item_seconds: dict | None = None, total_rtf: float = math.nan,
                         residual_dir: str | Path | None = None, output_dir: str | Path | None = None,
                         residual_subtype: str = "PCM_16", say=print) -> list[str]:
    """Residual files (``residual_dir``, mirroring the outputs under ``output_dir``) and/or the report
    (``rep_dir``/index.html + one page per input). ``done``: [(key, output path)]; ``sources``: key ->
    input (path or UttAudio). Returns one-line problems (an input whose page failed); the rest is written."""
    import kaldiio

    from csmvanet.data.datadir import read_scp, read_segments

    vad_tab, segs = {}, {}
    if vad_dir is not None and (Path(vad_dir) / "vad_prob.scp").is_file():
        vad_tab = read_scp(Path(vad_dir) / "vad_prob.scp")
        seg_file = Path(vad_dir) / "segments"
        if seg_file.is_file() and seg_file.stat().st_size:
            for utt, (reco, a, b) in read_segments(seg_file).items():
                segs.setdefault(reco, []).append((a, b))
    problems, pages = [], []
    rep_dir = Path(rep_dir) if rep_dir is not None else None
    for i, (key, out_path) in enumerate(done):
        src = sources[key]
        try:
            residual = None
            if residual_dir is not None:
                inp, fs = read_input(src)
                out, _ = read_audio(out_path, always_2d=True)
                residual = residual_of(inp, out)
                rel = Path(out_path).relative_to(Path(output_dir)) if output_dir else Path(Path(out_path).name)
                write_audio(Path(residual_dir) / rel, residual, fs, residual_subtype)
            if rep_dir is None:
                continue
            item = InputPage(key, src.describe() if isinstance(src, UttAudio) else str(src), str(out_path),
                             seconds=(item_seconds or {}).get(key, math.nan), speech=sorted(segs.get(key, [])))
            vad = np.asarray(kaldiio.load_mat(vad_tab[key])).ravel() if key in vad_tab else None
            _input_page(rep_dir, i, item, src, vad, stft_cfg, vad_threshold, removed_share, settings, residual)
            pages.append(item)
        except Exception as e:  # noqa: BLE001 - one input must not sink the others
            problems.append(f"{key}: report/residual failed: {' '.join(str(e).split()) or type(e).__name__}")
            say(f"ERROR {problems[-1]}")
    if rep_dir is not None:
        rows = "".join(
            f'<tr><td class="l"><a href="{esc(p.page)}">{esc(p.key)}</a></td><td>{p.duration:.1f}</td>'
            f"<td>{sum(b - a for a, b in p.speech):.1f}</td><td>{_pct(p.removed_all)}</td>"
            f"<td>{_pct(p.removed_speech)}</td><td>{len(p.stretches)}</td>"
            f"<td>{p.seconds / p.duration if p.duration else math.nan:.3f}</td></tr>" for p in pages)
        body = ["<h1>Enhancement listening report</h1>",
                f"<p>{len(pages)} input(s); real-time factor of the whole run {total_rtf:.3f} "
                "(processing seconds per second of audio).</p>",
                '<table><thead><tr><th scope="col">input</th><th scope="col">seconds</th>'
                '<th scope="col">speech (s)</th><th scope="col">energy removed</th>'
                '<th scope="col">energy removed in speech</th><th scope="col">speech removed? stretches</th>'
                f'<th scope="col">real-time factor</th></tr></thead><tbody>{rows}</tbody></table>']
        if problems:
            body += ["<h2>Problems</h2>", "<ul>" + "".join(f"<li>{esc(p)}</li>" for p in problems) + "</ul>"]
        body += ["<h2>Settings</h2>", kv_list(settings),
                 f'<p class="note">Speech removed?: stretches where the VAD says speech and the output removed '
                 f"&ge; {removed_share:.0%} of the input's energy; see docs/listening_report.md.</p>"]
        atomic_write_text(rep_dir / "index.html", page("Enhancement listening report", "\n".join(body), __version__))
    return problems


__all__ = ["removed_stretches", "residual_of", "write_enhance_report", "Stretch", "REMOVED_SHARE"]


def check_report_dirs(output_dir: str, report: str | None, residual_dir: str | None) -> str | None:
    """Before a batch: a one-line problem with --report / --residual_dir, or None."""
    for opt, d in (("--report", report), ("--residual_dir", residual_dir)):
        if d is None:
            continue
        p = Path(d)
        if p.exists() and not p.is_dir():
            return f"{opt} {p}: is a file, not a folder"
        if p.resolve() == Path(output_dir).resolve():
            return f"{opt} {p}: is the --output_dir; give another folder"
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            return f"{opt} {p}: cannot make the folder ({e.strerror})"
    return None


def report_after_batch(enh, args, items, rep, vad_dir: str | None, say=print) -> list[str]:
    """csmvanet-enhance: residual files and the report for the inputs of ``rep.done``."""
    sources = {it.key: (it.audio if it.audio is not None else it.source) for it in items if it.out_rel}
    snr = "none" if enh.snr_limit is None else f"{enh.snr_limit:g} dB"
    settings = [("model", enh.source), ("model sample rate", f"{enh.sample_rate} Hz"),
                ("vad_floor", f"{enh.vad_floor:g}"), ("input_mix", f"{enh.input_mix:g}"), ("snr_limit", snr),
                ("vad_threshold", f"{enh.vad_threshold:g}"), ("min_speech / min_silence",
                                                            f"{args.min_speech:g} s / {args.min_silence:g} s"),
                ("segments / overlap", f"{enh.segment_seconds:g} s / {enh.overlap_seconds:g} s"),
                ("backend", args.backend), ("device", args.device), ("channels", args.channels),
                ("output", f"{args.output_format or 'as input'} {args.output_subtype}"),
                ("removed_share", f"{args.removed_share:g}"), ("csmvanet", __version__)]
    rtf = rep.seconds / rep.audio_seconds if rep.audio_seconds else math.nan
    return write_enhance_report(args.report, rep.done, sources, settings=settings, stft_cfg=enh.stft_cfg,
                                vad_dir=vad_dir, vad_threshold=enh.vad_threshold, removed_share=args.removed_share,
                                item_seconds=rep.item_seconds, total_rtf=rtf, residual_dir=args.residual_dir,
                                output_dir=args.output_dir, residual_subtype=args.output_subtype, say=say)


__all__ += ["check_report_dirs", "report_after_batch"]
