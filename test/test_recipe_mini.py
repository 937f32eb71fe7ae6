"""egs/mini end to end (the README's main job, with a smaller training budget), re-runs and kills.

The recipe runs in place (egs/mini) with every output (--corpus, --datadir, --dumpdir, --expdir)
under a temporary folder.
"""
from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from csmvanet.data.datadir import read_scp

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "egs" / "mini"
SMALL = ["--utts_per_speaker", "6", "--num_train", "160", "--nj", "2",
         "--train_args", "--train.epochs 1 --train.num_workers 0 --train.tensorboard false"]


def recipe(out: Path, *args, **kw):
    cmd = ["./run.sh", "--corpus", out / "corpus", "--datadir", out / "data", "--dumpdir", out / "dump",
           "--expdir", out / "exp", *SMALL, *args]
    return subprocess.Popen([str(c) for c in cmd], cwd=RECIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)


def run(out: Path, *args, timeout=900) -> str:
    p = recipe(out, *args)
    text, _ = p.communicate(timeout=timeout)
    assert p.returncode == 0, text[-4000:]
    return text


def tree_digest(*dirs: Path) -> dict[str, str]:
    """sha1 of every file under dirs (relative names), logs and temporary names excluded."""
    out = {}
    for d in dirs:
        for p in sorted(d.rglob("*")):
            if p.is_file() and "log" not in p.parts:
                out[str(p.relative_to(d.parent))] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def mini_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mini")
    before = sorted(p.name for p in RECIPE.iterdir())
    log = run(out, "--stage", "0", "--stop_stage", "5")
    assert sorted(p.name for p in RECIPE.iterdir()) == before, "the recipe wrote into egs/mini"
    return out, log


def table_row(results: str, name: str) -> list[str]:
    for line in results.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == name:
            return cells
    raise AssertionError(f"no row {name!r} in RESULTS.md")


def test_stages_0_to_5_write_results_with_noisy_and_enhanced_rows(mini_run):
    out, log = mini_run
    for n in range(6):
        assert re.search(rf"\(run\.sh:\d+\) Stage {n}:", log), f"stage {n} did not log"
    results = (out / "exp" / "csmvanet_train" / "RESULTS.md").read_text()
    header = table_row(results, "System")
    assert header[1:] == ["PESQ", "STOI", "CSIG", "CBAK", "COVL", "segSNR", "SI-SDR", "VAD F1"]
    noisy, enh = table_row(results, "Noisy"), table_row(results, "csmvanet_train")
    assert noisy[-1] == "n/a" and 0.0 <= float(enh[-1]) <= 1.0
    # Even one short epoch must make the test mixtures cleaner.
    assert float(enh[7]) > float(noisy[7]) + 1.0, f"SI-SDR: noisy {noisy[7]}, enhanced {enh[7]}"
    assert "git:" in results and "torch:" in results
    for fig in re.findall(r"\]\(([^)]+\.png)\)", results):
        assert (out / "exp" / "csmvanet_train" / fig).is_file(), fig
    # the validation set is enhanced and scored too, and RESULTS.md holds both sets
    assert "# Set test:" in results and "# Set valid:" in results
    assert (out / "exp" / "csmvanet_train" / "enhanced_valid" / "scoring" / "RESULTS.md").is_file()
    # stage 5 also writes the listening report; its clips and figures are in the scoring folder
    scoring = out / "exp" / "csmvanet_train" / "enhanced_test" / "scoring"
    page = (scoring / "report.html").read_text()
    srcs = re.findall(r'src="([^"]+)"', page)
    assert sum(s.endswith(".flac") for s in srcs) >= 4 * 3 and "listen/by_snr.png" in srcs
    assert all((scoring / s).is_file() for s in srcs), srcs


def test_test_set_is_disjoint_from_training(mini_run):
    out, _ = mini_run
    data = out / "dump"
    train_spk = set(read_scp(data / "train" / "utt2spk").values())
    valid_spk = set(read_scp(data / "valid" / "utt2spk").values())
    test_spk = set(read_scp(data / "test" / "utt2spk").values())
    assert train_spk and valid_spk and test_spk
    assert not (train_spk & test_spk) and not (train_spk & valid_spk) and not (valid_spk & test_spk)

    def noise_files(part):
        lines = (data / part / "spec.tsv").read_text().splitlines()
        rows = [ln.split("\t") for ln in lines if ln and not ln.startswith("#")]
        col = rows[0].index("noise")
        return {r[col] for r in rows[1:]}

    assert all("/noise/train/" in f for f in noise_files("train") | noise_files("valid"))
    assert all("/noise/test/" in f for f in noise_files("test"))


def test_rerunning_stages_gives_the_same_outputs(mini_run):
    out, _ = mini_run
    dirs = [out / "corpus", out / "data", out / "dump"]
    first = tree_digest(*dirs)
    enh_first = tree_digest(out / "exp" / "csmvanet_train" / "enhanced_test")
    run(out, "--stage", "0", "--stop_stage", "2")
    assert tree_digest(*dirs) == first
    run(out, "--stage", "4", "--stop_stage", "4")
    second = tree_digest(out / "exp" / "csmvanet_train" / "enhanced_test")
    assert {k: v for k, v in second.items() if "/scoring/" not in k} == \
        {k: v for k, v in enh_first.items() if "/scoring/" not in k}


def test_a_killed_simulation_leaves_nothing_trusted(mini_run, tmp_path):
    out, _ = mini_run
    reference = tree_digest(out / "data", out / "dump")
    # a fresh copy of stages 1-2 on the same corpus, killed while it is writing audio
    work = tmp_path / "w"
    work.mkdir()
    os.symlink(out / "corpus", work / "corpus")
    run(work, "--stage", "1", "--stop_stage", "1")
    p = recipe(work, "--stage", "2", "--stop_stage", "2")
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        if len(list((work / "dump").rglob("*.wav"))) > 20:
            break
        time.sleep(0.05)
    if p.poll() is not None:
        raise AssertionError("stage 2 ended before it could be killed: " + p.communicate()[0][-3000:])
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    for part in ("train", "valid", "test"):
        assert not (work / "dump" / part).exists(), f"a killed stage 2 left dump/{part}"
    run(work, "--stage", "2", "--stop_stage", "2")
    again = tree_digest(work / "data", work / "dump")
    # lists that hold absolute paths differ by the folder; everything else must be the same bytes
    with_paths = ("wav.scp", "spk1.scp", "vad_labels.scp", "spec.tsv", "mixtures.tsv")
    strip = lambda d: {k: v for k, v in d.items() if not k.endswith(with_paths)}  # noqa: E731
    assert strip(again) == strip(reference)
    assert len(strip(again)) > 100
