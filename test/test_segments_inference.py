"""Inference and scoring through Kaldi ``segments`` (csmvanet-enhance/-score --segments, steps/decode.sh
and steps/score.sh on a data dir whose wav.scp and spk1.scp are keyed by recording).

The data dir: 2 recordings x 3 segments at 8 kHz (the tiny model of test_enhance), speech-like clean
recordings and noisy ones (clean + pink noise). Each check fails if the segments were ignored: the
outputs would be keyed by recording, have the recording's length, or be scored against the wrong
samples.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from csmvanet.audio.synthetic import noise, speech_like
from csmvanet.infer.enhancer import Enhancer
from test_enhance import make_exp, tiny_cfg  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
SR = 8000
RECO_SECONDS = 3.0
# utt -> (recording, start, end) in seconds; the segments do not cover the recordings whole
SEGMENTS = {
    "r1_a": ("r1", 0.10, 0.90), "r1_b": ("r1", 1.00, 1.85), "r1_c": ("r1", 2.05, 2.95),
    "r2_a": ("r2", 0.00, 0.75), "r2_b": ("r2", 0.80, 1.70), "r2_c": ("r2", 1.90, -1),
}


def span(utt: str) -> tuple[str, int, int]:
    reco, start, end = SEGMENTS[utt]
    last = int(RECO_SECONDS * SR) if end == -1 else int(round(end * SR))
    return reco, int(round(start * SR)), last


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
            "PATH": f"{Path(PY).parent}:{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """data/{wav.scp,spk1.scp,segments,utt2spk,spk2utt}; recordings in audio/."""
    root = tmp_path_factory.mktemp("segdata")
    (root / "audio").mkdir()
    d = root / "data"
    d.mkdir()
    wav, spk1 = [], []
    for i, reco in enumerate(("r1", "r2")):
        clean, _ = speech_like(10 + i, seconds=RECO_SECONDS, sr=SR, lead_range=(0.0, 0.05), pause_range=(0.05, 0.1))
        n = noise("pink", 20 + i, seconds=RECO_SECONDS, sr=SR)
        noisy = clean + n * np.std(clean) / np.std(n) * 0.5
        sf.write(str(root / "audio" / f"{reco}_clean.wav"), clean, SR, subtype="FLOAT")
        sf.write(str(root / "audio" / f"{reco}_noisy.wav"), noisy.astype(np.float32), SR, subtype="FLOAT")
        wav.append(f"{reco} {root / 'audio' / f'{reco}_noisy.wav'}\n")
        spk1.append(f"{reco} {root / 'audio' / f'{reco}_clean.wav'}\n")
    (d / "wav.scp").write_text("".join(wav))
    (d / "spk1.scp").write_text("".join(spk1))
    (d / "segments").write_text("".join(f"{u} {r} {s:g} {e:g}\n" for u, (r, s, e) in SEGMENTS.items()))
    (d / "utt2spk").write_text("".join(f"{u} {u[:2]}\n" for u in SEGMENTS))
    (d / "spk2utt").write_text("".join(f"{r} {' '.join(u for u in SEGMENTS if u.startswith(r))}\n"
                                       for r in ("r1", "r2")))
    return d


def recording(data: Path, reco: str, kind: str) -> np.ndarray:
    return sf.read(str(data.parent / "audio" / f"{reco}_{kind}.wav"), dtype="float32")[0]


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory) -> Path:
    return make_exp(tmp_path_factory.mktemp("exp") / "tiny", tiny_cfg())


def enhance(exp_dir: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "csmvanet.bin.enhance", "--model", str(exp_dir), "--output_dir", str(out),
                           "--no_progress", "--num_threads", "1", *args],
                          cwd=REPO, capture_output=True, text=True, env=env())


def test_enhance_segments_gives_each_utterance_its_segment(data, exp_dir, tmp_path):
    out = tmp_path / "enh"
    proc = enhance(exp_dir, out, "--wav_scp", str(data / "wav.scp"), "--segments", str(data / "segments"),
                   "--out_scp", str(tmp_path / "enhanced.scp"), "--output_subtype", "FLOAT")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{u}.wav" for u in SEGMENTS)
    listed = dict(line.split() for line in (tmp_path / "enhanced.scp").read_text().splitlines())
    assert sorted(listed) == sorted(SEGMENTS)
    torch.set_num_threads(1)
    enh = Enhancer.from_pretrained(exp_dir)
    for utt in SEGMENTS:
        reco, first, last = span(utt)
        y, sr = sf.read(listed[utt], dtype="float32")
        assert sr == SR and len(y) == last - first, utt
        # the output is the enhancement of exactly the segment's samples (not of another part)
        expected, _ = enh.enhance(recording(data, reco, "noisy")[first:last], SR)
        np.testing.assert_allclose(y, expected, atol=1e-4, err_msg=utt)


def test_enhance_segments_skips_an_utterance_without_its_recording(data, exp_dir, tmp_path):
    seg = tmp_path / "segments"
    seg.write_text((data / "segments").read_text() + "r3_a r3 0 0.5\n")
    out = tmp_path / "enh"
    proc = enhance(exp_dir, out, "--wav_scp", str(data / "wav.scp"), "--segments", str(seg))
    assert proc.returncode == 1, proc.stderr
    bad = [line for line in proc.stderr.splitlines() if "r3_a" in line]
    assert len(bad) == 1 and "'r3'" in bad[0] and "wav.scp" in bad[0], proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{u}.wav" for u in SEGMENTS)


def _write_enhanced(data: Path, out: Path, shift: float = 0.0) -> Path:
    """enhanced.scp of utterances that are their clean segments (shifted by ``shift`` s)."""
    out.mkdir()
    lines = []
    for utt in SEGMENTS:
        reco, first, last = span(utt)
        clean = recording(data, reco, "clean")
        d = int(round(shift * SR))
        lo = first + d if first + d + (last - first) <= len(clean) else first - d
        sf.write(str(out / f"{utt}.wav"), clean[lo:lo + last - first], SR, subtype="FLOAT")
        lines.append(f"{utt} {out / f'{utt}.wav'}\n")
    (out / "enhanced.scp").write_text("".join(lines))
    return out / "enhanced.scp"


def _values(path: Path) -> dict[str, float]:
    return {k: float(v) for k, v in (line.split() for line in path.read_text().splitlines())}


def score(data: Path, enh_scp: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "csmvanet.bin.score", "--ref_scp", str(data / "spk1.scp"),
                           "--enh_scp", str(enh_scp), "--noisy_scp", str(data / "wav.scp"),
                           "--segments", str(data / "segments"), "--out_dir", str(out),
                           "--progress", "false", "--figures", "false"],
                          cwd=REPO, capture_output=True, text=True, env=env())


def test_score_segments_uses_each_utterances_own_reference(data, tmp_path):
    proc = score(data, _write_enhanced(data, tmp_path / "same"), tmp_path / "s1")
    assert proc.returncode == 0, proc.stderr
    si = _values(tmp_path / "s1" / "enhanced" / "si_sdr")
    assert sorted(si) == sorted(SEGMENTS)
    assert all(v > 60 for v in si.values()), si       # the clean segment against itself
    noisy = _values(tmp_path / "s1" / "noisy" / "si_sdr")
    assert sorted(noisy) == sorted(SEGMENTS)
    assert all(0 < v < 15 for v in noisy.values()), noisy   # noisy segment vs its clean segment (~6 dB)
    assert (tmp_path / "s1" / "warnings").read_text() == ""  # no length mismatch: references are segments

    # the same utterances 0.1 s off their segments: scored against the right samples, they fail
    proc = score(data, _write_enhanced(data, tmp_path / "shifted", shift=0.1), tmp_path / "s2")
    assert proc.returncode == 0, proc.stderr
    assert all(v < 5 for v in _values(tmp_path / "s2" / "enhanced" / "si_sdr").values())


def test_score_segments_refuses_an_utterance_without_its_reference_recording(data, tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    for f in ("wav.scp", "segments"):
        (d / f).write_text((data / f).read_text())
    (d / "spk1.scp").write_text((data / "spk1.scp").read_text().splitlines()[0] + "\n")  # r1 only
    proc = score(d, _write_enhanced(data, tmp_path / "same"), tmp_path / "s")
    assert proc.returncode == 1
    err = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert len(err) == 1 and "r2_a" in err[0] and "'r2'" in err[0] and "spk1.scp" in err[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_decode_and_score_steps_on_a_segments_data_dir(data, exp_dir, tmp_path):
    enh = tmp_path / "exp" / "enhanced_test"
    proc = subprocess.run(["bash", "egs/TEMPLATE/steps/decode.sh", "--nj", "2", str(data), str(exp_dir), str(enh)],
                          cwd=REPO, capture_output=True, text=True, env=env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # split by utterance of segments: 3 utterances per job, each job with the whole wav.scp
    assert [len((enh / "split" / f"segments.{j}").read_text().splitlines()) for j in (1, 2)] == [3, 3]
    scp = dict(line.split() for line in (enh / "enhanced.scp").read_text().splitlines())
    assert sorted(scp) == sorted(SEGMENTS)
    for utt, path in scp.items():
        _, first, last = span(utt)
        assert sf.info(path).frames == last - first, utt
    proc = subprocess.run(["bash", "egs/TEMPLATE/steps/score.sh", "--nj", "2", "--figures", "false",
                           str(data), str(enh)], cwd=REPO, capture_output=True, text=True, env=env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for system in ("enhanced", "noisy"):
        si = _values(enh / "scoring" / system / "si_sdr")
        assert sorted(si) == sorted(SEGMENTS), system
    assert all(v > 0 for v in _values(enh / "scoring" / "noisy" / "si_sdr").values())
    assert (enh / "scoring" / "missing").read_text() == ""
