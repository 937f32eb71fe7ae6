"""utils/parse_options.sh, utils/run.pl, utils/split_scp.pl, utils/split_data.sh, small helpers."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from datadir_helpers import make_data_dir, read_lines

ROOT = Path(__file__).resolve().parents[1]
UTILS = ROOT / "utils"


def sh(script: str, *args, cwd=None):
    return subprocess.run(["bash", "-c", script, "test-script", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


# ---------------------------------------------------------------- parse_options.sh
OPTS_SCRIPT = f"""set -euo pipefail
stage=1
stop_stage=10
use_vad=true
exp_tag=""
help_message="Usage: test-script [options] <dir>"
. {UTILS}/parse_options.sh
echo "stage=$stage stop_stage=$stop_stage use_vad=$use_vad exp_tag=$exp_tag rest=$*"
"""


def test_parse_options_sets_existing_variables():
    r = sh(OPTS_SCRIPT, "--stage", "3", "--stop-stage=5", "--use-vad", "false", "--exp-tag", "a b",
           "data/x", "--not-an-option")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "stage=3 stop_stage=5 use_vad=false exp_tag=a b rest=data/x --not-an-option"


def test_parse_options_stops_at_double_dash():
    r = sh(OPTS_SCRIPT, "--stage", "2", "--", "--stage", "4")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("stage=2 ") and r.stdout.strip().endswith("rest=--stage 4")


def test_parse_options_rejects_unknown_option():
    r = sh(OPTS_SCRIPT, "--stage", "2", "--no-such-thing", "1")
    assert r.returncode != 0
    assert "--no-such-thing" in r.stderr and "unknown option" in r.stderr
    assert "stage=" not in r.stdout


def test_parse_options_checks_booleans():
    r = sh(OPTS_SCRIPT, "--use-vad", "yes")
    assert r.returncode != 0
    assert "--use-vad" in r.stderr and "true or false" in r.stderr


def test_parse_options_config_is_sourced_in_order(tmp_path):
    conf = tmp_path / "conf.sh"
    conf.write_text("stage=7\nexp_tag=from_config\n")
    r = sh(OPTS_SCRIPT, "--config", conf, "--stage", "8")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("stage=8 ") and "exp_tag=from_config" in r.stdout
    r = sh(OPTS_SCRIPT, "--config", tmp_path / "missing.sh")
    assert r.returncode != 0 and "missing.sh" in r.stderr


def test_parse_options_help():
    r = sh(OPTS_SCRIPT, "--help")
    assert r.returncode == 0 and r.stdout.strip() == "Usage: test-script [options] <dir>"


# ---------------------------------------------------------------- run.pl
def test_run_pl_array_writes_logs(tmp_path):
    r = subprocess.run([str(UTILS / "run.pl"), "--gpu", "1", "--mem", "2G", "--max-jobs-run", "2",
                        "JOB=1:4", "log/x.JOB.log", "echo job JOB | tr a-z A-Z; echo err JOB >&2"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for i in range(1, 5):
        lines = read_lines(tmp_path / "log" / f"x.{i}.log")
        assert lines[0] == f"# echo job {i} | tr a-z A-Z; echo err {i} >&2"
        assert lines[1].startswith("# Started at")
        assert f"JOB {i}" in lines and f"err {i}" in lines
        assert lines[-2].startswith("# Accounting: time=")
        assert lines[-1].startswith("# Ended (code 0) at")


def test_run_pl_quotes_arguments_and_keeps_escaped_pipes(tmp_path):
    r = subprocess.run([str(UTILS / "run.pl"), "log/q.log", "printf", "%s\\n", "a b", "it's", "|", "wc", "-l"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "2" in read_lines(tmp_path / "log" / "q.log")


def test_run_pl_failure_names_the_log(tmp_path):
    r = subprocess.run([str(UTILS / "run.pl"), "JOB=1:4", "log/y.JOB.log", "test JOB -ne 3"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "run.pl: 1 / 4 failed, log is in log/y.3.log" in r.stderr
    assert read_lines(tmp_path / "log" / "y.3.log")[-1].startswith("# Ended (code 1)")
    assert read_lines(tmp_path / "log" / "y.2.log")[-1].startswith("# Ended (code 0)")


def test_run_pl_rejects_unknown_option(tmp_path):
    r = subprocess.run([str(UTILS / "run.pl"), "--bogus", "1", "log/z.log", "true"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--bogus" in r.stderr


# ---------------------------------------------------------------- split_scp.pl / split_data.sh
def make_list(path: Path, n_spk=3, n_per=5):
    keys = sorted(f"s{s}_u{u:02d}" for s in range(n_spk) for u in range(n_per))
    path.write_text("".join(f"{k} /audio/{k}.wav\n" for k in keys))
    (path.parent / "utt2spk").write_text("".join(f"{k} {k.split('_')[0]}\n" for k in keys))
    return keys


@pytest.mark.parametrize("per_spk", [False, True])
def test_split_scp_keeps_all_keys_disjoint_deterministic(tmp_path, per_spk):
    keys = make_list(tmp_path / "in.scp", n_spk=4, n_per=3)
    opts = ["--utt2spk", tmp_path / "utt2spk"] if per_spk else []
    outs = []
    for attempt in range(2):
        parts = [tmp_path / f"out{attempt}.{i}.scp" for i in range(1, 4)]
        r = subprocess.run([str(UTILS / "split_scp.pl"), *map(str, opts), str(tmp_path / "in.scp"),
                            *map(str, parts)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        outs.append([p.read_text() for p in parts])
    assert outs[0] == outs[1]
    part_keys = [[line.split()[0] for line in text.splitlines()] for text in outs[0]]
    assert sorted(k for p in part_keys for k in p) == keys
    assert all(part_keys) and sum(map(len, part_keys)) == len(set(k for p in part_keys for k in p))
    if per_spk:
        spk_parts = {}
        for i, p in enumerate(part_keys):
            for k in p:
                spk_parts.setdefault(k.split("_")[0], set()).add(i)
        assert all(len(v) == 1 for v in spk_parts.values())
    else:
        assert sorted(map(len, part_keys)) == [4, 4, 4]


def test_split_scp_refuses_more_parts_than_speakers(tmp_path):
    make_list(tmp_path / "in.scp", n_spk=2)
    r = subprocess.run([str(UTILS / "split_scp.pl"), "--utt2spk", str(tmp_path / "utt2spk"),
                        str(tmp_path / "in.scp"), *[str(tmp_path / f"o{i}") for i in range(3)]],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "only 2 speakers" in r.stderr and "in.scp" in r.stderr
    assert not (tmp_path / "o0").exists()  # nothing written


def test_split_data_filters_every_file(tmp_path):
    data = make_data_dir(tmp_path, num_utts=7, num_spk=3)
    r = subprocess.run([str(UTILS / "split_data.sh"), str(data), "3"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    all_keys = [line.split()[0] for line in read_lines(data / "wav.scp")]
    seen = []
    for n in (1, 2, 3):
        part = data / "split3" / str(n)
        keys = [line.split()[0] for line in read_lines(part / "wav.scp")]
        assert keys
        seen += keys
        for name in ("spk1.scp", "utt2spk", "utt2num_samples", "vad_labels.scp", "utt2snr"):
            assert [line.split()[0] for line in read_lines(part / name)] == keys, name
        spk2utt = {line.split()[0]: line.split()[1:] for line in read_lines(part / "spk2utt")}
        assert sorted(u for us in spk2utt.values() for u in us) == keys
        # each part is a valid data dir on its own (the VAD labels still resolve)
        v = subprocess.run([str(UTILS / "validate_data_dir.sh"), "--no-audio-check", str(part)],
                           capture_output=True, text=True, timeout=60)
        assert v.returncode == 0, v.stderr
    assert seen == all_keys
    first = {p.relative_to(data): p.read_bytes() for p in (data / "split3").rglob("*") if p.is_file()}
    subprocess.run([str(UTILS / "split_data.sh"), str(data), "3"], check=True, timeout=60)
    assert first == {p.relative_to(data): p.read_bytes() for p in (data / "split3").rglob("*") if p.is_file()}


def test_spk2utt_helpers_round_trip(tmp_path):
    make_list(tmp_path / "in.scp")
    s2u = subprocess.run([str(UTILS / "utt2spk_to_spk2utt.pl"), str(tmp_path / "utt2spk")],
                         capture_output=True, text=True, check=True).stdout
    assert s2u.splitlines()[0].split() == ["s0"] + [f"s0_u{u:02d}" for u in range(5)]
    (tmp_path / "spk2utt").write_text(s2u)
    u2s = subprocess.run([str(UTILS / "spk2utt_to_utt2spk.pl"), str(tmp_path / "spk2utt")],
                         capture_output=True, text=True, check=True).stdout
    assert u2s == (tmp_path / "utt2spk").read_text()


def test_filter_scp(tmp_path):
    keys = make_list(tmp_path / "in.scp")
    (tmp_path / "ids").write_text(f"{keys[3]}\n{keys[0]} x\n")
    out = subprocess.run([str(UTILS / "filter_scp.pl"), str(tmp_path / "ids"), str(tmp_path / "in.scp")],
                         capture_output=True, text=True, check=True).stdout
    assert [line.split()[0] for line in out.splitlines()] == [keys[0], keys[3]]
    out = subprocess.run([str(UTILS / "filter_scp.pl"), "--exclude", str(tmp_path / "ids"),
                          str(tmp_path / "in.scp")], capture_output=True, text=True, check=True).stdout
    assert len(out.splitlines()) == len(keys) - 2
