"""Issue 30 items 8 and 13 (pipe errors): a ``cmd |`` entry that hangs times out with one line naming
the list and the key, the batch goes on, and neither a timeout nor SIGTERM leaves the pipe's
processes running."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from csmvanet.data.datadir import read_scp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))
from batch_tools import BATCH_TOOLS, batch_tool_args  # noqa: E402
from test_enhance import SR, make_exp, noisy_speech, tiny_cfg  # noqa: E402

PY = sys.executable
VALIDATE = REPO / "utils" / "validate_data_dir.sh"


@pytest.fixture(scope="module")
def exp(tmp_path_factory) -> Path:
    return make_exp(tmp_path_factory.mktemp("exp") / "tiny", tiny_cfg())


@pytest.fixture
def pipe_pids():
    """Files the hanging entries write their pids to; whatever still runs at the end is killed."""
    files: list[Path] = []
    yield files
    for f in files:
        for pid in _pids(f):
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def _env(**extra) -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), **extra)


def _hanging(pids: Path) -> str:
    """A pipe entry that never writes: its shell waits for a child ``sleep 1000``; both pids go to ``pids``."""
    return f"sleep 1000 & echo $$ $! > {pids}; wait |"


def _pids(f: Path) -> list[int]:
    return [int(x) for x in f.read_text().split()] if f.is_file() else []


def _gone(pid: int) -> bool:
    """No such process, or one that has exited and waits to be reaped (a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def _assert_pipe_gone(f: Path) -> None:
    pids = _pids(f)
    assert len(pids) == 2, f"the pipe did not start: {f}"
    deadline = time.monotonic() + 5
    while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(p) for p in pids), f"pipe processes still running: {pids}"


def _wav(path: Path, seed: int) -> Path:
    sf.write(str(path), noisy_speech(0.5, seed=seed).astype(np.float32), SR, subtype="PCM_16")
    return path


def _line(stderr: str, needle: str) -> str:
    hits = [x for x in stderr.splitlines() if needle in x]
    assert len(hits) == 1, stderr
    return hits[0].split("\r")[-1].strip()


def test_enhance_times_out_a_hanging_pipe_and_goes_on(exp, tmp_path, pipe_pids):
    pids = tmp_path / "pids"
    pipe_pids.append(pids)
    scp = tmp_path / "wav.scp"
    scp.write_text(f"u0 {_wav(tmp_path / 'a.wav', 0)}\nu1 {_hanging(pids)}\nu2 {_wav(tmp_path / 'b.wav', 1)}\n")
    out = tmp_path / "out"
    r = subprocess.run([PY, "-m", "csmvanet.bin.enhance", "--model", exp, "--wav_scp", scp, "--output_dir", out,
                        "--no_progress"], env=_env(CSMVANET_PIPE_TIMEOUT="2"), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    line = _line(r.stderr, "no output for 2 s")
    assert line.startswith(f"ERROR {scp}: utterance 'u1': ") and "CSMVANET_PIPE_TIMEOUT" in line, line
    assert sorted(p.name for p in out.iterdir()) == ["u0.wav", "u2.wav"]
    assert "1 input(s) failed" in r.stderr
    _assert_pipe_gone(pids)
    print("item 8 one-line (enhance):", line)


# what each tool finished although one entry hung
_DONE = {"score": lambda out, tmp: "scored 3 utterances" in (out / "score.log").read_text(),
         "resample": lambda out, tmp: len(read_scp(tmp / "o.scp")) == 3,
         "vad_labels": lambda out, tmp: len(read_scp(out / "vad_labels.scp")) == 3,
         "simulate": lambda out, tmp: len(read_scp(out / "data" / "wav.scp")) == 3}
# how each names the entry: the list and the key, or the role and the key
_NAMES = {"score": "utt2: reference 'sleep 1000", "resample": "spk1.scp: key 'utt2': 'sleep 1000",
          "vad_labels": "spk1.scp: key 'utt2': 'sleep 1000", "simulate": "utt2: speech 'utt2': 'sleep 1000"}


@pytest.mark.parametrize("tool", BATCH_TOOLS)
def test_batch_tools_time_out_a_hanging_pipe(tool, tmp_path, pipe_pids):
    from test_score_cli import make_data

    pids = tmp_path / "pids"
    pipe_pids.append(pids)
    root = make_data(tmp_path, n=4)
    spk1 = root / "data" / "spk1.scp"
    entries = read_scp(spk1)
    entries["utt2"] = _hanging(pids)
    spk1.write_text("".join(f"{k} {v}\n" for k, v in sorted(entries.items())))
    args = batch_tool_args(tool, root, spk1, tmp_path / "out", tmp_path)
    r = subprocess.run([PY, "-m", f"csmvanet.bin.{tool}", *map(str, args)], env=_env(CSMVANET_PIPE_TIMEOUT="2"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    line = _line(r.stderr, "no output for 2 s")
    assert _NAMES[tool] in line, line
    assert _DONE[tool](tmp_path / "out", tmp_path), r.stderr
    _assert_pipe_gone(pids)
    print(f"item 8/13 one-line ({tool}):", line)


def test_validate_times_out_a_hanging_pipe(tmp_path, pipe_pids):
    from datadir_helpers import make_data_dir, read_lines, write_lines

    pids = tmp_path / "pids"
    pipe_pids.append(pids)
    data = make_data_dir(tmp_path, with_vad=False)
    lines = read_lines(data / "wav.scp")
    utt = lines[0].split()[0]
    lines[0] = f"{utt} {_hanging(pids)}"
    write_lines(data / "wav.scp", lines)
    r = subprocess.run([str(VALIDATE), "--check-pipes", str(data)], env=_env(CSMVANET_PIPE_TIMEOUT="2"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    line = _line(r.stderr, "no output for 2 s")
    assert f"{data / 'wav.scp'}: key '{utt}': 'sleep 1000" in line, line
    _assert_pipe_gone(pids)
    print("item 8 one-line (validate):", line)


@pytest.mark.parametrize("tool", ["enhance", "validate"])
def test_sigterm_leaves_no_process_of_the_pipe(tool, exp, tmp_path, pipe_pids):
    """No timeout (the default is minutes): SIGTERM to the tool alone ends the pipe's whole group."""
    pids = tmp_path / "pids"
    pipe_pids.append(pids)
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"u1 {_hanging(pids)}\n")
    (data / "utt2spk").write_text("u1 u1\n")
    (data / "spk2utt").write_text("u1 u1\n")
    if tool == "enhance":
        cmd = [PY, "-m", "csmvanet.bin.enhance", "--model", str(exp), "--wav_scp", str(data / "wav.scp"),
               "--output_dir", str(tmp_path / "out"), "--no_progress"]
    else:
        cmd = [str(VALIDATE), "--check-pipes", "--no-spk-sort", str(data)]
    env = _env()
    env.pop("CSMVANET_PIPE_TIMEOUT", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)   # the signal goes to the tool only, not to a group
    try:
        deadline = time.monotonic() + 120
        while len(_pids(pids)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert len(_pids(pids)) == 2, proc.communicate(timeout=5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert "Traceback" not in err, err
    _assert_pipe_gone(pids)


def test_timeout_bounds_silence_not_total_time(tmp_path, monkeypatch):
    from csmvanet.audio.io import AudioError, read_audio

    wav = _wav(tmp_path / "a.wav", 0)
    n = wav.stat().st_size
    # three parts 0.7 s apart: 1.4 s in all, never 1 s without output
    slow = (f"(head -c 44 {wav}; sleep 0.7; head -c 2000 {wav} | tail -c +45; sleep 0.7; "
            f"tail -c +2001 {wav}) |")
    monkeypatch.setenv("CSMVANET_PIPE_TIMEOUT", "1")
    data, sr = read_audio(slow)
    np.testing.assert_array_equal(data, read_audio(wav)[0])
    assert sr == SR and n > 2000
    with pytest.raises(AudioError, match=r"'sleep 1.5; cat .* \|': no output for 1 s"):
        read_audio(f"sleep 1.5; cat {wav} |")
    for bad in ("-1", "soon", "nan"):
        monkeypatch.setenv("CSMVANET_PIPE_TIMEOUT", bad)
        with pytest.raises(AudioError, match=f"CSMVANET_PIPE_TIMEOUT='{bad}': expected seconds >= 0"):
            read_audio(f"cat {wav} |")
