"""utils/slurm.pl against a real single-node Slurm, started by tools/setup_slurm.sh.

The cluster this module starts lives in a temporary folder: its config (SLURM_CONF), state, spool,
logs and a private munged (MUNGE_DIR) are all there, so nothing is written to /etc, /run or the
repository; at the end the daemons are stopped by their pid files and the folder is removed.
Skipped, with the reason, where that cannot leave the host as it was found:
- the host has its own Slurm (/etc/slurm/slurm.conf not written by tools/setup_slurm.sh), or the
  Slurm commands are not installed (installing packages changes the host; set
  CSMVANET_TEST_SLURM_INSTALL=1 to let tools/setup_slurm.sh apt-get them; CI, which runs with
  CI=true on a machine set up for this project, does, so slurm.pl is tested against a real Slurm there);
- not root (the daemons run as root / munge), or the script reports that Slurm cannot start here.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "tools" / "setup_slurm.sh"
SLURM_PL = ROOT / "utils" / "slurm.pl"
MARKER = "# written by csmvanet tools/setup_slurm.sh"
HOST_CONF = Path("/etc/slurm/slurm.conf")
_ENV: dict = {}


def _skip_reason() -> str | None:
    if HOST_CONF.is_file() and MARKER not in HOST_CONF.read_text(errors="replace"):
        return f"this host has its own Slurm ({HOST_CONF}); the tests do not touch it"
    if os.geteuid() != 0:
        return "starting Slurm daemons needs root"
    missing = [c for c in ("slurmctld", "slurmd", "sbatch", "munged") if shutil.which(c) is None]
    may_install = os.environ.get("CSMVANET_TEST_SLURM_INSTALL") == "1" or os.environ.get("CI") == "true"
    if missing and not may_install:
        return (f"Slurm is not installed ({', '.join(missing)} missing); installing packages changes the "
                "host: set CSMVANET_TEST_SLURM_INSTALL=1 to let tools/setup_slurm.sh install them")
    return None


@pytest.fixture(scope="module")
def slurm():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    top = Path(tempfile.mkdtemp(prefix="csmvanet-slurm-"))
    top.chmod(0o755)                      # munged runs as the munge user and must reach its folder
    env = dict(os.environ, SLURM_STATE_DIR=str(top / "state"), SLURM_CONF=str(top / "slurm.conf"),
               MUNGE_DIR=str(top / "munge"))
    try:
        r = subprocess.run([str(SETUP)], capture_output=True, text=True, timeout=900, env=env)
        if r.returncode == 2:
            pytest.skip(f"Slurm cannot be started here: {r.stderr.strip().splitlines()[-1]}")
        assert r.returncode == 0, f"tools/setup_slurm.sh failed:\n{r.stdout}\n{r.stderr}"
        assert r.stdout.strip().splitlines()[-1] == "slurm: idle"
        _ENV.update(env)
        yield
    finally:
        _ENV.clear()
        subprocess.run([str(SETUP), "stop"], capture_output=True, text=True, timeout=120, env=env)
        shutil.rmtree(top, ignore_errors=True)


def slurm_pl(*args, cwd):
    return subprocess.run([str(SLURM_PL), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=_ENV)


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
