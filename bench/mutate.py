#!/usr/bin/env python3
"""Mutation check of the test suite: break one thing at a time in a copy of the repo, see which tests fail.

    python bench/mutate.py                 # every mutation
    python bench/mutate.py -k gain -k hop  # mutations whose description contains one of these
    python bench/mutate.py --list

Each mutation is (description, root, snippet, replacement, tests): ``snippet`` is searched in every
text file under ``root`` (``csmvanet`` for code, ``egs`` for configs) and must occur exactly once
there, so a mutation keeps working when code moves between modules. The repository (without .git
and ignored outputs) is copied to a temporary folder, the snippet is replaced there, and pytest runs
the chosen ``tests`` (files, ``-k`` expressions) with PYTHONPATH pointing to the copy. The table
lists, per mutation, the tests that failed; a mutation that no test catches is marked MISSED and
makes the script exit 1. Before the mutations, the same tests run on the unmodified copy and must
pass. Run by hand (not in CI): it takes minutes (set OMP_NUM_THREADS=1 on a shared machine).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".yaml", ".yml", ".sh", ".pl"}


@dataclass
class Mutation:
    description: str
    root: str
    snippet: str
    replacement: str
    tests: list[str]


MUTATIONS = [
    Mutation("stage 2 gain reversed (1 - vad)", "csmvanet",
             "gain = self.vad_floor + (1.0 - self.vad_floor) * vad",
             "gain = self.vad_floor + (1.0 - self.vad_floor) * (1.0 - vad)",
             ["test/test_pinned_model.py"]),
    Mutation("SI-SDR arguments swapped in scoring", "csmvanet",
             'lambda: si_sdr(ref, deg)', 'lambda: si_sdr(deg, ref)',
             ["test/test_pinned_metrics.py", "test/test_metrics.py"]),
    Mutation("msgc flag flipped in the w/o-MSGC config", "egs",
             "msgc: false                   # ablation: plain gated conv",
             "msgc: true                    # ablation: plain gated conv",
             ["test/test_pinned_model.py"]),
    Mutation("wrong VAD hop in segments/RTTM (window length)", "csmvanet",
             "frame_s = hop / sr", "frame_s = stft_cfg.win_length / sr",
             ["test/test_enhance_outputs.py", "test/test_vad.py"]),
    Mutation("loss weights swapped (time <-> mag)", "csmvanet",
             'self.weights = {"time": float(time), "mag": float(mag),',
             'self.weights = {"time": float(mag), "mag": float(time),',
             ["test/test_loss.py"]),
    Mutation("overlap-add window linear instead of raised cosine", "csmvanet",
             "return 0.5 - 0.5 * np.cos(np.pi * t)", "return t",
             ["test/test_enhance_outputs.py"]),
    Mutation("VAD labels inverted", "csmvanet",
             "speech = (e > ref + vad_cfg.threshold_db) & (e > vad_cfg.floor_db)",
             "speech = ~((e > ref + vad_cfg.threshold_db) & (e > vad_cfg.floor_db))",
             ["test/test_vad.py"]),
    Mutation("PESQ mode wb <-> nb", "csmvanet",
             'return "nb" if fs == 8000 else "wb"', 'return "wb" if fs == 8000 else "nb"',
             ["test/test_pinned_metrics.py"]),
    Mutation("STOI extended by default", "csmvanet",
             "def stoi_or_reason(ref: np.ndarray, deg: np.ndarray, fs: int,\n"
             "                   extended: bool = False)",
             "def stoi_or_reason(ref: np.ndarray, deg: np.ndarray, fs: int,\n"
             "                   extended: bool = True)",
             ["test/test_pinned_metrics.py"]),
    Mutation("gradient clipping disabled", "csmvanet",
             'float(clip) if clip else float("inf")', 'float("inf")',
             ["test/test_train_paths.py", "-k", "clipping"]),
    Mutation("LR schedule: gamma inverted (lr grows)", "csmvanet",
             'gamma=float(s.gamma))', 'gamma=1.0 / float(s.gamma))',
             ["test/test_train_paths.py", "-k", "schedule"]),
    Mutation("LR schedule: step every epoch (shape)", "csmvanet",
             'step_size=int(s.step_size)', "step_size=1",
             ["test/test_train_paths.py", "-k", "schedule"]),
    Mutation("best checkpoints: PESQ minimised", "csmvanet",
             'return "max" if criterion.split(".", 1)[1].lower() in _MAXIMISED else "min"',
             'return "min" if criterion.split(".", 1)[1].lower() in _MAXIMISED else "max"',
             ["test/test_train_paths.py", "-k", "pesq"]),
    Mutation("SIGTERM ignored by training", "csmvanet",
             "def _on_sigterm(self, signum, frame) -> None:\n        self._term = True",
             "def _on_sigterm(self, signum, frame) -> None:\n        self._term = False",
             ["test/test_train_paths.py", "-k", "sigterm"]),
    Mutation("ark:offset wav.scp entries not recognised", "csmvanet",
             'return bool(sep) and tail.isdigit() and head.endswith(".ark")',
             'return bool(sep) and tail.isdigit() and head.endswith(".scp")',
             ["test/test_enhance_outputs.py", "-k", "segments"]),
]


def _ignored(dirpath: str, names: list[str]) -> set[str]:
    rel = Path(dirpath).relative_to(REPO)
    skip = {n for n in names if n in (".git", "__pycache__", ".pytest_cache") or n.endswith(".egg-info")}
    if rel == Path("tools"):
        skip |= {n for n in names if n in ("venv", "slurm")}
    if len(rel.parts) == 2 and rel.parts[0] == "egs":
        skip |= {n for n in names if n in ("data", "dump", "exp", "downloads", "corpus")}
    return skip


def copy_repo(dest: Path) -> Path:
    shutil.copytree(REPO, dest, ignore=_ignored, symlinks=True)
    return dest


def locate(tree: Path, m: Mutation) -> Path:
    hits = []
    for f in sorted((tree / m.root).rglob("*")):
        if f.is_file() and f.suffix in TEXT_SUFFIXES:
            n = f.read_text(errors="replace").count(m.snippet)
            hits += [f] * n
    if len(hits) != 1:
        where = ", ".join(str(h.relative_to(tree)) for h in hits) or "nowhere"
        raise SystemExit(f"mutate: {m.description!r}: the snippet occurs {len(hits)} times under {m.root}/ "
                         f"({where}); it must occur exactly once")
    return hits[0]


def run_tests(tree: Path, tests: list[str], timeout: int) -> tuple[int, list[str], str]:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", *tests]
    try:
        p = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, ["(timed out)"], ""
    failed = [re.sub(r" - .*$", "", line.split(" ", 1)[1]) for line in p.stdout.splitlines()
              if line.startswith(("FAILED test/", "ERROR test/"))]
    return p.returncode, failed, p.stdout[-3000:] + p.stderr[-2000:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", action="append", default=[], help="only mutations whose description contains this")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per pytest run")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run on the unmodified copy")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.k or any(k.lower() in m.description.lower() for k in args.k)]
    if args.list:
        for m in chosen:
            print(f"{m.description}: {' '.join(m.tests)}")
        return 0
    with tempfile.TemporaryDirectory(prefix="csmvanet-mutate-") as tmp:
        pristine = copy_repo(Path(tmp) / "pristine")
        for m in chosen:           # every snippet is found before anything runs
            locate(pristine, m)
        if not args.no_baseline:
            suites = sorted({tuple(m.tests) for m in chosen})
            for tests in suites:
                rc, failed, out = run_tests(pristine, list(tests), args.timeout)
                if rc != 0:
                    print(out)
                    raise SystemExit(f"mutate: the unmodified code fails {' '.join(tests)}: {failed}")
            print(f"baseline: {len(suites)} test selections pass on the unmodified code", flush=True)
        rows, missed = [], 0
        for i, m in enumerate(chosen):
            tree = copy_repo(Path(tmp) / f"m{i}")
            target = locate(tree, m)
            target.write_text(target.read_text().replace(m.snippet, m.replacement))
            t0 = time.time()
            rc, failed, out = run_tests(tree, m.tests, args.timeout)
            if rc == 0 or not failed:
                missed += 1
                failed = failed or ["MISSED"]
            rows.append((m.description, str(target.relative_to(tree)), failed, time.time() - t0))
            print(f"{m.description}: {len(failed)} failing ({time.time() - t0:.0f} s)", flush=True)
            shutil.rmtree(tree)
    print("\n| mutation | file | tests that fail |\n|---|---|---|")
    for desc, where, failed, _ in rows:
        print(f"| {desc} | {where} | {'<br>'.join(failed)} |")
    print(f"\n{len(rows) - missed} of {len(rows)} mutations caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
