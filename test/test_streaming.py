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
