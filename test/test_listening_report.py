"""Listening reports without a browser: report.html of csmvanet-score, csmvanet-enhance --report and
--residual_dir, and the "speech removed?" detector. The pages in a real browser: test_report_browser.py."""
from __future__ import annotations

import re
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from csmvanet.audio.stft import STFTConfig
from csmvanet.audio.synthetic import speech_like
from csmvanet.reports.enhance_page import removed_stretches, write_enhance_report

FS = 16000
CFG = STFTConfig()   # hop 100 at 16 kHz: 6.25 ms frames


def _speech(seconds: float, seed: int = 0) -> np.ndarray:
    return speech_like(seed, seconds=seconds, sr=FS, floor_db=None)[0].astype(np.float32)


def _frames(seconds: float) -> int:
    return int(seconds * FS) // CFG.hop_length + 1


def suppressed(seconds=4.0, gap=(1.5, 2.1)):
    """Input: speech + a little noise; output: the input at -6 dB (noise reduction removes 75 %),
    except ``gap`` where it is at -30 dB (speech removed)."""
    rng = np.random.default_rng(1)
    x = _speech(seconds) + 0.003 * rng.standard_normal(int(seconds * FS)).astype(np.float32)
    y = 0.5 * x
    a, b = int(gap[0] * FS), int(gap[1] * FS)
    y[a:b] = 0.03 * x[a:b]
    return x, y


def test_removed_stretches_flag_speech_the_output_removed_and_nothing_else():
    x, y = suppressed()
    vad = np.ones(_frames(4.0))
    found = removed_stretches(x[:, None], y[:, None], FS, vad, CFG)
    assert len(found) == 1, found
    s = found[0]
    assert abs(s.start - 1.5) < 0.06 and abs(s.end - 2.1) < 0.06, s
    assert s.removed > 0.99 and s.vad == pytest.approx(1.0)
    # the VAD says no speech there: nothing to flag
    vad[int(1.3 * FS / CFG.hop_length):int(2.3 * FS / CFG.hop_length)] = 0.2
    assert removed_stretches(x[:, None], y[:, None], FS, vad, CFG) == []
    # the threshold is tunable: at 0.7 the -6 dB (75 % removed) noise reduction everywhere is flagged
    wide = removed_stretches(x[:, None], y[:, None], FS, np.ones(_frames(4.0)), CFG, removed_share=0.7)
    assert sum(s.end - s.start for s in wide) > 3.0
    # a short dip (under 0.2 s) is not listed
    x2, y2 = suppressed(gap=(1.5, 1.6))
    assert removed_stretches(x2[:, None], y2[:, None], FS, np.ones(_frames(4.0)), CFG) == []


def test_enhance_report_lists_the_removed_speech_with_times_and_writes_residuals(tmp_path):
    x, y = suppressed()
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    sf.write(tmp_path / "in" / "talk.wav", x, FS, subtype="FLOAT")
    sf.write(tmp_path / "out" / "talk.wav", y, FS, subtype="FLOAT")
    vad_dir = tmp_path / "vad"
    vad_dir.mkdir()
    kaldiio.save_ark(str(vad_dir / "vad_prob.ark"), {"talk": np.ones(_frames(4.0), np.float32)},
                     scp=str(vad_dir / "vad_prob.scp"))
    (vad_dir / "segments").write_text("talk-0000000-0000400 talk 0.00 4.00\n")
    problems = write_enhance_report(tmp_path / "rep", [("talk", str(tmp_path / "out" / "talk.wav"))],
                                    {"talk": str(tmp_path / "in" / "talk.wav")}, settings=[("model", "m")],
                                    stft_cfg=CFG, vad_dir=vad_dir, vad_threshold=0.5,
                                    item_seconds={"talk": 2.0}, total_rtf=0.5, residual_dir=tmp_path / "res",
                                    output_dir=tmp_path / "out", residual_subtype="FLOAT", say=lambda s: None)
    assert problems == []
    res, sr = sf.read(tmp_path / "res" / "talk.wav")
    assert sr == FS and np.allclose(res, x - y, atol=1e-6)
    index = (tmp_path / "rep" / "index.html").read_text()
    assert 'href="0000_talk.html"' in index and "0.500" in index   # the run's real-time factor
    page = (tmp_path / "rep" / "0000_talk.html").read_text()
    rows = re.findall(r"<tr><td>(\d:\d\d\.\d)</td><td>(\d:\d\d\.\d)</td>", page.split("Speech removed?")[1])
    assert rows[0] == ("0:01.5", "0:02.1"), rows
    assert "real-time factor 0.500" in page   # 2 s for 4 s of audio
    for name in ("input", "output", "residual"):
        clip, _ = sf.read(tmp_path / "rep" / "files" / "0000_talk" / f"{name}.flac")
        assert len(clip) == len(x)
    played, _ = sf.read(tmp_path / "rep" / "files" / "0000_talk" / "residual.flac")
    assert np.allclose(played, x - y, atol=1e-4)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    from test_score_cli import _args, make_data

    from csmvanet.bin.score import main

    root = make_data(tmp_path_factory.mktemp("listen"), n=8, seconds=1.0)
    d = root / "data"
    opts = ["--utt2noise", str(d / "utt2noise"), "--utt2snr", str(d / "utt2snr"),
            "--config_file", str(root / "exp" / "config.yaml")]
    assert main(_args(root, root / "plain", *opts)) == 0
    assert main(_args(root, root / "out", *opts, "--html_report", "true")) == 0
    return root


def test_score_html_report_holds_tables_plots_and_the_sampled_utterances(scored):
    assert not (scored / "plain" / "report.html").exists()   # only on request
    out = scored / "out"
    html = (out / "report.html").read_text()
    assert "<h1>Enhanced: listening report</h1>" in html
    assert ">Table I layout" in html and ">Table II layout" in html and ">VAD<" in html
    assert 'src="listen/by_snr.png"' in html and 'src="listen/by_noise.png"' in html
    for label in ("worst: ", "median: ", "best: ", "SNR 0 dB: ", "SNR 10 dB: "):
        assert f">{label}utt" in html, label
    srcs = re.findall(r'src="([^"]+)"', html)
    assert srcs and all(not s.startswith(("/", "http")) and (out / s).is_file() for s in srcs)
    noisy = dict(line.split() for line in (scored / "data" / "wav.scp").read_text().splitlines())
    enh = dict(line.split() for line in (scored / "exp" / "enh" / "enhanced.scp").read_text().splitlines())
    clips = sorted(out.glob("listen/*_utt*/residual.flac"))
    assert len(clips) >= 5
    for clip in clips:
        utt = clip.parent.name.split("_", 1)[1]
        expect = sf.read(noisy[utt])[0] - sf.read(enh[utt])[0]
        assert np.allclose(sf.read(clip)[0], expect, atol=1e-4), utt
        assert f'aria-label="residual: noisy - enhanced (what was removed): {utt}"' in html


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from test_enhance import make_exp, tiny_cfg

    return make_exp(tmp_path_factory.mktemp("exp") / "tiny", tiny_cfg())


def enhance_inputs(folder: Path) -> Path:
    """A mono 16 kHz WAV and a stereo 22.05 kHz FLAC of noisy speech."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    x = _speech(2.5) + 0.05 * rng.standard_normal(int(2.5 * FS)).astype(np.float32)
    sf.write(folder / "one.wav", x, FS)
    from csmvanet.audio.io import resample

    y = resample(x, FS, 22050)
    sf.write(folder / "two.flac", np.stack([y, 0.5 * y], 1), 22050)
    return folder


def test_enhance_cli_report_and_residual_dir(tmp_path, tiny_model, capsys):
    from csmvanet.bin.enhance import main

    inp = enhance_inputs(tmp_path / "in")
    out, rep, res = tmp_path / "out", tmp_path / "rep", tmp_path / "res"
    rc = main([str(inp), "--model", str(tiny_model), "--output_dir", str(out), "--report", str(rep),
               "--residual_dir", str(res), "--no_progress", "--num_threads", "1"])
    assert rc == 0
    assert f"wrote {rep}/index.html" in capsys.readouterr().err
    for name in ("one.wav", "two.flac"):
        x, sr = sf.read(inp / name, always_2d=True)
        y, _ = sf.read(out / name, always_2d=True)
        r, sr_r = sf.read(res / name, always_2d=True)
        assert sr_r == sr and r.shape == x.shape
        assert np.allclose(r, x - y, atol=2 / 32768), name   # 16-bit outputs
    assert (rep / "vad" / "vad_prob.scp").is_file() and (rep / "vad" / "segments").is_file()
    index = (rep / "index.html").read_text()
    for page in ("0000_one.html", "0001_two.html"):
        assert f'href="{page}"' in index
        html = (rep / page).read_text()
        assert ">Speech removed?</h2>" in html and ">Settings</h2>" in html and "real-time factor" in html
    # the residual folder must not be the output folder (it would overwrite the outputs)
    rc = main([str(inp), "--model", str(tiny_model), "--output_dir", str(out), "--residual_dir", str(out),
               "--no_progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"csmvanet-enhance: error: --residual_dir {out}: is the --output_dir; give "
                               "another folder"]
