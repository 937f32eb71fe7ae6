"""Drop-in for Kaldi users (issue 29 items 1-3, issue 30 items 10 and 14).

Kaldi's validator is encoded in kaldi_rules.py (from egs/wsj/s5/utils/validate_data_dir.sh); the
expected behaviour of fix_data_dir.sh, combine_data.sh, apply_map.pl and of ESPnet's enh.sh stage 4
below is written from their scripts: fix_data_dir.sh filters with filter_scp.pl (lines kept byte for
byte), drops the utterances of speakers that spk2gender / cmvn.scp lack and those whose utt2dur or
utt2num_frames is not one positive number, and skips --utt-extra-files that do not exist;
combine_data.sh makes segments `utt utt 0 <duration>` for sources without them; apply_map.pl maps
the fields of a range, joined by single spaces, and fails on a missing key unless --permissive.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from datadir_helpers import make_data_dir, read_lines, write_lines
from kaldi_rules import kaldi_problems
from test_kaldi_utils import keys, make_segments_dir, ok, run

ROOT = Path(__file__).resolve().parents[1]
UTILS = ROOT / "utils"


def kaldi_ok(d: Path) -> None:
    assert kaldi_problems(d) == [], d


def sh(script: str, cwd: Path, umask: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300,
                          preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


# ---------------------------------------------------------------- 1. every dir we write passes Kaldi's validator
def test_every_dir_the_utils_write_passes_kaldis_validator(tmp_path):
    a = make_data_dir(tmp_path / "a", num_utts=4, num_spk=2)
    s = make_segments_dir(tmp_path / "s", n_reco=2, per_reco=2)
    for d in (a, s):
        kaldi_ok(d)
    write_lines(a / "reco2file_and_channel", [f"{u} {u} A" for u in keys(a / "wav.scp")])
    write_lines(s / "reco2file_and_channel", ["r0 r0 A", "r1 r1 B"])
    ok("copy_data_dir.sh", "--utt-prefix", "b-", "--spk-prefix", "b-", a, tmp_path / "b")
    ok("subset_data_dir.sh", "--first", a, 2, tmp_path / "sub")
    ok("subset_data_dir.sh", "--first", s, 1, tmp_path / "ssub")
    ok("combine_data.sh", tmp_path / "c", a, tmp_path / "b")
    ok("combine_data.sh", tmp_path / "m", s, a)
    ok("split_data.sh", a, 2)
    ok("split_data.sh", "--per-utt", s, 2)
    made = [tmp_path / n for n in ("b", "sub", "ssub", "c", "m")] + [a / "split2" / "1", a / "split2" / "2",
                                                                    s / "split2utt" / "1", s / "split2utt" / "2"]
    for d in made:
        assert (d / "reco2file_and_channel").is_file(), d  # kept by every tool
        kaldi_ok(d)
        ok("validate_data_dir.sh", d)
    # combine: sources without segments get `utt utt 0 <duration>`, not `0 -1`
    m = tmp_path / "m"
    assert [ln.split()[3] for ln in read_lines(m / "segments") if ln.startswith("spk")] == \
        ["0.25", "0.254625", "0.2523125", "0.2569375"]  # spk0_utt00, spk0_utt02, spk1_utt01, spk1_utt03
    assert read_lines(m / "reco2file_and_channel")[-1] == "spk1_utt03 spk1_utt03 A"
    r = run("combine_data.sh", tmp_path / "c2", a, tmp_path / "b")
    assert "reco2file_and_channel: not combined" not in r.stdout


def test_mini_noise_lists_are_valid_data_dirs(tmp_path):
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    mini = ROOT / "egs" / "mini"
    py = os.environ.get("CSMVANET_PYTHON") or str(ROOT / "tools" / "venv" / "bin" / "python")
    r = subprocess.run([py, "local/make_corpus.py", str(corpus), "--utts_per_speaker", "2", "--noise_seconds", "2"],
                       cwd=mini, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["local/data_prep.sh", str(corpus), str(data)], cwd=mini, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    for name in ("speech_train", "speech_test", "noise_train", "noise_test"):
        kaldi_ok(data / name)
        ok("validate_data_dir.sh", data / name)


# ---------------------------------------------------------------- 2. the validator rejects what Kaldi rejects
def _edit(d: Path, name: str, fn) -> None:
    write_lines(d / name, fn(read_lines(d / name)))


CASES = {
    "segments end -1": ("seg", lambda d: _edit(d, "segments", lambda ls: [ls[0].rsplit(" ", 1)[0] + " -1"] + ls[1:]),
                        "end time -1"),
    "recording without segment": ("seg", lambda d: _edit(d, "wav.scp", lambda ls: ls + ["r9 /a/r9.wav"]),
                                  "has no segment"),
    "spk2gender value": ("dir", lambda d: write_lines(d / "spk2gender", ["spk0 male", "spk1 f"]), "not m or f"),
    "spk2gender coverage": ("dir", lambda d: write_lines(d / "spk2gender", ["spk0 m"]), "'spk1'"),
    "utt2dur zero": ("dir", lambda d: write_lines(d / "utt2dur", [f"{k} {0 if i == 1 else 0.25}" for i, k in
                                                                  enumerate(keys(d / "wav.scp"))]), "not a duration"),
    "utt2dur fields": ("dir", lambda d: write_lines(d / "utt2dur", [f"{k} 0.25 s" for k in keys(d / "wav.scp")]),
                       "not a duration"),
    "utt2num_frames non-integer": ("dir", lambda d: write_lines(d / "utt2num_frames", [
        f"{k} 12.5" for k in keys(d / "wav.scp")]), "frame count"),
    "no final newline": ("dir", lambda d: (d / "utt2spk").write_text((d / "utt2spk").read_text().rstrip("\n")),
                         "no newline"),
    "CR in text": ("dir", lambda d: (d / "text").write_bytes(b"".join(k.encode() + b" a\r b\n" for k in
                                                                       keys(d / "wav.scp"))), "'\\r'"),
    "control character in text": ("dir", lambda d: write_lines(d / "text", [f"{k} a\x07b" for k in
                                                                             keys(d / "wav.scp")]), "'\\x07'"),
    "utt2spk two fields": ("dir", lambda d: _edit(d, "utt2spk", lambda ls: [ls[0] + " extra"] + ls[1:]),
                           "not one speaker id"),
    "utt2spk not sorted by speaker": ("dir", lambda d: _swap_speakers(d), "not sorted by speaker"),
    "reco2file_and_channel channel": ("dir", lambda d: write_lines(d / "reco2file_and_channel", [
        f"{k} {k} C" for k in keys(d / "wav.scp")]), "channel A or B"),
    "tilde in wav.scp": ("dir", lambda d: _edit(d, "wav.scp", lambda ls: [ls[0].split()[0] + " ~/x.wav"] + ls[1:]),
                         "'~'"),
    "spk2warp range": ("dir", lambda d: write_lines(d / "spk2warp", ["spk0 1.0", "spk1 1.7"]), "warp factor"),
    "no utt2spk": ("dir", lambda d: ((d / "utt2spk").unlink(), (d / "spk2utt").unlink()), "utt2spk: required"),
}


def _swap_speakers(d: Path) -> None:
    """Utterance ids sorted, speakers not: u-a -> spk1, u-b -> spk0 (valid otherwise)."""
    for n in ("wav.scp", "spk1.scp", "utt2num_samples", "utt2snr", "vad_labels.scp"):
        _edit(d, n, lambda ls: [("u-a" if ln.startswith("spk1_utt01 ") else "u-b" if ln.startswith("spk0_utt00 ")
                                 else ln.split()[0]) + " " + ln.split(maxsplit=1)[1] for ln in ls])
    lines = [ln.split() for ln in read_lines(d / "wav.scp")]
    spk = {"u-a": "spk1", "u-b": "spk0"}
    write_lines(d / "utt2spk", [f"{k} {spk.get(k, k.split('_')[0])}" for k, _ in lines])
    by = {}
    for k, _ in lines:
        by.setdefault(spk.get(k, k.split("_")[0]), []).append(k)
    write_lines(d / "spk2utt", [f"{s} {' '.join(us)}" for s, us in sorted(by.items())])
    for n in ("wav.scp", "spk1.scp", "utt2num_samples", "utt2snr", "vad_labels.scp", "utt2spk"):
        write_lines(d / n, sorted(read_lines(d / n)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_validator_rejects_what_kaldi_rejects(tmp_path, case):
    kind, damage, message = CASES[case]
    d = make_segments_dir(tmp_path) if kind == "seg" else make_data_dir(tmp_path, num_utts=4, num_spk=2)
    if case.endswith("in text"):
        write_lines(d / "text", [f"{k} a b" for k in keys(d / "wav.scp")])
    kaldi_ok(d)
    assert run("validate_data_dir.sh", d).returncode == 0
    damage(d)
    if not case.endswith("in text"):  # Kaldi checks text (validate_text.pl, [:print:]) only without --no-text
        assert kaldi_problems(d) != []               # Kaldi rejects it ...
    r = run("validate_data_dir.sh", d)               # ... and so do we, naming the problem
    assert r.returncode == 1 and message in r.stderr, r.stderr


def test_channel_1_and_no_spk_sort_are_only_kaldis_warnings(tmp_path):
    d = make_data_dir(tmp_path, num_utts=4, num_spk=2)
    write_lines(d / "reco2file_and_channel", [f"{k} {k} 1" for k in keys(d / "wav.scp")])
    assert kaldi_problems(d) == []
    r = ok("validate_data_dir.sh", d)
    assert "channel(s) marked 1" in r.stderr
    (d / "reco2file_and_channel").unlink()
    _swap_speakers(d)
    assert kaldi_problems(d, no_spk_sort=True) == []
    ok("validate_data_dir.sh", "--no-spk-sort", d)


# ---------------------------------------------------------------- 2. fix_data_dir.sh like Kaldi's
def test_fix_keeps_lines_byte_for_byte_and_filters_like_kaldi(tmp_path):
    d = make_data_dir(tmp_path, num_utts=6, num_spk=3, with_vad=False)
    utts = keys(d / "wav.scp")                       # spk0_utt00 spk0_utt03 spk1_utt01 ...
    write_lines(d / "text", [f"{u} a\tb  c" for u in utts])         # tab and double space inside values
    _edit(d, "utt2snr", lambda ls: [ln.replace(" ", "\t", 1) for ln in ls])  # tab after the key
    write_lines(d / "spk2gender", ["spk0 m", "spk1 f"])              # spk2 has no gender
    write_lines(d / "utt2dur", [f"{u} {0 if u == 'spk0_utt03' else 0.25}" for u in utts])
    text_before, snr_before = (d / "text").read_bytes(), (d / "utt2snr").read_bytes()
    r = ok("fix_data_dir.sh", "--utt_extra_files", " spk1.scp utt2category ", d)   # utt2category: absent
    assert "kept 3 of 6 utterances" in r.stdout, r.stdout
    kept = ["spk0_utt00", "spk1_utt01", "spk1_utt04"]
    assert keys(d / "utt2spk") == kept and keys(d / "wav.scp") == kept
    assert (d / "text").read_bytes() == b"".join(ln + b"\n" for ln in text_before.splitlines()
                                                 if ln.split()[0].decode() in kept)
    assert (d / "utt2snr").read_bytes() == b"".join(ln + b"\n" for ln in snr_before.splitlines()
                                                    if ln.split()[0].decode() in kept)
    assert read_lines(d / "spk2gender") == ["spk0 m", "spk1 f"]
    assert not (d / "utt2category").exists()
    kaldi_ok(d)
    ok("validate_data_dir.sh", d)


def test_fix_without_changes_leaves_tabs_alone(tmp_path):
    d = make_data_dir(tmp_path, num_utts=2, num_spk=1, with_vad=False)
    _edit(d, "utt2snr", lambda ls: [ln.replace(" ", "\t") for ln in ls])
    before = (d / "utt2snr").read_bytes()
    r = ok("fix_data_dir.sh", d)
    assert "nothing to change" in r.stdout and (d / "utt2snr").read_bytes() == before


# ---------------------------------------------------------------- 3. apply_map.pl, queue.pl
def test_apply_map_like_kaldi(tmp_path):
    (tmp_path / "map").write_text("A a1 a2\nB b\nB b2\n")       # the last line of a key wins
    am = str(UTILS / "apply_map.pl")

    def apply(inp, *opts):
        return subprocess.run([am, *opts, str(tmp_path / "map")], input=inp, capture_output=True, text=True,
                              timeout=30)

    assert apply("A B\n").stdout == "a1 a2 b2\n"
    assert apply("x\tA  B\n", "-f", "2-").stdout == "x a1 a2 b2\n"   # re-joined by single spaces
    assert apply("A x B\n", "-f", "1").stdout == "a1 a2 x B\n"
    assert apply("A x B\n", "-f", "-1").stdout == "a1 a2 x B\n"
    assert apply("x A B\n", "-f", "2:3").stdout == "x a1 a2 b2\n"
    r = apply("A C\n")
    assert r.returncode != 0 and "'C'" in r.stderr and r.stdout == ""
    r = apply("A C\n", "--permissive", "-f", "1-2")
    assert r.returncode == 0 and r.stdout == "a1 a2 C\n" and "'C'" in r.stderr
    assert apply("A\n", "-f", "x").returncode != 0


def test_queue_pl_runs_locally_through_run_pl(tmp_path):
    r = subprocess.run([str(UTILS / "queue.pl"), "--mem", "2G", "-q", "all.q", "-l", "gpu=1", "--config",
                        "conf/queue.conf", "JOB=1:2", str(tmp_path / "log" / "x.JOB.log"), "echo", "job", "JOB"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "ignoring: -q all.q -l gpu=1 --config conf/queue.conf" in r.stderr
    assert "job 2" in (tmp_path / "log" / "x.2.log").read_text()
    r = subprocess.run([str(UTILS / "queue.pl"), str(tmp_path / "log" / "f.log"), "false"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and "f.log" in r.stderr


# ---------------------------------------------------------------- 3. ESPnet enh.sh stage 4 on our dumps
# The commands of egs2/TEMPLATE/enh1/enh.sh stage 4 ("Remove short data") for one set, spk_num=1, as
# enh.sh runs them (fs=16k; min/max_wav_duration in seconds).
STAGE4 = r"""set -euo pipefail
data_feats=dump/raw; dset=train; _spk_list=" spk1 "; _scp_list=" spk1.scp "
utils/copy_data_dir.sh "${data_feats}/org/${dset}" "${data_feats}/${dset}"
cp "${data_feats}/org/${dset}/feats_type" "${data_feats}/${dset}/feats_type"
for spk in ${_spk_list}; do cp "${data_feats}/org/${dset}/${spk}.scp" "${data_feats}/${dset}/${spk}.scp"; done
_min_length=$(python3 -c "print(int(${min_wav_duration} * 16000))")
_max_length=$(python3 -c "print(int(${max_wav_duration} * 16000))")
<"${data_feats}/org/${dset}/utt2num_samples" \
    awk -v min_length="${_min_length}" -v max_length="${_max_length}" \
        '{ if ($2 > min_length && $2 < max_length ) print $0; }' >"${data_feats}/${dset}/utt2num_samples"
for spk in ${_spk_list} "wav"; do
    <"${data_feats}/org/${dset}/${spk}.scp" utils/filter_scp.pl "${data_feats}/${dset}/utt2num_samples" \
        >"${data_feats}/${dset}/${spk}.scp"
done
utils/fix_data_dir.sh --utt_extra_files "${_scp_list} utt2category" "${data_feats}/${dset}"
"""


def test_espnet_enh_stage4_sequence_on_our_dump(tmp_path):
    recipe = tmp_path / "enh1"
    org = recipe / "dump" / "raw" / "org"
    org.mkdir(parents=True)
    d = make_data_dir(tmp_path / "x", num_utts=6, num_spk=2)        # our dump layout (lengths 4000 + 37*i)
    shutil.copytree(d, org / "train")
    (org / "train" / "feats_type").write_text("raw\n")
    (recipe / "utils").symlink_to(UTILS)
    r = sh(f"min_wav_duration=0.2505; max_wav_duration=20\n{STAGE4}", recipe)
    assert r.returncode == 0, r.stdout + r.stderr
    out = recipe / "dump" / "raw" / "train"
    kept = [k for k in keys(org / "train" / "wav.scp") if k not in ("spk0_utt00",)]  # 4000 samples < 4008
    for name in ("wav.scp", "spk1.scp", "utt2spk", "utt2num_samples", "utt2snr", "vad_labels.scp"):
        assert keys(out / name) == kept, name
    assert (out / "feats_type").read_text() == "raw\n"
    kaldi_ok(out)
    ok("validate_data_dir.sh", "--fs", 16000, out)


# ---------------------------------------------------------------- issue 30: non-UTF-8 names, folder modes
def test_non_utf8_names_pass_through_validate_copy_and_enhance(tmp_path):
    import numpy as np
    import soundfile as sf

    root = os.fsencode(tmp_path)
    name = b"caf\xe9"                                       # Latin-1, not UTF-8
    x = (0.05 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32)
    sf.write(root + b"/" + name + b".wav", x, 16000)
    d = root + b"/d"
    os.mkdir(d)
    for f, line in ((b"wav.scp", name + b" " + root + b"/" + name + b".wav"), (b"utt2spk", name + b" " + name),
                    (b"spk2utt", name + b" " + name), (b"text", name + b" caf\xe9 au lait")):
        with open(d + b"/" + f, "wb") as fh:
            fh.write(line + b"\n")
    def ok_bytes(tool, *args):
        r = subprocess.run([str(UTILS / tool), *args], capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r

    r = ok_bytes("validate_data_dir.sh", d)
    assert b"1 utterances" in r.stdout
    r = ok_bytes("copy_data_dir.sh", "--utt-prefix", "p-", d, d + b"2")
    with open(d + b"2/utt2uniq", "rb") as fh:
        assert fh.read() == b"p-" + name + b" " + name + b"\n"
    with open(d + b"2/text", "rb") as fh:
        assert fh.read() == b"p-" + name + b" caf\xe9 au lait\n"
    ok_bytes("validate_data_dir.sh", d + b"2")
    py = os.environ.get("CSMVANET_PYTHON") or str(ROOT / "tools" / "venv" / "bin" / "python")
    out = root + b"/out"
    r = subprocess.run([py, "-m", "csmvanet.bin.enhance", "--wav_scp", os.fsdecode(d + b"/wav.scp"), "--output_dir",
                        os.fsdecode(out), "--out_scp", os.fsdecode(root + b"/out.scp"), "--no_progress",
                        "--num_threads", "1"], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert os.listdir(out) == [name + b".wav"]
    with open(root + b"/out.scp", "rb") as fh:
        assert fh.read() == name + b" " + out + b"/" + name + b".wav\n"
    r = subprocess.run([py, "-m", "csmvanet.bin.enhance", os.fsdecode(root + b"/" + name + b".wav"), "--output_dir",
                        os.fsdecode(root + b"/out2"), "--no_progress", "--num_threads", "1"],
                       capture_output=True, timeout=300)
    assert r.returncode == 0 and os.listdir(root + b"/out2") == [name + b".wav"], r.stderr


@pytest.mark.parametrize("umask,mode", [(0o022, 0o755), (0o027, 0o750)], ids=["umask022", "umask027"])
def test_made_folders_have_the_umasks_mode(tmp_path, umask, mode):
    a = make_data_dir(tmp_path / "a", num_utts=4, num_spk=2, with_vad=False)
    script = (f"{UTILS}/copy_data_dir.sh --utt-prefix b- --spk-prefix b- {a} {tmp_path}/b && "
              f"{UTILS}/subset_data_dir.sh --first {a} 2 {tmp_path}/sub && "
              f"{UTILS}/combine_data.sh {tmp_path}/c {a} {tmp_path}/b && {UTILS}/split_data.sh {a} 2")
    r = sh(script, tmp_path, umask=umask)
    assert r.returncode == 0, r.stderr
    for p in ("b", "sub", "c", "a/data/split2", "a/data/split2/1", "a/data/split2/2"):
        assert stat.S_IMODE((tmp_path / p).stat().st_mode) == mode, p


# ---------------------------------------------------------------- 3. utils/data: Kaldi's interfaces
def test_perturb_data_dir_speed_like_kaldi(tmp_path):
    import soundfile as sf

    a = make_data_dir(tmp_path / "a", num_utts=4, num_spk=2)
    write_lines(a / "spk2gender", ["spk0 m", "spk1 f"])
    write_lines(a / "text", [f"{k} hello world" for k in keys(a / "wav.scp")])
    r = ok("data/perturb_data_dir_speed.sh", "0.9", a, tmp_path / "p")
    p = tmp_path / "p"
    assert "vad_labels.scp: left out" in r.stdout
    assert keys(p / "utt2spk") == [f"sp0.9-{k}" for k in keys(a / "utt2spk")]
    assert read_lines(p / "spk2utt")[0] == "sp0.9-spk0 sp0.9-spk0_utt00 sp0.9-spk0_utt02"
    assert read_lines(p / "utt2uniq")[0] == "sp0.9-spk0_utt00 spk0_utt00"
    assert read_lines(p / "spk2gender") == ["sp0.9-spk0 m", "sp0.9-spk1 f"]
    assert read_lines(p / "text")[0] == "sp0.9-spk0_utt00 hello world"
    assert read_lines(p / "utt2dur")[0] == "sp0.9-spk0_utt00 0.277778"        # 0.25 / 0.9, awk's %.6g
    assert read_lines(p / "utt2num_samples")[0] == "sp0.9-spk0_utt00 4444"     # round(4000 / 0.9)
    assert not (p / "vad_labels.scp").exists()
    kaldi_ok(p)
    ok("validate_data_dir.sh", "--check-pipes", p)   # the pipes give 4444 samples, clean and noisy alike
    noisy = read_lines(p / "wav.scp")[0].split(maxsplit=1)[1]
    assert noisy.endswith(" |") and "--speed 0.9" in noisy
    x, _ = sf.read(read_lines(a / "wav.scp")[0].split()[1])
    assert abs(float((x ** 2).mean()) - _pipe_power(noisy)) < 0.2 * float((x ** 2).mean())
    s = make_segments_dir(tmp_path / "s")
    write_lines(s / "reco2file_and_channel", ["r0 r0 A", "r1 r1 A", "r2 r2 B"])
    ok("data/perturb_data_dir_speed.sh", "--include-spk-prefix", "false", "1.1", s, tmp_path / "q")
    q = tmp_path / "q"
    assert read_lines(q / "segments")[1] == "s0-r0-1-sp1.1 r0-sp1.1 0.23 0.41"   # 0.25/1.1, 0.45/1.1
    assert keys(q / "wav.scp") == ["r0-sp1.1", "r1-sp1.1", "r2-sp1.1"] == keys(q / "reco2file_and_channel")
    kaldi_ok(q)
    ok("validate_data_dir.sh", "--check-pipes", q)
    assert run("data/perturb_data_dir_speed.sh", "0.9", a, a).returncode == 1


def _pipe_power(entry: str) -> float:
    import io

    import soundfile as sf

    y, _ = sf.read(io.BytesIO(subprocess.run(entry[:-1], shell=True, capture_output=True, timeout=60).stdout))
    return float((y ** 2).mean())


def test_get_utt2dur_and_resample_data_dir(tmp_path):
    a = make_data_dir(tmp_path / "a", num_utts=2, num_spk=1)
    r = ok("data/get_utt2dur.sh", "--nj", 4, a)
    assert "audio headers" in r.stdout and read_lines(a / "utt2dur") == ["spk0_utt00 0.25", "spk0_utt01 0.2523125"]
    assert "already exists" in ok("data/get_utt2dur.sh", a).stdout
    s = make_segments_dir(tmp_path / "s")
    ok("data/get_utt2dur.sh", s)
    assert read_lines(s / "utt2dur")[1] == "s0-r0-1 0.2"                 # end - start, awk's %.6g
    (a / "utt2dur").unlink()
    r = ok("data/resample_data_dir.sh", 8000, a)
    assert "utt2num_samples: moved" in r.stdout and (a / ".backup" / "utt2num_samples").is_file()
    assert read_lines(a / "utt2dur") == ["spk0_utt00 0.25", "spk0_utt01 0.2523125"]   # written first
    assert all("--rate 8000" in ln for ln in read_lines(a / "wav.scp") + read_lines(a / "spk1.scp"))
    ok("validate_data_dir.sh", "--fs", 8000, "--check-pipes", a)
    kaldi_ok(a)


def test_simulated_dump_passes_kaldis_validator(tmp_path):
    """A dump as the recipes make it (csmvanet-simulate, --num mixtures with a noise reference)."""
    speech = make_data_dir(tmp_path / "sp", num_utts=4, num_spk=2, seconds=1.0, with_vad=False)
    noise = make_data_dir(tmp_path / "nz", num_utts=2, num_spk=1, seconds=1.0, with_vad=False)
    py = os.environ.get("CSMVANET_PYTHON") or str(ROOT / "tools" / "venv" / "bin" / "python")
    r = subprocess.run([py, "-m", "csmvanet.bin.simulate", "--make_spec", "--speech_scp", str(speech / "spk1.scp"),
                        "--speech_utt2spk", str(speech / "utt2spk"), "--noise_scp", str(noise / "wav.scp"),
                        "--snrs", "0,5", "--num", "6", "--length", "0.5", "--seed", "1",
                        "--spec", str(tmp_path / "spec.tsv"), "--out_wav_dir", str(tmp_path / "wav"),
                        "--data_dir", str(tmp_path / "train"), "--write_noise", "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    kaldi_ok(tmp_path / "train")
    ok("validate_data_dir.sh", tmp_path / "train")


def test_subset_split_and_combine_keep_lines_byte_for_byte(tmp_path):
    a = make_data_dir(tmp_path / "a", num_utts=4, num_spk=2, with_vad=False)
    write_lines(a / "text", [f"{u}\ta\tb  c" for u in keys(a / "wav.scp")])   # as Kaldi's filter_scp/sort keep
    ok("copy_data_dir.sh", "--utt-prefix", "b-", "--spk-prefix", "b-", a, tmp_path / "b")
    ok("subset_data_dir.sh", "--first", a, 2, tmp_path / "sub")
    ok("combine_data.sh", tmp_path / "c", a, tmp_path / "b")
    assert read_lines(tmp_path / "sub" / "text") == read_lines(a / "text")[:2]
    assert read_lines(tmp_path / "c" / "text")[4:] == read_lines(a / "text")  # b-... sort first
