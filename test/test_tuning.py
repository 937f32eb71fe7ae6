"""vad_floor, input_mix and snr_limit as inference options and csmvanet-tune-inference (csmvanet.infer.tuning):
each is applied at synthesis as specified, the choice on a data dir is the best of the grid (with the
keep_stoi rule and its margin), and the choice travels with the model (exp dir inference.yaml, packed
metadata) unless overridden."""
from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from csmvanet.audio.synthetic import noise, speech_like
from csmvanet.data.vad import labels_from_clean, write_label_ark
from csmvanet.experiment.checkpoint import save_checkpoint
from csmvanet.experiment.model_files import ModelFileError
from csmvanet.infer.enhancer import Enhancer
from csmvanet.infer.tuning import choose_settings, write_settings
from csmvanet.metrics.basic import pesq_score, si_sdr, vad_metrics
from csmvanet.nets import build_model

SR = 16000


def make_exp(path: Path, cfg: dict, seed: int = 3) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build_model(cfg)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    save_checkpoint(model.state_dict(), path / "valid.loss.ave.pth")
    return path


@pytest.fixture(scope="module")
def exp(tmp_path_factory):
    from conftest import TINY_CONFIG

    torch.set_num_threads(1)
    return make_exp(tmp_path_factory.mktemp("tune") / "exp", TINY_CONFIG)


def mixture(seed: int, seconds: float = 2.5):
    clean, _ = speech_like(seed, seconds=seconds, sr=SR)
    clean = (0.3 * clean / np.abs(clean).max()).astype(np.float32)
    n = noise("pink", seed + 100, seconds=seconds, sr=SR)
    return clean, (clean + n * np.std(clean) / np.std(n)).astype(np.float32)


def test_the_floor_is_applied_at_synthesis(exp):
    """Floor 1: the stage-1 spectrum alone; floor 0: spectrum x VAD probability (the paper); floor f:
    gain f + (1 - f) p on the compressed spectrum, so the three outputs all differ."""
    from csmvanet.audio.stft import synthesise

    enh = Enhancer.from_pretrained(exp)
    _, x = mixture(1)
    assert enh.vad_floor == 0.0 and enh.vad_threshold == 0.5       # the config's floor, the usual 0.5
    with torch.no_grad():
        out = enh.model(torch.from_numpy(x)[None])
    spec1, vad, scale = out["spec1"], out["vad"], out["scale"]
    outs = {}
    for f in (0.0, 0.3, 1.0):
        enh.set_vad_floor(f)
        outs[f] = enh.enhance(x, SR, limit=False)[0]
        want = synthesise(spec1 * (f + (1 - f) * vad)[:, None, :], enh.stft_cfg, len(x)) / scale[:, None]
        np.testing.assert_allclose(outs[f], want[0].numpy(), atol=2e-5)
    assert min(np.abs(outs[a] - outs[b]).max() for a, b in ((0.0, 0.3), (0.3, 1.0))) > 1e-4
    with pytest.raises(ValueError, match="vad_floor must be a number from 0 to 1"):
        enh.set_vad_floor(1.5)


@pytest.fixture(scope="module")
def valid_dir(tmp_path_factory, exp):
    """A data dir of 3 mixtures (wav.scp, spk1.scp, vad_labels.scp) + one entry whose file is missing."""
    from csmvanet.audio.stft import STFTConfig

    d = tmp_path_factory.mktemp("valid")
    wav, ref, labels = [], [], []
    stft = STFTConfig(n_fft=400, win_length=400, hop_length=100, sample_rate=SR)
    for i in range(3):
        clean, noisy = mixture(10 + i)
        sf.write(d / f"c{i}.wav", clean, SR)
        sf.write(d / f"n{i}.wav", noisy, SR)
        wav.append(f"u{i} {d}/n{i}.wav")
        ref.append(f"u{i} {d}/c{i}.wav")
        labels.append((f"u{i}", labels_from_clean(clean, stft)))
    wav.append(f"u9 {d}/missing.wav")
    ref.append(f"u9 {d}/missing_ref.wav")
    (d / "wav.scp").write_text("\n".join(wav) + "\n")
    (d / "spk1.scp").write_text("\n".join(ref) + "\n")
    _, scp = write_label_ark(d / "vad", labels)
    (d / "vad_labels.scp").write_text(Path(scp).read_text())
    return d


def test_choose_settings_takes_the_best_of_the_grid_and_names_what_failed(exp, valid_dir):
    enh = Enhancer.from_pretrained(exp)
    enh.set_chunking(1.0, 0.25)      # several chunks of one shape per utterance: each must keep its own outputs
    enh.set_vad_floor(0.2)
    said = []
    floors, thresholds = (0.0, 0.5, 1.0), (0.2, 0.4, 0.6, 0.8)
    s = choose_settings(enh, valid_dir, floors=floors, thresholds=thresholds, progress=False, say=said.append)
    assert enh.vad_floor == 0.2 and enh.model.vad_floor == 0.2       # left as it was
    assert s.num_utts == 3 and len(s.failed) == 1 and s.failed[0].startswith("u9: ")
    assert "missing.wav" in s.failed[0] and any("u9" in m for m in said)
    # every floor's mean PESQ is that of enhancing at that floor directly (limiter on, as decoding)
    import kaldiio

    labels = dict(kaldiio.load_scp(str(valid_dir / "vad_labels.scp")))
    for f in floors:
        enh.set_vad_floor(f)
        vals, sdrs, probs, labs = [], [], [], []
        for i in range(3):
            clean, _ = sf.read(valid_dir / f"c{i}.wav", dtype="float32")
            noisy, _ = sf.read(valid_dir / f"n{i}.wav", dtype="float32")
            y, vad = enh.enhance(noisy, SR)
            vals.append(pesq_score(clean, y, SR))
            sdrs.append(si_sdr(clean, y))
            n = min(len(vad), len(labels[f"u{i}"]))
            probs.append(vad[:n])
            labs.append(labels[f"u{i}"][:n])
        assert s.grid[(f, 0.0, None)]["pesq"] == pytest.approx(np.mean(vals), abs=1e-6), f
        assert s.grid[(f, 0.0, None)]["si_sdr"] == pytest.approx(np.mean(sdrs), abs=1e-4), f
    assert len({round(s.grid[(f, 0.0, None)]["si_sdr"], 3) for f in floors}) == len(floors)   # the floors differ
    assert (s.vad_floor, s.input_mix, s.snr_limit) == (max(floors, key=lambda f: (s.grid[(f, 0.0, None)]["pesq"], f)),
                                                       0.0, None)
    pooled = {t: vad_metrics(np.concatenate(labs), np.concatenate(probs), t)["vad_f1"] for t in thresholds}
    for t in thresholds:
        assert s.thresholds[t] == pytest.approx(pooled[t], abs=1e-6)
    assert s.vad_threshold == max(thresholds, key=lambda t: (pooled[t], -abs(t - 0.5)))
    by_stoi = choose_settings(enh, valid_dir, floors=floors, thresholds=thresholds, criterion="stoi",
                              progress=False, say=said.append)
    assert by_stoi.vad_floor == max(floors, key=lambda f: (s.grid[(f, 0.0, None)]["stoi"], f))


def test_input_mix_and_keep_stoi(exp, valid_dir):
    """input_mix keeps that share of the input; keep_stoi chooses the best PESQ among the settings
    whose STOI is not below the noisy input's (no utt2snr here: overall)."""
    enh = Enhancer.from_pretrained(exp)
    clean, x = mixture(2)
    y0 = enh.enhance(x, SR, limit=False)[0]
    enh.set_input_mix(0.25)
    np.testing.assert_allclose(enh.enhance(x, SR, limit=False)[0], 0.75 * y0 + 0.25 * x, atol=1e-5)
    enh.set_input_mix(0.0)
    said = []
    s = choose_settings(enh, valid_dir, floors=(0.0, 1.0), mixes=(0.0, 0.5, 1.0), thresholds=(0.5,),
                        keep_stoi=True, progress=False, say=said.append)
    assert sorted(s.grid) == [(0.0, 0.0, None), (0.0, 0.5, None), (0.0, 1.0, None), (1.0, 0.0, None),
                              (1.0, 0.5, None), (1.0, 1.0, None)]
    ok = [c for c in s.grid if s.grid[c]["stoi"] >= s.noisy["stoi"]]
    assert (1.0, 1.0, None) in ok and (0.0, 0.0, None) not in ok     # the input itself keeps STOI; this random net does not
    # a mix of 1 (the input itself) is compared but never chosen: stored, the model would output its input
    choosable = [c for c in ok if c[1] < 1.0]
    expected = max(choosable or [c for c in s.grid if c[1] < 1.0], key=lambda c: (s.grid[c]["pesq"], c[0], -c[1]))
    assert s.kept_stoi == bool(choosable) and (s.vad_floor, s.input_mix, None) == expected
    assert enh.input_mix == 0.0
    s = choose_settings(enh, valid_dir, floors=(0.0, 1.0), thresholds=(0.5,), keep_stoi=True, progress=False,
                        say=said.append)
    assert not s.kept_stoi and (s.vad_floor, s.input_mix, None) == max(s.grid, key=lambda c: (s.grid[c]["pesq"], c[0]))
    assert any("no setting of the grid keeps STOI" in m for m in said)


def test_the_choice_travels_with_the_model_unless_overridden(exp, tmp_path):
    import shutil

    from csmvanet.experiment.packing import pack_model
    from csmvanet.infer.tuning import Settings

    e = tmp_path / "exp"
    shutil.copytree(exp, e)
    s = Settings(vad_floor=0.4, vad_threshold=0.35, criterion="pesq", input_mix=0.1, snr_limit=12.0,
                 grid={(0.4, 0.1, 12.0): {"pesq": 1.0, "stoi": 0.5, "si_sdr": 0.0}})
    write_settings(e, s, checkpoint="valid.loss.ave.pth", data_dir="dump/valid")
    enh = Enhancer.from_pretrained(e)
    assert (enh.vad_floor, enh.vad_threshold, enh.model.vad_floor, enh.input_mix, enh.snr_limit) == (0.4, 0.35, 0.4, 0.1, 12.0)
    over = Enhancer.from_pretrained(e, vad_floor=1.0, vad_threshold=0.6, snr_limit=float("inf"))
    assert (over.vad_floor, over.snr_limit) == (1.0, None)
    pack_model(e, tmp_path / "m.pth")
    packed = Enhancer.from_pretrained(tmp_path / "m.pth")
    assert (packed.vad_floor, packed.vad_threshold, packed.input_mix, packed.snr_limit) == (0.4, 0.35, 0.1, 12.0)
    # chosen for another checkpoint: not used, and said
    save_checkpoint(torch.load(e / "valid.loss.ave.pth", weights_only=True), e / "other.pth")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        other = Enhancer.from_pretrained(e, checkpoint="other.pth")
    assert other.vad_floor == 0.0 and any("chosen for valid.loss.ave.pth, not other.pth" in str(w.message)
                                          for w in caught)
    (e / "inference.yaml").write_text("vad_floor: 2\nvad_threshold: 0.5\n")
    with pytest.raises(ModelFileError, match=r"inference.yaml: vad_floor must be a number from 0 to 1"):
        Enhancer.from_pretrained(e)
    for bad in ("loud", "true", "101"):                  # yes/true would read as 1 dB if booleans passed
        (e / "inference.yaml").write_text(f"vad_floor: 0.5\nvad_threshold: 0.5\nsnr_limit: {bad}\n")
        with pytest.raises(ModelFileError, match=r"inference.yaml: snr_limit must be a number of dB"):
            Enhancer.from_pretrained(e)
    for bad in ("1.5", "-0.1", "yes", "1"):                # 1: the model would output its input unchanged
        (e / "inference.yaml").write_text(f"vad_floor: 0.5\nvad_threshold: 0.5\ninput_mix: {bad}\n")
        with pytest.raises(ModelFileError, match=r"inference.yaml: input_mix must be a number from 0 to below 1"):
            Enhancer.from_pretrained(e)


def test_cli_vad_floor_is_checked_and_applied(exp, tmp_path):
    _, x = mixture(5, seconds=1.5)
    sf.write(tmp_path / "in.wav", x, SR)
    bad = subprocess.run([sys.executable, "-m", "csmvanet.bin.enhance", "--model", str(exp), str(tmp_path / "in.wav"),
                          "--output_dir", str(tmp_path / "o"), "--vad_floor", "1.5"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--vad_floor: expected a number from 0 to 1, got '1.5'" in bad.stderr
    outs = {}
    for f in ("0", "1"):
        p = subprocess.run([sys.executable, "-m", "csmvanet.bin.enhance", "--model", str(exp), str(tmp_path / "in.wav"),
                            "--output_dir", str(tmp_path / f), "--vad_floor", f, "--no_progress"],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert f"vad_floor {f}" in p.stderr
        outs[f] = sf.read(tmp_path / f / "in.wav")[0]
    enh = Enhancer.from_pretrained(exp, vad_floor=1.0)
    np.testing.assert_allclose(outs["1"], enh.enhance(x, SR)[0], atol=1.5 / 32768)
    assert np.abs(outs["1"] - outs["0"]).max() > 1e-3


def test_snr_limit_mix_caps_the_estimated_output_snr():
    """The output e + m (x - e) has estimated SNR (e as speech) exactly the limit where the enhanced
    signal's own estimate is above it; nothing is mixed where it is at or below it."""
    from csmvanet.infer.output_level import snr_limit_mix

    rng = np.random.default_rng(0)
    e = rng.standard_normal(8000).astype(np.float32)
    r = rng.standard_normal(8000).astype(np.float32)
    r *= np.sqrt(np.sum(e.astype(np.float64) ** 2) / np.sum(r.astype(np.float64) ** 2)) * 10 ** (-20 / 20)  # 20 dB
    x = e + r
    for limit in (21.0, 26.0, 40.0):
        m = snr_limit_mix(e, x, limit)
        out_snr = 10 * np.log10(np.sum(e.astype(np.float64) ** 2) / np.sum((m * (x - e)).astype(np.float64) ** 2))
        assert 0 < m < 1 and out_snr == pytest.approx(limit, abs=1e-3), limit
    assert snr_limit_mix(e, x, 19.0) == 1.0 and snr_limit_mix(e, x, -5.0) == 1.0   # at or above the limit: the input
    assert snr_limit_mix(e, e, 10.0) == 0.0                                          # nothing removed: nothing to limit


def test_snr_limit_per_chunk_and_in_the_grid(exp, valid_dir):
    """Each chunk keeps max(input_mix, snr_limit_mix(chunk)) of its input; choose_settings scores every
    limit of the grid as enhancing with it directly; a larger stoi_se never allows more settings."""
    from csmvanet.infer.output_level import snr_limit_mix

    enh = Enhancer.from_pretrained(exp)
    clean, x = mixture(2, seconds=1.5)                       # one chunk (default 8 s segments)
    y0 = enh.enhance(x, SR, limit=False)[0]
    est = 10 * np.log10(np.sum(y0.astype(np.float64) ** 2) / np.sum((x - y0).astype(np.float64) ** 2))
    for mix, limit in ((0.0, est + 6), (0.3, est + 6), (0.9, est + 6), (0.0, est - 3)):
        enh.set_input_mix(mix)
        enh.set_snr_limit(limit)
        m = max(mix, snr_limit_mix(y0, x, limit))
        np.testing.assert_allclose(enh.enhance(x, SR, limit=False)[0], (1 - m) * y0 + m * x, atol=1e-5)
    assert snr_limit_mix(y0, x, est + 6) == pytest.approx(10 ** (-6 / 20), rel=1e-4)
    enh.set_input_mix(0.0)
    enh.set_snr_limit(None)
    with pytest.raises(ValueError, match="snr_limit must be None or a number of dB"):
        enh.set_snr_limit("loud")
    limits = (None, est + 3)
    s = choose_settings(enh, valid_dir, floors=(0.0,), snr_limits=limits, thresholds=(0.5,), progress=False,
                        say=lambda m: None)
    assert set(s.grid) == {(0.0, 0.0, None), (0.0, 0.0, est + 3)}
    for lim in limits:
        enh.set_snr_limit(lim)
        sdrs = []
        for i in range(3):
            c, _ = sf.read(valid_dir / f"c{i}.wav", dtype="float32")
            n, _ = sf.read(valid_dir / f"n{i}.wav", dtype="float32")
            sdrs.append(si_sdr(c, enh.enhance(n, SR)[0]))
        assert s.grid[(0.0, 0.0, lim)]["si_sdr"] == pytest.approx(np.mean(sdrs), abs=1e-4), lim
    assert s.grid[(0.0, 0.0, None)]["si_sdr"] != pytest.approx(s.grid[(0.0, 0.0, est + 3)]["si_sdr"], abs=1e-3)
    assert enh.snr_limit == est + 3            # left as the caller set it (the last loop)
    # keep_stoi with a margin: the allowed settings shrink as stoi_se grows; at 0 it is the means alone
    grid = dict(floors=(0.0, 1.0), mixes=(0.0, 0.6, 1.0), thresholds=(0.5,), keep_stoi=True, progress=False,
                say=lambda m: None)
    chosen = [choose_settings(enh, valid_dir, stoi_se=k, **grid) for k in (0.0, 50.0)]
    plain = chosen[0]
    ok = [c for c in plain.grid if plain.grid[c]["stoi"] >= plain.noisy["stoi"] and c[1] < 1.0]   # mix 1: never
    below_1 = [c for c in plain.grid if c[1] < 1.0]
    assert plain.kept_stoi == bool(ok)
    assert (plain.vad_floor, plain.input_mix, None) == max(ok or below_1,
                                                           key=lambda c: (plain.grid[c]["pesq"], c[0], -c[1]))
    # with a huge margin only settings whose STOI equals the input's on every utterance would qualify: mix 1,
    # which is never chosen (stored, the model would output its input); so none does, and the best PESQ below 1
    huge = chosen[1]
    assert not huge.kept_stoi and huge.stoi_se == 50.0
    assert (huge.vad_floor, huge.input_mix, None) == max([c for c in huge.grid if c[1] < 1.0],
                                                         key=lambda c: (huge.grid[c]["pesq"], c[0], -c[1]))


def test_without_vad_labels_the_threshold_is_said_to_be_the_default(exp, valid_dir, tmp_path):
    """Issue 30 item 13: with no vad_labels.scp the threshold stays 0.5, and inference.yaml and the
    summary line say so instead of claiming it was chosen by the best frame F1."""
    import contextlib
    import io
    import shutil

    from csmvanet.bin.tune_inference import main as tune_main

    d = tmp_path / "valid_no_labels"
    d.mkdir()
    for name in ("wav.scp", "spk1.scp"):     # the first two utterances only (the missing one is not the point)
        (d / name).write_text("".join((valid_dir / name).read_text().splitlines(keepends=True)[:2]))
    e = tmp_path / "exp"
    shutil.copytree(exp, e)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = tune_main(["--exp_dir", str(e), "--data_dir", str(d), "--floors", "0.5", "--no_progress"])
    assert rc == 0, err.getvalue()
    text = (e / "inference.yaml").read_text()
    head = text.splitlines()[0]
    assert "best frame F1" not in head and f"the VAD threshold 0.5 by default (not chosen: no vad_labels.scp in {d})" in head
    doc = yaml.safe_load(text)
    assert doc["vad_threshold"] == 0.5 and doc["vad_threshold_from"].startswith("default 0.5, not chosen")
    line = [x for x in err.getvalue().splitlines() if "-> " in x][0]
    assert f"vad_threshold 0.5 (not chosen: no vad_labels.scp in {d})" in line
    print("item 13 (tune-inference without labels):", head)
    # with labels, as before: the best F1, said so
    s = choose_settings(Enhancer.from_pretrained(exp), valid_dir, floors=(0.5,), progress=False, say=lambda m: None)
    assert s.threshold_note == "" and s.thresholds
    write_settings(e, s, checkpoint="valid.loss.ave.pth", data_dir=valid_dir)
    assert (e / "inference.yaml").read_text().splitlines()[0].endswith("the VAD threshold of the best frame F1.")
