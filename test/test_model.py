import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from csmvanet.nets import build_model
from csmvanet.nets.loss import build_loss

ROOT = Path(__file__).resolve().parents[1]
VB_CONF = ROOT / "egs" / "voicebank" / "conf"


@pytest.fixture
def tiny(tiny_config):
    torch.manual_seed(0)
    return build_model(tiny_config).eval()


@pytest.mark.parametrize("n", [400, 401, 555, 1600, 4003, 16000, 32001, 48037])
def test_output_length_equals_input_length(tiny, n):
    with torch.no_grad():
        out = tiny(torch.randn(2, n))
    t = n // 100 + 1
    assert out["wave"].shape == (2, n)
    assert out["vad"].shape == (2, t)
    assert out["spec"].shape == (2, 201, t)
    assert ((out["vad"] >= 0) & (out["vad"] <= 1)).all()


def test_paper_model_output_shapes():
    torch.manual_seed(0)
    model = build_model({}).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 8001))
    assert out["wave"].shape == (1, 8001) and out["vad"].shape == (1, 81)
    assert torch.isfinite(out["wave"]).all()


def test_every_parameter_receives_a_gradient(tiny_config):
    torch.manual_seed(0)
    model = build_model(tiny_config).train()
    loss_fn = build_loss(tiny_config)
    noisy, clean = torch.randn(2, 3200), torch.randn(2, 3200)
    labels = (torch.rand(2, 33) > 0.5).float()
    loss_fn(model(noisy), clean, labels)["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"parameters without gradient: {missing}"


def test_without_vad_decoder_is_single_stage(tiny_config):
    tiny_config["model"]["vad_decoder"] = False
    model = build_model(tiny_config).eval()
    out = model(torch.randn(1, 1600))
    assert out["vad"] is None and torch.equal(out["spec"], out["spec1"])
    terms = build_loss(tiny_config)(out, torch.randn(1, 1600), torch.ones(1, 17))
    assert terms["vad"].item() == 0.0


def test_plain_gated_conv_ablation_has_fewer_parameters(tiny_config):
    full = sum(p.numel() for p in build_model(tiny_config).parameters())
    tiny_config["model"]["msgc"] = False
    plain = sum(p.numel() for p in build_model(tiny_config).parameters())
    assert plain < full


def test_input_level_does_not_change_the_output_shape_of_the_signal(tiny):
    x = torch.randn(1, 4000)
    with torch.no_grad():
        a, b = tiny(x)["wave"], tiny(x * 100)["wave"]
    assert torch.allclose(a * 100, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("bad,msg", [
    (torch.randn(400), "shape [B, N]"),
    (torch.randn(1, 1, 800), "shape [B, N]"),
    (torch.randn(2, 399), "at least one frame"),
    (torch.tensor([[float("nan")] * 800]), "NaN or Inf"),
    (torch.tensor([[0.0] * 799 + [float("inf")]]), "NaN or Inf"),
    (torch.zeros(1, 800, dtype=torch.int16), "floating-point"),
])
def test_bad_input_raises_value_error(tiny, bad, msg):
    with pytest.raises(ValueError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        tiny(bad)


MAX_OVERFIT_STEPS = 1000


def test_tiny_model_overfits_one_batch(tiny_config):
    torch.manual_seed(0)
    model = build_model(tiny_config).train()
    loss_fn = build_loss(tiny_config)
    g = torch.Generator().manual_seed(1)
    n = 4000
    t = torch.arange(n) / 16000
    clean = 0.5 * torch.sin(2 * math.pi * 220 * t)[None].repeat(2, 1) * (torch.rand(2, 1, generator=g) + 0.5)
    clean[:, : n // 4] = 0.0
    noisy = clean + 0.1 * torch.randn(2, n, generator=g)
    labels = torch.zeros(2, n // 100 + 1)
    labels[:, n // 400 + 2:] = 1.0
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first, last, steps = None, None, 0
    while steps < MAX_OVERFIT_STEPS:   # a step budget, not a time budget: the result cannot depend on load
        steps += 1
        terms = loss_fn(model(noisy), clean, labels)
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        last = terms["loss"].item()
        first = first if first is not None else last
        if last < first / 10:
            break
    assert last < first / 10, f"loss fell only from {first:.4f} to {last:.4f} in {steps} steps"
    print(f"overfit: loss {first:.4f} -> {last:.4f} in {steps} steps")


def _info(conf: Path) -> str:
    r = subprocess.run([sys.executable, "-m", "csmvanet.bin.info", "--config", str(conf)],
                       capture_output=True, text=True, check=True)
    return r.stdout


@pytest.mark.parametrize("conf,expected", [("train.yaml", 8.81e6), ("tuning/train_wo_msgc.yaml", 8.79e6)])
def test_parameter_count_matches_the_paper(conf, expected):
    out = _info(VB_CONF / conf)
    last = out.strip().splitlines()[-1]
    assert last.startswith("params: ")
    params = int(last.split()[1])
    assert abs(params - expected) / expected < 0.02, f"{conf}: {params} parameters"
    assert "[F=201, T=321]" in out


def test_info_reports_every_ablation():
    counts = {}
    for conf in sorted((VB_CONF / "tuning").glob("*.yaml")):
        counts[conf.stem] = int(_info(conf).strip().splitlines()[-1].split()[1])
    assert set(counts) == {"train_wo_msgc", "train_wo_vad_decoder", "train_wo_time_loss", "train_wo_mag_loss"}
    assert counts["train_wo_vad_decoder"] < counts["train_wo_time_loss"]


def test_attention_distances_beyond_the_clamp_share_one_embedding(tiny_config):
    from csmvanet.nets.conformer import RelPosSelfAttention

    torch.manual_seed(0)
    attn = RelPosSelfAttention(8, 2, 4, 0.0, max_pos=512, clamp=20).eval()
    x = torch.randn(1, 60, 8)
    out = attn(x)
    # rows for distances beyond the clamp are never used: changing them changes nothing
    with torch.no_grad():
        attn.rel_pos.weight[512 + 21:] += 1.0
        attn.rel_pos.weight[:512 - 20] += 1.0
    assert torch.equal(attn(x), out)
    with torch.no_grad():
        attn.rel_pos.weight[512 + 20] += 1.0
    assert not torch.equal(attn(x), out)


def test_eval_fast_paths_equal_the_training_graph():
    """ConvModule and RelPosSelfAttention run other code in eval mode (linear 1x1 convolutions,
    BatchNorm folded into a channels-last depthwise convolution; fused attention with the
    relative-position term as a mask, its table cached under inference_mode). Each must equal the
    modules' own training-mode graph evaluated with eval statistics and no dropout, and a cached table
    must follow new weights."""
    from csmvanet.nets.conformer import ConvModule, RelPosSelfAttention

    torch.manual_seed(0)
    conv = ConvModule(16, 2, 7, 0.0).eval()
    with torch.no_grad():
        conv.bn.running_mean.normal_()
        conv.bn.running_var.uniform_(0.5, 2.0)
        conv.bn.weight.normal_()
        conv.bn.bias.normal_()
    x = torch.randn(3, 25, 16)
    with torch.no_grad():
        y = conv.norm(x).transpose(1, 2)
        want = conv.pw2(conv.act(conv.bn(conv.dw(conv.glu(conv.pw1(y)))))).transpose(1, 2)
        torch.testing.assert_close(conv(x), want, atol=1e-5, rtol=1e-5)
    attn = RelPosSelfAttention(16, 2, 8, 0.0, max_pos=40, clamp=10)
    attn.train()
    with torch.no_grad():
        want = attn(x)                         # dropout 0: the training graph is deterministic
    attn.eval()
    with torch.inference_mode():
        torch.testing.assert_close(attn(x), want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(attn(x), want, atol=1e-5, rtol=1e-5)         # from the cached table
    with torch.no_grad():
        attn.rel_pos.weight[40 + 3] += 1.0                                       # a distance in use
        attn.train()
        want2 = attn(x)
        attn.eval()
    assert not torch.allclose(want2, want, atol=1e-4)
    with torch.inference_mode():
        torch.testing.assert_close(attn(x), want2, atol=1e-5, rtol=1e-5)        # the cache saw the change
