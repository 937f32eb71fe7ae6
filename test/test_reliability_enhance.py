"""Issue 13 (reliability) and 14.5 for csmvanet-enhance and the signals of every batch tool."""
from __future__ import annotations

import os
import subprocess
import sys
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


@pytest.fixture(scope="module")
def exp(tmp_path_factory) -> Path:
    return make_exp(tmp_path_factory.mktemp("exp") / "tiny", tiny_cfg())


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))


def _enhance(*args, script: str = "") -> subprocess.CompletedProcess:
    """csmvanet-enhance in a fresh interpreter; ``script`` runs first (to patch something)."""
    code = (f"import sys\n{script}\nfrom csmvanet.bin.enhance import main\n"
            f"sys.exit(main({[str(a) for a in args]!r}))")
    return subprocess.run([PY, "-c", code], env=_env(), capture_output=True, text=True, timeout=300)


def _wav(path: Path, seconds: float = 0.5, seed: int = 1, scale: float = 1.0, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), (noisy_speech(seconds, seed=seed) * scale).astype(np.float32), SR, subtype=subtype)
    return path


def _temps(*folders: Path) -> list[Path]:
    return [p for d in folders if d.is_dir() for p in d.rglob(".*") if ".tmp" in p.name]


def _line(stderr: str, needle: str) -> str:
    hits = [x for x in stderr.splitlines() if needle in x]
    assert hits, stderr
    return hits[0].split("\r")[-1].strip()


# ---------------------------------------------------------------------------------------------
# items 1 and 2: a key maps to <output_dir>/<key>.<ext> exactly; keys leaving the folder refused
# ---------------------------------------------------------------------------------------------

def test_keys_with_dots_get_their_own_outputs(exp, tmp_path):
    keys = ["sp0.9-s08_001", "sp1.1-s08_001", "utt.v2", "utt.v3"]
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"{k} {_wav(tmp_path / f'in{i}.wav', seed=i)}\n" for i, k in enumerate(keys)))
    out = tmp_path / "out"
    r = _enhance("--model", exp, "--wav_scp", scp, "--output_dir", out, "--out_scp", tmp_path / "enh.scp",
                 "--no_progress")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{k}.wav" for k in keys)
    enh = read_scp(tmp_path / "enh.scp")
    assert {k: Path(v).name for k, v in enh.items()} == {k: f"{k}.wav" for k in keys}
    outs = [sf.read(enh[k])[0] for k in keys]
    assert all(not np.array_equal(outs[0], o) for o in outs[1:])   # four different files
    print("item 1 one-line:", _line(r.stderr, "enhanced 4 of 4"))


def test_keys_that_leave_the_output_dir_are_refused(exp, tmp_path):
    outside = tmp_path / "abs" / "x"
    scp = tmp_path / "wav.scp"
    good = _wav(tmp_path / "in.wav")
    scp.write_text(f"../../escaped {good}\n{outside} {good}\nok {good}\n")
    out = tmp_path / "a" / "b" / "out"
    r = _enhance("--model", exp, "--wav_scp", scp, "--output_dir", out, "--no_progress")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    line = _line(r.stderr, "'../../escaped'")
    assert "invalid id" in line and str(scp) in line
    assert f"{outside!s}" in _line(r.stderr, "abs/x'")
    assert sorted(p.name for p in out.iterdir()) == ["ok.wav"]
    assert not (tmp_path / "a" / "escaped.wav").exists() and not outside.with_suffix(".wav").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "in.wav", "wav.scp"]
    print("item 2 one-line:", line)


# ---------------------------------------------------------------------------------------------
# item 5 and issue 14.5: folders - skipped files listed; temp files never inputs, removed next run
# ---------------------------------------------------------------------------------------------

def test_folder_lists_skipped_files_and_reads_ogg(exp, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    _wav(src / "a.wav")
    _wav(src / ".a.k2j4h5l6.tmp.wav")                # left by an enhance run killed with SIGKILL
    sf.write(str(src / "b.ogg"), noisy_speech(0.5, seed=3).astype(np.float32), SR, format="OGG", subtype="VORBIS")
    (src / "notes.txt").write_text("not audio\n")
    (src / "c.m4a").write_bytes(b"\0" * 100)
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".a.abcdefgh.tmp.wav"
    stale.write_bytes(b"RIFF")
    r = _enhance("--model", exp, src, "--output_dir", out, "--no_progress")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "b.wav"]   # the stale temp file is gone
    for name, why in ((".a.k2j4h5l6.tmp.wav", "starts with '.'"), ("notes.txt", "'.txt' is not"),
                      ("c.m4a", "'.m4a' is not")):
        assert why in _line(r.stderr, f"skipped {src / name}")
    assert "ogg" in _line(r.stderr, "c.m4a")   # the line names what is read
    assert "skipped 3 file(s)" in r.stderr
    print("item 5/14.5 one-line:", _line(r.stderr, ".a.k2j4h5l6"))


# ---------------------------------------------------------------------------------------------
# item 5: SIGTERM / SIGINT in every batch tool
# ---------------------------------------------------------------------------------------------

_SIGNAL_DURING_SECOND_WRITE = """
import os, signal, soundfile
_orig, _n = soundfile.SoundFile.write, [0]
def write(self, data):
    _n[0] += 1
    _orig(self, data)
    if _n[0] == 2:
        os.kill(os.getpid(), signal.{sig})
soundfile.SoundFile.write = write
"""


@pytest.mark.parametrize("sig,status", [("SIGTERM", 143), ("SIGINT", 130)])
def test_enhance_signal_leaves_no_temp_files(exp, tmp_path, sig, status):
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"u{i} {_wav(tmp_path / f'in{i}.wav', seed=i)}\n" for i in range(4)))
    out, vad = tmp_path / "out", tmp_path / "vad"
    r = _enhance("--model", exp, "--wav_scp", scp, "--output_dir", out, "--vad_dir", vad, "--out_scp",
                 tmp_path / "enh.scp", "--no_progress", script=_SIGNAL_DURING_SECOND_WRITE.format(sig=sig))
    assert r.returncode == status, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    line = _line(r.stderr, f"stopped by {sig}")
    assert "enhanced 1 of 4 input(s)" in line
    assert _temps(out, vad, tmp_path) == []
    assert sorted(p.name for p in out.iterdir()) == ["u0.wav"]
    assert not (tmp_path / "enh.scp").exists()
    print(f"item 5 one-line ({sig}):", line)


def _kill_entry(sig: str, path: str) -> str:
    """An scp pipe that sends ``sig`` to the tool reading it (nj 1: the tool's own process)."""
    return f"kill -{sig} $PPID; cat {path} |"


@pytest.mark.parametrize("tool", BATCH_TOOLS)
@pytest.mark.parametrize("sig,status", [("TERM", 143), ("INT", 130)])
def test_batch_tools_stop_cleanly_on_signals(tool, sig, status, tmp_path):
    from test_score_cli import make_data

    root = make_data(tmp_path, n=4)
    spk1 = root / "data" / "spk1.scp"
    entries = read_scp(spk1)
    entries["utt2"] = _kill_entry(sig, entries["utt2"])
    spk1.write_text("".join(f"{k} {v}\n" for k, v in sorted(entries.items())))
    args = batch_tool_args(tool, root, spk1, tmp_path / "out", tmp_path)
    r = subprocess.run([PY, "-m", f"csmvanet.bin.{tool}", *map(str, args)], env=_env(), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == status, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    line = _line(r.stderr, f"stopped by SIG{sig}")
    assert " 2 of 4 " in line, line
    assert _temps(tmp_path) == []
    print(f"item 5 one-line ({tool}, SIG{sig}):", line)


# ---------------------------------------------------------------------------------------------
# item 9 (second half): input above full scale normalised and restored, not limited
# ---------------------------------------------------------------------------------------------

def test_loud_float_input_keeps_its_level(exp, tmp_path):
    x = noisy_speech(1.0, seed=5).astype(np.float32)
    x = x / np.abs(x).max()
    loud = _wav(tmp_path / "loud.wav", seconds=1.0, seed=5, subtype="FLOAT")
    sf.write(str(loud), x * 4.0, SR, subtype="FLOAT")
    sf.write(str(tmp_path / "unit.wav"), x, SR, subtype="FLOAT")
    out = tmp_path / "out"
    r = _enhance("--model", exp, loud, tmp_path / "unit.wav", "--output_dir", out, "--output_subtype", "FLOAT",
                 "--no_progress")
    assert r.returncode == 0, r.stderr
    y_loud, y_unit = sf.read(out / "loud.wav")[0], sf.read(out / "unit.wav")[0]
    np.testing.assert_allclose(y_loud, 4.0 * y_unit, rtol=1e-4, atol=1e-5)   # same result, level restored
    r = _enhance("--model", exp, loud, "--output_dir", tmp_path / "pcm", "--no_progress")
    assert r.returncode == 1
    line = _line(r.stderr, "above full scale")
    assert str(loud) in line and "--output_subtype FLOAT" in line
    print("item 9 one-line:", line)


# ---------------------------------------------------------------------------------------------
# item 10: one clear line, no traceback
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case,needle", [
    ("output_dir_is_a_file", "--output_dir"), ("out_scp_is_a_dir", "--out_scp"), ("flac_float", "FLOAT"),
    ("segment_inf", "--segment_seconds"), ("segment_nan", "--segment_seconds"), ("threads", "--num_threads"),
    ("device", "--device")])
def test_bad_options_give_one_line(exp, tmp_path, case, needle):
    wav = _wav(tmp_path / "in.wav")
    out = tmp_path / "out"
    extra: list = []
    if case == "output_dir_is_a_file":
        out.write_text("x")
    elif case == "out_scp_is_a_dir":
        (tmp_path / "scpdir").mkdir()
        extra = ["--out_scp", tmp_path / "scpdir"]
    elif case == "flac_float":
        extra = ["--output_format", "flac", "--output_subtype", "FLOAT"]
    elif case == "segment_inf":
        extra = ["--segment_seconds", "inf"]
    elif case == "segment_nan":
        extra = ["--segment_seconds", "nan"]
    elif case == "threads":
        extra = ["--num_threads", "-3"]
    else:
        extra = ["--device", "foo"]
    r = _enhance("--model", exp, wav, "--output_dir", out, "--no_progress", *extra)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    msgs = [x for x in r.stderr.splitlines() if ": error:" in x]
    assert len(msgs) == 1 and needle in msgs[0], r.stderr
    if case == "out_scp_is_a_dir":
        assert not out.exists() or not any(out.iterdir())   # refused before the batch
    print(f"item 10 one-line ({case}):", msgs[0])


def test_full_disk_stops_the_batch_with_one_line(exp, tmp_path):
    script = """
import shutil, soundfile, collections
def write(self, data):
    raise soundfile.LibsndfileError(2, "System error.")
soundfile.SoundFile.write = write
shutil.disk_usage = lambda p: collections.namedtuple("u", "total used free")(1, 1, 0)
"""
    scp = tmp_path / "wav.scp"
    scp.write_text("".join(f"u{i} {_wav(tmp_path / f'in{i}.wav', seed=i)}\n" for i in range(3)))
    r = _enhance("--model", exp, "--wav_scp", scp, "--output_dir", tmp_path / "out", "--no_progress", script=script)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    line = _line(r.stderr, "no space left on device")
    assert "u0.wav" in line and line.count("\n") == 0
    assert r.stderr.count("no space left") == 1   # the batch stopped at the first file
    print("item 10 one-line (full disk):", line)
