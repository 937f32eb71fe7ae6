"""Mixture simulation: exact SNRs, determinism for any --nj, peak handling, partial noise reads."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from csmvanet.audio import synthetic
from csmvanet.audio.io import write_audio
from csmvanet.bin import simulate as sim_cli
from csmvanet.data import simulate as S
from csmvanet.data.datadir import read_scp

SR = 16000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    speech, utt2spk = [], []
    for i in range(6):
        wave, _ = synthetic.speech_like(i, 1.2 + 0.3 * i)
        write_audio(d / f"s{i}.wav", wave, SR)
        key = f"spk{i % 2}-u{i}"
        speech.append(f"{key} {d}/s{i}.wav\n")
        utt2spk.append(f"{key} spk{i % 2}\n")
    noises, n2t = [], []
    for j, (kind, sec) in enumerate([("pink", 20.0), ("babble", 3.0), ("hum", 0.3), ("clatter", 2.0)]):
        write_audio(d / f"n_{kind}.wav", synthetic.noise(kind, 10 + j, sec), SR)
        noises.append(f"{kind}1 {d}/n_{kind}.wav\n")
        n2t.append(f"{kind}1 {kind.upper()}\n")
    (d / "speech.scp").write_text("".join(speech))
    (d / "utt2spk").write_text("".join(utt2spk))
    (d / "noise.scp").write_text("".join(noises))
    (d / "noise2type").write_text("".join(n2t))
    return d


def _make_spec(corpus: Path, spec: Path, *extra: str) -> int:
    return sim_cli.main(["--make_spec", "--speech_scp", str(corpus / "speech.scp"), "--noise_scp",
                         str(corpus / "noise.scp"), "--speech_utt2spk", str(corpus / "utt2spk"),
                         "--noise2type", str(corpus / "noise2type"), "--spec", str(spec), "--quiet", *extra])


def _mix(spec: Path, out: Path, *extra: str) -> int:
    return sim_cli.main(["--spec", str(spec), "--out_wav_dir", str(out / "wav"), "--data_dir",
                         str(out / "data"), "--quiet", *extra])


def _read(path: str) -> np.ndarray:
    return sf.read(path, dtype="float64")[0]


def test_snr_exact_and_data_dir(corpus, tmp_path):
    spec = tmp_path / "spec.tsv"
    assert _make_spec(corpus, spec, "--snrs", "uniform:-10:15", "--num", "16", "--length", "1.0",
                      "--seed", "7") == 0
    assert _mix(spec, tmp_path / "o", "--write_noise", "--subtype", "FLOAT") == 0
    data = tmp_path / "o" / "data"
    specs = {s.utt_id: s for s in S.read_spec(spec)}
    wav, clean, noise = (read_scp(data / f) for f in ("wav.scp", "spk1.scp", "noise1.scp"))
    utt2snr, utt2spk, utt2noise = (read_scp(data / f) for f in ("utt2snr", "utt2spk", "utt2noise"))
    assert list(wav) == sorted(specs) and len(wav) == 16
    errs = []
    for utt, s in specs.items():
        c, n, y = _read(clean[utt]), _read(noise[utt]), _read(wav[utt])
        assert len(c) == len(n) == len(y) == 16000 == int(read_scp(data / "utt2num_samples")[utt])
        assert float(utt2snr[utt]) == s.snr_db and -10 <= s.snr_db <= 15
        errs.append(abs(S.realised_snr(c, n) - s.snr_db))
        errs.append(abs(S.realised_snr(c, y - c) - s.snr_db))
        assert np.max(np.abs(y)) <= 0.99 + 1e-6
        assert utt2spk[utt] == s.speech_id.split("-")[0] and utt2noise[utt] == s.noise_type
        # the clean file is the speech segment that was used
        src = _read(s.speech)[s.speech_offset:s.speech_offset + s.length]
        scale = float(c @ src) / float(src @ src)
        np.testing.assert_allclose(c, scale * np.pad(src, (0, s.length - len(src))), atol=1e-6)
    assert max(errs) < 0.05
    assert set(utt2noise.values()) <= {"PINK", "BABBLE", "HUM", "CLATTER"}
    spk2utt = read_scp(data / "spk2utt")
    assert sorted(u for v in spk2utt.values() for u in v.split()) == sorted(specs)


def test_pcm16_snr_and_whole_utterances(corpus, tmp_path):
    spec = tmp_path / "spec.tsv"
    assert _make_spec(corpus, spec, "--snrs", "-5,0,5", "--seed", "1") == 0
    specs = S.read_spec(spec)
    assert [s.utt_id for s in specs] == sorted(read_scp(corpus / "speech.scp"))  # one per utterance
    assert all(s.snr_db in (-5, 0, 5) for s in specs)
    assert _mix(spec, tmp_path / "o", "--nj", "2") == 0
    data = tmp_path / "o" / "data"
    assert not (data / "noise1.scp").exists()
    for s in specs:
        c = _read(read_scp(data / "spk1.scp")[s.utt_id])
        y = _read(read_scp(data / "wav.scp")[s.utt_id])
        assert len(y) == sf.info(s.speech).frames == s.length
        assert abs(S.realised_snr(c, y - c) - s.snr_db) < 0.05


def test_grid_per_condition(corpus, tmp_path):
    spec = tmp_path / "spec.tsv"
    assert _make_spec(corpus, spec, "--snrs", "-5,0,5", "--per_condition", "3", "--length", "0.5") == 0
    specs = S.read_spec(spec)
    cells = {}
    for s in specs:
        cells[(s.noise_type, s.snr_db)] = cells.get((s.noise_type, s.snr_db), 0) + 1
    assert cells == {(t, snr): 3 for t in ("BABBLE", "CLATTER", "HUM", "PINK") for snr in (-5.0, 0.0, 5.0)}
    assert _make_spec(corpus, tmp_path / "x.tsv", "--snrs", "uniform:0:5", "--per_condition", "3") == 1


def test_same_seed_same_spec_and_bytes_for_any_nj(corpus, tmp_path):
    a, b, c = tmp_path / "a.tsv", tmp_path / "b.tsv", tmp_path / "c.tsv"
    args = ("--snrs", "uniform:-10:15", "--num", "20", "--length", "0.8", "--speech_gain_db", "uniform:-6:6")
    assert _make_spec(corpus, a, *args, "--seed", "3") == 0
    assert _make_spec(corpus, b, *args, "--seed", "3") == 0
    assert _make_spec(corpus, c, *args, "--seed", "4") == 0
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert _mix(a, tmp_path / "n1", "--nj", "1", "--write_noise") == 0
    assert _mix(a, tmp_path / "n3", "--nj", "3", "--write_noise") == 0
    files1 = sorted(p.relative_to(tmp_path / "n1" / "wav") for p in (tmp_path / "n1" / "wav").rglob("*.wav"))
    files3 = sorted(p.relative_to(tmp_path / "n3" / "wav") for p in (tmp_path / "n3" / "wav").rglob("*.wav"))
    assert files1 == files3 and len(files1) == 60
    for rel in files1:
        assert (tmp_path / "n1" / "wav" / rel).read_bytes() == (tmp_path / "n3" / "wav" / rel).read_bytes()
    for f in ("utt2snr", "utt2noise", "utt2spk", "spk2utt", "utt2num_samples"):
        assert (tmp_path / "n1" / "data" / f).read_text() == (tmp_path / "n3" / "data" / f).read_text()


def test_peak_handling_keeps_snr(corpus):
    base = S.MixSpec(utt_id="loud", spk="s", speech_id="u", speech=str(corpus / "s5.wav"), speech_offset=0,
                     noise_id="n", noise_type="PINK", noise=str(corpus / "n_pink.wav"), noise_offset=100,
                     length=20000, snr_db=0.0, speech_gain_db=0.0)
    quiet = S.mix(base, SR)
    assert quiet.peak_scale == 1.0
    softer = S.mix(S.MixSpec(**{**base.__dict__, "speech_gain_db": -6.0}), SR)   # a level in dB of amplitude
    np.testing.assert_allclose(softer.clean, quiet.clean * 10 ** (-6 / 20), rtol=1e-12)
    assert abs(S.realised_snr(softer.clean, softer.noise) - 0.0) < 1e-9
    loud = S.mix(S.MixSpec(**{**base.__dict__, "speech_gain_db": 24.0}), SR)
    assert loud.peak_scale < 0.5
    assert np.max(np.abs(loud.noisy)) == pytest.approx(0.99)
    np.testing.assert_allclose(loud.noisy, loud.clean + loud.noise, atol=1e-12)
    assert abs(S.realised_snr(loud.clean, loud.noise) - 0.0) < 1e-9
    # the same mixture, only scaled
    np.testing.assert_allclose(loud.noisy / np.max(np.abs(loud.noisy)),
                               quiet.noisy / np.max(np.abs(quiet.noisy)), atol=1e-9)


def test_long_noise_is_read_partially_and_short_noise_tiled(corpus, monkeypatch):
    reads = []
    real_read = sf.SoundFile.read

    def spy(self, frames=-1, *a, **k):
        reads.append((Path(self.name).name, frames))
        return real_read(self, frames, *a, **k)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    spec = S.MixSpec(utt_id="x", spk="s", speech_id="u", speech=str(corpus / "s0.wav"), speech_offset=0,
                     noise_id="n", noise_type="PINK", noise=str(corpus / "n_pink.wav"), noise_offset=250000,
                     length=8000, snr_db=5.0)
    m = S.mix(spec, SR)
    noise_reads = [f for name, f in reads if name == "n_pink.wav"]
    assert noise_reads == [8000]  # 8000 of the 320000 samples, not the whole file
    full = _read(str(corpus / "n_pink.wav"))
    np.testing.assert_allclose(m.noise / (m.noise @ full[250000:258000]) * (full[250000:258000] @ full[250000:258000]),
                               full[250000:258000], atol=1e-9)
    # a 0.3 s noise under a 1 s mixture is tiled from its offset, wrapping to the start
    short = _read(str(corpus / "n_hum.wav"))
    seg = S.read_segment(str(corpus / "n_hum.wav"), 1000, 16000, SR, tile=True)
    np.testing.assert_array_equal(seg, np.tile(short, 5)[1000:17000])
    # speech shorter than the mixture is zero padded, never tiled
    sp = S.read_segment(str(corpus / "s0.wav"), 0, 30000, SR, tile=False)
    assert np.all(sp[19200:] == 0) and np.any(sp[:19200] != 0)


def test_bad_inputs_are_listed_and_the_rest_kept(corpus, tmp_path, capsys):
    spec = tmp_path / "spec.tsv"
    assert _make_spec(corpus, spec, "--snrs", "0", "--num", "4", "--length", "0.5") == 0
    specs = S.read_spec(spec)
    broken = [S.MixSpec(**{**specs[0].__dict__, "utt_id": "zz-missing", "speech": str(tmp_path / "nope.wav")}),
              S.MixSpec(**{**specs[1].__dict__, "utt_id": "zz-silent", "noise": str(tmp_path / "zeros.wav")})]
    write_audio(tmp_path / "zeros.wav", np.zeros(16000, dtype=np.float32), SR)
    S.write_spec(spec, specs + broken)
    assert _mix(spec, tmp_path / "o") == 1
    err = capsys.readouterr().err
    assert "zz-missing" in err and "nope.wav" in err and "zz-silent" in err and "silent" in err
    wav = read_scp(tmp_path / "o" / "data" / "wav.scp")
    assert sorted(wav) == sorted(s.utt_id for s in specs)
    assert not any(p.name.startswith(".") for p in (tmp_path / "o" / "wav" / "noisy").iterdir())
    # a malformed spec is rejected naming the line
    (tmp_path / "bad.tsv").write_text("\t".join(S.SPEC_COLUMNS) + "\n" + "\t".join(["a"] * len(S.SPEC_COLUMNS)) + "\n")
    with pytest.raises(S.SpecError, match=r"bad.tsv:2: column speech_offset"):
        S.read_spec(tmp_path / "bad.tsv")
    with pytest.raises(S.SpecError, match="uniform"):
        S.ValueSpec("uniform:5")
    # a wrong sample rate in the lists is reported at spec time
    write_audio(tmp_path / "s8k.wav", np.ones(8000, dtype=np.float32) * 0.1, 8000)
    (tmp_path / "sp.scp").write_text(f"a {corpus}/s0.wav\nb {tmp_path}/s8k.wav\n")
    sources, errors = S.load_sources(tmp_path / "sp.scp", sr=SR)
    assert [s.key for s in sources] == ["a"] and "8000" in errors[0] and "s8k.wav" in errors[0]


def test_value_specs_and_offsets_draw_every_allowed_value():
    """A list spec draws each of its values (the last too), a uniform one its whole range (4
    decimals); reversed or malformed specs are refused; speech offsets reach the last possible one,
    noise shorter than the mixture is tiled from any point of it."""
    from csmvanet.data import mixspec as M

    rng = np.random.default_rng(0)
    assert {M.ValueSpec("-5,0,5").draw(rng) for _ in range(200)} == {-5.0, 0.0, 5.0}
    u = [M.ValueSpec("uniform:-10:15").draw(rng) for _ in range(500)]
    assert -10 <= min(u) < -9 and 14 < max(u) <= 15 and all(round(v, 4) == v for v in u)
    for bad in ("uniform:5:-5", "uniform:5", "x", "", "1,inf"):
        with pytest.raises(S.SpecError, match="spec"):
            M.ValueSpec(bad)
    assert {M._offset(rng, 1002, 1000) for _ in range(200)} == {0, 1, 2}
    assert M._offset(rng, 900, 1000) == 0                          # shorter speech: from its start
    tiled = {M._noise_offset(rng, 50, 1000) for _ in range(400)}
    assert tiled == set(range(50))
    assert {M._noise_offset(rng, 1001, 1000) for _ in range(100)} == {0, 1}
