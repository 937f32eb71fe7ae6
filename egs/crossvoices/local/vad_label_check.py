#!/usr/bin/env python3
"""The VAD label check of egs/crossvoices (issue 25, item 4): training labels against hand marks.

    local/vad_label_check.py render [--per_source 3] [--seed 1] <corpus> <out_dir> <source>...
    local/vad_label_check.py score [--vad_config conf/vad.yaml] [--train_config conf/train.yaml] \
        [--alt name=vad.yaml ...] <corpus> <marks.tsv>

render: picks --per_source clips (1.5-6 s, seeded) of each speaker folder named, and draws each source's
clips (spectrogram 0-8 kHz, 80 dB range, and the 10 ms frame energy) into <out_dir>/<source>.png with a
0.1 s grid, without any label, for a person to mark the speech by eye; <out_dir>/clips.tsv lists them.
score: reads the hand marks (one line per clip: "<speaker>/<clip> <start>-<end> ..." in seconds, no
segment: no speech) and reports, per source, the frame agreement of the labels that
csmvanet-vad-labels would give with --vad_config (and with each --alt config): accuracy, and the share of
hand-marked silence frames labelled speech (false speech) and of hand-marked speech labelled silence
(missed speech). A frame is speech by hand when its centre lies in a marked segment.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from csmvanet.audio.io import read_audio
from csmvanet.data.vad import VADLabelConfig, configs_from_dict, frame_energy_db, labels_from_clean


def render(args) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for src in args.sources:
        files = sorted((args.corpus / "speech" / src).glob("*.wav"))
        if not files:
            print(f"{sys.argv[0]}: {args.corpus}/speech/{src}: no clips", file=sys.stderr)
            return 1
        rng = np.random.default_rng([args.seed, sum(map(ord, src))])
        picked = []
        for i in rng.permutation(len(files)):
            x, sr = read_audio(files[i])
            if 1.5 <= len(x) / sr <= 6.0:
                picked.append((files[i], x, sr))
            if len(picked) == args.per_source:
                break
        fig, axes = plt.subplots(2 * len(picked), 1, figsize=(14, 3.2 * len(picked)),
                                 gridspec_kw={"height_ratios": [3, 1] * len(picked)})
        for k, (f, x, sr) in enumerate(picked):
            ax, ax_e = axes[2 * k], axes[2 * k + 1]
            ax.specgram(x + 1e-9, NFFT=512, Fs=sr, noverlap=384, cmap="magma", vmin=-150 + 0, scale="dB")
            im = ax.get_images()[0] if ax.get_images() else None
            if im is not None:
                hi = im.get_clim()[1]
                im.set_clim(hi - 80, hi)
            ax.set_ylim(0, sr / 2)
            ax.set_title(f"{src}/{f.stem}  ({len(x) / sr:.2f} s)", fontsize=9)
            hop = sr // 100
            n = len(x) // hop
            e = 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)
            ax_e.plot((np.arange(n) + 0.5) * hop / sr, e, lw=0.8)
            ax_e.set_ylim(max(-100, e.min() - 3), e.max() + 3)
            for a in (ax, ax_e):
                a.set_xlim(0, len(x) / sr)
                a.set_xticks(np.arange(0, len(x) / sr, 0.1), minor=True)
                a.set_xticks(np.arange(0, len(x) / sr, 0.5))
                a.grid(True, which="both", axis="x", alpha=0.35)
            rows.append(f"{src}/{f.stem}\t{len(x) / sr:.3f}")
        fig.tight_layout()
        fig.savefig(args.out_dir / f"{src}.png", dpi=70)
        plt.close(fig)
    (args.out_dir / "clips.tsv").write_text("\n".join(rows) + "\n")
    return 0


def read_marks(path: Path) -> dict[str, list[tuple[float, float]]]:
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        clip, *segs = line.split()
        try:
            out[clip] = [tuple(float(v) for v in s.split("-")) for s in segs]
        except ValueError:
            raise SystemExit(f"{sys.argv[0]}: {path}:{n}: segments are '<start>-<end>' in seconds: {line!r}")
    return out


def score(args) -> int:
    stft_cfg, base = configs_from_dict(yaml.safe_load(args.train_config.read_text()))
    configs = {"vad.yaml": VADLabelConfig.from_dict(yaml.safe_load(args.vad_config.read_text())["vad_labels"])}
    for alt in args.alt:
        name, _, path = alt.partition("=")
        configs[name] = VADLabelConfig.from_dict(yaml.safe_load(Path(path).read_text())["vad_labels"])
    marks = read_marks(args.marks)
    stats = defaultdict(lambda: defaultdict(lambda: np.zeros(4)))   # source -> config -> [agree, n, fs, fm]
    counts = defaultdict(lambda: np.zeros(2))                         # source -> [speech frames, frames]
    for clip, segs in marks.items():
        x, sr = read_audio(args.corpus / "speech" / f"{clip}.wav")
        n = stft_cfg.num_frames(len(x))
        t = np.arange(n) * stft_cfg.hop_length / sr
        hand = np.zeros(n, bool)
        for a, b in segs:
            hand |= (t >= a) & (t < b)
        src = clip.split("/")[0]
        counts[src] += [hand.sum(), n]
        for name, cfg in configs.items():
            lab = labels_from_clean(x, stft_cfg, cfg).astype(bool)
            stats[src][name] += [np.sum(lab == hand), n, np.sum(lab & ~hand), np.sum(~lab & hand)]
    names = list(configs)
    head = "| source | clips | speech share (hand) | " + " | ".join(
        f"{c}: agreement | {c}: false speech | {c}: missed speech" for c in names) + " |"
    lines = [head, "|---|---:|---:|" + "---:|" * 3 * len(names)]
    total = {c: np.zeros(4) for c in names}
    for src in sorted(stats):
        clips = sum(1 for c in marks if c.split("/")[0] == src)
        sp, n = counts[src]
        cells = []
        for c in names:
            agree, m, fs, fm = stats[src][c]
            total[c] += stats[src][c]
            cells.append(f"{agree / m:.3f} | {fs / max(1, n - sp):.3f} | {fm / max(1, sp):.3f}")
        lines.append(f"| {src} | {clips} | {sp / n:.2f} | " + " | ".join(cells) + " |")
    sp, n = np.sum(list(counts.values()), axis=0)
    lines.append(f"| all | {len(marks)} | {sp / n:.2f} | " + " | ".join(
        f"{total[c][0] / total[c][1]:.3f} | {total[c][2] / max(1, n - sp):.3f} | {total[c][3] / max(1, sp):.3f}"
        for c in names) + " |")
    print("\n".join(lines))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("corpus", type=Path)
    r.add_argument("out_dir", type=Path)
    r.add_argument("sources", nargs="+")
    r.add_argument("--per_source", type=int, default=3)
    r.add_argument("--seed", type=int, default=1)
    s = sub.add_parser("score")
    s.add_argument("corpus", type=Path)
    s.add_argument("marks", type=Path)
    s.add_argument("--vad_config", type=Path, default=Path("conf/vad.yaml"))
    s.add_argument("--train_config", type=Path, default=Path("conf/train.yaml"))
    s.add_argument("--alt", action="append", default=[], help="name=vad.yaml: another label config to compare")
    args = p.parse_args()
    return render(args) if args.cmd == "render" else score(args)


if __name__ == "__main__":
    sys.exit(main())
