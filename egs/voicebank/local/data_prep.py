#!/usr/bin/env python3
"""VoiceBank+DEMAND (28 speakers) -> Kaldi data dirs train / valid / test (48 kHz, corpus paths).

train = the training speakers except the validation speakers (p226, p287: 26 speakers),
valid = p226 + p287, test = the test folder's p232 + p257 (824 utterances in the full corpus).
Each dir: wav.scp (noisy), spk1.scp (clean), utt2spk, spk2utt; text where the txt folders exist;
utt2noise and utt2snr where the log files (log_trainset_28spk.txt, log_testset.txt:
``<utt> <noise> <snr>``) cover every utterance of the set.

Utterances with a clean file but no noisy file (or the reverse) are listed and left out; the exit
status is then 1 (the data dirs hold the complete pairs).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from csmvanet.data.datadir import utt2spk_to_spk2utt, write_scp

FOLDERS = {"train": ("clean_trainset_28spk_wav", "noisy_trainset_28spk_wav", "trainset_28spk_txt",
                     "log_trainset_28spk.txt"),
           "test": ("clean_testset_wav", "noisy_testset_wav", "testset_txt", "log_testset.txt")}
FULL_COUNTS = {"train+valid": 11572, "test": 824}


def list_wavs(folder: Path) -> dict[str, Path]:
    return {p.stem: p.resolve() for p in sorted(folder.glob("*.wav")) if not p.name.startswith(".")}


def find_log(root: Path, name: str) -> Path | None:
    for cand in (root / "logfiles" / name, root / name):
        if cand.is_file():
            return cand
    found = sorted(root.glob(f"*/{name}"))
    return found[0] if found else None


def read_log(path: Path) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """``<utt> <noise> <snr>`` lines -> (utt2noise, utt2snr, problems)."""
    noise, snr, problems = {}, {}, []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            problems.append(f"{path}:{n}: expected '<utt> <noise> <snr>', got {line!r}")
            continue
        utt = parts[0][:-4] if parts[0].endswith(".wav") else parts[0]
        try:
            float(parts[2])
        except ValueError:
            problems.append(f"{path}:{n}: SNR {parts[2]!r} is not a number")
            continue
        noise[utt], snr[utt] = parts[1], parts[2]
    return noise, snr, problems


def read_text(folder: Path, utts) -> dict[str, str] | None:
    if not folder.is_dir():
        return None
    out = {}
    for u in utts:
        p = folder / f"{u}.txt"
        if not p.is_file():
            return None
        out[u] = " ".join(p.read_text(errors="replace").split())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="VoiceBank+DEMAND root (the VOICEBANK variable of db.sh)")
    ap.add_argument("out", type=Path, help="where the train/ valid/ test/ data dirs go")
    ap.add_argument("--valid_speakers", default="p226 p287")
    ap.add_argument("--test_speakers", default="p232 p257")
    args = ap.parse_args(argv)
    valid_spk = set(args.valid_speakers.split())
    test_spk = set(args.test_speakers.split())
    problems: list[str] = []

    pairs: dict[str, dict[str, tuple[Path, Path]]] = {}
    for part, (clean_dir, noisy_dir, _, _) in FOLDERS.items():
        for d in (clean_dir, noisy_dir):
            if not (args.root / d).is_dir():
                print(f"data_prep.py: error: {args.root / d}: no such folder; is {args.root} the VoiceBank+DEMAND "
                      f"root (VOICEBANK in db.sh, --voicebank_root)? Stage 0 downloads it.", file=sys.stderr)
                return 1
        clean, noisy = list_wavs(args.root / clean_dir), list_wavs(args.root / noisy_dir)
        for u in sorted(clean.keys() - noisy.keys()):
            problems.append(f"{args.root / noisy_dir}/{u}.wav: missing (the clean file exists)")
        for u in sorted(noisy.keys() - clean.keys()):
            problems.append(f"{args.root / clean_dir}/{u}.wav: missing (the noisy file exists)")
        pairs[part] = {u: (noisy[u], clean[u]) for u in clean.keys() & noisy.keys()}
        if not pairs[part]:
            print(f"data_prep.py: error: no wav pairs in {args.root / clean_dir} and {args.root / noisy_dir}",
                  file=sys.stderr)
            return 1

    def spk_of(u: str) -> str:
        return u.split("_", 1)[0]

    sets = {"train": {u: v for u, v in pairs["train"].items() if spk_of(u) not in valid_spk},
            "valid": {u: v for u, v in pairs["train"].items() if spk_of(u) in valid_spk},
            "test": {u: v for u, v in pairs["test"].items() if spk_of(u) in test_spk}}
    others = sorted({spk_of(u) for u in pairs["test"]} - test_spk)
    if others:
        print(f"data_prep.py: warning: speakers {others} of the test folder are not test speakers "
              f"({args.test_speakers}); left out", file=sys.stderr)
    for name, spks in (("valid", valid_spk), ("test", test_spk)):
        found = {spk_of(u) for u in sets[name]}
        if found != spks:
            print(f"data_prep.py: error: the {name} set should hold speakers {sorted(spks)}, found {sorted(found)}",
                  file=sys.stderr)
            return 1
    if not sets["train"]:
        print("data_prep.py: error: no training utterances left", file=sys.stderr)
        return 1

    logs = {}
    for part, (_, _, _, log_name) in FOLDERS.items():
        path = find_log(args.root, log_name)
        if path is None:
            print(f"data_prep.py: note: {log_name} not found under {args.root}; no utt2noise/utt2snr for "
                  f"the {part} folder", file=sys.stderr)
            continue
        u2n, u2s, bad = read_log(path)
        problems += bad
        logs[part] = (path, u2n, u2s)

    for name, items in sets.items():
        part = "test" if name == "test" else "train"
        d = args.out / name
        d.mkdir(parents=True, exist_ok=True)
        for stale in ("utt2noise", "utt2snr", "text"):
            if (d / stale).exists():
                (d / stale).unlink()
        write_scp(d / "wav.scp", {u: str(n) for u, (n, _) in items.items()})
        write_scp(d / "spk1.scp", {u: str(c) for u, (_, c) in items.items()})
        utt2spk = {u: spk_of(u) for u in sorted(items, key=str.encode)}
        write_scp(d / "utt2spk", utt2spk)
        write_scp(d / "spk2utt", utt2spk_to_spk2utt(utt2spk))
        text = read_text(args.root / FOLDERS[part][2], items)
        if text is not None:
            write_scp(d / "text", {u: t or "<empty>" for u, t in text.items()})
        if part in logs:
            path, u2n, u2s = logs[part]
            lacking = [u for u in items if u not in u2n]
            if lacking:
                print(f"data_prep.py: warning: {path} lacks {len(lacking)} utterance(s) of {name} (e.g. "
                      f"{lacking[0]}); no utt2noise/utt2snr for {name}", file=sys.stderr)
            else:
                write_scp(d / "utt2noise", {u: u2n[u] for u in items})
                write_scp(d / "utt2snr", {u: u2s[u] for u in items})
        print(f"data_prep.py: {d}: {len(items)} utterances, {len(set(utt2spk.values()))} speakers")

    n_tv, n_test = len(sets["train"]) + len(sets["valid"]), len(sets["test"])
    if (n_tv, n_test) != (FULL_COUNTS["train+valid"], FULL_COUNTS["test"]):
        print(f"data_prep.py: note: {n_tv} train+valid and {n_test} test utterances; the full corpus has "
              f"{FULL_COUNTS['train+valid']} and {FULL_COUNTS['test']}", file=sys.stderr)
    for p in problems:
        print(f"data_prep.py: problem: {p}", file=sys.stderr)
    if problems:
        print(f"data_prep.py: {len(problems)} problem(s); the data dirs hold the complete pairs only",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
