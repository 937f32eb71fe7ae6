"""egs/voicebank end to end on a small corpus in the official VoiceBank+DEMAND layout (test/corpora.py).

The recipe runs in place (egs/voicebank) with every output (--datadir, --dumpdir, --expdir) under
tmp_path, and with a tiny model through --train_args. One module-scoped run of stages 1-5 serves the
checks of the data dirs, the speaker split, the 16 kHz dump and RESULTS.md.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from recipes import TINY_TRAIN_ARGS, run_recipe as _run_recipe  # noqa: E402
from corpora import VB_TEST_SPEAKERS, VB_VALID_SPEAKERS, make_voicebank  # noqa: E402

from csmvanet.audio.io import read_audio, resample  # noqa: E402
from csmvanet.data.datadir import read_scp  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent   # the running interpreter's scripts
RECIPE = ROOT / "egs" / "voicebank"
TINY = TINY_TRAIN_ARGS


def run_recipe(*args, env=None, timeout=600):
    return _run_recipe(RECIPE, *args, env=env, timeout=timeout)


def recipe_listing():
    return sorted(p.name for p in RECIPE.iterdir())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("voicebank") / "VoiceBank-DEMAND"
    utts = make_voicebank(root, train_speakers=("p226", "p227", "p228", "p287"), utts_per_speaker=3)
    return root, utts


@pytest.fixture(scope="module")
def run_1_to_5(corpus, tmp_path_factory):
    root, utts = corpus
    out = tmp_path_factory.mktemp("vb_run")
    before = recipe_listing()
    res = run_recipe("--stage", 1, "--stop_stage", 5, "--nj", 2, "--ngpu", 0, "--voicebank_root", root,
                     "--datadir", out / "data", "--dumpdir", out / "dump", "--expdir", out / "exp",
                     "--train_args", TINY)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert recipe_listing() == before, "the recipe wrote into egs/voicebank"
    return root, utts, out


def validate(d: Path, *extra):
    res = subprocess.run(["utils/validate_data_dir.sh", *extra, str(d)], cwd=RECIPE, capture_output=True,
                         text=True, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
    assert res.returncode == 0, res.stderr


def speakers(d: Path) -> set[str]:
    return set(read_scp(d / "utt2spk").values())


def test_stage0_with_the_corpus_present_does_nothing(corpus):
    root, _ = corpus
    snapshot = sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))
    # An unreachable server: any attempt to download would fail.
    res = run_recipe("--stage", 0, "--stop_stage", 0, "--voicebank_root", root,
                     env={"VOICEBANK_BASE_URL": "http://127.0.0.1:9"}, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "nothing to download" in res.stdout
    assert sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*")) == snapshot


def test_stage0_without_corpus_or_network_fails_fast_naming_urls_and_variable(tmp_path):
    start = time.monotonic()
    res = run_recipe("--stage", 0, "--stop_stage", 0, "--voicebank_root", tmp_path / "VB",
                     env={"VOICEBANK_BASE_URL": "http://127.0.0.1:9"}, timeout=60)
    elapsed = time.monotonic() - start
    assert res.returncode != 0
    assert elapsed < 20, f"took {elapsed:.1f} s"
    msg = res.stderr
    for name in ("clean_trainset_28spk_wav", "noisy_trainset_28spk_wav", "clean_testset_wav", "noisy_testset_wav",
                 "logfiles"):
        assert f"http://127.0.0.1:9/{name}.zip?sequence=" in msg, msg
    assert "VOICEBANK" in msg and "db.sh" in msg and "--voicebank_root" in msg


def test_download_urls_are_the_official_ones():
    text = (RECIPE / "local" / "download.sh").read_text()
    assert "https://datashare.ed.ac.uk/bitstream/handle/10283/2791" in text
    for name, seq in (("clean_testset_wav", 1), ("clean_trainset_28spk_wav", 2), ("noisy_testset_wav", 5),
                      ("noisy_trainset_28spk_wav", 6), ("testset_txt", 8), ("trainset_28spk_txt", 9)):
        assert f"{name} {seq} " in text


def test_data_dirs_are_valid_and_split_by_speaker(run_1_to_5):
    root, utts, out = run_1_to_5
    for x in ("train", "valid", "test"):
        validate(out / "data" / x, "--fs", "48000", "--require", "wav.scp spk1.scp utt2spk spk2utt")
        validate(out / "dump" / x, "--fs", "16000", "--require",
                 "wav.scp spk1.scp utt2spk spk2utt utt2num_samples vad_labels.scp frame_shift")
    train, valid, test = (speakers(out / "dump" / x) for x in ("train", "valid", "test"))
    assert valid == set(VB_VALID_SPEAKERS)
    assert test == set(VB_TEST_SPEAKERS)
    assert train == {"p227", "p228"}
    assert not train & (set(VB_VALID_SPEAKERS) | set(VB_TEST_SPEAKERS))
    # every corpus utterance lands in exactly one set
    got = {x: set(read_scp(out / "dump" / x / "wav.scp")) for x in ("train", "valid", "test")}
    assert got["train"] | got["valid"] == set(utts["train"]) and not got["train"] & got["valid"]
    assert got["test"] == set(utts["test"])
    # noisy/clean pairing and the log files
    wav = read_scp(out / "data" / "test" / "wav.scp")
    spk1 = read_scp(out / "data" / "test" / "spk1.scp")
    for u in utts["test"]:
        assert Path(wav[u]).parent.name == "noisy_testset_wav" and Path(spk1[u]).parent.name == "clean_testset_wav"
        assert Path(wav[u]).name == Path(spk1[u]).name == f"{u}.wav"
    log = {ln.split()[0]: ln.split()[1:] for ln in (root / "logfiles" / "log_testset.txt").read_text().splitlines()}
    u2n, u2s = read_scp(out / "dump" / "test" / "utt2noise"), read_scp(out / "dump" / "test" / "utt2snr")
    assert {u: [u2n[u], u2s[u]] for u in u2n} == log


def test_dump_audio_is_the_soxr_resampled_corpus_at_16k(run_1_to_5):
    _, _, out = run_1_to_5
    for x in ("train", "valid", "test"):
        src = read_scp(out / "data" / x / "spk1.scp")
        dst = read_scp(out / "dump" / x / "spk1.scp")
        nsamp = read_scp(out / "dump" / x / "utt2num_samples")
        assert set(src) == set(dst)
        for u in src:
            info = sf.info(dst[u])
            assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
            assert Path(dst[u]).is_relative_to(out / "dump")
            x48, sr = read_audio(src[u])
            assert sr == 48000
            want = resample(x48, 48000, 16000)
            got, _ = read_audio(dst[u])
            assert got.shape == want.shape and int(nsamp[u]) == got.shape[0]
            assert np.max(np.abs(got - want)) <= 1.0 / 32768 + 1e-6


def test_results_md_has_noisy_ours_and_published_rows(run_1_to_5):
    _, _, out = run_1_to_5
    exp = out / "exp" / "csmvanet_train"
    cfg = yaml.safe_load((exp / "config.yaml").read_text())
    paper = yaml.safe_load((RECIPE / "conf" / "train.yaml").read_text())
    # the paper's config is the default; --train_args changed only what it names
    assert cfg["model"]["msgc"] is True and cfg["model"]["vad_decoder"] is True
    assert cfg["model"]["channels"] == [8, 16] and cfg["train"]["epochs"] == 1
    assert cfg["loss"] == paper["loss"] and cfg["stft"] == paper["stft"]
    md = (exp / "RESULTS.md").read_text()
    table = md.split("## Table I layout")[1].split("\n## ")[0]
    rows = [ln for ln in table.splitlines() if ln.startswith("| ")]
    names = [r.split("|")[1].strip() for r in rows]
    assert names[0] == "System" and names[1] == "Noisy" and names[2] == "csmvanet_train"
    assert "*CSM-VANet (8.81M) (published)*" in names
    pub = next(r for r in rows if "CSM-VANet (8.81M) (published)" in r)
    assert [c.strip() for c in pub.split("|")[2:7]] == ["3.31", "0.960", "4.62", "3.82", "4.06"]
    ours = rows[2].split("|")
    assert all(c.strip() not in ("", "-") for c in ours[2:7])  # PESQ..COVL measured
    # 6 test utterances scored
    assert (exp / "enhanced_test" / "enhanced.scp").read_text().count("\n") == 6


def test_a_table1_ablation_runs_through_train_config(run_1_to_5):
    root, _, out = run_1_to_5
    res = run_recipe("--stage", 3, "--stop_stage", 3, "--ngpu", 0, "--voicebank_root", root,
                     "--train_config", "conf/tuning/train_wo_vad_decoder.yaml", "--dumpdir", out / "dump",
                     "--expdir", out / "exp", "--train_args", TINY)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    exp = out / "exp" / "csmvanet_train_wo_vad_decoder"
    cfg = yaml.safe_load((exp / "config.yaml").read_text())
    assert cfg["model"]["vad_decoder"] is False and cfg["model"]["msgc"] is True
    assert (exp / "valid.loss.ave.pth").is_file()


def test_resample_cli_lists_failures_and_writes_the_rest(tmp_path):
    good = tmp_path / "a.wav"
    sf.write(good, np.random.default_rng(0).uniform(-0.5, 0.5, 4800), 48000, subtype="PCM_16")
    (tmp_path / "in.scp").write_text(f"a {good}\nb {tmp_path / 'missing.wav'}\n")
    res = subprocess.run([str(BIN / "csmvanet-resample"), "--quiet", "--nj", "2", "--fs", "16000",
                          "--scp", str(tmp_path / "in.scp"), "--out_dir", str(tmp_path / "out"), "--out_scp",
                          str(tmp_path / "out.scp"), "--utt2num_samples", str(tmp_path / "n")],
                         capture_output=True, text=True)
    assert res.returncode == 1
    assert f"{tmp_path / 'in.scp'}: key 'b'" in res.stderr and "missing.wav" in res.stderr
    assert read_scp(tmp_path / "out.scp") == {"a": str(tmp_path / "out" / "a.wav")}
    assert read_scp(tmp_path / "n") == {"a": "1600"}
    assert sf.info(tmp_path / "out" / "a.wav").samplerate == 16000
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.wav"]  # no temporary left
