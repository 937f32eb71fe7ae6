import numpy as np
import torch

from csmvanet.audio.stft import STFTConfig, analyse
from csmvanet.nets.loss import build_loss

CFG = STFTConfig()


def test_each_loss_term_matches_a_hand_computation():
    g = torch.Generator().manual_seed(3)
    n = 800
    clean = torch.randn(1, n, generator=g)
    est = torch.randn(1, n, generator=g)
    scale = torch.tensor([2.0])
    t = CFG.num_frames(n)
    spec = torch.complex(torch.randn(1, 201, t, generator=g), torch.randn(1, 201, t, generator=g))
    logits = torch.randn(1, t, generator=g)
    labels = (torch.rand(1, t, generator=g) > 0.5).float()
    out = {"wave": est, "spec": spec, "scale": scale, "vad_logits": logits}
    terms = build_loss({})(out, clean, labels)

    c = clean.numpy()[0] * 2.0
    e = est.numpy()[0] * 2.0
    target = analyse(torch.from_numpy(c)[None], CFG).numpy()[0]
    s = spec.numpy()[0]
    time_l1 = np.mean(np.abs(c - e))
    mag = np.mean((np.abs(s) - np.abs(target)) ** 2)
    ri = np.mean((s.real - target.real) ** 2) + np.mean((s.imag - target.imag) ** 2)
    p = 1 / (1 + np.exp(-logits.numpy()[0].astype(np.float64)))
    y = labels.numpy()[0]
    bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    np.testing.assert_allclose(terms["time"].item(), time_l1, rtol=1e-5)
    np.testing.assert_allclose(terms["mag"].item(), mag, rtol=1e-4)
    np.testing.assert_allclose(terms["ri"].item(), ri, rtol=1e-4)
    np.testing.assert_allclose(terms["vad"].item(), bce, rtol=1e-5)
    total = 0.2 * time_l1 + 0.8 * mag + 0.2 * ri + 0.1 * bce
    np.testing.assert_allclose(terms["loss"].item(), total, rtol=1e-4)


def test_weights_come_from_the_config_and_zero_removes_a_term():
    g = torch.Generator().manual_seed(0)
    clean, est = torch.randn(1, 800, generator=g), torch.randn(1, 800, generator=g)
    spec = analyse(est, CFG)
    out = {"wave": est, "spec": spec, "scale": torch.ones(1), "vad_logits": None}
    full = build_loss({})(out, clean)
    no_time = build_loss({"loss": {"time": 0.0}})(out, clean)
    np.testing.assert_allclose(full["loss"].item() - no_time["loss"].item(), 0.2 * full["time"].item(), rtol=1e-5)
    assert no_time["time"].item() == full["time"].item()  # still reported


def test_unknown_weight_is_rejected():
    import pytest

    with pytest.raises(ValueError, match="unknown loss weight"):
        build_loss({"loss": {"tme": 0.1}})


def test_mag_asym_weights_only_the_removed_speech():
    """mag_asym = a: where the estimate's magnitude is below the clean one the error counts a times
    (a^2 in the square), elsewhere as in the paper's MSE; 1 is the paper's loss exactly."""
    import pytest

    from csmvanet.base.errors import ConfigError
    from csmvanet.experiment.resolved_config import Experiment

    g = torch.Generator().manual_seed(5)
    clean, est = torch.randn(1, 800, generator=g), torch.randn(1, 800, generator=g)
    spec = analyse(est, CFG)
    out = {"wave": est, "spec": spec, "scale": torch.ones(1), "vad_logits": None}
    d = np.abs(analyse(clean, CFG).numpy()[0]) - np.abs(spec.numpy()[0])      # > 0: speech removed
    assert (d > 0).any() and (d < 0).any()
    for a in (1.0, 3.0):
        terms = build_loss({"loss": {"mag_asym": a}})(out, clean)
        want = np.mean(np.where(d > 0, a * d, d) ** 2)
        np.testing.assert_allclose(terms["mag"].item(), want, rtol=1e-4)
    assert build_loss({"loss": {"mag_asym": 1}})(out, clean)["mag"].item() == build_loss({})(out, clean)["mag"].item()
    for bad in (0.5, "x", None):
        with pytest.raises(ConfigError, match="mag_asym"):
            build_loss({"loss": {"mag_asym": bad}})
    with pytest.raises(ConfigError, match="mag_asym"):
        Experiment.from_config({"loss": {"mag_asym": 0.0}})


def _speech_like(seconds=3.0, sr=16000, seed=0):
    """Harmonics of a gliding 120 Hz voice, 3 syllables a second, a 0.5 s pause every 1.5 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / sr) / k for k in range(1, 30))
    env = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) * (t % 1.5 < 1.0)
    x = voiced * env + 0.3 * rng.standard_normal(len(t)) * env ** 2
    return (x / np.abs(x).max()).astype(np.float32)


def _at_snr(clean, noise, snr):
    return clean + noise * np.sqrt((clean ** 2).mean() / (noise ** 2).mean() / 10 ** (snr / 10))


def test_envelope_correlation_follows_stoi():
    """The env term's correlation is STOI's computation at 16 kHz: it ranks noisy signals as STOI
    does, within 0.05 of pystoi here (0.999 correlation with it per utterance on 120 voiceprompts test
    mixtures), ignores the level of the estimate and what happens where the reference is silent."""
    from pystoi import stoi

    from csmvanet.nets.loss import envelope_correlation, third_octave_bands

    sr = 16000
    bands = third_octave_bands(sr, 512)
    assert bands.shape == (15, 257) and (bands.sum(1) >= 1).all() and bands.sum(0).max() == 1
    clean = _speech_like()
    noise = np.random.default_rng(1).standard_normal(len(clean)).astype(np.float32)
    t = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]  # noqa: E731
    assert envelope_correlation(t(clean), t(clean), sr).item() > 0.9999
    ours = []
    for snr in (-5, 0, 5, 15):
        noisy = _at_snr(clean, noise, snr)
        ours.append(envelope_correlation(t(noisy), t(clean), sr).item())
        assert abs(ours[-1] - stoi(clean, noisy, sr)) < 0.05, snr
        np.testing.assert_allclose(envelope_correlation(t(3 * noisy), t(clean), sr).item(), ours[-1], rtol=1e-5)
    assert ours == sorted(ours) and ours[0] < 0.8 and ours[-1] > 0.99
    # noise where the reference is silent (more than 40 dB below its loudest frame) is not counted
    noisy = _at_snr(clean, noise, 5)
    hiss = 1e-4 * np.random.default_rng(3).standard_normal(8000).astype(np.float32)   # about 60 dB down
    padded = np.concatenate([hiss, clean])
    noisy_pad = np.concatenate([hiss + noise[:8000], noisy])
    np.testing.assert_allclose(envelope_correlation(t(noisy_pad), t(padded), sr).item(), ours[2], atol=0.01)
    from csmvanet.nets.loss import envelope_frame

    assert envelope_frame(sr) == (512, 400, 200)                 # 25 ms every 12.5 ms


def test_env_weight_adds_the_term_with_its_gradient_and_zero_leaves_the_paper_loss():
    clean_np = _speech_like(1.0)
    clean = torch.from_numpy(clean_np)[None]
    est = torch.from_numpy(_at_snr(clean_np, np.random.default_rng(2).standard_normal(16000), 5)
                           .astype(np.float32))[None].requires_grad_()
    out = {"wave": est, "spec": analyse(est, CFG), "scale": torch.ones(1), "vad_logits": None}
    paper = build_loss({})(out, clean)
    assert 0 < paper["env"].item() < 0.2 and not paper["env"].requires_grad   # reported, no gradient
    (g_paper,) = torch.autograd.grad(paper["loss"], est, retain_graph=True)
    with_env = build_loss({"loss": {"env": 0.5}})(out, clean)
    np.testing.assert_allclose(with_env["loss"].item(), paper["loss"].item() + 0.5 * paper["env"].item(), rtol=1e-5)
    (g_env,) = torch.autograd.grad(with_env["loss"] - paper["loss"].detach(), est)
    assert not torch.allclose(g_env, g_paper)
    # the term's gradient raises the envelope correlation: a small step along it lowers 1 - d
    from csmvanet.nets.loss import envelope_correlation

    d = lambda x: envelope_correlation(x, clean, 16000)  # noqa: E731
    (g,) = torch.autograd.grad(1 - d(est), est)
    assert d(est - 1e-2 * g / g.norm()).item() > d(est).item()
    short = {"wave": clean[:, :400], "spec": analyse(clean[:, :400], CFG), "scale": torch.ones(1), "vad_logits": None}
    assert build_loss({})(short, clean[:, :400])["env"].item() == 0.0            # too short: only reported as 0


def test_env_log_form_weights_items_by_their_own_distortion():
    """``env_form: log``: the weight multiplies mean(log(1 - d_i + 0.01)) over the batch, whose
    gradient on each item is its linear gradient over (1 - d_i + 0.01): a nearly undistorted
    (high-SNR) item pulls harder than a noisy one. The reported ``env`` stays 1 - mean(d)."""
    import pytest

    from csmvanet.base.errors import ConfigError
    from csmvanet.nets.loss import ENV_LOG_EPS, envelope_correlation

    clean_np = _speech_like(1.0)
    noise = np.random.default_rng(2).standard_normal(16000)
    clean = torch.from_numpy(np.stack([clean_np, clean_np]))
    est = torch.from_numpy(np.stack([_at_snr(clean_np, noise, 15), _at_snr(clean_np, noise, -5)])
                           .astype(np.float32)).requires_grad_()
    out = {"wave": est, "spec": analyse(est, CFG), "scale": torch.ones(2), "vad_logits": None}
    base = build_loss({})(out, clean)
    lin = build_loss({"loss": {"env": 0.5}})(out, clean)
    log = build_loss({"loss": {"env": 0.5, "env_form": "log"}})(out, clean)
    d = envelope_correlation(est, clean, 16000, reduction="none")
    assert d.shape == (2,) and d[0] > d[1]
    np.testing.assert_allclose(d.mean().item(), envelope_correlation(est, clean, 16000).item(), rtol=1e-6)
    np.testing.assert_allclose(log["env"].item(), lin["env"].item(), rtol=1e-6)
    expect = base["loss"].item() + 0.5 * torch.log(1 - d + ENV_LOG_EPS).mean().item()
    np.testing.assert_allclose(log["loss"].item(), expect, rtol=1e-5)
    (g_lin,) = torch.autograd.grad(lin["loss"] - base["loss"], est, retain_graph=True)
    (g_log,) = torch.autograd.grad(log["loss"] - base["loss"], est)
    ratio = (g_log.norm(dim=1) / g_lin.norm(dim=1)).detach()
    np.testing.assert_allclose(ratio.numpy(), (1 / (1 - d + ENV_LOG_EPS)).detach().numpy(), rtol=1e-3)
    assert ratio[0] > 3 * ratio[1]                                  # the 15 dB item weighs more
    with pytest.raises(ConfigError, match="env_form"):
        build_loss({"loss": {"env": 0.5, "env_form": "square"}})
