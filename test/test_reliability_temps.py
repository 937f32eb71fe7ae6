"""Issue 30 item 7: runs writing into one folder do not remove each other's temporary files; a
temporary file whose owner is gone (SIGKILL) is removed by the next run."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from csmvanet.base.atomic_files import atomic_path, owner_tag, remove_stale_temps, remove_temps_of

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))
from test_enhance import SR, make_exp, noisy_speech, tiny_cfg  # noqa: E402

PY = sys.executable
HOST = owner_tag().split("@", 1)[1]


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _touch(path: Path, mtime: float | None = None) -> Path:
    path.write_bytes(b"RIFF")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_cleanup_removes_only_temps_whose_owner_is_gone(tmp_path):
    me, dead = os.getpid(), _dead_pid()
    live = _touch(tmp_path / f".a.abcdefgh.{me}@{HOST}.tmp.wav")             # a running writer's
    other_host = _touch(tmp_path / f".a.abcdefgh.{dead}@not-{HOST}.tmp.wav")  # cannot be checked: kept
    orphan = _touch(tmp_path / f".a.abcdefgh.{dead}@{HOST}.tmp.wav")         # its writer was killed
    reused = _touch(tmp_path / f".a.ijklmnop.{me}@{HOST}.tmp.wav", mtime=time.time() - 10 * 86400)
    legacy = _touch(tmp_path / ".a.qrstuvwx.tmp.wav")                        # no owner: an older version's
    other_file = _touch(tmp_path / f".b.abcdefgh.{dead}@{HOST}.tmp.wav")     # another output's
    not_temp = _touch(tmp_path / ".a.wav")
    with atomic_path(tmp_path / "a.wav") as mine:
        _touch(mine)
        assert remove_temps_of(tmp_path / "a.wav") == 3
        assert mine.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live, other_host, other_file, not_temp, tmp_path / "a.wav"))
    assert not (orphan.exists() or reused.exists() or legacy.exists())
    ckpt = _touch(tmp_path / f".x.best.abcdefgh.{dead}@{HOST}.tmp.pth")
    ckpt_live = _touch(tmp_path / f".x.best.abcdefgh.{me}@{HOST}.tmp.pth")
    assert remove_stale_temps(tmp_path, ".pth") == 1 and not ckpt.exists() and ckpt_live.exists()
    assert remove_stale_temps(tmp_path) == 1 and not other_file.exists() and live.exists()


def test_temp_names_carry_the_owner(tmp_path):
    with atomic_path(tmp_path / "out.v2.wav") as tmp:
        assert tmp.name.startswith(".out.v2.") and tmp.name.endswith(f".{os.getpid()}@{HOST}.tmp.wav")


# pauses the first output write of a csmvanet-enhance run until $GO exists ($PAUSED says it waits)
_PAUSE_IN_WRITE = """
import os, time, soundfile
_orig = soundfile.SoundFile.write
def write(self, data):
    _orig(self, data)
    if not os.path.exists(os.environ["PAUSED"]):
        open(os.environ["PAUSED"], "w").close()
        t = time.monotonic()
        while not os.path.exists(os.environ["GO"]) and time.monotonic() - t < 120:
            time.sleep(0.05)
soundfile.SoundFile.write = write
"""


@pytest.fixture(scope="module")
def exp(tmp_path_factory) -> Path:
    return make_exp(tmp_path_factory.mktemp("exp") / "tiny", tiny_cfg())


def _enhance_cmd(exp: Path, scp: Path, out: Path, script: str = "") -> list[str]:
    code = (f"import sys\n{script}\nfrom csmvanet.bin.enhance import main\n"
            f"sys.exit(main({['--model', str(exp), '--wav_scp', str(scp), '--output_dir', str(out), '--no_progress']!r}))")
    return [PY, "-c", code]


def test_two_enhance_runs_into_one_folder_both_succeed(exp, tmp_path):
    scp = tmp_path / "wav.scp"
    inputs = []
    for i in range(2):
        inputs.append(tmp_path / f"in{i}.wav")
        sf.write(str(inputs[-1]), noisy_speech(0.5, seed=i).astype(np.float32), SR, subtype="PCM_16")
    scp.write_text("".join(f"u{i} {p}\n" for i, p in enumerate(inputs)))
    out = tmp_path / "out"
    out.mkdir()
    stale = _touch(out / f".u1.abcdefgh.{_dead_pid()}@{HOST}.tmp.wav")   # a run killed with SIGKILL left it
    paused, go = tmp_path / "paused", tmp_path / "go"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), PAUSED=str(paused), GO=str(go))
    first = subprocess.Popen(_enhance_cmd(exp, scp, out, _PAUSE_IN_WRITE), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        t = time.monotonic()
        while not paused.exists() and first.poll() is None and time.monotonic() - t < 120:
            time.sleep(0.05)
        assert paused.exists(), first.communicate()[1]
        # the first run holds its temporary file of u0.wav; a second run writes the same outputs
        held = [p.name for p in out.iterdir() if p.name.startswith(".u0.")]
        assert len(held) == 1 and f".{first.pid}@{HOST}.tmp.wav" in held[0], held
        second = subprocess.run(_enhance_cmd(exp, scp, out), env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stderr
        assert (out / held[0]).exists()      # left alone: its owner runs
        assert not stale.exists()            # removed: its owner is gone
        go.touch()
        _, err = first.communicate(timeout=300)
    finally:
        go.touch()
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert "enhanced 2 of 2" in err and "enhanced 2 of 2" in second.stderr
    assert sorted(p.name for p in out.iterdir()) == ["u0.wav", "u1.wav"]
    assert sf.info(str(out / "u0.wav")).frames == sf.info(str(inputs[0])).frames
