#!/usr/bin/env python3
"""Stage 1 of egs/voiceprompts: utterances composed from the decoded prompts, and the noise lists.

    local/data_prep.py [options] <corpus> <data> <audio>

Splits are by language, so by speaker too: every speaker (see local/packages.py) goes to the split of
its language; --test_langs and --valid_langs name the held-out languages, all others train.
Noise recordings of colobot-common-sounds are split by recording (a seeded draw: 20 % test, 10 %
valid, the rest train, at least one each), babble is mixed per split, synthetic coloured noise is
drawn per split with its own seeds.

Speech (per split, one speaker per utterance): each prompt is checked (dropped when clipped:
more than --max_clip of its samples at |x| >= 0.99, or noisy: less than --min_range dB between the
95th and 5th percentile of its 20 ms frame energies, or shorter than 0.15 s once trimmed), trimmed
(frames more than 40 dB below its loudest 10 ms frame, 50 ms kept on each side), then a speaker's
prompts, in a seeded order, are grouped into utterances of --min_seconds...--max_seconds (at least
two prompts each), joined by pauses drawn from --pause (seconds), with a lead and a tail drawn from
--edge, and scaled so that the speech (the prompt samples) has an RMS level drawn from --level
(dBFS; less if the peak would pass 0.95). Half of the utterances are silent between prompts
(digital zero), the other half get a low room tone (pink or brown noise 50-65 dB below the speech
level) under the whole utterance.

Noise types (utt2noise): music (colobot music tracks, one recording each), effects (the colobot
sound effects of a split, concatenated into one recording; both without their silent stretches of
0.3 s or more below -80 dBFS), babble (--babble_count recordings of
--babble_seconds: 4-8 talkers, each a stream of prompts of one speaker; train and valid babble
come from the training speakers only, test babble from the test speakers, whom training never
sees), colored (white, pink and brown noise, csmvanet.audio.synthetic.noise).

Writes <audio>/speech_<split>/<utt>.wav, <audio>/noise_<split>/<rec>.wav and the data dirs
<data>/speech_<split>/ (wav.scp utt2spk spk2utt utt2lang utt2prompts utt2num_samples) and
<data>/noise_<split>/ (wav.scp utt2noise utt2sources utt2num_samples) for split in train, valid,
test; <data>/splits.md summarises them. Everything depends on --seed only. Each data dir is built
under a temporary name and renamed when complete.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from packages import language, noise_group  # noqa: E402

from csmvanet.audio.io import AudioError, read_audio, write_audio  # noqa: E402
from csmvanet.audio.synthetic import noise as synthetic_noise  # noqa: E402
from csmvanet.base.atomic_files import atomic_write_text  # noqa: E402
from csmvanet.base.keys import check_key  # noqa: E402
from csmvanet.data.datadir import utt2spk_to_spk2utt, write_scp  # noqa: E402

SR = 16000
SPLITS = ("train", "valid", "test")


class PrepError(Exception):
    pass


def rng_for(seed: int, *names) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF] + [zlib.crc32(str(n).encode()) for n in names])


def frame_db(x: np.ndarray, frame: int) -> np.ndarray:
    n = len(x) // frame
    if n == 0:
        return np.array([10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-12)])
    f = x[: n * frame].astype(np.float64).reshape(n, frame)
    return 10 * np.log10(np.mean(f ** 2, axis=1) + 1e-12)


def check_and_trim(x: np.ndarray, max_clip: float, min_range: float) -> tuple[np.ndarray | None, str]:
    """The trimmed prompt, or None and why it is dropped."""
    if len(x) < int(0.15 * SR):
        return None, "short"
    if np.mean(np.abs(x) >= 0.99) > max_clip:
        return None, "clipped"
    e20 = frame_db(x, SR // 50)
    if len(e20) >= 5 and np.percentile(e20, 95) - np.percentile(e20, 5) < min_range:
        return None, "noisy"
    hop = SR // 100
    e = frame_db(x, hop)
    loud = np.flatnonzero(e > e.max() - 40.0)
    margin = SR // 20
    a = max(0, int(loud[0]) * hop - margin)
    b = min(len(x), (int(loud[-1]) + 1) * hop + margin)
    y = x[a:b]
    if len(y) < int(0.15 * SR):
        return None, "short"
    return y, ""


def drop_silence(x: np.ndarray, frame: int = SR // 10, thr_db: float = -80.0, min_frames: int = 3) -> np.ndarray:
    """``x`` without its silent stretches: runs of at least ``min_frames`` 100 ms frames below ``thr_db``
    dBFS (the colobot music has up to a minute of digital silence at its end; the mixing would find a
    silent noise segment, whose SNR is undefined)."""
    n = len(x) // frame
    if n == 0:
        return x
    e = frame_db(x, frame)
    silent = np.concatenate([e < thr_db, [False]])
    keep = np.ones(n + 1, bool)
    start = None
    for i, s in enumerate(silent):
        if s and start is None:
            start = i
        elif not s and start is not None:
            if i - start >= min_frames:
                keep[start:i] = False
            start = None
    mask = np.repeat(keep[:n], frame)
    return np.concatenate([x[:n * frame][mask], x[n * frame:]])


def parse_range(text: str, what: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise PrepError(f"--{what}: expected 'low:high', got {text!r}") from None
    if hi < lo:
        raise PrepError(f"--{what}: {text!r}: high is below low")
    return lo, hi


class Corpus:
    """Speakers and their prompt files under <corpus>/speech, noise files under <corpus>/noise."""

    def __init__(self, root: Path):
        self.root = root
        speech = root / "speech"
        if not speech.is_dir():
            raise PrepError(f"{speech}: no such folder (run stage 0)")
        self.prompts = {d.name: sorted(d.glob("*.wav")) for d in sorted(speech.iterdir()) if d.is_dir()}
        self.prompts = {s: p for s, p in self.prompts.items() if p}
        if not self.prompts:
            raise PrepError(f"{speech}: no speaker folder with wav files (run stage 0)")
        self.noises = sorted((root / "noise").glob("*/*.wav"))
        if not self.noises:
            raise PrepError(f"{root / 'noise'}: no noise recordings (run stage 0 with colobot-common-sounds)")


def assign_speakers(speakers, valid_langs, test_langs) -> dict[str, list[str]]:
    both = set(valid_langs) & set(test_langs)
    if both:
        raise PrepError(f"language(s) {sorted(both)} are in both --valid_langs and --test_langs")
    out = {s: [] for s in SPLITS}
    for spk in speakers:
        lang = language(spk)
        out["test" if lang in test_langs else "valid" if lang in valid_langs else "train"].append(spk)
    langs = sorted({language(s) for s in speakers})
    for split, names in (("valid", valid_langs), ("test", test_langs)):
        unknown = sorted(set(names) - set(langs))
        if unknown:
            raise PrepError(f"--{split}_langs: {unknown} match no speaker of the corpus (languages: {' '.join(langs)})")
    for split in SPLITS:
        if not out[split]:
            raise PrepError(f"no speaker for the {split} split (languages: {' '.join(langs)}; "
                            f"--valid_langs {' '.join(valid_langs)!r} --test_langs {' '.join(test_langs)!r})")
    return out


def split_noise_files(files: list[Path], seed: int) -> dict[str, list[Path]]:
    """Colobot recordings by split: per group (music, effects) a seeded draw of 20 % test, 10 % valid."""
    out = {s: [] for s in SPLITS}
    groups = defaultdict(list)
    for f in files:
        groups[noise_group(f.stem)].append(f)
    for group, fs in sorted(groups.items()):
        fs = sorted(fs)
        perm = [fs[i] for i in rng_for(seed, "noise-split", group).permutation(len(fs))]
        n = len(fs)
        n_test = max(1, round(0.2 * n)) if n >= 3 else 0
        n_valid = max(1, round(0.1 * n)) if n >= 3 else 0
        out["test"] += perm[:n_test]
        out["valid"] += perm[n_test:n_test + n_valid]
        out["train"] += perm[n_test + n_valid:]
    return {s: sorted(v) for s, v in out.items()}


def load(path: Path) -> np.ndarray:
    x, sr = read_audio(path)
    if sr != SR or x.ndim != 1:
        raise AudioError(f"{path}: expected {SR} Hz mono (stage 0 output)")
    return x.astype(np.float32)


def group_prompts(rng, durations: list[float], min_s: float, max_s: float, mean_pause: float) -> list[list[int]]:
    groups, cur, total = [], [], 0.0
    target = rng.uniform(min_s, max_s)
    for i, d in enumerate(durations):
        cur.append(i)
        total += d + mean_pause
        if total >= target and len(cur) >= 2:
            groups.append(cur)
            cur, total, target = [], 0.0, rng.uniform(min_s, max_s)
    if cur:
        if groups and len(cur) < 2:
            groups[-1].extend(cur)
        else:
            groups.append(cur)
    return groups


def compose(rng, prompts: list[np.ndarray], args) -> tuple[np.ndarray, float]:
    """One utterance from trimmed prompts -> (wave, speech level in dBFS)."""
    lead, tail = (rng.uniform(*args.edge) for _ in range(2))
    pauses = [rng.uniform(*args.pause) for _ in range(len(prompts) - 1)]
    pieces = [np.zeros(int(lead * SR), np.float32)]
    for k, p in enumerate(prompts):
        pieces.append(p)
        if k < len(pauses):
            pieces.append(np.zeros(int(pauses[k] * SR), np.float32))
    pieces.append(np.zeros(int(tail * SR), np.float32))
    wave = np.concatenate(pieces).astype(np.float64)
    speech = np.concatenate(prompts).astype(np.float64)
    level = rng.uniform(*args.level)
    gain = 10 ** ((level - 10 * np.log10(np.mean(speech ** 2) + 1e-20)) / 20)
    peak = np.max(np.abs(wave)) * gain
    if peak > 0.95:
        gain *= 0.95 / peak
    wave *= gain
    if rng.random() < 0.5:  # room tone under the whole utterance
        tone = synthetic_noise(str(rng.choice(["pink", "brown"])), rng, len(wave) / SR + 0.01, SR)[:len(wave)]
        tone_db = level - rng.uniform(50.0, 65.0)
        wave += tone * 10 ** ((tone_db - 10 * np.log10(np.mean(tone.astype(np.float64) ** 2) + 1e-20)) / 20)
    return wave.astype(np.float32), 20 * np.log10(np.sqrt(np.mean((speech * gain) ** 2)) + 1e-20)


def make_babble(rng, prompt_files: dict[str, list[Path]], seconds: float) -> tuple[np.ndarray, list[str]]:
    """4-8 talkers, each a stream of one speaker's prompts at equal level, summed at -26 dBFS."""
    n = int(seconds * SR)
    speakers = sorted(prompt_files)
    talkers = int(rng.integers(4, 9))
    chosen = [speakers[i] for i in (rng.permutation(len(speakers))[:talkers] if len(speakers) >= talkers
                                    else rng.integers(0, len(speakers), talkers))]
    mix = np.zeros(n)
    for spk in chosen:
        stream, filled = np.zeros(n), int(rng.uniform(0, 0.5) * SR)
        while filled < n:
            x = load(prompt_files[spk][int(rng.integers(len(prompt_files[spk])))]).astype(np.float64)
            x /= np.sqrt(np.mean(x ** 2)) + 1e-12
            take = min(len(x), n - filled)
            stream[filled:filled + take] = x[:take]
            filled += take + int(rng.uniform(0.05, 0.3) * SR)
        mix += stream
    mix *= 10 ** (-26 / 20) / (np.sqrt(np.mean(mix ** 2)) + 1e-12)
    return mix.astype(np.float32), sorted(set(chosen))


def finish(tmp: Path, final: Path) -> None:
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def write_dir(d: Path, files: dict[str, dict[str, str]]) -> None:
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for name, table in files.items():
        write_scp(d / name, table)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", type=Path)
    p.add_argument("data", type=Path)
    p.add_argument("audio", type=Path, help="folder for the composed utterances and noise recordings")
    p.add_argument("--valid_langs", default="es pt nl")
    p.add_argument("--test_langs", default="it de nds he tn")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--min_seconds", type=float, default=4.0)
    p.add_argument("--max_seconds", type=float, default=10.0)
    p.add_argument("--pause", default="0.3:1.5", help="pause between prompts, seconds (low:high)")
    p.add_argument("--edge", default="0.2:0.8", help="silence before the first and after the last prompt")
    p.add_argument("--level", default="-35:-15", help="speech RMS level, dBFS (low:high)")
    p.add_argument("--max_clip", type=float, default=0.001)
    p.add_argument("--min_range", type=float, default=20.0)
    p.add_argument("--babble_count", type=int, default=4, help="babble recordings per split")
    p.add_argument("--babble_seconds", type=float, default=60.0)
    p.add_argument("--colored_seconds", type=float, default=60.0)
    args = p.parse_args()
    try:
        args.pause, args.edge = parse_range(args.pause, "pause"), parse_range(args.edge, "edge")
        args.level = parse_range(args.level, "level")
        return run(args)
    except (PrepError, AudioError) as e:
        print(f"{sys.argv[0]}: ERROR: {e}", file=sys.stderr)
        return 1


def run(args) -> int:
    corpus = Corpus(args.corpus)
    spk_split = assign_speakers(corpus.prompts, args.valid_langs.split(), args.test_langs.split())
    noise_split = split_noise_files(corpus.noises, args.seed)
    args.data.mkdir(parents=True, exist_ok=True)
    summary = {}
    kept_files: dict[str, dict[str, list[Path]]] = {}
    mean_pause = sum(args.pause) / 2
    for split in SPLITS:
        out_dir = args.audio / f"speech_{split}"
        shutil.rmtree(out_dir, ignore_errors=True)
        wav, utt2spk, utt2lang, utt2prompts, utt2n = {}, {}, {}, {}, {}
        dropped = defaultdict(int)
        per_spk = {}
        kept_files[split] = {}
        n_prompts = 0
        for spk in spk_split[split]:
            files = [corpus.prompts[spk][i] for i in rng_for(args.seed, "order", spk).permutation(len(corpus.prompts[spk]))]
            trimmed, names = [], []
            spk_drop = defaultdict(int)
            for f in files:
                y, why = check_and_trim(load(f), args.max_clip, args.min_range)
                if y is None:
                    dropped[why] += 1
                    spk_drop[why] += 1
                    continue
                trimmed.append(y)
                names.append(f.stem)
            kept_files[split][spk] = [f for f in files if f.stem in set(names)]
            per_spk[spk] = {"kept": len(trimmed), "dropped": dict(spk_drop), "utts": 0,
                            "prompt_s": sum(len(y) for y in trimmed) / SR, "utt_s": 0.0}
            if not trimmed:
                continue
            n_prompts += len(trimmed)
            rng = rng_for(args.seed, "compose", spk)
            for u, group in enumerate(group_prompts(rng, [len(t) / SR for t in trimmed], args.min_seconds,
                                                    args.max_seconds, mean_pause)):
                utt = check_key(f"{spk}-{u + 1:04d}")
                wave, _ = compose(rng_for(args.seed, "utt", utt), [trimmed[i] for i in group], args)
                path = (out_dir / f"{utt}.wav").resolve()
                write_audio(path, wave, SR)
                wav[utt], utt2spk[utt], utt2lang[utt] = str(path), spk, language(spk)
                utt2prompts[utt] = " ".join(names[i] for i in group)
                utt2n[utt] = str(len(wave))
                per_spk[spk]["utts"] += 1
                per_spk[spk]["utt_s"] += len(wave) / SR
        kept_files[split] = {s: f for s, f in kept_files[split].items() if f}
        if not wav:
            raise PrepError(f"the {split} split has no usable prompt ({dict(dropped)} dropped)")
        tmp = args.data / f".tmp.speech_{split}"
        write_dir(tmp, {"wav.scp": wav, "utt2spk": utt2spk, "spk2utt": utt2spk_to_spk2utt(utt2spk),
                        "utt2lang": utt2lang, "utt2prompts": utt2prompts, "utt2num_samples": utt2n})
        finish(tmp, args.data / f"speech_{split}")
        summary[split] = {"speakers": sorted(set(utt2spk.values())), "langs": sorted(set(utt2lang.values())),
                          "utts": len(wav), "prompts": n_prompts, "dropped": dict(dropped),
                          "speech_s": sum(int(v) for v in utt2n.values()) / SR, "per_spk": per_spk}

    for split in SPLITS:
        out_dir = (args.audio / f"noise_{split}").resolve()
        shutil.rmtree(out_dir, ignore_errors=True)
        wav, utt2noise, utt2sources, utt2n = {}, {}, {}, {}

        def add(rec, path, kind, srcs, n):
            wav[check_key(rec)], utt2noise[rec], utt2sources[rec], utt2n[rec] = str(path), kind, " ".join(srcs), str(n)

        effects = []
        for f in noise_split[split]:
            x = drop_silence(load(f))
            if len(x) < int(0.05 * SR) or np.max(np.abs(x)) < 1e-4:
                continue  # empty or silent recording
            if noise_group(f.stem) == "music":
                write_audio(out_dir / f"{f.stem}.wav", x, SR)
                add(f.stem, out_dir / f"{f.stem}.wav", "music", [f.stem], len(x))
            else:
                effects.append((f.stem, x))
        if effects:
            x = np.concatenate([e for _, e in effects])
            rec = f"col-effects-{split}"
            write_audio(out_dir / f"{rec}.wav", x, SR)
            add(rec, out_dir / f"{rec}.wav", "effects", [n for n, _ in effects], len(x))
        babble_source = kept_files["test" if split == "test" else "train"]
        for k in range(args.babble_count):
            rec = f"babble-{split}-{k + 1:02d}"
            x, talkers = make_babble(rng_for(args.seed, "babble", split, k), babble_source, args.babble_seconds)
            write_audio(out_dir / f"{rec}.wav", x, SR)
            add(rec, out_dir / f"{rec}.wav", "babble", talkers, len(x))
        for kind in ("white", "pink", "brown"):
            rec = f"colored-{split}-{kind}"
            x = synthetic_noise(kind, rng_for(args.seed, "colored", split, kind), args.colored_seconds, SR)
            write_audio(out_dir / f"{rec}.wav", x, SR)
            add(rec, out_dir / f"{rec}.wav", "colored", [f"synthetic-{kind}"], len(x))
        tmp = args.data / f".tmp.noise_{split}"
        own = {r: r for r in wav}  # each recording its own speaker: a data dir Kaldi's validator accepts
        write_dir(tmp, {"wav.scp": wav, "utt2noise": utt2noise, "utt2sources": utt2sources,
                        "utt2num_samples": utt2n, "utt2spk": own, "spk2utt": own})
        finish(tmp, args.data / f"noise_{split}")
        types = defaultdict(lambda: [0, 0.0])
        for rec, kind in utt2noise.items():
            types[kind][0] += 1
            types[kind][1] += int(utt2n[rec]) / SR
        summary[split]["noise"] = dict(sorted(types.items()))
        summary[split]["noise_sources"] = sorted(f.stem for f in noise_split[split])

    check_disjoint(summary)
    text = render_summary(args, summary)
    atomic_write_text(args.data / "splits.md", text)
    print(text, end="")
    return 0


def check_disjoint(summary) -> None:
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                for what in ("speakers", "langs", "noise_sources"):
                    common = set(summary[a][what]) & set(summary[b][what])
                    if common:
                        raise PrepError(f"{a} and {b} share {what}: {sorted(common)[:5]}")


def render_summary(args, summary) -> str:
    lines = ["# egs/voiceprompts splits (local/data_prep.py)", "",
             f"seed {args.seed}; valid languages: {args.valid_langs}; test languages: {args.test_langs}", "",
             "| split | speakers | languages | prompts (dropped) | utterances | speech (min) | noise: recordings (min) |",
             "|---|---|---|---|---|---|---|"]
    for split in SPLITS:
        s = summary[split]
        drop = ", ".join(f"{k} {v}" for k, v in sorted(s["dropped"].items())) or "none"
        noise = ", ".join(f"{k} {n} ({sec / 60:.1f})" for k, (n, sec) in s["noise"].items())
        lines.append(f"| {split} | {len(s['speakers'])}: {' '.join(s['speakers'])} | {' '.join(s['langs'])} | "
                     f"{s['prompts']} ({drop}) | {s['utts']} | {s['speech_s'] / 60:.1f} | {noise} |")
    lines += ["", "Per speaker (prompts kept, dropped by the quality check; minutes of trimmed prompts and of "
              "composed utterances):", "",
              "| split | speaker | prompts kept | dropped | prompts (min) | utterances | utterances (min) |",
              "|---|---|---|---|---|---|---|"]
    for split in SPLITS:
        for spk, s in sorted(summary[split]["per_spk"].items()):
            drop = ", ".join(f"{k} {v}" for k, v in sorted(s["dropped"].items())) or "-"
            lines.append(f"| {split} | {spk} | {s['kept']} | {drop} | {s['prompt_s'] / 60:.1f} | {s['utts']} | "
                         f"{s['utt_s'] / 60:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
