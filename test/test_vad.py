"""VAD labels from clean speech, segments/RTTM from probabilities, the csmvanet-vad-labels CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from csmvanet.audio import synthetic
from csmvanet.audio.io import write_audio
from csmvanet.audio.stft import STFTConfig, stft
from csmvanet.bin import vad_labels as vad_cli
from csmvanet.data.vad import (VADLabelConfig, configs_from_dict, frame_energy_db, labels_from_clean,
                               probs_to_segments, write_rttm, write_segments)

CFG = STFTConfig()


def _truth_frames(active: np.ndarray, cfg: STFTConfig = CFG) -> np.ndarray:
    """Reference label of frame t: the true activity at its centre sample t * hop."""
    t = np.arange(cfg.num_frames(len(active)))
    return active[np.minimum(t * cfg.hop_length, len(active) - 1)].astype(np.int32)


def test_frame_energy_is_the_model_stft_frame():
    wave, _ = synthetic.speech_like(1, 1.37)
    e = frame_energy_db(wave, CFG)
    spec = stft(torch.from_numpy(wave)[None], CFG)[0].numpy()
    assert e.shape[0] == spec.shape[1] == CFG.num_frames(len(wave))
    p = np.abs(spec.astype(np.complex128)) ** 2
    total = p[0] + 2 * p[1:-1].sum(0) + p[-1]  # Parseval over the one-sided spectrum
    win = torch.hann_window(CFG.win_length).double().numpy()
    ref = 10 * np.log10(total / CFG.n_fft / np.sum(win ** 2))
    assert np.max(np.abs(ref - e)) < 1e-3


@pytest.mark.parametrize("floor_rel_db", [None, -50.0, -40.0])
def test_label_accuracy_on_known_activity(floor_rel_db):
    accs = []
    for seed in range(8):
        rng = np.random.default_rng(1000 + seed)
        wave, active = synthetic.speech_like(rng, 4.0, floor_db=None)
        wave = wave.astype(np.float64)
        assert 0.2 < active.mean() < 0.95  # real pauses and real speech
        if floor_rel_db is not None:  # recording noise floor, relative to the speech level
            level = np.sqrt(np.mean(wave[active] ** 2))
            wave = wave + level * 10 ** (floor_rel_db / 20) * rng.standard_normal(len(wave))
        lab = labels_from_clean(wave, CFG, VADLabelConfig())
        assert lab.dtype == np.int32 and lab.shape == (CFG.num_frames(len(wave)),)
        accs.append(np.mean(lab == _truth_frames(active)))
    assert min(accs) >= 0.95, accs


def test_silence_short_bursts_and_gaps():
    n = 16000 * 2
    assert not labels_from_clean(np.zeros(n), CFG).any()
    quiet = 1e-5 * np.random.default_rng(0).standard_normal(n)  # -100 dBFS: below the absolute floor
    assert not labels_from_clean(quiet, CFG).any()

    tone = lambda a, b: (np.arange(n) >= a) & (np.arange(n) < b)  # noqa: E731
    x = 0.1 * np.sin(2 * np.pi * 300 * np.arange(n) / 16000)
    cfg = VADLabelConfig(min_speech_frames=8, min_silence_frames=16, hangover_frames=0)
    # 0.5 s of tone, 40 ms gap, 0.5 s of tone, 1 s later a 10 ms blip
    sig = x * (tone(1600, 9600) | tone(10240, 18240) | tone(28000, 28160))
    lab = labels_from_clean(sig, CFG, cfg)
    t = np.arange(len(lab)) * 100
    assert lab[(t >= 2000) & (t <= 18000)].all()      # the 40 ms gap is bridged
    assert not lab[t >= 20000].any()                  # the 10 ms blip is dropped
    assert not lab[t < 1200].any()
    hang = labels_from_clean(sig, CFG, VADLabelConfig(min_speech_frames=8, min_silence_frames=16,
                                                      hangover_frames=5))
    last = np.flatnonzero(lab)[-1]
    assert np.flatnonzero(hang)[-1] == last + 5


def test_config_sections():
    stft_cfg, vad_cfg = configs_from_dict({"stft": {"hop_length": 160}, "model": {"x": 1},
                                           "vad_labels": {"threshold_db": -30}})
    assert stft_cfg.hop_length == 160 and vad_cfg.threshold_db == -30
    stft_cfg, vad_cfg = configs_from_dict({"hangover_frames": 7})
    assert stft_cfg == STFTConfig() and vad_cfg.hangover_frames == 7
    assert configs_from_dict({"model": {}})[1] == VADLabelConfig()
    with pytest.raises(ValueError, match="threshold"):
        VADLabelConfig.from_dict({"threshhold_db": -30})
    with pytest.raises(ValueError, match="hangover_frames"):
        VADLabelConfig.from_dict({"hangover_frames": -1})


def test_probs_to_segments_merge_and_drop():
    f = CFG.hop_length / CFG.sample_rate  # 6.25 ms
    p = np.zeros(1300)
    p[160:320] = 0.9    # 1.0 s .. 2.0 s
    p[330:480] = 0.8    # after a 10-frame (62.5 ms) gap: merged with the previous run
    p[600:610] = 0.9    # 62.5 ms of speech: dropped (min_speech 0.25 s)
    p[800:1120] = 0.7   # after a long gap: its own segment
    p[1000] = 0.3       # a one-frame dip inside it: bridged
    segs = probs_to_segments(p, CFG, threshold=0.5, min_speech=0.25, min_silence=0.1)
    np.testing.assert_allclose(np.array(segs), [[159.5 * f, 479.5 * f], [799.5 * f, 1119.5 * f]])
    assert len(probs_to_segments(p, CFG, min_silence=0.05)) == 3   # the 62.5 ms gap now splits
    assert len(probs_to_segments(p, CFG, min_speech=0.05)) == 3    # the blip is kept
    np.testing.assert_allclose(probs_to_segments(np.ones(5), CFG, min_speech=0.0), [[0.0, 4 * f]])
    np.testing.assert_allclose(probs_to_segments(np.ones(5), CFG, min_speech=0.0, num_samples=450),
                               [[0.0, 4.5 * f]])
    assert probs_to_segments([], CFG) == []


def test_segment_and_label_boundaries_are_the_documented_ones():
    """At exactly the threshold a frame is speech; a gap of exactly min_silence is kept (only shorter
    ones are bridged); a run of exactly min_speech is kept (only shorter ones dropped); the same
    strict rules in the labels (min_silence_frames, min_speech_frames)."""
    from csmvanet.data.vad import _drop_short, _fill_gaps

    f = CFG.hop_length / CFG.sample_rate                 # 6.25 ms: 16 frames = 0.1 s, 40 frames = 0.25 s
    p = np.zeros(300)
    p[10:90] = 0.5                                       # exactly at the threshold
    assert len(probs_to_segments(p, CFG, threshold=0.5)) == 1
    for gap, n in ((16, 2), (15, 1)):                    # 0.1 s is not shorter than min_silence 0.1 s
        p = np.zeros(300)
        p[10:90] = p[90 + gap:200] = 0.9
        assert len(probs_to_segments(p, CFG, min_silence=0.1)) == n, gap
    for run, n in ((40, 1), (39, 0)):                    # 0.25 s is not shorter than min_speech 0.25 s
        p = np.zeros(300)
        p[10:10 + run] = 0.9
        assert len(probs_to_segments(p, CFG, min_speech=0.25)) == n, run
    p = np.r_[np.zeros(10), np.full(40, 0.9), np.zeros(10)]
    np.testing.assert_allclose(probs_to_segments(p, CFG, min_speech=0.25), [[9.5 * f, 49.5 * f]])
    mask = np.zeros(100, bool)
    mask[0:20] = mask[36:50] = mask[65:80] = True        # gaps of 16 and 15 frames
    filled = _fill_gaps(mask, 16)
    assert not filled[20:36].any() and filled[50:65].all()
    mask = np.zeros(40, bool)
    mask[2:10] = mask[20:27] = True                      # runs of 8 and 7 frames
    kept = _drop_short(mask, 8)
    assert kept[2:10].all() and not kept[20:27].any()


def test_segments_and_rttm_files(tmp_path):
    segs = {"utt_b": [(0.5, 1.25)], "utt_a": [(0.0, 0.734), (2.0, 3.5)]}
    write_segments(tmp_path / "segments", segs)
    assert (tmp_path / "segments").read_text().splitlines() == [
        "utt_a-0000000-0000073 utt_a 0.00 0.73",
        "utt_a-0000200-0000350 utt_a 2.00 3.50",
        "utt_b-0000050-0000125 utt_b 0.50 1.25",
    ]
    write_rttm(tmp_path / "x.rttm", segs)
    assert (tmp_path / "x.rttm").read_text().splitlines() == [
        "SPEAKER utt_a 1 0.000 0.734 <NA> <NA> speech <NA> <NA>",
        "SPEAKER utt_a 1 2.000 1.500 <NA> <NA> speech <NA> <NA>",
        "SPEAKER utt_b 1 0.500 0.750 <NA> <NA> speech <NA> <NA>",
    ]
    with pytest.raises(ValueError, match="bad utt"):
        write_segments(tmp_path / "s2", {"bad utt": [(0, 1)]})
    assert not (tmp_path / "s2").exists()


def test_cli_writes_int32_ark_scp(tmp_path, capsys):
    import kaldiio

    lengths = {"u1": 16000, "u2": 23456, "u3": 18001}
    lines = []
    for i, (key, n) in enumerate(lengths.items()):
        wave, _ = synthetic.speech_like(i, n / 16000)
        write_audio(tmp_path / f"{key}.wav", wave, 16000)
        lines.append(f"{key} {tmp_path / key}.wav\n")
    (tmp_path / "bad.wav").write_text("not audio")
    write_audio(tmp_path / "low.wav", np.zeros(8000, dtype=np.float32), 8000)
    lines += [f"bad {tmp_path}/bad.wav\n", f"low {tmp_path}/low.wav\n"]
    (tmp_path / "spk1.scp").write_text("".join(lines))
    (tmp_path / "conf.yaml").write_text("stft:\n  hop_length: 100\nmodel: {}\nvad_labels:\n  hangover_frames: 2\n")
    out = tmp_path / "data"
    rc = vad_cli.main(["--scp", str(tmp_path / "spk1.scp"), "--out_dir", str(out), "--config",
                       str(tmp_path / "conf.yaml"), "--nj", "2", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "bad" in err and "bad.wav" in err and "low" in err and "8000" in err
    got = dict(kaldiio.load_scp(str(out / "vad_labels.scp")))
    assert sorted(got) == ["u1", "u2", "u3"]
    for key, n in lengths.items():
        lab = got[key]
        assert lab.dtype == np.int32 and lab.shape == (n // 100 + 1,)
        assert set(np.unique(lab)) <= {0, 1} and lab.any()
    scp_text = (out / "vad_labels.scp").read_text()
    assert str(out / "vad_labels.ark") in scp_text and ".tmp" not in scp_text
    assert sorted(p.name for p in out.iterdir()) == ["frame_shift", "vad_labels.ark", "vad_labels.scp"]
    assert (out / "frame_shift").read_text() == "0.00625\n"  # hop 100 at 16 kHz
    # a clean run exits 0 and rewrites both consistently
    (tmp_path / "good.scp").write_text("".join(lines[:2]))
    assert vad_cli.main(["--scp", str(tmp_path / "good.scp"), "--out_dir", str(out), "--quiet"]) == 0
    assert sorted(dict(kaldiio.load_scp(str(out / "vad_labels.scp")))) == ["u1", "u2"]
    # frames from a training config's stft: section
    (tmp_path / "train.yaml").write_text("stft:\n  hop_length: 160\n  win_length: 320\n  n_fft: 320\n")
    assert vad_cli.main(["--scp", str(tmp_path / "good.scp"), "--out_dir", str(out), "--config",
                         str(tmp_path / "conf.yaml"), "--stft_config", str(tmp_path / "train.yaml"), "--quiet"]) == 0
    assert dict(kaldiio.load_scp(str(out / "vad_labels.scp")))["u2"].shape == (23456 // 160 + 1,)
    assert (out / "frame_shift").read_text() == "0.01\n"  # hop 160 at 16 kHz


def test_resonator_matches_direct_recursion():
    x = np.random.default_rng(0).standard_normal(700)
    f0, bw, sr = 1200.0, 150.0, 16000
    r, th = np.exp(-np.pi * bw / sr), 2 * np.pi * f0 / sr
    b, c = 2 * r * np.cos(th), -r * r
    y, y1, y2 = np.zeros_like(x), 0.0, 0.0
    for i, v in enumerate(x):
        y[i] = (1 - b - c) * v + b * y1 + c * y2
        y1, y2 = y[i], y1
    np.testing.assert_allclose(synthetic.resonator(x, f0, bw, sr), y, atol=1e-10)


def test_synthetic_is_deterministic_and_noises_differ():
    a = synthetic.speech_like(5, 1.5)
    b = synthetic.speech_like(5, 1.5)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], synthetic.speech_like(6, 1.5)[0])
    spectra = {}
    for kind in synthetic.NOISE_KINDS:
        x = synthetic.noise(kind, 3, 2.0)
        assert x.shape == (32000,) and np.all(np.isfinite(x)) and np.max(np.abs(x)) <= 0.99
        assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(10 ** (-26 / 20), rel=0.05)
        spectra[kind] = np.abs(np.fft.rfft(x))
    low = {k: s[:800].sum() / s.sum() for k, s in spectra.items()}  # share below 400 Hz
    assert low["car"] > 0.5 and low["brown"] > 0.5 and low["white"] < 0.1
    with pytest.raises(ValueError, match="unknown noise kind"):
        synthetic.noise("rain", 0, 1.0)


def test_interrupted_write_keeps_the_old_pair(tmp_path):
    import kaldiio

    from csmvanet.data.vad import write_label_ark

    write_label_ark(tmp_path, [("a", np.array([0, 1, 1])), ("b", np.array([1, 0]))])

    def broken():
        yield "a", np.array([1, 1, 1, 1])
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_label_ark(tmp_path, broken())
    got = dict(kaldiio.load_scp(str(tmp_path / "vad_labels.scp")))
    assert got["a"].tolist() == [0, 1, 1] and got["b"].tolist() == [1, 0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vad_labels.ark", "vad_labels.scp"]


def test_noise_floor_relative_threshold_on_a_noisy_recording():
    """A recording over a noise floor 30 dB below its speech: the -40 dB-below-max rule calls the noise
    speech; with noise_quantile the floor, measured on the frames above floor_db, is left silence."""
    accs = {None: [], 0.05: []}
    for seed in range(6):
        rng = np.random.default_rng(2000 + seed)
        wave, active = synthetic.speech_like(rng, 4.0, floor_db=None)
        wave = wave.astype(np.float64)
        level = np.sqrt(np.mean(wave[active] ** 2))
        noisy = wave + level * 10 ** (-30 / 20) * rng.standard_normal(len(wave))
        truth = _truth_frames(active)
        for q in accs:
            lab = labels_from_clean(noisy, CFG, VADLabelConfig(noise_quantile=q, noise_margin_db=6.0))
            accs[q].append((np.mean(lab[truth == 0] == 0), np.mean(lab[truth == 1] == 1)))
    old, new = np.array(accs[None]), np.array(accs[0.05])
    assert old[:, 0].mean() < 0.5                        # most silence frames called speech
    assert new[:, 0].mean() > 0.8 and new[:, 1].mean() > 0.9
    # digital silence around the clip is left out of the floor estimate: same labels with it padded on
    pad = np.concatenate([np.zeros(16000), noisy, np.zeros(16000)])
    lab_pad = labels_from_clean(pad, CFG, VADLabelConfig(noise_quantile=0.05))[160:160 + CFG.num_frames(len(noisy))]
    lab = labels_from_clean(noisy, CFG, VADLabelConfig(noise_quantile=0.05))
    assert np.mean(lab_pad == lab) > 0.97
    with pytest.raises(ValueError, match="noise_quantile"):
        VADLabelConfig.from_dict({"noise_quantile": 1.5})
