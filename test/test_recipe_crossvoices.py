"""egs/crossvoices: stage 0 refuses the reserved packages; stages 0-2 on a small fake tree of the packages'
layout (no network, no apt) give data dirs whose roles share no speaker, source unit or noise recording.

The fake tree is egs/voiceprompts' (test_recipe_voiceprompts.make_fake_tree: asterisk with ffmpeg,
klettres, colobot) plus tuxpaint-stamps-default descriptions (one language recorded over a noise floor about
20 dB below its loud frames, which the quality rule must keep out of the targets), hedgewars voice packs,
game sounds and music, and ktuberling words, each where the .deb puts them.
"""
from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_recipe_voiceprompts import HAVE_FFMPEG, PACKAGES as VP_PACKAGES, make_fake_tree, path_without, unpacked

from csmvanet.audio.synthetic import noise, random_speaker, speech_like
from csmvanet.data.datadir import read_scp

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "egs" / "crossvoices"
NEW = ["tuxpaint-stamps-default", "hedgewars-data", "ktuberling-data"]
TUX = {"el": 0.0, "bg": 0.0, "ro": -12.0, "ca": 0.0}     # language -> noise floor re the clip RMS (0: none)
HW = ("British", "Pirate", "Default", "Default_es")
ROLES = """
ast:fr_CA_f_June train
ast:ru_RU_f_IvrvoiceRU train
ast:it_IT_m_Carlo test_indomain
lang:de test_indomain
lang:fr train
lang:en train
lang:es train
lang:ca train
lang:uk train
lang:ro train
lang:bg valid
hw:Pirate valid
lang:el test
hw:British test
hw:Default train
col-music train
col-sound train
hw-sound valid
hw-music test
tux-sfx test
"""


def run(*args, path: str, cwd=RECIPE, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([*map(str, args)], cwd=cwd, env={"PATH": path, "HOME": "/tmp"}, capture_output=True,
                          text=True, timeout=timeout)


def clip(rng, spk, sr=44100, floor_db=0.0):
    w = np.zeros(1)
    while np.abs(w).max() < 1e-3:
        w, _ = speech_like(rng, float(rng.uniform(1.6, 2.4)), sr, speaker=spk, floor_db=None)
    w = 0.3 * w / np.abs(w).max()
    if floor_db:
        w = w + np.sqrt(np.mean(w ** 2)) * 10 ** (floor_db / 20) * rng.standard_normal(len(w))
    return w


def make_new_packages(downloads: Path) -> None:
    rng = np.random.default_rng(11)
    base = unpacked(downloads, "tuxpaint-stamps-default") / "usr/share/tuxpaint/stamps"
    for lang, floor in TUX.items():
        spk = random_speaker(rng)
        for i in range(8):
            f = base / ("animals/birds" if i % 2 else "symbols/math") / f"stamp{i}_desc_{lang}.ogg"
            f.parent.mkdir(parents=True, exist_ok=True)
            sf.write(f, clip(rng, spk, floor_db=floor), 44100, format="OGG", subtype="VORBIS")
    for i in range(3):   # the stamps' own sounds (noise), and a spoken letter under symbols/ (neither)
        sf.write(base / "animals/birds" / f"stamp{i}.ogg", 0.3 * noise("pink", rng, 1.0, 44100), 44100)
    sf.write(base / "symbols/math" / "plus.ogg", clip(rng, random_speaker(rng)), 44100)
    data = unpacked(downloads, "hedgewars-data") / "usr/share/games/hedgewars/Data"
    for pack in HW:
        spk = random_speaker(rng)
        (data / "Sounds/voices" / pack).mkdir(parents=True, exist_ok=True)
        for i in range(6):
            sf.write(data / "Sounds/voices" / pack / f"Word{i}.ogg", clip(rng, spk, 22050), 22050)
    (data / "Music").mkdir(parents=True)
    for i in range(2):
        sf.write(data / "Sounds" / f"bang{i}.ogg", 0.5 * noise("white", rng, 0.8, 44100), 44100)
        sf.write(data / "Music" / f"song{i}.ogg", 0.2 * noise("brown", rng, 3.0, 44100), 44100)
    base = unpacked(downloads, "ktuberling-data") / "usr/share/ktuberling/sounds/uk"
    base.mkdir(parents=True)
    spk = random_speaker(rng)
    for i in range(6):
        sf.write(base / f"word{i}.ogg", clip(rng, spk), 44100)
    sf.write(base / "word0.wav", clip(rng, spk), 44100)      # the ogg of the same word is taken


@pytest.mark.parametrize("pkg", ["btanks-data", "asterisk-core-sounds-en-gsm", "asterisk-core-sounds-es-g722",
                                 "festvox-kallpc16k", "fillets-ng-data-cs", "lmms-common", "jconvolver-config-files"])
def test_stage0_refuses_reserved_packages_before_anything(tmp_path, pkg):
    t0 = time.time()
    p = run("./run.sh", "--stage", "0", "--stop_stage", "0", "--packages", f"hedgewars-data {pkg}", "--downloads",
            tmp_path / "dl", "--corpus", tmp_path / "corpus", path=path_without(tmp_path))
    assert p.returncode != 0 and time.time() - t0 < 20
    assert f"'{pkg}' is reserved for an independent evaluation" in p.stderr, p.stderr
    assert not (tmp_path / "dl").exists() and not (tmp_path / "corpus").exists()


def test_stage0_refuses_a_package_outside_the_recipe(tmp_path):
    p = run("./run.sh", "--stage", "0", "--stop_stage", "0", "--packages", "supertux-data", "--downloads",
            tmp_path / "dl", "--corpus", tmp_path / "corpus", path=path_without(tmp_path))
    assert p.returncode != 0 and "'supertux-data' is not one of the recipe's packages" in p.stderr, p.stderr


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("crossvoices")
    make_fake_tree(out / "downloads")
    make_new_packages(out / "downloads")
    roles = out / "roles.tsv"
    roles.write_text(ROLES if HAVE_FFMPEG else ROLES.replace("ast:", "# ast:"))
    before = sorted(p.name for p in RECIPE.iterdir())
    p = run("./run.sh", "--stage", "0", "--stop_stage", "2", "--packages", " ".join(NEW + VP_PACKAGES),
            "--downloads", out / "downloads", "--corpus", out / "corpus", "--datadir", out / "data",
            "--dumpdir", out / "dump", "--roles", roles, "--indomain_valid_langs", "es",
            "--indomain_test_langs", "it de" if HAVE_FFMPEG else "de", "--num_train", "20", "--nj", "2",
            "--data_prep_args", "--babble_count 1 --babble_seconds 4 --colored_seconds 4 --min_seconds 2 "
            "--max_seconds 4 --min_bandwidth_hz 3000",
            "--vp_data_prep_args", "--babble_count 1 --babble_seconds 4 --colored_seconds 4 --min_seconds 2 "
            "--max_seconds 3", path=path_without(out))
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    assert sorted(p.name for p in RECIPE.iterdir()) == before, "the recipe wrote into egs/crossvoices"
    return out


def test_roles_share_no_speaker_source_or_noise_recording(fake_run):
    data, dump = fake_run / "data", fake_run / "dump"
    sets = ("train", "valid", "test", "test_indomain")
    spk, units, noise_recs = {}, {}, {}
    for s in sets:
        for d in (data / f"speech_{s}", data / f"noise_{s}", dump / s):
            v = subprocess.run([str(ROOT / "utils/validate_data_dir.sh"), "--fs", "16000", str(d)],
                               capture_output=True, text=True)
            assert v.returncode == 0, v.stderr
        utt2spk = read_scp(data / f"speech_{s}/utt2spk")
        spk[s] = set(utt2spk.values())
        units[s] = set(read_scp(data / f"speech_{s}/utt2source").values())
        assert set(read_scp(dump / s / "utt2spk")) <= set(read_scp(dump / s / "wav.scp"))
        kinds = read_scp(data / f"noise_{s}/utt2noise")
        noise_recs[s] = {x for r, v in read_scp(data / f"noise_{s}/utt2sources").items()
                         if kinds[r] in ("music", "effects") for x in v.split()}
    for i, a in enumerate(sets):
        for b in sets[i + 1:]:
            assert not spk[a] & spk[b], (a, b)
            assert not units[a] & units[b], (a, b)
            assert not noise_recs[a] & noise_recs[b], (a, b)
    assert units["test"] == {"lang:el", "hw:British"} and units["valid"] == {"lang:bg", "hw:Pirate"}
    assert "lang:de" in units["test_indomain"] and "hw:Default" in units["train"]
    assert {x.split("-")[1] for x in noise_recs["test"]} == {"music", "sfx"}     # hedgewars music, tuxpaint sounds
    assert {x.split("-")[1] for x in noise_recs["valid"]} == {"sound"}
    # the in-domain test is egs/voiceprompts' own: the utterances of its stage 1, unchanged
    vp = read_scp(data / "voiceprompts/speech_test/utt2spk")
    assert read_scp(data / "speech_test_indomain/utt2spk") == vp
    assert set(read_scp(dump / "test_indomain/utt2spk").values()) <= set(vp.values())


def test_quality_rule_keeps_noisy_clips_out_of_the_targets(fake_run):
    data = fake_run / "data"
    rows = [line.split("\t") for line in (data / "quality.tsv").read_text().splitlines()[1:]]
    verdict = {}
    for r in rows:
        verdict.setdefault(r[1], []).append(r[-1])
    assert all(v != "clean" for v in verdict["tux-ro"]), verdict["tux-ro"]      # noise floor about 20 dB below the loud frames
    assert all("noisy" in v for v in verdict["tux-ro"])
    assert sum(v == "clean" for v in verdict["tux-el"]) >= 6
    assert "tux-ro" not in set(read_scp(data / "speech_train/utt2spk").values())
    # tuxpaint: descriptions under symbols/ are speech, the spoken sign is neither speech nor noise
    assert len(verdict["tux-el"]) == 8
    assert not [f for f in (fake_run / "corpus").rglob("*plus*")]
    assert len(list((fake_run / "corpus/noise/tuxpaint-stamps-default").glob("*.wav"))) == 3
    assert len(verdict["ktb-uk"]) == 6
    table = (data / "quality.md").read_text()
    assert re.search(r"\| tux-ro \| tuxpaint-stamps-default \| lang:ro \| train \| 8 \| 0 \|", table), table


def test_source_units_and_tuxpaint_names(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("crossvoices_clip_sources", RECIPE / "local" / "clip_sources.py")
    cs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cs)
    # a voice pack family, a language across the volunteer packages, an asterisk voice
    assert cs.unit("hw-Default_es") == cs.unit("hw-Default") == "hw:Default"
    assert cs.unit("tux-pt_BR") == cs.unit("klt-pt_BR") == cs.unit("ktb-pt") == "lang:pt"
    assert cs.unit("ktb-sr_ijekavianlatin") == "lang:sr" and cs.unit("ast-fr_CA_f_June") == "ast:fr_CA_f_June"
    assert cs.noise_unit("hw-music-Oriental") == "hw-music" and cs.noise_unit("tux-sfx-animals-cat") == "tux-sfx"
    base = tmp_path / "usr/share/tuxpaint/stamps"
    for name in ("animals/cat_desc_da.ogg.ogg", "animals/cat_desc.ogg", "animals/cat.ogg", "animals/cat_fr.ogg",
                 "symbols/a_desc_el.ogg", "symbols/a_en_GB.ogg", "symbols/plus.ogg", "animals/cat.png"):
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(b"x")
    got = {(kind, rid) for kind, rid, _ in cs.sources("tuxpaint-stamps-default", tmp_path)}
    assert got == {("speech", "tux-da/animals-cat"), ("speech", "tux-en/animals-cat"), ("noise", "tux-sfx-animals-cat"),
                   ("speech", "tux-el/symbols-a")}
