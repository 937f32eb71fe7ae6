import numpy as np
import torch

from csmvanet.features import STFTConfig, analyse
from csmvanet.loss import build_loss

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

    from csmvanet.errors import ConfigError
    from csmvanet.experiment import Experiment

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
