"""Issue 13 (reliability): bad audio while scoring, killed workers, truncated WAVs, signals, key names.

Each test reproduces one failure that main had (silent wrong results, hangs, tracebacks, leftovers).
"""
from __future__ import annotations

import io
import math
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from csmvanet.audio.io import AudioError, audio_info, read_audio, write_audio
from csmvanet.data.datadir import read_scp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))
from batch_tools import BATCH_TOOLS, batch_tool_args  # noqa: E402
from test_score_cli import make_data  # noqa: E402

FS = 16000


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return env


def _cli(module: str, *args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"csmvanet.bin.{module}", *map(str, args)], env=_env(),
                          capture_output=True, text=True, timeout=timeout, **kw)


def _scp(path: Path) -> dict[str, str]:
    return {k: v for k, v in read_scp(path).items()}


# ---------------------------------------------------------------------------------------------
# item 3: scoring enhanced audio with NaN / Inf; every metric on its own
# ---------------------------------------------------------------------------------------------

def test_score_lists_nan_and_inf_utterances_and_scores_the_rest(tmp_path):
    root = make_data(tmp_path, n=3)
    enh = _scp(root / "exp" / "enh" / "enhanced.scp")
    x, _ = sf.read(enh["utt0"])
    x[100:110] = np.nan
    sf.write(enh["utt0"], x, FS, subtype="FLOAT")
    x, _ = sf.read(enh["utt1"])
    x[200] = np.inf
    sf.write(enh["utt1"], x, FS, subtype="FLOAT")
    out = tmp_path / "out"
    r = _cli("score", "--ref_scp", root / "data" / "spk1.scp", "--enh_scp", root / "exp" / "enh" / "enhanced.scp",
             "--out_dir", out, "--progress", "false", "--report", "false")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    errors = dict(line.split(" ", 1) for line in (out / "errors").read_text().splitlines())
    assert set(errors) == {"utt0", "utt1"}
    assert "10 NaN samples" in errors["utt0"] and enh["utt0"] in errors["utt0"]
    assert "1 Inf sample" in errors["utt1"] and "first at sample 200" in errors["utt1"]
    pesq = _scp(out / "enhanced" / "pesq")
    assert math.isfinite(float(pesq["utt2"])) and float(pesq["utt2"]) > 1.0
    stoi = _scp(out / "enhanced" / "stoi")
    assert "utt1" not in stoi  # no STOI silently computed on an Inf signal
    print("item 3 one-line:", [line for line in r.stderr.splitlines() if "utt0" in line][0])


def test_one_failing_metric_leaves_the_others_and_lists_the_utterance(tmp_path, monkeypatch):
    from csmvanet.metrics import scoring as S

    root = make_data(tmp_path, n=1)
    ref, enh = _scp(root / "data" / "spk1.scp")["utt0"], _scp(root / "exp" / "enh" / "enhanced.scp")["utt0"]

    def broken(*a, **k):
        raise TypeError("cannot convert float NaN to integer")

    monkeypatch.setattr(S, "stoi_or_reason", broken)
    res = S.score_utterance("utt0", ref, enh)
    assert res.error is not None and "stoi failed" in res.error and "TypeError" in res.error
    assert math.isnan(res.scores["enhanced"]["stoi"])
    for m in ("pesq", "si_sdr", "csig", "llr"):
        assert math.isfinite(res.scores["enhanced"][m]), m


# ---------------------------------------------------------------------------------------------
# item 4: a worker killed (as the out-of-memory killer does) stops the batch with a message
# ---------------------------------------------------------------------------------------------

def _killing_entry(path: str) -> str:
    """An scp pipe whose shell kills its parent: the worker process reading the entry."""
    return f"kill -9 $PPID; cat {path} |"


def _with_killer(scp: Path, key: str) -> None:
    entries = _scp(scp)
    entries[key] = _killing_entry(entries[key])
    scp.write_text("".join(f"{k} {v}\n" for k, v in sorted(entries.items())))


@pytest.mark.parametrize("tool", BATCH_TOOLS)
def test_killed_worker_fails_fast_naming_the_job(tool, tmp_path):
    root = make_data(tmp_path, n=4)
    spk1 = root / "data" / "spk1.scp"
    _with_killer(spk1, "utt2")
    args = batch_tool_args(tool, root, spk1, tmp_path / "out", tmp_path)
    if tool == "score":
        args += ["--report", "false"]
    try:
        r = _cli(tool, *args, "--nj", 2, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"csmvanet-{tool} --nj 2 hangs when a worker is killed")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    line = [x for x in r.stderr.splitlines() if "killed by SIGKILL" in x]
    assert line and "utt2" in line[0], r.stderr
    print(f"item 4 one-line ({tool}):", line[0])


def test_run_jobs_passes_exceptions_and_keeps_order():
    from csmvanet.base.process_pool import run_jobs

    assert list(run_jobs(abs, [-3, 2, -1, 5, -7], nj=2, chunksize=2)) == [3, 2, 1, 5, 7]
    assert sorted(run_jobs(abs, [-3, 2, -1], nj=3, ordered=False)) == [1, 2, 3]
    with pytest.raises(TypeError):
        list(run_jobs(abs, [1, "x", 3], nj=2))


class _SignalledBuffer(io.BytesIO):
    """io.BytesIO that sends this process SIGTERM from its first write or read (until ``fired`` is
    reset): from inside the callback libsndfile makes to Python, where cffi would print and drop any
    exception."""

    fired = False

    def _fire(self):
        if not _SignalledBuffer.fired:
            _SignalledBuffer.fired = True
            os.kill(os.getpid(), signal.SIGTERM)

    def write(self, b):
        self._fire()
        return super().write(b)

    def readinto(self, b):
        self._fire()
        return super().readinto(b)


def _write_with_sigterm(path):
    write_audio(path, np.zeros(1600, np.float32), 16000)
    return path


def test_sigterm_inside_soundfile_callbacks_is_delivered_after_them(tmp_path, monkeypatch, capfd):
    import csmvanet.audio.io as A
    from csmvanet.base.process_pool import WorkerDied, run_jobs
    from csmvanet.base.interrupts import Interrupted, stop_on_signals

    # main process: the tool's handler raises Interrupted once soundfile returns; no file is left
    buf = _SignalledBuffer
    monkeypatch.setattr(buf, "fired", False)
    monkeypatch.setattr(A, "io", types.SimpleNamespace(BytesIO=buf))
    with pytest.raises(Interrupted) as e, stop_on_signals():
        write_audio(tmp_path / "a.wav", np.zeros(1600, np.float32), 16000)
    assert buf.fired and e.value.status == 143 and os.listdir(tmp_path) == []
    # reading an scp pipe's bytes
    buf.fired = False
    sf.write(tmp_path / "b.wav", np.zeros(1600, np.float32), 16000)
    with pytest.raises(Interrupted), stop_on_signals():
        read_audio(f"cat {tmp_path / 'b.wav'} |")
    assert buf.fired
    # a pool worker (SIGTERM from the parent when a sibling fails): it exits 128 + 15
    buf.fired = False
    with pytest.raises(WorkerDied, match="exited with status 143"):
        list(run_jobs(_write_with_sigterm, [tmp_path / "c.wav", tmp_path / "d.wav"], nj=2))
    assert sorted(os.listdir(tmp_path)) == ["b.wav"]
    err = capfd.readouterr().err
    assert "Exception ignored" not in err and "Traceback" not in err, err


# ---------------------------------------------------------------------------------------------
# item 9 (first half): a WAV cut short is reported, not read as a shorter file
# ---------------------------------------------------------------------------------------------

def test_truncated_wav_is_reported(tmp_path):
    full = tmp_path / "full.wav"
    write_audio(full, np.full(16000, 0.1, dtype=np.float32), FS)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[:20000])
    assert read_audio(full)[0].shape == (16000,)
    for fn in (read_audio, audio_info):
        with pytest.raises(AudioError, match=r"cut\.wav: truncated WAV: the header announces 16000 samples, "
                                             r"the file holds 9978"):
            fn(cut)
    # a streamed WAV (size left open, as sox writes to a pipe) is not called truncated
    data = bytearray(full.read_bytes())
    data[40:44] = (0xFFFFFFFF).to_bytes(4, "little")
    (tmp_path / "stream.wav").write_bytes(bytes(data))
    assert read_audio(tmp_path / "stream.wav")[0].shape == (16000,)
    # through a batch tool: listed as failed with the reason, the rest done
    scp = tmp_path / "in.scp"
    scp.write_text(f"a {full}\nb {cut}\n")
    r = _cli("resample", "--scp", scp, "--fs", 8000, "--out_dir", tmp_path / "o", "--out_scp", tmp_path / "o.scp",
             "--quiet")
    assert r.returncode == 1
    assert "truncated WAV" in r.stderr and "cut.wav" in r.stderr
    assert list(_scp(tmp_path / "o.scp")) == ["a"]
