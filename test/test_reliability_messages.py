"""Issue 30, items 9 and 13: one line naming the file and the problem, where there were tracebacks,
"System error." or misleading lines.

Segment times inf/nan (every tool that reads segments), an output folder that cannot be written, an
unreadable input file or folder, a full disk on --out_scp, a false notice beside a bad segments line,
segment_seconds 0 in inference.yaml and YAML syntax errors (configs, inference.yaml, overrides).
Unreadable and unwritable paths are real (chmod); as root the command runs without the capabilities
that bypass file modes (test/unprivileged.py), so these tests run in CI too.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from csmvanet.data.datadir import DataDirError, read_segments

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))
import unprivileged  # noqa: E402
from test_enhance import SR, make_exp, noisy_speech, tiny_cfg  # noqa: E402

PY = sys.executable
needs_modes = pytest.mark.skipif(not unprivileged.modes_apply(),
                                 reason="cannot run a command for which file modes count (root without "
                                        "CAP_SETPCAP to drop CAP_DAC_OVERRIDE)")


@pytest.fixture(scope="module")
def exp(tmp_path_factory) -> Path:
    return make_exp(tmp_path_factory.mktemp("exp") / "tiny", tiny_cfg())


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO))


def _cli(module: str, *args, script: str = "", modes: bool = False) -> subprocess.CompletedProcess:
    """``csmvanet.bin.<module>`` in a fresh interpreter; ``script`` runs first (a fault to inject);
    ``modes``: file modes apply (also as root)."""
    code = (f"import sys\n{script}\nfrom csmvanet.bin.{module} import main\n"
            f"sys.exit(main({[str(a) for a in args]!r}))")
    run = unprivileged.run if modes else subprocess.run
    return run([PY, "-c", code], env=_env(), capture_output=True, text=True, timeout=300)


def _validate(*args) -> subprocess.CompletedProcess:
    return _cli("datadir_utils", "validate", *args)


def _wav(path: Path, seconds: float = 0.5, seed: int = 1) -> Path:
    sf.write(str(path), noisy_speech(seconds, seed=seed).astype(np.float32), SR, subtype="PCM_16")
    return path


def _one_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    """The one line of the output holding all ``needles`` (no traceback anywhere)."""
    assert "Traceback" not in r.stderr, r.stderr
    lines = [x.split("\r")[-1].strip() for x in (r.stderr + r.stdout).splitlines()]
    hits = [x for x in lines if all(n in x for n in needles)]
    assert len(hits) == 1, r.stderr
    return hits[0]


def _line_ending(r: subprocess.CompletedProcess, rc: int, name: Path, ending: str) -> str:
    """The one line naming ``name``, which ends with ``ending``; exit status ``rc``."""
    assert r.returncode == rc, r.stderr
    line = _one_error(r, str(name))
    assert line.endswith(ending), line
    return line


@contextlib.contextmanager
def _mode(path: Path, mode: int):
    """``path`` with file mode ``mode`` for the block (then 0755, so that it can be removed)."""
    path.chmod(mode)
    try:
        yield
    finally:
        path.chmod(0o755)


def _data_dir(root: Path, segments: str) -> Path:
    """Two recordings (r1, r2, 1 s each) and ``segments`` over them."""
    d = root / "data"
    d.mkdir(parents=True)
    (d / "wav.scp").write_text(f"r1 {_wav(root / 'r1.wav', 1.0, 1)}\nr2 {_wav(root / 'r2.wav', 1.0, 2)}\n")
    (d / "segments").write_text(segments)
    utts = [line.split()[0] for line in segments.splitlines() if line.strip()]
    (d / "utt2spk").write_text("".join(f"{u} {u}\n" for u in utts))
    (d / "spk2utt").write_text("".join(f"{u} {u}\n" for u in utts))
    return d


# ---------------------------------------------------------------------------------------------
# item 9: segment times inf / nan
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("times", ["0 inf", "nan 0.5", "0.1 nan", "0 Infinity"])
def test_read_segments_refuses_times_that_are_not_finite(tmp_path, times):
    path = tmp_path / "segments"
    path.write_text(f"u0 r1 0 0.5\nu1 r1 {times}\n")
    with pytest.raises(DataDirError) as e:
        read_segments(path)
    assert str(e.value).startswith(f"{path}:2: utterance 'u1': ") and "finite" in str(e.value)
    assert f"start={times.split()[0]} end={times.split()[1]}" in str(e.value)


@pytest.mark.parametrize("tool", ["validate", "enhance", "score"])
def test_segments_inf_and_nan_give_one_line_in_every_tool(exp, tmp_path, tool):
    d = _data_dir(tmp_path, "u1 r1 0 0.5\nu2 r1 0.5 inf\nu3 r2 nan 0.5\n")
    if tool == "validate":
        r = _validate(d)
    elif tool == "enhance":
        r = _cli("enhance", "--model", exp, "--wav_scp", d / "wav.scp", "--segments", d / "segments",
                 "--output_dir", tmp_path / "out", "--no_progress")
    else:
        (tmp_path / "enh.scp").write_text("".join(f"u{i} {_wav(tmp_path / f'e{i}.wav', 0.5, i)}\n" for i in (1, 2, 3)))
        r = _cli("score", "--ref_scp", d / "wav.scp", "--enh_scp", tmp_path / "enh.scp", "--segments",
                 d / "segments", "--out_dir", tmp_path / "score", "--progress", "false", "--report", "false")
    assert r.returncode == 1, r.stderr
    line = _one_error(r, f"{d / 'segments'}:2: utterance 'u2'")
    assert "times must be finite numbers of seconds, got start=0.5 end=inf" in line
    print(f"item 9 ({tool}):", line)


def test_bad_segments_line_gives_no_false_notice(tmp_path):
    """13: a bad line is the only problem named; no "2 recording(s) without segments" beside it."""
    d = _data_dir(tmp_path, "u1 r1 0 0.5\nu2 r2 zero 0.5\n")
    r = _validate(d)
    assert r.returncode == 1
    _one_error(r, f"{d / 'segments'}:2: expected 'utt reco start end'")
    assert "without segments" not in r.stderr, r.stderr
    assert r.stderr.count("validate_data_dir:") == 2, r.stderr   # the problem and the verdict


# ---------------------------------------------------------------------------------------------
# item 13: output folder, unreadable inputs, full disk on --out_scp
# ---------------------------------------------------------------------------------------------

@needs_modes
@pytest.mark.parametrize("which", ["--output_dir", "--vad_dir", "--out_scp"])
def test_unwritable_output_folder_is_refused_at_the_start(exp, tmp_path, which):
    ro = tmp_path / "ro"
    ro.mkdir()
    ins = [_wav(tmp_path / f"in{i}.wav", seed=i) for i in range(3)]
    dirs = {"--output_dir": tmp_path / "out", "--vad_dir": tmp_path / "vad", "--out_scp": tmp_path / "enh.scp"}
    dirs[which] = ro if which != "--out_scp" else ro / "enh.scp"
    with _mode(ro, 0o555):
        r = _cli("enhance", "--model", exp, *ins, *[x for kv in dirs.items() for x in kv], "--no_progress",
                 modes=True)
    line = _line_ending(r, 2, ro, "(permission denied)")
    assert f"{which} {dirs[which]}: cannot write into " in line, line
    assert "in0.wav" not in r.stderr and ".tmp" not in line   # no per-file failures, no temp file named
    assert not list(ro.iterdir()) and not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    print(f"item 13a ({which}):", line)


@needs_modes
@pytest.mark.parametrize("tool", ["score", "resample", "vad_labels"])
def test_unwritable_out_dir_of_the_other_batch_tools_is_refused_at_the_start(tmp_path, tool):
    scp = tmp_path / "in.scp"
    scp.write_text("".join(f"u{i} {_wav(tmp_path / f'in{i}.wav', seed=i)}\n" for i in range(2)))
    ro = tmp_path / "ro"
    ro.mkdir()
    args = {"score": ["--ref_scp", scp, "--enh_scp", scp, "--progress", "false"],
            "resample": ["--scp", scp, "--fs", 8000, "--out_scp", tmp_path / "o.scp", "--quiet"],
            "vad_labels": ["--scp", scp, "--quiet"]}[tool]
    with _mode(ro, 0o555):
        r = _cli(tool, *args, "--out_dir", ro, modes=True)
    line = _line_ending(r, 2, ro, f"error: --out_dir {ro}: cannot write into the folder (permission denied)")
    assert "u0" not in r.stderr and not list(ro.iterdir())
    print(f"item 13a ({tool}):", line)


@needs_modes
@pytest.mark.parametrize("tool", ["enhance", "validate"])
def test_unreadable_input_file_says_permission_denied(exp, tmp_path, tool):
    good, bad = _wav(tmp_path / "good.wav", seed=1), _wav(tmp_path / "bad.wav", seed=2)
    with _mode(bad, 0):
        if tool == "enhance":
            r = _cli("enhance", "--model", exp, good, bad, "--output_dir", tmp_path / "out", "--no_progress",
                     modes=True)
        else:
            d = tmp_path / "data"
            d.mkdir()
            (d / "wav.scp").write_text(f"u1 {good}\nu2 {bad}\n")
            r = unprivileged.run([REPO / "utils" / "validate_data_dir.sh", d], env=_env(), capture_output=True,
                                 text=True, timeout=300)
    line = _line_ending(r, 1, bad, f"{bad}: cannot open the file (permission denied)")
    assert "System error" not in r.stderr
    if tool == "enhance":
        assert (tmp_path / "out" / "good.wav").is_file()   # the rest is enhanced
    print(f"item 13b ({tool}):", line)


@needs_modes
@pytest.mark.parametrize("where", ["top", "below"])
def test_unreadable_input_folder_says_so(exp, tmp_path, where):
    top = tmp_path / "in"
    (top / "sub").mkdir(parents=True)
    _wav(top / "a.wav", seed=1)
    _wav(top / "sub" / "b.wav", seed=2)
    closed = top if where == "top" else top / "sub"
    with _mode(closed, 0):
        r = _cli("enhance", "--model", exp, top, "--output_dir", tmp_path / "out", "--no_progress", modes=True)
    line = _line_ending(r, 1, closed, f"{closed}: cannot read the folder (permission denied)")
    assert "holds no audio files" not in r.stderr
    assert (tmp_path / "out" / "a.wav").is_file() == (where == "below")
    print(f"item 13c ({where}):", line)


FULL_DISK = """
import errno
import csmvanet.data.datadir as datadir
_write = datadir.atomic_write_text
def full(path, text):   # the disk fills up just when the output list is written
    if str(path).endswith("enh.scp"):
        raise OSError(errno.ENOSPC, "No space left on device")
    return _write(path, text)
datadir.atomic_write_text = full
"""


@pytest.mark.parametrize("tool", ["enhance", "resample"])
def test_full_disk_on_out_scp_names_the_file(exp, tmp_path, tool):
    ins = [_wav(tmp_path / f"in{i}.wav", seed=i) for i in range(2)]
    scp = tmp_path / "lists" / "enh.scp"
    if tool == "enhance":
        r = _cli("enhance", "--model", exp, *ins, "--output_dir", tmp_path / "out", "--out_scp", scp,
                 "--no_progress", script=FULL_DISK)
        line = _line_ending(r, 2, scp, f"are complete in {tmp_path / 'out'}")
        assert f"{scp}: cannot write: No space left on device;" in line, line
    else:
        (tmp_path / "in.scp").write_text("".join(f"u{i} {f}\n" for i, f in enumerate(ins)))
        r = _cli("resample", "--scp", tmp_path / "in.scp", "--fs", 8000, "--out_dir", tmp_path / "out",
                 "--out_scp", scp, "--quiet", script=FULL_DISK)
        line = _line_ending(r, 1, scp, f"No space left on device: '{scp}'")
    assert len(list((tmp_path / "out").iterdir())) == 2 and not scp.exists()
    print(f"item 13d ({tool}):", line)


# ---------------------------------------------------------------------------------------------
# item 13: inference.yaml values and YAML syntax errors
# ---------------------------------------------------------------------------------------------

def _exp_copy(exp: Path, tmp_path: Path) -> Path:
    e = tmp_path / "exp"
    e.mkdir()
    for f in exp.iterdir():
        (e / f.name).write_bytes(f.read_bytes())
    return e


@pytest.mark.parametrize("settings,needle", [
    ({"segment_seconds": 0}, "segment_seconds must be a number of seconds above 0 and at most 3600, got 0"),
    ({"segment_seconds": 2.0, "overlap_seconds": 1.5},
     "overlap_seconds must be a number of seconds from 0 to half of segment_seconds (1), got 1.5"),
])
def test_inference_yaml_chunking_names_the_file_and_key(exp, tmp_path, settings, needle):
    e = _exp_copy(exp, tmp_path)
    inf = e / "inference.yaml"
    inf.write_text(yaml.safe_dump({"vad_floor": 0.5, "vad_threshold": 0.5, **settings}))
    r = _cli("enhance", "--model", e, _wav(tmp_path / "in.wav"), "--output_dir", tmp_path / "out", "--no_progress")
    assert r.returncode == 2, r.stderr
    line = _one_error(r, str(inf))
    assert needle in line, line
    print("item 13f:", line)


BAD_YAML = "stft:\n  sample_rate: 16000\n  n_fft: [256, 512\nmodel:\n  channels: [8, 8]\n"
WHERE = (":4:6: not valid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence from line 3, "
         "column 10); line 4: 'model:'")


@pytest.mark.parametrize("case", ["config", "exp_config", "inference", "override"])
def test_yaml_syntax_errors_name_file_line_column_and_problem(exp, tmp_path, case):
    if case == "config":
        cfg = tmp_path / "conf.yaml"
        cfg.write_text(BAD_YAML)
        r, rc, where = _cli("info", "--config", cfg), 1, f"{cfg}{WHERE}"
    elif case in ("exp_config", "inference"):
        e = _exp_copy(exp, tmp_path)
        bad = e / ("config.yaml" if case == "exp_config" else "inference.yaml")
        bad.write_text(BAD_YAML)
        r = _cli("enhance", "--model", e, _wav(tmp_path / "in.wav"), "--output_dir", tmp_path / "out",
                 "--no_progress")
        rc, where = 2, f"{bad}{WHERE}"
    else:
        cfg = tmp_path / "conf.yaml"
        cfg.write_text(yaml.safe_dump(tiny_cfg()))
        r = _cli("train", "--config", cfg, "--train_dir", tmp_path, "--valid_dir", tmp_path, "--exp_dir",
                 tmp_path / "e", "--optim.lr", "[1e-3,")
        rc, where = 1, "override --optim.lr:1:7: not valid YAML: expected the node content, but found '<stream end>'"
    assert r.returncode == rc, r.stderr
    line = _one_error(r, where)
    assert "^" not in r.stderr and len(r.stderr.strip().splitlines()) <= 3, r.stderr
    print(f"item 13g ({case}):", line)
