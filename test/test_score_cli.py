"""csmvanet-score end to end: report layout, error handling, split jobs + merge, steps/score.sh."""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from csmvanet.bin.score import main as score_main
from csmvanet.data.datadir import read_scp

FS = 16000
REPO = Path(__file__).resolve().parents[1]


def _speech_like():
    spec = importlib.util.spec_from_file_location("bench_metrics", REPO / "bench" / "bench_metrics.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.speech_like


speech_like = _speech_like()


def make_data(root: Path, n: int = 4, seconds: float = 1.0) -> Path:
    """data/ with spk1.scp, wav.scp, vad_labels.scp, utt2noise, utt2snr; enh/ with enhanced.scp,
    vad_prob.scp; exp config. Utterance i: SNR 0 or 10 dB, noise 'white'/'hum'."""
    data, enh = root / "data", root / "exp" / "enh"
    data.mkdir(parents=True)
    enh.mkdir(parents=True)
    rng = np.random.default_rng(0)
    ref, noisy, out, u2n, u2s, vad, prob = {}, {}, {}, {}, {}, {}, {}
    for i in range(n):
        u = f"utt{i}"
        c = speech_like(seconds, FS, seed=i)
        noise = rng.standard_normal(c.size) if i % 2 == 0 else np.sin(2 * np.pi * 100 * np.arange(c.size) / FS)
        snr = (0, 10)[(i // 2) % 2]
        noise *= np.sqrt(np.mean(c ** 2) / np.mean(noise ** 2) / 10 ** (snr / 10))
        for d, x, name in ((ref, c, "c"), (noisy, c + noise, "n"), (out, c + 0.3 * noise, "e")):
            p = root / f"{u}_{name}.wav"
            sf.write(p, x, FS, subtype="FLOAT")
            d[u] = str(p)
        u2n[u] = ("white", "hum")[i % 2]
        u2s[u] = str(snr)
        frames = c.size // 100 + 1
        env = np.convolve(np.abs(np.pad(c, (0, 100))), np.ones(100) / 100, "same")[::100][:frames]
        vad[u] = (env > 0.01).astype(np.int32)
        prob[u] = np.clip(0.8 * vad[u] + rng.uniform(0, 0.3, frames), 0, 1).astype(np.float32)
    write = lambda path, d: path.write_text("".join(f"{k} {v}\n" for k, v in sorted(d.items())))  # noqa: E731
    write(data / "spk1.scp", ref)
    write(data / "wav.scp", noisy)
    write(data / "utt2noise", u2n)
    write(data / "utt2snr", u2s)
    write(enh / "enhanced.scp", out)
    kaldiio.save_ark(str(data / "vad_labels.ark"), vad, scp=str(data / "vad_labels.scp"))
    kaldiio.save_ark(str(enh / "vad_prob.ark"), prob, scp=str(enh / "vad_prob.scp"))
    (root / "exp" / "config.yaml").write_text("stft:\n  hop_length: 100\nmodel:\n  channels: 16\n")
    return root


def _args(root: Path, out: Path, *extra: str) -> list[str]:
    d, e = root / "data", root / "exp" / "enh"
    return ["--ref_scp", str(d / "spk1.scp"), "--enh_scp", str(e / "enhanced.scp"),
            "--noisy_scp", str(d / "wav.scp"), "--vad_ref_scp", str(d / "vad_labels.scp"),
            "--vad_hyp_scp", str(e / "vad_prob.scp"), "--out_dir", str(out), "--progress", "false",
            *extra]


@pytest.fixture(scope="module")
def clean_set(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("score"))


def _values(out: Path, system: str = "enhanced") -> dict[str, dict[str, str]]:
    return {f.name: read_scp(f) for f in sorted((out / system).iterdir())}


@pytest.fixture(scope="module")
def full_report(clean_set, tmp_path_factory):
    """One scoring run with every report input (shared by the tests below)."""
    root = clean_set
    tmp = tmp_path_factory.mktemp("report")
    pub = tmp / "pub.yaml"
    pub.write_text("name: CSM-VANet\nsource: paper, Table I\nPESQ: 3.31\nSTOI: 0.95\nCSIG: 4.52\n"
                   "segSNR: 11.2\nVAD F1: 0.93\n")
    out = tmp / "out"
    rc = score_main(_args(root, out, "--utt2noise", str(root / "data" / "utt2noise"),
                          "--utt2snr", str(root / "data" / "utt2snr"),
                          "--config_file", str(root / "exp" / "config.yaml"),
                          "--published", str(pub), "--title", "CSM-VANet (ours)"))
    return rc, out


def test_report_layout(full_report, clean_set):
    rc, out = full_report
    assert rc == 0
    md = (out / "RESULTS.md").read_text()
    # environment
    for needle in ("python:", "torch:", "numpy:", "pystoi:", "git:", "date:",
                   "pesq 0.0.4 (P.862.2 wb", "Loizou composite.m conventions"):
        assert needle in md, needle
    # Table I: column order, noisy row first, then ours, then the published row, marked
    table = [ln for ln in md.split("## Table I layout", 1)[1].splitlines() if ln.startswith("|")]
    assert table[0] == "| System | PESQ | STOI | CSIG | CBAK | COVL | segSNR | SI-SDR | VAD F1 |"
    assert table[2].startswith("| Noisy |") and "n/a" in table[2]
    assert table[3].startswith("| CSM-VANet (ours) |")
    assert table[4].startswith("| *CSM-VANet (published)* | 3.31 | 0.950 | 4.52 | - | - | 11.20 | - | 0.930 |")
    # our row holds the means of the per-utterance files
    pesq = [float(v) for v in read_scp(out / "enhanced" / "pesq").values()]
    assert f"| {np.mean(pesq):.2f} |" in table[3]
    noisy_pesq = [float(v) for v in read_scp(out / "noisy" / "pesq").values()]
    assert table[2].split("|")[2].strip() == f"{np.mean(noisy_pesq):.2f}"
    # Table II: SNR x {Noisy, ours} rows, noise-type columns and the average
    t2 = md.split("## Table II layout", 1)[1]
    assert "| SNR (dB) | System | hum PESQ | hum STOI | white PESQ | white STOI | Average PESQ | Average STOI |" in t2
    for snr in ("0", "10", "Average"):
        assert f"| {snr} | Noisy |" in t2 and f"| {snr} | CSM-VANet (ours) |" in t2
    # every cell is the mean over the utterances of its SNR (row) and noise type (column)
    u2n, u2s = read_scp(clean_set / "data" / "utt2noise"), read_scp(clean_set / "data" / "utt2snr")
    rows2 = {}
    for ln in t2.split("\n## ")[0].splitlines():
        if ln.startswith("| ") and not ln.startswith("| SNR"):
            cells = [c.strip() for c in ln.strip("|").split("|")]
            rows2[(cells[0], cells[1])] = cells[2:]
    for system, label in (("enhanced", "CSM-VANet (ours)"), ("noisy", "Noisy")):
        vals = {m: {u: float(v) for u, v in read_scp(out / system / m).items()} for m in ("pesq", "stoi")}
        for snr in ("0", "10", "Average"):
            for j, noise in enumerate(("hum", "white", "Average")):
                utts = [u for u in u2n if snr in ("Average", u2s[u]) and noise in ("Average", u2n[u])]
                want = [f"{np.mean([vals['pesq'][u] for u in utts]):.2f}",
                        f"{np.mean([vals['stoi'][u] for u in utts]):.3f}"]
                assert rows2[(snr, label)][2 * j:2 * j + 2] == want, (system, snr, noise)
    # VAD section and config
    assert "## VAD" in md and "hop_length: 100" in md and "channels: 16" in md
    # figures: three examples linked and written
    links = [ln.split("(")[1].rstrip(")") for ln in md.splitlines() if ln.startswith("![")]
    assert len(links) == 3 and {Path(x).name.split("_")[0] for x in links} == {"worst", "median", "best"}
    for rel in links:
        assert (out / rel).stat().st_size > 1000
    # per-utterance files: Kaldi style, sorted keys, all utterances
    vals = _values(out)
    assert {"pesq", "stoi", "csig", "cbak", "covl", "segsnr", "si_sdr", "vad_f1", "vad_auc"} <= set(vals)
    assert list(vals["pesq"]) == ["utt0", "utt1", "utt2", "utt3"]
    assert (out / "errors").read_text() == "" and (out / "missing").read_text() == ""


def test_split_jobs_merge_and_parallel_give_the_same_files(clean_set, full_report, tmp_path):
    root = clean_set
    single = full_report[1]
    par = tmp_path / "par"
    assert score_main(_args(root, par, "--nj", "2", "--report", "false")) == 0
    for j in (1, 2):
        assert score_main(_args(root, tmp_path / f"split/{j}", "--job", str(j), "--num_jobs", "2")) == 0
    assert len(read_scp(tmp_path / "split/1/enhanced/pesq")) == 2
    assert not (tmp_path / "split/1/RESULTS.md").exists()
    merged = tmp_path / "merged"
    assert score_main(_args(root, merged, "--figures", "false", "--merge",
                            str(tmp_path / "split/1"), str(tmp_path / "split/2"))) == 0
    for system in ("enhanced", "noisy"):
        assert _values(single, system) == _values(par, system) == _values(merged, system)
    assert (merged / "RESULTS.md").is_file()
    # a job that died (no 'done'): its utterances are reported as not scored, exit status 1
    (tmp_path / "split/2/done").unlink()
    broken = tmp_path / "broken"
    assert score_main(_args(root, broken, "--figures", "false", "--merge",
                            str(tmp_path / "split/1"), str(tmp_path / "split/2"))) == 1
    errors = read_scp(broken / "errors")
    assert set(errors) == set(read_scp(tmp_path / "split/1/enhanced/pesq")) ^ {"utt0", "utt1", "utt2", "utt3"}
    assert "not scored" in next(iter(errors.values()))


def test_problems_are_listed_and_the_batch_finishes(tmp_path):
    root = make_data(tmp_path / "d", n=4, seconds=1.0)
    data, enh = root / "data", root / "exp" / "enh"
    ref = read_scp(data / "spk1.scp")
    out_scp = read_scp(enh / "enhanced.scp")
    # utt0: enhanced file 10 ms shorter (trimmed, warned); utt1: unreadable; utt2: silent reference;
    # utt3: no enhanced file (missing); extra9: enhanced without reference (extra)
    x, _ = sf.read(out_scp["utt0"])
    sf.write(out_scp["utt0"], x[:-160], FS, subtype="FLOAT")
    Path(out_scp["utt1"]).write_bytes(b"RIFF but not really a wav file")
    sf.write(ref["utt2"], np.zeros(FS), FS)
    out_scp["extra9"] = out_scp.pop("utt3")
    probs = {k: np.asarray(kaldiio.load_mat(v)) for k, v in read_scp(enh / "vad_prob.scp").items()}
    probs["utt0"] = probs["utt0"][:-3]  # VAD prediction 3 frames short: trimmed, warned
    kaldiio.save_ark(str(enh / "vad_prob2.ark"), probs, scp=str(enh / "vad_prob.scp"))
    (enh / "enhanced.scp").write_text("".join(f"{k} {v}\n" for k, v in sorted(out_scp.items())))
    out = tmp_path / "out"
    rc = score_main(_args(root, out, "--figures", "false"))
    assert rc == 1  # unreadable audio and a missing key
    assert (out / "missing").read_text() == "utt3\n"
    assert (out / "extra").read_text() == "extra9\n"
    errors = read_scp(out / "errors")
    assert list(errors) == ["utt1"] and "utt1_e.wav" in errors["utt1"]
    warnings = (out / "warnings").read_text()
    assert "utt0 length mismatch: reference 16000 samples, enhanced 15840; trimmed to 15840" in warnings
    assert "utt2 enhanced: PESQ: NoUtterancesError" in warnings
    assert "utt0 VAD length mismatch: 161 label frames, 158 predicted; trimmed to 158" in warnings
    assert int(read_scp(out / "enhanced" / "vad_tp")["utt0"]) + int(read_scp(out / "enhanced" / "vad_fn")["utt0"]) \
        == int(np.sum(np.asarray(kaldiio.load_mat(read_scp(data / "vad_labels.scp")["utt0"]))[:158]))
    pesq = read_scp(out / "enhanced" / "pesq")
    assert set(pesq) == {"utt0", "utt2"}
    assert pesq["utt2"] == "nan" and math.isfinite(float(pesq["utt0"]))
    assert read_scp(out / "enhanced" / "csig")["utt2"] == "nan"
    md = (out / "RESULTS.md").read_text()
    assert "not scored (errors, listed in `errors`): 1: `utt1`" in md
    assert "in the reference list but not enhanced (`missing`): 1: `utt3`" in md
    assert "enhanced 1, noisy 1" in md  # PESQ failures counted
    # the mean excludes the NaN: it is utt0's value
    row = [ln for ln in md.splitlines() if ln.startswith("| Enhanced |")][0]
    assert row.split("|")[2].strip() == f"{float(pesq['utt0']):.2f}"


def test_length_mismatch_beyond_the_tolerance_is_an_error_and_not_averaged(tmp_path):
    """A truncated (or padded) enhanced file is not trimmed into an absurd score: beyond 20 ms it is an
    error naming both lengths, left out of the means and listed; the rest is scored; exit status 1."""
    root = make_data(tmp_path / "d", n=4, seconds=1.0)
    enh = read_scp(root / "exp" / "enh" / "enhanced.scp")
    ref = read_scp(root / "data" / "spk1.scp")
    x0, x1, x2 = (sf.read(enh[u])[0] for u in ("utt0", "utt1", "utt2"))
    sf.write(enh["utt0"], x0[:-320], FS, subtype="FLOAT")    # 20 ms short: the tolerance, trimmed
    sf.write(enh["utt1"], x1[:800], FS, subtype="FLOAT")     # truncated: 50 ms of 1 s
    sf.write(enh["utt2"], np.concatenate([x2, np.zeros(321)]), FS, subtype="FLOAT")   # 1 sample too long
    out = tmp_path / "out"
    assert score_main(_args(root, out, "--figures", "false")) == 1
    errors = read_scp(out / "errors")
    assert list(errors) == ["utt1", "utt2"]
    assert errors["utt1"] == (f"enhanced {enh['utt1']}: 800 samples (0.050 s) but the reference has 16000 "
                              "(1.000 s); lengths more than 20 ms apart are not scored (--length_tolerance)")
    assert "16321 samples (1.020 s) but the reference has 16000" in errors["utt2"]
    assert "utt0 length mismatch: reference 16000 samples, enhanced 15680; trimmed to 15680" in \
        (out / "warnings").read_text()
    si = {u: float(v) for u, v in read_scp(out / "enhanced" / "si_sdr").items()}
    assert set(si) == {"utt0", "utt3"}
    row = [ln for ln in (out / "RESULTS.md").read_text().splitlines() if ln.startswith("| Enhanced |")][0]
    assert row.split("|")[8].strip() == f"{np.mean([si['utt0'], si['utt3']]):.2f}"
    # a wider tolerance (a system whose frames pad more) accepts utt2, never the truncated utt1
    wide = tmp_path / "wide"
    assert score_main(_args(root, wide, "--figures", "false", "--report", "false",
                            "--length_tolerance", "0.05")) == 1
    assert list(read_scp(wide / "errors")) == ["utt1"] and "utt2" in read_scp(wide / "enhanced" / "si_sdr")
    # the noisy input is held to the same rule
    sf.write(read_scp(root / "data" / "wav.scp")["utt3"], sf.read(ref["utt3"])[0][:8000], FS)
    noisy = tmp_path / "noisy"
    assert score_main(_args(root, noisy, "--figures", "false", "--report", "false")) == 1
    assert "noisy " in read_scp(noisy / "errors")["utt3"] and "8000 samples (0.500 s)" in read_scp(noisy / "errors")["utt3"]


@pytest.mark.parametrize("case", ["empty reference list", "no key in common"])
def test_nothing_to_score_is_a_one_line_error(tmp_path, case):
    root = make_data(tmp_path / "d", n=2, seconds=0.6)
    d, e = root / "data", root / "exp" / "enh"
    if case == "empty reference list":
        (d / "spk1.scp").write_text("")
        want = f"nothing to score: the reference list {d / 'spk1.scp'} is empty"
    else:
        (e / "enhanced.scp").write_text((e / "enhanced.scp").read_text().replace("utt", "other"))
        want = (f"nothing to score: no utterance is in both lists (reference {d / 'spk1.scp'} has 2 keys "
                f"(e.g. utt0), enhanced {e / 'enhanced.scp'} has 2 keys (e.g. other0))")
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "csmvanet.bin.score", *_args(root, out, "--figures", "false")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1].endswith(f"ERROR csmvanet-score: {want}")
    assert "Traceback" not in p.stderr and p.stdout == ""
    assert not (out / "RESULTS.md").exists() and not (out / "enhanced").exists()


def test_bad_arguments(tmp_path):
    root = make_data(tmp_path / "d", n=1, seconds=0.6)
    d = root / "data"
    assert score_main(["--ref_scp", str(d / "spk1.scp"), "--enh_scp", str(d / "nope.scp"),
                       "--out_dir", str(tmp_path / "o"), "--progress", "false"]) == 1
    assert score_main(["--ref_scp", str(d / "spk1.scp"), "--enh_scp", str(d / "wav.scp"),
                       "--vad_ref_scp", str(d / "vad_labels.scp"), "--out_dir", str(tmp_path / "o")]) == 2
    bad_pub = tmp_path / "pub.yaml"
    bad_pub.write_text("name: x\nMOS: 3\n")
    assert score_main(["--ref_scp", str(d / "spk1.scp"), "--enh_scp", str(d / "wav.scp"),
                       "--out_dir", str(tmp_path / "o"), "--published", str(bad_pub),
                       "--progress", "false", "--figures", "false"]) == 1
    for bad in ("-0.1", "nan", "inf"):
        assert score_main(["--ref_scp", str(d / "spk1.scp"), "--enh_scp", str(d / "wav.scp"),
                           "--out_dir", str(tmp_path / "o"), "--length_tolerance", bad]) == 2


@pytest.mark.skipif(shutil.which("perl") is None, reason="run.pl needs perl")
def test_score_sh_through_run_pl(clean_set, tmp_path):
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "utils").symlink_to(REPO / "utils")
    (rec / "steps").symlink_to(REPO / "egs" / "TEMPLATE" / "steps")
    shutil.copytree(clean_set / "data", rec / "data")
    shutil.copytree(clean_set / "exp", rec / "exp")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    # utt0 has no enhanced file: everything else is scored and reported, the exit status is 1
    lines = (rec / "exp" / "enh" / "enhanced.scp").read_text().splitlines()
    (rec / "exp" / "enh" / "enhanced.scp").write_text("\n".join(lines[1:]) + "\n")
    p = subprocess.run(["steps/score.sh", "--nj", "2", "--figures", "false", "data", "exp/enh"],
                       cwd=rec, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    sc = rec / "exp" / "enh" / "scoring"
    md = (sc / "RESULTS.md").read_text()
    assert "| exp |" in md  # title defaults to the experiment folder name
    assert "## Table II layout" in md and "## VAD" in md and "## Config" in md
    assert "`missing`): 1: `utt0`" in md and (sc / "missing").read_text() == "utt0\n"
    assert sorted(p.name for p in (sc / "log").iterdir()) == ["merge.log", "score.1.log", "score.2.log"]
    assert "# Ended (code 0)" in (sc / "log" / "score.1.log").read_text()  # jobs do not fail on it
    full = read_scp(rec / "data" / "spk1.scp")
    assert set(read_scp(sc / "enhanced" / "pesq")) == set(full) - {"utt0"}
