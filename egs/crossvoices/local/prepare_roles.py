#!/usr/bin/env python3
"""Stage 1 of egs/crossvoices: clip quality, the cross-corpus split by whole sources, and the data dirs.

    local/prepare_roles.py [options] --roles conf/roles.tsv --indomain <vp data> <corpus> <data> <audio>

Roles (conf/roles.tsv, one "<unit> <role>" a line): every speech source unit (local/clip_sources.py:
lang:<l> for the volunteer-recorded packages, hw:<pack family>, ast:<voice>) and every noise unit
(<package prefix>-<kind>: tux-sfx, hw-sound, hw-music, col-music, col-sound) has one role: train, valid,
test, test_indomain (egs/voiceprompts' own test, rebuilt by its local/data_prep.py into <vp data>:
those units are used nowhere else) or unused. A unit of the corpus missing from the file is an error.

Each speech clip is measured (csmvanet.data.clip_quality) and the quality rule (options --min_range_db
etc., defaults: csmvanet.data.clip_quality.QualityRule) decides whether it is a clean target; only clean
clips are used for speech_<role>. Clean clips are trimmed and composed into utterances of several clips
of one speaker with pauses, as egs/voiceprompts does (its local/data_prep.py functions, same seeds and
options). Noise of a role: its music recordings one by one, its effects concatenated per unit (silent
stretches dropped), --babble_count babble recordings from the role's own clean clips and white/pink/brown
noise of its own seeds. The colobot recordings of egs/voiceprompts' test noise are left out of every
other role.

Writes <data>/speech_<role>/ (wav.scp utt2spk spk2utt utt2lang utt2source utt2prompts utt2num_samples),
<data>/noise_<role>/ (wav.scp utt2noise utt2sources utt2source utt2num_samples utt2spk spk2utt) for role
train, valid, test, and test_indomain (copies of <vp data>/{speech,noise}_test with utt2source added);
<data>/quality.tsv (every clip's measures and failures), <data>/quality.md (per source, clips and
minutes that pass), <data>/roles.md (units, speakers, minutes per role). Checks that no speaker, unit or
noise recording is in two roles.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parents[1] / "voiceprompts" / "local"))
from clip_sources import language, noise_unit, package_of, unit  # noqa: E402
from data_prep import (PrepError, check_and_trim, compose, drop_silence, finish, group_prompts,  # noqa: E402
                       load, make_babble, parse_range, rng_for, write_dir)

from csmvanet.audio.io import AudioError, write_audio  # noqa: E402
from csmvanet.audio.synthetic import noise as synthetic_noise  # noqa: E402
from csmvanet.base.atomic_files import atomic_write_text  # noqa: E402
from csmvanet.base.keys import check_key  # noqa: E402
from csmvanet.data.clip_quality import ClipQuality, QualityRule, measure  # noqa: E402
from csmvanet.data.datadir import read_scp, utt2spk_to_spk2utt, write_scp  # noqa: E402

SR = 16000
ROLES = ("train", "valid", "test")
ALL_ROLES = ROLES + ("test_indomain", "unused")
QUALITY_FIELDS = ("duration_s", "clipped", "floor_db", "loud_db", "range_db", "bandwidth_hz")


def read_roles(path: Path) -> dict[str, str]:
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ALL_ROLES:
            raise PrepError(f"{path}:{n}: expected '<unit> <role>' with role one of {' '.join(ALL_ROLES)}: {line!r}")
        if parts[0] in out:
            raise PrepError(f"{path}:{n}: unit {parts[0]} listed twice")
        out[parts[0]] = parts[1]
    return out


def role_of(roles: dict[str, str], units: set[str], path: Path) -> None:
    missing = sorted(units - set(roles))
    if missing:
        raise PrepError(f"{path}: no role for unit(s) {' '.join(missing)} (add '<unit> <role>' lines)")


def _measure(path: Path) -> tuple[Path, dict | None, str]:
    try:
        return path, measure(load(path), SR).to_dict(), ""
    except (AudioError, OSError, ValueError) as e:
        return path, None, str(e)


def measure_all(files: list[Path], nj: int) -> dict[Path, dict]:
    if nj > 1:
        with mp.get_context("spawn").Pool(nj) as pool:
            results = list(pool.imap(_measure, files, chunksize=32))
    else:
        results = [_measure(f) for f in files]
    bad = [err for _, q, err in results if q is None]
    if bad:
        raise PrepError(f"{len(bad)} clip(s) could not be read: " + "; ".join(bad[:5]))
    return {f: q for f, q, _ in results}


def source_of(rec: str) -> str:
    """The unit of a recording named in utt2sources: a noise recording, a babble talker or synthetic."""
    if rec.startswith("synthetic-"):
        return "synthetic"
    return noise_unit(rec) if rec.split("-", 1)[0] in ("col", "hw", "tux") and "/" not in rec and \
        rec.split("-")[1] in ("music", "sound", "sfx") else unit(rec)


def copy_indomain(vp: Path, data: Path) -> dict:
    """<vp>/{speech,noise}_test -> <data>/{speech,noise}_test_indomain, with utt2source."""
    out = {}
    for kind in ("speech", "noise"):
        src = vp / f"{kind}_test"
        if not (src / "wav.scp").is_file():
            raise PrepError(f"{src}/wav.scp: no such file (egs/voiceprompts' data prep must run first)")
        tmp = data / f".tmp.{kind}_test_indomain"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        if kind == "speech":
            spk = read_scp(src / "utt2spk")
            write_scp(tmp / "utt2source", {u: unit(s) for u, s in spk.items()})
            out["speakers"] = sorted(set(spk.values()))
        else:
            srcs = read_scp(src / "utt2sources")
            write_scp(tmp / "utt2source", {r: "+".join(sorted({source_of(x) for x in v.split()})) for r, v in srcs.items()})
            out["noise_sources"] = sorted({x for v in srcs.values() for x in v.split()})
        finish(tmp, data / f"{kind}_test_indomain")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", type=Path)
    p.add_argument("data", type=Path)
    p.add_argument("audio", type=Path)
    p.add_argument("--roles", type=Path, required=True)
    p.add_argument("--indomain", type=Path, required=True, help="egs/voiceprompts' stage-1 data dir (its test set)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--nj", type=int, default=2)
    p.add_argument("--min_seconds", type=float, default=4.0)
    p.add_argument("--max_seconds", type=float, default=10.0)
    p.add_argument("--pause", default="0.3:1.5")
    p.add_argument("--edge", default="0.2:0.8")
    p.add_argument("--level", default="-35:-15")
    p.add_argument("--babble_count", type=int, default=4)
    p.add_argument("--babble_seconds", type=float, default=60.0)
    p.add_argument("--colored_seconds", type=float, default=60.0)
    for name, value in QualityRule().__dict__.items():
        p.add_argument(f"--{name}", type=float, default=value, help=f"quality rule (default {value})")
    args = p.parse_args()
    try:
        args.pause, args.edge = parse_range(args.pause, "pause"), parse_range(args.edge, "edge")
        args.level = parse_range(args.level, "level")
        args.rule = QualityRule(**{k: getattr(args, k) for k in QualityRule().__dict__})
        return run(args)
    except (PrepError, AudioError) as e:
        print(f"{sys.argv[0]}: ERROR: {e}", file=sys.stderr)
        return 1


def speech_role(args, role, speakers, clips, quality, kept) -> dict:
    out_dir = (args.audio / f"speech_{role}").resolve()
    shutil.rmtree(out_dir, ignore_errors=True)
    tables = {k: {} for k in ("wav.scp", "utt2spk", "utt2lang", "utt2source", "utt2prompts", "utt2num_samples")}
    mean_pause = sum(args.pause) / 2
    for spk in speakers:
        files = [f for f in clips[spk] if not quality[f]["failures"]]
        files = [files[i] for i in rng_for(args.seed, "order", spk).permutation(len(files))]
        trimmed, names = [], []
        for f in files:
            y, _ = check_and_trim(load(f), 1.0, -np.inf)   # trim only: the quality rule has judged the clip
            if y is not None:
                trimmed.append(y)
                names.append(f.stem)
        kept[spk] = [f for f in files if f.stem in set(names)]
        rng = rng_for(args.seed, "compose", spk)
        for u, group in enumerate(group_prompts(rng, [len(t) / SR for t in trimmed], args.min_seconds,
                                                args.max_seconds, mean_pause) if trimmed else []):
            utt = check_key(f"{spk}-{u + 1:04d}")
            wave, _ = compose(rng_for(args.seed, "utt", utt), [trimmed[i] for i in group], args)
            path = out_dir / f"{utt}.wav"
            write_audio(path, wave, SR)
            for name, value in zip(tables, (str(path), spk, language(spk), unit(spk),
                                            " ".join(names[i] for i in group), str(len(wave)))):
                tables[name][utt] = value
    if not tables["wav.scp"]:
        raise PrepError(f"the {role} role has no clean clip (speakers: {' '.join(speakers) or 'none'})")
    tmp = args.data / f".tmp.speech_{role}"
    write_dir(tmp, {**tables, "spk2utt": utt2spk_to_spk2utt(tables["utt2spk"])})
    finish(tmp, args.data / f"speech_{role}")
    return tables


def noise_role(args, role, recs, kept) -> dict:
    out_dir = (args.audio / f"noise_{role}").resolve()
    shutil.rmtree(out_dir, ignore_errors=True)
    tables = {k: {} for k in ("wav.scp", "utt2noise", "utt2sources", "utt2source", "utt2num_samples")}

    def add(rec, x, kind, srcs, source):
        write_audio(out_dir / f"{rec}.wav", x, SR)
        for name, value in zip(tables, (str(out_dir / f"{rec}.wav"), kind, " ".join(srcs), source, str(len(x)))):
            tables[name][check_key(rec)] = value

    by_unit = defaultdict(list)
    for f in recs:
        by_unit[noise_unit(f.stem)].append(f)
    for u, files in sorted(by_unit.items()):
        effects = []
        for f in files:
            x = drop_silence(load(f))
            if len(x) < int(0.05 * SR) or np.max(np.abs(x)) < 1e-4:
                continue
            if u.endswith("-music"):
                add(f.stem, x, "music", [f.stem], u)
            else:
                effects.append((f.stem, x))
        if effects:
            add(f"{u}-{role}", np.concatenate([x for _, x in effects]), "effects", [n for n, _ in effects], u)
    for k in range(args.babble_count):
        x, talkers = make_babble(rng_for(args.seed, "babble", role, k), kept, args.babble_seconds)
        add(f"babble-{role}-{k + 1:02d}", x, "babble", talkers, "+".join(sorted({unit(t) for t in talkers})))
    for kind in ("white", "pink", "brown"):
        x = synthetic_noise(kind, rng_for(args.seed, "colored", role, kind), args.colored_seconds, SR)
        add(f"colored-{role}-{kind}", x, "colored", [f"synthetic-{kind}"], "synthetic")
    tmp = args.data / f".tmp.noise_{role}"
    own = {r: r for r in tables["wav.scp"]}
    write_dir(tmp, {**tables, "utt2spk": own, "spk2utt": own})
    finish(tmp, args.data / f"noise_{role}")
    return tables


def run(args) -> int:
    roles = read_roles(args.roles)
    speech_root = args.corpus / "speech"
    clips = {d.name: sorted(d.glob("*.wav")) for d in sorted(speech_root.iterdir()) if d.is_dir()} \
        if speech_root.is_dir() else {}
    clips = {s: f for s, f in clips.items() if f}
    if not clips:
        raise PrepError(f"{speech_root}: no speaker folder with wav files (run stage 0)")
    noises = sorted((args.corpus / "noise").glob("*/*.wav"))
    role_of(roles, {unit(s) for s in clips} | {noise_unit(f.stem) for f in noises}, args.roles)
    args.data.mkdir(parents=True, exist_ok=True)
    indomain = copy_indomain(args.indomain, args.data)
    for spk in indomain["speakers"]:
        if roles[unit(spk)] != "test_indomain":
            raise PrepError(f"{args.roles}: {unit(spk)} (speaker {spk} of egs/voiceprompts' test) must have role test_indomain")

    all_files = [f for s in sorted(clips) for f in clips[s]]
    measured = measure_all(all_files, args.nj)
    quality = {f: {**q, "failures": args.rule.failures(ClipQuality(**q))} for f, q in measured.items()}
    rows = ["clip\tspeaker\tunit\trole\t" + "\t".join(QUALITY_FIELDS) + "\tfailures"]
    for f in all_files:
        q, spk = quality[f], f.parent.name
        rows.append("\t".join([f.stem, spk, unit(spk), roles[unit(spk)]] + [f"{q[k]:.4g}" for k in QUALITY_FIELDS]
                              + [",".join(q["failures"]) or "clean"]))
    atomic_write_text(args.data / "quality.tsv", "\n".join(rows) + "\n")

    held_out = set(indomain["noise_sources"])
    summary = {}
    for role in ROLES:
        speakers = [s for s in sorted(clips) if roles[unit(s)] == role]
        kept: dict[str, list[Path]] = {}
        speech = speech_role(args, role, speakers, clips, quality, kept)
        recs = [f for f in noises if roles[noise_unit(f.stem)] == role and f.stem not in held_out]
        noise = noise_role(args, role, recs, {s: f for s, f in kept.items() if f})
        summary[role] = {"speech": speech, "noise": noise, "speakers": sorted(set(speech["utt2spk"].values()))}
    summary["test_indomain"] = {"speakers": indomain["speakers"], "noise_sources": indomain["noise_sources"]}
    check_disjoint(summary)
    atomic_write_text(args.data / "quality.md", render_quality(args, clips, quality, roles))
    text = render_roles(args, summary)
    atomic_write_text(args.data / "roles.md", text)
    print(text, end="")
    return 0


def check_disjoint(summary) -> None:
    """No speaker, source unit or noise recording in two roles (raises PrepError)."""
    def units(r):
        return {unit(s) for s in summary[r]["speakers"]}

    def noise_recs(r):
        if "noise" not in summary[r]:
            return set(summary[r]["noise_sources"]) - {"synthetic-white", "synthetic-pink", "synthetic-brown"}
        srcs = summary[r]["noise"]["utt2sources"]
        return {x for rec, v in srcs.items() for x in v.split()
                if summary[r]["noise"]["utt2noise"][rec] in ("music", "effects")}

    names = list(summary)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for what, get in (("speakers", lambda r: set(summary[r]["speakers"])), ("source units", units),
                              ("noise recordings", noise_recs)):
                common = get(a) & get(b)
                if common:
                    raise PrepError(f"roles {a} and {b} share {what}: {sorted(common)[:5]}")


def render_quality(args, clips, quality, roles) -> str:
    r = args.rule
    lines = ["# egs/crossvoices clip quality (local/prepare_roles.py, csmvanet.data.clip_quality)", "",
             f"Clean target: {r.min_clip_seconds:g}-{r.max_clip_seconds:g} s, at most {r.max_clipped:g} of the samples at "
             f"|x| >= 0.99, range (95th - 10th percentile of 20 ms frame energies) >= {r.min_range_db:g} dB and "
             f"quiet frames <= {r.max_floor_db:g} dBFS, loud frames >= {r.min_loud_db:g} dBFS, bandwidth >= "
             f"{r.min_bandwidth_hz:g} Hz.", "",
             "| speaker | package | unit | role | clips | clean | minutes | clean minutes | median range (dB) "
             "| median floor (dBFS) | median bandwidth (Hz) | failures |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for spk in sorted(clips):
        qs = [quality[f] for f in clips[spk]]
        clean = [q for q in qs if not q["failures"]]
        fails = defaultdict(int)
        for q in qs:
            for why in q["failures"]:
                fails[why] += 1
        lines.append(f"| {spk} | {package_of(spk)} | {unit(spk)} | {roles[unit(spk)]} | {len(qs)} | {len(clean)} | "
                     f"{sum(q['duration_s'] for q in qs) / 60:.1f} | {sum(q['duration_s'] for q in clean) / 60:.1f} | "
                     f"{np.median([q['range_db'] for q in qs]):.1f} | {np.median([q['floor_db'] for q in qs]):.1f} | "
                     f"{np.median([q['bandwidth_hz'] for q in qs]):.0f} | "
                     f"{', '.join(f'{k} {v}' for k, v in sorted(fails.items())) or '-'} |")
    return "\n".join(lines) + "\n"


def render_roles(args, summary) -> str:
    lines = ["# egs/crossvoices roles (local/prepare_roles.py)", "", f"seed {args.seed}; roles: {args.roles}", "",
             "| role | speakers | source units | utterances | speech (min) | noise: recordings (min) |",
             "|---|---|---|---:|---:|---|"]
    for role in ROLES:
        s = summary[role]
        kinds = defaultdict(lambda: [0, 0])
        for rec, kind in s["noise"]["utt2noise"].items():
            kinds[kind][0] += 1
            kinds[kind][1] += int(s["noise"]["utt2num_samples"][rec])
        units = sorted({unit(x) for x in s["speakers"]})
        lines.append(f"| {role} | {len(s['speakers'])} | {' '.join(units)} | {len(s['speech']['wav.scp'])} | "
                     f"{sum(int(v) for v in s['speech']['utt2num_samples'].values()) / SR / 60:.1f} | "
                     + ", ".join(f"{k} {n} ({m / SR / 60:.1f})" for k, (n, m) in sorted(kinds.items())) + " |")
    s = summary["test_indomain"]
    lines.append(f"| test_indomain | {len(s['speakers'])} | {' '.join(sorted({unit(x) for x in s['speakers']}))} | "
                 "see egs/voiceprompts | | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
