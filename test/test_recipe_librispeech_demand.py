"""egs/librispeech_demand end to end on small LibriSpeech and DEMAND trees in the official layouts.

The recipe runs in place with every output under tmp_path. One module-scoped run of stages 1-5
(tiny model through --train_args, a few clips) serves the checks of the simulated sets and RESULTS.md;
a second stage-2 run with the same seed into another dump dir checks that the simulation is
reproducible to the byte.
"""
from __future__ import annotations

import math
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from recipes import TINY_TRAIN_ARGS, run_recipe as _run_recipe  # noqa: E402
from corpora import DEMAND_ENVS, make_demand, make_librispeech  # noqa: E402

from csmvanet.audio.io import read_audio  # noqa: E402
from csmvanet.data.datadir import read_scp  # noqa: E402
from csmvanet.data.simulate import read_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent   # the running interpreter's scripts
RECIPE = ROOT / "egs" / "librispeech_demand"
TEST_NOISES = {"PCAFETER", "PSTATION", "NRIVER"}
TEST_SNRS = ("-5", "0", "5", "10", "15")
N_PER_COND = 2
TINY = TINY_TRAIN_ARGS


def run_recipe(*args, env=None, timeout=600):
    return _run_recipe(RECIPE, *args, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    base = tmp_path_factory.mktemp("ls_demand")
    utts = make_librispeech(base / "libri")
    make_demand(base / "DEMAND")
    return base / "libri", base / "DEMAND", utts


def sim_args(corp, out):
    libri, demand, _ = corp
    return ["--librispeech_root", libri, "--demand_root", demand, "--nj", 2, "--datadir", out / "data",
            "--num_train", 8, "--num_valid", 4, "--num_test_per_cond", N_PER_COND, "--seed", 7]


@pytest.fixture(scope="module")
def run_1_to_5(corpora, tmp_path_factory):
    out = tmp_path_factory.mktemp("ls_run")
    before = sorted(p.name for p in RECIPE.iterdir())
    res = run_recipe("--stage", 1, "--stop_stage", 5, *sim_args(corpora, out), "--ngpu", 0,
                     "--dumpdir", out / "dump", "--expdir", out / "exp", "--train_args", TINY)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert sorted(p.name for p in RECIPE.iterdir()) == before, "the recipe wrote into egs/librispeech_demand"
    return out


def env_of(path: str) -> str:
    return Path(path).parent.name


def test_test_set_has_3_noises_x_5_snrs_x_n_clips(run_1_to_5):
    d = run_1_to_5 / "dump" / "test"
    u2n, u2s = read_scp(d / "utt2noise"), read_scp(d / "utt2snr")
    assert len(read_scp(d / "wav.scp")) == 3 * 5 * N_PER_COND
    cells = Counter((u2n[u], u2s[u]) for u in u2n)
    assert cells == Counter({(n, s): N_PER_COND for n in TEST_NOISES for s in TEST_SNRS})
    # test speech is test-clean only
    assert all("/test-clean/" in s.speech for s in read_spec(d / "spec.tsv"))


def test_noises_of_train_valid_and_test_are_disjoint(run_1_to_5, corpora):
    dump = run_1_to_5 / "dump"
    used = {}
    for x in ("train", "valid", "test"):
        specs = read_spec(dump / x / "mixtures.tsv")
        labels = set(read_scp(dump / x / "utt2noise").values())
        files = {env_of(s.noise) for s in specs}
        assert labels == {s.noise_type for s in specs} and files == labels  # label = folder of the file used
        used[x] = labels
    assert used["test"] == TEST_NOISES
    assert not used["train"] & TEST_NOISES and not used["valid"] & TEST_NOISES
    assert used["train"] <= set(DEMAND_ENVS) - TEST_NOISES
    # the training noise list holds every other environment
    noise_train = set(read_scp(run_1_to_5 / "data" / "noise_train" / "noise2type").values())
    assert noise_train == set(DEMAND_ENVS) - TEST_NOISES
    # valid speech is dev-clean, train speech train-clean-100
    assert all("/dev-clean/" in s.speech for s in read_spec(dump / "valid" / "spec.tsv"))
    assert all("/train-clean-100/" in s.speech for s in read_spec(dump / "train" / "spec.tsv"))


def test_every_mixture_has_its_specified_snr_and_length(run_1_to_5):
    dump = run_1_to_5 / "dump"
    checked = 0
    for x in ("train", "valid", "test"):
        wav, spk1 = read_scp(dump / x / "wav.scp"), read_scp(dump / x / "spk1.scp")
        u2s = read_scp(dump / x / "utt2snr")
        spec = {s.utt_id: s for s in read_spec(dump / x / "spec.tsv")}
        assert set(spec) == set(wav)
        for u in wav:
            noisy, sr1 = read_audio(wav[u])
            clean, sr2 = read_audio(spk1[u])
            assert sr1 == sr2 == 16000 and noisy.shape == clean.shape == (spec[u].length,)
            if x == "train":
                assert spec[u].length == 32000 and -10 <= spec[u].snr_db <= 15
            n = noisy.astype(np.float64) - clean.astype(np.float64)
            snr = 10 * math.log10(np.sum(clean.astype(np.float64) ** 2) / np.sum(n ** 2))
            assert abs(snr - spec[u].snr_db) < 0.05, (x, u, snr, spec[u].snr_db)
            assert float(u2s[u]) == spec[u].snr_db
            checked += 1
    assert checked == 8 + 4 + 30


def test_results_md_has_the_table2_layout(run_1_to_5):
    md = (run_1_to_5 / "exp" / "csmvanet_train" / "RESULTS.md").read_text()
    section = md.split("## Table II layout")[1].split("\n## ")[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ")]
    head = [c.strip() for c in rows[0].strip("|").split("|")]
    assert head[:2] == ["SNR (dB)", "System"]
    assert set(head[2:]) == {f"{n} {m}" for n in TEST_NOISES | {"Average"} for m in ("PESQ", "STOI")}
    body = [[c.strip() for c in r.strip("|").split("|")] for r in rows[1:]]
    assert [(r[0], r[1]) for r in body] == [(s, sys_) for s in TEST_SNRS + ("Average",)
                                            for sys_ in ("Noisy", "csmvanet_train")]
    assert all(c not in ("", "-") for r in body for c in r[2:])
    # overall Table I columns and the published rows
    table1 = md.split("## Table I layout")[1].split("\n## ")[0]
    assert "| Noisy |" in table1 and "| csmvanet_train |" in table1 and "*CSM-VANet (published)*" in table1
    assert "Published: the paper's Table II" in md


def test_same_seed_gives_the_same_mixture_list_and_audio_bytes(run_1_to_5, corpora):
    out = run_1_to_5
    other = out / "dump_again"
    res = run_recipe("--stage", 2, "--stop_stage", 2, *sim_args(corpora, out), "--dumpdir", other)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    first = out / "dump"
    for x in ("train", "valid", "test"):
        assert (first / x / "spec.tsv").read_bytes() == (other / x / "spec.tsv").read_bytes()
        assert (first / x / "mixtures.tsv").read_bytes() == (other / x / "mixtures.tsv").read_bytes()
        files = sorted(p.relative_to(first / x) for p in (first / x / "wav").rglob("*.wav"))
        assert files == sorted(p.relative_to(other / x) for p in (other / x / "wav").rglob("*.wav"))
        assert len(files) == 2 * len(read_scp(first / x / "wav.scp"))
        for f in files:
            assert (first / x / f).read_bytes() == (other / x / f).read_bytes(), f
    # ... and the seed matters: another seed gives another list
    spec = out / "other_seed.tsv"
    d = out / "data"
    res = subprocess.run([str(BIN / "csmvanet-simulate"), "--quiet", "--make_spec", "--spec", str(spec),
                          "--speech_scp", str(d / "speech_train/wav.scp"), "--noise_scp", str(d / "noise_train/wav.scp"),
                          "--noise2type", str(d / "noise_train/noise2type"), "--num", "8", "--length", "2",
                          "--seed", "8"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    a = [(s.speech_offset, s.noise_id, s.noise_offset, s.snr_db) for s in read_spec(spec)]
    b = [(s.speech_offset, s.noise_id, s.noise_offset, s.snr_db) for s in read_spec(first / "train" / "spec.tsv")]
    assert a != b


def test_stage0_with_corpora_present_does_nothing_and_offline_fails_fast(corpora, tmp_path):
    libri, demand, _ = corpora
    offline = {"LIBRISPEECH_BASE_URL": "http://127.0.0.1:9", "DEMAND_BASE_URL": "http://127.0.0.1:9"}
    snapshot = sorted((str(p), p.stat().st_mtime_ns) for r in (libri, demand) for p in r.rglob("*"))
    res = run_recipe("--stage", 0, "--stop_stage", 0, "--librispeech_root", libri, "--demand_root", demand,
                     env=offline, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "nothing to download" in res.stdout
    assert sorted((str(p), p.stat().st_mtime_ns) for r in (libri, demand) for p in r.rglob("*")) == snapshot

    start = time.monotonic()
    res = run_recipe("--stage", 0, "--stop_stage", 0, "--librispeech_root", tmp_path / "ls",
                     "--demand_root", tmp_path / "demand", "--train_sets", "train-clean-100 train-clean-360",
                     env=offline, timeout=60)
    elapsed = time.monotonic() - start
    assert res.returncode != 0 and elapsed < 20, (res.returncode, elapsed)
    msg = res.stderr
    for s in ("train-clean-100", "train-clean-360", "dev-clean", "test-clean"):
        assert f"http://127.0.0.1:9/{s}.tar.gz" in msg, msg
    for e in DEMAND_ENVS:
        zip_name = "SCAFE_48k" if e == "SCAFE" else f"{e}_16k"
        assert f"http://127.0.0.1:9/{zip_name}.zip" in msg, msg
    assert "LIBRISPEECH" in msg and "DEMAND" in msg and "db.sh" in msg


def test_stage1_resamples_a_48k_demand_copy_and_says_so(corpora, tmp_path):
    """A DEMAND copy of one's own with SCAFE at 48 kHz (as upstream ships it): stage 1 resamples the
    channel it uses (soxr, as stage 0 does) into the data dir, leaves the corpus alone, and says so."""
    from corpora import make_demand
    from csmvanet.audio.io import resample

    libri, demand16, _ = corpora
    demand = tmp_path / "DEMAND"
    for env in DEMAND_ENVS:
        if env != "SCAFE":
            (demand / env).mkdir(parents=True)
            (demand / env / "ch01.wav").symlink_to(demand16 / env / "ch01.wav")
    make_demand(demand, envs=("SCAFE",), channels=1, sr=48000)
    corpus_before = (demand / "SCAFE" / "ch01.wav").read_bytes()
    out = tmp_path / "data"
    res = run_recipe("--stage", 1, "--stop_stage", 1, "--librispeech_root", libri, "--demand_root", demand,
                     "--datadir", out)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"{demand / 'SCAFE' / 'ch01.wav'} is at 48000 Hz: resampled to 16000 Hz" in res.stdout
    wav = read_scp(out / "noise_train" / "wav.scp")
    got, sr = read_audio(wav["SCAFE_ch01"])
    assert sr == 16000 and Path(wav["SCAFE_ch01"]).is_relative_to(out)
    x48, _ = read_audio(demand / "SCAFE" / "ch01.wav")
    want = resample(x48, 48000, 16000)
    assert got.shape == want.shape and np.max(np.abs(got - want)) <= 1.0 / 32768 + 1e-6
    assert int(read_scp(out / "noise_train" / "utt2num_samples")["SCAFE_ch01"]) == got.shape[0]
    assert (demand / "SCAFE" / "ch01.wav").read_bytes() == corpus_before
