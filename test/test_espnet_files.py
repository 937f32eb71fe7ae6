"""ESPnet's scoring layout written by csmvanet-score (csmvanet/reports/espnet_files.py), as read by
ESPnet's scripts/utils/show_enh_score.sh: <exp>/<tag>/<inference_tag>_<set>/scoring/ holds
<METRIC>_spk1 (`utt value`, sorted), wav_spk1 and result_<metric>.txt (the mean, "%.2f")."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from csmvanet.data.datadir import read_scp

FS = 16000
ROOT = Path(__file__).resolve().parents[1]
# the columns show_enh_score.sh looks for, in its order (egs2/TEMPLATE/enh1/scripts/utils/show_enh_score.sh)
SHOW_ENH_SCORE_COLUMNS = ("pesq", "estoi", "stoi", "sar", "sdr", "sir", "si_snr")


def score(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "csmvanet.bin.score", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """An exp dir as stage 5 leaves it: exp/csmvanet_train/enhanced_test/scoring (3 utterances)."""
    root = tmp_path_factory.mktemp("espnet_layout")
    rng = np.random.default_rng(0)
    t = np.arange(int(1.5 * FS)) / FS
    ref, enh = {}, {}
    for i, u in enumerate(["s2_u1", "s1_u2", "s1_u10"]):   # unsorted on purpose
        clean = 0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t) * (np.sin(2 * np.pi * 1.5 * t) > 0)
        out = clean + 0.02 * (i + 1) * rng.standard_normal(t.size)
        sf.write(root / f"{u}_c.wav", clean, FS, subtype="FLOAT")
        sf.write(root / f"{u}_e.wav", out, FS, subtype="FLOAT")
        ref[u], enh[u] = str(root / f"{u}_c.wav"), str(root / f"{u}_e.wav")
    (root / "spk1.scp").write_text("".join(f"{k} {v}\n" for k, v in ref.items()))
    (root / "enhanced.scp").write_text("".join(f"{k} {v}\n" for k, v in enh.items()))
    out = root / "exp" / "csmvanet_train" / "enhanced_test" / "scoring"
    r = score("--ref_scp", root / "spk1.scp", "--enh_scp", root / "enhanced.scp", "--out_dir", out,
              "--figures", "false", "--progress", "false")
    assert r.returncode == 0, r.stderr
    return root, out, enh


def test_per_metric_files_hold_our_per_utterance_scores(scored):
    _, out, enh = scored
    ours = {"PESQ": "pesq", "STOI": "stoi", "SI_SNR": "si_sdr", "CSIG": "csig", "CBAK": "cbak", "COVL": "covl",
            "SSNR": "segsnr"}
    for name, metric in ours.items():
        f = out / f"{name}_spk1"
        lines = f.read_text().splitlines()
        keys = [ln.split()[0] for ln in lines]
        assert keys == sorted(enh, key=str.encode), f"{f.name}: keys not in C-locale order"
        theirs = {k: float(v) for k, v in read_scp(f).items()}
        mine = {k: float(v) for k, v in read_scp(out / "enhanced" / metric).items()}
        assert theirs.keys() == mine.keys()
        for k in mine:
            assert theirs[k] == pytest.approx(mine[k], abs=1e-5), (name, k)
        values = np.array(list(mine.values()))
        mean = values[np.isfinite(values)].mean()
        result = (out / f"result_{name.lower()}.txt").read_text()
        assert re.fullmatch(r"-?\d+\.\d\d\n", result), result
        assert result == f"{mean:.2f}\n"
    assert read_scp(out / "wav_spk1") == dict(sorted(enh.items()))


def test_show_enh_score_finds_the_sets_and_columns(scored):
    """The rules show_enh_score.sh applies to `show_enh_score.sh exp`: an experiment is a folder of
    exp (maxdepth 1) with */scoring/result_stoi.txt; a set is that folder's name; a column is a
    metric whose result_<metric>.txt exists; the value is its first line."""
    root, out, _ = scored
    exp_root = root / "exp"
    experiments = [d for d in exp_root.iterdir() if d.is_dir() and list(d.glob("*/scoring/result_stoi.txt"))]
    assert [d.name for d in experiments] == ["csmvanet_train"]
    sets = [p.parents[1].name for p in experiments[0].glob("*/scoring/result_stoi.txt")]
    assert sets == ["enhanced_test"]
    columns = [m for m in SHOW_ENH_SCORE_COLUMNS if list(experiments[0].glob(f"*/scoring/result_{m}.txt"))]
    assert columns == ["pesq", "stoi", "si_snr"]
    row = [(out / f"result_{m}.txt").read_text().splitlines()[0] for m in columns]
    assert all(math.isfinite(float(v)) for v in row)


def test_scoring_protocol_chooses_the_files_and_refuses_what_we_do_not_compute(scored, tmp_path):
    root, out, _ = scored
    again = tmp_path / "scoring"
    args = ["--ref_scp", root / "spk1.scp", "--enh_scp", root / "enhanced.scp", "--out_dir", again,
            "--figures", "false", "--progress", "false", "--report", "false"]
    assert score(*args).returncode == 0
    assert (again / "result_pesq.txt").is_file()
    r = score(*args, "--scoring_protocol", "stoi si_snr")   # case-insensitive, as ESPnet's names
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in again.glob("result_*.txt")) == ["result_si_snr.txt", "result_stoi.txt"]
    assert not (again / "PESQ_spk1").exists()  # an earlier protocol's files do not linger
    r = score(*args, "--scoring_protocol", "STOI SDR SAR SIR SI_SNR")  # ESPnet's default
    assert r.returncode == 2 and "--scoring_protocol SDR: csmvanet-score does not compute BSS-Eval SDR" in r.stderr
    assert "Traceback" not in r.stderr


def test_split_jobs_leave_the_espnet_files_to_the_merge(scored, tmp_path):
    root, _, _ = scored
    job = tmp_path / "split" / "1"
    r = score("--ref_scp", root / "spk1.scp", "--enh_scp", root / "enhanced.scp", "--out_dir", job,
              "--job", 1, "--num_jobs", 2, "--report", "false", "--progress", "false")
    assert r.returncode == 0, r.stderr
    assert not list(job.glob("result_*.txt")) and not list(job.glob("*_spk1"))
