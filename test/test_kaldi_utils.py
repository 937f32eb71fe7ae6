"""utils/ scripts that share Kaldi's names behave like Kaldi's (issue 14).

Every expected output below is written by hand from the behaviour of Kaldi's egs/wsj/s5/utils scripts
(split_scp.pl's part sizes and speaker balancing, subset_scp.pl's even spread, subset_data_dir.sh
--per-spk's skip rule, copy_data_dir.sh's renaming, segments handling in split/fix/subset), on small
fixtures: a segments data dir (wav.scp keyed by recording) and a dir with our extra files.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from datadir_helpers import make_data_dir, read_lines, write_lines

UTILS = Path(__file__).resolve().parents[1] / "utils"


def run(tool, *args, cwd=None):
    return subprocess.run([str(UTILS / tool), *map(str, args)], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def ok(tool, *args):
    r = run(tool, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def keys(path: Path) -> list[str]:
    return [line.split()[0] for line in read_lines(path)]


def snapshot(d: Path) -> dict:
    return {p.relative_to(d): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def make_segments_dir(root: Path, n_reco: int = 3, per_reco: int = 2, n_spk: int = 2) -> Path:
    """wav.scp + spk1.scp keyed by recording (r0, r1, ...: max(1, per_reco/4) s at 16 kHz); utterances
    <spk>-r<i>-<j> = segment j (0.2 s from 0.25*j s) of recording i; utt2spk, spk2utt, segments,
    utt2num_samples (3200), utt2snr."""
    d, audio = root / "seg", root / "seg_audio"
    d.mkdir(parents=True)
    audio.mkdir()
    rng = np.random.default_rng(1)
    wav, spk1, segs, u2s, u2n, snr = {}, {}, {}, {}, {}, {}
    for i in range(n_reco):
        reco = f"r{i}"
        x = (0.1 * rng.standard_normal(int(16000 * max(1.0, 0.25 * per_reco)))).astype(np.float32)
        sf.write(audio / f"{reco}.wav", x, 16000)
        sf.write(audio / f"{reco}_clean.wav", x * 0.5, 16000)
        wav[reco], spk1[reco] = str(audio / f"{reco}.wav"), str(audio / f"{reco}_clean.wav")
        for j in range(per_reco):
            spk = f"s{i % n_spk}"
            utt = f"{spk}-{reco}-{j}"
            segs[utt] = f"{reco} {0.25 * j:.2f} {0.25 * j + 0.2:.2f}"
            u2s[utt], u2n[utt], snr[utt] = spk, "3200", "5.0"

    def write(name, m):
        (d / name).write_text("".join(f"{k} {m[k]}\n" for k in sorted(m)))

    for name, m in (("wav.scp", wav), ("spk1.scp", spk1), ("segments", segs), ("utt2spk", u2s),
                    ("utt2num_samples", u2n), ("utt2snr", snr)):
        write(name, m)
    s2u = {}
    for u in sorted(u2s):
        s2u.setdefault(u2s[u], []).append(u)
    write("spk2utt", {s: " ".join(us) for s, us in s2u.items()})
    return d


# ---------------------------------------------------------------- split_scp.pl
def test_split_scp_sizes_like_kaldi(tmp_path):
    # 7 lines into 3: Kaldi gives 7 // 3 = 2 each, the first 7 % 3 = 1 part one more: 3, 2, 2.
    (tmp_path / "in.scp").write_text("".join(f"u{i} x{i}\n" for i in range(7)))
    ok("split_scp.pl", tmp_path / "in.scp", *(tmp_path / f"o{i}" for i in (1, 2, 3)))
    assert [keys(tmp_path / f"o{i}") for i in (1, 2, 3)] == [["u0", "u1", "u2"], ["u3", "u4"], ["u5", "u6"]]


def test_split_scp_utt2spk_balances_like_kaldi(tmp_path):
    # speakers a (4 lines), b (1), c (1) into 2: first a,b -> part 1 and c -> part 2 (i*2//3); moving
    # b to part 2 makes the sizes closer (4 vs 2 instead of 5 vs 1), moving a would not.
    lines = [f"a{i}" for i in range(4)] + ["b0", "c0"]
    (tmp_path / "in.scp").write_text("".join(f"{k} /x/{k}.wav\n" for k in lines))
    (tmp_path / "utt2spk").write_text("".join(f"{k} {k[0]}\n" for k in lines))
    ok("split_scp.pl", f"--utt2spk={tmp_path / 'utt2spk'}", tmp_path / "in.scp", tmp_path / "o1", tmp_path / "o2")
    assert keys(tmp_path / "o1") == ["a0", "a1", "a2", "a3"] and keys(tmp_path / "o2") == ["b0", "c0"]


def test_split_scp_j_writes_one_part(tmp_path):
    (tmp_path / "in.scp").write_text("".join(f"u{i} x{i}\n" for i in range(7)))
    assert ok("split_scp.pl", "-j", 3, 1, tmp_path / "in.scp").stdout == "u3 x3\nu4 x4\n"  # 0-based
    assert ok("split_scp.pl", "-j", 3, 1, "--one-based", tmp_path / "in.scp").stdout == "u0 x0\nu1 x1\nu2 x2\n"
    ok("split_scp.pl", "-j", 3, 2, tmp_path / "in.scp", tmp_path / "part")
    assert keys(tmp_path / "part") == ["u5", "u6"]
    r = run("split_scp.pl", "-j", 3, 3, tmp_path / "in.scp")
    assert r.returncode == 1 and "job 3" in r.stderr


# ---------------------------------------------------------------- filter_scp.pl
def test_filter_scp_field_and_exclude(tmp_path):
    (tmp_path / "segments").write_text("u1 r1 0 1\nu2 r2 0 1\nu3 r1 1 2\n")
    (tmp_path / "recos").write_text("r1\n")
    out = ok("filter_scp.pl", "-f", 2, tmp_path / "recos", tmp_path / "segments").stdout
    assert out == "u1 r1 0 1\nu3 r1 1 2\n"
    out = ok("filter_scp.pl", "--exclude", "-f", 2, tmp_path / "recos", tmp_path / "segments").stdout
    assert out == "u2 r2 0 1\n"


# ---------------------------------------------------------------- split_data.sh
def test_split_data_per_speaker_by_default_with_segments(tmp_path):
    d = make_segments_dir(tmp_path, n_reco=3, per_reco=2, n_spk=2)
    # speakers: s0 has r0 and r2 (4 utts), s1 has r1 (2 utts)
    ok("split_data.sh", d, 2)
    p1, p2 = d / "split2" / "1", d / "split2" / "2"
    assert keys(p1 / "utt2spk") == ["s0-r0-0", "s0-r0-1", "s0-r2-0", "s0-r2-1"]
    assert keys(p2 / "utt2spk") == ["s1-r1-0", "s1-r1-1"]
    assert read_lines(p1 / "segments") == ["s0-r0-0 r0 0.00 0.20", "s0-r0-1 r0 0.25 0.45",
                                           "s0-r2-0 r2 0.00 0.20", "s0-r2-1 r2 0.25 0.45"]
    assert keys(p1 / "wav.scp") == ["r0", "r2"] and keys(p2 / "wav.scp") == ["r1"]  # by recording
    assert keys(p2 / "spk1.scp") == ["r1"]
    assert read_lines(p2 / "spk2utt") == ["s1 s1-r1-0 s1-r1-1"]
    assert keys(p2 / "utt2snr") == keys(p2 / "utt2num_samples") == ["s1-r1-0", "s1-r1-1"]
    assert not (d / "split2utt").exists()
    for p in (p1, p2):
        ok("validate_data_dir.sh", p)


def test_split_data_per_utt_into_splitNutt(tmp_path):
    d = make_data_dir(tmp_path, num_utts=5, num_spk=1)
    ok("split_data.sh", "--per-utt", d, 2)
    assert not (d / "split2").exists()
    all_keys = keys(d / "wav.scp")
    assert keys(d / "split2utt" / "1" / "wav.scp") == all_keys[:3]
    assert keys(d / "split2utt" / "2" / "wav.scp") == all_keys[3:]
    for name in ("spk1.scp", "utt2num_samples", "utt2snr", "vad_labels.scp", "utt2spk"):
        assert keys(d / "split2utt" / "2" / name) == all_keys[3:], name
    assert (d / "split2utt" / "2" / "frame_shift").read_text() == "0.00625\n"
    # one speaker cannot be split per speaker into 2
    r = run("split_data.sh", d, 2)
    assert r.returncode == 1 and "only 1 speakers" in r.stderr and not (d / "split2").exists()


# ---------------------------------------------------------------- fix_data_dir.sh
def test_fix_with_segments_and_utt_extra_files(tmp_path):
    d = make_segments_dir(tmp_path, n_reco=3, per_reco=2)
    write_lines(d / "wav.scp", [ln for ln in read_lines(d / "wav.scp") if not ln.startswith("r1 ")]
                + ["r9 /nowhere/r9.wav"])  # r1 gone; r9 has no segment
    write_lines(d / "text_spk1", ["s0-r2-1 b", "s0-r0-0 a", "zz-extra c"])  # unsorted, an extra key
    r = run("fix_data_dir.sh", "--utt-extra-files", "text_spk1", d)  # 5 of 7 would go
    assert r.returncode == 1 and "nothing changed" in r.stderr
    r = ok("fix_data_dir.sh", "--utt_extra_files", "text_spk1", "--max-drop-fraction", 0.9, d)
    assert "kept 2 of 7 utterances" in r.stdout
    # kept: segments whose recording is in wav.scp (r0, r2) and that text_spk1 has
    assert keys(d / "segments") == ["s0-r0-0", "s0-r2-1"]
    assert read_lines(d / "text_spk1") == ["s0-r0-0 a", "s0-r2-1 b"]
    assert keys(d / "wav.scp") == ["r0", "r2"]  # r9 (unused) and r1 (missing) gone
    assert keys(d / "spk1.scp") == ["r0", "r2"]
    assert read_lines(d / "spk2utt") == ["s0 s0-r0-0 s0-r2-1"]
    ok("validate_data_dir.sh", d)


def test_fix_drops_the_segments_of_a_recording_gone_from_wav_scp(tmp_path):
    d = make_segments_dir(tmp_path, n_reco=3, per_reco=2)
    write_lines(d / "wav.scp", [ln for ln in read_lines(d / "wav.scp") if not ln.startswith("r1 ")])
    r = ok("fix_data_dir.sh", d)                            # 2 of 6 go: within the default limit
    assert "kept 4 of 6 utterances" in r.stdout and "whose recording is not in" in r.stdout + r.stderr
    assert [k for k in keys(d / "segments") if "-r1-" in k] == [] and len(keys(d / "segments")) == 4
    assert keys(d / "spk1.scp") == ["r0", "r2"] and not any("-r1-" in k for k in keys(d / "utt2spk"))
    ok("validate_data_dir.sh", d)


def test_fix_refuses_empty_result_and_large_drops_changing_nothing(tmp_path):
    d = make_data_dir(tmp_path, num_utts=4, num_spk=2)
    (d / "wav.scp").write_text("")
    before = snapshot(d)
    r = run("fix_data_dir.sh", d)
    assert r.returncode == 1 and "no utterance" in r.stderr and "nothing changed" in r.stderr
    assert snapshot(d) == before and not (d / ".backup").exists()
    # 3 of 4 would go: refused by default (> 0.5), done with --max-drop-fraction 0.8
    d2 = make_data_dir(tmp_path / "b", num_utts=4, num_spk=2)
    write_lines(d2 / "spk1.scp", read_lines(d2 / "spk1.scp")[:1])
    before = snapshot(d2)
    r = run("fix_data_dir.sh", d2)
    assert r.returncode == 1 and "3 of 4" in r.stderr and "--max-drop-fraction" in r.stderr
    assert snapshot(d2) == before
    r = ok("fix_data_dir.sh", "--max_drop_fraction", 0.8, d2)
    assert "kept 1 of 4" in r.stdout and len(read_lines(d2 / "wav.scp")) == 1
    d3 = make_data_dir(tmp_path / "c", num_utts=4, num_spk=2)   # exactly the limit (2 of 4 = 0.5): done
    write_lines(d3 / "spk1.scp", read_lines(d3 / "spk1.scp")[:2])
    assert "kept 2 of 4" in ok("fix_data_dir.sh", d3).stdout


def test_fix_never_overwrites_a_backup(tmp_path):
    d = make_data_dir(tmp_path, num_utts=4, num_spk=2)
    orig = (d / "spk1.scp").read_text()
    write_lines(d / "spk1.scp", read_lines(d / "spk1.scp") + [read_lines(d / "spk1.scp")[0]])
    first = (d / "spk1.scp").read_text()
    ok("fix_data_dir.sh", d)
    assert (d / ".backup" / "spk1.scp").read_text() == first and (d / "spk1.scp").read_text() == orig
    write_lines(d / "utt2snr", read_lines(d / "utt2snr")[::-1])  # unsorted again
    ok("fix_data_dir.sh", d)
    assert (d / ".backup" / "spk1.scp").read_text() == first  # untouched
    assert (d / ".backup.1" / "utt2snr").exists()


# ---------------------------------------------------------------- validate_data_dir.sh
def test_validate_kaldi_options_segments_and_ids(tmp_path):
    d = make_segments_dir(tmp_path)
    r = ok("validate_data_dir.sh", "--no-feats", "--no-text", "--no-spk-sort", d)
    assert "6 utterances" in r.stdout and "3 recordings" in r.stdout
    (tmp_path / "nowav").mkdir()
    write_lines(tmp_path / "nowav" / "utt2spk", ["u1 s1"])
    write_lines(tmp_path / "nowav" / "spk2utt", ["s1 u1"])
    assert run("validate_data_dir.sh", tmp_path / "nowav").returncode == 1
    ok("validate_data_dir.sh", "--no-wav", tmp_path / "nowav")
    # a segment past its recording's end
    write_lines(d / "segments", [ln if not ln.startswith("s0-r2-1 ") else "s0-r2-1 r2 0.50 2.00"
                                 for ln in read_lines(d / "segments")])
    r = run("validate_data_dir.sh", d)
    assert r.returncode == 1 and "s0-r2-1" in r.stderr and "after the recording" in r.stderr


def test_validate_rejects_bad_ids_and_empty_dirs(tmp_path):
    d = make_data_dir(tmp_path, num_utts=2, num_spk=1, with_vad=False)
    for name in ("wav.scp", "spk1.scp", "utt2num_samples", "utt2snr", "utt2spk"):
        write_lines(d / name, [ln.replace("spk0_utt00", "a/b") for ln in read_lines(d / name)])
    write_lines(d / "spk2utt", ["spk0 a/b spk0_utt01"])
    r = run("validate_data_dir.sh", d)
    assert r.returncode == 1 and "'a/b'" in r.stderr and "path separator" in r.stderr
    e = make_data_dir(tmp_path / "e", num_utts=2, num_spk=1, with_vad=False)
    for name in ("wav.scp", "spk1.scp", "utt2num_samples", "utt2snr", "utt2spk", "spk2utt"):
        (e / name).write_text("")
    r = run("validate_data_dir.sh", e)
    assert r.returncode == 1 and "no utterances" in r.stderr


def test_old_vad_scp_is_read_with_a_notice(tmp_path):
    d = make_data_dir(tmp_path, num_utts=2, num_spk=1)
    (d / "vad_labels.scp").rename(d / "vad.scp")
    r = ok("validate_data_dir.sh", d)
    assert "2 VAD label vectors checked" in r.stdout
    assert "vad.scp: read as VAD labels" in r.stderr and "rename it to vad_labels.scp" in r.stderr
    (d / "frame_shift").write_text("0.01\n")
    r = run("validate_data_dir.sh", d)
    assert r.returncode == 1 and "frame_shift" in r.stderr and "0.00625" in r.stderr


# ---------------------------------------------------------------- subset_data_dir.sh
def _ten(tmp_path):
    d = tmp_path / "ten"
    d.mkdir()
    us = [f"u{i}" for i in range(10)]
    write_lines(d / "wav.scp", [f"{u} /a/{u}.wav" for u in us])
    write_lines(d / "utt2spk", [f"{u} s{int(u[1:]) // 5}" for u in us])  # s0: u0-u4, s1: u5-u9
    write_lines(d / "spk2utt", ["s0 u0 u1 u2 u3 u4", "s1 u5 u6 u7 u8 u9"])
    write_lines(d / "utt2snr", [f"{u} 1" for u in us])
    return d


def test_per_speaker_step_is_kaldis_at_the_boundary():
    """subset_data_dir.sh --per-spk N: the step grows while N * (step + 1) <= the speaker's count
    (Kaldi's awk), so 2 of 6 utterances are the 1st and the 4th."""
    from csmvanet.data.dir_ops import per_speaker_select

    six = [f"u{i}" for i in range(6)]
    assert per_speaker_select(six, 2) == ["u0", "u3"]
    assert per_speaker_select(six + ["u6"], 2) == ["u0", "u3"]
    assert per_speaker_select(six, 6) == six and per_speaker_select(six, 9) == six


@pytest.mark.parametrize("opts,want", [
    ([3], ["u4", "u6", "u9"]),                # subset_scp.pl's recursive even spread
    (["--first", 3], ["u0", "u1", "u2"]),
    (["--last", 2], ["u8", "u9"]),
    (["--per-spk", 2], ["u0", "u2", "u5", "u7"]),  # skip 2 for 5 utterances: 1st and 3rd
])
def test_subset_choices_like_kaldi(tmp_path, opts, want):
    d = _ten(tmp_path)
    flag, n = (opts[0], opts[1]) if len(opts) == 2 else (None, opts[0])
    args = ([flag] if flag else []) + [d, n, tmp_path / "sub"]
    r = ok("subset_data_dir.sh", *args)
    assert keys(tmp_path / "sub" / "utt2spk") == want and keys(tmp_path / "sub" / "utt2snr") == want
    assert f"reducing #utt from 10 to {len(want)}" in r.stdout


def test_subset_lists_and_segments(tmp_path):
    d = _ten(tmp_path)
    write_lines(tmp_path / "ul", ["u7", "u3 x"])
    ok("subset_data_dir.sh", "--utt-list", tmp_path / "ul", d, tmp_path / "a")
    assert keys(tmp_path / "a" / "wav.scp") == ["u3", "u7"]
    write_lines(tmp_path / "sl", ["s1"])
    ok("subset_data_dir.sh", "--spk-list", tmp_path / "sl", d, tmp_path / "b")
    assert keys(tmp_path / "b" / "wav.scp") == ["u5", "u6", "u7", "u8", "u9"]
    assert read_lines(tmp_path / "b" / "spk2utt") == ["s1 u5 u6 u7 u8 u9"]
    r = run("subset_data_dir.sh", d, 11, tmp_path / "c")
    assert r.returncode == 1 and "only 10" in r.stderr and not (tmp_path / "c").exists()
    write_lines(tmp_path / "none", ["zz"])
    r = run("subset_data_dir.sh", "--utt-list", tmp_path / "none", d, tmp_path / "c")
    assert r.returncode == 1 and "no utterance" in r.stderr and not (tmp_path / "c").exists()
    s = make_segments_dir(tmp_path / "s")
    write_lines(tmp_path / "ul2", ["s1-r1-0"])
    ok("subset_data_dir.sh", "--utt-list", tmp_path / "ul2", s, tmp_path / "d")
    assert read_lines(tmp_path / "d" / "segments") == ["s1-r1-0 r1 0.00 0.20"]
    assert keys(tmp_path / "d" / "wav.scp") == ["r1"] and keys(tmp_path / "d" / "spk1.scp") == ["r1"]


# ---------------------------------------------------------------- copy_data_dir.sh
def test_copy_with_prefixes(tmp_path):
    s = make_segments_dir(tmp_path)
    ok("copy_data_dir.sh", "--utt-prefix", "sp1-", "--utt-suffix", "-x", "--spk-prefix=sp1-", s, tmp_path / "c")
    c = tmp_path / "c"
    assert read_lines(c / "segments")[0] == "sp1-s0-r0-0-x r0 0.00 0.20"  # recording id kept
    assert read_lines(c / "wav.scp") == read_lines(s / "wav.scp")       # by recording, as is
    assert read_lines(c / "utt2spk")[0] == "sp1-s0-r0-0-x sp1-s0"
    assert read_lines(c / "spk2utt")[1].startswith("sp1-s1 sp1-s1-r1-0-x")
    assert read_lines(c / "utt2uniq")[0] == "sp1-s0-r0-0-x s0-r0-0"    # Kaldi writes utt2uniq
    assert read_lines(c / "utt2snr")[0] == "sp1-s0-r0-0-x 5.0"
    ok("validate_data_dir.sh", c)
    r = run("copy_data_dir.sh", s, s)
    assert r.returncode == 1 and "differ" in r.stderr
    r = run("copy_data_dir.sh", "--utt-prefix", "a/", s, tmp_path / "bad")
    assert r.returncode == 1 and "path separator" in r.stderr and not (tmp_path / "bad").exists()


# ---------------------------------------------------------------- combine_data.sh
def test_combine_refuses_duplicates_and_makes_segments(tmp_path):
    a = make_data_dir(tmp_path / "a", num_utts=2, num_spk=1)
    r = run("combine_data.sh", tmp_path / "c", a, a)
    assert r.returncode == 1 and "is also in" in r.stderr and not (tmp_path / "c").exists()
    ok("copy_data_dir.sh", "--utt-prefix", "b-", "--spk-prefix", "b-", a, tmp_path / "b")
    ok("combine_data.sh", tmp_path / "c", a, tmp_path / "b")
    assert len(read_lines(tmp_path / "c" / "wav.scp")) == 4
    assert len(read_lines(tmp_path / "c" / "vad_labels.scp")) == 4
    ok("validate_data_dir.sh", tmp_path / "c")
    s = make_segments_dir(tmp_path / "s", n_reco=1, per_reco=2)
    r = ok("combine_data.sh", tmp_path / "m", s, a)
    m = tmp_path / "m"
    assert read_lines(m / "segments") == ["s0-r0-0 r0 0.00 0.20", "s0-r0-1 r0 0.25 0.45",
                                          "spk0_utt00 spk0_utt00 0 0.25", "spk0_utt01 spk0_utt01 0 0.2523125"]
    assert keys(m / "wav.scp") == ["r0", "spk0_utt00", "spk0_utt01"]
    assert "vad_labels.scp: not combined" in r.stdout
    ok("validate_data_dir.sh", m)


# ---------------------------------------------------------------- readers through segments
def test_training_reader_reads_segments(tmp_path):
    from csmvanet.data.dataset import DataDir, _UtteranceReader
    from csmvanet.audio.stft import STFTConfig

    s = make_segments_dir(tmp_path)
    data = DataDir(s)
    noisy, clean, _ = _UtteranceReader(data, STFTConfig(), use_vad=False).read("s1-r1-1")
    whole, _ = sf.read(read_lines(s / "wav.scp")[1].split()[1], dtype="float32")
    np.testing.assert_array_equal(noisy, whole[4000:7200])  # 0.25 s .. 0.45 s
    np.testing.assert_allclose(clean, whole[4000:7200] * 0.5, atol=1e-4)
