"""egs/voiceprompts stages 0-2 on a small fake tree in the packages' layout (no network, no apt).

The test writes unpacked packages (with their .done stamps) as stage 0 would leave them after
dpkg-deb -x: synthetic prompts as G.722 (encoded by ffmpeg; without ffmpeg the asterisk packages
are left out and the G.722 checks skipped) and as ogg, colobot-like noise as ogg and 8-bit wav. Every
run has apt-get and dpkg-deb removed from PATH, so stage 0 must decode without them and must fail at
once, naming them, when something is left to download.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from csmvanet.audio.synthetic import noise, random_speaker, speech_like
from csmvanet.data.datadir import read_scp

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "egs" / "voiceprompts"
HAVE_FFMPEG = shutil.which("ffmpeg") is not None
ASTERISK = {"asterisk-core-sounds-fr-g722": "fr_CA_f_June", "asterisk-core-sounds-it-g722": "it_IT_m_Carlo",
            "asterisk-core-sounds-ru-g722": "ru_RU_f_IvrvoiceRU"}
KLETTRES = ("fr", "en_GB", "es", "de")   # train, train, valid, test
TEST_LANGS = "it de" if HAVE_FFMPEG else "de"
PACKAGES = ([*ASTERISK] if HAVE_FFMPEG else []) + ["klettres-data", "colobot-common-sounds"]
HIDDEN_TOOLS = ("apt-get", "apt", "dpkg-deb", "dpkg")


def path_without(tmp: Path, hidden=HIDDEN_TOOLS) -> str:
    """A PATH like the system's with `hidden` tools removed (links to everything else)."""
    fake = tmp / "bin"
    fake.mkdir(exist_ok=True)
    for d in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(d) or ".venv" in d or "tools/venv" in d:
            continue
        for name in os.listdir(d):
            link = fake / name
            if name not in hidden and not link.exists() and not link.is_symlink():
                link.symlink_to(os.path.join(d, name))
    return str(fake)


def run(*args, path: str, timeout=300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=path)
    return subprocess.run(["./run.sh", *map(str, args)], cwd=RECIPE, env=env, capture_output=True, text=True,
                          timeout=timeout)


def write_prompt(path: Path, wave: np.ndarray, sr: int, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "g722":
        wav = path.with_suffix(".src.wav")
        sf.write(wav, wave, sr)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-ar", "16000", "-c:a", "g722",
                        "-f", "g722", str(path)], check=True)
        wav.rename(path.with_suffix(".ref.wav"))  # the reference, beside (the recipe reads *.g722 only)
    else:
        sf.write(path, wave, sr, format="OGG" if fmt == "ogg" else "WAV",
                 subtype="VORBIS" if fmt == "ogg" else "PCM_U8")


def unpacked(root: Path, pkg: str) -> Path:
    d = root / pkg
    (d).mkdir(parents=True, exist_ok=True)
    (d / ".done").write_text("fake\n")
    return d


def make_fake_tree(downloads: Path) -> None:
    rng = np.random.default_rng(7)
    if HAVE_FFMPEG:
        for k, (pkg, voice) in enumerate(ASTERISK.items()):
            base = unpacked(downloads, pkg) / "usr/share/asterisk/sounds" / voice
            spk = random_speaker(rng, sex="f" if k != 1 else "m")
            for i in range(6):
                w, _ = speech_like(rng, float(rng.uniform(0.8, 1.4)), 16000, speaker=spk, floor_db=None,
                                   lead_range=(0.0, 0.05))
                write_prompt(base / ("digits" if i < 2 else ".") / f"p{i}.g722", 0.3 * w / np.abs(w).max(), 16000,
                             "g722")
            write_prompt(base / "silence" / "1.g722", np.zeros(16000), 16000, "g722")
    base = unpacked(downloads, "klettres-data") / "usr/share/klettres"
    for lang in KLETTRES:
        spk = random_speaker(rng)
        for i in range(8):
            w = np.zeros(1)
            while np.abs(w).max() < 1e-3:
                w, _ = speech_like(rng, float(rng.uniform(0.7, 1.1)), 44100, speaker=spk, floor_db=None)
            w = 0.3 * w / np.abs(w).max()
            write_prompt(base / lang / ("alpha" if i % 2 else "syllab") / f"a-{i}.ogg",
                         np.stack([w, w], 1) if lang == "en_GB" else w, 44100, "ogg")
    base = unpacked(downloads, "colobot-common-sounds") / "usr/share/games/colobot"
    kinds = ("pink", "brown", "white", "pink")
    for i, kind in enumerate(kinds):
        x = noise(kind, rng, 3.0, 44100)
        write_prompt(base / "music" / f"track{i}.ogg", np.stack([x, x], 1), 44100, "ogg")
    for i in range(5):
        write_prompt(base / "sounds" / f"sound{i:03d}.wav", 0.5 * noise("white", rng, 0.7, 22050), 22050, "wav")


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("voiceprompts")
    make_fake_tree(out / "downloads")
    path = path_without(out)
    before = sorted(p.name for p in RECIPE.iterdir())
    t0 = time.time()
    p = run("--stage", "0", "--stop_stage", "2", "--packages", " ".join(PACKAGES), "--downloads", out / "downloads",
            "--corpus", out / "corpus", "--datadir", out / "data", "--dumpdir", out / "dump",
            "--valid_langs", "es", "--test_langs", TEST_LANGS, "--num_train", "30", "--nj", "2",
            "--data_prep_args", "--babble_count 1 --babble_seconds 4 --colored_seconds 4 --min_seconds 2 "
            "--max_seconds 3", path=path)
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    assert sorted(p.name for p in RECIPE.iterdir()) == before, "the recipe wrote into egs/voiceprompts"
    return out, p.stdout + p.stderr, time.time() - t0


def test_stage0_without_apt_fails_within_seconds_naming_the_tools(tmp_path):
    t0 = time.time()
    p = run("--stage", "0", "--stop_stage", "0", "--downloads", tmp_path / "dl", "--corpus", tmp_path / "corpus",
            path=path_without(tmp_path))
    assert p.returncode != 0
    assert time.time() - t0 < 15
    assert re.search(r"needs apt-get and dpkg-deb .*not found: apt-get dpkg-deb", p.stderr), p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "dl").exists() and not (tmp_path / "corpus").exists()


def test_stage0_without_ffmpeg_says_what_to_install(tmp_path):
    unpacked(tmp_path / "dl", "asterisk-core-sounds-fr-g722")
    p = run("--stage", "0", "--stop_stage", "0", "--packages", "asterisk-core-sounds-fr-g722", "--downloads",
            tmp_path / "dl", "--corpus", tmp_path / "corpus", path=path_without(tmp_path, HIDDEN_TOOLS + ("ffmpeg",)))
    assert p.returncode != 0
    assert "ffmpeg is needed" in p.stderr and "apt-get install ffmpeg" in p.stderr, p.stderr


def test_stage0_rejects_a_package_outside_the_recipe(tmp_path):
    p = run("--stage", "0", "--stop_stage", "0", "--packages", "asterisk-core-sounds-en-g722", "--downloads",
            tmp_path / "dl", "--corpus", tmp_path / "corpus", path=path_without(tmp_path))
    assert p.returncode != 0 and "not one of the recipe's packages" in p.stderr, p.stderr


def test_stage0_decodes_to_16k_mono_and_skips_what_is_done(fake_run):
    out, log, _ = fake_run
    corpus = out / "corpus"
    for f in list((corpus / "speech").rglob("*.wav"))[:10] + list((corpus / "noise").rglob("*.wav")):
        info = sf.info(f)
        assert (info.samplerate, info.channels) == (16000, 1), f
    assert not list((corpus / "speech").rglob("silence*")), "asterisk's silence/ prompts are not speech"
    # klettres: one speaker per language folder; 44.1 kHz 2-channel input became 16 kHz mono
    assert len(list((corpus / "speech" / "klt-en_GB").glob("*.wav"))) == 8
    assert sorted(p.name for p in (corpus / "speech").iterdir()) == sorted(
        [f"ast-{v}" for v in ASTERISK.values()] * HAVE_FFMPEG + [f"klt-{lang}" for lang in KLETTRES])
    p = run("--stage", "0", "--stop_stage", "0", "--packages", " ".join(PACKAGES), "--downloads", out / "downloads",
            "--corpus", corpus, path=path_without(out))
    assert p.returncode == 0 and "nothing to do" in p.stdout, p.stdout + p.stderr


@pytest.mark.skipif(not HAVE_FFMPEG, reason="ffmpeg is not installed: the G.722 decoding is not tested")
def test_g722_prompts_decode_to_the_recorded_signal(fake_run):
    out, _, _ = fake_run
    checked = 0
    for src in (out / "downloads" / "asterisk-core-sounds-it-g722").rglob("*.ref.wav"):
        if src.parent.name == "silence":
            continue
        checked += 1
        ref, _ = sf.read(src)
        rel = src.relative_to(out / "downloads/asterisk-core-sounds-it-g722/usr/share/asterisk/sounds/it_IT_m_Carlo")
        name = "-".join(rel.parts).split(".")[0]
        got, sr = sf.read(out / "corpus/speech/ast-it_IT_m_Carlo" / f"{name}.wav")
        assert sr == 16000 and abs(len(got) - len(ref)) < 160, (src, len(got), len(ref))
        n = min(len(got), len(ref))
        lag = int(np.argmax(np.correlate(got[:n], ref[:n], "full"))) - (n - 1)
        a, b = (got[lag:n], ref[:n - lag]) if lag >= 0 else (got[:n + lag], ref[-lag:n])
        assert np.corrcoef(a, b)[0, 1] > 0.9, src
    assert checked == 6


def test_splits_are_disjoint_in_speakers_languages_and_noise_recordings(fake_run):
    out, _, _ = fake_run
    data = out / "data"
    spk, lang, srcs, noise_srcs = {}, {}, {}, {}
    for part in ("train", "valid", "test"):
        for d in (data / f"speech_{part}", data / f"noise_{part}", out / "dump" / part):
            v = subprocess.run([str(ROOT / "utils/validate_data_dir.sh"), "--fs", "16000", str(d)],
                               capture_output=True, text=True)
            assert v.returncode == 0, v.stderr
        spk[part] = set(read_scp(data / f"speech_{part}/utt2spk").values())
        lang[part] = set(read_scp(data / f"speech_{part}/utt2lang").values())
        rec2src = read_scp(data / f"noise_{part}/utt2sources")
        utt2noise = read_scp(data / f"noise_{part}/utt2noise")
        noise_srcs[part] = {s for r, v in rec2src.items() if utt2noise[r] in ("music", "effects") for s in v.split()}
        srcs[part] = {r: v.split() for r, v in rec2src.items() if utt2noise[r] == "babble"}
        assert set(utt2noise.values()) == {"music", "effects", "babble", "colored"}, part
    assert lang["valid"] == {"es"} and lang["test"] == set(TEST_LANGS.split())
    assert "klt-de" in spk["test"] and ("ast-it_IT_m_Carlo" in spk["test"]) == HAVE_FFMPEG
    for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
        assert not spk[a] & spk[b] and not lang[a] & lang[b] and not noise_srcs[a] & noise_srcs[b], (a, b)
    # babble: training and validation babble from training speakers, test babble from test speakers
    for part, allowed in (("train", spk["train"]), ("valid", spk["train"]), ("test", spk["test"])):
        talkers = {t for v in srcs[part].values() for t in v}
        assert talkers and talkers <= allowed, (part, talkers)
    # every colobot recording is in exactly one split
    assert len(set.union(*noise_srcs.values())) == sum(map(len, noise_srcs.values())) == 4 + 5


def test_utterances_join_several_prompts_with_real_pauses(fake_run):
    """The VAD labels of the whole valid/test utterances show silence between prompts."""
    import kaldiio

    out, _, _ = fake_run
    hop = 100  # conf/train.yaml
    checked = 0
    levels = []
    for part in ("valid", "test"):
        prompts = read_scp(out / f"data/speech_{part}/utt2prompts")
        mix = {}
        for line in (out / f"dump/{part}/mixtures.tsv").read_text().splitlines():
            cells = line.split("\t")
            if cells[0] != "utt_id" and not line.startswith("#"):
                mix[cells[0]] = cells[2]
        for utt, value in read_scp(out / f"dump/{part}/vad_labels.scp").items():
            labels = np.asarray(kaldiio.load_mat(value)).reshape(-1)
            n_prompts = len(prompts[mix[utt]].split())
            assert n_prompts >= 2
            edges = np.flatnonzero(np.diff(np.concatenate([[0], labels, [0]])))
            runs = list(zip(edges[::2], edges[1::2]))
            gaps = [(b2 - a1) * hop / 16000 for (_, a1), (b2, _) in zip(runs, runs[1:])]
            assert labels[0] == 0 and labels[-1] == 0, utt  # lead and tail silence
            assert len(runs) >= n_prompts and sum(g >= 0.25 for g in gaps) >= n_prompts - 1, (utt, gaps)
            checked += 1
        for f in read_scp(out / f"data/speech_{part}/wav.scp").values():
            x, _ = sf.read(f)
            levels.append(10 * np.log10(np.mean(x[np.abs(x) > 1e-3] ** 2)))
    assert checked >= 4
    assert max(levels) - min(levels) > 3.0 and max(levels) < -10 and min(levels) > -45, levels


def test_stage2_mixes_every_test_snr_and_noise_type_equally(fake_run):
    out, log, seconds = fake_run
    snr = read_scp(out / "dump/test/utt2snr")
    kind = read_scp(out / "dump/test/utt2noise")
    counts = Counter((kind[u], float(snr[u])) for u in snr)
    assert set(v for _, v in counts) == {-5.0, 0.0, 5.0, 10.0, 15.0}
    assert len(counts) == 20 and len(set(counts.values())) == 1, counts
    train = read_scp(out / "dump/train/utt2num_samples")
    assert len(train) == 30 and set(train.values()) == {"32000"}
    assert seconds < 120, f"stages 0-2 on the fake tree took {seconds:.0f} s"


def test_stage1_audio_and_stage2_dump_dirs_do_not_collide(fake_run):
    """Stage 1 lists in data/, its audio in dump/audio/{speech,noise}_<set>; stage 2's data dirs in
    dump/<set>, their audio and VAD arks in dump/audio/<set>; no temporary dir left."""
    out, _, _ = fake_run
    sets = ["test", "train", "valid"]
    splits = sorted(f"{k}_{s}" for k in ("noise", "speech") for s in sets)
    assert sorted(p.name for p in (out / "data").iterdir()) == sorted(splits + ["splits.md"])
    assert sorted(p.name for p in (out / "dump").iterdir()) == ["audio", *sets]
    assert sorted(p.name for p in (out / "dump" / "audio").iterdir()) == sorted(splits + sets)
    audio = (out / "dump" / "audio").resolve()
    for split in splits:
        for f in read_scp(out / "data" / split / "wav.scp").values():
            assert Path(f).parent == audio / split, f
    for x in sets:
        for scp in ("wav.scp", "spk1.scp", "vad_labels.scp"):
            for v in read_scp(out / "dump" / x / scp).values():
                assert Path(v.split(":")[0]).resolve().is_relative_to(audio / x), (scp, v)


def test_stage2_without_stage1_names_the_missing_list_and_writes_nothing(tmp_path):
    p = run("--stage", "2", "--stop_stage", "2", "--datadir", tmp_path / "data", "--dumpdir", tmp_path / "dump",
            path=path_without(tmp_path))
    assert p.returncode != 0
    assert f"no such file: {tmp_path}/data/speech_train/wav.scp (run stage 1)" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "dump").exists()


# ---- stages 3-5 (CI's reduced recipe): a tiny model on the fake tree's 30 clips

@pytest.fixture(scope="module")
def fake_full_run(fake_run):
    """Stages 3-5 after fake_run's 0-2: train a tiny model, choose vad_floor/threshold on valid,
    decode valid and test, compare floors 1, 0 and the chosen one on test, score, pack."""
    from recipes import TINY_TRAIN_ARGS

    out, _, _ = fake_run
    p = run("--stage", "3", "--stop_stage", "5", "--datadir", out / "data", "--dumpdir", out / "dump",
            "--expdir", out / "exp", "--nj", "2", "--train_args", TINY_TRAIN_ARGS,
            # grids without the defaults (config floor 0, threshold 0.5): whatever is chosen must be applied
            "--tune_args", "--floors 0.25,0.75 --mixes 0,0.2 --thresholds 0.3,0.45,0.7 --segment_seconds 1.5 "
            "--overlap_seconds 0.25",
            path=path_without(out), timeout=600)
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    return out, out / "exp" / "csmvanet_train", p.stdout + p.stderr


def test_stages_3_to_5_choose_the_floor_on_valid_and_report_every_floor(fake_full_run):
    import yaml

    out, exp, log = fake_full_run
    chosen = yaml.safe_load((exp / "inference.yaml").read_text())
    assert chosen["checkpoint"] == "valid.loss.ave.pth" and chosen["chosen_on"].endswith("dump/valid")
    grid = {(g["vad_floor"], g["input_mix"]): g for g in chosen["grid"]}
    assert sorted(grid) == [(0.25, 0.0), (0.25, 0.2), (0.75, 0.0), (0.75, 0.2)]
    best = max(grid, key=lambda c: (grid[c]["pesq"], c[0], -c[1]))
    assert (chosen["vad_floor"], chosen["input_mix"]) == best        # the best valid PESQ
    assert chosen["vad_threshold"] in (0.3, 0.45, 0.7)
    assert sorted(chosen["thresholds"]) == [0.3, 0.45, 0.7]
    assert f"vad_floor: {chosen['vad_floor']}" in log
    assert (chosen["segment_seconds"], chosen["overlap_seconds"]) == (1.5, 0.25)
    results = (exp / "RESULTS.md").read_text()
    summary = results.split("## Summary", 1)[1].split("\n\n")[1]
    sets = [line.split("|")[1].strip() for line in summary.splitlines()[2:]]
    assert sets == ["test", "test", "valid", "valid"]
    assert "| every frame speech |" in results
    assert f"(speech when probability >= {chosen['vad_threshold']:g})" in results
    # the floor comparison on test: noisy, floors 0, 1 and the chosen one, overall and by SNR
    floors = results.split("## vad_floor on test", 1)[1]
    f, m = chosen["vad_floor"], chosen["input_mix"]
    rows = ["| 0 / 0 |", "| 1 / 0 |", f"| {f:g} / 0 |", f"| {f:g} / {m:g} |"] if m else ["| 0 |", "| 1 |", f"| {f:g} |"]
    for row in ["| noisy input |", *rows]:
        assert row in floors, (row, floors)
    by_snr = floors.split("PESQ / STOI by SNR", 1)[1].split("\n\n", 1)[1]
    assert [line.split("|")[1].strip() for line in by_snr.strip().splitlines()[2:7]] == ["-5", "0", "5", "10", "15"]


def test_decoding_uses_the_chosen_settings(fake_full_run):
    """enhanced_test holds the output at the floor, mix and chunking chosen on valid (0.25 or 0.75, not
    the config's 0; 1.5 s segments, not 8 s): the same, to 16-bit rounding, as enhancing with them here,
    and unlike floor 0, the other mix or 8 s segments."""
    import yaml

    from csmvanet.infer.enhancer import Enhancer

    out, exp, _ = fake_full_run
    chosen = yaml.safe_load((exp / "inference.yaml").read_text())
    f, m = chosen["vad_floor"], chosen["input_mix"]
    enh = read_scp(exp / "enhanced_test" / "enhanced.scp")
    noisy = read_scp(out / "dump" / "test" / "wav.scp")
    assert set(enh) == set(noisy)
    model = Enhancer.from_pretrained(exp, checkpoint="valid.loss.ave.pth")
    assert (model.vad_floor, model.input_mix, model.segment_seconds, model.overlap_seconds) == (f, m, 1.5, 0.25)
    other = {"floor 0": Enhancer.from_pretrained(exp, checkpoint="valid.loss.ave.pth", vad_floor=0.0),
             "another mix": Enhancer.from_pretrained(exp, checkpoint="valid.loss.ave.pth", input_mix=0.2 - m),
             "8 s segments": Enhancer.from_pretrained(exp, checkpoint="valid.loss.ave.pth", segment_seconds=8.0,
                                                      overlap_seconds=1.0)}
    long_utts = [u for u in sorted(enh) if sf.info(noisy[u]).duration > 2.0][:3]
    assert long_utts
    for utt in long_utts:
        y = sf.read(enh[utt])[0]
        x, sr = sf.read(noisy[utt], dtype="float32")
        np.testing.assert_allclose(y, model.enhance(x, sr)[0], atol=1.5 / 32768)
        for what, e in other.items():
            assert np.abs(y - e.enhance(x, sr)[0]).max() > 1e-4, (utt, what)


def test_the_packed_model_carries_its_settings_and_scores(fake_full_run):
    import yaml

    from csmvanet.infer.enhancer import Enhancer

    out, exp, _ = fake_full_run
    chosen = yaml.safe_load((exp / "inference.yaml").read_text())
    enh = Enhancer.from_pretrained(exp / "packed" / "model.pth")
    assert (enh.vad_floor, enh.vad_threshold, enh.input_mix) == (chosen["vad_floor"], chosen["vad_threshold"],
                                                                 chosen["input_mix"])
    assert enh.model.vad_floor == chosen["vad_floor"]
    scores = enh.metadata["scores"]
    assert set(scores) == {"test", "valid"}
    summary = yaml.safe_load((exp / "enhanced_test" / "scoring" / "summary.yaml").read_text())
    assert scores["test"]["enhanced"]["pesq"] == summary["means"]["enhanced"]["pesq"]
    assert enh.metadata["training_wall_seconds"] > 0
    assert Enhancer.from_pretrained(exp / "packed" / "model.pth", vad_floor=1.0).vad_floor == 1.0
