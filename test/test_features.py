import pytest
import torch

from csmvanet.audio.stft import STFTConfig, analyse, compress, decompress, stft, synthesise

CFG = STFTConfig()


@pytest.mark.parametrize("n", [400, 401, 1001, 16001, 48037])
def test_compressed_stft_round_trip_is_exact(n):
    g = torch.Generator().manual_seed(n)
    x = torch.randn(2, n, generator=g) * 0.3
    y = synthesise(analyse(x, CFG), CFG, n)
    assert y.shape == x.shape
    assert (y - x).abs().max().item() < 1e-4


def test_frames_and_bins_match_the_paper():
    spec = stft(torch.zeros(1, 32000), CFG)
    assert spec.shape == (1, 201, 321) == (1, CFG.n_bins, CFG.num_frames(32000))


def test_compression_keeps_phase_and_compresses_magnitude():
    s = torch.tensor([[3 + 4j, 0j, -0.5 + 0.1j]], dtype=torch.complex64)
    c = compress(s, CFG)
    assert torch.allclose(c.abs(), s.abs() ** 0.3, atol=1e-6)
    nz = s.abs() > 0
    assert torch.allclose(torch.angle(c)[nz], torch.angle(s)[nz], atol=1e-6)
    assert c[0, 1] == 0
    assert torch.allclose(decompress(c, CFG), s, atol=1e-5)


def test_compression_gradient_is_finite_at_zero():
    s = torch.zeros(1, 4, dtype=torch.complex64, requires_grad=True)
    compress(s, CFG).abs().sum().backward()
    assert torch.isfinite(torch.view_as_real(s.grad)).all()


def test_features_stay_fp32_under_autocast():
    x = torch.randn(1, 4000)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        spec = analyse(x, CFG)
        y = synthesise(spec, CFG, 4000)
    assert spec.dtype == torch.complex64 and y.dtype == torch.float32
    assert (y - x).abs().max().item() < 1e-4
