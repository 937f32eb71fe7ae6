"""Inference (csmvanet.infer.enhancer, csmvanet-enhance, csmvanet-pack, steps/decode.sh).

Bounded memory on long files, seamless chunks, bad inputs in a batch, output length / rate / peak,
packed models with checksum, the Python API and the recipe decode stage.

The model is a tiny CSM-VANet (random weights, fixed seed) at 8 kHz with a 256-point STFT, hop 128:
the cheapest configuration that still runs every part of the network (encoder, one TF-Conformer
block, decoder, VAD decoder), so that a 300 s file and a 30 s whole-file pass fit in a unit test.
The chunking code only sees the hop and the sample rate, which this config changes on purpose.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from csmvanet.audio.io import resample
from csmvanet.audio.stft import STFTConfig
from csmvanet.audio.stream_dsp import ChunkStitcher, soft_limit
from csmvanet.audio.synthetic import noise, speech_like
from csmvanet.base.errors import EnhanceError, ModelFileError
from csmvanet.experiment.checkpoint import save_checkpoint
from csmvanet.experiment.model_files import load_model_files
from csmvanet.experiment.packing import pack_model
from csmvanet.infer.enhancer import Enhancer
from csmvanet.metrics import si_sdr
from csmvanet.nets import build_model

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
SR = 8000


def tiny_cfg(channels=(8, 8)) -> dict:
    return {"stft": {"sample_rate": SR, "n_fft": 256, "win_length": 256, "hop_length": 128, "compress": 0.3},
            "model": {"channels": list(channels), "num_conformers": 1, "heads": 1, "ff_mult": 1, "conv_kernel": 3,
                      "dropout": 0.0, "msgc": False}}


def make_exp(path: Path, cfg: dict, seed: int = 0, name: str = "valid.loss.ave.pth") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build_model(cfg)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    save_checkpoint(model.state_dict(), path / name)
    return path


@pytest.fixture(scope="module")
def exp_dir(tmp_path_factory) -> Path:
    return make_exp(tmp_path_factory.mktemp("exp") / "tiny", tiny_cfg())


@pytest.fixture(scope="module")
def enhancer(exp_dir) -> Enhancer:
    torch.set_num_threads(1)
    return Enhancer.from_pretrained(exp_dir)


def noisy_speech(seconds: float, sr: int = SR, seed: int = 1) -> np.ndarray:
    s, _ = speech_like(seed, seconds=seconds, sr=sr)
    n = noise("pink", seed + 1, seconds=seconds, sr=sr)
    return (s + n * np.std(s) / np.std(n) * 0.5).astype(np.float32)


# ------------------------------------------------------------------------------------- stitching


def _pointwise(x):
    return np.tanh(3 * x) * 0.5 + x * x


@pytest.mark.parametrize("n,seg,ov,channels", [
    (20000, 4000, 1000, 1), (20000, 4000, 0, 1), (4000 * 3 + 1, 4000, 1000, 2), (3999, 4000, 1000, 1),
    (50000, 2000, 1000, 3), (24001, 6000, 1000, 1),
    (19550, 4000, 1000, 1)])   # the last full segment is less than one overlap before the end
def test_stitching_is_exact_for_a_local_model(n, seg, ov, channels):
    """With a model whose output at a sample depends only on that sample, chunked = whole: the
    cross-fade weights sum to one and chunks (and their VAD frames) sit on the global hop grid."""
    hop = 100
    x = np.random.default_rng(n).standard_normal((n, channels)).astype(np.float32)

    def run(chunk):
        frames = np.arange(len(chunk) // hop + 1) * hop
        return _pointwise(chunk), chunk[np.minimum(frames, len(chunk) - 1)] ** 2

    st = ChunkStitcher(run, seg, ov, hop, channels)
    outs, vads = [], []
    for i in range(0, n, 777):            # odd block size: chunking must not depend on it
        y, v = st.push(x[i:i + 777])
        outs.append(y)
        vads.append(v)
    y, v = st.finish()
    y, v = np.concatenate(outs + [y]), np.concatenate(vads + [v])
    assert y.shape == (n, channels) and v.shape == (n // hop + 1, channels)
    np.testing.assert_allclose(y, _pointwise(x), atol=1e-5)
    frames = np.minimum(np.arange(n // hop + 1) * hop, n - 1)
    np.testing.assert_allclose(v[:-1], x[frames[:-1]] ** 2, atol=1e-5)


class PointwiseNet(torch.nn.Module):
    """Stands in for CSM-VANet where exactness is the point: wave = f(x) sample by sample.

    It has the model's inference interface (analysis -> network -> synthesis, what the Enhancer
    calls) with the waveform itself as the "features"."""

    def __init__(self, stft_cfg):
        super().__init__()
        self.stft_cfg = stft_cfg
        self.w = torch.nn.Parameter(torch.tensor(1.0))

    def analysis(self, x):
        return x, torch.ones(x.shape[0])

    def network(self, x):
        frames = torch.arange(x.shape[1] // self.stft_cfg.hop_length + 1) * self.stft_cfg.hop_length
        return torch.tanh(3 * x) * 0.5 + x * x * self.w, x[:, frames.clamp(max=x.shape[1] - 1)]

    def synthesis(self, y, vad_logits, scale, n):
        return {"wave": y[:, :n], "vad": torch.sigmoid(vad_logits)}

    def forward(self, x):
        return self.synthesis(*self.network(self.analysis(x)[0]), None, x.shape[1])


@pytest.mark.parametrize("sr", [8000, 16000, 44100])
def test_stream_resampling_equals_one_shot(sr):
    """Streaming soxr in and out equals audio.resample on the whole signal (and lengths are kept)."""
    cfg = STFTConfig(n_fft=256, win_length=256, hop_length=128, sample_rate=SR)
    enh = Enhancer(PointwiseNet(cfg), {}, segment_seconds=2.0, overlap_seconds=0.5)
    x = (np.random.default_rng(sr).standard_normal(int(sr * 7.3)) * 0.2).astype(np.float32)
    y, vad = enh.enhance(x, sr, limit=False)
    xm = resample(x, sr, SR)
    ref = resample(_pointwise(xm), SR, sr)
    assert y.shape == x.shape
    n = min(len(ref), len(y))
    np.testing.assert_allclose(y[:n], ref[:n], atol=2e-4)
    assert vad.shape == (len(xm) // 128 + 1,)


# --------------------------------------------------------------------- chunked vs whole file


def test_chunked_output_matches_whole_file(tmp_path):
    """30 s through the default chunking vs one whole-file pass of the same tiny CSM-VANet.

    The difference left is the model's dependence on its context (InstanceNorm statistics over the
    whole input, attention span), not the seams: it is spread evenly, the seams carry no more of it.
    """
    cfg = tiny_cfg(channels=(8, 8, 8, 8))     # 4 levels: the whole-file attention stays small
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    enh = Enhancer(model, cfg)
    assert enh.segment_seconds >= 2.0 and len(range(0, 30 * SR, enh.segment - enh.overlap)) > 3
    t = np.arange(30 * SR) / SR
    x = (noise("white", 3, seconds=30, sr=SR) + 0.05 * np.sin(2 * np.pi * 220 * t)
         + 0.03 * np.sin(2 * np.pi * 620 * t)).astype(np.float32)
    torch.set_num_threads(1)
    with torch.inference_mode():
        out = model(torch.from_numpy(x)[None])
    whole, whole_vad = out["wave"][0].numpy(), out["vad"][0].numpy()
    chunked, vad = enh.enhance(x, SR, limit=False)
    assert si_sdr(whole, chunked) >= 30.0
    assert vad.shape == whole_vad.shape and np.max(np.abs(vad - whole_vad)) < 0.02
    # seams: the error within 50 ms of each seam is not larger than elsewhere
    err = (chunked - whole * np.dot(chunked, whole) / np.dot(whole, whole)) ** 2
    step = enh.segment - enh.overlap
    seams = np.zeros(len(x), bool)
    for s in range(step, len(x) - enh.segment, step):     # overlap regions [s, s + overlap)
        for edge in (s, s + enh.overlap):
            seams[max(0, edge - SR // 20):edge + SR // 20] = True
    assert err[seams].mean() < 2.0 * err[~seams].mean()


# ------------------------------------------------------------------------------------- memory

_MEM_CHILD = r"""
import json, resource, sys, torch
torch.set_num_threads(1)
from csmvanet.infer.enhancer import Enhancer
enh = Enhancer.from_pretrained(sys.argv[1])
with open("/proc/self/status") as f:
    rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0] / 1024
res = enh.enhance_file(sys.argv[2], sys.argv[3])
print(json.dumps({"loaded": rss, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "n": res.num_samples}))
"""


def _write_noisy(path: Path, seconds: int, sr: int) -> None:
    piece = noisy_speech(10, sr=sr)
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        for _ in range(seconds // 10):
            f.write(piece)


def test_memory_does_not_grow_with_file_length(exp_dir, tmp_path):
    """Peak RSS of enhancing a 90 s file vs a 20 s file (48 kHz input, each in a fresh process).

    At 48 kHz, holding the 90 s file once as float32 costs 13 MiB more than the 20 s one (and an
    implementation that is not streamed holds the input, the resampled input and the output);
    streaming keeps the difference to allocator noise. Large blocks are mmap-ed by malloc here (as
    torch tensors mostly are anyway), so that RSS follows live memory rather than how glibc happens
    to cache freed chunks (which varies by tens of MiB from run to run).
    """
    import json

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "131072",
           "MALLOC_TRIM_THRESHOLD_": "131072"}
    peaks = {}
    for sec in (20, 90):
        wav = tmp_path / f"in{sec}.wav"
        _write_noisy(wav, sec, 48000)
        proc = subprocess.run([PY, "-c", _MEM_CHILD, str(exp_dir), str(wav), str(tmp_path / f"out{sec}.wav")],
                              capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        peaks[sec] = json.loads(proc.stdout.strip().splitlines()[-1])
        assert peaks[sec]["n"] == sec * 48000 == sf.info(str(tmp_path / f"out{sec}.wav")).frames
    short, long = peaks[20]["peak"], peaks[90]["peak"]
    assert long / short < 1.5, peaks
    assert long - short < 6.0, peaks       # MiB


# ------------------------------------------------------------------------------ CLI bad inputs


def _bad_and_good_inputs(d: Path) -> tuple[dict, dict]:
    """-> ({name: path} bad, {name: (path, frames, sr, channels)} good)."""
    rng = np.random.default_rng(0)
    d.mkdir(parents=True, exist_ok=True)
    bad, good = {}, {}

    def w(name, x, sr, **kw):
        sf.write(str(d / name), x, sr, **kw)
        return d / name

    (d / "empty.wav").write_bytes(b"")
    bad["empty"] = d / "empty.wav"
    bad["zero_samples"] = w("zero_samples.wav", np.zeros(0, np.float32), 16000)
    bad["one_frame_short"] = w("short.wav", np.zeros(100, np.float32), 16000)    # 100 < 256 at 8 kHz
    x = (rng.standard_normal(16000) * 0.1).astype(np.float32)
    x[5000] = np.nan
    bad["nan"] = w("nan.wav", x, 16000, subtype="FLOAT")
    x[5000] = np.inf
    bad["inf"] = w("inf.wav", x, 16000, subtype="FLOAT")
    (d / "text.wav").write_text("this is a text file, not audio\n" * 20)
    bad["text"] = d / "text.wav"
    ok = w("ok16k.wav", (rng.standard_normal(3 * 16000) * 0.1).astype(np.float32), 16000)
    (d / "truncated.wav").write_bytes(ok.read_bytes()[:30])
    bad["truncated_header"] = d / "truncated.wav"
    (d / "clip.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + bytes(rng.integers(0, 256, 3000,
                                                                                                   dtype=np.uint8)))
    bad["unsupported_format"] = d / "clip.m4a"
    bad["unreadable_path"] = d / "does_not_exist.wav"
    good["ok16k"] = (ok, 3 * 16000, 16000, 1)
    good["stereo"] = (w("stereo.wav", (rng.standard_normal((20000, 2)) * 0.1).astype(np.float32), 16000),
                      20000, 16000, 2)
    good["8k"] = (w("rate8k.wav", (rng.standard_normal(8000 * 3) * 0.1).astype(np.float32), 8000), 24000, 8000, 1)
    good["48k"] = (w("rate48k.flac", (rng.standard_normal(48000 * 2 + 7) * 0.1).astype(np.float32), 48000),
                   96007, 48000, 1)
    return bad, good


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_cli_batch_with_bad_inputs(exp_dir, tmp_path, backend):
    if backend == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="backend onnxruntime: pip install 'csmvanet[onnx]'")
    bad, good = _bad_and_good_inputs(tmp_path / "in")
    out = tmp_path / "out"
    args = [str(p) for p in bad.values()] + [str(g[0]) for g in good.values()]
    proc = subprocess.run([PY, "-m", "csmvanet.bin.enhance", "--model", str(exp_dir), *args, "--output_dir", str(out),
                           "--out_scp", str(tmp_path / "enh.scp"), "--vad_dir", str(tmp_path / "vad"),
                           "--num_threads", "1", "--no_progress", "--backend", backend],
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR ")]
    assert len(errors) == len(bad), proc.stderr
    for name, path in bad.items():
        assert sum(str(path) in line for line in errors) == 1, (name, proc.stderr)
        assert not (out / path.name).exists() and not (out / path.with_suffix(".wav").name).exists()
    hints = {"empty": "empty", "zero_samples": "no samples", "one_frame_short": "too short", "nan": "NaN",
             "inf": "Inf", "text": "cannot read", "truncated_header": "cannot read",
             "unsupported_format": "cannot read", "unreadable_path": "no such file"}
    for name, hint in hints.items():
        assert any(str(bad[name]) in line and hint in line for line in errors), (name, errors)
    # handled inputs: same length, rate, channels; no temporary files left behind
    for name, (path, frames, sr, ch) in good.items():
        info = sf.info(str(out / path.name))
        assert (info.frames, info.samplerate, info.channels) == (frames, sr, ch), name
    assert sorted(p.name for p in out.iterdir()) == sorted(g[0].name for g in good.values())
    lines = (tmp_path / "enh.scp").read_text().split("\n")
    assert sorted(line.split()[0] for line in lines if line) == sorted(g[0].stem for g in good.values())
    import kaldiio

    vad = kaldiio.load_scp(str(tmp_path / "vad" / "vad_prob.scp"))
    assert set(vad) == {g[0].stem for g in good.values()}
    rate8k = vad["rate8k"]
    assert rate8k.dtype == np.float32 and rate8k.shape == (24000 // 128 + 1,)
    assert (tmp_path / "vad" / "segments").exists() and (tmp_path / "vad" / "vad.rttm").exists()


def test_cli_folders_mirror_paths_and_channels_error(exp_dir, tmp_path):
    src = tmp_path / "in"
    (src / "a" / "b").mkdir(parents=True)
    rng = np.random.default_rng(1)
    sf.write(str(src / "x.flac"), (rng.standard_normal(8000) * 0.1).astype(np.float32), 8000)
    sf.write(str(src / "a" / "b" / "y.wav"), (rng.standard_normal((8000, 2)) * 0.1).astype(np.float32), 8000)
    (src / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    proc = subprocess.run([PY, "-m", "csmvanet.bin.enhance", "--model", str(exp_dir), str(src), "--output_dir",
                           str(out), "--channels", "error", "--no_progress"], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (out / "x.flac").is_file() and sf.info(str(out / "x.flac")).format == "FLAC"
    assert not (out / "a" / "b" / "y.wav").exists()
    assert any("y.wav" in line and "channels" in line for line in proc.stderr.splitlines() if line.startswith("ERROR"))


# ----------------------------------------------------------------------- length, rate, peaks, API


def test_api_length_rate_channels_and_vad(enhancer):
    from csmvanet import Enhancer as PublicEnhancer

    assert PublicEnhancer is Enhancer
    rng = np.random.default_rng(2)
    for sr, n in ((8000, 8000 * 6 + 13), (16000, 16000 * 2 + 1), (44100, 44100 + 5), (8000, 300)):
        x = (rng.standard_normal(n) * 0.1).astype(np.float32)
        y, vad = enhancer.enhance(x, sr)
        m = len(resample(x, sr, SR))
        assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
        assert vad.shape == (m // 128 + 1,) and (vad >= 0).all() and (vad <= 1).all()
    x2 = (rng.standard_normal((16000, 2)) * 0.1).astype(np.float32)
    y2, v2 = enhancer.enhance(x2, 16000)
    assert y2.shape == x2.shape and v2.shape == (8000 // 128 + 1, 2)
    ya, _ = enhancer.enhance(x2[:, 0], 16000)     # channel 0 alone gives the same as in the batch
    np.testing.assert_allclose(y2[:, 0], ya, atol=1e-5)
    ym, vm = enhancer.enhance(x2, 16000, channels="mix")
    assert ym.shape == (16000,) and vm.ndim == 1
    with pytest.raises(EnhanceError, match="multi-channel"):
        enhancer.enhance(x2, 16000, channels="error")
    with pytest.raises(EnhanceError, match="NaN or Inf"):
        enhancer.enhance(np.full(4000, np.nan, np.float32), 8000)
    with pytest.raises(EnhanceError, match="too short"):
        enhancer.enhance(np.zeros(100, np.float32), 8000)
    with pytest.raises(EnhanceError, match="no samples"):
        enhancer.enhance(np.zeros(0, np.float32), 8000)


def test_soft_limit_and_no_clipping(tmp_path):
    x = np.linspace(-3, 3, 100001).astype(np.float32)
    y = soft_limit(x)
    assert np.all(np.diff(y) >= 0) and np.abs(y).max() <= np.float32(0.99)   # monotonic, capped
    assert np.all(np.diff(y[np.abs(x) < 1.2]) > 0)                           # and strictly so near the knee
    inside = np.abs(x) <= 0.9
    np.testing.assert_array_equal(y[inside], x[inside])                 # untouched below the knee
    slope = np.diff(y) / np.diff(x)
    near = (np.abs(x[:-1]) > 0.9) & (np.abs(x[:-1]) < 0.901)            # just above the knee:
    np.testing.assert_allclose(slope[near], 1.0, atol=0.02)             # no kink (continuous slope)
    np.testing.assert_allclose(y[-1], 0.9 + 0.09 * np.tanh((3 - 0.9) / 0.09), rtol=1e-6)   # the documented curve
    # a model whose output exceeds full scale: the raw output goes above 1, the file written never clips
    enh = Enhancer(PointwiseNet(STFTConfig(n_fft=256, win_length=256, hop_length=128, sample_rate=SR)), {})
    rng = np.random.default_rng(3)
    loud = np.clip(rng.standard_normal(8000 * 3) * 0.6, -1, 1).astype(np.float32)
    raw, _ = enh.enhance(loud, 8000, limit=False)
    assert np.abs(raw).max() > 1.2
    src = tmp_path / "loud.wav"
    sf.write(str(src), loud, 8000, subtype="FLOAT")
    enh.enhance_file(src, tmp_path / "out.wav")
    out, sr = sf.read(str(tmp_path / "out.wav"), dtype="int16")
    assert sr == 8000 and len(out) == len(loud) and np.abs(out.astype(np.int32)).max() <= 32440   # 0.99 FS
    quiet = np.abs(raw) <= 0.9
    np.testing.assert_allclose(out[quiet] / 32768, raw[quiet], atol=1 / 32768)   # below the knee: as is


# ------------------------------------------------------------------------------ packed models


def test_pack_round_trip_and_checksum(exp_dir, tmp_path):
    packed = tmp_path / "model.pth"
    from csmvanet.bin.pack import main as pack_main

    assert pack_main(["--exp_dir", str(exp_dir), "--out", str(packed)]) == 0
    obj = torch.load(str(packed), map_location="cpu", weights_only=True)
    meta = obj["metadata"]
    for key in ("sample_rate", "git_hash", "csmvanet_version", "torch_version", "python_version", "created",
                "checkpoint", "training_data"):
        assert key in meta, key
    assert meta["sample_rate"] == SR and meta["checkpoint"] == "valid.loss.ave.pth"
    x = noisy_speech(3)
    a, va = Enhancer.from_pretrained(packed).enhance(x, SR)
    b, vb = Enhancer.from_pretrained(exp_dir).enhance(x, SR)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(va, vb)
    # one weight changed by one ulp-ish step: refused on load, naming the file
    name = sorted(obj["state_dict"])[3]
    obj["state_dict"][name] = obj["state_dict"][name] + 1e-3
    torch.save(obj, str(tmp_path / "tampered.pth"))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        Enhancer.from_pretrained(tmp_path / "tampered.pth")
    obj["state_dict"][name] = obj["state_dict"][name] - 1e-3
    obj["config"] = obj["config"].replace("heads: 1", "heads: 2")
    torch.save(obj, str(tmp_path / "tampered2.pth"))
    with pytest.raises(ModelFileError, match="tampered2.pth: checksum mismatch"):
        Enhancer.from_pretrained(tmp_path / "tampered2.pth")
    proc = subprocess.run([PY, "-m", "csmvanet.bin.enhance", "--model", str(tmp_path / "tampered.pth"),
                           str(tmp_path), "--output_dir", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2 and "checksum mismatch" in proc.stderr and "Traceback" not in proc.stderr


def test_model_dir_choice_and_errors(tmp_path):
    cfg = tiny_cfg()
    exp = make_exp(tmp_path / "e", cfg, seed=1, name="valid.loss.best.pth")
    with pytest.warns(UserWarning, match="valid.loss.best.pth"):
        _, _, meta = load_model_files(exp)
    assert meta["checkpoint"] == "valid.loss.best.pth"
    make_exp(exp, cfg, seed=2, name="valid.loss.ave.pth")
    assert load_model_files(exp)[2]["checkpoint"] == "valid.loss.ave.pth"
    _, _, meta = load_model_files(exp / "valid.loss.best.pth")        # a weights file inside the dir
    assert meta["checkpoint"] == "valid.loss.best.pth"
    (tmp_path / "noconf").mkdir()
    with pytest.raises(ModelFileError, match="no config.yaml"):
        Enhancer.from_pretrained(tmp_path / "noconf")
    (tmp_path / "junk.pth").write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="junk.pth"):
        Enhancer.from_pretrained(tmp_path / "junk.pth")
    other = dict(cfg, model=dict(cfg["model"], channels=[8, 16]))
    (exp / "config.yaml").write_text(yaml.safe_dump(other))
    with pytest.raises(ModelFileError, match="do not fit"):
        Enhancer.from_pretrained(exp)
    with pytest.raises(ModelFileError, match="do not fit"):
        pack_model(exp, tmp_path / "p.pth")
    assert not (tmp_path / "p.pth").exists()


def test_import_is_lazy():
    code = ("import sys, csmvanet; assert 'torch' not in sys.modules, 'torch imported'; "
            "from csmvanet import Enhancer; print(Enhancer.__name__)")
    proc = subprocess.run([PY, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "Enhancer", proc.stderr


# ------------------------------------------------------------------------------ recipe stage


def test_decode_stage_splits_and_merges(exp_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(4)
    lines = []
    for i in range(5):
        p = tmp_path / f"u{i}.wav"
        sf.write(str(p), (rng.standard_normal(8000 + 1000 * i) * 0.1).astype(np.float32), 8000)
        lines.append(f"utt{i} {p}\n")
    (data / "wav.scp").write_text("".join(lines))
    enh = tmp_path / "enh"
    env = {**os.environ, "PATH": f"{Path(PY).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(REPO / "egs/TEMPLATE/steps/decode.sh"), "--nj", "2", str(data), str(exp_dir),
                           str(enh)], cwd=REPO, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    scp = (enh / "enhanced.scp").read_text().splitlines()
    assert [line.split()[0] for line in scp] == [f"utt{i}" for i in range(5)]
    for i, line in enumerate(scp):
        assert sf.info(line.split()[1]).frames == 8000 + 1000 * i
    import kaldiio

    vad = kaldiio.load_scp(str(enh / "vad_prob.scp"))
    assert sorted(vad) == [f"utt{i}" for i in range(5)]
    assert vad["utt4"].shape == ((8000 + 4000) // 128 + 1,)
    assert (enh / "segments").exists() and (enh / "vad.rttm").exists()
    assert (enh / "log" / "enhance.1.log").exists() and (enh / "log" / "enhance.2.log").exists()
