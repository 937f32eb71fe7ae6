"""The causal CSM-VANet (model.causal) and its stream (csmvanet.infer.streaming): no look-ahead beyond
one STFT window, and any chunking of the input gives the samples and VAD of the whole-file model."""
import copy

import numpy as np
import pytest
import torch

from csmvanet.base.errors import ConfigError
from csmvanet.infer.streaming import CausalStream
from csmvanet.nets import build_model

SR = 16000


@pytest.fixture
def causal_config(tiny_config):
    cfg = copy.deepcopy(tiny_config)
    cfg["model"].update(causal=True, left_context=5, level_seconds=0.5)
    return cfg


@pytest.fixture
def causal(causal_config):
    torch.manual_seed(0)
    model = build_model(causal_config).eval()
    with torch.no_grad():                  # BatchNorm statistics that are not the identity
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    return model


def _signal(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)            # a level that changes: the running level matters
    return (0.3 * env * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


def _whole(model, x):
    with torch.no_grad():
        out = model(torch.from_numpy(x.T if x.ndim == 2 else x[None]).float())
    wave, vad = out["wave"].numpy(), out["vad"].numpy()
    return (wave.T, vad.T) if x.ndim == 2 else (wave[0], vad[0])


def _streamed(model, x, sizes):
    stream = CausalStream(model, 1 if x.ndim == 1 else x.shape[1])
    ys, vs, i = [], [], 0
    for n in sizes:
        y, v = stream.process(x[i:i + n])
        i += n
        ys.append(y)
        vs.append(v)
        if i >= len(x):
            break
    assert i >= len(x)
    y, v = stream.flush()
    return np.concatenate(ys + [y]), np.concatenate(vs + [v]), stream


def test_the_causal_model_does_not_look_ahead_more_than_one_window(causal):
    x = _signal(6000)
    y, v = _whole(causal, x)
    x2 = x.copy()
    x2[4000:] += np.random.default_rng(1).standard_normal(2000).astype(np.float32)
    y2, v2 = _whole(causal, x2)
    changed = np.nonzero(np.abs(y - y2) > 0)[0]
    assert changed[0] >= 4000 - 399                          # n_fft - 1 samples of look-ahead at most
    frames = np.nonzero(np.abs(v - v2) > 0)[0]
    assert frames[0] == (4000 + 200) // 100 - 3              # the first frame whose window holds sample 4000
    assert np.abs(y - y2)[4000:].max() > 1e-3                # and the change does reach the output


@pytest.mark.parametrize("name", ["1 sample", "10 ms", "37 ms", "random", "whole"])
def test_any_chunking_gives_the_whole_file_output(causal, name):
    x = _signal(2345 if name == "1 sample" else 12345)
    sizes = {"1 sample": [1] * len(x), "10 ms": [160] * 100, "37 ms": [592] * 30, "whole": [len(x)],
             "random": list(np.random.default_rng(2).integers(0, 900, 200))}[name]
    want, want_vad = _whole(causal, x)
    y, v, _ = _streamed(causal, x, sizes)
    assert y.shape == x.shape and v.shape == want_vad.shape
    err, verr = float(np.abs(y - want).max()), float(np.abs(v - want_vad).max())
    print(f"chunking {name}: max |stream - whole| = {err:.2e}, VAD {verr:.2e}")
    assert err <= 1e-5 and verr <= 1e-5


def test_a_long_chunk_goes_through_the_network_in_pieces(causal, monkeypatch):
    """A chunk of many frames runs MAX_FRAMES at a time (bounded attention memory), same output."""
    import csmvanet.infer.streaming as streaming

    calls = []
    monkeypatch.setattr(streaming, "MAX_FRAMES", 7)
    x = _signal(12345, 6)
    want, want_vad = _whole(causal, x)
    stream = CausalStream(causal)
    network = causal.network
    stream.step = lambda feats: calls.append(feats.shape[2]) or network(feats, stream.state)
    y, v = stream.process(x)
    y2, v2 = stream.flush()
    assert max(calls) == 7 and sum(calls) == len(want_vad)
    assert np.abs(np.concatenate([y, y2]) - want).max() <= 1e-5
    assert np.abs(np.concatenate([v, v2]) - want_vad).max() <= 1e-5


def test_channels_are_a_batch_and_state_stays_bounded(causal):
    x = np.stack([_signal(20000, 3), _signal(20000, 4)], axis=1)
    want, want_vad = _whole(causal, x)
    y, v, stream = _streamed(causal, x[:16000], [160] * 100)
    sizes = {k: tuple(t.shape) for k, t in stream.state.items() if torch.is_tensor(t)}
    y2, v2, stream2 = _streamed(causal, x, [160] * 200)
    assert {k: tuple(t.shape) for k, t in stream2.state.items() if torch.is_tensor(t)} == sizes
    assert any(s[3] == 5 for k, s in sizes.items() if k.endswith("attn.kv"))   # keys/values: left_context frames
    assert np.abs(y2 - want).max() <= 1e-5 and np.abs(v2 - want_vad).max() <= 1e-5


def test_file_mode_of_a_causal_model_is_the_stream(causal, causal_config, tmp_path):
    import soundfile as sf

    from csmvanet.infer.enhancer import Enhancer

    x = _signal(30000, 5)
    enh = Enhancer(causal, causal_config, segment_seconds=0.5)     # segments would change a chunked model
    stream = enh.stream()
    y, v, _ = _streamed(causal, x, [160] * 200)
    got, vad = enh.enhance(x, SR, limit=False)
    assert np.abs(got - y).max() <= 1e-5 and np.abs(vad - v).max() <= 1e-5
    sf.write(tmp_path / "x.wav", x, SR, subtype="FLOAT")
    enh.enhance_file(tmp_path / "x.wav", tmp_path / "y.wav", subtype="FLOAT", limit=False)
    assert np.abs(sf.read(tmp_path / "y.wav", dtype="float32")[0] - y).max() <= 1e-5
    assert isinstance(stream, CausalStream)


def test_a_paper_model_does_not_stream(tiny_config):
    with pytest.raises(ValueError, match="causal model"):
        CausalStream(build_model(tiny_config))


@pytest.mark.parametrize("key, value, msg", [("causal", 1, "model.causal: 1 must be true or false"),
                                             ("left_context", 0, "model.left_context: 0"),
                                             ("level_seconds", 0, "model.level_seconds: 0")])
def test_bad_causal_options_name_the_key(causal_config, key, value, msg):
    causal_config["model"][key] = value
    with pytest.raises(ConfigError, match=msg):
        build_model(causal_config)


# ------------------------------------------------------------------ csmvanet-enhance --stream
@pytest.fixture(scope="module")
def causal_exp(tmp_path_factory):
    import yaml

    from conftest import TINY_CONFIG
    from csmvanet.experiment.checkpoint import save_checkpoint

    cfg = copy.deepcopy(TINY_CONFIG)
    cfg["model"].update(causal=True, left_context=5)
    path = tmp_path_factory.mktemp("exp") / "causal"
    path.mkdir()
    torch.manual_seed(0)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    save_checkpoint(build_model(cfg).state_dict(), path / "valid.loss.ave.pth")
    return path


def _cli(*args, **kw):
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "csmvanet.bin.enhance", *map(str, args)], capture_output=True,
                          env=env, **kw)


@pytest.mark.parametrize("rate", [16000, 8000])
def test_cli_stream_pipe_equals_file_mode(causal_exp, tmp_path, rate):
    """`cat x.wav | csmvanet-enhance --stream - - > y.wav` (a pipe: no seek) gives the samples of file
    mode; raw PCM in gives the same samples as raw PCM out; VAD events follow the VAD."""
    import soundfile as sf

    x = _signal(24000, 7)[:: 16000 // rate]
    sf.write(tmp_path / "x.wav", x, rate, subtype="PCM_16")
    r = _cli("--model", causal_exp, "--stream", "-", "-", "--vad_events", tmp_path / "ev.txt",
             input=(tmp_path / "x.wav").read_bytes())
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout[:4] == b"RIFF" and r.stdout[40:44] == b"\xff\xff\xff\xff"     # header first, size unknown
    (tmp_path / "y.wav").write_bytes(r.stdout)
    got, sr = sf.read(tmp_path / "y.wav", dtype="int16")
    f = _cli("--model", causal_exp, tmp_path / "x.wav", "--output_dir", tmp_path / "d", "--no_progress",
             "--segment_seconds", "0.5")          # a segmented model would differ: the stream runs whole
    assert f.returncode == 0, f.stderr.decode()
    want = sf.read(tmp_path / "d" / "x.wav", dtype="int16")[0]
    assert sr == rate and got.shape == want.shape == x.shape
    assert np.array_equal(got, want)
    raw = sf.read(tmp_path / "x.wav", dtype="int16")[0].tobytes()
    r2 = _cli("--model", causal_exp, "--stream", "-", "-", "--raw_rate", rate, input=raw)
    assert r2.returncode == 0 and np.array_equal(np.frombuffer(r2.stdout, "<i2"), want)
    if rate == 16000:
        from csmvanet.infer.enhancer import Enhancer

        vad = Enhancer.from_pretrained(causal_exp).enhance(sf.read(tmp_path / "x.wav", dtype="float32")[0], rate)[1]
        speech = np.concatenate([[False], vad >= 0.5])
        starts = int((speech[1:] & ~speech[:-1]).sum())
        lines = (tmp_path / "ev.txt").read_text().split()
        assert starts > 0 and lines[0::2].count("speech_start") == starts
        assert len(lines) == 4 * starts and lines[0::4] == ["speech_start"] * starts


def test_cli_stream_writes_while_reading(causal_exp):
    """Output comes out while the input is still open (a live source), and bad input is one line."""
    import os
    import select
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "csmvanet.bin.enhance", "--model", str(causal_exp), "--stream",
                             "-", "-", "--stream_format", "raw"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        x = (_signal(16000, 8) * 32767).astype("<i2").tobytes()
        proc.stdin.write(x)
        proc.stdin.flush()
        got = b""
        while len(got) < 2 * (16000 - 400):
            ready, _, _ = select.select([proc.stdout], [], [], 120)
            assert ready, f"no output within 120 s of 1 s of input; got {len(got)} bytes"
            got += os.read(proc.stdout.fileno(), 1 << 16)
        assert proc.poll() is None                 # still running: the input is not closed yet
        proc.stdin.close()
        got += proc.stdout.read()
        assert proc.wait(60) == 0 and len(got) == len(x)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    bad = _cli("--model", causal_exp, "--stream", "-", "-", "--stream_format", "wav", input=b"not a wav file at all")
    assert bad.returncode == 1 and bad.stderr.decode().strip().splitlines()[-1] == \
        "csmvanet-enhance: error: standard input: not a WAV stream (no RIFF/WAVE header)"


def test_onnx_streaming_step_agrees_with_torch(causal, causal_config, tmp_path):
    """One streaming step exported to ONNX (state as explicit inputs/outputs) and run by onnxruntime
    frame by frame gives the torch stream's output (SI-SDR >= 40 dB) and VAD (within 1e-3)."""
    pytest.importorskip("onnxruntime")
    import onnx

    from csmvanet.experiment.onnx_export import export_stream_step
    from csmvanet.infer.enhancer import Enhancer
    from csmvanet.infer.streaming import OnnxStep

    keys = export_stream_step(causal, tmp_path / "step.onnx")
    graph = onnx.load(str(tmp_path / "step.onnx")).graph
    assert [i.name for i in graph.input] == ["feats", "t0", *keys] and len(keys) > 10
    assert [o.name for o in graph.output][2:] == ["next.t0", *[f"next.{k}" for k in keys]]
    x = _signal(12345, 9)
    want, want_vad, _ = _streamed(causal, x, [160] * 100)
    sizes = list(np.random.default_rng(3).integers(1, 700, 100))
    for step in (OnnxStep(causal, tmp_path / "step.onnx"), None):
        stream = (CausalStream(causal, step=step) if step is not None else
                  Enhancer(causal, causal_config, backend="onnxruntime").stream())
        ys, vs, i = [], [], 0
        for n in sizes:
            y, v = stream.process(x[i:i + n])
            ys.append(y)
            vs.append(v)
            i += n
        y, v = stream.flush()
        got, vad = np.concatenate(ys + [y]), np.concatenate(vs + [v])
        si_sdr = 10 * np.log10(np.sum(want ** 2) / np.sum((got - want) ** 2))
        print(f"onnxruntime stream vs torch: SI-SDR {si_sdr:.1f} dB, VAD max diff {np.abs(vad - want_vad).max():.1e}")
        assert got.shape == want.shape and si_sdr >= 40 and np.abs(vad - want_vad).max() <= 1e-3


def test_the_causal_model_trains(causal_config):
    """Every parameter of the causal variant gets a gradient from the loss, and a few steps on one
    batch lower it (the loss sees one level per item and the spectrum at that level)."""
    from csmvanet.nets.loss import build_loss

    torch.manual_seed(0)
    model = build_model(causal_config).train()
    loss_fn = build_loss(causal_config)
    clean = torch.from_numpy(np.stack([_signal(3200, 10), _signal(3200, 11)])) * torch.tensor([[1.0], [0.1]])
    noisy = clean + 0.05 * torch.randn_like(clean)
    labels = torch.ones(2, 33)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    losses = []
    for i in range(15):
        out = model(noisy)
        assert out["scale"].shape == (2,) and out["spec"].shape == (2, 201, 33)
        loss = loss_fn(out, clean, labels)["loss"]
        opt.zero_grad()
        loss.backward()
        if i == 0:
            assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
