"""utils/validate_data_dir.sh and utils/fix_data_dir.sh (logic in csmvanet.data.datadir)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from csmvanet.data.datadir import read_scp
from csmvanet.data.validate_dir import validate_data_dir
from datadir_helpers import make_data_dir, read_lines, write_lines

ROOT = Path(__file__).resolve().parents[1]
VALIDATE = ROOT / "utils" / "validate_data_dir.sh"
FIX = ROOT / "utils" / "fix_data_dir.sh"


def run(*args, cwd=None):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=60)


def assert_rejected(data: Path, *needles: str, opts=()):
    r = run(VALIDATE, *opts, data)
    assert r.returncode == 1, r.stdout + r.stderr
    for n in needles:
        assert n in r.stderr, f"{n!r} not in:\n{r.stderr}"
    return r.stderr


def test_accepts_a_good_dir(tmp_path):
    data = make_data_dir(tmp_path)
    r = run(VALIDATE, "--fs", 16000, data)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()) == 1
    assert "6 utterances" in r.stdout and "6 VAD label vectors checked" in r.stdout


def test_rejects_unsorted(tmp_path):
    data = make_data_dir(tmp_path, with_vad=False)
    lines = read_lines(data / "spk1.scp")
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(data / "spk1.scp", lines)
    key = lines[2].split()[0]
    assert_rejected(data, "spk1.scp:3", "not sorted", f"'{key}'")


def test_sorted_means_c_locale(tmp_path):
    # 'B' < 'a' in C locale (byte order), the reverse of a case-insensitive locale order.
    data = make_data_dir(tmp_path, num_utts=2, num_spk=1, with_vad=False)
    for name in ("wav.scp", "spk1.scp", "utt2num_samples", "utt2snr", "utt2spk"):
        lines = read_lines(data / name)
        write_lines(data / name, [lines[0].replace("spk0_utt00", "a_utt"), lines[1].replace("spk0_utt01", "B_utt")])
    write_lines(data / "spk2utt", ["spk0 a_utt B_utt"])
    assert_rejected(data, "wav.scp:2", "'B_utt'", "not sorted")


def test_rejects_duplicate_keys(tmp_path):
    data = make_data_dir(tmp_path, with_vad=False)
    lines = read_lines(data / "wav.scp")
    write_lines(data / "wav.scp", lines[:3] + [lines[2]] + lines[3:])
    assert_rejected(data, "wav.scp:4", "duplicate key", f"'{lines[2].split()[0]}'")


@pytest.mark.parametrize("name", ["spk1.scp", "vad_labels.scp", "utt2num_samples"])
def test_rejects_missing_keys(tmp_path, name):
    data = make_data_dir(tmp_path, with_vad=(name == "vad_labels.scp"))
    lines = read_lines(data / name)
    gone = lines[4].split()[0]
    write_lines(data / name, lines[:4] + lines[5:])
    assert_rejected(data, f"{name}: key '{gone}' is missing", "wav.scp", opts=["--no-audio-check"])


def test_rejects_key_missing_from_wav_scp(tmp_path):
    data = make_data_dir(tmp_path, with_vad=False)
    lines = read_lines(data / "wav.scp")
    gone = lines[0].split()[0]
    write_lines(data / "wav.scp", lines[1:])
    assert_rejected(data, f"spk1.scp: key '{gone}' is not in", "wav.scp")


def test_rejects_missing_audio_file(tmp_path):
    data = make_data_dir(tmp_path, with_vad=False)
    utt, path = read_lines(data / "spk1.scp")[3].split()
    Path(path).unlink()
    # the existence check runs also without reading the audio
    for opts in ([], ["--no-audio-check"]):
        assert_rejected(data, "spk1.scp", f"key '{utt}'", path, "does not exist", opts=opts)


def test_rejects_sample_rate_mismatch(tmp_path):
    data = make_data_dir(tmp_path, with_vad=False)
    utt, path = read_lines(data / "spk1.scp")[2].split()
    x, sr = sf.read(path)
    sf.write(path, x, 8000)
    assert_rejected(data, "spk1.scp", f"key '{utt}'", "sample rate 8000 Hz, but 16000 Hz")
    # against an expected rate
    assert_rejected(data, f"spk1.scp: key '{utt}': sample rate 8000 Hz, expected 16000 Hz",
                    opts=["--fs", "16000"])


def test_rejects_utt2num_samples_and_vad_length(tmp_path):
    data = make_data_dir(tmp_path)
    lines = read_lines(data / "utt2num_samples")
    utt, n = lines[1].split()
    lines[1] = f"{utt} {int(n) + 1000}"
    write_lines(data / "utt2num_samples", lines)
    # the audio disagrees with utt2num_samples, and the labels with the stated length
    assert_rejected(data, f"utt2num_samples: key '{utt}'", f"vad_labels.scp: key '{utt}'", "frames, expected")


def test_rejects_vad_of_wrong_length(tmp_path):
    data = make_data_dir(tmp_path)
    vad = dict(kaldiio.load_scp(str(data / "vad_labels.scp")))
    utt = sorted(vad)[3]
    vad = {k: np.asarray(v) for k, v in vad.items()}
    vad[utt] = vad[utt][:-1]
    kaldiio.save_ark(str(data / "vad_labels.ark"), {k: vad[k] for k in sorted(vad)}, scp=str(data / "vad_labels.scp"))
    assert_rejected(data, f"vad_labels.scp: key '{utt}'", "frames, expected", opts=["--no-audio-check"])


def test_rejects_inconsistent_spk2utt(tmp_path):
    data = make_data_dir(tmp_path, with_vad=False)
    lines = read_lines(data / "spk2utt")
    moved = lines[0].split()[1]
    write_lines(data / "spk2utt", [" ".join(x for x in lines[0].split() if x != moved), lines[1] + " " + moved])
    assert_rejected(data, "spk2utt", f"'{moved}'")


def test_pipes_are_run_only_when_asked(tmp_path):
    data = make_data_dir(tmp_path, with_vad=False)
    lines = read_lines(data / "wav.scp")
    utt, path = lines[0].split()
    lines[0] = f"{utt} cat {path}.missing |"
    write_lines(data / "wav.scp", lines)
    r = run(VALIDATE, data)
    assert r.returncode == 0 and "1 pipe entries not run" in r.stdout, r.stderr
    assert_rejected(data, f"wav.scp: key '{utt}'", "command failed", opts=["--check-pipes"])


def test_python_api_reports_all_problems(tmp_path):
    data = make_data_dir(tmp_path, with_vad=False)
    write_lines(data / "utt2spk", list(reversed(read_lines(data / "utt2spk"))))
    Path(read_lines(data / "wav.scp")[0].split()[1]).unlink()
    res = validate_data_dir(data)
    assert not res.ok
    assert any("utt2spk" in p and "not sorted" in p for p in res.problems)
    assert any("wav.scp" in p and "does not exist" in p for p in res.problems)


def test_fix_data_dir_repairs(tmp_path):
    data = make_data_dir(tmp_path)
    orig_wav = read_lines(data / "wav.scp")
    # unsorted utt2spk, a duplicate in spk1.scp, one utterance missing from vad_labels.scp, one extra in utt2snr
    write_lines(data / "utt2spk", list(reversed(read_lines(data / "utt2spk"))))
    spk1 = read_lines(data / "spk1.scp")
    write_lines(data / "spk1.scp", spk1 + [spk1[0]])
    vad = read_lines(data / "vad_labels.scp")
    gone = vad[2].split()[0]
    write_lines(data / "vad_labels.scp", vad[:2] + vad[3:])
    write_lines(data / "utt2snr", read_lines(data / "utt2snr") + ["zzz_extra 3.0"])
    assert run(VALIDATE, data).returncode == 1

    r = run(FIX, data)
    assert r.returncode == 0, r.stderr
    assert "kept 5 of 7 utterances, removed 2" in r.stdout
    r = run(VALIDATE, "--fs", 16000, data)
    assert r.returncode == 0, r.stderr
    wav = read_scp(data / "wav.scp")
    assert sorted(wav) == sorted(line.split()[0] for line in orig_wav if not line.startswith(gone + " "))
    assert gone not in read_scp(data / "spk2utt").get("spk0", "").split()
    # originals kept
    assert read_lines(data / ".backup" / "wav.scp") == orig_wav
    assert "zzz_extra" in (data / ".backup" / "utt2snr").read_text()
    # a second run changes nothing
    before = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
    r = run(FIX, data)
    assert r.returncode == 0 and "kept all 5 utterances; nothing to change" in r.stdout
    assert before == {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
    assert not (data / ".backup.1").exists()  # nothing changed: no new backup
