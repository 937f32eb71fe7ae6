"""utils/slurm.pl against a real single-node Slurm, started by tools/setup_slurm.sh.

The set-up script installs the packages (apt-get) when they are missing and starts munge, slurmctld
and slurmd. The tests are skipped only where Slurm cannot be installed or started (not root, no
apt-get, the install fails: the script's exit status 2). Daemons this module started are stopped at
the end; a cluster that was already up is left running.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "tools" / "setup_slurm.sh"
SLURM_PL = ROOT / "utils" / "slurm.pl"


@pytest.fixture(scope="module")
def slurm():
    status = subprocess.run([str(SETUP), "status"], capture_output=True, text=True, timeout=60)
    already_up = status.returncode == 0
    if not already_up:
        if os.geteuid() != 0:
            pytest.skip("Slurm cannot be installed here: tools/setup_slurm.sh needs root")
        r = subprocess.run([str(SETUP)], capture_output=True, text=True, timeout=900)
        if r.returncode == 2:
            pytest.skip(f"Slurm cannot be installed here: {r.stderr.strip().splitlines()[-1]}")
        assert r.returncode == 0, f"tools/setup_slurm.sh failed:\n{r.stdout}\n{r.stderr}"
        assert r.stdout.strip().splitlines()[-1] == "slurm: idle"
    yield
    if not already_up:
        subprocess.run([str(SETUP), "stop"], capture_output=True, text=True, timeout=120)


def slurm_pl(*args, cwd):
    return subprocess.run([str(SLURM_PL), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_slurm_pl_runs_a_4_job_array(slurm, tmp_path):
    r = slurm_pl("--mem", "100M", "--num-threads", "1", "--time", "5", "--max-jobs-run", "2",
                 "JOB=1:4", "log/x.JOB.log", "echo job JOB task $SLURM_ARRAY_TASK_ID; echo err JOB >&2",
                 cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    job_ids = set()
    for i in range(1, 5):
        lines = (tmp_path / "log" / f"x.{i}.log").read_text().splitlines()
        assert lines[0] == f"# echo job {i} task $SLURM_ARRAY_TASK_ID; echo err {i} >&2"
        assert lines[1].startswith("# Started at") and "(slurm job " in lines[1]
        job_ids.add(lines[1].split("(slurm job ")[1].rstrip(")"))
        # ran as array task i of a Slurm job
        assert f"job {i} task {i}" in lines and f"err {i}" in lines
        assert lines[-2].startswith("# Accounting: time=")
        assert lines[-1].startswith("# Ended (code 0) at")
    assert len(job_ids) == 4  # each task is its own Slurm job id within the array
    script = (tmp_path / "log" / "q" / "x.sh").read_text()
    assert "--array=1-4%2" in script and "--mem=100M" in script and "--cpus-per-task=1" in script


def test_slurm_pl_fails_naming_the_failing_log(slurm, tmp_path):
    r = slurm_pl("JOB=1:4", "log/f.JOB.log", "test", "JOB", "-ne", "3", cwd=tmp_path)
    assert r.returncode == 1
    assert "slurm.pl: 1 / 4 failed, log is in log/f.3.log" in r.stderr
    assert (tmp_path / "log" / "f.3.log").read_text().splitlines()[-1].startswith("# Ended (code 1)")
    assert (tmp_path / "log" / "f.4.log").read_text().splitlines()[-1].startswith("# Ended (code 0)")


def test_slurm_pl_single_job_and_gpu_request(slurm, tmp_path):
    r = slurm_pl("log/one.log", "echo", "a b", "|", "wc", "-w", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "2" in (tmp_path / "log" / "one.log").read_text().splitlines()
    # this node has no GPUs: the --gres request reaches sbatch, which refuses it, and slurm.pl says so
    r = slurm_pl("--gpu", "1", "log/gpu.log", "true", cwd=tmp_path)
    assert r.returncode == 1
    assert "sbatch failed" in r.stderr and "--gres=gpu:1" in r.stderr
